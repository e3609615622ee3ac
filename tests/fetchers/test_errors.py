"""The FetchError family: what callers branch on survives pickling (chunks run in processes)."""

from __future__ import annotations

import pickle

import pytest

from fetchers import BlobNotFound, FetchError, IntegrityError


@pytest.mark.parametrize(
    "error",
    [BlobNotFound("k"), IntegrityError("k"), FetchError("k", "throttled", retryable=True, retry_after=2.5)],
)
def test_errors_round_trip_through_pickle(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert (copy.key, copy.message, copy.retryable, copy.retry_after) == (
        error.key, error.message, error.retryable, error.retry_after,
    )


def test_classification_defaults():
    assert not BlobNotFound("k").retryable
    assert IntegrityError("k").retryable
    assert not FetchError("k").retryable
    assert str(FetchError("k", "denied")) == "'k': denied"
