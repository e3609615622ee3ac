"""The pixel-diff engines through a whole comparison: ``snapcompare compare`` on real PNGs.

Engine choice, --profile sentry, ignore regions (command line and manifest), the window rule,
bad settings, and what comparison.json and report.html record.
"""

from __future__ import annotations

import hashlib
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compare import CompareOptions, ImageError, InputError, Resources, compare_builds, diff_images
from compare.cli import EXIT_BAD_INPUT, EXIT_DIFFERENCES, EXIT_SAME, main
from compare.demo import generate_demo
from compare.engine.chunks import (
    ChunkResult,
    plan,
    run_chunk,
)
from compare.imaging.engines import DEFAULT_ENGINE, ENGINES
from compare.inputs.manifest import load_manifest
from compare.output.results_json import chunk_result_from_json, chunk_result_to_json, plan_from_json, plan_to_json
from conformance import CASES
from tests.sentry_models import ChunkResult as SentryChunkResult
from tests.sentry_models import ComparisonPlan as SentryPlan

pytestmark = pytest.mark.unit

W, H = 60, 40
BLOCK_A = (5, 5, 9, 9)  # x1, y1, x2, y2, corners included: 25 pixels
BLOCK_B = (40, 20, 44, 24)


def page_data(out: Path) -> dict:
    """The data report.html embeds and draws its cards from."""
    html = (out / "report.html").read_text(encoding="utf-8")
    start = html.index('<script type="application/json" id="report-data">')
    body = html[html.index(">", start) + 1 : html.index("</script>", start)]
    return json.loads(body)


def png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(out, format="PNG")
    return out.getvalue()


def canvas() -> np.ndarray:
    pixels = np.zeros((H, W, 4), dtype=np.uint8)
    pixels[...] = (240, 240, 240, 255)
    return pixels


def with_blocks(*blocks: tuple[int, int, int, int]) -> np.ndarray:
    pixels = canvas()
    for x1, y1, x2, y2 in blocks:
        pixels[y1 : y2 + 1, x1 : x2 + 1] = (200, 30, 30, 255)
    return pixels


def scattered(step: int) -> np.ndarray:
    """Isolated changed pixels, ``step`` apart on both axes."""
    pixels = canvas()
    pixels[2::step, 2::step] = (20, 20, 20, 255)
    return pixels


