"""The emulator's decisions: what it answers to each request, and the state those answers
depend on (accepted messages, stats, fault rules, rate-limit history).

A send is decided in Meta's order: token, throughput, body, fault rules (see
``sandbox.faults``), pair rate, accept. An accepted send is then given to the delivery rules
(``sandbox.cloudapi.deliveryrules``) and, when a webhook URL is set, its statuses are planned
(``sandbox.cloudapi.statusplan``) and queued for the ``WebhookDispatcher``. Control requests
under ``/_sandbox/`` inspect and steer that state. Plain Python over bytes and ``Reply``s:
``sandbox.cloudapi.server`` carries them over HTTP.
"""

from __future__ import annotations

import hmac
import itertools
import json
import random
import re
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Literal

from sandbox.cloudapi.deliveryrules import DeliveryRule, DeliveryRuleBook
from sandbox.cloudapi.dispatcher import WebhookDispatcher
from sandbox.cloudapi.records import AcceptedMessage
from sandbox.cloudapi.replies import Reply, error_reply, html_reply, json_reply
from sandbox.cloudapi.statusplan import plan
from sandbox.cloudapi.validation import InvalidSendError, SendRequest, parse_send
from sandbox.cloudapi.webhookconfig import WebhookConfig
from sandbox.cloudapi.webhookcontrol import WebhookControl
from sandbox.faults import DEFAULT_EMPTY_STATUS, DEFAULT_HTML_STATUS, FaultRule, RuleBook

SEND_PATH = re.compile(r"/(v\d+\.\d+)/([^/]+)/messages")
SANDBOX_TOKEN = "sandbox-token"  # noqa: S105 - a local placeholder, not a secret
STAT_NAMES = ("requests", "accepted", "errors", "hangs", "resets", "html")
THROUGHPUT_WINDOW_S = 1.0  # max_rate_per_s counts the send requests of the last second

_wamid_seq = itertools.count(1)  # makes wamids unique across the process

ControlHandler = Callable[[bytes], Reply]


