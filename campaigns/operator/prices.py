"""Reading the operator's price table (``PRICES_FILE``) for ``status``'s estimated cost."""

from __future__ import annotations

from pathlib import Path

from campaigns.domain.errors import ConfigError
from campaigns.domain.pricing import PriceTable, parse_prices

MAX_PRICES_FILE_BYTES = 1 << 20  # a rate card is a few hundred rows; 1 MiB is far beyond it


def load_prices(path: Path) -> PriceTable:
    """The table in ``path``; ``ConfigError`` (one line naming PRICES_FILE) when it cannot
    be read or is not a price table."""
    source = f"PRICES_FILE {path}"
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_PRICES_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_PRICES_FILE_BYTES:
        raise ConfigError(f"{source}: larger than {MAX_PRICES_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text") from None
    return parse_prices(text.splitlines(), source)