def folders(tmp_path: Path, pairs: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[Path, Path]:
    base, head = tmp_path / "base", tmp_path / "head"
    for name, (before, after) in pairs.items():
        for folder, pixels in ((base, before), (head, after)):
            folder.mkdir(exist_ok=True)
            (folder / name).write_bytes(png(pixels))
    return base, head


def manifests(
    tmp_path: Path, pairs: dict[str, tuple[np.ndarray, np.ndarray]], extra: dict[str, dict] | None = None
) -> tuple[Path, Path, Path]:
    """base.json, head.json and a folder store; ``extra`` adds fields to head images."""
    store = tmp_path / "store"
    store.mkdir()
    docs: dict[str, dict] = {"base": {}, "head": {}}
    for name, sides in pairs.items():
        for role, pixels in zip(("base", "head"), sides, strict=True):
            data = png(pixels)
            digest = hashlib.sha256(data).hexdigest()
            (store / digest).write_bytes(data)
            docs[role][name] = {"content_hash": digest, "width": pixels.shape[1], "height": pixels.shape[0]}
    for name, fields in (extra or {}).items():
        docs["head"][name].update(fields)
    paths = []
    for role in ("base", "head"):
        path = tmp_path / f"{role}.json"
        path.write_text(json.dumps({"images": docs[role]}), encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1], store


def compare(base: Path, head: Path, out: Path, *args: str, store: Path | None = None) -> int:
    argv = ["compare", "--base", str(base), "--head", str(head), "--out", str(out), "--quiet", *args]
    if store is not None:
        argv += ["--store", str(store)]
    return main(argv)


def report(out: Path) -> dict:
    return json.loads((out / "comparison.json").read_text(encoding="utf-8"))


def mask(out: Path, image: dict) -> np.ndarray:
    with Image.open(out / image["diff_mask_key"]) as picture:
        return np.asarray(picture.convert("L")) > 0


# Engines.


@pytest.mark.parametrize("engine", list(ENGINES))
def test_each_engine_is_selectable_and_recorded(engine, tmp_path):
    before, after = canvas(), with_blocks(BLOCK_A)
    base, head = folders(tmp_path, {"a.png": (before, after)})
    out = tmp_path / "out"

    assert compare(base, head, out, "--engine", engine) == EXIT_DIFFERENCES

    data = report(out)
    assert data["options"]["engine"] == engine
    assert data["algorithm_version"] == ENGINES[engine].version
    assert data["options"]["engine_options"] == {
        "pixelmatch": {"checkerboard": True}, "oklab": {"checkerboard": True}, "odiff": {"padded": False},
    }[engine]
    expected = diff_images(png(before), png(after), engine=engine)
    assert data["images"]["a.png"]["changed_pixels"] == expected.changed_pixels == 25
    html = (out / "report.html").read_text(encoding="utf-8")
    assert f"<code>{engine}</code>" in html
    assert ENGINES[engine].version in html


def test_the_default_engine_is_pixelmatch(tmp_path):
    base, head = folders(tmp_path, {"a.png": (canvas(), with_blocks(BLOCK_A))})
    assert compare(base, head, tmp_path / "out") == EXIT_DIFFERENCES
    assert report(tmp_path / "out")["options"]["engine"] == "pixelmatch"
    # The options' default is written where engines cannot be seen: it must be the registry's.
    assert CompareOptions().engine == DEFAULT_ENGINE == "pixelmatch"


@pytest.mark.parametrize("engine", ["oklab", "pixelmatch"])
def test_no_checkerboard_reaches_the_engine(engine, tmp_path):
    # pixelmatch 7.2.0's own case: 50% transparent black and opaque grey 127 look alike over
    # white only; the comparison must give the count diff_images gives with the same option.
    before = np.zeros((H, W, 4), dtype=np.uint8)
    before[...] = (0, 0, 0, 128)
    after = before.copy()
    after[10:30, 10:50] = (127, 127, 127, 255)
    base, head = folders(tmp_path, {"a.png": (before, after)})
    counts = {}
    for args, checkerboard in (((), True), (("--no-checkerboard",), False)):
        out = tmp_path / f"out-{checkerboard}"
        compare(base, head, out, "--engine", engine, *args)
        data = report(out)
        assert data["options"]["engine_options"] == {"checkerboard": checkerboard}
        counts[checkerboard] = data["images"]["a.png"]["changed_pixels"]
        assert counts[checkerboard] == diff_images(png(before), png(after), engine=engine,
                                                   checkerboard=checkerboard).changed_pixels
    assert counts == {True: 800, False: 0}


def test_odiff_counts_a_page_that_grew_wider_as_odiff_does_and_sentry_pads_it(tmp_path):
    # odiff issue #170: a white page that grows wider is a change to odiff 4.5.0 (16 pixels),
    # while Sentry pads both images to the union canvas first, where white padding is white.
    white = np.full((4, 4, 4), 255, dtype=np.uint8)
    base, head = folders(tmp_path, {"page.png": (white, np.full((4, 8, 4), 255, dtype=np.uint8))})
    found = {}
    for name, args in (("odiff", ("--engine", "odiff")), ("sentry", ("--profile", "sentry")),
                       ("pixelmatch", ())):
        compare(base, head, tmp_path / name, *args)
        data = report(tmp_path / name)
        found[name] = (data["images"]["page.png"]["status"], data["images"]["page.png"]["changed_pixels"],
                       data["options"]["engine_options"])
    assert found == {"odiff": ("changed", 16, {"padded": False}),
                     "sentry": ("unchanged", 0, {"padded": True}),
                     "pixelmatch": ("changed", 16, {"checkerboard": True})}


def test_engines_can_disagree_on_changed(tmp_path):
    # A translucent overlay: pixelmatch 7.2's YIQ delta stays under 0.1, OKLab's does not.
    case = CASES / "translucent_overlay"
    base, head = tmp_path / "base", tmp_path / "head"
    for folder, source in ((base, "base.png"), (head, "head.png")):
        folder.mkdir()
        (folder / "overlay.png").write_bytes((case / source).read_bytes())
    assert compare(base, head, tmp_path / "pm", "--engine", "pixelmatch") == EXIT_SAME
    assert compare(base, head, tmp_path / "ok", "--engine", "oklab") == EXIT_DIFFERENCES
    assert report(tmp_path / "pm")["images"]["overlay.png"]["changed_pixels"] == 0
    assert report(tmp_path / "ok")["images"]["overlay.png"]["changed_pixels"] > 0


# --profile sentry.


def test_profile_sentry_gives_odiff_statuses_on_the_demo(tmp_path):
    builds = generate_demo(tmp_path / "demo")
    base, head = load_manifest(builds.base_manifest), load_manifest(builds.head_manifest)
    expected = {}
    for name, entry in head.images.items():
        before = base.images.get(name)
        if before is None or before.content_hash == entry.content_hash:
            continue
        try:
            result = diff_images((builds.store / before.content_hash).read_bytes(),
                                 (builds.store / entry.content_hash).read_bytes(),
                                 engine="odiff", threshold=0.01, antialiasing=True)
        except ImageError:
            expected[name] = "errored"
            continue
        allowed = next(t for t in (entry.diff_threshold, head.diff_threshold, 0.0) if t is not None)
        expected[name] = "changed" if result.diff_ratio > allowed else "unchanged"
    assert set(expected.values()) >= {"changed", "unchanged", "errored"}
    out = tmp_path / "out"

    compare(builds.base_manifest, builds.head_manifest, out, "--profile", "sentry", store=builds.store)

    data = report(out)
    assert {name: data["images"][name]["status"] for name in expected} == expected
    assert data["options"]["engine"] == "odiff"
    assert data["options"]["threshold"] == 0.01
    assert data["options"]["antialiasing"] is True
    assert data["algorithm_version"] == ENGINES["odiff"].version


def test_explicit_options_win_over_the_profile_wherever_they_are(tmp_path):
    base, head = folders(tmp_path, {"a.png": (canvas(), with_blocks(BLOCK_A))})
    compare(base, head, tmp_path / "one", "--threshold", "0.2", "--profile", "sentry")
    compare(base, head, tmp_path / "two", "--profile", "sentry", "--engine", "pixelmatch",
            "--no-antialiasing")
    one, two = report(tmp_path / "one")["options"], report(tmp_path / "two")["options"]
    assert (one["engine"], one["threshold"], one["antialiasing"]) == ("odiff", 0.2, True)
    assert (two["engine"], two["threshold"], two["antialiasing"]) == ("pixelmatch", 0.01, False)


# Ignore regions.


def region_arg(*blocks: tuple[int, int, int, int]) -> str:
    return ",".join(f"{x1}:{y1}-{x2}:{y2}" for x1, y1, x2, y2 in blocks)


def inside(pixels: np.ndarray, block: tuple[int, int, int, int]) -> np.ndarray:
    x1, y1, x2, y2 = block
    return pixels[y1 : y2 + 1, x1 : x2 + 1]


@pytest.mark.parametrize("engine", list(ENGINES))
def test_command_line_regions_hide_changes_inside_and_count_the_rest(engine, tmp_path):
    base, head = folders(tmp_path, {"a.png": (canvas(), with_blocks(BLOCK_A, BLOCK_B))})
    out = tmp_path / "out"

    assert compare(base, head, out, "--engine", engine, "--ignore", region_arg(BLOCK_A)) == EXIT_DIFFERENCES

    data = report(out)
    image = data["images"]["a.png"]
    assert image["changed_pixels"] == 25
    assert image["bbox"] == [40, 20, 45, 25]
    assert image["ignore_regions"] == [{"x1": 5, "y1": 5, "x2": 9, "y2": 9}]
    assert data["options"]["ignore_regions"] == [{"x1": 5, "y1": 5, "x2": 9, "y2": 9}]
    changed = mask(out, image)
    assert not inside(changed, BLOCK_A).any()
    assert inside(changed, BLOCK_B).all()


def test_a_region_over_every_change_leaves_the_image_unchanged(tmp_path):
    base, head = folders(tmp_path, {"a.png": (canvas(), with_blocks(BLOCK_A, BLOCK_B))})
    out = tmp_path / "out"
    assert compare(base, head, out, "--ignore", region_arg(BLOCK_A, BLOCK_B)) == EXIT_SAME
    image = report(out)["images"]["a.png"]
    assert (image["status"], image["changed_pixels"]) == ("unchanged", 0)


def test_manifest_regions_apply_per_head_image_and_add_to_the_command_lines(tmp_path):
    before, after = canvas(), with_blocks(BLOCK_A, BLOCK_B)
    # Three names with the same two blobs: one diff each, since their regions differ.
    pairs = {"own.png": (before, after), "none.png": (before, after), "both.png": (before, after)}
    region_a = {"x1": 5, "y1": 5, "x2": 9, "y2": 9}
    region_b = {"x1": 40, "y1": 20, "x2": 44, "y2": 24}
    base, head, store = manifests(tmp_path, pairs, {"own.png": {"ignore_regions": [region_a]},
                                                    "both.png": {"ignore_regions": [region_a]}})
    out = tmp_path / "out"

    compare(base, head, out, store=store)
    images = report(out)["images"]
    assert {n: images[n]["changed_pixels"] for n in pairs} == {"own.png": 25, "none.png": 50, "both.png": 25}
    assert not inside(mask(out, images["own.png"]), BLOCK_A).any()
    assert inside(mask(out, images["none.png"]), BLOCK_A).all()
    assert images["own.png"]["ignore_regions"] == [region_a]
    assert images["none.png"]["ignore_regions"] is None

    out = tmp_path / "out-cli"
    compare(base, head, out, "--ignore", region_arg(BLOCK_B), store=store)
    images = report(out)["images"]
    assert {n: images[n]["changed_pixels"] for n in pairs} == {"own.png": 0, "none.png": 25, "both.png": 0}
    assert images["own.png"]["ignore_regions"] == [region_b, region_a]
    assert images["own.png"]["status"] == "unchanged"


def test_base_image_regions_are_not_read(tmp_path):
    base, head, store = manifests(tmp_path, {"a.png": (canvas(), with_blocks(BLOCK_A))})
    data = json.loads(base.read_text())
    data["images"]["a.png"]["ignore_regions"] = [{"x1": 0, "y1": 0, "x2": W - 1, "y2": H - 1}]
    base.write_text(json.dumps(data))
    assert compare(base, head, tmp_path / "out", store=store) == EXIT_DIFFERENCES


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ({"x1": 1}, "expected a list of regions"),
        ([{"x1": 1, "y1": 1, "x2": 2}], "ignore_regions[0]: expected an object with exactly"),
        ([{"x1": 3, "y1": 1, "x2": 2, "y2": 4}], "inverted"),
        ([{"x1": -1, "y1": 1, "x2": 2, "y2": 4}], "whole pixels"),
    ],
)
def test_malformed_manifest_regions_exit_3_naming_manifest_image_and_field(value, said, tmp_path, capsys):
    pairs = {"fine.png": (canvas(), canvas() + 1), "bad/one.png": (canvas(), with_blocks(BLOCK_A))}
    base, head, store = manifests(tmp_path, pairs, {"bad/one.png": {"ignore_regions": value}})

    assert compare(base, head, tmp_path / "out", store=store) == EXIT_BAD_INPUT

    error = capsys.readouterr().err
    assert str(head) in error
    assert 'images["bad/one.png"].ignore_regions' in error
    assert said in error
    assert not (tmp_path / "out" / "comparison.json").exists()


