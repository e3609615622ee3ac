"""The repository's conformance data (conformance/cases) agrees with the seed it was first checked
against, shared/diff-conformance: the same cases and inputs, every engine's values for every
option set, every mask pixel for pixel (the repository's own cases and its odiff size-rule files
go beyond the seed). A clone on its own checks against conformance/seed.json, the seed's record
(`conformance.check.digest` of each of its cases); where the seed itself is beside the
repository, the record is checked against it too, and the cases compared file by file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance import CASES, case_names
from conformance.check import digest, disagreements

SEED = Path(__file__).resolve().parents[2] / "shared" / "diff-conformance"  # beside the repository, if at all
RECORD = json.loads((CASES.parent / "seed.json").read_text())

pytestmark = pytest.mark.unit


def test_the_record_names_cases_that_are_here() -> None:
    assert RECORD and set(RECORD) <= set(case_names(CASES))


@pytest.mark.parametrize("case", sorted(RECORD))
def test_case_agrees_with_the_seed_s_record(case: str) -> None:
    assert digest(CASES / case) == RECORD[case]


@pytest.mark.skipif(not SEED.is_dir(), reason=f"no seed beside the repository at {SEED}: the record stands for it")
def test_the_record_is_the_seed_s_and_the_cases_agree_file_by_file() -> None:
    assert sorted(RECORD) == case_names(SEED)
    for case in RECORD:
        assert digest(SEED / case) == RECORD[case], case
        problems = disagreements(CASES / case, SEED / case)
        assert not problems, f"{case}:\n" + "\n".join(problems)
