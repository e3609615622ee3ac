"""What a team relies on between runs: approvals kept in the store and checked, results keyed
by artifact ids, through `compare_builds` and the ``snapcompare`` command."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from compare.builds import compare_builds
from compare.cli import EXIT_BAD_INPUT, EXIT_DIFFERENCES, EXIT_ERRORED, EXIT_SAME, main
from compare.model import ApprovalMismatch, CompareOptions, InputError, Resources
from compare.output.reports import write_reports

pytestmark = pytest.mark.unit


def png(colour: tuple[int, int, int], size: tuple[int, int] = (12, 10)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", size, (*colour, 255)).save(out, format="PNG")
    return out.getvalue()


class Builds:
    """A local folder store and manifests written beside it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = root / "store"
        self.store.mkdir(parents=True)

    def manifest(self, name: str, images: dict[str, bytes]) -> Path:
        entries = {}
        for image, data in images.items():
            key = hashlib.sha256(data).hexdigest()
            (self.store / key).write_bytes(data)
            entries[image] = {"content_hash": key, "width": 12, "height": 10}
        path = self.root / f"{name}.json"
        path.write_text(json.dumps({"images": entries}))
        return path

    def compare(self, base: Path, head: Path, out: str, *extra: str) -> tuple[int, dict]:
        code = main(["compare", "--base", str(base), "--head", str(head), "--store", str(self.store),
                     "--out", str(self.root / out), "--quiet", *extra])
        report = json.loads((self.root / out / "comparison.json").read_text()) if code < 3 else {}
        return code, report


@pytest.fixture
def builds(tmp_path: Path) -> Builds:
    return Builds(tmp_path)


GREY, RED, BLUE, GREEN = (128, 128, 128), (200, 20, 20), (20, 20, 200), (20, 160, 20)


def test_an_approval_stored_with_approve_carries_over_from_the_store(builds, capsys):
    base = builds.manifest("base", {"a.png": png(GREY), "b.png": png(GREY), "same.png": png(GREY)})
    head = builds.manifest("head", {"a.png": png(RED), "b.png": png(BLUE), "same.png": png(GREY)})
    code, _ = builds.compare(base, head, "first")
    assert code == EXIT_DIFFERENCES
    capsys.readouterr()

    code = main(["approve", str(builds.root / "first" / "comparison.json"), "--store", str(builds.store),
                 "--key", "approvals/pr-7.json"])

    assert code == EXIT_SAME
    assert "approval of 2 images stored under approvals/pr-7.json" in capsys.readouterr().out
    stored = builds.store / "approvals" / "pr-7.json"
    assert stored.read_bytes() == (builds.root / "first" / "comparison.json").read_bytes()
    code, report = builds.compare(base, head, "second", "--approved", "store:approvals/pr-7.json")
    assert code == EXIT_SAME
    assert report["approval"]["carried_over_from"] == "store:approvals/pr-7.json"


@pytest.mark.parametrize(("content", "message"), [
    (b"{", "invalid JSON"),
    (json.dumps({"images": {"a.png": {"status": "unchanged"}}}).encode(), "nothing to approve"),
    (json.dumps({"summary": {}}).encode(), "images: expected a JSON object of image results"),
])
def test_approve_refuses_what_is_not_an_approval_naming_it(builds, capsys, content, message):
    comparison = builds.root / "comparison.json"
    comparison.write_bytes(content)

    code = main(["approve", str(comparison), "--store", str(builds.store), "--key", "approvals/x.json"])

    assert code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert str(comparison) in err and message in err
    assert not (builds.store / "approvals").exists()


@pytest.mark.parametrize("key", ["../outside.json", "/abs.json", ""])
def test_approve_refuses_a_bad_key(builds, capsys, key):
    comparison = builds.root / "comparison.json"
    comparison.write_text(json.dumps({"images": {"a.png": {"status": "removed"}}}))
    assert main(["approve", str(comparison), "--store", str(builds.store), "--key", key]) == EXIT_BAD_INPUT
    assert "--key" in capsys.readouterr().err


def test_an_approval_that_does_not_match_says_which_images_differ(builds, tmp_path):
    base = builds.manifest("base", {"a.png": png(GREY), "b.png": png(GREY), "c.png": png(GREY)})
    approved_head = builds.manifest("approved", {"a.png": png(RED), "b.png": png(BLUE), "c.png": png(GREY)})
    builds.compare(base, approved_head, "approved")
    head = builds.manifest("head", {"a.png": png(RED), "b.png": png(GREEN), "c.png": png(BLUE)})

    comparison = compare_builds(base, head, store=str(builds.store), out_dir=tmp_path / "out",
                                options=CompareOptions(), resources=Resources(workers=1),
                                approved=builds.root / "approved" / "comparison.json")

    assert comparison.approval is None
    assert comparison.approval_mismatch == ApprovalMismatch(
        source=str(builds.root / "approved" / "comparison.json"),
        unapproved=("b.png", "c.png"), not_present=("b.png",))


