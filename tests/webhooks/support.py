"""Building the receiver on in-memory queues, and Meta-shaped signed bodies."""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.exceptions import StarletteDeprecationWarning

from campaigns.domain.errors import QueueUnavailable
from campaigns.settings import Settings, load_settings
from webhooks.signature import sign

with warnings.catch_warnings():
    # Starlette 1.10 would rather have httpx2 than the pinned httpx; the client works the same.
    warnings.filterwarnings("ignore", "Using `httpx`", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

__all__ = ["TestClient"]

APP_SECRET = "app-secret-4c1d9e"
VERIFY_TOKEN = "verify-token-8b2f"
PATH = "/webhooks/whatsapp"
WAMID = "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSQTE="
PHONE = "919876543210"


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "meta_app_secret": APP_SECRET,
        "meta_webhook_verify_token": VERIFY_TOKEN,
    }
    return load_settings(**(values | overrides))


def status(n: int, state: str = "delivered", padding: int = 0) -> dict[str, Any]:
    return {
        "id": f"{WAMID}-{n}",
        "status": state,
        "timestamp": str(1_767_000_000 + n),
        "recipient_id": PHONE,
        "biz_opaque_callback_data": f"cmp-{n}:{PHONE}" + "x" * padding,
    }


def statuses_payload(*changes: list[dict[str, Any]], entries: int = 1) -> dict[str, Any]:
    """``entries`` entries, each with one ``messages`` change per list of statuses."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": f"WABA-{e}",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"phone_number_id": "106540352242922"},
                            "statuses": copy.deepcopy(items),
                        },
                    }
                    for items in changes
                ],
            }
            for e in range(entries)
        ],
    }


def encoded(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": sign(secret, body), "Content-Type": "application/json"}


@dataclass
class DownQueue:
    """A receipts queue SQS will not take anything into."""

    calls: list[Sequence[str]] = field(default_factory=list)

    def send(self, bodies: Sequence[str], delay_s: int = 0) -> int:
        self.calls.append(bodies)
        raise QueueUnavailable("SQS SendMessageBatch failed: ServiceUnavailable", "503")

    def depth(self) -> tuple[int, int]:
        raise QueueUnavailable("SQS GetQueueAttributes failed: ServiceUnavailable", "503")
