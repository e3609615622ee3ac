"""report.html at scale in a real headless browser (Debian's chromium): pictures load as the
reviewer scrolls, filter and search run over all 10,000 images of a report, a shared change
lists its images and opens each, and a report over the inline budget shows every picture from
files beside it and nothing from the network."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from compare.model import CompareOptions, Comparison, KnownChanges
from compare.output import report_html
from compare.output.reports import write_reports
from testing.devtools import DevTools
from tests.compare.output.browser import CHROMIUM, console_messages, dump_dom, skip_without_chromium, with_driver
from tests.compare.output.change_groups import NEEDLE_SINGLE, changed, many_changes, previews
from tests.compare.output.helpers import Page

pytestmark = [pytest.mark.browser, skip_without_chromium]

WINDOW = (1280, 1000)


def run(report: Path, driver: str, tmp_path: Path, fragment: str = "") -> tuple[list[str], str]:
    """Load ``report`` in a `WINDOW` with ``driver`` after its script; return what the driver
    recorded in ``<body data-log>`` (``|``-separated) and the browser's log."""
    page, log = dump_dom(with_driver(report, driver).as_uri() + fragment, tmp_path / "profile", WINDOW)
    [body] = page.find("body")
    assert "data-log" in body, log
    return body["data-log"].split("|"), log


