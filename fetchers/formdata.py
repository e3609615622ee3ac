"""``multipart/form-data`` as batch requests carry it: a body built from parts, and an answer
read part by part while it streams in.

The answer is parsed here, push-style: each read's bytes are searched for the next delimiter
and a part's body is kept as views of the bytes read, joined once when the part is complete
(one copy of its bytes, whatever the read sizes), so a part is whole as soon as its closing
delimiter and the two bytes after it are in, whatever follows it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from email.message import Message

READ_SIZE = 1024 * 1024
"""Bytes asked of the socket per read: as much as has arrived, up to this."""

MAX_PART_HEADERS = 256
"""Headers one part may have: the operation's four, the disposition and the object's metadata
(one header each; objectstore sets no limit of its own, its HTTP server takes 100 a request)."""

MAX_HEADER_LINE = 64 * 1024
"""Bytes one header line of a part may have: as many as a single GET's HTTP client takes."""

MAX_PREAMBLE = 64 * 1024
"""Bytes a body may carry before its first delimiter."""


class FormDataError(ValueError):
    """The body is not well-formed ``multipart/form-data``, or it ended before its last part."""


@dataclass(frozen=True)
class Part:
    """One part: its headers (names in lower case, the last of a repeated name) and its body.

    ``too_large`` is the size of a body over the parser's ``max_body``, which is not kept (the
    part's ``body`` is then empty); 0 otherwise."""

    headers: Mapping[str, str]
    body: bytes
    too_large: int = 0


def new_boundary() -> str:
    """A boundary no body of random bytes will contain by chance (128 random bits)."""
    return f"snapcompare-{secrets.token_hex(16)}"


def content_type(boundary: str) -> str:
    """The ``Content-Type`` of a body whose parts are separated by ``boundary``."""
    return f'multipart/form-data; boundary="{boundary}"'


def boundary_of(content_type_header: str | None) -> str | None:
    """The boundary a ``multipart/form-data`` ``Content-Type`` names (quoted or not), else None."""
    if not content_type_header:
        return None
    message = Message()
    message["content-type"] = content_type_header
    if message.get_content_type() != "multipart/form-data":
        return None
    boundary = message.get_param("boundary")
    return boundary if isinstance(boundary, str) and boundary else None


