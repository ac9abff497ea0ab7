"""Nobody gets in without a key: the bearer key, the console's session cookie and its CSRF
token, and the few anonymous routes. Keys never reach a log line."""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest
from structlog.testing import capture_logs

from api.auth import CSRF_HEADER, SESSION_COOKIE, KeyRing
from tests.api.support import CREATE, KEYS, Api, build_api, error_of

SOME_ID = "cmp_00000000-0000-4000-8000-000000000000"
PROTECTED = [
    ("GET", "/api/campaigns"),
    ("GET", f"/api/campaigns/{SOME_ID}"),
    ("GET", f"/api/campaigns/{SOME_ID}/recipients"),
    ("GET", f"/api/campaigns/{SOME_ID}/recipients.csv"),
    ("POST", "/api/campaigns/create"),
    ("POST", f"/api/campaigns/{SOME_ID}/populate"),
    ("POST", f"/api/campaigns/{SOME_ID}/control"),
    ("POST", f"/api/campaigns/{SOME_ID}/execute-batch"),
    ("POST", f"/api/campaigns/{SOME_ID}/enqueue"),
    ("POST", f"/api/campaigns/{SOME_ID}/reconcile"),
    ("POST", f"/api/campaigns/{SOME_ID}/requeue-unknown"),
    ("GET", "/api/session"),
    ("DELETE", "/api/session"),
    ("GET", "/metrics"),
]
WRONG = [
    {},
    {"Authorization": "Bearer not-a-key"},
    {"Authorization": f"Bearer {KEYS['alice']}x"},
    {"Authorization": "Bearer "},
    {"X-Api-Key": KEYS["alice"]},
    {"Authorization": KEYS["alice"]},
    {"Authorization": f"Basic {KEYS['alice']}"},
    {"Authorization": f"Token {KEYS['alice']}"},
]


def test_every_api_route_is_listed_here(api: Api) -> None:
    """A new ``/api`` route is protected (and added above) or anonymous on purpose (the
    console's pages and assets are its own)."""
    document = api.call("GET", "/openapi.json", auth=False).json()
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if path.startswith(("/api/", "/metrics"))
    }
    listed = {(method, path.replace(SOME_ID, "{campaign_id}")) for method, path in PROTECTED}
    assert documented - listed == {("POST", "/api/session")}
    assert listed <= documented


def _ids(headers: dict[str, str]) -> str:
    return ",".join(f"{name}={value[:6]}" for name, value in headers.items()) or "none"


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("headers", WRONG, ids=_ids)
def test_no_key_a_wrong_key_or_a_key_in_the_wrong_header_is_401(
    api: Api, method: str, path: str, headers: dict[str, str]
) -> None:
    response = api.call(method, path, auth=False, headers=headers, json=CREATE)
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    error_of(response)
    assert not api.world.store.list_campaigns()


def test_each_operator_s_key_works_and_is_named_in_the_audit(api: Api) -> None:
    with capture_logs() as logs:
        response = api.call(
            "POST",
            "/api/campaigns/create",
            auth=False,
            headers={"Authorization": f"bearer {KEYS['bob']}"},
            json=CREATE,
        )
    assert response.status_code == 200
    assert [log["operator"] for log in logs if log["event"] == "api.audit"] == ["bob"]


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json", "/docs"])
def test_the_health_check_and_the_api_documents_answer_anonymously(api: Api, path: str) -> None:
    assert api.call("GET", path, auth=False).status_code == 200


def sign_in(api: Api, key: str = KEYS["alice"]) -> str:
    """Sign in through the API; return the CSRF token (the cookie stays in the client)."""
    response = api.call("POST", "/api/session", auth=False, json={"key": key})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"success", "operator", "csrfToken"}
    token: str = body["csrfToken"]
    return token


