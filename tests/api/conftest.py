from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from tests.api.support import Api, build_api
from tests.unit.producer_support import SETTINGS_VARIABLES


@pytest.fixture(autouse=True)
def _own_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No host variable reaches the settings; structlog's config is restored after."""
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def api() -> Iterator[Api]:
    running = build_api()
    with running.client:
        yield running
