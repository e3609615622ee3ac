"""Objectstore's batch requests: the test server's batch route, held to objectstore's own
examples and limits, and `ObjectstoreFetcher.fetch_many` and `BatchPrefetcher` over it, faults
included (a part cut off, a throttled operation, a request refused as a whole, an old server).

The server's examples are re-declared from getsentry/objectstore at
`testing.objectstore.SERVER_COMMIT`: ``objectstore-server/src/extractors/batch.rs`` (its tests
module) and ``objectstore-server/tests/limits.rs`` (``test_batch_at_capacity_returns_per_op_error``).
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import os
import socket
import threading
import uuid
from urllib.parse import quote

import pytest
import urllib3
from hypothesis import given, settings
from hypothesis import strategies as st

from fetchers import (
    BatchPrefetcher,
    BatchStats,
    BatchUploader,
    BlobNotFound,
    BlobTooLarge,
    FetchError,
    RetryBudget,
    RetryPolicy,
    StoredBlob,
    fetcher_from_url,
    formdata,
)
from fetchers.backends import objectstore
from fetchers.backends.objectstore import MAX_BATCH_KEYS, ObjectstoreFetcher
from fetchers.batch import GROUP_SPREAD
from fetchers.errors import BatchUnsupported
from testing.objectstore import (
    DEFAULT_SCOPES,
    DEFAULT_USECASE,
    MAX_FIELD_SIZE,
    MAX_OPERATIONS,
    SERVER_COMMIT,
    serve_objectstore,
)
from testing.waiting import PATIENCE, wait_until

from ..helpers import OBJECTSTORE_PREFIX as PREFIX
from ..helpers import connections_to, objectstore_fetchers, runner_threads

pytestmark = pytest.mark.integration

QUICK = RetryPolicy(max_attempts=4, base_backoff=0.0, max_backoff=0.01)


@pytest.fixture(scope="module")
def server():
    """A server of this module's own: the tests count its batches and its connections."""
    with serve_objectstore() as running:
        yield running


@pytest.fixture
def connect(server):
    """Build fetchers on the server; closes them and disarms faults afterwards."""
    with objectstore_fetchers(server, read_timeout=10.0) as make:
        yield make


def stored(server, count: int, size: int = 30_000, *, compress: str = "none") -> dict[str, bytes]:
    """``count`` random blobs under ``1/2/<sha256>``, by key."""
    blobs = {}
    for _ in range(count):
        data = os.urandom(size)
        key = hashlib.sha256(data).hexdigest()
        server.put(f"{PREFIX}/{key}", data, compress=compress)
        blobs[key] = data
    return blobs


def missing() -> str:
    return hashlib.sha256(uuid.uuid4().bytes).hexdigest()


# --- the server's own examples and limits -------------------------------------------------------