class EmulatorCore:
    """The recorded state and the answer to every request; handler threads share it.

    One lock guards the state: a send is decided, and recorded, with the lock held.
    """

    def __init__(
        self,
        *,
        access_token: str = SANDBOX_TOKEN,
        seed: int = 0,
        rules: Sequence[FaultRule] = (),
        max_rate_per_s: float | None = None,
        pair_interval_s: float | None = None,
        webhooks: WebhookConfig | None = None,
        delivery_rules: Sequence[DeliveryRule] = (),
    ) -> None:
        if max_rate_per_s is not None and not max_rate_per_s > 0:
            raise ValueError("max_rate_per_s must be positive")
        if pair_interval_s is not None and not pair_interval_s >= 0:
            raise ValueError("pair_interval_s must not be negative")
        self._access_token = access_token
        self._seed = seed
        self._max_rate_per_s = max_rate_per_s
        self._pair_interval_s = pair_interval_s
        self._lock = threading.Lock()
        self._rulebook = RuleBook(rules, seed)
        self._accepted: list[AcceptedMessage] = []
        self._stats = dict.fromkeys(STAT_NAMES, 0)
        self._window: deque[float] = deque()  # monotonic times of recent send requests
        self._last_accept: dict[str, float] = {}  # digits -> monotonic time
        self._delivery_rules = DeliveryRuleBook(delivery_rules)
        self._accepts_per_number: Counter[str] = Counter()  # seeds each message's RNG
        # Started and stopped by the server; its lock is taken inside this one, never around it.
        self.webhooks = WebhookDispatcher(webhooks or WebhookConfig(), seed)
        self._control_routes: dict[str, tuple[str, ControlHandler]] = {
            "/_sandbox/messages": ("GET", self._list_messages),
            "/_sandbox/stats": ("GET", self._show_stats),
            "/_sandbox/rules": ("PUT", self._replace_rules),
            "/_sandbox/reset": ("POST", self._reset),
            **WebhookControl(self.webhooks, self.set_delivery_rules).routes(),
        }

    # -- state -----------------------------------------------------------------------------

    def accepted(self) -> list[AcceptedMessage]:
        with self._lock:
            return list(self._accepted)

    def set_rules(self, rules: Sequence[FaultRule]) -> None:
        """Replace the rules; their firing counts and the seeded RNG start afresh."""
        rulebook = RuleBook(rules, self._seed)
        with self._lock:
            self._rulebook = rulebook

    def set_delivery_rules(self, rules: Sequence[DeliveryRule]) -> None:
        """Replace the delivery rules; their firing counts start afresh."""
        rulebook = DeliveryRuleBook(rules)
        with self._lock:
            self._delivery_rules = rulebook

    def reset(self) -> None:
        """Forget accepted messages, stats, rules (both kinds), rate-limit history and queued
        webhooks; the webhook options stay."""
        with self._lock:
            self._accepted.clear()
            self._stats = dict.fromkeys(STAT_NAMES, 0)
            self._rulebook = RuleBook((), self._seed)
            self._delivery_rules = DeliveryRuleBook(())
            self._accepts_per_number.clear()
            self._window.clear()
            self._last_accept.clear()
            self.webhooks.reset()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    # -- requests --------------------------------------------------------------------------

    def answer(self, method: str, path: str, authorization: str | None, body: bytes) -> Reply:
        """The reply to one request, by route: a send, a control request, or an unknown path."""
        send = SEND_PATH.fullmatch(path)
        if send is not None and method == "POST":
            return self.handle_send(send.group(2), authorization, body)
        if send is not None:
            return error_reply(100, f"Use POST on {path}", 405, headers=(("Allow", "POST"),))
        if path.startswith("/_sandbox/"):
            return self.handle_control(method, path, body)
        return error_reply(100, f"Unknown path {path}", 404)

    def handle_send(self, phone_number_id: str, authorization: str | None, body: bytes) -> Reply:
        with self._lock:
            self._stats["requests"] += 1
            reply = self._decide_send(phone_number_id, authorization, body, time.monotonic())
            if reply.action == "hang":
                self._stats["hangs"] += 1
            elif reply.action == "reset":
                self._stats["resets"] += 1
            elif reply.content_type is not None and reply.content_type.startswith("text/html"):
                self._stats["html"] += 1
            elif reply.status >= 400:
                self._stats["errors"] += 1
        return reply

    def handle_control(self, method: str, path: str, body: bytes) -> Reply:
        route = self._control_routes.get(path)
        if route is None:
            return error_reply(100, f"Unknown path {path}", 404)
        expected, handler = route
        if method != expected:
            return error_reply(
                100, f"Use {expected} on {path}", 405, headers=(("Allow", expected),)
            )
        return handler(body)

    # -- sends (lock held) -----------------------------------------------------------------

    def _decide_send(
        self, phone_number_id: str, authorization: str | None, body: bytes, now: float
    ) -> Reply:
        """Token, throughput, body, fault rules, pair rate, accept: in that order."""
        refusal = self._refuse_caller(authorization, now)
        if refusal is not None:
            return refusal
        try:
            send = parse_send(body)
        except InvalidSendError as exc:
            return error_reply(100, exc.details)
        decision = self._rulebook.decide(send.digits)
        if decision.rule is None:
            reply = self._unfaulted(phone_number_id, send, now)
        else:
            reply = self._faulted(phone_number_id, send, now, decision.rule)
        return replace(reply, delay_s=decision.delay_s)

    def _refuse_caller(self, authorization: str | None, now: float) -> Reply | None:
        """190 for a wrong token, 130429 above the throughput limit; None lets the send on."""
        expected = f"Bearer {self._access_token}".encode()
        if not hmac.compare_digest((authorization or "").encode(), expected):
            return error_reply(190, "Invalid or missing access token")
        if self._max_rate_per_s is not None:
            self._window.append(now)
            while self._window[0] <= now - THROUGHPUT_WINDOW_S:
                self._window.popleft()
            if len(self._window) > self._max_rate_per_s:
                return error_reply(130429, "Throughput limit of this phone number exceeded")
        return None

    def _unfaulted(self, phone_number_id: str, send: SendRequest, now: float) -> Reply:
        """No terminal rule fired: 131056 inside the pair interval, else accept."""
        last = self._last_accept.get(send.digits)
        interval_s = self._pair_interval_s
        if interval_s is not None and last is not None and now - last < interval_s:
            return error_reply(131056, "Too many messages sent to this recipient")
        return self._accept(phone_number_id, send, now)

    def _faulted(
        self, phone_number_id: str, send: SendRequest, now: float, rule: FaultRule
    ) -> Reply:
        """The answer a terminal rule scripts: hang, reset, HTML, empty body or an error code."""
        if rule.hang_s is not None or rule.reset:
            if rule.after_accept:
                self._accept(phone_number_id, send, now)
            action: Literal["hang", "reset"] = "hang" if rule.hang_s is not None else "reset"
            return Reply(action=action, hang_s=rule.hang_s or 0.0)
        if rule.html:
            if rule.after_accept:  # a gateway lost Meta's answer to an accepted send
                self._accept(phone_number_id, send, now)
            return html_reply(rule.http_status or DEFAULT_HTML_STATUS)
        if rule.empty:
            return Reply(status=rule.http_status or DEFAULT_EMPTY_STATUS, content_type=None)
        assert rule.code is not None  # a terminal rule without hang/reset/html/empty
        return error_reply(rule.code, "Injected by a sandbox fault rule", rule.http_status)

    def _accept(self, phone_number_id: str, send: SendRequest, now: float) -> Reply:
        wamid = f"wamid.SBX{next(_wamid_seq):010d}{secrets.token_hex(8)}"
        message = AcceptedMessage(
            wamid=wamid,
            to=send.digits,
            phone_number_id=phone_number_id,
            template_name=send.template_name,
            language=send.language,
            components=send.components,
            biz_opaque_callback_data=send.callback_data,
            accepted_at=time.time(),
        )
        self._accepted.append(message)
        self._stats["accepted"] += 1
        self._last_accept[send.digits] = now
        # One RNG per message, from the seed, the number and its sends so far: the same sends
        # get the same fates whatever the interleaving of other numbers.
        nth = self._accepts_per_number[send.digits]
        self._accepts_per_number[send.digits] += 1
        rng = random.Random(f"{self._seed}:{send.digits}:{nth}")
        decision = self._delivery_rules.decide(send.digits, send.template_name, rng)
        config = self.webhooks.config
        if config.enabled:
            self.webhooks.schedule_statuses(plan(message, decision, config, rng))
        status = "held_for_quality_assessment" if decision.held else "accepted"
        return json_reply(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": send.to, "wa_id": send.digits}],
                "messages": [{"id": wamid, "message_status": status}],
            },
        )

    # -- control endpoints -----------------------------------------------------------------

    def _list_messages(self, body: bytes) -> Reply:
        return json_reply(200, {"messages": [m.to_dict() for m in self.accepted()]})

    def _show_stats(self, body: bytes) -> Reply:
        return json_reply(200, self.stats())

    def _reset(self, body: bytes) -> Reply:
        self.reset()
        return json_reply(200, {"reset": True})

    def _replace_rules(self, body: bytes) -> Reply:
        try:
            payload = json.loads(body)
            raw_rules = payload["rules"] if isinstance(payload, dict) else None
            if not isinstance(raw_rules, list):
                raise ValueError('expected {"rules": [...]}')
            rules = [FaultRule.from_dict(r) for r in raw_rules]
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            return error_reply(100, f"Bad rules: {exc}")
        self.set_rules(rules)
        return json_reply(200, {"rules": len(rules)})
