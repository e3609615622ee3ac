"""The reports: comparison.json, report.html and junit.xml, from hand-made comparisons."""

from __future__ import annotations

import base64
import json
import os
import re
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote

import pytest
from PIL import Image

from compare.builds import compare_builds
from compare.imaging.engines import ENGINES
from compare.model import ApprovalMismatch, CompareOptions, Comparison, ImageResult, Reason, Resources, Status
from compare.output import reports
from compare.output.report_html import DETAIL_SHOWN, NAME_SHOWN, REGIONS_LISTED, format_percent, iter_html
from compare.output.report_json import comparison_dict, render_json
from compare.output.report_junit import render_junit
from compare.output.reports import write_reports
from compare.regions import IgnoreRegion
from tests.compare.output.helpers import (
    BACKGROUND,
    BIDI_NAME,
    CHANGED_COLOUR,
    CONTROL_NAME,
    XSS_ATTR,
    XSS_IMG,
    XSS_SCRIPT,
    Page,
    decode_data_uri,
    errored,
    fake_hash,
    one_pixel_change,
    sample_comparison,
)

pytestmark = pytest.mark.unit

SENTRY_FIELDS = {
    "status", "head_hash", "base_hash", "changed_pixels", "total_pixels", "diff_mask_key",
    "before_width", "before_height", "after_width", "after_height", "reason",
    "previous_image_file_name", "diff_mask_image_id", "aligned_height",
}
OUR_FIELDS = {"diff_ratio", "aa_pixels", "bbox", "diff_threshold", "detail", "previews",
              "window_max", "ignore_regions", "change_group", "similar_change", "known_change",
              "canvas_changed"}


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    return path


@pytest.fixture
def comparison(out_dir: Path) -> Comparison:
    return sample_comparison(out_dir)


@pytest.fixture
def written(comparison: Comparison, out_dir: Path) -> dict[str, Path]:
    return write_reports(comparison, out_dir)


def test_write_reports_writes_three_files_and_no_leftovers(
    written: dict[str, Path], out_dir: Path
) -> None:
    assert written == {
        "json": out_dir / "comparison.json",
        "html": out_dir / "report.html",
        "junit": out_dir / "junit.xml",
    }
    for path in written.values():
        assert path.stat().st_size > 0
        assert path.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "comparison.json", "junit.xml", "previews", "report.html"
    ]


def test_write_reports_creates_the_folder(tmp_path: Path) -> None:
    out_dir = tmp_path / "new" / "out"
    paths = write_reports(Comparison(images={}, options=CompareOptions()), out_dir)
    assert all(path.is_file() for path in paths.values())


# comparison.json


def test_json_summary_adds_up_and_matches_statuses(written: dict[str, Path]) -> None:
    report = json.loads(written["json"].read_text(encoding="utf-8"))
    summary = report["summary"]
    assert list(summary) == [
        "total", "changed", "unchanged", "added", "removed", "errored", "renamed", "skipped"
    ]
    assert summary == {
        "total": 12, "changed": 4, "unchanged": 2, "added": 1, "removed": 1, "errored": 2,
        "renamed": 1, "skipped": 1,
    }
    assert sum(count for key, count in summary.items() if key != "total") == summary["total"]
    assert summary["total"] == len(report["images"])
    for status in Status:
        listed = [name for name, image in report["images"].items() if image["status"] == status]
        assert len(listed) == summary[status.value]


def test_json_images_have_every_field_in_name_order(
    written: dict[str, Path], comparison: Comparison
) -> None:
    report = json.loads(written["json"].read_text(encoding="utf-8"))
    assert list(report["images"]) == sorted(comparison.images)
    for image in report["images"].values():
        assert set(image) == SENTRY_FIELDS | OUR_FIELDS

    feed = report["images"]["home/feed.png"]
    assert feed == {
        "status": "changed", "head_hash": fake_hash("b"), "base_hash": fake_hash("a"),
        "changed_pixels": 60, "total_pixels": 240, "diff_mask_key": "diff/home/feed.png.png",
        "before_width": 12, "before_height": 20, "after_width": 12, "after_height": 20,
        "reason": None, "previous_image_file_name": None, "diff_ratio": 0.25, "aa_pixels": 3,
        "bbox": [1, 2, 10, 18], "diff_threshold": 0.01, "detail": None,
        "previews": {
            "after": "previews/feed.after.png", "before": "previews/feed.before.png",
            "diff": "previews/feed.diff.png",
        },
        "diff_mask_image_id": None, "aligned_height": None, "window_max": None,
        "ignore_regions": None, "change_group": None, "similar_change": None, "known_change": None,
        "canvas_changed": None,
    }
    assert report["images"]["huge.png"]["reason"] == "exceeds_pixel_limit"
    assert report["images"]["huge.png"]["detail"].startswith("canvas 9000x9000")
    assert report["images"]["login/new.png"]["previous_image_file_name"] == "login/<old>.png"
    assert report["images"]["legacy/banner.png"]["head_hash"] is None
    assert report["images"][XSS_IMG]["status"] == "changed"
    assert report["images"][CONTROL_NAME]["status"] == "unchanged"