def test_a_manifest_region_past_the_canvas_covers_what_lies_inside_it(tmp_path):
    pairs = {"a.png": (canvas(), with_blocks(BLOCK_A, (W - 5, 0, W - 1, 3)))}
    # One past the right edge, and one wholly below the canvas.
    regions = [{"x1": W - 5, "y1": 0, "x2": W, "y2": 3}, {"x1": 0, "y1": H, "x2": 3, "y2": H + 9}]
    base, head, store = manifests(tmp_path, pairs, {"a.png": {"ignore_regions": regions}})
    out = tmp_path / "out"

    assert compare(base, head, out, store=store) == EXIT_DIFFERENCES

    image = report(out)["images"]["a.png"]
    assert (image["status"], image["changed_pixels"]) == ("changed", 25)
    # Listed as they applied: cut at the canvas's edge, the one outside it left out.
    assert image["ignore_regions"] == [{"x1": W - 5, "y1": 0, "x2": W - 1, "y2": 3}]
    assert not inside(mask(out, image), (W - 5, 0, W - 1, 3)).any()


def test_a_command_line_region_applies_to_each_canvas_as_far_as_it_reaches_into_it(tmp_path):
    # A wide and a narrow screenshot, as a build of desktop and phone screens has: a region
    # drawn for the wide one, reaching one past its right edge, lies wholly right of the narrow one.
    narrow = np.ascontiguousarray(canvas()[:20, :20])
    narrow_after = narrow.copy()
    narrow_after[2:4, 2:4] = (200, 30, 30, 255)
    wide_after = with_blocks(BLOCK_B, (50, 0, W - 1, 5))
    base, head = folders(tmp_path, {"wide.png": (canvas(), wide_after), "narrow.png": (narrow, narrow_after),
                                    "cut.png": (narrow, narrow_after)})
    out = tmp_path / "out"

    assert compare(base, head, out, "--ignore", f"30:0-{W}:9",
                   "--ignore-in", "cut.png=0:3-99:99") == EXIT_DIFFERENCES

    data = report(out)
    images = data["images"]
    assert {n: (i["status"], i["changed_pixels"]) for n, i in images.items()} == {
        "wide.png": ("changed", 25), "narrow.png": ("changed", 4), "cut.png": ("changed", 2)}
    assert images["wide.png"]["ignore_regions"] == [{"x1": 30, "y1": 0, "x2": W - 1, "y2": 9}]
    assert not inside(mask(out, images["wide.png"]), (30, 0, W - 1, 9)).any()
    assert images["narrow.png"]["ignore_regions"] is None
    assert images["cut.png"]["ignore_regions"] == [{"x1": 0, "y1": 3, "x2": 19, "y2": 19}]
    assert data["options"]["ignore_regions"] == [{"x1": 30, "y1": 0, "x2": W, "y2": 9}]
    # The report hatches the regions as they applied.
    shown = {i["name"]: [r[0] for r in i.get("regions", [])] for i in page_data(out)["images"]}
    assert shown["wide.png"] == [f"30:0-{W - 1}:9"]