def post(server, body: bytes, *, boundary: str = "boundary", path: str = "/v1/objects:batch/preprod/org=1/"):
    """POST a batch body as objectstore's tests do; (status, headers, parts by index)."""
    port = int(server.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PATIENCE)
    try:
        conn.request("POST", path, body=body,
                     headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        response = conn.getresponse()
        raw = response.read()
        headers = dict(response.getheaders())
    finally:
        conn.close()
    if response.status != 200:
        return response.status, headers, raw
    parts = {}
    chunks = iter([raw, b""])
    for part in formdata.parts(lambda _: next(chunks), formdata.boundary_of(headers["content-type"])):
        parts[int(part.headers["x-sn-batch-operation-index"])] = part
    return response.status, headers, parts


def example(*parts: str) -> bytes:
    return ("".join(parts) + "--boundary--\r\n").encode()


def op(kind: str | None, key: str | None = None, body: str = "", extra: str = "") -> str:
    headers = (f"x-sn-batch-operation-key: {key}\r\n" if key is not None else "") + (
        f"x-sn-batch-operation-kind: {kind}\r\n" if kind is not None else "")
    return f"--boundary\r\n{headers}{extra}\r\n{body}\r\n"


def status(part) -> int:
    return int(part.headers["x-sn-batch-operation-status"].split(" ")[0])


def test_the_fetcher_and_the_test_server_follow_one_objectstore_commit():
    assert objectstore.SERVER_COMMIT == SERVER_COMMIT


def test_valid_request_works(server):
    # extractors/batch.rs, test_valid_request_works: a get, two inserts, a delete.
    body = example(
        op("get", "test%2F0"),
        op("insert", "test1", "first blob data", "Content-Type: application/octet-stream\r\n"),
        op("insert", "test2", "second blob data",
           "x-sn-expiration: ttl:1h\r\nx-sn-origin: 203.0.113.42\r\nContent-Type: text/plain\r\n"),
        op("delete", "test3"),
    )
    code, headers, parts = post(server, body)

    assert code == 200
    assert headers["content-type"].startswith('multipart/form-data; boundary="os-boundary-')
    assert sorted(parts) == [0, 1, 2, 3]
    assert [status(parts[i]) for i in range(4)] == [404, 201, 201, 204]
    assert parts[0].headers["x-sn-batch-operation-key"] == "test%2F0"
    assert [parts[i].headers["x-sn-batch-operation-kind"] for i in range(4)] == ["get", "insert", "insert", "delete"]
    assert parts[0].headers["x-sn-batch-operation-status"] == "404 Not Found"
    code, _, parts = post(server, example(op("get", "test1"), op("head", "test2")))
    assert parts[0].body == b"first blob data" and status(parts[0]) == 200
    assert parts[0].headers["content-type"] == "application/octet-stream"
    assert status(parts[1]) == 204 and parts[1].headers["x-sn-origin"] == "203.0.113.42"
    assert parts[1].headers["content-type"] == "text/plain" and parts[1].body == b""


def test_insert_without_key_header(server):
    # extractors/batch.rs, test_insert_without_key_header: the server makes the key up.
    _, _, parts = post(server, example(op("insert", None, "keyless payload",
                                          "Content-Type: application/octet-stream\r\n")))
    key = parts[0].headers["x-sn-batch-operation-key"]
    assert status(parts[0]) == 201
    _, _, parts = post(server, example(op("get", key)))
    assert parts[0].body == b"keyless payload"


def test_individual_errors_with_isolation(server):
    # extractors/batch.rs, test_individual_errors_with_isolation: each error is its operation's.
    large = "x" * (MAX_FIELD_SIZE + 1)
    body = example(op("get"), op("get", "valid"), op("delete"),
                   op("insert", "valid", large, "Content-Type: application/octet-stream\r\n"),
                   op("delete", "valid"))
    code, _, parts = post(server, body)

    assert code == 200
    assert [status(parts[i]) for i in range(5)] == [400, 404, 400, 413, 204]
    for failed in (0, 2, 3):  # an error part has its index and status only, and a JSON body
        assert "x-sn-batch-operation-key" not in parts[failed].headers
        assert "detail" in json.loads(parts[failed].body)


def test_max_operations_limit_enforced(server):
    # extractors/batch.rs, test_max_operations_limit_enforced: one operation past the limit.
    body = example(*(op("get", quote(f"limit-test{i}", safe="")) for i in range(MAX_OPERATIONS + 1)))
    code, _, parts = post(server, body)

    assert code == 200 and MAX_OPERATIONS == MAX_BATCH_KEYS == 1000
    assert len(parts) == MAX_OPERATIONS + 1
    assert status(parts[MAX_OPERATIONS]) == 413
    assert {status(parts[i]) for i in range(MAX_OPERATIONS)} == {404}


def test_head_operation_and_head_without_key(server):
    # extractors/batch.rs, test_head_operation and test_head_without_key_is_error.
    _, _, parts = post(server, example(op("head", "head-key"), op("head")))
    assert status(parts[0]) == 404 and parts[0].headers["x-sn-batch-operation-kind"] == "head"
    assert status(parts[1]) == 400


def test_batch_at_capacity_returns_per_op_error(server):
    # tests/limits.rs, test_batch_at_capacity_returns_per_op_error: the request succeeds, its
    # operation is throttled. Here a fault stands in for the capacity limit.
    server.faults.inject(429, key="some-key")
    code, _, parts = post(server, example(op("get", "some-key")))
    assert code == 200 and status(parts[0]) == 429
    assert "retry-after" not in parts[0].headers


def test_parts_stream_in_completion_order_and_the_route_is_the_servers(server):
    blobs = stored(server, 3, size=100)
    first, slow, last = (f"{PREFIX}/{key}" for key in blobs)
    server.faults.inject("stall", key=slow, delay=PATIENCE)
    server.faults.release()  # nothing is stalled yet: a release ends only stalls under way
    done = threading.Event()
    answer = {}

    def run():
        answer["parts"] = post(server, example(*(op("get", quote(key, safe="")) for key in (first, slow, last))))[2]
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    wait_until(lambda: server.counters.gets(last) == 1)
    assert not done.is_set()  # the stalled operation holds the answer's end
    server.faults.release()
    thread.join(PATIENCE)
    order = list(answer["parts"])
    assert order == [0, 2, 1]
    assert post(server, b"", path="/v1/objects:batch/preprod/org=1/extra")[0] == 404


def test_a_request_refused_as_a_whole_and_a_body_over_the_limit(server):
    server.faults.inject(503, method="BATCH")
    assert post(server, example(op("get", "k")))[0] == 503
    port = int(server.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PATIENCE)
    try:
        conn.putrequest("POST", "/v1/objects:batch/preprod/org=1/")
        conn.putheader("content-type", "multipart/form-data; boundary=b")
        conn.putheader("content-length", str(1024**3 + 1))
        conn.endheaders()
        assert conn.getresponse().status == 413
    finally:
        conn.close()


def test_the_answer_starts_before_the_request_has_all_come(server):
    # endpoints/batch.rs: operations are parsed from the body as a stream and run as they come.
    (key, data), = stored(server, 1, size=100).items()
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as sock:
        first = f"{op('get', quote(f'{PREFIX}/{key}', safe=''))}--boundary\r\n".encode()
        sock.sendall(b"POST /v1/objects:batch/preprod/org=1;project=2/ HTTP/1.1\r\nhost: x\r\n"
                     b"content-type: multipart/form-data; boundary=boundary\r\ntransfer-encoding: chunked\r\n\r\n"
                     + b"%x\r\n%s\r\n" % (len(first), first))
        answer = b""
        while data not in answer:  # the first operation's part, while the request is unfinished
            piece = sock.recv(65536)
            assert piece, "the server closed the connection"
            answer += piece
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        rest = op("get", "later").removeprefix("--boundary\r\n").encode() + b"--boundary--\r\n"
        sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest))
        while not answer.endswith(b"\r\n0\r\n\r\n"):
            piece = sock.recv(65536)
            assert piece, "the server closed the connection"
            answer += piece
    assert answer.count(b"x-sn-batch-operation-status: 200 OK") == 1
    assert answer.count(b"x-sn-batch-operation-status: 404 Not Found") == 1  # "later"


