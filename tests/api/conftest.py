from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.support import Api, build_api
from tests.unit.producer_support import own_environment  # noqa: F401 (autouse)


@pytest.fixture
def api() -> Iterator[Api]:
    running = build_api()
    with running.client:
        yield running
