"""The comparison pipeline through run_comparison and run_chunk, over real local stores."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import pickle
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from compare.engine import pairs
from compare.engine.chunks import plan, run_chunk
from compare.engine.local import run_comparison
from compare.engine.pairs import PairTask, stream_pairs
from compare.inputs.manifest import parse_manifest
from compare.model import CompareOptions, Reason, Resources, Status
from compare.output.artifacts import ArtifactWriter, safe_file_name
from fetchers import LocalFetcher

from .helpers import Store, png

pytestmark = pytest.mark.integration


class CountingFetcher(LocalFetcher):
    """A local store that records every key it is asked for."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def fetch(self, key: str) -> bytes:
        with self.lock:
            self.calls[key] += 1
        return super().fetch(key)


OPTIONS = CompareOptions()
RESOURCES = Resources(workers=2, fetch_workers=4, max_memory=256 * 1024 * 1024)


def test_every_status_and_reason_end_to_end(tmp_path, store):
    same = png(40, 30)
    before, after = png(40, 30), png(40, 30, mark=(10, 10))
    corrupt = b"\x89PNG\r\n\x1a\n this is not a png"
    absent = hashlib.sha256(b"never uploaded").hexdigest()
    base = store.manifest(
        {
            "same.png": same,
            "changed.png": before,
            "gone.png": png(20, 20, colour=(1, 2, 3)),
            "old-name.png": png(22, 22, colour=(9, 9, 9)),
            "broken.png": before,
            "lost.png": before,
            "huge.png": before,
        },
        "base.json",
    )
    big = png(60, 50, mark=(1, 1))
    head = store.manifest(
        {
            "same.png": same,
            "changed.png": after,
            "new.png": png(25, 25, colour=(7, 7, 7)),
            "new-name.png": png(22, 22, colour=(9, 9, 9)),
            "broken.png": store.add(corrupt),
            "lost.png": absent,
            "huge.png": big,
        },
        "head.json",
    )
    fetcher = CountingFetcher(store.root)
    options = CompareOptions(max_pixels=50 * 40)
    resources = Resources(workers=2, fetch_workers=4)
    comparison = run_comparison(
        base, head, fetcher, options, resources=resources, artifacts=ArtifactWriter(tmp_path / "out")
    )
    statuses = {name: result.status for name, result in comparison.images.items()}
    assert statuses == {
        "same.png": Status.UNCHANGED,
        "changed.png": Status.CHANGED,
        "new.png": Status.ADDED,
        "gone.png": Status.REMOVED,
        "new-name.png": Status.RENAMED,
        "broken.png": Status.ERRORED,
        "lost.png": Status.ERRORED,
        "huge.png": Status.ERRORED,
    }
    images = comparison.images
    assert images["new-name.png"].previous_image_file_name == "old-name.png"
    assert images["broken.png"].reason is Reason.IMAGE_PROCESSING_FAILED and "broken.png" in images["broken.png"].detail
    assert images["lost.png"].reason is Reason.IMAGE_FETCH_FAILED and absent in images["lost.png"].detail
    assert images["huge.png"].reason is Reason.EXCEEDS_PIXEL_LIMIT and "3000" in images["huge.png"].detail
    changed = images["changed.png"]
    assert changed.changed_pixels == 9 and changed.total_pixels == 1200
    assert changed.bbox == (10, 10, 13, 13)
    mask = Image.open(tmp_path / "out" / changed.diff_mask_key)
    assert mask.size == (40, 30) and np.count_nonzero(np.asarray(mask.convert("L"))) == 9
    assert set(changed.previews) == {"before", "after", "diff", "crop-before", "crop-after", "crop-diff"}
    assert all((tmp_path / "out" / path).is_file() for path in changed.previews.values())
    summary = comparison.summary
    assert summary["total"] == 8 == sum(v for k, v in summary.items() if k != "total")
    # only the blobs of pairs that need a pixel diff are fetched, each exactly once
    needed = {hashlib.sha256(b).hexdigest() for b in (before, after, corrupt, big)} | {absent}
    assert set(fetcher.calls) == needed and set(fetcher.calls.values()) == {1}


def test_identical_pairs_are_diffed_once_and_fanned_out(tmp_path, store):
    before, after = png(30, 30), png(30, 30, mark=(5, 5))
    names = [f"screen-{i}.png" for i in range(5)]
    base = store.manifest(dict.fromkeys(names, before), "base.json")
    head = store.manifest(dict.fromkeys(names, after), "head.json")
    fetcher = CountingFetcher(store.root)
    comparison = run_comparison(
        base, head, fetcher, OPTIONS, resources=RESOURCES, artifacts=ArtifactWriter(tmp_path / "out")
    )
    assert sum(fetcher.calls.values()) == 2
    assert comparison.stats["pairs_diffed"] == 1
    assert {r.status for r in comparison.images.values()} == {Status.CHANGED}
    assert len({r.diff_mask_key for r in comparison.images.values()}) == 5


