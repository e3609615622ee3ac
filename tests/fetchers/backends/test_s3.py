"""S3Fetcher against moto's S3 served by waitress (``testing/s3.py``): what only S3 does, its
error codes, credentials and client; what every store does is in ``test_contract``."""

from __future__ import annotations

import io
import os

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    NoCredentialsError,
    ParamValidationError,
    ResponseStreamingError,
)
from botocore.httpsession import URLLib3Session
from botocore.response import StreamingBody
from botocore.stub import Stubber

from fetchers import BlobTooLarge, FetchError, fetcher_from_url
from fetchers.backends import UnsupportedSDK
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


@pytest.mark.parametrize(
    ("mode", "retryable", "retry_after", "store_wide", "cause"),
    [
        ("slowdown", True, 3.0, False, ClientError),  # S3's SlowDown code, with its Retry-After
        ("error500", True, None, False, ClientError),  # InternalError
        ("denied", False, None, True, ClientError),  # AccessDenied
        ("truncate", True, None, False, ResponseStreamingError),
        ("reset", True, None, False, ConnectionResetError),
    ],
)
def test_an_s3_fault_is_classified_then_the_next_fetch_succeeds(
    s3_server, s3_bucket, s3_fetcher_factory, mode, retryable, retry_after, store_wide, cause
):
    data = os.urandom(200_000)
    s3_server.put_object(s3_bucket, "k", data)
    fetcher = s3_fetcher_factory(s3_bucket)
    s3_server.faults.set(mode, count=1, match="/k", retry_after="3")

    with pytest.raises(FetchError) as info:
        fetcher.fetch("k")
    error = info.value
    assert type(error) is FetchError
    assert (error.retryable, error.retry_after, error.store_wide) == (retryable, retry_after, store_wide)
    assert error.throttled is (mode == "slowdown")
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


def test_an_answer_declaring_no_length_is_read_no_further_than_max_blob_bytes():
    # A chunked answer (an S3-compatible server, a proxy) declares no ContentLength.
    class Counted(io.BytesIO):
        given = 0

        def read(self, size: int | None = -1) -> bytes:
            data = super().read(size)
            self.given += len(data)
            return data

    client = boto3.session.Session().client("s3", region_name=REGION, **CREDENTIALS)
    bodies = [Counted(bytes(5_000_000)), Counted(bytes(1_000))]
    with Stubber(client) as stubber:
        for body in bodies:
            stubber.add_response("get_object", {"Body": StreamingBody(body, None)}, {"Bucket": "b", "Key": "k"})
        fetcher = S3Fetcher("b", client=client, max_blob_bytes=1_000)
        with pytest.raises(BlobTooLarge) as info:
            fetcher.fetch("k")
        assert fetcher.fetch("k") == bytes(1_000)
    assert not info.value.retryable and "more than the 1,000 bytes" in info.value.message
    assert bodies[0].given <= 1_001  # read no further
    client.close()


def test_a_botocore_without_the_internals_it_needs_is_refused_by_name(s3_bucket, s3_fetcher_factory, monkeypatch):
    original = URLLib3Session.__init__

    def without_pool_classes(self, *args, **kwargs):
        original(self, *args, **kwargs)
        del self._pool_classes_by_scheme

    monkeypatch.setattr(URLLib3Session, "__init__", without_pool_classes)
    with pytest.raises(UnsupportedSDK, match=r"^botocore \S+ is not supported: "
                                             r"URLLib3Session\._pool_classes_by_scheme is missing; "
                                             r"install botocore>=1\.35,<2$"):
        s3_fetcher_factory(s3_bucket)


@pytest.mark.parametrize(
    "endpoint", ["http://AKIA:s3cr3t@127.0.0.1:9", "http://AKIA:s3cr3t@bad_host_name:9000", "http://AKIA:s3cr3t@[::1"]
)
@pytest.mark.parametrize("given_as", ["option", "environment"])
def test_an_endpoint_carrying_credentials_is_refused_without_echo(s3_env, monkeypatch, endpoint, given_as):
    options = {"region_name": REGION}
    if given_as == "option":
        options["endpoint_url"] = endpoint
    else:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    with pytest.raises(ValueError, match="endpoint URL") as info:
        fetcher_from_url("s3://bucket/p", **options)
    error = info.value
    for text in (str(error), repr(error), repr(error.__cause__), repr(error.__context__)):
        assert "s3cr3t" not in text and "AKIA" not in text


@pytest.mark.parametrize(("mode", "told_later"), [("slowdown", True), ("error500", True), ("denied", False)])
def test_a_bucket_check_that_may_pass_is_asked_again_a_denied_one_not(s3_server, s3_fetcher_factory, mode,
                                                                      told_later):
    # exists is an object HEAD, then after its 404 a HeadBucket: the fault is armed as the first
    # HeadBucket is sent (the client's own method, wrapped: the server cannot tell the two by path).
    bucket = f"missing-{os.urandom(4).hex()}"
    fetcher = s3_fetcher_factory(bucket)
    s3_server.faults.clear()  # none another test left armed
    head_bucket, calls = fetcher._client.head_bucket, []

    def failing_first(**kwargs):
        calls.append(1)
        if len(calls) == 1:  # for this bucket's requests only: no other test's takes it
            s3_server.faults.set(mode, method="HEAD", match=f"/{bucket}")
        return head_bucket(**kwargs)

    fetcher._client.head_bucket = failing_first
    assert fetcher.exists("a") is False  # the bucket could not be told missing: the key's own 404
    for key in ("b", "c"):
        if told_later:
            with pytest.raises(FetchError) as caught:
                fetcher.exists(key)
            assert caught.value.store_wide and "NoSuchBucket" in caught.value.message
        else:  # denied: the store cannot tell, for good
            assert fetcher.exists(key) is False
    assert len(calls) == (2 if told_later else 1)
