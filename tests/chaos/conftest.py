from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.stack import LocalStack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The chaos suite's own stack: its emulator seed fixes the fault sequence."""
    with LocalStack(tmp_path_factory.mktemp("chaos-stack"), seed=11) as running:
        yield running