def test_each_name_of_a_shared_diff_is_judged_against_its_own_threshold(tmp_path, store):
    """Which threshold a name gets is classify's rule (test_classify.test_threshold_resolution_order);
    the engine passes it the comparison's option as the default, judges each name's changed
    pixels against the threshold it resolved, keeps the count when under it and records it."""
    before, after = png(40, 30), png(40, 30, mark=(10, 10))  # 9 of 1200 pixels: 0.0075
    base = store.manifest({"a.png": before, "b.png": before, "c.png": before}, "base.json")
    head_data = {
        "images": {
            "a.png": {"content_hash": store.add(after), "diff_threshold": 0.001},
            "b.png": {"content_hash": store.add(after)},
            "c.png": {"content_hash": store.add(after), "diff_threshold": 0.5},
        },
    }
    head = parse_manifest(head_data, "head.json")
    comparison = run_comparison(
        base, head, LocalFetcher(store.root), CompareOptions(diff_threshold=0.01), resources=RESOURCES,
        artifacts=ArtifactWriter(tmp_path / "out"),
    )
    assert comparison.stats["pairs_diffed"] == 1
    assert {name: image.diff_threshold for name, image in comparison.images.items()} == {
        "a.png": 0.001, "b.png": 0.01, "c.png": 0.5}
    assert comparison.images["a.png"].status is Status.CHANGED
    assert comparison.images["b.png"].status is Status.UNCHANGED
    assert comparison.images["c.png"].status is Status.UNCHANGED
    assert comparison.images["c.png"].changed_pixels == 9


def test_masks_of_names_that_differ_only_by_extension_do_not_collide(tmp_path, store):
    before, after = png(20, 20), png(20, 20, mark=(2, 2))
    other = png(20, 20, mark=(12, 12))
    base = store.manifest({"icon.png": before, "icon.jpg": before}, "base.json")
    head = store.manifest({"icon.png": after, "icon.jpg": other}, "head.json")
    comparison = run_comparison(
        base, head, LocalFetcher(store.root), OPTIONS, resources=RESOURCES, artifacts=ArtifactWriter(tmp_path / "out")
    )
    keys = {comparison.images[n].diff_mask_key for n in ("icon.png", "icon.jpg")}
    assert len(keys) == 2
    masks = [np.asarray(Image.open(tmp_path / "out" / k).convert("L")) for k in keys]
    assert not np.array_equal(masks[0], masks[1])


NAMES = ["../../etc/passwd", "/abs.png", "a//b.png", "a/./b.png", "x\x01.png", "a\\b.png", "..", ".",
         "a.png", "a.png.png/x", "A.png", "a%2Fb.png", "a/b.png", "n" * 300, "n" * 301, "é.png"]


def test_file_names_are_single_safe_components_and_distinct():
    files = [safe_file_name(name) for name in NAMES]
    assert len(set(files)) == len(NAMES)
    for file in files:
        assert "/" not in file and "\\" not in file and file not in ("", ".", "..")
        assert len(file) <= 200 and file.isascii() and file.isprintable()
    assert safe_file_name("icons/home.png") == "icons%2Fhome.png"


def test_a_name_that_extends_another_into_a_folder_still_gets_its_mask(tmp_path, store):
    before = png(20, 20)
    base = store.manifest({"a.png": before, "a.png.png/x": before}, "base.json")
    head = store.manifest({"a.png": png(20, 20, mark=(1, 1)), "a.png.png/x": png(20, 20, mark=(9, 9))}, "head.json")
    comparison = run_comparison(
        base, head, LocalFetcher(store.root), OPTIONS, resources=RESOURCES, artifacts=ArtifactWriter(tmp_path / "out")
    )
    keys = [comparison.images[name].diff_mask_key for name in ("a.png", "a.png.png/x")]
    assert len(set(keys)) == 2 and all((tmp_path / "out" / key).is_file() for key in keys)


IMAGES = [png(16, 12, mark=(i, i % 8)) for i in range(4)] + [b"corrupt bytes"]
MISSING = hashlib.sha256(b"missing").hexdigest()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    base=st.dictionaries(st.sampled_from([f"n{i}.png" for i in range(10)]), st.integers(0, 5), max_size=8),
    head=st.dictionaries(st.sampled_from([f"n{i}.png" for i in range(10)]), st.integers(0, 5), max_size=8),
    selective=st.booleans(),
)
def test_every_image_ends_with_exactly_one_status(tmp_path_factory, base, head, selective):
    store = Store(tmp_path_factory.mktemp("store"))
    hashes = [store.add(data) for data in IMAGES] + [MISSING]
    base_manifest = store.manifest({n: hashes[i] for n, i in base.items()}, "base.json")
    head_manifest = store.manifest({n: hashes[i] for n, i in head.items()}, "head.json", selective=selective)
    fetcher = CountingFetcher(store.root)
    comparison = run_comparison(
        base_manifest, head_manifest, fetcher, OPTIONS, resources=RESOURCES,
        artifacts=ArtifactWriter(tmp_path_factory.mktemp("out")),
    )
    reported = set(comparison.images)
    renamed_from = {r.previous_image_file_name for r in comparison.images.values() if r.status is Status.RENAMED}
    assert reported | renamed_from == set(base) | set(head)
    assert not reported & renamed_from
    summary = comparison.summary
    assert summary["total"] == len(comparison.images) == sum(v for k, v in summary.items() if k != "total")
    for result in comparison.images.values():
        assert (result.status is Status.ERRORED) == (result.reason is not None)
    assert set(fetcher.calls.values()) <= {1}
    for name in set(base) & set(head):
        if base[name] == head[name]:
            assert comparison.images[name].status is Status.UNCHANGED