def test_a_body_cut_short_ends_its_operations_with_an_error_part(server):
    # extractors/batch.rs: a multipart error is an item of the operation stream, not a refusal.
    (key, data), = stored(server, 1, size=100).items()
    code, _, parts = post(server, (op("get", quote(f"{PREFIX}/{key}", safe="")) + op("get", "k")).encode(),
                          path="/v1/objects:batch/preprod/org=1;project=2/")
    assert code == 200 and sorted(parts) == [0, 1]
    assert status(parts[0]) == 200 and parts[0].body == data
    assert status(parts[1]) == 400 and "multipart error" in json.loads(parts[1].body)["detail"]
    assert "x-sn-batch-operation-key" not in parts[1].headers


# --- fetch_many --------------------------------------------------------------------------------


def test_fetch_many_decodes_each_blob_and_maps_each_status(server, connect):
    plain, zstd = stored(server, 3), stored(server, 3, compress="zstd")
    gone, throttled = missing(), next(iter(plain))
    server.faults.inject(429, key=f"{PREFIX}/{throttled}")
    fetcher = connect()
    before = server.counters.batches

    answers = dict(fetcher.fetch_many([*plain, *zstd, gone, "../escape"]))

    assert server.counters.batches - before == 1
    assert {key: answers[key] for key in [*plain, *zstd] if key != throttled} == {
        key: data for key, data in {**plain, **zstd}.items() if key != throttled}
    assert isinstance(answers[gone], BlobNotFound) and answers[gone].store == fetcher.store_url
    error = answers[throttled]
    assert type(error) is FetchError and error.retryable and error.throttled and error.retry_after is None
    assert "HTTP 429" in error.message
    assert not answers["../escape"].retryable  # refused without being sent