def test_pattern_regions_apply_to_the_head_images_whose_names_match(tmp_path):
    before, after = canvas(), with_blocks(BLOCK_A, BLOCK_B)
    names = ["phone/home.png", "phone/deep/feed.png", "desk.png", "a=b.png", "phone.png"]
    region_b = {"x1": 40, "y1": 20, "x2": 44, "y2": 24}
    base, head, store = manifests(tmp_path, {name: (before, after) for name in names},
                                  {"phone/home.png": {"ignore_regions": [region_b]}})
    out = tmp_path / "out"

    compare(base, head, out, "--ignore-in", f"phone/**={region_arg(BLOCK_A)}",
            "--ignore-in", f"*.png={region_arg(BLOCK_B)}", "--ignore-in", "a=b.png=0:0-0:0", store=store)

    written = report(out)
    images = written["images"]
    region_a = {"x1": 5, "y1": 5, "x2": 9, "y2": 9}
    assert written["options"]["ignore_patterns"] == [
        {"glob": "phone/**", "regions": [region_a]}, {"glob": "*.png", "regions": [region_b]},
        {"glob": "a=b.png", "regions": [{"x1": 0, "y1": 0, "x2": 0, "y2": 0}]}]
    assert {n: images[n]["ignore_regions"] for n in names} == {
        # Pattern regions in command-line order, then the image's own, each once.
        "phone/home.png": [region_a, region_b],
        "phone/deep/feed.png": [region_a],  # * stays within one folder level
        "desk.png": [region_b],
        "a=b.png": [region_b, {"x1": 0, "y1": 0, "x2": 0, "y2": 0}],  # GLOB ends at the last '='
        "phone.png": [region_b],
    }
    assert {n: images[n]["changed_pixels"] for n in names} == {
        "phone/home.png": 0, "phone/deep/feed.png": 25, "desk.png": 25, "a=b.png": 25, "phone.png": 25}
    assert not inside(mask(out, images["phone/deep/feed.png"]), BLOCK_A).any()


