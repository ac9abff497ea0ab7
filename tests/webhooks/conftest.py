from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from campaigns.memory import MemoryQueue
from tests.unit.producer_support import SETTINGS_VARIABLES
from tests.webhooks.support import TestClient, settings
from webhooks.app import create_app, create_metrics_app
from webhooks.metrics import WebhookMetrics


@pytest.fixture(autouse=True)
def _own_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No host variable reaches the settings; structlog's config is restored after."""
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def queue() -> MemoryQueue:
    return MemoryQueue()


@pytest.fixture
def metrics() -> WebhookMetrics:
    return WebhookMetrics()


@pytest.fixture
def client(queue: MemoryQueue, metrics: WebhookMetrics) -> Iterator[TestClient]:
    with TestClient(create_app(settings(), lambda: queue, metrics)) as http:
        yield http


@pytest.fixture
def metrics_client(metrics: WebhookMetrics) -> Iterator[TestClient]:
    with TestClient(create_metrics_app(metrics)) as http:
        yield http
