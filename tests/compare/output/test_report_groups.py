"""report.html at scale: shared changes make one card, known changes their own section, the data
is one JSON, pictures are listed once and embedded only under the inline budget."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from compare.engine.pairs import PairOutcome
from compare.imaging.previews import CROP_ORIGIN_KEY
from compare.model import ChangeGroup, ChangeLevel, CompareOptions, Comparison, ImageResult, Status
from compare.output import report_html
from compare.output.artifacts import ArtifactWriter
from compare.output.report_html import iter_html
from compare.output.reports import write_reports
from tests.compare.output.test_reports import XSS_IMG, Page

pytestmark = pytest.mark.unit

NEEDLE_IN_GROUP = "flow1/needle-in-a-group.png"
NEEDLE_SINGLE = "single/needle-alone.png"


def picture(out_dir: Path, key: str, colour: tuple[int, int, int], size: tuple[int, int],
            origin: tuple[int, int] | None = None) -> str:
    """Write a small PNG under ``out_dir`` (a crop when ``origin`` is given); return its key."""
    path = out_dir / key
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    if origin is not None:
        info.add_text(CROP_ORIGIN_KEY, f"{origin[0]},{origin[1]}")
    Image.new("RGB", size, colour).save(path, pnginfo=info)
    return key


def previews(out_dir: Path, stem: str, colour: tuple[int, int, int]) -> dict[str, str]:
    """A changed image's six pictures: whole before/after/diff (39x84) and crops at (10, 20)."""
    keys = {role: picture(out_dir, f"previews/{stem}.{role}.png", tuple(min(255, c + shade) for c in colour),
                          (39, 84))
            for role, shade in (("before", 0), ("after", 40), ("diff", 80))}
    keys.update({f"crop-{role}": picture(out_dir, f"previews/{stem}.crop-{role}.png",
                                         tuple(min(255, c + shade) for c in colour), (16, 12), origin=(10, 20))
                 for role, shade in (("before", 0), ("after", 40), ("diff", 80))})
    return keys


def changed(name: str, index: int, keys: dict[str, str] | None, *, group: str | None = None,
            similar: str | None = None, bbox: tuple[int, int, int, int] = (14, 24, 22, 28),
            ratio: float = 0.01, known: bool | None = None) -> ImageResult:
    return ImageResult(
        name=name, status=Status.CHANGED, base_hash=f"{2 * index:064x}", head_hash=f"{2 * index + 1:064x}",
        before_width=39, before_height=84, after_width=39, after_height=84, changed_pixels=round(ratio * 3276),
        total_pixels=3276, diff_ratio=ratio, bbox=bbox, diff_threshold=0.0, previews=keys,
        change_group=group, similar_change=similar, known_change=known)


def many_changes(out_dir: Path, groups: tuple[int, ...] = (6000, 2500, 900), singles: int = 400,
                 added: int = 150, removed: int = 50) -> Comparison:
    """A comparison of 10,000 images by default, sharing a few picture files: changed images in
    identical-change groups of ``groups`` sizes (every tenth image of a group elsewhere; the
    first two groups similar), ``singles`` changes of their own, ``added`` and ``removed``.
    `NEEDLE_IN_GROUP` sits in the middle of group 1, `NEEDLE_SINGLE` among the singles; the first
    two images after a group's representative have their own pictures."""
    images: list[ImageResult] = []
    change_groups = []
    index = 0
    for number, size in enumerate(groups):
        shared = previews(out_dir, f"group{number}", (40 * number, 90, 160))
        members = []
        for member in range(size):
            name = NEEDLE_IN_GROUP if (number, member) == (1, size // 2) else f"flow{number}/screen-{member:05d}.png"
            own = previews(out_dir, f"own{number}-{member}", (200, 40 * member, 30)) if member in (1, 2) else shared
            bbox = (40, 60, 48, 64) if member % 10 == 3 else (14, 24, 22, 28)
            members.append(changed(name, index, own, group=f"i1-group{number}",
                                   similar="s1-similar" if number < 2 else None, bbox=bbox, ratio=0.01 + number / 1000))
            index += 1
        change_groups.append(ChangeGroup(f"i1-group{number}", ChangeLevel.IDENTICAL,
                                         tuple(sorted(m.name for m in members)), members[0].name))
        images += members
    lone = previews(out_dir, "single", (250, 200, 0))
    for number in range(singles):
        name = NEEDLE_SINGLE if number == singles // 2 else f"single/screen-{number:04d}.png"
        images.append(changed(name, index, lone, ratio=0.5 - number / 10_000))
        index += 1
    whole = picture(out_dir, "previews/added.png", (0, 160, 60), (39, 84))
    images += [ImageResult(f"new/screen-{n:04d}.png", Status.ADDED, head_hash=f"{index + n:064x}",
                           after_width=39, after_height=84, previews={"after": whole}) for n in range(added)]
    images += [ImageResult(f"old/screen-{n:04d}.png", Status.REMOVED, base_hash=f"{index + added + n:064x}",
                           previews={"before": whole}) for n in range(removed)]
    return Comparison(images={r.name: r for r in images}, options=CompareOptions(),
                      change_groups=tuple(change_groups))


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
    comparison = Comparison({r.name: r for r in images}, CompareOptions())

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
