"""Known changes: a flaky screen's change, seen again and again on the main branch, is set aside,
through the ``snapcompare`` command (``known-changes``, ``compare --known-changes``)."""

from __future__ import annotations

import io
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compare.builds import compare_builds
from compare.cli import EXIT_BAD_INPUT, EXIT_DIFFERENCES, EXIT_SAME, main
from compare.model import Status
from tests.compare.output.helpers import Page
from tests.sentry_models import ComparisonManifest

pytestmark = pytest.mark.unit


def shot(spinner: tuple[int, int, int] | None = None, block: bool = False) -> bytes:
    """A white 60x40 screen; a spinner (a ring) drawn in ``spinner``'s colour, a grey block."""
    pixels = np.full((40, 60, 4), 255, dtype=np.uint8)
    if spinner is not None:
        ring = np.ones((6, 6), dtype=bool)
        ring[2:4, 2:4] = False
        pixels[2:8, 50:56, :3][ring] = spinner
    if block:
        pixels[20:30, 5:25, :3] = 128
    out = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(out, format="PNG")
    return out.getvalue()


class Runs:
    """Builds as folders, comparisons run with the command, their comparison.json kept."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = self.build("base", {"clock.png": shot(), "home.png": shot(), "other.png": shot()})

    def build(self, name: str, images: dict[str, bytes]) -> Path:
        folder = self.root / name
        folder.mkdir()
        for image, data in images.items():
            (folder / image).write_bytes(data)
        return folder

    def compare(self, head: Path, out: str, *extra: str) -> tuple[int, dict]:
        code = main(["compare", "--base", str(self.base), "--head", str(head),
                     "--out", str(self.root / out), "--quiet", *extra])
        report = json.loads((self.root / out / "comparison.json").read_text()) if code < EXIT_BAD_INPUT else {}
        return code, report

    def main_branch(self, *spinners: tuple[int, int, int] | None) -> list[Path]:
        """One comparison per spinner colour (None: no spinner), the home screen changed in the
        second; their comparison.json files, oldest first."""
        kept = []
        for index, spinner in enumerate(spinners):
            head = self.build(f"main-{index}", {"clock.png": shot(spinner), "home.png": shot(block=index == 1),
                                                "other.png": shot()})
            self.compare(head, f"main-{index}-report")
            kept.append(self.root / f"main-{index}.json")
            shutil.copyfile(self.root / f"main-{index}-report" / "comparison.json", kept[-1])
        return kept


@pytest.fixture
def runs(tmp_path: Path) -> Runs:
    return Runs(tmp_path)


# The same spinner caught in another colour each time: other identical ids, one similar id.
SPINNERS = [(200, 40, 40), (190, 50, 60), (210, 30, 50)]


def test_a_change_seen_on_the_main_branch_again_and_again_is_set_aside(runs, capsys):
    comparisons = runs.main_branch(*SPINNERS)
    known = runs.root / "known.json"
    assert main(["known-changes", *map(str, comparisons), "-o", str(known)]) == EXIT_SAME
    assert "1 known changes (found in at least 3 of the last 3 comparisons)" in capsys.readouterr().out
    document = json.loads(known.read_text())
    clock = json.loads(comparisons[0].read_text())["images"]["clock.png"]
    assert document["changes"] == [{"name": "clock.png", "similar_change": clock["similar_change"], "count": 3}]
    assert (document["snapcompare_known_changes"], document["level"], document["min_count"], document["last"]) \
        == (1, "similar", 3, 7)
    assert document["comparisons"] == list(map(str, comparisons))

    pull_request = runs.build("pr", {"clock.png": shot((180, 60, 40)), "home.png": shot(), "other.png": shot()})
    code, report = runs.compare(pull_request, "pr-report", "--known-changes", str(known))
    assert code == EXIT_SAME
    assert report["images"]["clock.png"]["status"] == Status.CHANGED
    assert report["images"]["clock.png"]["known_change"] is True
    assert report["images"]["clock.png"]["change_group"] != clock["change_group"]
    assert report["images"]["home.png"]["known_change"] is None  # unchanged
    assert report["known_changes"] == {"source": str(known), "images": ["clock.png"], "counted": False}
    assert report["summary"]["changed"] == 1
    ComparisonManifest.model_validate(report)
    assert "no other differences in 3 images; 1 known changes set aside" in capsys.readouterr().out
    assert _junit(runs.root / "pr-report") == ("0", {"status": "changed", "known_change": str(known)})
    assert _html(runs.root / "pr-report") == ("snapcompare: 1 known", "No differences but known changes",
                                              "known", [])

    code, report = runs.compare(pull_request, "counted", "--known-changes", str(known), "--fail-on-known-changes")
    assert code == EXIT_DIFFERENCES
    assert report["known_changes"]["counted"] is True
    assert report["images"]["clock.png"]["known_change"] is True
    assert _junit(runs.root / "counted") == ("1", {"status": "changed"})
    # Counted, a known change is one of the changes the page shows as such, marked as known.
    assert _html(runs.root / "counted") == ("snapcompare: 1 changed", "Differences found", "changed",
                                            ["a known change, counted (--fail-on-known-changes)"])


def _junit(out: Path) -> tuple[str | None, dict[str, str]]:
    """junit.xml's failure count and clock.png's properties."""
    suite = ET.parse(out / "junit.xml").getroot()
    [case] = [case for case in suite.iter("testcase") if case.get("name") == "clock.png"]
    return suite.get("failures"), {p.get("name"): p.get("value") for p in case.iter("property")}


def _html(out: Path) -> tuple[str, str, str, list[str]]:
    """report.html's title and verdict, the section of clock.png and its facts in words."""
    page = Page((out / "report.html").read_text())
    data = page.report_data()
    [clock] = [image for image in data["images"] if image["name"] == "clock.png"]
    [verdict] = [text for text in page.texts if "ifferences" in text]
    return (page.title, verdict, data["sections"][clock["section"]],
            [fact[1] for fact in clock["facts"] if "known" in fact[1]])


