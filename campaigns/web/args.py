"""The command line the two HTTP services (``campaign-api``, ``campaign-webhooks``) share: a
usage error is one line and exit 64, ``--host``, ``--ready-file``, and port numbers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from campaigns.domain.exitcodes import EXIT_USAGE

MAX_PORT = 65535


class ServiceParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line naming the problem, not argparse's usage dump.
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def port_number(text: str) -> int:
    if not text.isdigit() or int(text) > MAX_PORT:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return int(text)


def service_parser(prog: str, description: str) -> ServiceParser:
    """The parser with the options every service has; the caller adds its ports."""
    parser = ServiceParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--ready-file", type=Path, help='write {"url": ...} here once listening')
    return parser