_SEGMENTS = st.text(st.sampled_from("aZ09-_.~ %+#?&=;:@!$'()*,ü中😀"), min_size=1, max_size=8).filter(
    lambda segment: segment not in (".", ".."))


@settings(max_examples=25, deadline=None)
@given(keys=st.lists(st.lists(_SEGMENTS, min_size=1, max_size=3).map("/".join), min_size=1, max_size=12,
                     unique=True))
def test_any_valid_key_goes_in_a_batch_and_comes_back_under_its_own_name(server, keys):
    blobs = {key: os.urandom(64) for key in keys}
    for key, data in blobs.items():
        server.put(f"{PREFIX}/{key}", data)
    with objectstore_fetchers(server, read_timeout=10.0) as make:
        assert dict(make().fetch_many(keys)) == blobs


def test_a_part_cut_off_mid_stream_keeps_what_arrived(server, connect):
    blobs = stored(server, 6, size=200_000)
    keys = list(blobs)
    server.faults.inject("truncate", key=f"{PREFIX}/{keys[3]}")
    fetcher = connect(max_connections=2)
    got = {}
    with pytest.raises(FetchError) as caught:
        for key, value in fetcher.fetch_many(keys):
            got[key] = value

    assert got == {key: blobs[key] for key in keys[:3]}
    assert caught.value.retryable and "broke off after 3 of 6 parts" in caught.value.message
    assert isinstance(caught.value.__cause__, urllib3.exceptions.HTTPError)
    assert dict(fetcher.fetch_many(keys)) == blobs  # the pool took a new connection
    wait_until(lambda: len(connections_to(int(server.url.rsplit(":", 1)[1]))) <= 1)


def test_a_refused_batch_is_retryable_and_keeps_the_connection(server, connect):
    blobs = stored(server, 2)
    fetcher = connect()
    assert dict(fetcher.fetch_many(list(blobs))) == blobs
    opened = server.counters.connections
    server.faults.inject(503, method="BATCH")

    with pytest.raises(FetchError) as caught:
        list(fetcher.fetch_many(list(blobs)))

    assert caught.value.retryable and caught.value.throttled and "HTTP 503" in str(caught.value)
    assert dict(fetcher.fetch_many(list(blobs))) == blobs
    assert server.counters.connections == opened


