"""S3Fetcher against moto's S3 served by waitress over real sockets (tests/servers/s3.py)."""

from __future__ import annotations

import io
import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.response import StreamingBody
from botocore.stub import Stubber

from fetchers import BlobFetcher, BlobNotFound, FetchError
from fetchers.backends.s3 import S3Fetcher
from testing.s3 import CREDENTIALS, REGION

pytestmark = pytest.mark.integration


def _causes(exc: BaseException) -> list[type[BaseException]]:
    """Types along the chain of causes and contexts below ``exc``."""
    found, seen, current = [], set(), exc.__cause__ or exc.__context__
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found.append(type(current))
        nested = [a for a in current.args if isinstance(a, BaseException)]
        nested += [
            v for v in getattr(current, "kwargs", {}).values() if isinstance(v, BaseException)
        ]
        current = current.__cause__ or current.__context__ or (nested[0] if nested else None)
    return found


def test_is_a_blob_fetcher_with_a_sized_pool(s3_fetcher_factory, s3_bucket):
    fetcher = s3_fetcher_factory(s3_bucket)
    assert isinstance(fetcher, BlobFetcher)
    assert fetcher.max_connections == 32
    assert s3_fetcher_factory(s3_bucket, max_connections=5).max_connections == 5


@pytest.mark.parametrize("size", [0, 1, 1000, 64 * 1024, 1024 * 1024 + 7])
def test_fetches_exact_bytes_with_one_get_and_no_head(
    s3_server, s3_bucket, s3_fetcher_factory, size
):
    data = os.urandom(size)
    s3_server.put_object(s3_bucket, "blob", data)
    fetcher = s3_fetcher_factory(s3_bucket)

    assert fetcher.fetch("blob") == data
    assert fetcher.fetch("blob") == data
    assert s3_server.requests("GET", s3_bucket, "blob") == 2
    assert s3_server.requests("HEAD", s3_bucket, "blob") == 0


@pytest.mark.parametrize("prefix", ["1/2", "/1/2/"])
def test_prefix_is_joined_with_a_slash(s3_server, s3_bucket, s3_fetcher_factory, prefix):
    s3_server.put_object(s3_bucket, "1/2/abc", b"under prefix")
    s3_server.put_object(s3_bucket, "abc", b"at the root")
    fetcher = s3_fetcher_factory(s3_bucket, prefix=prefix)

    assert fetcher.fetch("abc") == b"under prefix"
    assert s3_server.requests("GET", s3_bucket, "1/2/abc") == 1
    assert s3_server.requests("GET", s3_bucket, "abc") == 0


def test_missing_key_is_blob_not_found(s3_bucket, s3_fetcher_factory):
    fetcher = s3_fetcher_factory(s3_bucket, prefix="1/2")
    with pytest.raises(BlobNotFound) as info:
        fetcher.fetch("absent")
    assert info.value.key == "absent"
    assert not info.value.retryable
    assert isinstance(info.value.__cause__, ClientError)


def test_missing_bucket_is_a_permanent_error(s3_server, s3_fetcher_factory):
    fetcher = s3_fetcher_factory("no-such-bucket-here")
    with pytest.raises(FetchError) as info:
        fetcher.fetch("k")
    assert type(info.value) is FetchError
    assert not info.value.retryable
    assert "NoSuchBucket" in str(info.value)


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "../x", "a/./b", "a\\b", "a\nb", "a/.."])
def test_invalid_keys_fail_without_a_request(s3_server, s3_bucket, s3_fetcher_factory, key):
    fetcher = s3_fetcher_factory(s3_bucket)
    before = s3_server.total_requests()
    with pytest.raises(FetchError) as info:
        fetcher.fetch(key)
    assert not info.value.retryable
    assert s3_server.total_requests() == before


@pytest.mark.parametrize(
    ("mode", "retryable", "retry_after", "cause"),
    [
        ("slowdown", True, 3.0, ClientError),
        ("error500", True, None, ClientError),
        ("denied", False, None, ClientError),
        ("truncate", True, None, ResponseStreamingError),
        ("reset", True, None, ConnectionResetError),
    ],
)
def test_fault_is_classified_then_next_fetch_succeeds(
    s3_server, s3_bucket, s3_fetcher_factory, mode, retryable, retry_after, cause
):
    data = os.urandom(200_000)
    s3_server.put_object(s3_bucket, "k", data)
    fetcher = s3_fetcher_factory(s3_bucket)
    s3_server.faults.set(mode, count=1, match="/k", retry_after="3")

    with pytest.raises(FetchError) as info:
        fetcher.fetch("k")
    error = info.value
    assert type(error) is FetchError
    assert (error.retryable, error.retry_after) == (retryable, retry_after)
    assert any(issubclass(found, cause) for found in _causes(error))
    assert CREDENTIALS["aws_secret_access_key"] not in str(error)

    assert fetcher.fetch("k") == data
    assert s3_server.requests("GET", s3_bucket, "k") == 2


def test_sdk_does_not_retry_even_when_the_environment_asks(
    s3_server, s3_bucket, s3_fetcher_factory, monkeypatch
):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "5")
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    s3_server.put_object(s3_bucket, "k", b"x")
    fetcher = s3_fetcher_factory(s3_bucket)
    s3_server.faults.set("slowdown", count=3)

    with pytest.raises(FetchError) as info:
        fetcher.fetch("k")
    assert info.value.retryable
    assert s3_server.requests("GET", s3_bucket, "k") == 1


