"""ObjectstoreFetcher through the real objectstore_client against the objectstore test server."""

from __future__ import annotations

import hashlib
import http.client
import logging
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import urllib3
import zstandard
from objectstore_client import Client, Usecase

from fetchers import BatchPrefetcher, BlobFetcher, BlobNotFound, FetchError
from fetchers.backends.objectstore import ObjectstoreFetcher
from testing.objectstore import DEFAULT_SCOPES, DEFAULT_USECASE, serve_objectstore

pytestmark = pytest.mark.integration

PREFIX = "1/2"  # Sentry's layout: {org}/{project}/{sha256} under scopes org=1, project=2


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
    """Build fetchers on the shared server; closes them and disarms faults afterwards."""
    made: list[ObjectstoreFetcher] = []

    def make(**options) -> ObjectstoreFetcher:
        options.setdefault("scopes", DEFAULT_SCOPES)
        options.setdefault("prefix", PREFIX)
        options.setdefault("read_timeout", 5.0)
        fetcher = ObjectstoreFetcher.connect(objectstore_server.url, DEFAULT_USECASE, **options)
        made.append(fetcher)
        return fetcher

    yield make
    objectstore_server.faults.clear()
    for fetcher in made:
        fetcher.close()


# --- round trips and layout -------------------------------------------------------------------


@pytest.mark.parametrize("compress", ["zstd", "none"])
@pytest.mark.parametrize("size", [0, 1, 4_000, 65_537, 1_000_000])
def test_round_trip_one_get_per_fetch(objectstore_server, connect, compress, size):
    data = blob(size, seed=size)
    key = store(objectstore_server, data, compress=compress)

    assert connect().fetch(key) == data
    assert objectstore_server.counters.gets(f"{PREFIX}/{key}") == 1


def test_prefix_is_joined_with_a_slash(objectstore_server, connect):
    data = blob(3_000, seed=1)
    key = store(objectstore_server, data)

    assert connect(prefix="/1/2/").fetch(key) == data
    assert connect(prefix="").fetch(f"{PREFIX}/{key}") == data
    with pytest.raises(BlobNotFound):
        connect(prefix="1/3").fetch(key)


def test_key_with_reserved_characters_round_trips(objectstore_server, connect):
    data = blob(500, seed=2)
    key = f"dir {uuid.uuid4().hex}/a+b;c=d%e"
    objectstore_server.put(f"{PREFIX}/{key}", data)

    assert connect().fetch(key) == data
    assert objectstore_server.counters.gets(f"{PREFIX}/{key}") == 1


def test_multi_frame_zstd_payload_is_decoded_whole(objectstore_server, connect):
    first, second = blob(40_000, seed=3), blob(30_000, seed=4)
    compressor = zstandard.ZstdCompressor()
    frames = compressor.compress(first) + compressor.compress(second)
    key = store(objectstore_server, frames, precompressed="zstd")

    assert connect().fetch(key) == first + second


def test_missing_key_is_blob_not_found(objectstore_server, connect):
    fetcher = connect()
    key = f"missing-{uuid.uuid4().hex}"

    with pytest.raises(BlobNotFound) as caught:
        fetcher.fetch(key)

    assert caught.value.key == key
    assert not caught.value.retryable
    assert objectstore_server.counters.gets(f"{PREFIX}/{key}") == 1


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a", "a\\b", "a\nb", "a/"])
def test_invalid_key_is_rejected_without_a_request(objectstore_server, connect, key):
    fetcher = connect()
    gets, connections = (objectstore_server.counters.total_gets,
                         objectstore_server.counters.connections)

    with pytest.raises(FetchError) as caught:
        fetcher.fetch(key)

    assert not caught.value.retryable
    assert caught.value.key == key
    assert objectstore_server.counters.total_gets == gets
    assert objectstore_server.counters.connections == connections


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(503, True), (429, True), (500, True), (502, True), (401, False), (403, False), (400, False)],
)
def test_http_errors_map_to_retryable_or_not(objectstore_server, connect, status, retryable):
    data = blob(2_000, seed=status)
    key = store(objectstore_server, data)
    fetcher = connect()
    objectstore_server.faults.inject(status, key=f"{PREFIX}/{key}", retry_after="7")

    with pytest.raises(FetchError) as caught:
        fetcher.fetch(key)

    error = caught.value
    assert type(error) is FetchError
    assert error.retryable is retryable
    assert str(status) in str(error)
    # objectstore_client's RequestError drops the response headers: no Retry-After to report.
    assert error.retry_after is None
    assert error.__cause__ is not None
    assert fetcher.fetch(key) == data  # the fault was one-shot and the pool still works
    assert objectstore_server.counters.gets(f"{PREFIX}/{key}") == 2