@pytest.mark.parametrize("refusal", [404, 405])
def test_a_server_without_the_route_switches_batches_off_once(server, connect, refusal):
    blobs = stored(server, 40, size=1_000)
    server.faults.inject(refusal, method="BATCH", times=100)
    fetcher = connect()
    before = server.counters.batches
    stats = BatchStats()

    with BatchPrefetcher(fetcher, max_workers=4, fail_fast_after=0) as prefetcher:
        result = dict(prefetcher.iter_fetch(list(blobs), stats=stats))
        again = prefetcher.fetch_all(list(blobs))

    assert result == blobs and again.blobs == blobs
    assert server.counters.batches - before <= 4  # the requests sent before the first refusal came
    assert fetcher.batch_keys == 0 and f"HTTP {refusal}" in fetcher.batch_note
    assert f"HTTP {refusal}" in stats.batch_fallback and again.stats.batch_fallback == stats.batch_fallback
    assert again.stats.batch_requests == 0
    with pytest.raises(BatchUnsupported):
        list(fetcher.fetch_many(list(blobs)))


def test_batches_can_be_switched_off_by_url_or_option(server):
    host = server.url.removeprefix("http://")
    url = f"objectstore+http://{host}/preprod?org=1&project=2&prefix=1/2"
    with fetcher_from_url(url + "&batch=0") as off, fetcher_from_url(url + "&batch=1") as on:
        assert off.batch_keys == 0 and on.batch_keys == MAX_BATCH_KEYS
    with pytest.raises(ValueError, match="batch=0 or batch=1"):
        fetcher_from_url(url + "&batch=yes")
    blobs = stored(server, 5, size=100)
    before = server.counters.batches
    with ObjectstoreFetcher.connect(server.url, DEFAULT_USECASE, scopes=DEFAULT_SCOPES, prefix=PREFIX,
                                    batch=False) as fetcher:
        with BatchPrefetcher(fetcher, max_workers=2) as prefetcher:
            assert prefetcher.fetch_all(list(blobs)).blobs == blobs
    assert server.counters.batches == before


def test_the_token_goes_with_a_batch_and_a_refusal_is_store_wide():
    secret = "s3cr3t-" + uuid.uuid4().hex
    with serve_objectstore(token=secret) as secured:
        data = os.urandom(1_000)
        key = hashlib.sha256(data).hexdigest()
        secured.put(f"{PREFIX}/{key}", data)
        options = dict(scopes=DEFAULT_SCOPES, prefix=PREFIX)
        with ObjectstoreFetcher.connect(secured.url, DEFAULT_USECASE, token=secret, **options) as trusted:
            assert dict(trusted.fetch_many([key])) == {key: data}
        with ObjectstoreFetcher.connect(secured.url, DEFAULT_USECASE, token="wrong", **options) as untrusted:
            with pytest.raises(FetchError) as caught:
                list(untrusted.fetch_many([key]))
    assert caught.value.store_wide and not caught.value.retryable and "HTTP 401" in str(caught.value)
    assert secret not in str(caught.value)


# --- BatchPrefetcher over batches ----------------------------------------------------------------


def test_prefetcher_reads_each_unique_key_once_in_few_requests(server, connect):
    blobs = stored(server, 120, size=5_000, compress="zstd")
    fetcher = connect(max_connections=8)
    before = server.counters.batches
    keys = list(blobs)

    with BatchPrefetcher(fetcher, max_workers=8, verify=True) as prefetcher:
        result = prefetcher.fetch_all(keys + keys[::-1])

    assert result.blobs == blobs and not result.errors
    assert all(server.counters.gets(f"{PREFIX}/{key}") == 1 for key in keys)
    assert server.counters.batches - before == result.stats.batch_requests <= GROUP_SPREAD
    assert result.stats.fetches_issued == 120


def test_a_throttled_operation_is_retried_alone_within_the_budget(server, connect):
    blobs = stored(server, 30, size=2_000)
    throttled = list(blobs)[7]
    server.faults.inject(429, key=f"{PREFIX}/{throttled}", times=2)
    budget = RetryBudget()
    with BatchPrefetcher(connect(), max_workers=4, retry=QUICK, budget=budget, fail_fast_after=0) as prefetcher:
        result = prefetcher.fetch_all(list(blobs))

    assert result.blobs == blobs and result.stats.retries == 2
    assert server.counters.gets(f"{PREFIX}/{throttled}") == 3
    assert all(server.counters.gets(f"{PREFIX}/{key}") == 1 for key in blobs if key != throttled)