def test_only_an_image_whose_whole_change_is_known_is_set_aside(runs, capsys):
    known = runs.root / "known.json"
    main(["known-changes", *map(str, runs.main_branch(*SPINNERS)), "-o", str(known)])
    head = runs.build("pr", {"clock.png": shot(SPINNERS[0]), "home.png": shot(block=True),
                             "other.png": shot(SPINNERS[0])})
    capsys.readouterr()
    code = main(["compare", "--base", str(runs.base), "--head", str(head), "--out", str(runs.root / "out"),
                 "--known-changes", str(known)])
    report = json.loads((runs.root / "out" / "comparison.json").read_text())
    assert code == EXIT_DIFFERENCES
    # Known for the clock only: the same spinner on another screen is that screen's change.
    assert {name: image["known_change"] for name, image in report["images"].items()} == {
        "clock.png": True, "home.png": False, "other.png": False}
    assert report["images"]["other.png"]["similar_change"] == report["images"]["clock.png"]["similar_change"]
    printed = capsys.readouterr().out
    assert "differences found: 2 changed; 1 known changes set aside" in printed
    assert "Known changes set aside: 1 changed images hold only a change known in" in printed
    most_changed = printed.split("Most changed:")[1].split("\n\n")[0]
    assert "home.png" in most_changed and "clock.png" not in most_changed

    # A spinner together with a real change on the clock screen is a change of its own.
    head = runs.build("pr-2", {"clock.png": shot(SPINNERS[0], block=True), "home.png": shot(),
                               "other.png": shot()})
    code, report = runs.compare(head, "out-2", "--known-changes", str(known))
    assert code == EXIT_DIFFERENCES
    assert report["images"]["clock.png"]["known_change"] is False
    assert report["known_changes"]["images"] == []


def test_the_last_comparisons_given_are_counted(runs, capsys):
    flaky_first = runs.main_branch(SPINNERS[0], SPINNERS[1], None)
    known = runs.root / "known.json"
    assert main(["known-changes", *map(str, flaky_first), "--min-count", "2", "--last", "2",
                 "-o", str(known)]) == EXIT_SAME
    assert json.loads(known.read_text())["changes"] == []
    assert json.loads(known.read_text())["comparisons"] == list(map(str, flaky_first[1:]))
    assert main(["known-changes", *map(str, reversed(flaky_first)), "--min-count", "2", "--last", "2",
                 "-o", str(known)]) == EXIT_SAME
    assert [change["name"] for change in json.loads(known.read_text())["changes"]] == ["clock.png"]


