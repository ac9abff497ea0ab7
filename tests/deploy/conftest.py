"""Fixtures for the deployment checks: the embedded local stack (moto + Cloud API emulator
processes), a harness on it, and the external tools (the tools virtualenv, kubectl,
promtool, prometheus), each skipped with a reason saying how to get it when absent."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.stack import LocalStack
from tests.deploy.support import TOOLS_BIN
from tests.harness import Harness


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(tmp_path_factory.mktemp("deploy-stack")) as running:
        yield running


@pytest.fixture
def harness(stack: LocalStack, tmp_path: Path) -> Iterator[Harness]:
    running = Harness(stack, tmp_path)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def tools_bin() -> Path:
    """The checkers' own virtualenv (requirements/tools.txt), built by `make check-deploy`."""
    if not (TOOLS_BIN / "kubernetes-validate").exists():
        pytest.skip(f"{TOOLS_BIN} is missing: `make check-deploy` builds it")
    return TOOLS_BIN


def _executable(name: str, how: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed: {how}")
    return path


@pytest.fixture(scope="session")
def kubectl() -> str:
    return _executable("kubectl", "kubectl's built-in kustomize renders deploy/k8s")


@pytest.fixture(scope="session")
def promtool() -> str:
    return _executable("promtool", "apt-get install prometheus (.ci/run does)")


@pytest.fixture(scope="session")
def prometheus() -> str:
    return _executable("prometheus", "apt-get install prometheus (.ci/run does)")
