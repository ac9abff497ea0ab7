"""The CSV upload: a ``multipart/form-data`` body streamed through python-multipart's parser
into a temporary file, chunk by chunk (never the whole body in memory), its ``file`` field
only. The body may be ``API_MAX_UPLOAD_BYTES`` long: a larger ``Content-Length`` is refused
before a byte is read, and a body without one (chunked) as soon as it crosses the limit."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from fastapi import HTTPException, Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FIELD = "file"
DEFAULT_FILENAME = "upload.csv"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]")
# The schema /openapi.json shows for the body (the route reads the stream itself).
REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FIELD],
                    "properties": {FIELD: {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


def too_large(limit_bytes: int) -> HTTPException:
    return HTTPException(413, f"upload too large: the limit is {limit_bytes} bytes")


def _bad(message: str) -> HTTPException:
    return HTTPException(400, message)


@dataclass
class _FilePart:
    """The parser's callbacks: the first part named ``file`` goes to ``path``; other parts are
    read past and dropped."""

    path: Path
    filename: str = DEFAULT_FILENAME
    done: bool = False
    ended: bool = False
    _header: bytearray = field(default_factory=bytearray)
    _value: bytearray = field(default_factory=bytearray)
    _disposition: bytes = b""
    _out: IO[bytes] | None = None

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self._disposition = b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header.extend(data[start:end])

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value.extend(data[start:end])

    def _header_end(self) -> None:
        if bytes(self._header).lower() == b"content-disposition":
            self._disposition = bytes(self._value)
        self._header.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if options.get(b"name") == FIELD.encode() and not self.done and self._out is None:
            name = options.get(b"filename", b"").decode("utf-8", "replace")
            cleaned = _SAFE_NAME.sub("_", Path(name.replace("\\", "/")).name).strip()
            self.filename = cleaned or DEFAULT_FILENAME
            self._out = self.path.open("wb")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._out is not None:
            self._out.write(data[start:end])

    def _part_end(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
            self.done = True

    def _end(self) -> None:
        self.ended = True

    def close(self) -> None:
        if self._out is not None:
            self._out.close()


def _check_headers(request: Request, limit_bytes: int) -> bytes:
    """Refuse on the headers alone, before a byte of the body is read; return the boundary."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise _bad("malformed Content-Length")
        if int(declared) > limit_bytes:
            raise too_large(limit_bytes)
    kind, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise _bad(f"expected a multipart/form-data body with a {FIELD!r} field")
    return boundary


async def receive_csv(request: Request, limit_bytes: int, directory: Path) -> tuple[Path, str]:
    """Store the upload's ``file`` field in ``directory``; return its path and the client's
    (sanitised) file name, for messages."""
    boundary = _check_headers(request, limit_bytes)
    part = _FilePart(directory / DEFAULT_FILENAME)
    parser = MultipartParser(boundary, part.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit_bytes:
                raise too_large(limit_bytes)
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError:
        raise _bad("malformed multipart body") from None
    except ClientDisconnect:
        raise _bad("the upload was interrupted") from None
    finally:
        part.close()
    if not part.ended:
        raise _bad("incomplete multipart body")
    if not part.done:
        raise _bad(f"the multipart body has no {FIELD!r} field")
    return part.path, part.filename