# The window rule.


def test_window_rule_keeps_scattered_noise_unchanged_and_a_block_changed(tmp_path):
    noise = scattered(8)
    pairs = {"noise.png": (canvas(), noise), "block.png": (canvas(), with_blocks(BLOCK_A))}
    base, head = folders(tmp_path, pairs)
    noise_pixels = int((noise != canvas()).any(axis=2).sum())
    assert noise_pixels > 25

    out = tmp_path / "out"
    assert compare(base, head, out, "--window-size", "8", "--window-min", "10") == EXIT_DIFFERENCES
    images = report(out)["images"]
    assert (images["noise.png"]["status"], images["noise.png"]["changed_pixels"]) == ("unchanged", noise_pixels)
    assert images["noise.png"]["window_max"] == 1
    assert (images["block.png"]["status"], images["block.png"]["window_max"]) == ("changed", 25)

    # The window only reports without --window-min; the ratio rule alone decides.
    out = tmp_path / "out-size"
    compare(base, head, out, "--window-size", "8")
    images = report(out)["images"]
    assert {n: (i["status"], i["window_max"]) for n, i in images.items()} == {
        "noise.png": ("changed", 1), "block.png": ("changed", 25)}
    # Both rules apply: over --window-min is not enough when under the diff threshold.
    out = tmp_path / "out-both"
    assert compare(base, head, out, "--window-size", "8", "--window-min", "10",
                   "--diff-threshold", "0.05") == EXIT_SAME
    assert report(out)["images"]["block.png"]["window_max"] == 25