def test_json_top_level_options_sources_and_stats(written: dict[str, Path]) -> None:
    report = json.loads(written["json"].read_text(encoding="utf-8"))
    assert report["options"] == {
        "engine": "pixelmatch", "engine_options": {"checkerboard": True},
        "threshold": 0.2, "antialiasing": False, "diff_threshold": 0.01, "max_pixels": 40_000_000,
        "window_size": None, "window_min": None, "ignore_regions": None, "ignore_patterns": None,
    }
    assert report["algorithm_version"] == ENGINES["pixelmatch"].version
    assert report["base_source"] == "builds/<base>"
    assert report["head_source"] == "builds/head & co"
    assert report["stats"] == {"blobs_fetched": 9, "elapsed_seconds": 1.5}


def test_json_is_deterministic_and_matches_the_dict(
    written: dict[str, Path], comparison: Comparison
) -> None:
    reordered = Comparison(
        images=dict(reversed(list(comparison.images.items()))),
        options=comparison.options,
        base_source=comparison.base_source,
        head_source=comparison.head_source,
        stats=dict(reversed(list(comparison.stats.items()))),
    )
    data = written["json"].read_bytes()
    assert render_json(reordered) == data
    assert data.endswith(b"\n")
    assert json.loads(data) == comparison_dict(comparison)
    # Names are written as UTF-8 text, not \u escapes, so the file reads well.
    unicode_name = Comparison(
        images={"ü/日本.png": ImageResult("ü/日本.png", Status.ADDED, head_hash=fake_hash("1"))},
        options=CompareOptions(),
    )
    assert "ü/日本.png".encode() in render_json(unicode_name)


def test_json_keeps_names_with_undecodable_bytes() -> None:
    name = os.fsdecode(b"caf\xe9.png")
    comparison = Comparison(
        images={name: ImageResult(name, Status.ADDED, head_hash=fake_hash("1"))},
        options=CompareOptions(),
    )
    data = render_json(comparison)
    data.decode("utf-8")
    assert list(json.loads(data)["images"]) == [name]


def test_a_failing_report_leaves_the_previous_one_in_place(
    written: dict[str, Path], comparison: Comparison, out_dir: Path
) -> None:
    before = written["json"].read_bytes()
    comparison.stats["elapsed_seconds"] = float("nan")
    with pytest.raises(ValueError):
        write_reports(comparison, out_dir)
    assert written["json"].read_bytes() == before
    assert not [p for p in out_dir.iterdir() if p.name.endswith(".tmp")]