def test_a_previous_comparison_or_a_stored_file_gives_known_changes(runs, tmp_path):
    previous = runs.main_branch(SPINNERS[0])[0]
    head = runs.build("pr", {"clock.png": shot(SPINNERS[2]), "home.png": shot(), "other.png": shot()})
    code, report = runs.compare(head, "from-comparison", "--known-changes", str(previous))
    assert code == EXIT_SAME and report["known_changes"]["images"] == ["clock.png"]

    store = tmp_path / "store"
    (store / "known").mkdir(parents=True)
    shutil.copyfile(previous, store / "known" / "main.json")
    comparison = compare_builds(runs.base, head, store=str(store), known_changes="store:known/main.json")
    assert comparison.known_changes.source == "store:known/main.json"
    assert comparison.set_aside == ("clock.png",)
    assert not comparison.has_counted_differences and comparison.has_differences


@pytest.mark.parametrize(("content", "where"), [
    (b"not json", "line 1, column 1: invalid JSON"),
    (b"[1, 2]", "expected a comparison.json (with images) or a known-changes file"),
    (b'{"images": {"clock.png": {"status": "changed", "similar_change": 42}}}',
     'images["clock.png"].similar_change: expected a similar-change id (s1- and 16 hex digits), got 42'),
    (b'{"images": {"clock.png": "changed"}}',
     'images["clock.png"]: expected an image result (an object with a known status)'),
    (b'{"images": {"clock.png": {"content_hash": "' + b"a" * 64 + b'"}}}',  # a build's manifest
     'images["clock.png"]: expected an image result (an object with a known status)'),
    (b'{"snapcompare_known_changes": 2, "changes": []}', "snapcompare_known_changes: expected format 1, got 2"),
    (b'{"snapcompare_known_changes": true, "level": "similar", "changes": []}',
     "snapcompare_known_changes: expected format 1, got true"),
    (b'{"snapcompare_known_changes": 1, "changes": []}', 'level: expected "similar", got null'),
    (b'{"snapcompare_known_changes": 1, "level": "similar", "changes": {}}',
     "changes: expected a list of known changes"),
    (b'{"snapcompare_known_changes": 1, "level": "similar", '
     b'"changes": [{"name": 3, "similar_change": "s1-0123456789abcdef"}]}',
     "changes[0].name: expected an image name"),
    (b'{"snapcompare_known_changes": 1, "level": "similar", '
     b'"changes": [{"name": "a.png", "similar_change": "i1-0123456789abcdef"}]}',
     'changes[0].similar_change: expected a similar-change id (s1- and 16 hex digits), got "i1-0123456789abcdef"'),
    (b'{"snapcompare_known_changes": 1, "level": "similar", '
     b'"changes": [{"name": "a.png", "similar_change": "s2-0123456789abcdef"}]}',
     'changes[0].similar_change: expected a similar-change id (s1- and 16 hex digits), got "s2-0123456789abcdef"'),
])
def test_malformed_known_changes_exit_3_naming_the_file_and_the_field(runs, capsys, content, where):
    bad = runs.root / "bad.json"
    bad.write_bytes(content)
    head = runs.build("pr", {"clock.png": shot(SPINNERS[0]), "home.png": shot(), "other.png": shot()})
    capsys.readouterr()
    code, _ = runs.compare(head, "out", "--known-changes", str(bad))
    assert code == EXIT_BAD_INPUT
    assert f"snapcompare: error: {bad}: {where}" in capsys.readouterr().err
    assert not (runs.root / "out" / "comparison.json").exists()


