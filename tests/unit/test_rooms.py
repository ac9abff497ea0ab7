"""The rooms and what each may import (docs/architecture.md, "Rooms and what they import").

Ruff's banned-API rule (TID251) keeps boto3, botocore, requests and the adapter packages out of
the core; this test checks the whole table, room by room, on every module's import statements
(read with ``ast``, nothing imported), so a new dependency between rooms is a decision written
here, not an accident.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("campaigns", "consumer", "producer", "api", "webhooks", "sandbox")

SHARED = {"campaigns.domain", "campaigns.settings", "campaigns.logging"}
CORE = SHARED | {"campaigns.ports"}
# room -> the other rooms it may import
ALLOWED: dict[str, set[str]] = {
    "campaigns.domain": set(),
    "campaigns.settings": {"campaigns.domain"},
    "campaigns.logging": {"campaigns.domain"},
    "campaigns.ports": {"campaigns.domain"},
    "campaigns.engine": CORE,
    "campaigns.operator": CORE | {"campaigns.engine"},
    "campaigns.memory": CORE,
    "campaigns.aws": CORE,
    "campaigns.meta": CORE,
    # The composition root: the one place where the ports meet the adapters.
    "campaigns.wiring": CORE
    | {"campaigns.engine", "campaigns.operator", "campaigns.aws", "campaigns.meta"},
    "consumer": CORE | {"campaigns.engine", "campaigns.wiring"},
    "producer": CORE | {"campaigns.operator", "campaigns.wiring"},
    # Serving an ASGI app with uvicorn (the socket, the ready file, the signals): shared by
    # the HTTP services, knowing none of them.
    "campaigns.web": SHARED,
    # The HTTP front-end of the operator core, and its console: the CLI's twin.
    "api": CORE | {"campaigns.operator", "campaigns.wiring", "campaigns.web"},
    # Meta's webhooks: verified, then queued for the consumer (campaign-webhooks).
    "webhooks": CORE | {"campaigns.wiring", "campaigns.web"},
}
# Third-party packages only an adapter room may import (besides sandbox/, bench/ and tests/).
ADAPTER_ONLY = {
    "boto3": {"campaigns.aws", "campaigns.wiring"},
    "botocore": {"campaigns.aws"},
    "tenacity": {"campaigns.aws"},
    "requests": {"campaigns.meta"},
    "urllib3": {"campaigns.meta"},
    # The HTTP stack serves the operator API and the webhook receiver; the terminal views are
    # the CLI's.
    "fastapi": {"api", "webhooks"},
    "starlette": {"api", "webhooks", "campaigns.web"},
    "uvicorn": {"api", "webhooks", "campaigns.web"},
    "multipart": {"api"},
    "python_multipart": {"api"},
    "jinja2": {"api"},
    "rich": {"producer"},
}


def room_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "campaigns" and len(parts) > 1 else parts[0]


def imports_of(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "campaigns":  # from campaigns import logging
                yield from (f"campaigns.{alias.name}" for alias in node.names)
            else:
                yield node.module


def modules() -> Iterator[tuple[str, Path]]:
    for top in ("campaigns", "consumer", "producer", "api", "webhooks"):
        for path in sorted((ROOT / top).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            if module != "campaigns.__init__":
                yield module, path


def test_every_module_belongs_to_a_declared_room() -> None:
    unknown = {room_of(m) for m in MODULES} - set(ALLOWED)
    assert not unknown, f"rooms missing from the table: {sorted(unknown)}"


MODULES = dict(modules())


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_module_imports_only_what_its_room_may(module: str) -> None:
    room = room_of(module)
    broken = []
    for imported in imports_of(MODULES[module]):
        top = imported.split(".")[0]
        if top in OURS:
            target = room_of(imported)
            if target != room and target not in ALLOWED[room]:
                broken.append(imported)
        elif top in ADAPTER_ONLY and room not in ADAPTER_ONLY[top]:
            broken.append(imported)
    assert not broken, f"{module} ({room}) may not import {broken}"


def test_the_table_is_layered_without_cycles() -> None:
    seen: set[str] = set()
    done: set[str] = set()

    def visit(room: str, path: list[str]) -> None:
        assert room not in seen - done, f"cycle: {' -> '.join([*path, room])}"
        if room in done:
            return
        seen.add(room)
        for target in sorted(ALLOWED.get(room, set())):
            visit(target, [*path, room])
        done.add(room)

    for room in sorted(ALLOWED):
        visit(room, [])
