"""How an approval given with ``--approved`` shows in the three reports: junit.xml passes what it
covers, comparison.json lists it, report.html says so at the top; a mismatch is named in each."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

from compare.builds import compare_builds
from compare.model import (
    Approval,
    ApprovalMismatch,
    CompareOptions,
    Comparison,
    ImageResult,
    Reason,
    Resources,
    Status,
)
from compare.output.report_html import BANNER_NAMES, iter_html
from compare.output.report_json import comparison_dict, render_json
from compare.output.report_junit import render_junit
from compare.output.reports import write_reports
from tests.compare.output.helpers import XSS_IMG, Page, changed, fake_hash
from tests.sentry_models import ComparisonManifest

pytestmark = pytest.mark.unit

SOURCE = "approved/comparison.json"
HOSTILE_SOURCE = f"approved/{XSS_IMG}\u202e.json"
APPROVED = ("gone.png", "new.png", "screens/crash.png", "screens/home.png")


def approval_comparison() -> Comparison:
    """A change, an error, an addition and a removal (what an approval covers), and the rest."""
    images = [
        changed("screens/home.png", 0.25),
        ImageResult("screens/crash.png", Status.ERRORED, base_hash=fake_hash("1"),
                    reason=Reason.IMAGE_PROCESSING_FAILED, detail="truncated PNG"),
        ImageResult("new.png", Status.ADDED, head_hash=fake_hash("2")),
        ImageResult("gone.png", Status.REMOVED, base_hash=fake_hash("3")),
        ImageResult("same.png", Status.UNCHANGED, base_hash=fake_hash("4"), head_hash=fake_hash("4")),
        ImageResult("tablet/skip.png", Status.SKIPPED, base_hash=fake_hash("5")),
    ]
    return Comparison(images={r.name: r for r in images}, options=CompareOptions())


def suite_counts(suite: ET.Element) -> dict[str, str]:
    return {key: suite.attrib[key] for key in ("tests", "failures", "errors", "skipped")}


def cases(suite: ET.Element) -> dict[str, ET.Element]:
    return {case.attrib["name"]: case for case in suite.findall("testcase")}


def properties(case: ET.Element) -> dict[str, str]:
    return {p.attrib["name"]: p.attrib["value"] for p in case.findall("properties/property")}


def banner(text: str) -> Page:
    """The page's approval banner, parsed."""
    [found] = re.findall(r"<aside class=\"banner.*?</aside>", text, flags=re.DOTALL)
    return Page(found)


def verdict(text: str) -> str:
    [found] = re.findall(r'<p class="verdict [a-z]+">(.*?)</p>', text)
    return found


def item_ids(text: str) -> dict[str, str]:
    """Each image entry's id -> its (new) name: the page's script gives the entry of the
    image at position N in its JSON the id ``image-N``."""
    return {f"image-{n}": image["name"] for n, image in enumerate(Page(text).report_data()["images"])}


# junit.xml


def test_junit_passes_every_image_an_approval_covers() -> None:
    comparison = approval_comparison()
    assert suite_counts(ET.fromstring(render_junit(comparison))) == {
        "tests": "6", "failures": "1", "errors": "1", "skipped": "1"}

    comparison.approval = Approval(SOURCE, "f" * 64, APPROVED)
    suite = ET.fromstring(render_junit(comparison))

    assert suite_counts(suite) == {"tests": "6", "failures": "0", "errors": "0", "skipped": "1"}
    by_name = cases(suite)
    for name in APPROVED:
        case = by_name[name]
        assert case.find("failure") is None and case.find("error") is None
        status = comparison.images[name].status.value
        assert properties(case) == {"status": status, "approved": SOURCE}
        assert case.find("system-out").text.endswith(f"; approved, carried over from {SOURCE}")
    assert by_name["screens/home.png"].find("system-out").text.startswith(
        "changed: 25% of pixels changed (60 of 240)")
    assert by_name["screens/crash.png"].find("system-out").text.startswith(
        "errored: image_processing_failed: truncated PNG")
    assert properties(by_name["same.png"]) == {"status": "unchanged"}
    assert by_name["tablet/skip.png"].find("skipped") is not None