@pytest.fixture
def files_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reports written in the test keep every picture a file beside them."""
    monkeypatch.setattr(report_html, "INLINE_BUDGET", 0)


def own_pictures(out: Path, count: int) -> Comparison:
    """``count`` changed images, each with six pictures of its own."""
    images = [changed(f"screen-{n:03d}.png", n, previews(out, f"p{n}", (n, 100, 200)), ratio=0.5 - n / 1000)
              for n in range(count)]
    return Comparison({r.name: r for r in images}, CompareOptions())


# Cards drawn, pictures drawn, pictures loaded, pictures in the window, those loaded.
PICTURES = """(function () {
  function inView(img) {
    var box = img.getBoundingClientRect();
    return box.bottom > 0 && box.top < innerHeight && box.width > 0;
  }
  function loaded(img) { return img.complete && img.naturalWidth > 0; }
  var images = Array.prototype.slice.call(document.images), here = images.filter(inView);
  return [document.querySelectorAll("[data-item]").length, images.length, images.filter(loaded).length,
          here.length, here.filter(loaded).length];
})()"""


def test_pictures_load_from_files_as_the_reviewer_scrolls(tmp_path: Path, files_only: None) -> None:
    out = tmp_path / "out"
    report = write_reports(own_pictures(out, 40), out)["html"]

    with DevTools(CHROMIUM, tmp_path / "profile", WINDOW) as browser:
        browser.open(report.as_uri())
        browser.wait("document.body && document.body.getAttribute('data-ready') === 'true'")
        # After each step, wait (bounded) for every picture in the window to have loaded.
        in_view_loaded = f"(function (s) {{ return s[3] >= %d && s[3] === s[4] ? s : null; }})({PICTURES})"
        seen = [browser.wait(in_view_loaded % 1, timeout=30)]
        while not browser.evaluate("innerHeight + scrollY >= document.documentElement.scrollHeight - 2"):
            browser.evaluate("window.scrollBy(0, 600)")
            seen.append(browser.wait(in_view_loaded % 0, timeout=30))

    # A card draws seven pictures: two crops with the diff crop over each, and before, after
    # and diff (the slider shows two). At first only the first cards are drawn, and only
    # their pictures are loaded, of the 280.
    cards, drawn, loaded, here, here_loaded = seen[0]
    assert 1 <= cards < 10 and drawn == 7 * cards and 0 < loaded <= drawn and here == here_loaded > 0
    # Scrolling draws the next cards as they come near, and loads their pictures: every
    # picture in the window is shown, at every step.
    assert [state[0] for state in seen] == sorted(state[0] for state in seen)
    assert all(state[3] == state[4] for state in seen), seen
    assert seen[-1][:2] == [40, 7 * 40] and seen[-1][2] >= 6 * 40


NETWORK = """
window.addEventListener("load", function () {
  var blocked = [];
  document.addEventListener("securitypolicyviolation", function (e) {
    blocked.push(e.violatedDirective + " " + e.blockedURI);
  });
  var probe = document.createElement("img");
  probe.src = "http://127.0.0.1:9/probe.png";
  document.body.appendChild(probe);
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  document.querySelectorAll('.modes button[data-mode="side"]').forEach(function (b) { b.click(); });
  setTimeout(function () {
    var images = Array.prototype.filter.call(document.images, function (img) { return img !== probe; });
    var broken = images.filter(function (img) { return !(img.complete && img.naturalWidth > 0); });
    var requested = performance.getEntriesByType("resource").map(function (e) { return e.name; });
    var sources = images.map(function (img) { return img.currentSrc; });
    document.body.setAttribute("data-log", [images.length, broken.length, blocked.join(";"), requested.join(" ")]
      .concat(sources).join("|"));
  }, 1500);
});
"""


def test_over_the_budget_every_picture_comes_from_the_folder_and_none_from_the_network(
    tmp_path: Path, files_only: None
) -> None:
    out = tmp_path / "out"
    comparison = many_changes(out, groups=(3, 2), singles=2, added=2, removed=1)
    report = write_reports(comparison, out)["html"]

    log, browser = run(report, NETWORK, tmp_path)

    drawn, broken, blocked, requested, *sources = log
    assert int(drawn) > 20 and broken == "0"
    # Every picture is a file of the report's folder; the one picture from the network (the
    # probe) is refused by the page's policy, and nothing else was asked of the network.
    folder = out.resolve().as_uri() + "/previews/"
    assert all(source.startswith(folder) for source in sources), sources
    assert {source.removeprefix(folder) for source in sources} <= {p.name for p in (out / "previews").iterdir()}
    assert blocked == "img-src http://127.0.0.1:9/probe.png"
    assert requested == "http://127.0.0.1:9/probe.png"
    assert [m for m in console_messages(browser) if "probe.png" not in m] == []


SEARCH = """
window.addEventListener("load", function () {
  var log = [];
  var search = document.getElementById("search");
  function state() {
    var groups = Array.prototype.map.call(document.querySelectorAll("li.group"), function (g) {
      var names = g.querySelectorAll("ol.names button.member").length;
      return g.querySelector("h3").textContent + " [" + g.querySelector("summary").textContent + ": " + names + "]";
    });
    var singles = Array.prototype.map.call(document.querySelectorAll("li[data-item]:not(.group) h3"), function (h) {
      return h.textContent;
    });
    return document.getElementById("shown").textContent + " / " + groups.join(", ") + " / " +
      singles.slice(0, 3).join(", ");
  }
  log.push(state());
  var queries = ["flow2/screen-0001", "flow1/", "single/screen-03", "nothing-like-this"];
  (function next() {
    if (!queries.length) {
      document.querySelector('button[data-filter="added"]').click();
      log.push(state() + " / " + document.querySelectorAll("li.row").length + " rows drawn");
      document.body.setAttribute("data-log", log.join("|"));
      return;
    }
    search.value = queries.shift();
    search.dispatchEvent(new Event("input", {bubbles: true}));
    setTimeout(function () { log.push(state()); next(); }, 300);
  })();
});
"""


@pytest.fixture(scope="module")
def ten_thousand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of `many_changes`' 10,000 images (pictures embedded: they are few)."""
    out = tmp_path_factory.mktemp("ten-thousand")
    return write_reports(many_changes(out), out)["html"]


def test_filter_and_search_run_over_every_image_of_a_ten_thousand_image_report(
    ten_thousand: Path, tmp_path: Path
) -> None:
    log, browser = run(ten_thousand, SEARCH, tmp_path, "#q=needle")

    assert log == [
        # From the URL: one image deep in a group of 2,500, one among the single changes.
        "Showing 2 of 10,000 images / 2,500 images share this change "
        f"[The 2,500 images (1 match the search): 1] / {NEEDLE_SINGLE}",
        "Showing 10 of 10,000 images / 900 images share this change [The 900 images (10 match the search): 10] / ",
        "Showing 2,500 of 10,000 images / 2,500 images share this change "
        "[The 2,500 images (2,500 match the search): 200] / ",
        "Showing 100 of 10,000 images /  / " + ", ".join(f"single/screen-030{n}.png" for n in range(3)),
        "Showing 0 of 10,000 images /  / ",
        # The search is cleared by nothing but the person; the status filter narrows it further.
        "Showing 0 of 10,000 images /  /  / 0 rows drawn",
    ]
    assert console_messages(browser) == []