def encode(parts: Iterable[tuple[Mapping[str, str], bytes]], boundary: str) -> bytes:
    """A body of ``(headers, body)`` parts; each gets ``content-disposition: form-data;
    name="part"``, as the objectstore clients send it. Header values must be visible ASCII."""
    chunks: list[bytes] = []
    for headers, body in parts:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        chunks += [f'--{boundary}\r\ncontent-disposition: form-data; name="part"\r\n{head}\r\n'.encode("ascii"),
                   body, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(chunks)


def parts(read: Callable[[int], bytes], boundary: str, *, max_body: int | None = None) -> Iterator[Part]:
    """Yield each part of the body that ``read(size)`` returns (as much as has arrived, up to
    ``size``; ``b""`` at its end) as soon as the part is complete. Every part must have a
    ``content-disposition: form-data`` header, as objectstore's server writes on each. A body
    over ``max_body`` bytes is read past, not kept (see `Part.too_large`).

    Raises `FormDataError` for a malformed body or one that ends before its closing boundary;
    the exceptions of ``read`` pass through.
    """
    parser = _Parser(boundary.encode("latin-1"), max_body)
    while chunk := read(READ_SIZE):
        yield from parser.feed(chunk)
    if not parser.done:
        raise FormDataError("the multipart body ended before its closing boundary")


_PREAMBLE, _HEADERS, _BODY, _DONE = range(4)


class _Parser:
    """The state of one answer's parse: `feed` takes each read's bytes, yields the parts completed."""

    def __init__(self, boundary: bytes, max_body: int | None = None) -> None:
        if not boundary or b"\r" in boundary or b"\n" in boundary:
            raise FormDataError("malformed multipart body: invalid boundary")
        self._delimiter = b"\r\n--" + boundary
        self._max_body = max_body
        self._body_size = 0
        self._state = _PREAMBLE
        self._carry = b""  # bytes read but not yet placed: a partial line or delimiter
        self._preamble = 0
        self._headers: dict[str, str] = {}
        self._header_count = 0
        self._body: list[bytes | memoryview] = []

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def feed(self, chunk: bytes) -> Iterator[Part]:
        if self._state == _DONE:
            return  # an epilogue, ignored
        carry, self._carry = self._carry, b""
        reach = len(self._delimiter) + 2  # a delimiter and the two bytes that say what follows
        if not carry:
            data, start = chunk, 0
        elif self._state != _BODY or len(chunk) < reach:
            data, start = carry + chunk, 0
        else:
            # Inside a body, the carry is a possible start of the delimiter (a few bytes):
            # decide on it with the chunk's first bytes, rather than copy the whole chunk.
            probe = carry + chunk[:reach]
            at = probe.find(self._delimiter)
            if at == -1 or at >= len(carry):
                self._keep(carry)
                data, start = chunk, 0
            else:
                if at:
                    self._keep(carry[:at])
                yield from self._delimited(probe, at)
                if self._state == _DONE:
                    return
                data, start = chunk, at + reach - len(carry)
        yield from self._run(data, start)

    def _run(self, data: bytes, pos: int) -> Iterator[Part]:
        view = memoryview(data)
        delimiter = self._delimiter
        size = len(data)
        while pos < size:
            state = self._state
            if state == _BODY:
                at = data.find(delimiter, pos)
                if at == -1:
                    # Keep back what may be the start of a delimiter cut off by the read.
                    keep = data.rfind(b"\r", max(pos, size - len(delimiter) + 1))
                    if keep != -1 and delimiter.startswith(data[keep:]):
                        if keep > pos:
                            self._keep(view[pos:keep])
                        self._carry = data[keep:]
                    else:
                        self._keep(view[pos:] if pos else data)
                    return
                if at > pos:
                    self._keep(view[pos:at])
                if at + len(delimiter) + 2 > size:
                    self._carry = data[at:]  # what follows the delimiter is not in yet
                    return
                yield from self._delimited(data, at)
                pos = at + len(delimiter) + 2
            elif state == _HEADERS:
                end = data.find(b"\r\n", pos)
                if end == -1:
                    if size - pos > MAX_HEADER_LINE + 1:  # the line, and the CR of its CRLF
                        raise FormDataError("malformed multipart body: a part's header line is too long")
                    self._carry = data[pos:]
                    return
                if end == pos:
                    self._end_headers()
                else:
                    self._header(data[pos:end])
                pos = end + 2
            elif state == _PREAMBLE:
                opening = delimiter[2:]
                at = data.find(opening, pos)
                if at == -1 or at + len(opening) + 2 > size:
                    # Keep what may be the opening and, for the check below, the two bytes
                    # before it.
                    keep = max(pos, size - len(opening) - 3) if at == -1 else max(pos, at - 2)
                    self._preamble += keep - pos
                    if self._preamble > MAX_PREAMBLE:
                        raise FormDataError("malformed multipart body: no boundary where the body starts")
                    self._carry = data[keep:]
                    return
                if at and (at < 2 or data[at - 2:at] != b"\r\n"):
                    raise FormDataError("malformed multipart body: unexpected bytes in front of the first boundary")
                self._after_delimiter(data[at + len(opening):at + len(opening) + 2])
                pos = at + len(opening) + 2
                if self._state == _DONE:
                    return
            else:
                return

    def _keep(self, piece: bytes | memoryview) -> None:
        """Add ``piece`` to the body being read, unless the body is over ``max_body``: then
        only its size is kept."""
        self._body_size += len(piece)
        if self._max_body is not None and self._body_size > self._max_body:
            self._body.clear()
        else:
            self._body.append(piece)

    def _delimited(self, data: bytes, at: int) -> Iterator[Part]:
        """The delimiter at ``at`` of ``data`` (its two following bytes included) ends the part
        being read: yield it, and go on to the next part's headers or to the end."""
        body, self._body = self._body, []
        size, self._body_size = self._body_size, 0
        headers, self._headers = self._headers, {}
        self._header_count = 0
        tail = data[at + len(self._delimiter):at + len(self._delimiter) + 2]
        self._after_delimiter(tail)
        too_large = size if self._max_body is not None and size > self._max_body else 0
        yield Part(headers, b"".join(body), too_large)

    def _after_delimiter(self, tail: bytes) -> None:
        if tail == b"\r\n":
            self._state = _HEADERS
        elif tail == b"--":
            self._state = _DONE
        else:
            raise FormDataError("malformed multipart body: unexpected bytes after a boundary")

    def _header(self, line: bytes) -> None:
        if len(line) > MAX_HEADER_LINE:
            raise FormDataError("malformed multipart body: a part's header line is too long")
        self._header_count += 1
        if self._header_count > MAX_PART_HEADERS:
            raise FormDataError(f"malformed multipart body: a part has more than {MAX_PART_HEADERS} headers")
        text = line.decode("latin-1")
        name, colon, value = text.partition(":")
        name = name.strip()
        if not colon or not name or name != name.split()[0] or "\n" in text:
            raise FormDataError("malformed multipart body: a part's header line is malformed")
        self._headers[name.lower()] = value.strip(" \t")

    def _end_headers(self) -> None:
        disposition = self._headers.get("content-disposition", "")
        if disposition.split(";", 1)[0].strip().lower() != "form-data":
            raise FormDataError("malformed multipart body: a part has no content-disposition: form-data")
        self._state = _BODY
