"""MemoryBudget: bytes acquired and released by owner against a limit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compare.engine.budget import MemoryBudget

pytestmark = pytest.mark.unit


def test_owners_acquire_and_release_what_they_hold():
    budget = MemoryBudget(100)
    budget.acquire(("blob", "a"), 30)
    budget.acquire(("blob", "a"), 10)  # adds to what the owner holds
    budget.acquire(("diff", 1), 50)

    assert budget.used == 90 and budget.fits(10) and not budget.fits(11)
    assert budget.holds(("blob", "a")) and not budget.holds(("blob", "b"))
    assert budget.release(("blob", "a")) == 40
    assert budget.release(("blob", "a")) == 0  # releasing twice frees nothing more
    assert budget.used == 50


def test_acquiring_may_go_over_the_limit_and_says_so():
    budget = MemoryBudget(10)
    budget.acquire("the one diff that always runs", 25)
    assert budget.over and not budget.fits(0)
    budget.release("the one diff that always runs")
    assert not budget.over and budget.fits(10)


def test_a_zero_byte_owner_is_held():
    budget = MemoryBudget(1)
    budget.acquire("failed fetch", 0)
    assert budget.holds("failed fetch") and budget.used == 0


@pytest.mark.parametrize("limit", [0, -5])
def test_a_limit_must_be_positive(limit):
    with pytest.raises(ValueError, match="positive"):
        MemoryBudget(limit)


def test_a_negative_size_is_refused():
    with pytest.raises(ValueError, match="negative"):
        MemoryBudget(10).acquire("x", -1)


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5), st.integers(0, 1000)), max_size=60))
def test_used_is_what_the_owners_hold(steps):
    budget = MemoryBudget(2000)
    held: dict[int, int] = {}
    for acquire, owner, size in steps:
        if acquire:
            budget.acquire(owner, size)
            held[owner] = held.get(owner, 0) + size
        else:
            assert budget.release(owner) == held.pop(owner, 0)
        assert budget.used == sum(held.values())
        assert budget.over == (budget.used > 2000)
        assert budget.fits(0) == (budget.used <= 2000)
        assert not budget.fits(2001 - budget.used)
