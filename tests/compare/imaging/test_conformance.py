"""diff_images against the reference results in conformance/cases, for every engine
(pixelmatch 7.2.0: expected.json; pixelmatch c6fee35 OKLab: expected.oklab.json; odiff 4.5.0 on
the padded canvas, as Sentry runs it: expected.odiff.json, and on the images as they are where
their sizes differ: expected.odiff-sizes.json), every case and option set, through every
decoder path (the `decoder` fixture of conftest.py)."""

from __future__ import annotations

import json

import pytest

from conformance import CASES as CONFORMANCE_DIR

from .conformance_cases import REFERENCES, Path, diff_as_expected

pytestmark = pytest.mark.unit


def _cases() -> list:
    missing = f"conformance data not found at {CONFORMANCE_DIR}: it is part of the repository"
    if not CONFORMANCE_DIR.is_dir():
        return [pytest.param(None, None, missing, 0, id="no-conformance-data")]
    params = []
    for engine, (_, expected_file, _, _) in REFERENCES.items():
        found = 0
        for case in sorted(p for p in CONFORMANCE_DIR.iterdir() if (p / expected_file).is_file()):
            expected = json.loads((case / expected_file).read_text())
            for index, result in enumerate(expected["results"]):
                label = "-".join([engine, case.name] + [f"{k}={v}" for k, v in result["options"].items()])
                params.append(pytest.param(engine, case.name, expected, index, id=label))
                found += 1
        if not found:
            params.append(pytest.param(None, None, f"no {expected_file} under {CONFORMANCE_DIR}", 0,
                                       id=f"no-{engine}-data"))
    return params


@pytest.mark.parametrize(("reference", "case", "expected", "index"), _cases())
def test_matches_reference(reference, case, expected, index: int, decoder: Path) -> None:
    if reference is None:
        pytest.fail(expected)
    diff_as_expected(reference, case, expected, index, decoder)