def test_known_changes_command_refuses_what_is_not_a_comparison(runs, capsys):
    comparisons = runs.main_branch(SPINNERS[0])
    known = runs.root / "known.json"
    main(["known-changes", str(comparisons[0]), "-o", str(known)])
    capsys.readouterr()
    assert main(["known-changes", str(comparisons[0]), str(known), "-o", str(runs.root / "k.json")]) == EXIT_BAD_INPUT
    assert f"{known}: images: expected a JSON object of image results" in capsys.readouterr().err
    assert main(["known-changes", str(runs.root / "missing.json"), "-o", str(known)]) == EXIT_BAD_INPUT
    assert "missing.json" in capsys.readouterr().err
    assert main(["known-changes", str(comparisons[0]), "--min-count", "0", "-o", str(known)]) == EXIT_BAD_INPUT
    assert main(["known-changes", str(comparisons[0]), "--min-count", "5", "--last", "3", "-o", str(known)]) \
        == EXIT_BAD_INPUT
    assert "--min-count 5 is more than --last 3" in capsys.readouterr().err
    # One comparison given again would count its changes again.
    again = runs.root / "again.json"
    again.symlink_to(comparisons[0])
    assert main(["known-changes", *[str(comparisons[0])] * 2, str(again), "-o", str(known)]) == EXIT_BAD_INPUT
    assert f"COMPARISON {comparisons[0]} is given twice" in capsys.readouterr().err
    assert main(["known-changes", str(comparisons[0]), "-o", str(runs.root / "no" / "such" / "k.json")]) \
        == EXIT_BAD_INPUT
    assert "-o: " in capsys.readouterr().err


def test_a_known_change_with_a_size_change_is_a_change_of_its_own(runs, capsys):
    known = runs.root / "known.json"
    main(["known-changes", *map(str, runs.main_branch(*SPINNERS)), "-o", str(known)])
    taller = np.full((60, 60, 4), 255, dtype=np.uint8)
    taller[40:] = 0  # transparent rows below: the spinner is the only change the engine counts
    taller[:40] = np.asarray(Image.open(io.BytesIO(shot(SPINNERS[0]))).convert("RGBA"))
    out = io.BytesIO()
    Image.fromarray(taller, "RGBA").save(out, format="PNG")
    head = runs.build("pr", {"clock.png": out.getvalue(), "home.png": shot(), "other.png": shot()})
    capsys.readouterr()

    code, report = runs.compare(head, "out", "--known-changes", str(known))

    clock = report["images"]["clock.png"]
    assert (clock["status"], clock["canvas_changed"], clock["known_change"]) == ("changed", True, False)
    assert code == EXIT_DIFFERENCES and report["known_changes"]["images"] == []


def test_an_approval_carries_over_whatever_the_known_changes_set_aside(runs, capsys):
    known = runs.root / "known.json"
    main(["known-changes", *map(str, runs.main_branch(*SPINNERS)), "-o", str(known)])
    reviewed = runs.build("pr", {"clock.png": shot(SPINNERS[0]), "home.png": shot(block=True),
                                 "other.png": shot()})
    runs.compare(reviewed, "reviewed", "--known-changes", str(known))
    # Re-run: the flaky clock caught in another colour, the approved change the same.
    rerun = runs.build("pr-again", {"clock.png": shot(SPINNERS[2]), "home.png": shot(block=True),
                                    "other.png": shot()})
    capsys.readouterr()

    code, report = runs.compare(rerun, "again", "--known-changes", str(known),
                                "--approved", str(runs.root / "reviewed" / "comparison.json"))

    assert code == EXIT_SAME
    assert report["approval"]["images"] == ["home.png"] and report["known_changes"]["images"] == ["clock.png"]

    # Approved before the known changes were given: the clock's change, set aside now, needs none.
    runs.compare(reviewed, "reviewed-plain")
    code, report = runs.compare(reviewed, "again-2", "--known-changes", str(known),
                                "--approved", str(runs.root / "reviewed-plain" / "comparison.json"))
    assert code == EXIT_SAME and report["approval"]["images"] == ["home.png"]


def test_a_change_within_its_threshold_on_the_main_branch_is_not_known(runs, tmp_path):
    # The same spinner seen on main, but within what each run allowed: no change came back.
    comparisons = []
    for index, colour in enumerate(SPINNERS):
        head = runs.build(f"allowed-{index}", {"clock.png": shot(colour), "home.png": shot(), "other.png": shot()})
        out = f"allowed-{index}-report"
        runs.compare(head, out, "--diff-threshold", "0.5")
        report = json.loads((runs.root / out / "comparison.json").read_text())
        assert report["images"]["clock.png"]["status"] == "unchanged"
        assert report["images"]["clock.png"]["similar_change"] is not None
        comparisons.append(runs.root / out / "comparison.json")
    known = tmp_path / "known.json"
    assert main(["known-changes", *map(str, comparisons), "-o", str(known)]) == EXIT_SAME
    assert json.loads(known.read_text())["changes"] == []