def test_a_status_filter_counts_every_image_and_draws_a_page_at_a_time(ten_thousand: Path, tmp_path: Path) -> None:
    page, browser = dump_dom(ten_thousand.as_uri() + "#status=changed", tmp_path / "profile")

    text = "".join(page.texts)
    assert "Showing 9,800 of 10,000 images" in text
    # Three group cards first (a card is one entry), then single changes, a few at a time.
    cards = [a for a in page.find("li") if "data-item" in a]
    assert 3 <= len(cards) < 50
    assert [a.get("data-group") for a in cards[:3]] == ["i1-group0", "i1-group1", "i1-group2"]
    assert "Cards 1–50 of 403, page 1 of 9" in text
    assert console_messages(browser) == []


GROUP = """
window.addEventListener("load", function () {
  var log = [];
  var group = document.querySelector("li.group");
  var details = group.querySelector("details.members");
  log.push(details.open + " " + group.querySelectorAll("ol.names li").length);
  details.querySelector("summary").click();
  setTimeout(function () {
    var names = Array.prototype.map.call(group.querySelectorAll("ol.names li"), function (li) {
      return li.textContent;
    });
    log.push(names.length + " " + names.slice(0, 3).join(", "));
    group.querySelectorAll("button.member")[2].click();
    var opened = group.querySelector(".opened li.item");
    var pictures = Array.prototype.map.call(opened.querySelectorAll("img"), function (img) {
      return img.getAttribute("src").replace(/^.*\\//, "");
    });
    log.push(opened.id + " " + opened.querySelector("h3 .name").textContent + " " + pictures.join(" "));
    group.querySelector("input.elsewhere").click();
    var away = Array.prototype.map.call(group.querySelectorAll("ol.names li"), function (li) {
      return li.textContent;
    });
    log.push(away.join(", "));
    opened.querySelector("button.close").click();
    log.push(String(group.querySelector(".opened").children.length));
    var hint = group.querySelector("p.similar");
    log.push(hint.textContent + " -> " + hint.querySelector("a").getAttribute("href"));
    document.body.setAttribute("data-log", log.join("|"));
  }, 300);
});
"""


def test_a_shared_change_lists_its_images_and_opens_each(tmp_path: Path, files_only: None) -> None:
    out = tmp_path / "out"
    comparison = many_changes(out, groups=(30, 12), singles=3, added=0, removed=0)
    report = write_reports(comparison, out)["html"]
    data = Page(report.read_text(encoding="utf-8")).report_data()
    position = {image["name"]: i for i, image in enumerate(data["images"])}
    own = {data["pictures"][i][0].removeprefix("previews/")
           for i in data["images"][position["flow0/screen-00002.png"]]["pics"].values()}

    log, browser = run(report, GROUP, tmp_path)

    closed, listed, opened, elsewhere, after_close, hint = log
    assert closed == "false 0"
    assert listed == ("30 flow0/screen-00000.png (shown above), flow0/screen-00001.png, "
                      "flow0/screen-00002.png")
    # The third name opens that image's own card, with its own pictures.
    anchor, name, *pictures = opened.split()
    assert (anchor, name) == (f"image-{position['flow0/screen-00002.png']}", "flow0/screen-00002.png")
    assert set(pictures) == own and len(pictures) == 7
    # Only the images whose change sits elsewhere: another bounding box, shown with it.
    assert elsewhere == ", ".join(f"flow0/screen-{n:05d}.png changed area x 40–48 px, y 60–64 px"
                                  for n in (3, 13, 23))
    assert after_close == "0"
    assert hint == ("Looks like 1 other change (12 images): flow1/screen-00000.png -> "
                    f"#image-{position['flow1/screen-00000.png']}")
    assert console_messages(browser) == []


def test_a_link_to_an_image_of_a_shared_change_opens_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    comparison = many_changes(out, groups=(300, 12), singles=3, added=0, removed=0)
    report = write_reports(comparison, out)["html"]
    data = Page(report.read_text(encoding="utf-8")).report_data()
    target = next(i for i, image in enumerate(data["images"]) if image["name"] == "flow1/screen-00007.png")
    driver = """window.addEventListener("load", function () {
      var found = document.getElementById(location.hash.slice(1));
      document.body.setAttribute("data-log", [found.closest(".opened") !== null,
        Math.round(found.getBoundingClientRect().top), found.querySelector("h3 .name").textContent].join("|"));
    });"""

    log, browser = run(report, driver, tmp_path, f"#image-{target}")

    assert log == ["true", "0", "flow1/screen-00007.png"]
    assert console_messages(browser) == []



