"""The repository's conformance data (conformance/cases) agrees with the seed it was first checked
against, shared/diff-conformance beside the repository, wherever that folder is: the same cases and
inputs, every engine's values for every option set, every mask pixel for pixel."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance import CASES, case_names
from conformance.check import disagreements

SEED = Path(__file__).resolve().parents[2] / "shared" / "diff-conformance"  # beside the repository

pytestmark = pytest.mark.skipif(
    not SEED.is_dir(), reason=f"no seed conformance data at {SEED} (a clone on its own has none)")


def test_same_cases() -> None:
    assert case_names(CASES) == case_names(SEED)


@pytest.mark.parametrize("case", case_names(CASES))
def test_case_agrees(case: str) -> None:
    problems = disagreements(CASES / case, SEED / case)
    assert not problems, "\n".join(problems)
