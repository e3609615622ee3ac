"""ObjectstoreFetcher through the real objectstore_client against the objectstore test server: what
only objectstore does, zstd payloads, tokens, the client's internals, and the test server
itself; what every store does is in ``test_contract``."""

from __future__ import annotations

import hashlib
import http.client
import logging
import random
import uuid

import pytest
import urllib3
import zstandard
from objectstore_client import Client, Usecase

from fetchers import (
    BatchPrefetcher,
    BatchUploader,
    BlobNotFound,
    BlobTooLarge,
    FetchError,
    StoreUnavailable,
    fetcher_from_url,
)
from fetchers.backends import UnsupportedSDK
from fetchers.backends.objectstore import TOKEN_ENV, ObjectstoreFetcher
from testing.objectstore import DEFAULT_SCOPES, DEFAULT_USECASE, serve_objectstore

from ..helpers import OBJECTSTORE_PREFIX as PREFIX
from ..helpers import QUICK_RETRY, blobs, objectstore_fetchers, unavailable

pytestmark = pytest.mark.integration



def blob(size: int, seed: int) -> bytes:
    """Screenshot-like content: random bytes mixed with compressible runs."""
    rng = random.Random(seed)
    noise = rng.randbytes(size // 2)
    return (noise + bytes(size - len(noise)))[:size]


def store(server, data: bytes, **put_options) -> str:
    """Upload ``data`` under ``1/2/<sha256>`` (plus a random suffix so tests never collide)."""
    key = f"{hashlib.sha256(data).hexdigest()}-{uuid.uuid4().hex[:8]}"
    server.put(f"{PREFIX}/{key}", data, **put_options)
    return key


@pytest.fixture
def connect(objectstore_server):
    """Build fetchers on the server; closes them and disarms faults afterwards."""
    with objectstore_fetchers(objectstore_server, read_timeout=5.0) as make:
        yield make


# --- round trips and layout -------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 4_000, 65_537, 1_000_000])
def test_a_zstd_object_round_trips_with_one_get(objectstore_server, connect, size):
    data = blob(size, seed=size)
    key = store(objectstore_server, data, compress="zstd")

    assert connect().fetch(key) == data
    assert objectstore_server.counters.gets(f"{PREFIX}/{key}") == 1


def test_a_zstd_object_that_expands_far_past_its_size_round_trips(objectstore_server, connect):
    data = bytes(3_000_000) + blob(1_000, seed=5)  # a few KB compressed
    key = store(objectstore_server, data, compress="zstd")

    assert connect().fetch(key) == data


def test_multi_frame_zstd_payload_is_decoded_whole(objectstore_server, connect):
    first, second = blob(40_000, seed=3), blob(30_000, seed=4)
    compressor = zstandard.ZstdCompressor()
    frames = compressor.compress(first) + compressor.compress(second)
    key = store(objectstore_server, frames, precompressed="zstd")

    assert connect().fetch(key) == first + second


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["reset", "truncate"])
def test_a_broken_transfer_of_a_zstd_object_is_retryable(objectstore_server, connect, mode):
    data = blob(300_000, seed=5)
    key = store(objectstore_server, data, compress="zstd")
    fetcher = connect()
    objectstore_server.faults.inject(mode, key=f"{PREFIX}/{key}")

    with pytest.raises(FetchError) as caught:
        fetcher.fetch(key)

    assert caught.value.retryable
    assert isinstance(caught.value.__cause__, urllib3.exceptions.HTTPError)
    assert fetcher.fetch(key) == data


def test_corrupt_zstd_body_is_retryable(objectstore_server, connect):
    data = blob(50_000, seed=8)
    key = store(objectstore_server, data)
    fetcher = connect()
    objectstore_server.faults.inject("corrupt", key=f"{PREFIX}/{key}")

    with pytest.raises(FetchError) as caught:
        fetcher.fetch(key)

    assert caught.value.retryable
    assert isinstance(caught.value.__cause__, zstandard.ZstdError)
    assert fetcher.fetch(key) == data


