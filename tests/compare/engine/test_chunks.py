"""Plan, chunks and finalize: chunking, equality with the streaming run, failures, JSON."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compare.engine.chunks import (
    ChunkResult,
    finalize,
    plan,
    run_chunk,
    store_files,
)
from compare.engine.local import run_comparison
from compare.inputs.manifest import parse_manifest
from compare.model import CompareOptions, Reason, Resources, Status
from compare.output.artifacts import ArtifactWriter
from compare.output.results_json import chunk_result_from_json, chunk_result_to_json, plan_from_json, plan_to_json
from fetchers import LocalFetcher

from .helpers import Store, png

pytestmark = pytest.mark.integration

OPTIONS = CompareOptions()
RESOURCES = Resources(workers=2, fetch_workers=4, max_memory=256 * 1024 * 1024)
ROOT = Path(__file__).resolve().parents[3]


def builds(store: Store):
    """Ten changed screens, five sharing one base, one undecodable head, and decided images."""
    shared = png(40, 30)
    base = {f"s{i}.png": shared if i < 5 else png(40, 30, colour=(i, 9, 9)) for i in range(10)}
    head = {f"s{i}.png": png(40, 30, mark=(2 * i, 4), colour=(20, 90, 200) if i < 5 else (i, 9, 9))
            for i in range(10)}
    head["s9.png"] = png(40, 30)[:70]  # truncated
    base["same.png"] = head["same.png"] = png(10, 10)
    base["twin-a.png"] = base["twin-b.png"] = png(20, 20)
    head["twin-a.png"] = head["twin-b.png"] = png(20, 20, mark=(1, 1))
    base["gone.png"] = png(12, 12)
    head["new.png"] = png(13, 13)
    return store.manifest(base, "base.json"), store.manifest(head, "head.json")


def files_under(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_chunks_run_one_by_one_give_the_streaming_run_s_results(tmp_path, store):
    base, head = builds(store)
    fetcher = LocalFetcher(store.root)
    expected = run_comparison(
        base, head, fetcher, OPTIONS, resources=RESOURCES, artifacts=ArtifactWriter(tmp_path / "streamed")
    )
    the_plan = plan(base, head, OPTIONS, max_chunk_pixels=3 * 40 * 30)
    assert len(the_plan.chunks) > 2
    sink = ArtifactWriter(tmp_path / "chunked")
    results = {chunk.chunk_index: store_files(chunk, run_chunk(chunk, f"file://{store.root}", OPTIONS, RESOURCES), sink)
               for chunk in pickle.loads(pickle.dumps(the_plan)).chunks}
    comparison = finalize(the_plan, results)
    assert comparison.images == expected.images
    assert files_under(tmp_path / "chunked") == files_under(tmp_path / "streamed")
    statuses = Counter(result.status for result in comparison.images.values())
    assert statuses == {Status.CHANGED: 11, Status.ERRORED: 1, Status.UNCHANGED: 1, Status.ADDED: 1,
                        Status.REMOVED: 1}


def test_a_chunk_without_a_result_errors_only_its_images(tmp_path, store):
    base, head = builds(store)
    the_plan = plan(base, head, OPTIONS, max_chunk_pixels=3 * 40 * 30)
    results = {
        chunk.chunk_index: run_chunk(chunk, LocalFetcher(store.root), OPTIONS, RESOURCES) for chunk in the_plan.chunks
    }
    failed, unreadable, mismatched = the_plan.chunks[0], the_plan.chunks[1], the_plan.chunks[2]
    del results[failed.chunk_index]
    results[unreadable.chunk_index] = chunk_result_from_json({"chunk_index": 1, "images": "garbage"})
    results[mismatched.chunk_index] = ChunkResult(mismatched.chunk_index, {})
    comparison = finalize(the_plan, results)
    whole = finalize(
        the_plan, {c.chunk_index: run_chunk(c, LocalFetcher(store.root), OPTIONS, RESOURCES) for c in the_plan.chunks}
    )
    reasons = {failed.chunk_index: Reason.CHUNK_FAILED, unreadable.chunk_index: Reason.CHUNK_RESULT_UNREADABLE,
               mismatched.chunk_index: Reason.CHUNK_RESULT_UNREADABLE}
    chunk_of = {c.name: chunk.chunk_index for chunk in the_plan.chunks for c in chunk.candidates}
    for name, result in comparison.images.items():
        if chunk_of.get(name) in reasons:
            assert result.status is Status.ERRORED and result.reason is reasons[chunk_of[name]]
            assert result.base_hash == whole.images[name].base_hash and result.detail
        else:
            assert result == whole.images[name]


def test_plan_and_chunk_results_round_trip_through_json(store):
    base, head = builds(store)
    the_plan = plan(base, head, OPTIONS, max_chunk_pixels=3 * 40 * 30)
    text = json.dumps(plan_to_json(the_plan))
    assert plan_from_json(json.loads(text)) == the_plan
    data = json.loads(text)
    assert set(data) >= {"chunks", "non_diff_images"}
    assert set(data["chunks"][0]) >= {"chunk_index", "candidates"}
    assert set(data["chunks"][0]["candidates"][0]) >= {"name", "head_hash", "base_hash", "pixel_count",
                                                      "diff_threshold"}
    for chunk in the_plan.chunks:
        result = run_chunk(chunk, LocalFetcher(store.root), OPTIONS, RESOURCES)
        text = json.dumps(chunk_result_to_json(result))
        assert "mask_png" not in text
        assert chunk_result_from_json(json.loads(text)) == ChunkResult(result.chunk_index, result.images)


def test_an_unreadable_plan_is_a_value_error(store):
    base, head = builds(store)
    data = plan_to_json(plan(base, head, OPTIONS))
    del data["chunks"][0]["candidates"][0]["name"]
    try:
        plan_from_json(data)
    except ValueError as exc:
        assert "not a comparison plan" in str(exc)
    else:
        raise AssertionError("a plan without names was read")


@st.composite
def manifests(draw):
    hashes = [f"{i:064x}" for i in range(draw(st.integers(2, 12)))]
    names = draw(st.lists(st.text("abcdef", min_size=1, max_size=4), min_size=1, max_size=25, unique=True))
    sizes = st.one_of(st.none(), st.tuples(st.integers(1, 3000), st.integers(1, 3000)))
    base, head = {}, {}
    for name in names:
        base_hash, head_hash = draw(st.sampled_from(hashes)), draw(st.sampled_from(hashes))
        for side, key in ((base, base_hash), (head, head_hash)):
            size = draw(sizes)
            side[name] = {"content_hash": key, **({"width": size[0], "height": size[1]} if size else {})}
    return (parse_manifest({"images": base}, "base.json"), parse_manifest({"images": head}, "head.json"),
            draw(st.integers(1, 12_000_000)), draw(st.integers(1, 6)))


@settings(max_examples=150, deadline=None)
@given(manifests())
def test_chunks_hold_every_candidate_once_within_the_limits(case):
    base, head, limit, max_pairs = case
    the_plan = plan(base, head, OPTIONS, max_chunk_pixels=limit, max_chunk_pairs=max_pairs)
    names = [c.name for chunk in the_plan.chunks for c in chunk.candidates]
    assert len(names) == len(set(names))
    assert set(names) | set(the_plan.non_diff_images) == set(base.images) | set(head.images)
    assert the_plan.total == len(set(base.images) | set(head.images))
    pair_chunks: dict[tuple[str, str], set[int]] = {}
    blob_chunks: dict[str, set[int]] = {}
    for chunk in the_plan.chunks:
        pairs = chunk.pairs()
        assert pairs, "empty chunk"
        pixels = sum(names[0].pixel_count for names in pairs.values())
        assert pixels <= limit or len(pairs) == 1
        assert len(pairs) <= max_pairs
        for pair in pairs:
            pair_chunks.setdefault(pair, set()).add(chunk.chunk_index)
            for key in pair[:2]:
                blob_chunks.setdefault(key, set()).add(chunk.chunk_index)
    assert all(len(chunks) == 1 for chunks in pair_chunks.values())
    # A group of pairs linked by shared blobs is split only when it cannot fit in one chunk.
    whole = plan(base, head, OPTIONS, max_chunk_pixels=10**12)
    if len(whole.chunks) == 1:
        total = sum(names[0].pixel_count for names in whole.chunks[0].pairs().values())
        if total <= limit and len(whole.chunks[0].pairs()) <= max_pairs:
            assert len(the_plan.chunks) == 1


def test_a_local_comparison_never_imports_dask(tmp_path, store):
    base, head = builds(store)
    script = (
        "import sys, compare\n"
        "from compare.cli.main import main\n"
        f"code = main(['compare', '--base', {str(tmp_path / 'b')!r}, '--head', {str(tmp_path / 'h')!r},"
        f" '--out', {str(tmp_path / 'out')!r}, '--quiet'])\n"
        "assert code in (1, 2), code\n"
        "assert 'distributed' not in sys.modules and 'dask' not in sys.modules\n"
    )
    for folder, manifest in (("b", base), ("h", head)):
        (tmp_path / folder).mkdir()
        for index, entry in enumerate(manifest.images.values()):
            (tmp_path / folder / f"{index}.png").write_bytes((store.root / entry.content_hash).read_bytes())
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr



def test_names_whose_merged_regions_are_equal_share_one_diff_in_one_chunk(store):
    region = {"x1": 0, "y1": 0, "x2": 1, "y2": 1}
    base_key, head_key = store.add(png(40, 30)), store.add(png(40, 30, mark=(20, 20)))
    base = parse_manifest({"images": {"a.png": {"content_hash": base_key},
                                      "b.png": {"content_hash": base_key}}}, "base.json")
    head = parse_manifest({"images": {"a.png": {"content_hash": head_key, "ignore_regions": [region]},
                                      "b.png": {"content_hash": head_key}}}, "head.json")
    options = CompareOptions(ignore_regions=((0, 0, 1, 1),))
    resources = Resources(workers=1, fetch_workers=2)

    # a.png's own region is the comparison's: both names are diffed alike, so they are one pair
    # even when every pair gets a chunk of its own.
    chunked = plan(base, head, options, max_chunk_pairs=1)

    assert [sorted(c.name for c in chunk.candidates) for chunk in chunked.chunks] == [["a.png", "b.png"]]
    results = {chunk.chunk_index: run_chunk(chunk, LocalFetcher(store.root), options, resources)
               for chunk in chunked.chunks}
    comparison = finalize(chunked, results)
    assert {n: r.status for n, r in comparison.images.items()} == {"a.png": Status.CHANGED,
                                                                     "b.png": Status.CHANGED}