def test_an_approval_of_more_changes_than_this_run_has_does_not_carry_over(builds, tmp_path):
    # "Exactly the approved ones": a change approved and gone since is a difference too.
    base = builds.manifest("base", {"a.png": png(GREY), "b.png": png(GREY)})
    approved_head = builds.manifest("approved", {"a.png": png(RED), "b.png": png(BLUE)})
    builds.compare(base, approved_head, "approved")
    head = builds.manifest("head", {"a.png": png(RED), "b.png": png(GREY)})

    comparison = compare_builds(base, head, store=str(builds.store), out_dir=tmp_path / "out",
                                options=CompareOptions(), resources=Resources(workers=1),
                                approved=builds.root / "approved" / "comparison.json")

    assert comparison.approval is None
    assert comparison.approval_mismatch == ApprovalMismatch(
        source=str(builds.root / "approved" / "comparison.json"), unapproved=(), not_present=("b.png",))


def test_an_approval_covering_errored_images_names_them(builds, tmp_path):
    base = builds.manifest("base", {"a.png": png(GREY), "broken.png": png(GREY)})
    head_images = {"a.png": png(RED), "broken.png": b"\x89PNG\r\n\x1a\n not a png"}
    head = builds.manifest("head", head_images)
    code, _ = builds.compare(base, head, "first")
    assert code == EXIT_ERRORED

    comparison = compare_builds(base, head, store=str(builds.store), out_dir=tmp_path / "out",
                                options=CompareOptions(), resources=Resources(workers=1),
                                approved=builds.root / "first" / "comparison.json")

    assert comparison.approval is not None and comparison.approval_mismatch is None
    assert comparison.approval.images == ("a.png", "broken.png")


@pytest.mark.parametrize("ids", [(), ("--head-artifact-id", "42"), ("--base-artifact-id", "41")])
def test_results_need_both_artifact_ids(builds, capsys, ids):
    base = builds.manifest("base", {"a.png": png(GREY)})
    head = builds.manifest("head", {"a.png": png(RED)})
    results = builds.root / "results"
    results.mkdir()

    code, _ = builds.compare(base, head, "out", "--results-store", str(results), *ids)

    assert code == EXIT_BAD_INPUT
    assert "--results-store needs --head-artifact-id and --base-artifact-id" in capsys.readouterr().err
    assert not list(results.iterdir())


def test_results_with_both_artifact_ids_are_written_under_them(builds):
    base = builds.manifest("base", {"a.png": png(GREY)})
    head = builds.manifest("head", {"a.png": png(RED)})
    results = builds.root / "results"
    results.mkdir()

    code, _ = builds.compare(base, head, "out", "--results-store", str(results),
                             "--head-artifact-id", "42", "--base-artifact-id", "41")

    assert code == EXIT_DIFFERENCES
    assert json.loads((results / "42" / "41" / "comparison.json").read_text())["head_artifact_id"] == 42


def test_the_library_refuses_results_without_artifact_ids(builds, tmp_path):
    base = builds.manifest("base", {"a.png": png(GREY)})
    head = builds.manifest("head", {"a.png": png(RED)})
    with pytest.raises(InputError, match="artifact"):
        compare_builds(base, head, store=str(builds.store), out_dir=tmp_path / "out",
                       results_store=str(builds.store))


def test_the_summary_names_what_kept_an_approval_from_carrying_over(builds, capsys):
    base = builds.manifest("base", {"a.png": png(GREY), "b.png": png(GREY)})
    builds.compare(base, builds.manifest("approved", {"a.png": png(RED), "b.png": png(GREY)}), "approved")
    head = builds.manifest("head", {"a.png": png(RED), "b.png": png(BLUE)})
    approved = builds.root / "approved" / "comparison.json"
    capsys.readouterr()

    code = main(["compare", "--base", str(base), "--head", str(head), "--store", str(builds.store),
                 "--out", str(builds.root / "out"), "--approved", str(approved)])

    out = capsys.readouterr().out
    assert code == EXIT_DIFFERENCES
    assert f"Not approved: {approved} does not hold this run's changes" in out
    assert "changes here that it does not approve:\n    b.png\n" in out
    assert "approved changes that are not here" not in out
    assert f"the approval {approved} does not match" in out.splitlines()[-1]


def test_a_comparison_without_an_output_folder_is_kept_in_memory(builds, tmp_path):
    base = builds.manifest("base", {"a.png": png(GREY), "b.png": png(GREY)})
    head = builds.manifest("head", {"a.png": png(RED), "b.png": png(GREY), "new.png": png(BLUE)})

    comparison = compare_builds(
        base, head, store=str(builds.store), options=CompareOptions(), resources=Resources(workers=1)
    )

    assert {name: r.status.value for name, r in comparison.images.items()} == {
        "a.png": "changed", "b.png": "unchanged", "new.png": "added"}
    changed = comparison.images["a.png"]
    assert (changed.changed_pixels, changed.diff_mask_key, changed.previews) == (120, None, None)
    assert not list(tmp_path.glob("**/diff"))
    reports = write_reports(comparison, tmp_path / "later")
    assert json.loads(reports["json"].read_text())["images"]["a.png"]["changed_pixels"] == 120
    assert "unavailable" not in reports["html"].read_text()


@pytest.mark.parametrize("command", ["approve", "known-changes"])
def test_a_fifo_given_as_a_comparison_is_never_opened(builds, capsys, command):
    fifo = builds.root / "comparison.json"
    os.mkfifo(fifo)
    extra = (["--store", str(builds.store), "--key", "approvals/x.json"] if command == "approve"
             else ["-o", str(builds.root / "known.json")])

    assert main([command, str(fifo), *extra]) == EXIT_BAD_INPUT
    assert f"COMPARISON {str(fifo)!r}: not a regular file (a FIFO)" in capsys.readouterr().err
