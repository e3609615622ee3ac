"""``multipart/form-data`` as batch requests carry it: a body built from parts, and an answer
read part by part while it streams in.

Parsing is `multipart`'s push parser (`multipart.PushMultipartParser`): it is fed whatever the
socket has and emits a part's headers, its body in slices and its end as they arrive, so a
part is whole as soon as its closing boundary is in, whatever follows it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from email.message import Message

from multipart import MultipartError, MultipartSegment, PushMultipartParser

READ_SIZE = 256 * 1024
"""Bytes asked of the socket per read: as much as has arrived, up to this."""

MAX_PART_HEADERS = 64
"""Headers one part may have: the operation's four, the disposition and the object's metadata."""


class FormDataError(ValueError):
    """The body is not well-formed ``multipart/form-data``, or it ended before its last part."""


@dataclass(frozen=True)
class Part:
    """One part: its headers (names in lower case, the last of a repeated name) and its body."""

    headers: Mapping[str, str]
    body: bytes


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


def parts(read: Callable[[int], bytes], boundary: str) -> Iterator[Part]:
    """Yield each part of the body that ``read(size)`` returns (as much as has arrived, up to
    ``size``; ``b""`` at its end) as soon as the part is complete. Every part must have a
    ``content-disposition: form-data`` header, as objectstore's server writes on each.

    Raises `FormDataError` for a malformed body or one that ends before its closing boundary;
    the exceptions of ``read`` pass through.
    """
    parser = PushMultipartParser(boundary, max_header_count=MAX_PART_HEADERS)
    headers: dict[str, str] = {}
    body: list[bytes] = []
    try:
        while chunk := read(READ_SIZE):
            for event in parser.parse(chunk):
                if event is None:
                    yield Part(headers, b"".join(body))
                    headers, body = {}, []
                elif isinstance(event, MultipartSegment):
                    headers = {name.lower(): value for name, value in event.headerlist}
                else:
                    body.append(bytes(event))
    except MultipartError as exc:
        raise FormDataError(f"malformed multipart body: {exc}") from exc
    try:
        parser.close()
    except MultipartError as exc:
        raise FormDataError("the multipart body ended before its closing boundary") from exc