def test_corrupt_plain_body_is_returned_for_the_caller_to_verify(objectstore_server, connect):
    data = blob(50_000, seed=9)
    key = store(objectstore_server, data, compress="none")
    objectstore_server.faults.inject("corrupt", key=f"{PREFIX}/{key}")

    received = connect().fetch(key)

    assert len(received) == len(data)
    assert hashlib.sha256(received).digest() != hashlib.sha256(data).digest()


def test_zstd_stream_cut_inside_a_frame_is_retryable(objectstore_server, connect):
    compressed = zstandard.ZstdCompressor().compress(blob(80_000, seed=10))
    key = store(objectstore_server, compressed[:-7], precompressed="zstd")

    with pytest.raises(FetchError) as caught:
        connect().fetch(key)

    assert caught.value.retryable
    assert "truncated" in str(caught.value)


# --- connections and concurrency --------------------------------------------------------------


def test_one_connection_serves_zstd_bodies_misses_and_errors(objectstore_server, connect):
    keys = [store(objectstore_server, blob(size, seed=size), compress="zstd") for size in (10, 70_000, 900_000)]
    fetcher = connect()
    before = objectstore_server.counters.connections

    for _ in range(3):
        for key in keys:
            fetcher.fetch(key)
        with pytest.raises(BlobNotFound):
            fetcher.fetch(f"missing-{uuid.uuid4().hex}")
        objectstore_server.faults.inject(503)
        with pytest.raises(FetchError):
            fetcher.fetch(keys[0])

    assert objectstore_server.counters.connections - before == 1


# --- construction, protocol and credentials ---------------------------------------------------


def test_wraps_a_caller_session_without_owning_it(objectstore_server):
    data = blob(5_000, seed=12)
    key = store(objectstore_server, data)
    client = Client(objectstore_server.url, connection_kwargs={"headers": {"Connection": "close"}})
    session = client.session(Usecase(DEFAULT_USECASE), **DEFAULT_SCOPES)
    fetcher = ObjectstoreFetcher(session, prefix=PREFIX)

    assert fetcher.max_connections == 1  # the client's default pool: one connection
    with pytest.raises(ValueError, match="max_connections=1"):
        BatchPrefetcher(fetcher, max_workers=8)  # refused: concurrent fetches would overflow it
    assert fetcher.fetch(key) == data
    fetcher.close()
    assert session.get(f"{PREFIX}/{key}").payload.read() == data  # the caller's pool still works


def test_rejects_bad_configuration():
    with pytest.raises(ValueError) as caught:
        ObjectstoreFetcher.connect("http://svc:hunter2@127.0.0.1:1", DEFAULT_USECASE,
                                   scopes=DEFAULT_SCOPES)
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ValueError):
        ObjectstoreFetcher.connect("http://127.0.0.1:1", "x", scopes=DEFAULT_SCOPES)
    with pytest.raises(ValueError):
        ObjectstoreFetcher.connect("http://127.0.0.1:1", DEFAULT_USECASE, scopes={"org": "a b"})


def test_token_is_sent_and_never_echoed(caplog):
    caplog.set_level(logging.DEBUG)
    secret = "s3cr3t-" + uuid.uuid4().hex
    with serve_objectstore(token=secret) as secured:
        data = blob(2_000, seed=13)
        key = store(secured, data)
        options = dict(scopes=DEFAULT_SCOPES, prefix=PREFIX)
        with ObjectstoreFetcher.connect(secured.url, DEFAULT_USECASE, token=secret,
                                        **options) as trusted:
            assert trusted.fetch(key) == data
        wrong = "wrong-" + uuid.uuid4().hex
        with ObjectstoreFetcher.connect(secured.url, DEFAULT_USECASE, token=wrong,
                                        **options) as untrusted:
            with pytest.raises(FetchError) as caught:
                untrusted.fetch(key)

    assert not caught.value.retryable
    assert "401" in str(caught.value)
    for text in (str(caught.value), repr(caught.value), caplog.text):
        assert secret not in text and wrong not in text


def by_url(url: str, **options) -> ObjectstoreFetcher:
    """The fetcher of usecase ``preprod``, scopes org 1 and project 2, prefix ``1/2`` at ``url``."""
    host = url.removeprefix("http://")
    return fetcher_from_url(f"objectstore+http://{host}/preprod?org=1&project=2&prefix=1/2", **options)