def test_junit_keeps_failing_what_a_mismatched_approval_does_not_cover() -> None:
    comparison = approval_comparison()
    comparison.approval_mismatch = ApprovalMismatch(
        HOSTILE_SOURCE, unapproved=("new.png", "screens/home.png"), not_present=("old.png",))

    data = render_junit(comparison)

    assert "\u202e".encode() not in data
    shown = HOSTILE_SOURCE.replace("\u202e", "\\u202e")
    suite = ET.fromstring(data)
    assert suite_counts(suite) == {"tests": "6", "failures": "1", "errors": "1", "skipped": "1"}
    by_name = cases(suite)
    home = by_name["screens/home.png"]
    assert properties(home) == {"status": "changed", "not_approved": shown}
    assert home.find("failure").attrib["message"].endswith(
        f"; this change is not in the approval given ({shown})")
    added = by_name["new.png"]
    assert properties(added) == {"status": "added", "not_approved": shown}
    assert added.find("system-out").text == f"added; this change is not in the approval given ({shown})"
    # Changes the approval holds still fail: it does not carry over as a whole.
    crash = by_name["screens/crash.png"]
    assert properties(crash) == {"status": "errored"}
    assert "approval" not in crash.find("error").attrib["message"]


# comparison.json


def test_json_lists_what_an_approval_covers_and_validates_as_sentrys() -> None:
    comparison = approval_comparison()
    assert comparison_dict(comparison)["approval"] is None
    assert comparison_dict(comparison)["approval_mismatch"] is None

    comparison.approval = Approval(SOURCE, "f" * 64, APPROVED)
    data = json.loads(render_json(comparison))

    assert data["approval"] == {"carried_over_from": SOURCE, "fingerprint": "f" * 64,
                                "images": list(APPROVED)}
    assert data["approval_mismatch"] is None
    assert ComparisonManifest.model_validate(data).summary.total == 6


def test_json_says_how_an_approval_does_not_match() -> None:
    comparison = approval_comparison()
    comparison.approval_mismatch = ApprovalMismatch(
        SOURCE, unapproved=("new.png", "screens/home.png"), not_present=("old.png",))

    data = json.loads(render_json(comparison))

    assert data["approval"] is None
    assert data["approval_mismatch"] == {
        "source": SOURCE, "unapproved": ["new.png", "screens/home.png"], "not_present": ["old.png"]}
    ComparisonManifest.model_validate(data)


# report.html


def test_html_banner_names_the_approval_and_the_images_it_covered(tmp_path: Path) -> None:
    comparison = approval_comparison()
    comparison.approval = Approval(HOSTILE_SOURCE, "0123456789ab" + "f" * 52, APPROVED)

    text = "".join(iter_html(comparison, tmp_path))

    page = Page(text)
    assert verdict(text) == "Some images could not be compared, all approved"
    assert page.title == "snapcompare: approved: 1 changed, 1 errored, 1 added, 1 removed, 1 skipped"
    found = banner(text)
    words = " ".join("".join(found.texts).split())
    shown = HOSTILE_SOURCE.replace("\u202e", "\\u202e")
    assert f"Approved: the changes of 4 images carried over from {shown}" in words
    assert "0123456789ab" in words
    assert XSS_IMG not in text and "\u202e" not in text[: text.index('<script type="application/json"')]
    # Every covered name is listed, linked to its entry below.
    ids = item_ids(text)
    links = {name: a["href"] for name, a in zip(found.names, found.find("a"), strict=True)}
    assert sorted(links) == sorted(APPROVED)
    assert all(ids[href.removeprefix("#")] == name for name, href in links.items())
    assert text.index("<aside") < text.index('<section data-status="changed"')