def test_stall_ends_in_a_retryable_timeout_within_read_timeout(
    s3_server, s3_bucket, s3_fetcher_factory
):
    s3_server.put_object(s3_bucket, "k", b"x")
    fetcher = s3_fetcher_factory(s3_bucket, read_timeout=0.5)
    s3_server.faults.set("stall", seconds=5.0)

    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        fetcher.fetch("k")
    elapsed = time.monotonic() - started
    assert info.value.retryable
    assert isinstance(info.value.__cause__, ReadTimeoutError)
    assert 0.4 < elapsed < 4.0  # ended by the 0.5 s read timeout, not the 5 s stall
    assert s3_server.requests("GET", s3_bucket, "k") == 1


def test_unreachable_endpoint_is_retryable(s3_fetcher_factory):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fetcher = s3_fetcher_factory("b", endpoint_url=f"http://127.0.0.1:{port}", connect_timeout=1.0)
    with pytest.raises(FetchError) as info:
        fetcher.fetch("k")
    assert info.value.retryable
    assert isinstance(info.value.__cause__, EndpointConnectionError)


def test_missing_credentials_are_a_permanent_error(
    s3_server, s3_bucket, s3_fetcher_factory, monkeypatch
):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    fetcher = s3_fetcher_factory(s3_bucket)
    before = s3_server.total_requests()
    with pytest.raises(FetchError) as info:
        fetcher.fetch("k")
    assert not info.value.retryable
    assert isinstance(info.value.__cause__, NoCredentialsError)
    assert s3_server.total_requests() == before


def test_invalid_bucket_name_is_a_permanent_error(s3_server, s3_fetcher_factory):
    fetcher = s3_fetcher_factory("not/a/bucket")
    before = s3_server.total_requests()
    with pytest.raises(FetchError) as info:
        fetcher.fetch("k")
    assert not info.value.retryable
    assert isinstance(info.value.__cause__, ParamValidationError)
    assert s3_server.total_requests() == before


def test_endpoint_from_environment(s3_server, s3_bucket, s3_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    s3_server.put_object(s3_bucket, "k", b"via env")
    with S3Fetcher(s3_bucket) as fetcher:
        assert fetcher.fetch("k") == b"via env"
    assert s3_server.requests("GET", s3_bucket, "k") == 1


def test_given_client_is_used_and_left_open(s3_server, s3_bucket):
    s3_server.put_object(s3_bucket, "k", b"given")
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        region_name=REGION,
        config=Config(max_pool_connections=7),
        **CREDENTIALS,
    )
    try:
        fetcher = S3Fetcher(s3_bucket, client=client)
        assert fetcher.max_connections == 7
        assert fetcher.fetch("k") == b"given"
        fetcher.close()
        assert fetcher.fetch("k") == b"given"
    finally:
        client.close()


def test_body_shorter_than_content_length_is_retryable():
    client = boto3.session.Session().client("s3", region_name=REGION, **CREDENTIALS)
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_object",
            {"Body": StreamingBody(io.BytesIO(b"abc"), 3), "ContentLength": 10},
            {"Bucket": "b", "Key": "k"},
        )
        with pytest.raises(FetchError) as info:
            S3Fetcher("b", client=client).fetch("k")
    assert info.value.retryable
    assert "3 of 10" in str(info.value)
    client.close()


def _fetch_concurrently(s3_server, s3_bucket, s3_fetcher_factory, caplog, pool_size):
    """32 threads fetch 4 keys each; the first 32 GETs are held so all threads overlap.

    Returns (new connections accepted, "Connection pool is full" warnings logged).
    """
    threads, per_thread = 32, 4
    blobs = {f"k{i:03d}": os.urandom(16_384 + i) for i in range(threads * per_thread)}
    for key, data in blobs.items():
        s3_server.put_object(s3_bucket, key, data)
    fetcher = s3_fetcher_factory(s3_bucket, max_connections=pool_size)
    keys = sorted(blobs)
    start = threading.Barrier(threads, timeout=10)

    def work(index: int) -> dict[str, bytes]:
        start.wait()
        mine = keys[index * per_thread : (index + 1) * per_thread]
        return {key: fetcher.fetch(key) for key in mine}

    caplog.set_level(logging.WARNING, logger="urllib3")
    s3_server.faults.set("stall", count=threads, seconds=0.5)
    before = s3_server.connections_accepted
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(work, i) for i in range(threads)]
        fetched = {}
        for future in futures:
            fetched.update(future.result(timeout=30))

    assert fetched == blobs
    assert all(s3_server.requests("GET", s3_bucket, key) == 1 for key in keys)
    full = [r for r in caplog.records if "Connection pool is full" in r.getMessage()]
    return s3_server.connections_accepted - before, full


def test_concurrent_fetches_share_a_sized_pool(s3_server, s3_bucket, s3_fetcher_factory, caplog):
    connections, pool_full = _fetch_concurrently(
        s3_server, s3_bucket, s3_fetcher_factory, caplog, pool_size=32
    )
    assert 1 <= connections <= 32
    assert pool_full == []


def test_undersized_pool_is_detected(s3_server, s3_bucket, s3_fetcher_factory, caplog):
    # The control for the test above: the same load on a pool of 4 logs the warning.
    connections, pool_full = _fetch_concurrently(
        s3_server, s3_bucket, s3_fetcher_factory, caplog, pool_size=4
    )
    assert connections > 4
    assert pool_full
