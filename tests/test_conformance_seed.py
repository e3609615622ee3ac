"""The repository's conformance data (conformance/cases) agrees with the seed it was first checked
against, shared/diff-conformance beside the repository, wherever that folder is: the same cases and
inputs, every engine's values for every option set, every mask pixel for pixel (the repository's
own cases and its odiff size-rule files go beyond the seed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance import CASES, case_names
from conformance.check import disagreements

SEED = Path(__file__).resolve().parents[2] / "shared" / "diff-conformance"  # beside the repository

pytestmark = [pytest.mark.unit, pytest.mark.skipif(
    not SEED.is_dir(), reason=f"no seed conformance data at {SEED} (a clone on its own has none)")]


def test_every_seed_case_is_here() -> None:
    assert set(case_names(SEED)) <= set(case_names(CASES))


@pytest.mark.parametrize("case", case_names(SEED) if SEED.is_dir() else [])
def test_case_agrees(case: str) -> None:
    problems = disagreements(CASES / case, SEED / case)
    assert not problems, "\n".join(problems)
