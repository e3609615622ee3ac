"""Comparisons of many changed images sharing changes and picture files, for the report tests
at scale (test_report_groups.py, test_report_scale_browser.py)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from compare.imaging.previews import CROP_ORIGIN_KEY
from compare.model import ChangeGroup, ChangeLevel, CompareOptions, Comparison, ImageResult, Status

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
