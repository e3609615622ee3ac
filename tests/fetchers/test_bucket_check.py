"""BucketCheck: after a 404, the bucket is asked about once per answer the store gives, however
many threads want to know at the same time; a failure that may pass is asked about again."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from fetchers.protocol import BucketCheck
from testing.waiting import PATIENCE

pytestmark = pytest.mark.unit


def counted(
    answers: list[bool | None | BaseException], gate: threading.Event | None = None
) -> tuple[Callable[[], bool | None], list[int]]:
    """A ``bucket_exists`` giving ``answers`` in turn (raising one that is an exception), each
    once ``gate`` is set; and the list of its calls."""
    calls: list[int] = []

    def bucket_exists() -> bool | None:
        calls.append(1)
        if gate is not None:
            assert gate.wait(PATIENCE)
        answer = answers[len(calls) - 1]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    return bucket_exists, calls


@pytest.mark.parametrize(("answer", "missing"), [(True, False), (False, True), (None, False)])
def test_the_first_answer_stands(answer, missing):
    bucket_exists, calls = counted([answer])
    check = BucketCheck(bucket_exists)
    assert [check.bucket_missing() for _ in range(5)] == [missing] * 5
    assert len(calls) == 1


def test_callers_that_come_while_the_bucket_is_asked_about_wait_for_that_answer():
    # Credentials that may not read the bucket's metadata: the store cannot tell.
    gate = threading.Event()
    bucket_exists, calls = counted([None], gate)
    check = BucketCheck(bucket_exists)
    with ThreadPoolExecutor(16) as pool:
        asking = pool.submit(check.bucket_missing)
        waiting = [pool.submit(check.bucket_missing) for _ in range(15)]
        gate.set()
        answers = [future.result(PATIENCE) for future in (asking, *waiting)]
    assert answers == [False] * 16 and len(calls) == 1


def test_a_failure_that_may_pass_leaves_the_404_to_the_key_and_is_asked_again():
    # A 503 or a timeout on the first request must not hide a missing bucket for good.
    bucket_exists, calls = counted([OSError("timed out"), RuntimeError("503"), False])
    check = BucketCheck(bucket_exists)
    assert [check.bucket_missing() for _ in range(4)] == [False, False, True, True]
    assert len(calls) == 3


@pytest.mark.parametrize("failure", [OSError("timed out"), KeyboardInterrupt()])
def test_callers_waiting_on_a_request_that_fails_take_its_outcome_and_none_waits_for_ever(failure):
    # Each asking again, one after the other, would cost a store in an outage N timeouts.
    gate = threading.Event()
    bucket_exists, calls = counted([failure, False], gate)
    check = BucketCheck(bucket_exists)
    with ThreadPoolExecutor(8) as pool:
        asking = pool.submit(check.bucket_missing)
        while not calls:
            threading.Event().wait(0.001)
        waiting = [pool.submit(check.bucket_missing) for _ in range(7)]
        while len(check._changed._waiters) < 7:  # type: ignore[attr-defined]  # all seven wait
            threading.Event().wait(0.001)
        gate.set()
        if isinstance(failure, KeyboardInterrupt):
            with pytest.raises(KeyboardInterrupt):
                asking.result(PATIENCE)
        else:
            assert asking.result(PATIENCE) is False
        assert [future.result(PATIENCE) for future in waiting] == [False] * 7
    assert len(calls) == 1
    assert check.bucket_missing() is True and len(calls) == 2  # a caller coming later asks again
