from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.stack import LocalStack
from tests.harness import Harness


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("chaos-stack"), seed=11) as running:
        yield running


@pytest.fixture
def harness(stack: LocalStack, tmp_path: Path) -> Iterator[Harness]:
    running = Harness(stack, tmp_path)
    yield running
    running.stop()