def test_html_banner_says_what_a_mismatched_approval_misses(tmp_path: Path) -> None:
    comparison = approval_comparison()
    extra = [f"screens/extra-{i:02d}.png" for i in range(BANNER_NAMES + 10)]
    comparison.images.update(
        {name: ImageResult(name, Status.ADDED, head_hash=fake_hash("6")) for name in extra})
    comparison.approval_mismatch = ApprovalMismatch(
        HOSTILE_SOURCE, unapproved=tuple(sorted(["new.png", *extra])), not_present=("gone.png", "old.png"))

    text = "".join(iter_html(comparison, tmp_path))

    assert verdict(text) == "Some images could not be compared; the approval given does not match"
    found = banner(text)
    words = " ".join("".join(found.texts).split())
    shown = HOSTILE_SOURCE.replace("\u202e", "\\u202e")
    assert f"An approval was given ({shown}) but does not match" in words
    assert f"These images' changes are not in it ({BANNER_NAMES + 11}):" in words
    assert "and 11 more" in words
    assert "These approved changes are not here (2): gone.png, old.png" in words
    assert XSS_IMG not in text
    # Listed names in this comparison link to their entries; old.png is not in it.
    ids = item_ids(text)
    links = dict(zip([n for n in found.names if n != "old.png"], found.find("a"), strict=True))
    assert len(links) == BANNER_NAMES + 1
    assert all(ids[a["href"].removeprefix("#")] == name for name, a in links.items())


def test_html_without_approval_has_no_banner(tmp_path: Path) -> None:
    text = "".join(iter_html(approval_comparison(), tmp_path))
    assert "<aside" not in text
    assert Page(text).title == "snapcompare: 1 changed, 1 errored, 1 added, 1 removed, 1 skipped"


# Through compare_builds


def _build(folder: Path, images: dict[str, tuple[int, int, int]]) -> Path:
    folder.mkdir(parents=True)
    for name, colour in images.items():
        Image.new("RGB", (16, 12), colour).save(folder / name)
    return folder


def test_an_approval_carried_over_by_compare_builds_shows_in_every_report(tmp_path: Path) -> None:
    base = _build(tmp_path / "base", {"a.png": (10, 10, 10), "b.png": (20, 20, 20), "s.png": (5, 5, 5)})
    head = _build(tmp_path / "head", {"a.png": (90, 10, 10), "c.png": (30, 30, 30), "s.png": (5, 5, 5)})
    other = _build(tmp_path / "other", {"a.png": (10, 90, 10), "c.png": (30, 30, 30), "s.png": (5, 5, 5)})
    options = CompareOptions()
    resources = Resources(workers=1, fetch_workers=1)
    first = write_reports(compare_builds(base, head, out_dir=tmp_path / "first", options=options,
                                          resources=resources),
                          tmp_path / "first")

    approved = compare_builds(base, head, out_dir=tmp_path / "again", options=options, resources=resources,
                              approved=first["json"])
    reports = write_reports(approved, tmp_path / "again")

    data = json.loads(reports["json"].read_text(encoding="utf-8"))
    assert data["approval"]["images"] == ["a.png", "b.png", "c.png"]
    ComparisonManifest.model_validate(data)
    suite = ET.fromstring(reports["junit"].read_bytes())
    assert suite_counts(suite) == {"tests": "4", "failures": "0", "errors": "0", "skipped": "0"}
    assert properties(cases(suite)["a.png"]) == {"status": "changed", "approved": str(first["json"])}
    assert "Approved: the changes of 3 images" in " ".join(
        "".join(banner(reports["html"].read_text(encoding="utf-8")).texts).split())

    mismatched = compare_builds(base, other, out_dir=tmp_path / "other-out", options=options,
                                approved=first["json"])
    reports = write_reports(mismatched, tmp_path / "other-out")

    data = json.loads(reports["json"].read_text(encoding="utf-8"))
    assert data["approval"] is None
    assert data["approval_mismatch"] == {"source": str(first["json"]), "unapproved": ["a.png"],
                                         "not_present": ["a.png"]}
    suite = ET.fromstring(reports["junit"].read_bytes())
    assert suite_counts(suite)["failures"] == "1"
    assert properties(cases(suite)["a.png"]) == {"status": "changed", "not_approved": str(first["json"])}