def test_known_changes_are_reviewed_in_their_own_section(tmp_path: Path) -> None:
    out = tmp_path / "out"
    comparison = many_changes(out, groups=(5, 4), singles=2, added=1, removed=0)
    comparison.images.update({name: replace(result, known_change=True) for name, result in comparison.images.items()
                              if name.startswith("flow1/")})
    comparison.known_changes = KnownChanges("known.json", tuple(sorted(
        name for name, result in comparison.images.items() if result.known_change)))
    report = write_reports(comparison, out)["html"]

    page, browser = dump_dom(report.as_uri() + "#status=known", tmp_path / "profile")

    assert "Showing 4 of 12 images" in "".join(page.texts)
    [group] = [a for a in page.find("li") if "data-item" in a]
    assert (group["data-status"], group["data-group"]) == ("known", "i1-group1")
    assert {a["data-status"]: "hidden" in a for a in page.find("section")} == {
        "changed": True, "added": True, "known": False}
    assert console_messages(browser) == []


CLOSE = """
window.addEventListener("load", function () {
  var log = [];
  var group = document.querySelector("li.group");
  var details = group.querySelector("details.members");
  function focused() {
    var element = document.activeElement;
    return element.tagName.toLowerCase() + " " + (element.getAttribute("data-open") || "");
  }
  details.querySelector("summary").click();
  setTimeout(function () {
    var name = group.querySelectorAll("button.member")[2];
    name.focus();
    name.click();
    var close = group.querySelector(".opened button.close");
    close.focus();
    close.click();
    log.push(name.getAttribute("data-open") + " " + focused());
    // Opened again, the list folded away meanwhile: the focus goes to the list's summary.
    name.click();
    details.open = false;
    group.querySelector(".opened button.close").click();
    log.push(focused());
    document.body.setAttribute("data-log", log.join("|"));
  }, 300);
});
"""


def test_closing_an_opened_image_gives_the_focus_back_to_its_name(tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = write_reports(many_changes(out, groups=(30,), singles=3, added=0, removed=0), out)["html"]

    (closed, folded), browser = run(report, CLOSE, tmp_path)

    opened, focused = closed.split(" ", 1)
    assert focused == f"button {opened}"
    assert folded == "summary "
    assert console_messages(browser) == []


# The search, the filter, the fragment and whether the explanation of the threshold is in the window.
LANDED = """(function () {
  var target = document.getElementById("tuning-diff-threshold").getBoundingClientRect();
  return [document.getElementById("search").value, document.getElementById("shown").textContent,
          location.hash, target.top >= 0 && target.bottom <= innerHeight];
})()"""
SETTLED = ("window.addEventListener('hashchange', function () {"
           " setTimeout(function () { window.settled = true; }, 500); });")


def test_a_link_to_a_part_of_the_page_keeps_the_filter_and_lands_on_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = write_reports(many_changes(out, groups=(), singles=60, added=20, removed=0), out)["html"]
    ready = "document.body && document.body.getAttribute('data-ready') === 'true'"

    with DevTools(CHROMIUM, tmp_path / "profile", WINDOW) as browser:
        browser.open(report.as_uri() + "#q=single")
        browser.wait(ready)
        browser.evaluate(SETTLED + "document.querySelector('.facts a[href=\"#tuning-diff-threshold\"]').click();")
        browser.wait("window.settled")
        clicked = browser.evaluate(LANDED)
        # Opened on it: the page draws the cards above it, and it stays in the window.
        browser.open(report.as_uri() + "#tuning-diff-threshold")
        browser.wait(ready + " && document.readyState === 'complete'")
        browser.evaluate("setTimeout(function () { window.settled = true; }, 500);")
        browser.wait("window.settled")
        opened = browser.evaluate(LANDED)

    # The link on every changed card leaves the search and the filter as they were.
    assert clicked == ["single", "Showing 60 of 80 images", "#tuning-diff-threshold", True]
    assert opened == ["", "Showing all 80 images", "#tuning-diff-threshold", True]