def test_without_a_window_size_no_window_is_computed(tmp_path):
    base, head = folders(tmp_path, {"a.png": (canvas(), with_blocks(BLOCK_A))})
    compare(base, head, tmp_path / "out")
    data = report(tmp_path / "out")
    assert data["images"]["a.png"]["window_max"] is None
    assert (data["options"]["window_size"], data["options"]["window_min"]) == (None, None)


# Bad settings.


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--engine", "imagemagick"], "--engine"),
        (["--profile", "chromatic"], "--profile"),
        (["--engine", "odiff", "--no-checkerboard"], "--no-checkerboard: engine odiff has no checkerboard"),
        (["--profile", "sentry", "--no-checkerboard"], "--no-checkerboard: engine odiff"),
        (["--window-size", "0"], "--window-size"),
        (["--window-size", "x"], "--window-size"),
        (["--window-min", "-1", "--window-size", "4"], "--window-min"),
        (["--window-min", "3"], "--window-min needs --window-size"),
        (["--ignore", "1:2"], "--ignore"),
        (["--ignore", "5:5-1:9"], "--ignore"),
        (["--ignore", "0:0-1:1,"], "--ignore"),
        (["--ignore-in", "a.png"], "argument --ignore-in: 'a.png': no '='"),
        (["--ignore-in", "=0:0-1:1"], "argument --ignore-in: '=0:0-1:1': no glob before '='"),
        (["--ignore-in", "a.png=0:0-1"], "argument --ignore-in: 'a.png=0:0-1': ignore region '0:0-1' is not"),
        (["--ignore-in", "a=b.png=5:5-1:9"],
         "argument --ignore-in: 'a=b.png=5:5-1:9': ignore region 5:5-1:9: inverted"),
    ],
)
def test_bad_engine_settings_exit_3_naming_the_option(args, said, tmp_path, capsys):
    base, head = folders(tmp_path, {"a.png": (canvas(), with_blocks(BLOCK_A))})
    assert compare(base, head, tmp_path / "out", *args) == EXIT_BAD_INPUT
    assert said in capsys.readouterr().err


def test_library_options_are_checked_before_anything_is_fetched(tmp_path):
    base, head = folders(tmp_path, {"a.png": (canvas(), with_blocks(BLOCK_A))})
    with pytest.raises(InputError, match="unknown engine 'nope'"):
        compare_builds(base, head, out_dir=tmp_path / "out", options=CompareOptions(engine="nope"))
    with pytest.raises(InputError, match="engine 'odiff' has no option checkerboard"):
        compare_builds(base, head, out_dir=tmp_path / "out",
                       options=CompareOptions(engine="odiff", checkerboard=False))
    with pytest.raises(ValueError, match="window_min needs window_size"):
        CompareOptions(window_min=3)
    with pytest.raises(ValueError, match="window_size must be a positive integer"):
        CompareOptions(window_size=0)
    with pytest.raises(ValueError, match="inverted"):
        CompareOptions(ignore_regions=((5, 5, 1, 1),))