def test_without_the_token_the_store_is_unavailable_and_with_it_works():
    with serve_objectstore(token="s3cret-token") as server:
        with by_url(server.url) as fetcher:
            error = unavailable(fetcher)
        assert server.counters.total("GET") <= 12
        with by_url(server.url, token="s3cret-token", max_connections=4) as fetcher:
            fetcher.put("k", b"written", "image/png")
            assert fetcher.fetch("k") == b"written"
    assert "HTTP 401" in str(error) and "s3cret" not in str(error)
    assert str(error).startswith("objectstore+http://127.0.0.1:")
    assert "/preprod?org=1&project=2&prefix=1/2: " in str(error)


def test_denied_says_how_to_give_a_token_or_that_it_was_refused(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    token, wrong = "s3cret-" + uuid.uuid4().hex, "wr0ng-" + uuid.uuid4().hex
    with serve_objectstore(token=token) as server:
        with by_url(server.url) as fetcher:
            without = unavailable(fetcher)
            with BatchUploader(fetcher, max_workers=4, retry=QUICK_RETRY) as uploader:
                with pytest.raises(StoreUnavailable) as writing:
                    uploader.upload_all(blobs(20, size=10))
        with by_url(server.url, token=wrong) as fetcher:
            refused = unavailable(fetcher)
        monkeypatch.setenv(TOKEN_ENV, wrong)
        with by_url(server.url) as fetcher:
            refused_from_env = unavailable(fetcher)

    for error in (without, writing.value):
        assert str(error).endswith(
            "store unavailable: objectstore answered HTTP 401: no token is configured: "
            "set SNAPCOMPARE_OBJECTSTORE_TOKEN or pass --objectstore-token-file FILE"), str(error)
    for error in (refused, refused_from_env):
        assert str(error).endswith(
            "store unavailable: objectstore answered HTTP 401: the configured token was refused "
            "(wrong, expired, or not valid for this usecase and scope)"), str(error)
    for error in (without, writing.value, refused, refused_from_env):
        assert str(error).startswith("objectstore+http://127.0.0.1:")
        for text in (str(error), repr(error), str(error.cause), repr(error.cause)):
            assert token not in text and wrong not in text


def test_forbidden_without_a_token_says_how_to_give_one(objectstore_server, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    objectstore_server.faults.inject(403, times=1000)
    try:
        with by_url(objectstore_server.url) as fetcher:
            error = unavailable(fetcher)
    finally:
        objectstore_server.faults.clear()
    assert "HTTP 403: no token is configured: set SNAPCOMPARE_OBJECTSTORE_TOKEN" in str(error)


# --- the client's internals -------------------------------------------------------------------


def test_a_client_without_its_pool_is_refused_by_name(objectstore_server, monkeypatch):
    original = Client.__init__

    def pool_renamed(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self._connection_pool = self.__dict__.pop("_pool")

    monkeypatch.setattr(Client, "__init__", pool_renamed)
    with pytest.raises(UnsupportedSDK, match=r"^objectstore-client \S+ is not supported: Client\._pool is missing; "
                                             r"install objectstore-client>=0\.2\.10,<0\.3$"):
        ObjectstoreFetcher.connect(objectstore_server.url, DEFAULT_USECASE, scopes=DEFAULT_SCOPES)


def test_a_session_whose_pool_is_not_urllib3s_is_refused_by_name(objectstore_server):
    session = Client(objectstore_server.url).session(Usecase(DEFAULT_USECASE), **DEFAULT_SCOPES)
    session._pool = object()
    with pytest.raises(UnsupportedSDK, match=r"Session\._pool is of type object, not HTTPConnectionPool"):
        ObjectstoreFetcher(session, prefix=PREFIX)


# --- the test server itself -------------------------------------------------------------------


def test_server_speaks_lower_case_headers_and_stores_zstd_as_sent(objectstore_server):
    data = blob(20_000, seed=14)
    key = store(objectstore_server, data)
    path = f"/v1/objects/{DEFAULT_USECASE}/org=1;project=2/{PREFIX}/{key}"
    conn = http.client.HTTPConnection("127.0.0.1", int(objectstore_server.url.rsplit(":", 1)[1]),
                                      timeout=5)
    try:
        conn.request("GET", path)
        found = conn.getresponse()
        body = found.read()
        conn.request("GET", path + "-missing")
        missing = conn.getresponse()
        missing_body = missing.read()
    finally:
        conn.close()

    names = [name for name, _ in found.getheaders() + missing.getheaders()]
    assert names and all(name == name.lower() for name in names)
    assert found.status == 200 and found.getheader("content-encoding") == "zstd"
    assert body != data and zstandard.ZstdDecompressor().decompressobj().decompress(body) == data
    assert found.getheader("x-sn-size") is None  # objectstore keeps the size out of its headers
    assert missing.status == 404 and missing_body == b""


def test_server_head_delete_and_generated_keys_through_the_client(objectstore_server):
    client = Client(objectstore_server.url, connection_kwargs={"headers": {"Connection": "close"}})
    session = client.session(Usecase(DEFAULT_USECASE), org=7, project=8)
    data = blob(10_000, seed=15)

    key = session.put(data, metadata={"build": "42"})
    metadata = session.head(key)
    assert metadata is not None and metadata.compression == "zstd"
    assert metadata.custom == {"build": "42"} and metadata.time_created is not None
    assert session.get(key).payload.read() == data
    assert session.get(key, decompress=False).metadata.size == metadata.size

    session.delete(key)
    assert session.head(key) is None and session.get(key) is None


def test_server_fault_can_target_one_key(objectstore_server, connect):
    hit, spared = (store(objectstore_server, blob(1_000, seed=s)) for s in (16, 17))
    fetcher = connect()
    objectstore_server.faults.inject(500, key=f"{PREFIX}/{hit}", times=2)

    assert fetcher.fetch(spared) == blob(1_000, seed=17)
    for _ in range(2):
        with pytest.raises(FetchError):
            fetcher.fetch(hit)
    assert objectstore_server.faults.pending == 0
    assert fetcher.fetch(hit) == blob(1_000, seed=16)


def test_a_closed_fetcher_fails_without_inviting_retries(objectstore_server):
    # Objectstore's pool refuses requests once closed; S3's and GCS's clients open new pools.
    fetcher = ObjectstoreFetcher.connect(objectstore_server.url, DEFAULT_USECASE, scopes=DEFAULT_SCOPES)
    fetcher.close()
    with pytest.raises(FetchError, match="closed") as caught:
        fetcher.fetch("anything")
    assert not caught.value.retryable


def test_frames_of_every_kind_decode_whole_and_a_dense_one_after_them_is_refused(objectstore_server, connect):
    # Declared size or not, a checksum or not, raw and compressed blocks; then a frame of
    # zeros claiming far more than the fetcher takes.
    first, second, third = blob(40_000, seed=21), bytes(300_000), blob(70_000, seed=22)
    streamed = zstandard.ZstdCompressor().compressobj()
    # A frame of 2,000 empty raw blocks, then "abc" (magic, single-segment descriptor, size 3).
    empty_blocks = bytes.fromhex("28b52ffd2003") + b"\x00\x00\x00" * 2_000 + bytes([25, 0, 0]) + b"abc"
    frames = (zstandard.ZstdCompressor(write_checksum=True).compress(first)
              + streamed.compress(second) + streamed.flush()
              + zstandard.ZstdCompressor(level=-5).compress(third) + empty_blocks)
    dense = zstandard.ZstdCompressor().compressobj()
    key = store(objectstore_server, frames, precompressed="zstd")
    bomb = store(objectstore_server, frames + dense.compress(bytes(5_000_000)) + dense.flush(), precompressed="zstd")
    fetcher = connect(max_blob_bytes=1_000_000)

    assert fetcher.fetch(key) == first + second + third + b"abc"
    with pytest.raises(BlobTooLarge, match="decodes to more than the 1,000,000"):
        fetcher.fetch(bomb)
