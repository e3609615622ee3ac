"""`fetchers.formdata.parts`: an answer read in pieces of any size gives the same parts, each as
soon as its closing delimiter is in; malformed or cut-off bodies raise `FormDataError`."""

from __future__ import annotations

import os

import pytest

from fetchers import formdata

pytestmark = pytest.mark.unit

BOUNDARY = "os-boundary-0123456789abcdef"


def answer(*bodies: bytes) -> bytes:
    return formdata.encode([({"x-sn-batch-operation-index": str(i)}, body) for i, body in enumerate(bodies)],
                           BOUNDARY)


def read_in(data: bytes, sizes: list[int]):
    """``read`` over ``data`` in pieces of the given sizes, in turn."""
    pieces, at, turn = [], 0, 0
    while at < len(data):
        size = sizes[turn % len(sizes)]
        pieces.append(data[at:at + size])
        at, turn = at + size, turn + 1
    chunks = iter([*pieces, b""])
    return lambda _: next(chunks)


BODIES = [b"", b"\r\n", b"\r\n--" + BOUNDARY.encode()[:-1], b"--" + BOUNDARY.encode(), b"\r", os.urandom(5000),
          b"tail\r\n--os-boundary"]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 31, 32, 33, 34, 35, 100, 4096, 1 << 20])
def test_parts_are_the_same_whatever_the_read_sizes(size):
    data = answer(*BODIES)
    parts = list(formdata.parts(read_in(data, [size, size + 5]), BOUNDARY))
    assert [part.body for part in parts] == BODIES
    assert [part.headers["x-sn-batch-operation-index"] for part in parts] == [str(i) for i in range(len(BODIES))]
    assert all(part.headers["content-disposition"] == 'form-data; name="part"' for part in parts)


@pytest.mark.parametrize("size", [1, 7, 35, 4096, 1 << 20])
@pytest.mark.parametrize("max_body", [0, 31, 32, 10_000])
def test_a_body_over_max_body_is_read_past_and_sized_whatever_the_read_sizes(size, max_body):
    data = answer(*BODIES)
    parts = list(formdata.parts(read_in(data, [size, size + 5]), BOUNDARY, max_body=max_body))
    assert [part.body for part in parts] == [body if len(body) <= max_body else b"" for body in BODIES]
    assert [part.too_large for part in parts] == [len(body) if len(body) > max_body else 0 for body in BODIES]
    assert [part.headers["x-sn-batch-operation-index"] for part in parts] == [str(i) for i in range(len(BODIES))]


def test_a_part_is_yielded_once_its_closing_delimiter_is_in():
    data = answer(b"first", b"second")
    cut = data.index(b"\r\n--" + BOUNDARY.encode(), data.index(b"first")) + len(BOUNDARY) + 6
    chunks = iter([data[:cut], data[cut:], b""])
    parts = formdata.parts(lambda _: next(chunks), BOUNDARY)
    assert next(parts).body == b"first"
    assert next(chunks) == data[cut:]  # the rest was not read for it


@pytest.mark.parametrize("body, message", [
    (b"", "ended before"),
    (b"no boundary here", "ended before"),
    (f"--{BOUNDARY}\r\nx: 1\r\n\r\nbody\r\n--{BOUNDARY}--".encode(), "content-disposition"),
    (f"--{BOUNDARY}\r\ncontent-disposition: form-data\r\nbad header\r\n\r\n\r\n--{BOUNDARY}--".encode(), "malformed"),
    (f"--{BOUNDARY}xx".encode(), "after a boundary"),
    (f"--{BOUNDARY}\r\ncontent-disposition: form-data\r\n\r\nbody".encode(), "ended before"),
    (f"junk--{BOUNDARY}\r\n".encode(), "in front of the first boundary"),
])
def test_malformed_or_cut_off_bodies_raise(body, message):
    with pytest.raises(formdata.FormDataError, match=message):
        list(formdata.parts(read_in(body, [3]) if body else (lambda _: b""), BOUNDARY))


def test_too_many_headers_raise():
    headers = {f"x-h{i}": "v" for i in range(formdata.MAX_PART_HEADERS)}
    data = formdata.encode([(headers, b"x")], BOUNDARY)
    with pytest.raises(formdata.FormDataError, match="more than"):
        list(formdata.parts(read_in(data, [1 << 20]), BOUNDARY))


@pytest.mark.parametrize("preamble", [b"", b"\r\n", b"junk\r\n", b"junk"])
def test_what_comes_before_the_first_boundary_is_judged_alike_wherever_the_reads_split(preamble):
    # A preamble ends with a line break before the boundary (RFC 2046); bytes that run into
    # the boundary are refused, however the reads fall around it.
    data = preamble + answer(b"hello")
    outcomes = set()
    for cut in range(1, len(preamble) + len(BOUNDARY) + 8):
        try:
            outcomes.add(tuple(part.body for part in formdata.parts(read_in(data, [cut, 1 << 20]), BOUNDARY)))
        except formdata.FormDataError as exc:
            assert "in front of the first boundary" in str(exc)
            outcomes.add(("refused",))
    assert outcomes == ({("refused",)} if preamble == b"junk" else {(b"hello",)})



@pytest.mark.parametrize("split", ["at once", "after the CR", "in 4 KiB reads"])
def test_a_header_line_is_judged_by_its_length_alone_wherever_the_reads_split(split):
    # 100 metadata headers (what objectstore's HTTP server takes on a write) and a line of
    # exactly MAX_HEADER_LINE bytes are read; one byte more is refused, however reads fall.
    name = "x-snme-long: "
    fits = {f"x-snme-{i}": "v" for i in range(100)} | {"x-snme-long": "v" * (formdata.MAX_HEADER_LINE - len(name))}
    too_long = {"x-snme-long": fits["x-snme-long"] + "v"}

    def reads(headers: dict[str, str]):
        data = formdata.encode([(headers, b"body")], BOUNDARY)
        line_end = data.index(b"v\r\n", data.index(name.encode())) + 2  # the line and its CR
        sizes = {"at once": [len(data)], "after the CR": [line_end, len(data)], "in 4 KiB reads": [4096]}[split]
        return read_in(data, sizes)

    (part,) = formdata.parts(reads(fits), BOUNDARY)
    assert part.body == b"body" and len(part.headers["x-snme-long"]) + len(name) == formdata.MAX_HEADER_LINE
    with pytest.raises(formdata.FormDataError, match="too long"):
        list(formdata.parts(reads(too_long), BOUNDARY))
