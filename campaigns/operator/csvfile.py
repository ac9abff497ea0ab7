"""Reading the recipients CSV: one phone per line, or a header row with a ``phone`` column
(other columns become per-recipient template parameters). Streams; never loads the file."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from campaigns.domain.errors import InvalidInput
from campaigns.domain.models import TemplateParam

MAX_FIELD_CHARS = 1024  # a template parameter longer than this is not a parameter
_SURROGATE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of a non-UTF-8 byte


class FileProblem(InvalidInput):
    """The file cannot be used at all (missing, empty, not CSV): nothing is written."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


@dataclass(frozen=True)
class Row:
    line: int  # 1-based physical line where the row starts
    phone: str  # as written in the file
    params: tuple[TemplateParam, ...] = ()


@dataclass(frozen=True)
class Layout:
    header: tuple[str, ...] | None  # None: one phone per line
    phone_index: int = 0


def _open(path: Path) -> io.TextIOWrapper:
    if not path.exists():
        raise FileProblem(f"File not found: {path}", missing=True)
    if path.is_dir():
        raise FileProblem(f"Not a file: {path}", missing=True)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise FileProblem(f"Cannot read {path}: {exc.strerror}", missing=True) from None
    # Undecodable bytes become lone surrogates, found row by row: the error names their line
    # (a strict decoder fails a whole read-ahead chunk, hundreds of lines early).
    return io.TextIOWrapper(handle, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _undecodable(fields: list[str]) -> bool:
    return any(_SURROGATE.search(field) for field in fields)


def _layout(first: list[str], path: Path) -> Layout:
    names = [cell.strip() for cell in first]
    lowered = [name.lower() for name in names]
    if "phone" not in lowered:
        return Layout(header=None)
    if any(not name for name in names):
        raise FileProblem(f"{path}: line 1: header has an empty column name")
    if len(set(lowered)) != len(lowered):
        raise FileProblem(f"{path}: line 1: header repeats a column name")
    return Layout(header=tuple(names), phone_index=lowered.index("phone"))


def iter_rows(path: Path) -> Iterator[Row]:
    """Yield rows; raise ``FileProblem`` (naming the line) on anything that is not a usable
    recipients CSV. Run it once to validate before writing anything."""
    with _open(path) as text:
        reader = csv.reader(text, strict=True)
        layout: Layout | None = None
        rows = 0
        end = 0  # last physical line read: a row starts on the line after the previous one
        try:
            for fields in reader:
                line, end = end + 1, reader.line_num
                if _undecodable(fields):
                    raise FileProblem(f"{path}: line {line}: not UTF-8 text")
                if not fields or all(not f.strip() for f in fields):
                    continue  # blank line
                if layout is None:
                    layout = _layout(fields, path)
                    if layout.header is not None:
                        continue
                row = _row(fields, line, layout, path)
                rows += 1
                yield row
        except csv.Error as exc:
            raise FileProblem(f"{path}: line {reader.line_num}: malformed CSV ({exc})") from None
        if layout is None:
            raise FileProblem(f"{path}: file is empty")
        if rows == 0:
            raise FileProblem(f"{path}: no recipient rows after the header")


def _row(fields: list[str], line: int, layout: Layout, path: Path) -> Row:
    if layout.header is None:
        values = [f for f in fields if f.strip()]
        if len(values) != 1:
            raise FileProblem(
                f"{path}: line {line}: expected one phone per line "
                "(or a header row with a 'phone' column)"
            )
        return Row(line=line, phone=values[0])
    if len(fields) != len(layout.header):
        raise FileProblem(
            f"{path}: line {line}: expected {len(layout.header)} fields, found {len(fields)}"
        )
    params = []
    for index, (name, value) in enumerate(zip(layout.header, fields, strict=True)):
        if index == layout.phone_index:
            continue
        if len(value) > MAX_FIELD_CHARS:
            raise FileProblem(f"{path}: line {line}: column {name!r} is too long")
        params.append(TemplateParam(name=name, value=value.strip()))
    return Row(line=line, phone=fields[layout.phone_index], params=tuple(params))


def validate(path: Path) -> int:
    """Read the whole file once without writing anything; return the number of rows."""
    return sum(1 for _ in iter_rows(path))