def test_a_batch_refused_as_a_whole_costs_one_retry(server, connect):
    blobs = stored(server, 12, size=2_000)
    server.faults.inject(503, method="BATCH")
    budget = RetryBudget(capacity=5, retry_cost=5, success_refill=0)  # one retry, no more
    with BatchPrefetcher(connect(), max_workers=2, retry=QUICK, budget=budget, fail_fast_after=0) as prefetcher:
        result = prefetcher.fetch_all(list(blobs))
    assert result.blobs == blobs and result.stats.batch_requests == 2


def test_a_part_cut_off_is_fetched_again_and_no_connection_is_left(server, connect):
    blobs = stored(server, 20, size=100_000)
    server.faults.inject("truncate", key=f"{PREFIX}/{list(blobs)[12]}")
    fetcher = connect(max_connections=4)
    with BatchPrefetcher(fetcher, max_workers=4, retry=QUICK, verify=True, fail_fast_after=0) as prefetcher:
        result = prefetcher.fetch_all(list(blobs))
    assert result.blobs == blobs and result.stats.batch_requests == 2  # the one, then its cut-off keys
    fetcher.close()
    port = int(server.url.rsplit(":", 1)[1])
    wait_until(lambda: not connections_to(port))


def test_the_first_blob_reaches_the_consumer_before_the_last_part_and_close_ends_the_request(server, connect):
    blobs = stored(server, 10, size=50_000)
    keys = list(blobs)
    server.faults.inject("stall", key=f"{PREFIX}/{keys[-1]}", delay=PATIENCE)
    fetcher = connect(max_connections=2)
    prefetcher = BatchPrefetcher(fetcher, max_workers=2, fail_fast_after=0)
    stream = prefetcher.iter_fetch(keys)
    received = [next(stream)[0] for _ in range(9)]  # the tenth part is stalled at the server

    assert set(received) == set(keys[:-1])
    stream.close()
    prefetcher.close()  # interrupts the request still waiting for its last part, and joins it
    assert runner_threads() == []
    fetcher.close()
    port = int(server.url.rsplit(":", 1)[1])
    wait_until(lambda: not connections_to(port))


# --- uploads in batches ----------------------------------------------------------------------------


def test_stat_many_and_put_many_speak_for_each_key(server, connect):
    fetcher = connect()
    blobs = {hashlib.sha256(data).hexdigest(): data for data in (os.urandom(10), os.urandom(2_000))}
    gone = missing()

    assert dict(fetcher.put_many([(key, data, "image/png") for key, data in blobs.items()])) == dict.fromkeys(blobs)
    stats = dict(fetcher.stat_many([*blobs, gone]))

    assert {key: stats[key] for key in blobs} == dict.fromkeys(blobs, StoredBlob())  # no size: see the server
    assert stats[gone] is None
    assert all(server.content_type(f"{PREFIX}/{key}") == "image/png" for key in blobs)
    assert dict(fetcher.fetch_many(list(blobs))) == blobs


def test_an_upload_checks_in_batches_and_writes_small_blobs_together(server, connect):
    small = {hashlib.sha256(data).hexdigest(): data for data in (os.urandom(50_000) for _ in range(30))}
    large = {hashlib.sha256(data).hexdigest(): data for data in (os.urandom(MAX_FIELD_SIZE + 1) for _ in range(2))}
    fetcher = connect(max_connections=4)
    alone: list[str] = []
    put = fetcher.put

    def counted_put(key, data, content_type="application/octet-stream"):
        alone.append(key)
        put(key, data, content_type)

    fetcher.put = counted_put
    before = server.counters.batches
    with BatchUploader(fetcher, max_workers=4) as uploader:
        first = uploader.upload_all({**small, **large}, verify=True)
        again = uploader.upload_all({**small, **large}, verify=True)

    assert sorted(first.written) == sorted({**small, **large}) and not first.errors
    assert sorted(alone) == sorted(large)  # over the 1 MiB an insert operation may carry
    assert first.stats.batch_requests == 2 and server.counters.batches - before == 3
    assert sorted(again.skipped) == sorted({**small, **large}) and again.stats.batch_requests == 1
    assert dict(fetcher.fetch_many(list(small))) == small


