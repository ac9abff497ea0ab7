"""Who may call the API: an operator key (``Authorization: Bearer <key>``) or the console's
session cookie, one dependency (``operator``) for every ``/api/*`` route but the sign-in.

Keys are compared in constant time against every configured key (their SHA-256 digests, so
the compare does not depend on a key's length either, and never stops at the first match).
The session is stateless: ``ce_session = name.expiry.mac``, signed with a secret derived from
the operator's key (rotating the key ends its sessions). A cookie-authenticated request that
changes state must carry ``X-CSRF-Token``, an HMAC of the cookie value that only a page which
signed in (and so read ``POST /api/session``'s answer) can know; SameSite=Strict already keeps
the cookie off other sites' requests. Keys are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from api.schemas import Failure, Session, SignIn

SESSION_COOKIE = "ce_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SESSION_CONTEXT = b"campaign-api session v1"
_BEARER_HINT = {"WWW-Authenticate": "Bearer"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class Operator:
    name: str
    session: str | None = None  # the cookie value, when signed in through the console


class KeyRing:
    """The configured keys and the session signatures made from them."""

    def __init__(
        self, keys: dict[str, str], session_ttl_s: int, now: Callable[[], float] = time.time
    ) -> None:
        self._digests = [(name, _digest(key)) for name, key in keys.items()]
        self._secrets = {
            name: hmac.new(key.encode(), _SESSION_CONTEXT, hashlib.sha256).digest()
            for name, key in keys.items()
        }
        self.session_ttl_s = session_ttl_s
        self._now = now

    def match(self, presented: str) -> str | None:
        """The name of the operator whose key this is; every key is compared."""
        wanted = _digest(presented)
        found = None
        for name, digest in self._digests:
            if hmac.compare_digest(wanted, digest):
                found = name
        return found

    def _mac(self, name: str, text: str) -> str:
        return _b64(hmac.new(self._secrets[name], text.encode(), hashlib.sha256).digest())

    def sign(self, name: str) -> str:
        expiry = int(self._now()) + self.session_ttl_s
        return f"{name}.{expiry}.{self._mac(name, f'{name}.{expiry}')}"

    def verify(self, cookie: str) -> str | None:
        """The operator signed in by this cookie, if it is ours, unexpired and still keyed."""
        name, _, rest = cookie.partition(".")
        expiry, _, mac = rest.partition(".")
        if name not in self._secrets or not expiry.isdigit() or int(expiry) <= self._now():
            return None
        expected = self._mac(name, f"{name}.{expiry}")
        return name if hmac.compare_digest(mac.encode(), expected.encode()) else None

    def csrf(self, cookie: str) -> str:
        name = cookie.partition(".")[0]
        return self._mac(name, f"csrf:{cookie}")

    def csrf_ok(self, cookie: str, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(
            presented.encode(), self.csrf(cookie).encode()
        )


def keyring(request: Request) -> KeyRing:
    ring: KeyRing = request.app.state.keyring
    return ring


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers=_BEARER_HINT)


def operator(request: Request) -> Operator:
    """The dependency: the bearer key if one is sent (it wins), else the session cookie."""
    ring = keyring(request)
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, credential = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise _unauthorized("use Authorization: Bearer <operator key>")
        name = ring.match(credential.strip())
        if name is None:
            raise _unauthorized("invalid operator key")
        return _remember(request, Operator(name))
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        name = ring.verify(cookie)
        if name is None:
            raise _unauthorized("session expired or invalid: sign in again")
        if request.method in UNSAFE_METHODS and not ring.csrf_ok(
            cookie, request.headers.get(CSRF_HEADER)
        ):
            request.state.operator = name
            raise HTTPException(403, "missing or bad CSRF token")
        return _remember(request, Operator(name, session=cookie))
    raise _unauthorized("an operator key is required (Authorization: Bearer <key>)")


def _remember(request: Request, who: Operator) -> Operator:
    request.state.operator = who.name  # for the audit line
    return who


Signed = Annotated[Operator, Depends(operator)]


# -- the console's session --------------------------------------------------------------------

router = APIRouter(prefix="/api/session", tags=["session"])
REFUSED: dict[int | str, dict[str, Any]] = {401: {"model": Failure}, 403: {"model": Failure}}


@router.post(
    "",
    name="session.create",
    response_model=Session,
    responses=REFUSED,
)
def sign_in(body: SignIn, request: Request, response: Response) -> Session:
    """Trade an operator key for a session cookie (``HttpOnly``, ``SameSite=Strict``) and the
    CSRF token the page sends back in ``X-CSRF-Token``."""
    ring = keyring(request)
    name = ring.match(body.key)
    if name is None:
        raise _unauthorized("invalid operator key")
    request.state.operator = name
    cookie = ring.sign(name)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=ring.session_ttl_s,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return Session(operator=name, csrf_token=ring.csrf(cookie))


@router.get("", name="session.show", response_model=Session, responses=REFUSED)
def show(request: Request, who: Signed) -> Session:
    """Who is signed in (and the session's CSRF token; null for a bearer key)."""
    token = keyring(request).csrf(who.session) if who.session else None
    return Session(operator=who.name, csrf_token=token)


@router.delete("", name="session.delete", response_model=Session, responses=REFUSED)
def sign_out(request: Request, response: Response, who: Signed) -> Session:
    """Clear the cookie (a cookie-authenticated call: it needs ``X-CSRF-Token``). Sessions are
    stateless: a copy of the cookie stays valid until it expires or the key is rotated."""
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return Session(operator=who.name, csrf_token=None)
