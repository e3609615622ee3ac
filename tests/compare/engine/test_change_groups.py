"""Change groups: images sharing a change are listed once, with the same ids on every run,
through chunks, their JSON and a Dask cluster."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compare import compare_builds, diff_images
from compare.cli.main import main
from compare.engine.chunks import finalize, plan, run_chunk
from compare.imaging.fingerprint import fingerprint_change
from compare.inputs.manifest import load_manifest
from compare.model import ChangeGroup, ChangeLevel, CompareOptions, Resources, Status
from compare.output.artifacts import ArtifactWriter
from compare.output.results_json import chunk_result_from_json, chunk_result_to_json
from fetchers import LocalFetcher
from tests.sentry_models import ComparisonManifest

from .helpers import Store

pytestmark = pytest.mark.cluster

OPTIONS = CompareOptions(antialiasing=False, require_sizes=False)
RESOURCES = Resources(workers=2, fetch_workers=4, max_memory=256 * 1024 * 1024)
BADGE = np.array([[1, 0, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1],
                  [1, 1, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1],
                  [1, 0, 1, 1, 0, 1, 1, 0, 0, 1, 0, 1],
                  [1, 0, 0, 1, 0, 1, 0, 0, 0, 1, 1, 1],
                  [1, 0, 0, 1, 0, 1, 1, 1, 0, 0, 1, 0]], dtype=bool)
""""NEW" in five rows of pixels."""
RED, GREEN = (220, 20, 30), (20, 160, 40)


def screen(width: int, height: int, badge: tuple[int, int, tuple[int, int, int]] | None = None,
           block: tuple[int, int, int, int] | None = None) -> bytes:
    """A white PNG with a blue band, the badge (x, y, colour) and a grey block (x0, y0, x1, y1) if given."""
    pixels = np.full((height, width, 4), 255, dtype=np.uint8)
    pixels[: height // 5, :, :3] = (30, 60, 160)
    if badge is not None:
        x, y, colour = badge
        area = pixels[y:y + BADGE.shape[0], x:x + BADGE.shape[1], :3]
        area[BADGE] = colour
    if block is not None:
        x0, y0, x1, y1 = block
        pixels[y0:y1, x0:x1, :3] = 120
    out = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(out, format="PNG")
    return out.getvalue()


def builds(root: Path) -> tuple[Path, Path, Store]:
    """Manifests of screens sharing changes: "NEW" in red on three screens (two sizes, three
    places), in green on two, a block on one, and red "NEW" within its threshold on one."""
    store = Store(root / "store")
    base = {name: screen(*size) for name, size in {
        "a.png": (120, 80), "b.png": (120, 80), "c.png": (90, 140), "d.png": (120, 80),
        "e.png": (120, 80), "f.png": (120, 80), "g.png": (120, 80), "same.png": (40, 40)}.items()}
    head = {
        "a.png": screen(120, 80, badge=(10, 30, RED)),
        "b.png": screen(120, 80, badge=(70, 60, RED)),
        "c.png": screen(90, 140, badge=(40, 100, RED)),
        "d.png": screen(120, 80, badge=(50, 40, GREEN)),
        "e.png": screen(120, 80, badge=(50, 40, GREEN)),
        "f.png": screen(120, 80, block=(10, 30, 60, 70)),
        "g.png": screen(120, 80, badge=(30, 30, RED)),
        "same.png": base["same.png"],
    }
    paths = []
    for side, images in (("base", base), ("head", head)):
        entries = {name: {"content_hash": store.add(data)} for name, data in images.items()}
        if side == "head":
            entries["g.png"]["diff_threshold"] = 0.5
        path = root / f"{side}.json"
        path.write_text(json.dumps({"images": entries}))
        paths.append(path)
    return paths[0], paths[1], store


@pytest.fixture
def inputs(tmp_path) -> tuple[Path, Path, Store]:
    return builds(tmp_path)


def test_shared_changes_are_grouped_largest_first(inputs, tmp_path):
    base, head, store = inputs
    comparison = compare_builds(base, head, store=str(store.root), out_dir=tmp_path / "out", options=OPTIONS)
    images = comparison.images
    red, green = images["a.png"].change_group, images["d.png"].change_group
    assert images["b.png"].change_group == images["c.png"].change_group == images["g.png"].change_group == red
    assert images["e.png"].change_group == green != red
    similar = images["a.png"].similar_change
    # one shape, two colours
    assert {images[name].similar_change for name in ("a.png", "b.png", "c.png", "d.png", "e.png", "g.png")} == {similar}
    assert comparison.change_groups == (
        ChangeGroup(similar, ChangeLevel.SIMILAR, ("a.png", "b.png", "c.png", "d.png", "e.png"), "a.png"),
        ChangeGroup(red, ChangeLevel.IDENTICAL, ("a.png", "b.png", "c.png"), "a.png"),
        ChangeGroup(green, ChangeLevel.IDENTICAL, ("d.png", "e.png"), "d.png"),
    )
    # Alone with its change: ids, no group. Within its threshold: ids, in no group either.
    assert images["f.png"].change_group is not None
    assert all("f.png" not in group.images and "g.png" not in group.images for group in comparison.change_groups)
    assert images["g.png"].status is Status.UNCHANGED and images["a.png"].status is Status.CHANGED
    assert images["same.png"].change_group is images["same.png"].similar_change is None
    assert images["a.png"].known_change is None


def test_ids_are_the_diff_s_fingerprints_and_the_same_on_every_run(inputs, tmp_path):
    base, head, store = inputs
    first = compare_builds(base, head, store=str(store.root), out_dir=tmp_path / "one", options=OPTIONS)
    second = compare_builds(base, head, store=str(store.root), options=OPTIONS)
    assert second.change_groups == first.change_groups
    assert ({n: (r.change_group, r.similar_change) for n, r in second.images.items()}
            == {n: (r.change_group, r.similar_change) for n, r in first.images.items()})
    before = np.asarray(Image.open(io.BytesIO(screen(90, 140))).convert("RGBA"))
    after = np.asarray(Image.open(io.BytesIO(screen(90, 140, badge=(40, 100, RED)))).convert("RGBA"))
    result = diff_images(before, after, antialiasing=False)
    change = fingerprint_change(result.mask, result.bbox, before, after)
    assert (change.identical, change.similar) == (first.images["c.png"].change_group,
                                                  first.images["c.png"].similar_change)


def test_comparison_json_carries_the_groups_and_validates_as_sentry_s(inputs, tmp_path, capsys):
    base, head, store = inputs
    out = tmp_path / "out"
    code = main(["compare", "--base", str(base), "--head", str(head), "--store", str(store.root),
                 "--out", str(out), "--allow-unsized", "--no-antialiasing", "--quiet"])
    assert code == 1
    report = json.loads((out / "comparison.json").read_text())
    ComparisonManifest.model_validate(report)
    assert [(g["level"], g["images"], g["representative"]) for g in report["change_groups"]] == [
        ("similar", ["a.png", "b.png", "c.png", "d.png", "e.png"], "a.png"),
        ("identical", ["a.png", "b.png", "c.png"], "a.png"),
        ("identical", ["d.png", "e.png"], "d.png"),
    ]
    group = report["change_groups"][1]
    assert set(group) == {"id", "level", "images", "representative"}
    assert all(report["images"][name]["change_group"] == group["id"] for name in group["images"])
    assert report["images"]["a.png"]["similar_change"] == report["change_groups"][0]["id"]
    assert report["images"]["a.png"]["known_change"] is None and report["known_changes"] is None
    assert "group" not in report["images"]["a.png"]


def test_chunks_and_their_json_give_the_same_groups(inputs, tmp_path):
    base, head, store = inputs
    manifests = load_manifest(base), load_manifest(head)
    one = plan(*manifests, OPTIONS)
    whole = finalize(one, {chunk.chunk_index: run_chunk(chunk, LocalFetcher(store.root), OPTIONS, RESOURCES)
                           for chunk in one.chunks})
    small = plan(*manifests, OPTIONS, max_chunk_pixels=2 * 120 * 80)
    assert len(small.chunks) >= 3
    results = {chunk.chunk_index: chunk_result_from_json(json.loads(json.dumps(chunk_result_to_json(
        run_chunk(chunk, LocalFetcher(store.root), OPTIONS, RESOURCES))))) for chunk in small.chunks}
    chunked = finalize(small, results)
    assert len(whole.change_groups) == 3
    assert chunked.change_groups == whole.change_groups
    assert chunked.images == whole.images


def test_a_chunk_result_with_a_malformed_change_id_is_unreadable(inputs):
    base, head, store = inputs
    the_plan = plan(load_manifest(base), load_manifest(head), OPTIONS)
    data = chunk_result_to_json(run_chunk(the_plan.chunks[0], LocalFetcher(store.root), OPTIONS, RESOURCES))
    data["images"]["a.png"]["change_group"] = ["not", "an", "id"]
    failure = chunk_result_from_json(data)
    assert failure.unreadable and "change_group" in failure.detail


def test_a_cluster_run_gives_the_same_groups(inputs, tmp_path):
    pytest.importorskip("distributed")
    from compare.engine.distributed import run_on_cluster

    base, head, store = inputs
    manifests = load_manifest(base), load_manifest(head)
    local = compare_builds(base, head, store=str(store.root), options=OPTIONS)
    small = plan(*manifests, OPTIONS, max_chunk_pixels=2 * 120 * 80)
    assert len(small.chunks) >= 3
    clustered = run_on_cluster(small, str(store.root), "local:2", artifacts=ArtifactWriter(tmp_path / "out"))
    assert clustered.change_groups == local.change_groups
    assert ({n: (r.change_group, r.similar_change) for n, r in clustered.images.items()}
            == {n: (r.change_group, r.similar_change) for n, r in local.images.items()})
