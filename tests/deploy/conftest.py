"""Fixtures for the deployment checks: the external tools (the tools virtualenv, kubectl,
promtool, prometheus), each skipped with a reason saying how to get it when absent. The
local stack and the harness come from tests/conftest.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.deploy.support import TOOLS_BIN


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
