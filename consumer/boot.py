"""The entry point: catch SIGTERM/SIGINT before the heavy imports, so a container stopped
while still starting exits cleanly (0) instead of dying of the signal."""

from __future__ import annotations

import signal
import sys
from types import FrameType

_early: list[int] = []


def _remember(signum: int, frame: FrameType | None) -> None:
    _early.append(signum)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _remember)
    signal.signal(signal.SIGINT, _remember)
    from consumer.cli import main as run  # noqa: PLC0415 (after the handlers, on purpose)

    return run(argv, early_signals=_early)


if __name__ == "__main__":
    sys.exit(main())
