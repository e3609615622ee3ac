"""report.html in a real headless browser (Debian's chromium): injected names run nothing.

Hostile names set ``document.title = 'pwned'`` if they ever run. The page's own script builds
the cards and rows from its JSON and marks ``<body data-ready="true">`` once it has drawn the
first screen; ``--dump-dom`` shows the DOM after scripts. The browser's console is logged to
stderr: a script error or a blocked fetch would show there. A tall window (`TALL`) shows every
entry of the small sample at once; the page draws only what is near the window.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compare.cli import main
from compare.model import Approval, CompareOptions, Comparison
from compare.output.reports import write_reports
from compare.regions import IgnoreRegion
from tests.compare.output.browser import console_messages, dump_dom, screenshot, skip_without_chromium, with_driver
from tests.compare.output.change_groups import changed, previews
from tests.compare.output.helpers import (
    BIDI_NAME,
    CHANGED_COLOUR,
    XSS_ATTR,
    XSS_IMG,
    XSS_SCRIPT,
    Page,
    decode_data_uri,
    errored,
    one_pixel_change,
    sample_comparison,
)

pytestmark = [pytest.mark.browser, skip_without_chromium]

TALL = (1280, 8000)
"""A window in which the sample report's every entry is near enough to be drawn."""


@pytest.fixture
def report(tmp_path: Path) -> Path:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    return write_reports(sample_comparison(out_dir), out_dir)["html"]


def items_drawn(page: Page) -> list[str]:
    """The names (new names for renames) of the entries the script drew, in page order."""
    names = iter(page.names)
    drawn = []
    for tag, attributes in page.tags:
        if tag == "li" and "data-item" in attributes:
            name = next(names)
            if attributes["data-status"] == "renamed":
                name = next(names)
            drawn.append(name)
    return drawn


def test_hostile_names_execute_nothing_and_show_as_text(report: Path, tmp_path: Path) -> None:
    page, log = dump_dom(report.as_uri(), tmp_path / "profile", TALL)

    assert "pwned" not in page.title
    assert page.title.startswith("snapcompare: 4 changed, 2 errored")
    [body] = page.find("body")
    assert body.get("data-ready") == "true", log
    for name in (XSS_IMG, XSS_SCRIPT, XSS_ATTR, "login/<old>.png"):
        assert name in page.names
    # Every entry but the two of the collapsed unchanged section, drawn when it is opened.
    assert len(items_drawn(page)) == 10
    assert [a for a in page.find("img") if a.get("src") == "x"] == []
    assert all(a["src"].startswith("data:image/png;base64,") for a in page.find("img"))
    assert page.find("svg") == []
    # The whole-image views, built from the data: the changed images', and the one picture of
    # the added, removed and renamed images (not available in this sample).
    missing = sorted(text for text in page.texts if text.endswith("picture not available"))
    assert missing == ["after picture not available", "after picture not available",
                       "before picture not available", "before picture not available",
                       "the picture not available"]
    assert "25% of pixels changed (60 of 240)" in "".join(page.texts)
    assert "canvas 9000x9000 is over 40,000,000 pixels <b>really</b>" in page.texts
    assert console_messages(log) == []


def test_names_show_escapes_in_isolated_runs(tmp_path: Path) -> None:
    names = [BIDI_NAME, "a\u2066b\u200fc\u061cd.png", "zero\u200bwidth.png", "line\u2028break.png",
             os.fsdecode(b"caf\xe9.png"), "family\U0001f468\u200d\U0001f469.png", "שלום.png"]
    comparison = errored(names, "cannot decode {}\nsecond line")
    out = tmp_path / "out"
    report = write_reports(comparison, out)["html"]

    page, log = dump_dom(report.as_uri(), tmp_path / "profile", TALL)

    assert set(page.names) == {
        "invoice\\u202egnp.exe", "a\\u2066b\\u200fc\\u061cd.png", "zero\\u200bwidth.png",
        "line\\u2028break.png", "caf\\udce9.png", "family\U0001f468\u200d\U0001f469.png", "שלום.png",
    }
    assert "cannot decode invoice\\u202egnp.exe\nsecond line" in "".join(page.texts)
    assert len(page.find("kbd")) == 2 * 7  # each escape in names and details
    spans = [a for name, a in page.tags if name == "span" and "name" in (a.get("class") or "")]
    assert len(spans) == 7 and all(a.get("dir") == "auto" for a in spans)
    assert console_messages(log) == []