def test_blobs_too_large_for_a_batch_write_are_written_side_by_side(server, connect):
    large = {hashlib.sha256(data).hexdigest(): data for data in (os.urandom(MAX_FIELD_SIZE + 1) for _ in range(3))}
    fetcher = connect(max_connections=4)
    started: list[str] = []
    lock, all_started = threading.Lock(), threading.Event()
    put = fetcher.put

    def put_once_all_started(key, data, content_type="application/octet-stream"):
        with lock:
            started.append(key)
            if len(started) == len(large):
                all_started.set()
        if not all_started.wait(PATIENCE):
            raise AssertionError("the large blobs were written one after another")
        put(key, data, content_type)

    fetcher.put = put_once_all_started
    with BatchUploader(fetcher, max_workers=4) as uploader:
        result = uploader.upload_all(large, verify=True)
    assert sorted(result.written) == sorted(large) and not result.errors
    assert result.stats.unique_keys == len(large)


def test_an_upload_to_a_server_without_batches_goes_one_request_a_blob(server, connect):
    blobs = {hashlib.sha256(data).hexdigest(): data for data in (os.urandom(1_000) for _ in range(10))}
    server.faults.inject(404, method="BATCH", times=100)
    with BatchUploader(connect(), max_workers=2) as uploader:
        result = uploader.upload_all(blobs)
    assert sorted(result.written) == sorted(blobs) and "HTTP 404" in result.stats.batch_fallback


def test_a_blob_over_max_blob_bytes_is_that_key_s_error_alone_stored_or_decoded_past_it(server, connect):
    bomb = bytes(3_000_000)  # 3 MB of zeros: a few hundred bytes compressed
    bomb_key = hashlib.sha256(bomb).hexdigest()
    server.put(f"{PREFIX}/{bomb_key}", bomb, compress="zstd")
    large = stored(server, 1, size=1_200_000)
    fine = {**stored(server, 2, compress="zstd"), **stored(server, 2)}
    fetcher = connect(max_blob_bytes=1_000_000)

    answers = dict(fetcher.fetch_many([bomb_key, *large, *fine]))
    with pytest.raises(FetchError) as single:
        fetcher.fetch(bomb_key)

    assert {key: answers[key] for key in fine} == fine
    for error in (answers[bomb_key], single.value, answers[next(iter(large))]):
        assert type(error) is BlobTooLarge and not error.retryable
        assert error.message.startswith("blob too large: ") and "1,000,000" in error.message
    assert "its zstd payload of" in answers[bomb_key].message
    assert "1,200,000 bytes" in answers[next(iter(large))].message


def test_an_insert_over_the_limit_is_refused_without_a_request_and_the_batch_size_kept(server, connect):
    blobs = {hashlib.sha256(data).hexdigest(): data
             for data in (os.urandom(objectstore.MAX_INSERT_BYTES + 1), os.urandom(100))}
    keys = list(blobs)
    fetcher = connect()
    before = server.counters.requests("PUT", f"{PREFIX}/{keys[0]}")

    outcomes = dict(fetcher.put_many([(key, data, "image/png") for key, data in blobs.items()]))

    assert outcomes[keys[1]] is None and not outcomes[keys[0]].retryable
    assert "a batch insert takes at most" in outcomes[keys[0]].message
    assert server.counters.requests("PUT", f"{PREFIX}/{keys[0]}") == before
    assert fetcher.batch_keys == MAX_BATCH_KEYS


