"""report.html at scale: shared changes make one card, known changes their own section, the data
is one JSON, pictures are listed once and embedded only under the inline budget."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import pytest

from compare.engine.pairs import PairOutcome
from compare.model import CompareOptions, Comparison, ImageResult, KnownChanges, Status
from compare.output import report_html
from compare.output.artifacts import ArtifactWriter
from compare.output.report_html import iter_html
from compare.output.reports import write_reports
from tests.compare.output.change_groups import NEEDLE_SINGLE, changed, many_changes, picture, previews
from tests.compare.output.helpers import XSS_IMG, Page

pytestmark = pytest.mark.unit


def page_data(text: str) -> dict:
    return Page(text).report_data()


def positions(data: dict) -> dict[str, int]:
    return {image["name"]: i for i, image in enumerate(data["images"])}


def test_images_sharing_a_change_make_one_card_largest_first(tmp_path: Path) -> None:
    comparison = many_changes(tmp_path, groups=(3, 12, 5), singles=4, added=2, removed=1)
    # The representative is the group's, not the first by name.
    groups = list(comparison.change_groups)
    groups[1] = replace(groups[1], representative="flow1/screen-00007.png")
    comparison.change_groups = tuple(groups)

    data = page_data("".join(iter_html(comparison, tmp_path)))

    images = data["images"]
    assert data["sections"] == ["changed", "added", "removed"]
    assert [(g["id"], g["count"]) for g in data["groups"]] == [("i1-group1", 12), ("i1-group2", 5), ("i1-group0", 3)]
    first = data["groups"][0]
    members = [images[i]["name"] for i in range(first["first"], first["first"] + first["count"])]
    assert members[0] == "flow1/screen-00007.png"
    assert members[1:] == sorted(m for m in comparison.change_groups[1].images if m != members[0])
    assert all(images[i].get("group") == 0 for i in range(first["first"], first["first"] + 12))
    # Members whose change sits elsewhere than the representative's: another bounding box.
    assert sorted(images[i]["name"] for i in first["elsewhere"]) == ["flow1/screen-00003.png"]
    # Single changes after the groups, largest first; each image once, in page order.
    singles = [image["name"] for image in images if image["section"] == 0 and "group" not in image]
    assert singles == [f"single/screen-{n:04d}.png" if n != 2 else NEEDLE_SINGLE for n in range(4)]
    assert len(images) == len(comparison.images) == len({image["name"] for image in images})
    # The anchors the banner links to are the images' positions.
    assert report_html._page(comparison, tmp_path).anchors["flow1/screen-00007.png"] == f"image-{first['first']}"


def test_a_group_is_only_a_card_when_two_images_of_a_section_share_it(tmp_path: Path) -> None:
    keys = previews(tmp_path, "p", (10, 10, 10))
    images = [
        changed("a.png", 0, keys, group="i1-alone"),
        changed("b.png", 1, keys, group="i1-split", known=True),
        changed("c.png", 2, keys, group="i1-split"),
        changed("d.png", 3, keys, group="i1-known", known=True),
        changed("e.png", 4, keys, group="i1-known", known=True),
    ]
    comparison = Comparison({r.name: r for r in images}, CompareOptions(),
                            known_changes=KnownChanges("known.json", ("b.png", "d.png", "e.png")))

    text = "".join(iter_html(comparison, tmp_path))

    data = page_data(text)
    assert data["sections"] == ["changed", "known"]
    by_name = {image["name"]: image for image in data["images"]}
    assert [name for name, image in by_name.items() if "group" in image] == ["d.png", "e.png"]
    assert [g["id"] for g in data["groups"]] == ["i1-known"]
    assert {name: data["sections"][image["section"]] for name, image in by_name.items()} == {
        "a.png": "changed", "c.png": "changed", "b.png": "known", "d.png": "known", "e.png": "known"}
    # The known changes' tile and section, after removed and before skipped.
    page = Page(text)
    tiles = [a["data-filter"] for a in page.find("button") if "data-filter" in a]
    assert tiles == ["changed", "errored", "renamed", "added", "removed", "known", "skipped", "unchanged"]
    assert [a["data-status"] for a in page.find("section")] == ["changed", "known"]


def test_cards_of_similar_changes_link_each_other(tmp_path: Path) -> None:
    comparison = many_changes(tmp_path, groups=(3, 2, 2), singles=2, added=0, removed=0)
    one = comparison.images["single/screen-0000.png"]
    comparison.images[one.name] = replace(one, similar_change="s1-similar")

    data = page_data("".join(iter_html(comparison, tmp_path)))

    by_name = positions(data)
    hints = {image["name"]: image["similar"] for image in data["images"] if "similar" in image}
    first = [image["name"] for image in data["images"]][0]
    assert first == "flow0/screen-00000.png"
    # Groups 0 and 1 and one single image look alike; group 2 and the other single do not.
    assert hints == {
        first: {"cards": 2, "images": 3, "links": [by_name["flow1/screen-00000.png"], by_name[one.name]]},
        "flow1/screen-00000.png": {"cards": 2, "images": 4, "links": [by_name[first], by_name[one.name]]},
        one.name: {"cards": 2, "images": 5, "links": [by_name[first], by_name["flow1/screen-00000.png"]]},
    }


def test_pictures_are_listed_once_and_embedded_under_the_inline_budget(tmp_path: Path) -> None:
    comparison = many_changes(tmp_path, groups=(50, 30), singles=20, added=5, removed=5)

    text = "".join(iter_html(comparison, tmp_path))

    data = page_data(text)
    files = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "previews").iterdir())
    assert sorted(row[0] for row in data["pictures"]) == files
    for row in data["pictures"]:
        assert (tmp_path / row[0]).read_bytes() == base64.b64decode(row[5].removeprefix("data:image/png;base64,"))
    crop = next(row for row in data["pictures"] if row[0] == "previews/group0.crop-after.png")
    assert crop[:5] == ["previews/group0.crop-after.png", 16, 12, 10, 20]
    feed = data["images"][0]
    assert feed["where"] == "x 10–26 px, y 20–32 px"
    pictures = {role: data["pictures"][i][0] for role, i in feed["pics"].items()}
    assert pictures == comparison.images[feed["name"]].previews
    [csp] = [a for a in Page(text).find("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    assert "img-src data:;" in csp["content"] and "'self'" not in csp["content"]
    assert "previews/ beside this page" not in text


def test_over_the_inline_budget_pictures_are_files_beside_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    comparison = many_changes(tmp_path, groups=(50, 30), singles=20, added=5, removed=5)
    total = sum(p.stat().st_size for p in (tmp_path / "previews").iterdir())
    monkeypatch.setattr(report_html, "INLINE_BUDGET", total - 1)

    text = "".join(iter_html(comparison, tmp_path))

    data = page_data(text)
    assert all(len(row) in (3, 5) and not row[0].startswith("data:") for row in data["pictures"])
    assert "data:image" not in text
    [csp] = [a for a in Page(text).find("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    assert "img-src 'self';" in csp["content"] and "default-src 'none'" in csp["content"]
    words = " ".join("".join(Page(text).texts).split())
    assert f"The pictures are {len(data['pictures'])} files in previews/ beside this page" in words


def test_a_picture_missing_or_outside_the_folder_is_not_shown(tmp_path: Path) -> None:
    out = tmp_path / "out"
    keys = previews(out, "p", (10, 10, 10))
    (out / keys["after"]).unlink()
    (tmp_path / "secret.png").write_bytes((out / keys["before"]).read_bytes())
    keys["before"] = "../secret.png"
    (out / keys["diff"]).write_bytes(b"not a picture")
    comparison = Comparison({"a.png": changed("a.png", 0, keys)}, CompareOptions())

    data = page_data("".join(iter_html(comparison, out)))

    pics = data["images"][0]["pics"]
    assert {role for role, position in pics.items() if position is None} == {"before", "after", "diff"}
    assert [row[0] for row in data["pictures"]] == [keys[f"crop-{role}"] for role in ("before", "after", "diff")]


def test_added_removed_and_renamed_images_show_their_picture_or_say_it_is_missing(tmp_path: Path) -> None:
    whole = picture(tmp_path, "previews/x.png", (1, 2, 3), (39, 84))
    images = [
        ImageResult("added.png", Status.ADDED, head_hash="1" * 64, previews={"after": whole}),
        ImageResult("removed.png", Status.REMOVED, base_hash="2" * 64, previews={"before": whole}),
        ImageResult("renamed.png", Status.RENAMED, base_hash="3" * 64, head_hash="3" * 64,
                    previous_image_file_name="old.png", previews={"before": whole, "after": whole}),
        ImageResult("no-picture.png", Status.ADDED, head_hash="4" * 64),
        ImageResult("skipped.png", Status.SKIPPED, base_hash="5" * 64),
    ]
    comparison = Comparison({r.name: r for r in images}, CompareOptions())

    data = page_data("".join(iter_html(comparison, tmp_path)))

    pics = {image["name"]: image.get("pics") for image in data["images"]}
    assert pics == {"renamed.png": {"before": 0, "after": 0}, "added.png": {"after": 0},
                    "no-picture.png": {"after": None}, "removed.png": {"before": 0}, "skipped.png": None}
    # Without previews (a comparison run without an output folder) nothing is missing.
    comparison.options = CompareOptions(previews=False)
    data = page_data("".join(iter_html(comparison, tmp_path)))
    assert "pics" not in next(image for image in data["images"] if image["name"] == "no-picture.png")


def test_ten_thousand_images_make_one_small_page(tmp_path: Path) -> None:
    comparison = many_changes(tmp_path)
    comparison.images[XSS_IMG] = changed(XSS_IMG, 99_999, None)

    text = "".join(iter_html(comparison, tmp_path))

    page = Page(text)
    # About 470 bytes an image: figures, hashes and the positions of its pictures in one table.
    assert len(page.scripts) == 2 and len(text.encode()) < 500 * 10_001
    data = page.report_data()
    assert len(data["images"]) == 10_001 and len(data["pictures"]) == 6 * 3 + 6 * 6 + 6 + 1
    # Cards and rows are built by the page's script: the markup holds none.
    assert not page.find("img") and not [a for a in page.find("li") if "data-item" in a]
    assert XSS_IMG not in text


def test_identical_previews_of_many_pairs_are_one_file(tmp_path: Path) -> None:
    crop = picture(tmp_path / "src", "crop.png", (9, 9, 9), (4, 4))
    data = (tmp_path / "src" / crop).read_bytes()
    with ArtifactWriter(tmp_path / "out") as writer:
        keys = [writer.previews(PairOutcome(f"{n:064x}", f"{n + 1:064x}", previews={"crop-after": data, "diff": data}))
                for n in range(50)]
        write_reports(Comparison({f"{n}.png": changed(f"{n}.png", n, k) for n, k in enumerate(keys)},
                                 CompareOptions()), writer)

    assert {key for k in keys for key in k.values()} == {keys[0]["diff"]}
    assert [p.name for p in (tmp_path / "out" / "previews").iterdir()] == [keys[0]["diff"].removeprefix("previews/")]
    report = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert {image["previews"]["crop-after"] for image in report["images"].values()} == {keys[0]["diff"]}