def test_a_chunk_is_picklable_and_runs_in_another_process(tmp_path, store):
    before, after = png(30, 20), png(30, 20, mark=(3, 3))
    base = parse_manifest({"images": {"a.png": {"content_hash": store.add(before)}}}, "base.json")
    head = parse_manifest({"images": {"a.png": {"content_hash": store.add(after)}}}, "head.json")
    options = CompareOptions()
    resources = Resources(workers=1, fetch_workers=2, max_memory=128 * 1024 * 1024)
    [chunk] = plan(base, head, options).chunks
    payload = (chunk, f"file://{store.root}", options, resources)
    assert pickle.loads(pickle.dumps(payload)) == payload
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        result = pool.apply(run_chunk, payload)
    assert result.images["a.png"].changed_pixels == 9 and result.images["a.png"].reason is None
    [files] = result.files
    assert Image.open(io.BytesIO(files.mask_png)).size == (30, 20)


def test_a_base_shared_by_several_pairs_is_decoded_once(store, monkeypatch):
    from compare import diff_images
    from compare.imaging import decode as image_module

    base = png(40, 30)
    heads = [png(40, 30, mark=(3 * i, 20)) for i in range(6)]
    broken = store.add(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    tasks = [PairTask(store.add(base), store.add(head), f"n{i}.png") for i, head in enumerate(heads)]
    tasks += [PairTask(broken, store.add(head), f"broken-{i}.png") for i, head in enumerate(heads[:3])]
    decoded: Counter[str] = Counter()
    real_decode = image_module.decode_png

    def counted(data, size=None):  # every PNG decoded from bytes passes here first (Pillow gets it on None)
        decoded[hashlib.sha256(data).hexdigest()] += 1
        return real_decode(data, size)

    monkeypatch.setattr(image_module, "FAST_PNG_DECODER", True)
    monkeypatch.setattr(image_module, "decode_png", counted)
    options = CompareOptions()
    resources = Resources(workers=2, fetch_workers=4, max_memory=256 * 1024 * 1024)
    outcomes = list(stream_pairs(LocalFetcher(store.root), options, resources, tasks))

    assert decoded[tasks[0].base_hash] == 1
    assert all(decoded[store.add(head)] == 1 for head in heads)
    assert len(outcomes) == 9
    by_pair = {(o.base_hash, o.head_hash): o for o in outcomes}
    for task, head in zip(tasks[:6], heads, strict=True):
        outcome = by_pair[(task.base_hash, task.head_hash)]
        assert outcome.changed_pixels == diff_images(base, head).changed_pixels == 9
        assert outcome.previews["before"] == by_pair[(tasks[0].base_hash, tasks[0].head_hash)].previews["before"]
    for task in tasks[6:]:
        outcome = by_pair[(task.base_hash, task.head_hash)]
        assert outcome.reason == Reason.IMAGE_PROCESSING_FAILED
        assert task.name in outcome.detail


def test_a_pair_whose_previews_fail_errors_alone(store, monkeypatch):
    tasks = [PairTask(store.add(png(30, 20, colour=(i, 9, 9))),
                      store.add(png(30, 20, colour=(i, 9, 9), mark=(i, 12))), f"s{i}.png") for i in range(3)]
    real = pairs.make_crops

    def failing_crops(before, after, mask, region):
        if before[5, 5, 0] == 1:  # the second pair's colour band
            raise MemoryError("no room for the crops")
        return real(before, after, mask, region)

    monkeypatch.setattr(pairs, "make_crops", failing_crops)
    outcomes = {o.base_hash: o for o in stream_pairs(LocalFetcher(store.root), OPTIONS, RESOURCES, tasks)}

    failed = outcomes[tasks[1].base_hash]
    assert failed.reason is Reason.IMAGE_PROCESSING_FAILED
    assert failed.detail == "'s1.png': writing its mask or previews failed: MemoryError: no room for the crops"
    assert all(outcomes[t.base_hash].changed_pixels == 9 for t in (tasks[0], tasks[2]))