def test_script_filters_and_searches_from_the_url(report: Path, tmp_path: Path) -> None:
    page, log = dump_dom(report.as_uri() + "#status=changed&q=PWNED", tmp_path / "profile", TALL)

    [body] = page.find("body")
    assert body.get("data-ready") == "true", log
    assert items_drawn(page) == [XSS_IMG, XSS_SCRIPT]
    sections = {a["data-status"]: "hidden" not in a for a in page.find("section")}
    assert sections == {
        "changed": True, "errored": False, "renamed": False, "added": False, "removed": False,
        "skipped": False, "unchanged": False,
    }
    buttons = page.find("button")
    pressed = {a["data-filter"]: a["aria-pressed"] for a in buttons if "data-filter" in a}
    assert pressed["changed"] == "true"
    assert {value for status, value in pressed.items() if status != "changed"} == {"false"}
    [toolbar] = [a for a in page.find("div") if a.get("id") == "toolbar"]
    assert "hidden" not in toolbar
    assert "Showing 2 of 12 images" in "".join(page.texts)
    assert console_messages(log) == []


def test_search_matches_previous_names_and_opens_collapsed_sections(
    report: Path, tmp_path: Path
) -> None:
    page, log = dump_dom(report.as_uri() + "#q=%3Cold%3E", tmp_path / "profile")

    assert items_drawn(page) == ["login/new.png"]
    page, log = dump_dom(report.as_uri() + "#q=almost", tmp_path / "profile")
    assert items_drawn(page) == ["almost.png"]
    [details] = page.find("details")
    assert "open" in details
    assert console_messages(log) == []


def test_viewers_start_in_their_best_mode(report: Path, tmp_path: Path) -> None:
    page, log = dump_dom(report.as_uri(), tmp_path / "profile", TALL)

    viewers = [a for a in page.find("div") if "viewer" in (a.get("class") or "").split()]
    # Changed cards by ratio: XSS_IMG and home/feed.png have before and after, the third only
    # a diff picture (its other previews are missing), XSS_SCRIPT has no previews. Then the one
    # picture of the renamed, added and removed images: nothing to choose between.
    assert [v["data-mode"] for v in viewers] == ["slider", "slider", "side", "side", "side", "side"]
    modes = [a for a in page.find("div") if "modes" in (a.get("class") or "").split()]
    assert ["hidden" not in m for m in modes] == [True] * 3 + [False] * 3
    sliders = [a for a in page.find("input") if a.get("type") == "range"]
    assert len(sliders) == 2 and all("hidden" not in s for s in sliders)
    assert console_messages(log) == []


# Clicks and types like a person would, after the page's own script, and records what it saw.
DRIVER = """
(function () {
  var log = [];
  function pressed() {
    return Array.prototype.filter.call(document.querySelectorAll("button[data-filter]"),
      function (b) { return b.getAttribute("aria-pressed") === "true"; })
      .map(function (b) { return b.getAttribute("data-filter"); }).join(",");
  }
  function visible() {
    return Array.prototype.filter.call(document.querySelectorAll("[data-item]"),
      function (el) { return !el.hidden; }).length;
  }
  function type(input, value) {
    input.value = value;
    input.dispatchEvent(new Event("input", {bubbles: true}));
  }
  document.querySelector('button[data-filter="errored"]').click();
  log.push("solo " + pressed() + " " + visible());
  document.querySelector('button[data-filter="renamed"]').click();
  log.push("add " + pressed() + " " + visible());
  document.querySelector('button[data-filter="errored"]').click();
  document.querySelector('button[data-filter="renamed"]').click();
  log.push("none " + pressed() + " " + visible());
  var viewer = document.querySelector(".viewer");
  viewer.querySelector('button[data-mode="diff"]').click();
  log.push("mode " + viewer.getAttribute("data-mode") + " " + viewer.querySelector(".slider").hidden);
  viewer.querySelector('button[data-mode="slider"]').click();
  type(viewer.querySelector(".slider"), "20");
  log.push("pos " + viewer.style.getPropertyValue("--pos"));
  type(document.getElementById("search"), "Feed");
  setTimeout(function () {
    log.push("search " + visible() + " " + location.hash);
    document.getElementById("show-all").click();
    log.push("all " + visible() + " [" + location.hash + "]");
    document.body.setAttribute("data-driver", log.join("|"));
  }, 500);
})();
"""


