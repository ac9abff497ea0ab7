"""The operator API in-process: ``create_app`` on the in-memory world of the CLI's tests
(``tests.unit.producer_support.MemoryWorld``), driven with FastAPI's ``TestClient`` as the old
admin app and the console would."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import StarletteDeprecationWarning

from campaigns.settings import Settings, load_settings
from tests.unit.producer_support import MemoryWorld, national

with warnings.catch_warnings():
    # Starlette 1.10 would rather have httpx2 than the pinned httpx; the client works the same.
    warnings.filterwarnings("ignore", "Using `httpx`", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from api.app import create_app

KEYS = {"alice": "alice-key-7f3e9c1b2a", "bob": "bob-key-0d4c8e6f5a"}
ALICE = {"Authorization": f"Bearer {KEYS['alice']}"}
CREATE = {
    "name": "Diwali offer",
    "templateName": "diwali_offer",
    "channel": "WHATSAPP",
    "audienceType": "CSV",
}


def api_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "operator_api_keys": ",".join(f"{name}:{key}" for name, key in KEYS.items()),
        "meta_access_token": "sandbox-token",
        "meta_phone_number_id": "100000000000001",
    }
    return load_settings(**(values | overrides))


def csv_of(phones: list[str]) -> bytes:
    return "".join(f"{phone}\n" for phone in phones).encode()


@dataclass
class Api:
    """A client on one app and its world, with the operator's habits as methods."""

    client: TestClient
    world: MemoryWorld

    def call(self, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", {}))
        if auth:
            headers = ALICE | headers
        return self.client.request(method, path, headers=headers, **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.call(method, path, **kwargs)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["success"] is True
        return body

    def refused(self, method: str, path: str, status: int, **kwargs: Any) -> str:
        """A call that must fail with ``status``: return its one-line error."""
        response = self.call(method, path, **kwargs)
        assert response.status_code == status, response.text
        return error_of(response)

    def create(self, **fields: Any) -> str:
        campaign_id: str = self.ok("POST", "/api/campaigns/create", json=CREATE | fields)[
            "campaignId"
        ]
        return campaign_id

    def upload(self, campaign_id: str, data: bytes, **kwargs: Any) -> Any:
        files = {"file": ("recipients.csv", data, "text/csv")}
        return self.call("POST", f"/api/campaigns/{campaign_id}/populate", files=files, **kwargs)

    def populated(self, phones: list[str] | None = None) -> str:
        campaign_id = self.create()
        response = self.upload(campaign_id, csv_of(phones or national(2)))
        assert response.status_code == 200, response.text
        return campaign_id

    def control(self, campaign_id: str, action: str) -> Any:
        return self.call("POST", f"/api/campaigns/{campaign_id}/control", json={"action": action})

    def campaign(self, campaign_id: str) -> dict[str, Any]:
        campaign: dict[str, Any] = self.ok("GET", f"/api/campaigns/{campaign_id}")["campaign"]
        return campaign


def error_of(response: Any) -> str:
    """The error body's one line, checked: the shape, one line, no traceback."""
    assert "Traceback" not in response.text
    body = json.loads(response.text)
    assert set(body) == {"success", "error"}, body
    assert body["success"] is False
    error: str = body["error"]
    assert error
    assert "\n" not in error
    return error


def build_api(world: MemoryWorld | None = None, **overrides: Any) -> Api:
    world = world or MemoryWorld()
    app = create_app(api_settings(**overrides), world.build)
    return Api(TestClient(app, raise_server_exceptions=False), world)
