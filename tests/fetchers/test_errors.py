"""The FetchError family: what callers branch on survives pickling (chunks run in processes)."""

from __future__ import annotations

import pickle

import pytest

from fetchers import BlobNotFound, FetchError, IntegrityError, StoreError, StoreUnavailable, WriteError

pytestmark = pytest.mark.unit

FIELDS = ("key", "message", "retryable", "retry_after", "store_wide", "throttled", "store")


@pytest.mark.parametrize(
    "error",
    [
        BlobNotFound("k"),
        IntegrityError("k"),
        FetchError("k", "throttled", retryable=True, retry_after=2.5, throttled=True),
        WriteError("k", "denied", store_wide=True, store="s3://b/p"),
        StoreUnavailable("gs://b/p", FetchError("k", "HTTP 403", store_wide=True)),
    ],
)
def test_errors_round_trip_through_pickle(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error)
    assert [getattr(copy, f) for f in FIELDS] == [getattr(error, f) for f in FIELDS]


def test_the_hierarchy():
    assert issubclass(FetchError, StoreError) and issubclass(WriteError, StoreError)
    assert issubclass(StoreUnavailable, FetchError) and issubclass(StoreUnavailable, WriteError)
    assert not issubclass(WriteError, FetchError)
    error = StoreUnavailable("s3://b/p", FetchError("k", "S3 NoSuchBucket (HTTP 404)", store_wide=True))
    assert str(error) == "s3://b/p: store unavailable: S3 NoSuchBucket (HTTP 404)"
    assert error.cause is error.__cause__
    assert str(BlobNotFound("k")) == "'k': no such blob"
    named = BlobNotFound("k")
    named.store = "s3://b/p"
    assert str(named) == "s3://b/p: 'k': no such blob"


def test_classification_defaults():
    assert not BlobNotFound("k").retryable
    assert IntegrityError("k").retryable
    assert not FetchError("k").retryable
    assert str(FetchError("k", "denied")) == "'k': denied"