@pytest.mark.parametrize("mode", ["reset", "truncate"])
@pytest.mark.parametrize("compress", ["zstd", "none"])
def test_broken_connections_are_retryable(objectstore_server, connect, mode, compress):
    data = blob(300_000, seed=5)
    key = store(objectstore_server, data, compress=compress)
    fetcher = connect()
    objectstore_server.faults.inject(mode, key=f"{PREFIX}/{key}")

    with pytest.raises(FetchError) as caught:
        fetcher.fetch(key)

    assert caught.value.retryable
    assert isinstance(caught.value.__cause__, urllib3.exceptions.HTTPError)
    assert fetcher.fetch(key) == data


def test_stall_times_out_as_retryable(objectstore_server, connect):
    data = blob(2_000, seed=6)
    key = store(objectstore_server, data)
    fetcher = connect(read_timeout=0.3)
    objectstore_server.faults.inject("stall", key=f"{PREFIX}/{key}", delay=6.0)

    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        fetcher.fetch(key)

    assert time.monotonic() - started < 4.0  # the 0.3 s read timeout, not the 6 s stall
    assert caught.value.retryable
    assert "timed out" in str(caught.value)
    assert fetcher.fetch(key) == data


def test_short_stall_within_the_timeout_succeeds(objectstore_server, connect):
    data = blob(2_000, seed=7)
    key = store(objectstore_server, data)
    objectstore_server.faults.inject("stall", key=f"{PREFIX}/{key}", delay=0.2)

    assert connect(read_timeout=2.0).fetch(key) == data


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


def test_unreachable_server_is_retryable():
    with serve_objectstore() as gone:
        url = gone.url
    with ObjectstoreFetcher.connect(url, DEFAULT_USECASE, scopes=DEFAULT_SCOPES,
                                    connect_timeout=1.0) as fetcher:
        with pytest.raises(FetchError) as caught:
            fetcher.fetch("a")
    assert caught.value.retryable


# --- connections and concurrency --------------------------------------------------------------


def test_connection_is_reused_across_bodies_misses_and_errors(objectstore_server, connect):
    keys = [store(objectstore_server, blob(size, seed=size), compress=compress)
            for size in (10, 70_000, 900_000) for compress in ("zstd", "none")]
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


def test_32_threads_share_a_32_connection_pool(objectstore_server, connect, caplog):
    caplog.set_level(logging.WARNING, logger="urllib3")
    objects = {}
    for seed in range(48):
        data = blob(random.Random(seed).randrange(1_000, 200_000), seed=100 + seed)
        objects[store(objectstore_server, data, compress="zstd" if seed % 2 else "none")] = data
    keys = list(objects)
    fetcher = connect(max_connections=32)
    before = objectstore_server.counters.connections
    start = threading.Barrier(32, timeout=10)

    def work(worker: int) -> int:
        start.wait()
        mismatches = 0
        for i in range(12):
            key = keys[(worker * 7 + i) % len(keys)]
            mismatches += fetcher.fetch(key) != objects[key]
        return mismatches

    with ThreadPoolExecutor(max_workers=32) as pool:
        mismatches = sum(pool.map(work, range(32), timeout=60))

    assert mismatches == 0
    assert sum(objectstore_server.counters.gets(f"{PREFIX}/{k}") for k in keys) == 32 * 12
    assert objectstore_server.counters.connections - before <= 32
    assert "Connection pool is full" not in caplog.text


def test_close_releases_pooled_connections(objectstore_server, connect):
    key = store(objectstore_server, blob(1_000, seed=11))
    fetcher = connect()
    fetcher.fetch(key)
    baseline = objectstore_server.counters.open_connections

    fetcher.close()

    deadline = time.monotonic() + 5
    while objectstore_server.counters.open_connections >= baseline:
        assert time.monotonic() < deadline, "the server never saw the pooled connection close"
        time.sleep(0.01)


# --- construction, protocol and credentials ---------------------------------------------------


def test_is_a_blob_fetcher_exposing_its_pool_size(objectstore_server, connect):
    fetcher = connect(max_connections=12)

    assert isinstance(fetcher, BlobFetcher)
    assert fetcher.max_connections == 12


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
        ObjectstoreFetcher.connect("http://127.0.0.1:1", DEFAULT_USECASE, scopes=DEFAULT_SCOPES,
                                   max_connections=0)
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
    assert found.getheader("x-sn-size") == str(len(body))
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
    fetcher = ObjectstoreFetcher.connect(objectstore_server.url, DEFAULT_USECASE, scopes=DEFAULT_SCOPES)
    fetcher.close()
    with pytest.raises(FetchError, match="closed") as caught:
        fetcher.fetch("anything")
    assert not caught.value.retryable