def test_reports_are_replaced_as_a_set(
    written: dict[str, Path], comparison: Comparison, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = {kind: path.read_bytes() for kind, path in written.items()}
    comparison.images.clear()  # the next set would differ in every file

    def failing_html(*_args):
        yield "<!doctype html>"
        raise OSError("disk full")

    monkeypatch.setattr(reports, "iter_html", failing_html)
    with pytest.raises(OSError, match="disk full"):
        write_reports(comparison, out_dir)  # JSON and JUnit rendered fine before the HTML failed
    assert {kind: path.read_bytes() for kind, path in written.items()} == previous
    assert not [p for p in out_dir.iterdir() if p.name.endswith(".tmp")]


# report.html: the page's shell and its one JSON block (what the script draws from it is
# checked in a real browser, test_report_browser.py)


def picture_rows(data: dict) -> dict[str, list]:
    """The page's picture table by picture key."""
    return {row[0]: row for row in data["pictures"]}


def image_entry(data: dict, name: str) -> dict:
    return next(image for image in data["images"] if image["name"] == name)


def test_html_is_self_contained(written: dict[str, Path]) -> None:
    text = written["html"].read_text(encoding="utf-8")
    page = Page(text)
    assert not page.find("link")
    assert not page.find("iframe")
    assert not page.find("img")
    for tag, attributes in page.tags:
        assert "src" not in attributes, tag
        if "href" in attributes:
            href = attributes["href"] or ""
            assert "://" not in href and not href.startswith("//"), href
    assert "http://" not in text and "https://" not in text
    assert all(row[5].startswith("data:image/png;base64,") for row in page.report_data()["pictures"])
    [csp] = [a for a in page.find("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    assert "default-src 'none'" in csp["content"]
    assert "img-src data:;" in csp["content"]


def test_html_embeds_the_preview_files(written: dict[str, Path], out_dir: Path) -> None:
    data = Page(written["html"].read_text(encoding="utf-8")).report_data()
    rows = picture_rows(data)
    feed = image_entry(data, "home/feed.png")["pics"]
    for role in ("before", "after", "diff"):
        row = data["pictures"][feed[role]]
        assert row[:3] == [f"previews/feed.{role}.png", 12, 20]
        assert base64.b64decode(row[5].split(",", 1)[1]) == (out_dir / row[0]).read_bytes()
    # The missing file and the one outside out_dir are not embedded; the diff still is.
    broken = image_entry(data, "settings/broken previews.png")["pics"]
    assert broken["before"] is None and broken["after"] is None
    assert data["pictures"][broken["diff"]][0] == "previews/broken.diff.png"
    assert "../secret.png" not in rows and "previews/broken.after.png" not in rows
    assert len(rows) == 7


def test_html_escapes_every_name_and_text(written: dict[str, Path], comparison: Comparison) -> None:
    text = written["html"].read_text(encoding="utf-8")
    for raw in (XSS_IMG, XSS_SCRIPT, XSS_ATTR, "login/<old>.png", "builds/<base>", "<b>really</b>",
                "</pre><script>"):
        assert raw not in text
    page = Page(text)
    assert [a for a in page.find("img") if a.get("src") == "x"] == []
    assert page.find("svg") == []
    assert len(page.find("script")) == 2
    assert {image["name"] for image in page.report_data()["images"]} == set(comparison.images)
    assert "pwned" not in page.title


def test_html_data_block_is_escaped_json(written: dict[str, Path], comparison: Comparison) -> None:
    page = Page(written["html"].read_text(encoding="utf-8"))
    block = next(s for s in page.scripts if s.startswith("{"))
    assert not set("<>&") & set(block)
    data = page.report_data()
    assert set(data) == {"sections", "images", "groups", "pictures"}
    assert {image["name"] for image in data["images"]} == set(comparison.images)
    renamed = image_entry(data, "login/new.png")
    assert renamed["previous"] == "login/<old>.png"
    assert data["sections"][renamed["section"]] == "renamed"
    assert data["sections"] == [
        "changed", "errored", "renamed", "added", "removed", "skipped", "unchanged"
    ]
    assert data["groups"] == []


def test_html_orders_sections_and_changed_by_ratio(written: dict[str, Path]) -> None:
    text = written["html"].read_text(encoding="utf-8")
    data = Page(text).report_data()
    ordered = [XSS_IMG, "home/feed.png", XSS_SCRIPT, "settings/broken previews.png"]
    assert [image["name"] for image in data["images"][:4]] == ordered
    sections = [data["sections"][image["section"]] for image in data["images"]]
    assert sections == sorted(sections, key=data["sections"].index)
    assert [text.index(f'<section data-status="{s}"') for s in data["sections"]] == sorted(
        text.index(f'<section data-status="{s}"') for s in data["sections"])
    unchanged = text[text.index('<section data-status="unchanged"'):]
    assert unchanged.startswith('<section data-status="unchanged" data-kind="row">\n<details>\n<summary>')


def test_html_shows_figures_reasons_and_renames(written: dict[str, Path]) -> None:
    text = written["html"].read_text(encoding="utf-8")
    data = Page(text).report_data()
    assert image_entry(data, "home/feed.png")["facts"] == [
        ["ratio", "25%", "60 of 240"], ["allowed", "1%"], ["text", "3 anti-aliased pixels ignored"],
        ["area", "changed area x 1–10 px, y 2–18 px"], ["text", "12×20 px"],
        ["hash", "base", fake_hash("a")], ["hash", "head", fake_hash("b")]]
    assert 'id="tuning-diff-threshold"' in text and "--diff-threshold" in text
    huge = image_entry(data, "huge.png")
    assert huge["facts"][0] == ["reason", "exceeds pixel limit"]
    assert huge["detail"] == [["canvas 9000x9000 is over 40,000,000 pixels <b>really</b>", 0]]
    assert image_entry(data, XSS_ATTR)["facts"][0] == ["reason", "image fetch failed"]
    renamed = image_entry(data, "login/new.png")
    assert (renamed["previous"], renamed["facts"]) == ("login/<old>.png", [["hash", "head", fake_hash("f")]])
    assert "4 changed, 2 errored" in Page(text).title


def test_html_of_an_empty_comparison(tmp_path: Path) -> None:
    comparison = Comparison(images={}, options=CompareOptions())
    text = "".join(iter_html(comparison, tmp_path))
    page = Page(text)
    assert page.title == "snapcompare: no differences"
    assert "No differences" in text
    assert page.report_data() == {"sections": [], "images": [], "groups": [], "pictures": []}


@pytest.mark.parametrize(
    ("ratio", "text"),
    [(0.0, "0%"), (1.0, "100%"), (0.25, "25%"), (0.12345, "12.35%"), (0.001, "0.1%"),
     (0.0000341, "0.0034%"), (1 / 2_962_440, "0.000034%")],
)
def test_format_percent(ratio: float, text: str) -> None:
    assert format_percent(ratio) == text


# junit.xml


def test_junit_counts_and_cases(written: dict[str, Path], comparison: Comparison) -> None:
    data = written["junit"].read_bytes()
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    suite = ET.fromstring(data)
    assert suite.tag == "testsuite"
    assert suite.attrib["name"] == "snapcompare"
    assert {k: suite.attrib[k] for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "12", "failures": "4", "errors": "2", "skipped": "1"
    }
    cases = suite.findall("testcase")
    # Names as the HTML report shows them: CONTROL_NAME's tab, NUL and ESC as escapes.
    shown = {name: name.replace("\t", "\\t").replace("\x00", "\\x00").replace("\x1b", "\\x1b")
             for name in comparison.images}
    assert [case.attrib["name"] for case in cases] == [shown[name] for name in sorted(shown)]
    by_name = {case.attrib["name"]: case for case in cases}
    for name, result in comparison.images.items():
        properties = by_name[shown[name]].findall("properties/property")
        assert [(p.attrib["name"], p.attrib["value"]) for p in properties] == [("status", result.status.value)]
    assert by_name["home/feed.png"].attrib["classname"] == "snapcompare.home"
    assert by_name["huge.png"].attrib["classname"] == "snapcompare"
    assert len(suite.findall("testcase/failure")) == 4  # the changed images
    assert len(suite.findall("testcase/error")) == 2  # the errored ones
    assert len(suite.findall("testcase/skipped")) == 1

    failure = by_name["home/feed.png"].find("failure")
    assert failure.attrib["message"] == (
        "25% of pixels changed (60 of 240), more than allowed; changed pixels allowed: 1%"
        " (--diff-threshold, see README #tuning-diff-threshold)"
    )
    assert by_name["huge.png"].find("failure") is None
    error = by_name["huge.png"].find("error")
    assert error.attrib["type"] == "exceeds_pixel_limit"
    assert error.attrib["message"].startswith("exceeds_pixel_limit: canvas 9000x9000")
    assert error.text == "canvas 9000x9000 is over 40,000,000 pixels <b>really</b>"
    assert by_name[XSS_IMG].find("failure") is not None
    assert by_name[XSS_ATTR].find("error").attrib["type"] == "image_fetch_failed"
    assert by_name["tablet/home.png"].find("skipped") is not None
    assert by_name["login/new.png"].find("system-out").text == "renamed from login/<old>.png"
    assert by_name["almost.png"].find("system-out").text == (
        "unchanged: 0.42% of pixels changed (1 of 240), within what is allowed;"
        " changed pixels allowed: 1% (--diff-threshold, see README #tuning-diff-threshold)"
    )
    assert by_name["onboarding/step4.png"].find("system-out").text == "added"


def test_junit_says_what_made_an_image_changed_or_kept_it_unchanged() -> None:
    figures = {"changed_pixels": 120, "total_pixels": 1320, "diff_ratio": 120 / 1320, "diff_threshold": 0.5}
    resized = ImageResult("resized.png", Status.CHANGED, before_width=40, before_height=30, after_width=40,
                          after_height=33, canvas_changed=True, **figures)
    messages = _junit_messages(Comparison({"resized.png": resized}, CompareOptions()))
    assert messages["resized.png"] == ("size changed 40x30 -> 40x33, a change whatever the pixels; "
                                       "9.09% of pixels changed (120 of 1,320)")

    windowed = {**figures, "diff_threshold": 0.0}
    options = CompareOptions(window_size=3, window_min=4)
    comparison = Comparison({"noise.png": ImageResult("noise.png", Status.UNCHANGED, window_max=2, **windowed),
                             "block.png": ImageResult("block.png", Status.CHANGED, window_max=9, **windowed)}, options)
    messages = _junit_messages(comparison)
    assert messages["noise.png"] == (
        "unchanged: 9.09% of pixels changed (120 of 1,320), more than allowed (changed pixels allowed: 0% "
        "(--diff-threshold, see README #tuning-diff-threshold)), but at most 2 changed pixels in one 3x3 window, "
        "not more than --window-min 4")
    assert messages["block.png"].endswith("; and 9 changed pixels in one 3x3 window, more than --window-min 4")


def _junit_messages(comparison: Comparison) -> dict[str, str]:
    """Each test case's failure message, or else its output."""
    cases = ET.fromstring(render_junit(comparison)).findall("testcase")
    return {case.attrib["name"]: (case.find("failure").attrib["message"] if case.find("failure") is not None
                                  else case.find("system-out").text) for case in cases}


def test_junit_escapes_controls_and_what_xml_cannot_hold() -> None:
    names = ["a\x00b\x08c\x0b\x0c\x1fd.png", "keep\ttab\nline.png", os.fsdecode(b"caf\xe9.png"),
             "odd\ufffe\uffff.png"]
    comparison = errored(names, "bad byte \x02 in {}")
    suite = ET.fromstring(render_junit(comparison))
    cases = suite.findall("testcase")
    assert sorted(case.attrib["name"] for case in cases) == sorted(
        ["a\\x00b\\x08c\\x0b\\x0c\\x1fd.png", "keep\\ttab\\nline.png", "caf\\udce9.png", "odd\\ufffe\\uffff.png"]
    )
    assert all("\x02" not in case.find("error").text for case in cases)
    assert all("bad byte \\x02 in " in case.find("error").text for case in cases)
    assert suite.attrib["errors"] == "4"
    assert suite.attrib["failures"] == "0"


def test_junit_of_an_empty_comparison() -> None:
    suite = ET.fromstring(render_junit(Comparison(images={}, options=CompareOptions())))
    assert suite.attrib == {
        "name": "snapcompare", "tests": "0", "failures": "0", "errors": "0", "skipped": "0"
    }


@pytest.mark.parametrize("status", [Status.CHANGED, Status.UNCHANGED, Status.ERRORED])
def test_junit_classname_is_the_folder_whatever_the_status(status: Status) -> None:
    folders = {
        "settings/dark/home.png": "snapcompare.settings.dark",
        "top.png": "snapcompare",
        "v1.2/a b/x.png": "snapcompare.v1_2.a b",
        "win\\dir\\y.png": "snapcompare.win.dir",
        "/lead//z.png": "snapcompare.lead",
        "dir\u202e/x.png": "snapcompare.dir\\u202e",
    }
    comparison = Comparison(
        images={name: ImageResult(name, status) for name in folders}, options=CompareOptions())

    suite = ET.fromstring(render_junit(comparison))

    cases = {case.attrib["name"]: case for case in suite.findall("testcase")}
    assert {name: case.attrib["classname"] for name, case in cases.items()} == {
        name.replace("\u202e", "\\u202e"): classname for name, classname in folders.items()}
    for case in cases.values():
        [status_property] = case.findall("properties/property")
        assert status_property.attrib == {"name": "status", "value": status.value}


def test_junit_shows_invisible_characters_as_the_report_does(tmp_path: Path) -> None:
    names = [BIDI_NAME, "a\u2066b\u200fc\u061cd.png", "zero\u200bwidth.png", "line\u2028break.png",
             CONTROL_NAME, "family\U0001f468\u200d\U0001f469.png", "שלום.png"]
    comparison = errored(names, "cannot decode {}\nsecond line")

    data = render_junit(comparison)

    for char in "\u202e\u2066\u200f\u061c\u200b\u2028\x00\x1b":
        assert char.encode() not in data
    suite = ET.fromstring(data)
    data = Page("".join(iter_html(comparison, tmp_path))).report_data()
    shown = ["".join(run for run, _ in image.get("shown", [[image["name"], 0]])) for image in data["images"]]
    assert sorted(case.attrib["name"] for case in suite.findall("testcase")) == sorted(shown)
    errors = [case.find("error") for case in suite.findall("testcase")]
    assert "cannot decode invoice\\u202egnp.exe\nsecond line" in [error.text for error in errors]


@pytest.mark.parametrize("name", [
    "login\u200d.png", "login\u200c.png", "login\u3164.png", "login\u034f.png", "login\ufe0f.png",
    "login\u2800.png", "login\u00a0.png", "login\ufffe.png", "login\U000e0067.png", "login\ue000.png",
    "\u043b\u043e\u200d\u0433\u0438\u043d.png",  # a joiner inside a Cyrillic word, which never joins
    "\u8a2d\ufe00\u5b9a.png",  # a variation selector after an ideograph
    "\U0001f3f4\U000e0078.png",  # a tag after the black flag, but no whole flag
])
def test_a_name_cannot_pass_for_another_by_characters_that_draw_nothing(tmp_path: Path, name: str) -> None:
    # Joiners, fillers, selectors, blanks, noncharacters, tags: the name shows an escape, not the
    # name it would pass for.
    plain = "".join(char for char in name if unicodedata.category(char) not in ("Cf", "Mn", "Co", "Cn")
                    and char not in "\u3164\u2800\u00a0\ufffe")
    comparison = errored([plain, name], "cannot decode {}")
    data = Page("".join(iter_html(comparison, tmp_path))).report_data()
    shown = {image["name"]: "".join(run for run, _ in image.get("shown", [[image["name"], 0]]))
             for image in data["images"]}
    assert shown[plain] == plain and shown[name] != plain and re.search(r"\\(x|u|U)[0-9a-f]+", shown[name]), shown
    junit = {case.attrib["name"] for case in ET.fromstring(render_junit(comparison)).findall("testcase")}
    assert junit == set(shown.values())


@pytest.mark.parametrize("name", [
    "family\U0001f468\u200d\U0001f469.png",  # a ZWJ emoji sequence
    "\u2764\ufe0f.png",  # an emoji's presentation selector
    "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f.png",  # a subdivision flag
    "\u0915\u094d\u200d\u0937.png",  # a joiner inside a Devanagari word
    "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645.png",  # a non-joiner inside a Persian word
    "1\ufe0f\u20e3.png",  # a keycap
    "\u2139\ufe0f \u2194\ufe0f \u00a9\ufe0f.png",  # emoji that are letters, math symbols, signs
    "\U0001f3f3\ufe0f\u200d\U0001f308.png",  # the rainbow flag: a selector, then a joiner
    "\U0001f44d\U0001f3fd.png",  # a skin tone
    "e\u0301.png",  # a combining accent
])
def test_joiners_and_selectors_inside_words_and_emoji_are_shown_as_they_are(tmp_path: Path, name: str) -> None:
    data = Page("".join(iter_html(errored([name], "cannot decode {}"), tmp_path))).report_data()
    assert "shown" not in data["images"][0] and data["images"][0]["name"] == name


# What a changed image opens on


def test_a_changed_image_opens_on_its_changed_area_at_full_resolution(tmp_path: Path) -> None:
    report = one_pixel_change(tmp_path, size=(1200, 900), at=(777, 601))
    data = Page(report.read_text(encoding="utf-8")).report_data()

    [image] = data["images"]
    pics = {role: data["pictures"][position] for role, position in image["pics"].items()}
    assert set(pics) == {"before", "after", "diff", "crop-before", "crop-after", "crop-diff"}
    # The crop is the changed pixel with a margin, at full resolution; it knows where it sits.
    after = pics["crop-after"]
    picture = decode_data_uri(after[5])
    assert picture.size == (49, 49) and after[1:5] == [49, 49, 753, 577]
    assert picture.convert("RGB").getpixel((24, 24)) == CHANGED_COLOUR
    assert image["where"] == "x 753–802 px, y 577–626 px"
    marked = decode_data_uri(pics["crop-diff"][5]).convert("RGBA")
    assert marked.getpixel((24, 24)) == (255, 0, 0, 255) and marked.getpixel((0, 0))[3] == 0
    # Full-size files are one click away, next to the report.
    links = [pics["crop-before"][0], pics["crop-after"][0], image["mask"]]
    assert image["mask"].startswith("diff/")
    for href in links:
        assert (report.parent / unquote(href)).is_file(), href


def test_names_show_control_and_bidi_characters_escaped_and_isolated(tmp_path: Path) -> None:
    names = [BIDI_NAME, "a\u2066b\u200fc\u061cd.png", "zero\u200bwidth.png", "line\u2028break.png",
             os.fsdecode(b"caf\xe9.png"), "family\U0001f468\u200d\U0001f469.png", "שלום.png"]
    comparison = errored(names, "cannot decode {}\nsecond line")
    comparison.base_source = "base\u202e"
    text = "".join(iter_html(comparison, tmp_path))
    page = Page(text)
    visible = text[: text.index('<script type="application/json"')]
    for char in "\u202e\u2066\u200f\u061c\u200b\u2028":
        assert char not in visible
    data = page.report_data()
    shown = {"".join(run for run, _ in image.get("shown", [[image["name"], 0]])) for image in data["images"]}
    assert shown == {
        "invoice\\u202egnp.exe", "a\\u2066b\\u200fc\\u061cd.png", "zero\\u200bwidth.png",
        "line\\u2028break.png", "caf\\udce9.png", "family\U0001f468\u200d\U0001f469.png", "שלום.png",
    }
    # Details keep their line breaks and tabs; the rest is escaped as in names.
    details = ["".join(run for run, _ in image["detail"]) for image in data["images"]]
    assert "cannot decode invoice\\u202egnp.exe\nsecond line" in details
    # Each escape in names and details is a run of its own, shown as a <kbd>; and the source's.
    escapes = [run for image in data["images"] for run, escaped in image.get("shown", []) + image["detail"] if escaped]
    assert len(escapes) == 2 * 7 and len(page.find("kbd")) == 1
    style = text[text.index("<style>") : text.index("</style>")]
    assert ".name { overflow-wrap: anywhere; unicode-bidi: isolate; }" in style
    # The search data keeps the names themselves.
    assert {image["name"] for image in data["images"]} >= {BIDI_NAME, "שלום.png"}


def test_a_run_of_invisible_characters_is_one_escape_however_long(tmp_path: Path) -> None:
    # One box on the page for the run: a name of 50,000 of them drew 50,000 boxes, 11 s to paint.
    name = "home" + "\u200b" * 50_000 + "\u202e.png"
    data = Page("".join(iter_html(errored([name], "cannot decode {}"), tmp_path))).report_data()
    (image,) = data["images"]
    # The name is cut short where it is shown (NAME_SHOWN characters), the search keeps it whole.
    assert image["shown"] == [["home", 0], ["\\u200b" * 496, 1], ["… 49,509 more characters", 2]]
    assert image["name"] == name


# Units


def test_every_figure_of_how_the_comparison_ran_has_its_unit(tmp_path: Path) -> None:
    base, head = tmp_path / "base", tmp_path / "head"
    for folder, colour in ((base, BACKGROUND), (head, CHANGED_COLOUR)):
        folder.mkdir()
        Image.new("RGB", (30, 20), colour).save(folder / "a.png")
    comparison = compare_builds(base, head, out_dir=tmp_path / "out",
                                options=CompareOptions(), resources=Resources(workers=1, fetch_workers=1))
    comparison.stats["fetch_bytes_fetched"] = 3 * 1024 * 1024 + 12

    text = write_reports(comparison, tmp_path / "out")["html"].read_text(encoding="utf-8")

    rows = dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", text))
    stats = {key.replace("_", " "): rows[key.replace("_", " ")] for key in comparison.stats}
    assert {"wall time", "pairs diffed", "blobs"} <= set(stats)
    assert re.fullmatch(r"\d+\.\d{3} s", stats["wall time"]), stats
    assert stats["pairs diffed"] == "1 pair" and stats["blobs"] == "2 blobs"
    assert stats["fetch bytes fetched"] == "3.0 MiB (3,145,740 bytes)"
    unit = re.compile(r"[\d,.]+ (s|bytes|blobs?|pairs?|keys?|requests?|chunks?|threads?)|.* \([\d,]+ bytes\)")
    assert all(unit.fullmatch(value) for value in stats.values()), stats
    assert "30×20 px" in text
    assert "changed area x 0–30 px, y 0–20 px" in text


# Reports written into another folder than the comparison's


def _two_builds(tmp_path: Path) -> tuple[Path, Path]:
    base, head = tmp_path / "base", tmp_path / "head"
    for folder in (base, head):
        folder.mkdir()
        for name in ("a.png", "b.png"):
            Image.new("RGB", (60, 40), BACKGROUND).save(folder / name)
    image = Image.new("RGB", (60, 40), BACKGROUND)
    image.putpixel((30, 20), CHANGED_COLOUR)
    image.save(head / "a.png")
    return base, head


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_reports_written_into_another_folder_bring_their_files(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    comparison = compare_builds(*_two_builds(tmp_path), out_dir=first,
                                options=CompareOptions(), resources=Resources(workers=1, fetch_workers=1))
    write_reports(comparison, first)
    before = _files(first)

    paths = write_reports(comparison, second)

    text = paths["html"].read_text(encoding="utf-8")
    data = Page(text).report_data()
    assert all(position is not None for image in data["images"] for position in image.get("pics", {}).values())
    assert paths["html"].read_bytes() == (first / "report.html").read_bytes()
    links = [row[0] for row in data["pictures"]] + [image["mask"] for image in data["images"] if "mask" in image]
    assert links and all((second / unquote(href)).is_file() for href in links)
    # The masks and previews the reports refer to, byte for byte, and nothing else.
    assert _files(second) == {key: data for key, data in before.items()}
    assert _files(first) == before


def test_reports_for_another_folder_name_a_file_missing_from_both(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    comparison = compare_builds(*_two_builds(tmp_path), out_dir=first,
                                options=CompareOptions(), resources=Resources(workers=1, fetch_workers=1))
    missing = comparison.images["a.png"].previews["crop-after"]
    (first / missing).unlink()

    with pytest.raises(FileNotFoundError, match=re.escape(missing)) as raised:
        write_reports(comparison, second)

    assert str(first) in str(raised.value) and str(second) in str(raised.value)
    assert _files(second) == {}


def test_masks_kept_in_a_results_store_are_not_looked_for_in_a_folder(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    comparison = compare_builds(*_two_builds(tmp_path), out_dir=first,
                                options=CompareOptions(), resources=Resources(workers=1, fetch_workers=1))
    # As on a cluster with --results-store: the mask's key is its key in the store.
    comparison.images = {
        name: replace(result, diff_mask_key=None if result.diff_mask_key is None else f"1/2/0/0/diff/{name}")
        for name, result in comparison.images.items()
    }

    paths = write_reports(comparison, second)

    data = Page(paths["html"].read_text(encoding="utf-8")).report_data()
    assert all(position is not None for image in data["images"] for position in image.get("pics", {}).values())
    assert all("mask" not in image for image in data["images"])
    assert sorted(_files(second)) == sorted(
        ["comparison.json", "junit.xml", "report.html",
         *(key for result in comparison.images.values() for key in (result.previews or {}).values())])


# Long names, many ignore regions


def test_a_long_name_is_shown_cut_short_and_kept_whole_for_the_search(tmp_path: Path) -> None:
    long = "x" * 300_000 + ".png"
    # The joiner at the cut joins two emoji in the whole name, but nothing in what is shown:
    # it is escaped there, as a lone joiner would be (a cut must not hide a character).
    joined = "a" * (NAME_SHOWN - 2) + "\U0001f468\u200d\U0001f469" + "b" * 100
    hidden = "rtl\u202e" + "y" * 1000
    results = [ImageResult(name, Status.ERRORED, reason=Reason.IMAGE_PROCESSING_FAILED, detail=f"cannot decode {name}")
               for name in (long, joined, hidden)]
    results.append(ImageResult("new.png", Status.RENAMED, previous_image_file_name=long))
    comparison = Comparison({r.name: r for r in results}, CompareOptions())
    comparison.approval_mismatch = ApprovalMismatch("approved.json", (long,), ())

    text = "".join(iter_html(comparison, tmp_path))

    data = Page(text).report_data()
    images = {image["name"]: image for image in data["images"]}
    assert set(images) == {long, joined, hidden, "new.png"}
    assert images[long]["shown"] == [["x" * NAME_SHOWN, 0], ["… 299,504 more characters", 2]]
    assert images[joined]["shown"] == [[joined[:NAME_SHOWN - 1], 0], ["\\u200d", 1], ["… 101 more characters", 2]]
    assert images[hidden]["shown"] == [["rtl", 0], ["\\u202e", 1], ["y" * (NAME_SHOWN - 4), 0],
                                       ["… 504 more characters", 2]]
    assert images["new.png"]["previous"] == long
    assert images["new.png"]["previousShown"] == images[long]["shown"]
    assert "shown" not in images["new.png"]
    assert images[long]["detail"] == [["cannot decode " + "x" * (DETAIL_SHOWN - 14), 0],
                                      ["… 290,018 more characters", 2]]
    # The approval banner names the image by the start of its name, linked to its entry.
    banner = text[text.index('<aside class="banner mismatch"'):text.index("</aside>")]
    assert ('<span class="name" dir="auto">' + "x" * NAME_SHOWN + '<span class="cut">… 299,504 more characters'
            '</span></span>') in banner


def test_many_ignore_regions_are_listed_in_part_and_kept_whole_for_the_page(tmp_path: Path) -> None:
    regions = tuple(IgnoreRegion(i % 39, i // 39, i % 39, i // 39) for i in range(3000))
    result = ImageResult("a.png", Status.CHANGED, base_hash=fake_hash("a"), head_hash=fake_hash("b"),
                         before_width=39, before_height=84, after_width=39, after_height=84, ignore_regions=regions)
    options = CompareOptions(ignore_regions=regions[:25])

    text = "".join(iter_html(Comparison({"a.png": result}, options), tmp_path))

    [image] = Page(text).report_data()["images"]
    listed = ", ".join(map(str, regions[:REGIONS_LISTED]))
    assert ["ignored", f"{listed}, and 2,980 more"] in image["facts"]
    assert len(image["regions"]) == 3000
    rows = dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", text))
    assert rows["ignored in every image (--ignore)"] == f"{listed}, and 5 more"
