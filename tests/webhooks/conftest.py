from __future__ import annotations

from collections.abc import Iterator

import pytest

from campaigns.memory import MemoryQueue
from tests.unit.producer_support import own_environment  # noqa: F401 (autouse)
from tests.webhooks.support import TestClient, settings
from webhooks.app import create_app, create_metrics_app
from webhooks.metrics import WebhookMetrics


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