def test_clicks_and_typing_drive_the_filter_and_viewer(report: Path, tmp_path: Path) -> None:
    driven = with_driver(report, DRIVER)

    page, log = dump_dom(driven.as_uri(), tmp_path / "profile", TALL)

    [body] = page.find("body")
    assert body.get("data-driver", "").split("|") == [
        "solo errored 2",
        "add errored,renamed 3",
        "none changed,errored,renamed,added,removed,skipped,unchanged 10",
        "mode diff true",
        "pos 20%",
        "search 1 #q=Feed",
        "all 10 []",
    ], log
    assert console_messages(log) == []


def _solid_square(shot: np.ndarray, colour: tuple[int, ...], tolerance: int = 3) -> int:
    """The side of the one filled square drawn in ``colour``; fails unless there is exactly one."""
    found = np.argwhere((np.abs(shot - np.array(colour)) <= tolerance).all(axis=-1))
    assert len(found), f"nothing drawn in {colour}"
    (top, left), (bottom, right) = found.min(axis=0), found.max(axis=0) + 1
    assert bottom - top == right - left and len(found) == (bottom - top) * (right - left), found
    return int(bottom - top)


def test_a_one_pixel_change_is_drawn_at_full_size_or_larger_in_the_first_view(tmp_path: Path) -> None:
    # 1200 pixels wide: the whole-image previews shrink it three times, blurring the pixel away.
    report = one_pixel_change(tmp_path, size=(1200, 900), at=(777, 601))
    page, _ = dump_dom(report.as_uri(), tmp_path / "profile")
    crop = next(a for a in page.find("img") if a.get("alt") == "screen.png: after, changed area")
    zoom = int(crop["width"]) // decode_data_uri(crop["src"]).width
    assert int(crop["height"]) == zoom * decode_data_uri(crop["src"]).height

    shot = screenshot(report.as_uri(), tmp_path / "profile", tmp_path / "first.png")

    # Highlighted: the changed pixel under the half-transparent red overlay, one square of
    # zoom x zoom screen pixels, in the window as the page opens.
    highlighted = (255, 0, CHANGED_COLOUR[2] // 2)
    assert zoom >= 1
    assert _solid_square(shot, highlighted) == zoom

    unticked = with_driver(report, 'document.querySelector("input.highlight").click();')
    shot = screenshot(unticked.as_uri(), tmp_path / "profile", tmp_path / "plain.png")
    assert _solid_square(shot, CHANGED_COLOUR, tolerance=0) == zoom
    assert not (np.abs(shot - np.array(highlighted)) <= 3).all(axis=-1).any()


SIZES = """
window.addEventListener("load", function () {
  var sizes = [];
  document.querySelectorAll(".layer img").forEach(function (img) {
    var width = img.getBoundingClientRect().width;
    if (width) { sizes.push(img.naturalWidth + ":" + width); }
  });
  document.body.setAttribute("data-sizes", sizes.join(" "));
});
"""


def test_small_images_are_drawn_at_most_twice_their_size(report: Path, tmp_path: Path) -> None:
    page, log = dump_dom(with_driver(report, SIZES).as_uri(), tmp_path / "profile")

    [body] = page.find("body")
    sizes = [tuple(map(float, pair.split(":"))) for pair in body.get("data-sizes", "").split()]
    # The sample's previews are 12 pixels wide; the page is 1240 CSS pixels wide or more.
    assert sizes and all(natural == 12 and 12 <= drawn <= 24 for natural, drawn in sizes), sizes
    assert console_messages(log) == []


REGIONS = """
window.addEventListener("load", function () {
  document.querySelector('.modes button[data-mode="side"]').click();
  var found = [];
  document.querySelectorAll(".ignored").forEach(function (box) {
    var img = box.parentElement.querySelector("img");
    var b = box.getBoundingClientRect(), i = img.getBoundingClientRect();
    if (!i.width) { return; }
    var view = box.closest(".crop") ? "crop" : box.closest("figure").classList[1];
    found.push([view, box.title, (b.left - i.left) / i.width, (b.top - i.top) / i.height,
                (b.right - i.left) / i.width, (b.bottom - i.top) / i.height, i.width].join(" "));
  });
  document.body.setAttribute("data-regions", found.join("|"));
});
"""


def test_ignore_regions_are_drawn_over_their_pixels_in_every_view(tmp_path: Path) -> None:
    # 600x400: a changed block at x 405-409, y 205-209, half of it under the region
    # x 402-406, y 202-212; the crop around what is left starts inside the image.
    before = np.full((400, 600, 4), 240, dtype=np.uint8)
    after = before.copy()
    after[205:210, 405:410, :3] = (200, 30, 30)
    for side, pixels in (("base", before), ("head", after)):
        (tmp_path / side).mkdir()
        Image.fromarray(pixels, "RGBA").save(tmp_path / side / "a.png")
    out = tmp_path / "out"
    main(["compare", "--base", str(tmp_path / "base"), "--head", str(tmp_path / "head"),
          "--out", str(out), "--quiet", "--ignore", "402:202-406:212"])
    report = out / "report.html"
    data = Page(report.read_text(encoding="utf-8")).report_data()
    [image] = data["images"]
    x0, _, y0, _ = map(int, re.findall(r"\d+", image["where"])[:4])
    crop_size = tuple(data["pictures"][image["pics"]["crop-after"]][1:3])

    dom, log = dump_dom(with_driver(report, REGIONS).as_uri(), tmp_path / "profile")

    [body] = dom.find("body")
    seen = {}
    for entry in body["data-regions"].split("|"):
        view, rest = entry.split(" ", 1)
        title, *figures = rest.rsplit(" ", 5)
        assert title == "ignored region 402:202-406:212"
        if view == "crop":
            width, height, left, top = *crop_size, x0, y0
        else:
            width, height, left, top = 600, 400, 0, 0
        fx0, fy0, fx1, fy1, drawn = map(float, figures)
        # Back to image pixels (exclusive ends), with how many image pixels one screen pixel shows.
        seen.setdefault(view, []).append(
            ([left + fx0 * width, top + fy0 * height, left + fx1 * width, top + fy1 * height],
             width / drawn))
    # On the crop (drawn pixel for pixel, or zoomed by a whole factor), exactly the region
    # clipped to the crop; on the whole images, all of it, as far as whole screen pixels allow.
    assert 0 < x0 < 402
    clipped = [max(402, x0), max(202, y0), min(407, x0 + crop_size[0]), min(213, y0 + crop_size[1])]
    assert [[round(edge) for edge in edges] for edges, _ in seen["crop"]] == [clipped] * 2
    for view in ("before", "after", "diff"):
        [(edges, per_screen_pixel)] = seen[view]
        assert all(abs(edge - expected) <= per_screen_pixel
                   for edge, expected in zip(edges, [402, 202, 407, 213], strict=True)), (view, edges)
    assert console_messages(log) == []


def _box(shot: np.ndarray, colour: tuple[int, ...], tolerance: int = 3) -> tuple[int, int, int, int]:
    """Top, left, bottom and right (exclusive) of what is drawn in ``colour``."""
    found = np.argwhere((np.abs(shot - np.array(colour)) <= tolerance).all(axis=-1))
    assert len(found), f"nothing drawn in {colour}"
    (top, left), (bottom, right) = found.min(axis=0), found.max(axis=0) + 1
    return int(top), int(left), int(bottom), int(right)


FRAMES = """
window.addEventListener("load", function () {
  var framed = [];
  document.querySelectorAll(".crop .frame, .layer .pic").forEach(function (element) {
    framed.push(getComputedStyle(element).boxShadow.split("px, ").length);
  });
  document.body.setAttribute("data-frames", framed.join(" "));
});
"""


def test_crops_and_whole_images_are_framed_apart_on_a_neutral_mat(tmp_path: Path) -> None:
    # A white screen on the white card: without frames, before and after read as one strip.
    for side in ("base", "head"):
        (tmp_path / side).mkdir()
        image = Image.new("RGB", (300, 200), (255, 255, 255))
        if side == "head":
            image.putpixel((150, 100), CHANGED_COLOUR)
        image.save(tmp_path / side / "screen.png")
    main(["compare", "--base", str(tmp_path / "base"), "--head", str(tmp_path / "head"),
          "--out", str(tmp_path / "out"), "--quiet"])
    report = tmp_path / "out" / "report.html"

    shot = screenshot(report.as_uri(), tmp_path / "profile", tmp_path / "shot.png")

    # The changed pixel, highlighted on both crops: white under the red overlay on the before
    # crop, the change under it on the after crop. Between them, along its row: the before
    # crop, its mat and frame, the card, the after crop's frame and mat, the after crop.
    top, before_right = _box(shot, (255, 128, 128))[0], _box(shot, (255, 128, 128))[3]
    after_left = _box(shot, (255, 0, CHANGED_COLOUR[2] // 2))[1]
    colours = {"white": (255, 255, 255), "mat": (227, 230, 234), "frame": (154, 163, 174)}
    runs: list[list] = []
    for pixel in shot[top, before_right:after_left]:
        kind = next((k for k, c in colours.items() if (np.abs(pixel - c) <= 3).all()), "other")
        if runs and runs[-1][0] == kind:
            runs[-1][1] += 1
        else:
            runs.append([kind, 1])
    runs = [run for run in runs if run[0] != "other"]
    assert [kind for kind, _ in runs] == ["white", "mat", "frame", "white", "frame", "mat", "white"], runs
    assert runs[3][1] >= 8 and runs[1][1] >= 4 and runs[5][1] >= 4, runs

    page, log = dump_dom(with_driver(report, FRAMES).as_uri(), tmp_path / "profile")
    [body] = page.find("body")
    # Two crops and three whole-image pictures, each with its mat and its frame.
    assert body["data-frames"].split() == ["2"] * 5
    assert console_messages(log) == []


BANNER_LINK = """
window.addEventListener("load", function () {
  var link = document.querySelector(".banner a");
  var id = link.getAttribute("href").slice(1);
  var before = document.getElementById(id) !== null;
  link.click();
  setTimeout(function () {
    var target = document.getElementById(id);
    var top = Math.round(target.getBoundingClientRect().top);
    document.body.setAttribute("data-link", [before, target.hidden, top, location.hash].join(" "));
  }, 200);
});
"""


def test_a_banner_link_shows_its_image_even_when_filtered_out(tmp_path: Path) -> None:
    # Filtered out, the image is not drawn; the link draws it and scrolls there.
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    comparison = sample_comparison(out_dir)
    covered = tuple(sorted(name for name, r in comparison.images.items() if r.status.value == "changed"))
    comparison.approval = Approval("approved.json", "f" * 64, covered)
    report = write_reports(comparison, out_dir)["html"]

    page, log = dump_dom(with_driver(report, BANNER_LINK).as_uri() + "#status=skipped", tmp_path / "profile")

    [body] = page.find("body")
    drawn_before, hidden_after, top, fragment = body["data-link"].split(" ")
    assert (drawn_before, hidden_after, top) == ("false", "false", "0")
    assert re.fullmatch(r"#image-\d+", fragment)
    assert console_messages(log) == []


REGION_COUNTS = """
window.addEventListener("load", function () {
  var counts = Array.prototype.map.call(document.querySelectorAll(".crop .frame, .layer .pic"), function (picture) {
    return picture.querySelectorAll(".ignored").length;
  });
  var notes = Array.prototype.map.call(document.querySelectorAll(".undrawn"), function (note) {
    return note.textContent;
  });
  document.body.setAttribute("data-regions", [counts.join(" ")].concat(notes).join("|"));
});
"""


def test_thousands_of_ignore_regions_draw_a_few_hundred_boxes_a_picture(tmp_path: Path) -> None:
    out = tmp_path / "out"
    # 5,000 one-pixel regions over a 39x84 image: every pixel once, the top 44 rows twice; the
    # crops show x 10-25, y 20-31: 384 regions.
    regions = tuple(IgnoreRegion(i % 39, i // 39 % 84, i % 39, i // 39 % 84) for i in range(5000))
    result = replace(changed("screen.png", 0, previews(out, "screen", (90, 100, 200))), ignore_regions=regions)
    report = write_reports(Comparison({result.name: result}, CompareOptions()), out)["html"]

    page, log = dump_dom(with_driver(report, REGION_COUNTS).as_uri(), tmp_path / "profile")

    [body] = page.find("body")
    # Two crops, then before, after and diff: each with its first 200 boxes, the rest counted.
    assert body["data-regions"].split("|") == [
        "200 200 200 200 200",
        "Only 200 ignored regions are drawn on a picture: 184 more are not.",
        "Only 200 ignored regions are drawn on a picture: 4,800 more are not.",
    ]
    listed = ", ".join(f"{x}:0-{x}:0" for x in range(20))
    assert f"ignored regions {listed}, and 4,980 more" in page.texts
    assert console_messages(log) == []


def test_a_long_name_is_drawn_cut_short_and_found_by_its_end(tmp_path: Path) -> None:
    out = tmp_path / "out"
    name = "start-" + "x" * 200_000 + "-end.png"
    images = [changed(name, 0, previews(out, "long", (90, 100, 200))),
              changed("other.png", 1, previews(out, "other", (200, 100, 90)))]
    report = write_reports(Comparison({r.name: r for r in images}, CompareOptions()), out)["html"]

    page, log = dump_dom(report.as_uri() + "#q=-END.PNG", tmp_path / "profile")

    assert "Showing 1 of 2 images" in page.texts
    assert page.names == ["start-" + "x" * 494 + "… 199,514 more characters"]
    assert len([a for a in page.find("span") if a.get("class") == "cut"]) == 1
    assert console_messages(log) == []


CAPTIONS = """
window.addEventListener("load", function () {
  var found = [];
  document.querySelectorAll('.viewer[data-mode="slider"]').forEach(function (viewer) {
    var boxes = [".before img", ".before figcaption", ".after figcaption"].map(function (selector) {
      var r = viewer.querySelector(selector).getBoundingClientRect();
      return [r.left, r.top, r.right, r.bottom];
    });
    // What is drawn at each caption's middle: the caption, unless covered or clipped away.
    var shown = [".before figcaption", ".after figcaption"].map(function (selector) {
      var caption = viewer.querySelector(selector), r = caption.getBoundingClientRect();
      return document.elementFromPoint((r.left + r.right) / 2, (r.top + r.bottom) / 2) === caption;
    });
    found.push([viewer.closest("li").querySelector("h3").textContent, boxes, shown]);
  });
  document.body.setAttribute("data-captions", JSON.stringify(found));
});
"""


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_the_slider_captions_of_a_small_image_sit_beside_it(tmp_path: Path) -> None:
    for side in ("base", "head"):
        (tmp_path / side).mkdir()
        for n, (name, size) in enumerate((("icon.png", (24, 24)), ("badge.png", (40, 30)), ("screen.png", (300, 200)))):
            image = Image.new("RGB", size, (200, 200, 200))
            if side == "head":
                image.putpixel((5, 5), (255, 80 * n, 0))  # each a change of its own, not one shared
            image.save(tmp_path / side / name)
    main(["compare", "--base", str(tmp_path / "base"), "--head", str(tmp_path / "head"),
          "--out", str(tmp_path / "out"), "--quiet"])
    report = tmp_path / "out" / "report.html"

    page, log = dump_dom(with_driver(report, CAPTIONS).as_uri(), tmp_path / "profile", TALL)

    [body] = page.find("body")
    found = {name: (boxes, shown) for name, boxes, shown in json.loads(body["data-captions"])}
    assert set(found) == {"icon.png", "badge.png", "screen.png"}
    for name, ((picture, before, after), shown) in found.items():
        # Both captions in full, apart; beside a small picture, on a large one as before.
        assert shown == [True, True] and not _overlap(before, after), (name, found[name])
        assert _overlap(picture, before) == _overlap(picture, after) == (name == "screen.png"), (name, found[name])
        if name != "screen.png":
            assert before[2] <= picture[0] and after[0] >= picture[2], (name, found[name])
    assert console_messages(log) == []