def test_signing_in_sets_a_strict_http_only_session_cookie(api: Api) -> None:
    response = api.call("POST", "/api/session", auth=False, json={"key": KEYS["alice"]})
    assert response.json()["operator"] == "alice"
    cookie = SimpleCookie(response.headers["set-cookie"])[SESSION_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "strict"
    assert cookie["path"] == "/"
    assert cookie["max-age"] == str(8 * 3600)
    assert not cookie["secure"]  # plain http: a Secure cookie would never come back
    assert KEYS["alice"] not in response.headers["set-cookie"]


def test_the_session_cookie_is_secure_over_https() -> None:
    running = build_api()
    running.client.base_url = running.client.base_url.copy_with(scheme="https")
    response = running.call("POST", "/api/session", auth=False, json={"key": KEYS["alice"]})
    assert SimpleCookie(response.headers["set-cookie"])[SESSION_COOKIE]["secure"] is True


def test_a_wrong_key_does_not_sign_in(api: Api) -> None:
    response = api.call("POST", "/api/session", auth=False, json={"key": "guess"})
    assert response.status_code == 401
    assert error_of(response) == "invalid operator key"
    assert "set-cookie" not in response.headers
    assert api.refused("POST", "/api/session", 400, auth=False) == "the body must be a JSON object"


def test_the_session_reads_without_a_csrf_token_and_changes_state_only_with_it(api: Api) -> None:
    token = sign_in(api)
    assert api.ok("GET", "/api/session", auth=False) == {
        "success": True,
        "operator": "alice",
        "csrfToken": token,
    }
    campaign_id = api.ok("POST", "/api/campaigns/create", auth=False, json=CREATE, headers={
        CSRF_HEADER: token
    })["campaignId"]  # fmt: skip
    assert api.ok("GET", f"/api/campaigns/{campaign_id}", auth=False)["campaign"]["name"]
    for headers in ({}, {CSRF_HEADER: ""}, {CSRF_HEADER: token[:-1]}, {"X-CSRF": token}):
        assert (
            api.refused(
                "POST", "/api/campaigns/create", 403, auth=False, json=CREATE, headers=headers
            )
            == "missing or bad CSRF token"
        )
    assert len(api.world.store.list_campaigns()) == 1


def test_a_bearer_key_needs_no_csrf_token_and_gets_none(api: Api) -> None:
    assert api.ok("GET", "/api/session") == {
        "success": True,
        "operator": "alice",
        "csrfToken": None,
    }
    api.create()


def test_signing_out_needs_the_csrf_token_and_clears_the_cookie(api: Api) -> None:
    token = sign_in(api)
    assert api.refused("DELETE", "/api/session", 403, auth=False) == "missing or bad CSRF token"
    response = api.call("DELETE", "/api/session", auth=False, headers={CSRF_HEADER: token})
    assert response.status_code == 200
    cleared = SimpleCookie(response.headers["set-cookie"])[SESSION_COOKIE]
    assert cleared.value in ("", '""')
    assert cleared["max-age"] == "0"
    assert api.refused("GET", "/api/session", 401, auth=False).startswith("an operator key")


def test_a_forged_tampered_or_expired_cookie_is_401(api: Api) -> None:
    sign_in(api)
    real = api.client.cookies[SESSION_COOKIE]
    _, expiry, mac = real.split(".")
    for forged in (
        f"bob.{expiry}.{mac}",
        f"alice.{int(expiry) + 3600}.{mac}",
        f"alice.{expiry}.{mac[:-2]}AA",
        "alice",
        "nobody.1.x",
    ):
        api.client.cookies.set(SESSION_COOKIE, forged)
        assert api.refused("GET", "/api/session", 401, auth=False) == (
            "session expired or invalid: sign in again"
        )


def test_a_session_ends_with_its_ttl_and_with_its_key() -> None:
    clock = [1000.0]
    ring = KeyRing({"alice": "k1"}, session_ttl_s=60, now=lambda: clock[0])
    cookie = ring.sign("alice")
    assert ring.verify(cookie) == "alice"
    clock[0] += 60
    assert ring.verify(cookie) is None
    clock[0] -= 30
    assert KeyRing({"alice": "k2"}, 60, now=lambda: clock[0]).verify(cookie) is None
    assert ring.csrf(cookie) != KeyRing({"alice": "k2"}, 60).csrf(cookie)


def test_a_bearer_key_wins_over_a_session_cookie(api: Api) -> None:
    sign_in(api, KEYS["bob"])
    assert api.ok("GET", "/api/session")["operator"] == "alice"


def test_no_key_ever_reaches_a_log_line(api: Api) -> None:
    with capture_logs() as logs:
        token = sign_in(api)
        api.call("POST", "/api/session", auth=False, json={"key": KEYS["bob"] + "-wrong"})
        api.call("GET", "/api/session", auth=False, headers={"Authorization": "Bearer nope"})
        api.create()
        api.call("POST", "/api/campaigns/create", auth=False, json=CREATE, headers={
            CSRF_HEADER: token
        })  # fmt: skip
        api.call("DELETE", "/api/session", auth=False, headers={CSRF_HEADER: token})
    assert logs
    text = repr(logs)
    for key in KEYS.values():
        assert key not in text
    assert token not in text


def test_cors_is_off(api: Api) -> None:
    origin = {"Origin": "https://elsewhere.example"}
    preflight = api.call("OPTIONS", "/api/campaigns/create", auth=False, headers=origin | {
        "Access-Control-Request-Method": "POST"
    })  # fmt: skip
    assert "access-control-allow-origin" not in preflight.headers
    response = api.call("GET", "/api/session", headers=origin)
    assert "access-control-allow-origin" not in response.headers
