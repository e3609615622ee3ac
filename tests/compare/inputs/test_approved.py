"""compare.inputs.approved: an approved comparison whose image results are malformed is bad
input naming the file and the image, in ``approve`` and ``compare --approved`` alike."""

from __future__ import annotations

import json

import pytest

from compare.cli import EXIT_BAD_INPUT, EXIT_SAME
from compare.inputs.approved import approved_fingerprints
from compare.inputs.manifest import ManifestError
from tests.compare.helpers import png, run, write_folder

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("no_store_settings_from_environment")]

STATUSES = [["changed"], {"changed": 1}, 3, None, True]


@pytest.mark.parametrize("status", STATUSES)
def test_a_status_that_is_not_a_known_string_names_the_file_and_image(status):
    data = json.dumps({"images": {"ok.png": {"status": "added", "head_hash": "h"},
                                  "a.png": {"status": status}}}).encode()
    with pytest.raises(ManifestError) as caught:
        approved_fingerprints(data, "approved.json")
    assert str(caught.value) == 'approved.json: images["a.png"]: expected an object with a known status'


@pytest.mark.parametrize("status", STATUSES[:2])
def test_approve_and_compare_exit_3_on_such_a_status(tmp_path, capsys, status):
    approved = tmp_path / "approved.json"
    approved.write_text(json.dumps({"images": {"a.png": {"status": status}}}))
    (tmp_path / "store").mkdir()
    base = write_folder(tmp_path / "base", {"a.png": png(1)})
    head = write_folder(tmp_path / "head", {"a.png": png(2)})
    expected = f'{approved}: images["a.png"]: expected an object with a known status'

    code, _, err = run(capsys, "approve", approved, "--store", tmp_path / "store", "--key", "approvals/a.json")
    assert code == EXIT_BAD_INPUT and expected in err

    code, _, err = run(capsys, "compare", "--base", base, "--head", head, "--out", tmp_path / "out",
                       "--approved", approved, "--quiet")
    assert code == EXIT_BAD_INPUT and expected in err


def test_approve_reads_a_comparison_the_store_holds(tmp_path, capsys):
    # As a results store keeps it: approve store:KEY takes it from --store.
    store = tmp_path / "store"
    (store / "results").mkdir(parents=True)
    comparison = {"images": {"a.png": {"status": "changed", "head_hash": "h"}}}
    (store / "results" / "comparison.json").write_text(json.dumps(comparison))

    code, out, err = run(capsys, "approve", "store:results/comparison.json", "--store", store,
                         "--key", "approvals/a.json")

    assert (code, err) == (EXIT_SAME, "")
    assert "approval of 1 images stored under approvals/a.json" in out
    assert json.loads((store / "approvals" / "a.json").read_text()) == comparison


@pytest.mark.parametrize("counted", [False, True])
def test_known_changes_set_aside_are_left_out_of_an_approval_and_counted_ones_kept(counted):
    data = json.dumps({
        "images": {"clock.png": {"status": "changed", "head_hash": "a" * 64},
                   "home.png": {"status": "changed", "head_hash": "b" * 64}},
        "known_changes": {"images": ["clock.png"], "counted": counted},
    }).encode()
    names = {fingerprint[0] for fingerprint in approved_fingerprints(data, "approved.json")}
    assert names == ({"clock.png", "home.png"} if counted else {"home.png"})