def test_plans_and_chunk_results_with_regions_and_engine_options_read_back_from_json(tmp_path):
    pairs = {"a.png": (canvas(), with_blocks(BLOCK_A)), "b.png": (canvas(), with_blocks(BLOCK_A))}
    base, head, store = manifests(tmp_path, pairs,
                                  {"a.png": {"ignore_regions": [{"x1": 1, "y1": 2, "x2": 3, "y2": 4}]}})
    options = CompareOptions(engine="oklab", checkerboard=False, window_size=4, window_min=2,
                             ignore_regions=((0, 0, 1, 1),), ignore_patterns=(("b*", ((2, 2, 3, 3),)),),
                             head_artifact_id=5, base_artifact_id=3)
    the_plan = plan(load_manifest(base), load_manifest(head), options)
    assert len(the_plan.chunks[0].pairs()) == 2
    assert plan_from_json(json.loads(json.dumps(plan_to_json(the_plan)))) == the_plan
    # plan.json and chunks/{i}.json are Sentry's, snapcompare's own fields beside.
    sentry_plan = SentryPlan.model_validate(plan_to_json(the_plan))
    assert (sentry_plan.head_artifact_id, sentry_plan.base_artifact_id) == (5, 3)
    assert [c.name for c in sentry_plan.chunks[0].candidates] == ["a.png", "b.png"]

    result = run_chunk(the_plan.chunks[0], str(store), options, Resources(workers=1))
    assert result.images["a.png"].ignore_regions == ((0, 0, 1, 1), (1, 2, 3, 4))
    assert result.images["b.png"].ignore_regions == ((0, 0, 1, 1), (2, 2, 3, 3))
    assert result.images["a.png"].window_max is not None
    again = chunk_result_from_json(json.loads(json.dumps(chunk_result_to_json(result))))
    assert isinstance(again, ChunkResult) and again.images == result.images
    assert set(SentryChunkResult.model_validate(chunk_result_to_json(result)).images) == {"a.png", "b.png"}


# The report.


def test_report_hatches_regions_on_crops_and_whole_views_and_shows_window_max(tmp_path):
    base, head = folders(tmp_path, {"a.png": (canvas(), with_blocks(BLOCK_A, BLOCK_B))})
    out = tmp_path / "out"
    # A region beside block B, inside the crop around it, and one over block A.
    compare(base, head, out, "--ignore", "46:20-50:24," + region_arg(BLOCK_A), "--window-size", "8",
            "--engine", "odiff")

    html = (out / "report.html").read_text(encoding="utf-8")
    # The page draws each region on the crops and whole-image views from its data.
    [image] = page_data(out)["images"]
    assert [r[0] for r in image["regions"]] == ["46:20-50:24", "5:5-9:9"]
    assert ["window", "25", "8×8"] in image["facts"]
    assert "<code>odiff</code>" in html
    assert ENGINES["odiff"].version in html


def test_a_size_change_is_never_hidden(tmp_path, capsys):
    # A white page that grew wider by a fully transparent strip: odiff counts no pixel there,
    # Sentry's padding neither; the size change is still recorded, counted and changed outside
    # the Sentry profile.
    white = np.full((4, 4, 4), 255, dtype=np.uint8)
    wider = np.zeros((4, 8, 4), dtype=np.uint8)
    wider[:, :4] = 255
    base, head = folders(tmp_path, {"page.png": (white, wider), "same.png": (white, white)})
    found = {}
    for name, args in (("odiff", ("--engine", "odiff")), ("sentry", ("--profile", "sentry"))):
        capsys.readouterr()
        assert main(["compare", "--base", str(base), "--head", str(head), "--out", str(tmp_path / name),
                     *args]) in (EXIT_SAME, EXIT_DIFFERENCES)
        images = report(tmp_path / name)["images"]
        found[name] = {n: (i["status"], i["changed_pixels"], i["canvas_changed"]) for n, i in images.items()}
        assert "1 changed size (before and after differ)" in capsys.readouterr().out
        shown = {i["name"]: i["facts"] for i in page_data(tmp_path / name)["images"]}
        assert ["resized", "4×4 px → 8×4 px"] in shown["page.png"]
        cases = {c.get("name"): c for c in ET.parse(tmp_path / name / "junit.xml").getroot().iter("testcase")}
        assert {p.get("name"): p.get("value") for p in cases["page.png"].iter("property")}["canvas_changed"] \
            == "4x4 -> 8x4"
        assert "canvas_changed" not in {p.get("name") for p in cases["same.png"].iter("property")}
    assert found == {
        "odiff": {"page.png": ("changed", 0, True), "same.png": ("unchanged", None, None)},
        "sentry": {"page.png": ("unchanged", 0, True), "same.png": ("unchanged", None, None)},
    }