def test_a_413_to_a_whole_request_halves_the_batch_size_and_its_keys_go_again(server, connect):
    # A proxy's body limit, say: smaller requests pass.
    blobs = stored(server, 8)
    server.faults.inject(413, method="BATCH")
    fetcher = connect()
    with BatchPrefetcher(fetcher, max_workers=1, retry=QUICK, fail_fast_after=0) as prefetcher:
        result = prefetcher.fetch_all(blobs)
    assert result.blobs == blobs and not result.errors and fetcher.batch_keys == 4
    server.faults.inject(413, method="BATCH")
    with pytest.raises(FetchError) as alone:  # one operation refused is final
        dict(fetcher.fetch_many([next(iter(blobs))]))
    assert not alone.value.retryable and "413" in alone.value.message


@pytest.mark.parametrize("index", [0, 5])
def test_a_413_past_the_first_operation_lowers_the_batch_size_and_on_the_first_is_final(server, connect, index):
    blobs = stored(server, 6)
    order = list(blobs)
    refused = order[index]
    server.faults.inject(413, key=f"{PREFIX}/{refused}")
    fetcher = connect()

    answers = dict(fetcher.fetch_many(order))

    assert answers[refused].retryable is (index > 0)
    assert fetcher.batch_keys == (index or MAX_BATCH_KEYS)
    del answers[refused], blobs[refused]
    assert answers == blobs


class _CannedAnswer(http.server.BaseHTTPRequestHandler):
    """Answers every batch request with the server's ``answer`` parts, as written."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        boundary = b"os-boundary-0"
        body = b"".join(b"--%s\r\n%scontent-disposition: form-data; name=part\r\n\r\n%s\r\n" % (boundary, head, data)
                        for head, data in self.server.answer) + b"--%s--" % boundary  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("content-type", f'multipart/form-data; boundary="{boundary.decode()}"')
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _QuietServer(http.server.ThreadingHTTPServer):
    """A client dropping a malformed answer may reset the connection: no traceback for that."""

    def handle_error(self, request: object, client_address: object) -> None:
        pass


@pytest.mark.parametrize(("field", "number"), [("index", "²"), ("status", "¹00"), ("index", "1" * 5000),
                                               ("status", "2" * 5000)])
def test_a_part_whose_number_is_not_one_is_an_error_of_the_answer_not_a_crash(field, number):
    # "²" and "¹" (one byte each in the latin-1 that header bytes are read as) are digits to
    # str.isdigit, not to int(); int() refuses more than 4,300 digits.
    keys = [missing(), missing()]
    index, status = (number, "200 OK") if field == "index" else ("0", f"{number} OK")
    answer = [(b"x-sn-batch-operation-index: %s\r\nx-sn-batch-operation-status: %s\r\n"
               % (index.encode("latin-1"), status.encode("latin-1")), b"blob"),
              (b"x-sn-batch-operation-index: 1\r\nx-sn-batch-operation-status: 404 Not Found\r\n", b"")]
    canned = _QuietServer(("127.0.0.1", 0), _CannedAnswer)
    canned.answer = answer  # type: ignore[attr-defined]
    threading.Thread(target=canned.serve_forever, daemon=True).start()
    fetcher = ObjectstoreFetcher.connect(f"http://127.0.0.1:{canned.server_address[1]}", DEFAULT_USECASE,
                                         scopes={"org": 1, "project": 2})
    try:
        answers = list(fetcher.fetch_many(keys))
    except FetchError as exc:  # the whole answer refused: an index that is no number matches no key
        assert field == "index" and exc.retryable and "not asked for" in exc.message
    else:
        assert field == "status"
        error = dict(answers)[keys[0]]
        assert isinstance(error, FetchError) and "no valid status" in error.message
        assert isinstance(dict(answers)[keys[1]], BlobNotFound)
    finally:
        fetcher.close()
        canned.shutdown()
        canned.server_close()
