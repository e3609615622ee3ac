"""``--results-store``: a comparison's results written under Sentry's keys to the objectstore
test server and to moto S3, read back and validated with Sentry's models; write failures are
retried, then reported with their own exit code."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from compare.builds import compare_builds
from compare.cli import EXIT_BAD_INPUT, EXIT_DIFFERENCES, EXIT_RESULTS_NOT_WRITTEN, main
from compare.engine.chunks import plan, run_chunk
from compare.inputs.manifest import load_manifest, parse_manifest
from compare.model import CompareOptions, Comparison, ImageResult, Reason, Resources, Status
from compare.output.results_store import (
    ResultsNotWritten,
    ResultsPublisher,
    SentryLayout,
    finalize_from_store,
    mask_uploads,
    publish_comparison,
    publish_plan,
    store_form,
    stored_masks_only,
)
from compare.output.sentry_keys import path_stem
from fetchers import BatchUploader, WriteError, fetcher_from_url
from testing.objectstore import DEFAULT_SCOPES, DEFAULT_USECASE, ObjectstoreServer
from testing.s3 import CREDENTIALS, REGION
from tests.compare.helpers import png, write_folder
from tests.sentry_models import ComparisonManifest

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_store_settings_from_environment")]

PREFIX = "1/2"  # Sentry's {org}/{project}


@dataclass
class Target:
    """A store under test: its URL, and what its server saw and holds."""

    url: str
    puts: Callable[[], dict[str, int]]  # PUT requests by full key
    content_type: Callable[[str], str]  # of the object at a full key


@pytest.fixture
def objectstore_target(objectstore_server: ObjectstoreServer) -> Iterator[Target]:
    server = objectstore_server
    host = server.url.removeprefix("http://")
    scopes = ";".join(f"{k}={v}" for k, v in DEFAULT_SCOPES.items())

    def content_type(key: str) -> str:
        url = f"{server.url}/v1/objects/{DEFAULT_USECASE}/{scopes}/{key}"
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD")) as response:
            return response.headers["content-type"]

    server.faults.clear()
    yield Target(f"objectstore+http://{host}/{DEFAULT_USECASE}?org=1&project=2&prefix={PREFIX}",
                 lambda: server.counters.by_key("PUT"), content_type)
    server.faults.clear()


@pytest.fixture
def s3_target(s3_server, s3_bucket, s3_env, monkeypatch) -> Iterator[Target]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    client = boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name=REGION, **CREDENTIALS)

    def puts() -> dict[str, int]:
        listed = client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])
        return {item["Key"]: s3_server.requests("PUT", s3_bucket, item["Key"]) for item in listed}

    yield Target(f"s3://{s3_bucket}/{PREFIX}", puts,
                 lambda key: client.head_object(Bucket=s3_bucket, Key=key)["ContentType"])
    client.close()


@pytest.fixture(params=["objectstore", "s3"])
def target(request) -> Target:
    return request.getfixturevalue(f"{request.param}_target")


def builds(tmp_path: Path) -> tuple[Path, Path]:
    """Two builds: changed images (two sharing a stem), one unchanged whose bytes differ,
    one identical, one added and one removed."""
    base = write_folder(tmp_path / "base", {
        "home.png": png(1), "list.png": png(2), "deep/settings.png": png(3, (80, 60)),
        "a.png": png(4), "a.jpg": png(5), "recompressed.png": png(6), "gone.png": png(7),
    })
    head = write_folder(tmp_path / "head", {
        "home.png": png(1), "list.png": png(22), "deep/settings.png": png(33, (80, 60)),
        "a.png": png(44), "a.jpg": png(55), "recompressed.png": png(6, compress_level=1), "new.png": png(8),
    })
    return base, head


def upload_and_compare(target: Target, tmp_path: Path, head_id: int, base_id: int, *extra: str) -> int:
    """Upload both builds and their manifests to the store, then compare them from there."""
    for role, folder in zip(("base", "head"), builds(tmp_path), strict=True):
        assert main(["upload", str(folder), "--store", target.url,
                     "--manifest-key", f"manifests/{role}-{head_id}.json", "--quiet"]) == 0
    return main(["compare", "--base", f"store:manifests/base-{head_id}.json",
                 "--head", f"store:manifests/head-{head_id}.json", "--store", target.url,
                 "--results-store", target.url, "--out", str(tmp_path / "out"), "--quiet",
                 "--head-artifact-id", str(head_id), "--base-artifact-id", str(base_id), *extra])


def artifact_ids() -> tuple[int, int]:
    """Fresh ids, so that runs sharing a server never share keys."""
    return random.randrange(10**6, 10**9), random.randrange(10**6)


def test_results_land_under_exactly_sentrys_keys_and_validate(target, tmp_path):
    head_id, base_id = artifact_ids()
    assert upload_and_compare(target, tmp_path, head_id, base_id) == EXIT_DIFFERENCES
    local = json.loads((tmp_path / "out" / "comparison.json").read_text())
    diffed = sorted(name for name, image in local["images"].items() if image["diff_mask_key"])
    assert diffed == ["a.jpg", "a.png", "deep/settings.png", "list.png", "recompressed.png"]
    assert local["images"]["recompressed.png"]["status"] == "unchanged"

    comparison_dir = f"{PREFIX}/{head_id}/{base_id}"
    masks = {f"{comparison_dir}/diff/{path_stem(name)}.png" for name in diffed}
    assert len(masks) == 4  # a.png and a.jpg share one, as in Sentry
    written = {key: n for key, n in target.puts().items() if key.startswith(f"{comparison_dir}/")}
    # comparison.json twice: naming no mask before the masks are written, then naming them.
    assert written == {**dict.fromkeys(masks, 1), f"{comparison_dir}/comparison.json": 2}
    assert target.content_type(f"{comparison_dir}/comparison.json") == "application/json"
    assert {target.content_type(key) for key in masks} == {"image/png"}

    with fetcher_from_url(target.url) as store:
        stored = json.loads(store.fetch(f"{head_id}/{base_id}/comparison.json"))
        ComparisonManifest.model_validate(stored)
        assert (stored["head_artifact_id"], stored["base_artifact_id"]) == (head_id, base_id)
        assert stored["summary"] == local["summary"]
        for name, image in stored["images"].items():
            assert image["status"] == local["images"][name]["status"]
            assert image["previews"] is None
            if name in diffed:
                assert image["diff_mask_key"] == f"{comparison_dir}/diff/{path_stem(name)}.png"
                assert image["diff_mask_image_id"] == image["diff_mask_key"].removeprefix(f"{PREFIX}/")
                assert local["images"][name]["diff_mask_key"].startswith("diff/")  # --out keeps local paths
            else:
                assert image["diff_mask_key"] is None
        # The shared key holds the mask of the last of its names in name order.
        a_mask = (tmp_path / "out" / local["images"]["a.png"]["diff_mask_key"]).read_bytes()
        assert store.fetch(f"{head_id}/{base_id}/diff/a.png") == a_mask
        assert a_mask != (tmp_path / "out" / local["images"]["a.jpg"]["diff_mask_key"]).read_bytes()
        local_list = (tmp_path / "out" / local["images"]["list.png"]["diff_mask_key"]).read_bytes()
        assert store.fetch(f"{head_id}/{base_id}/diff/list.png") == local_list


def test_failed_writes_are_retried(objectstore_server, objectstore_target, tmp_path):
    head_id, base_id = artifact_ids()
    objectstore_server.faults.inject(503, method="PUT", times=3, retry_after=None,
                                     key=f"{PREFIX}/{head_id}/{base_id}/comparison.json")
    assert upload_and_compare(objectstore_target, tmp_path, head_id, base_id) == EXIT_DIFFERENCES
    assert objectstore_server.faults.pending == 0
    assert objectstore_target.puts()[f"{PREFIX}/{head_id}/{base_id}/comparison.json"] == 4 + 1


@pytest.mark.parametrize("failing", ["comparison.json", "diff/list.png"])
def test_a_result_that_cannot_be_written_is_reported_with_its_exit_code(
    objectstore_server, objectstore_target, tmp_path, capsys, failing
):
    head_id, base_id = artifact_ids()
    key = f"{PREFIX}/{head_id}/{base_id}/{failing}"
    objectstore_server.faults.inject(500, method="PUT", times=20, retry_after=None, key=key)
    code = upload_and_compare(objectstore_target, tmp_path, head_id, base_id)
    captured = capsys.readouterr()
    assert code == EXIT_RESULTS_NOT_WRITTEN
    assert "snapcompare: error: --results-store: not written: " in captured.err
    relative = key.removeprefix(f"{PREFIX}/")
    assert f"{objectstore_target.url}: '{relative}': objectstore answered HTTP 500" in captured.err
    assert captured.out.rstrip().endswith(f"results not written to --results-store; report: "
                                          f"{tmp_path / 'out' / 'report.html'} (exit {EXIT_RESULTS_NOT_WRITTEN})")
    local = json.loads((tmp_path / "out" / "comparison.json").read_text())
    puts = objectstore_target.puts()
    comparison_puts = puts.get(f"{PREFIX}/{head_id}/{base_id}/comparison.json", 0)
    if failing == "comparison.json":
        # Its first write (naming no mask) failed: no mask was replaced, the run stopped there.
        assert comparison_puts == 4
        assert not any(key.startswith(f"{PREFIX}/{head_id}/{base_id}/diff/") for key in puts)
        assert local["summary"]["changed"] == 4
        return
    # Only the image whose mask was not written errors; comparison.json is written without it.
    assert comparison_puts == 2
    assert (local["summary"]["changed"], local["summary"]["errored"]) == (3, 1)
    assert local["images"]["list.png"]["reason"] == "image_processing_failed"
    assert "its diff mask could not be written to the results store" in local["images"]["list.png"]["detail"]
    with fetcher_from_url(objectstore_target.url) as store:
        stored = json.loads(store.fetch(f"{head_id}/{base_id}/comparison.json"))
    ComparisonManifest.model_validate(stored)
    assert stored["images"]["list.png"]["status"] == "errored"
    assert stored["images"]["list.png"]["diff_mask_key"] is None
    assert stored["summary"] == local["summary"]


def test_a_store_that_cannot_be_reached_is_told_before_the_work(tmp_path, capsys):
    base, head = builds(tmp_path)
    unreachable = f"objectstore+http://127.0.0.1:9/{DEFAULT_USECASE}?org=1&project=2&prefix={PREFIX}"
    code = main(["compare", "--base", str(base), "--head", str(head), "--out", str(tmp_path / "out"),
                 "--quiet", "--results-store", unreachable, "--head-artifact-id", "42",
                 "--base-artifact-id", "41"])
    captured = capsys.readouterr()
    assert code == EXIT_BAD_INPUT
    assert "store unavailable: cannot connect" in captured.err
    assert not (tmp_path / "out" / "report.html").exists()


@given(st.lists(st.sampled_from(["a.png", "a.jpg", "a", "/a.png", "b\\a.png", "b/a.webp", "v1.2/x", "v1.png"]),
                unique=True))
def test_names_sharing_a_mask_key_leave_the_last_in_name_order(names):
    layout = SentryLayout("1/2", 11, 7)
    images = {name: ImageResult(name=name, status=Status.CHANGED, diff_mask_key=f"diff/{name}") for name in names}
    uploads = mask_uploads(images, layout, lambda result: result.name.encode())
    assert set(uploads) == {f"11/7/diff/{path_stem(name)}.png" for name in names}
    for key, source in uploads.items():
        assert source == max(name for name in names if layout.mask_key(name) == key).encode()
    stored = store_form(Comparison(images, CompareOptions()), layout).images
    assert stored.keys() == images.keys()
    assert {result.diff_mask_key for result in stored.values()} == {layout.full_key(key) for key in uploads}


# One odd name errors its own image only.

ODD_NAMES = ["a//b.png", "./a.png", "../x.png", "\\..\\y.png", "new\nline.png", "L" * 300 + ".png", "x\ud800.png"]
"""Names whose Sentry mask key a store refuses: empty, '.' or '..' segments, a control
character, a file name longer than NAME_MAX in a local store, a lone surrogate (a JSON escape
of half a character, which no store can name)."""
FINE_NAMES = ["fine.png", "deep/fine.png"]


def odd_builds(root: Path) -> tuple[Path, Path, Path]:
    """A local blob store and base and head manifests in which every image changed."""
    blobs = root / "blobs"
    blobs.mkdir(parents=True)
    manifests = {"base": {}, "head": {}}
    for index, name in enumerate(FINE_NAMES + ODD_NAMES):
        for role, seed in (("base", index + 1), ("head", index + 100)):
            data = png(seed)
            digest = hashlib.sha256(data).hexdigest()
            (blobs / digest).write_bytes(data)
            manifests[role][name] = {"content_hash": digest, "width": 100, "height": 100}
    for role, images in manifests.items():
        (root / f"{role}.json").write_text(json.dumps({"images": images}))
    return blobs, root / "base.json", root / "head.json"


def assert_only_odd_names_errored(images: dict, store_dir: Path) -> None:
    """``images`` (of a stored comparison): odd names errored for their mask, the others changed
    with their masks in the store."""
    for name in ODD_NAMES:
        image = images[name]
        assert (image["status"], image["reason"], image["diff_mask_key"]) == (
            "errored", "image_processing_failed", None)
        assert "its diff mask could not be written to the results store" in image["detail"]
    for name in FINE_NAMES:
        assert images[name]["status"] == "changed"
        assert (store_dir / images[name]["diff_mask_key"]).is_file()


def test_an_odd_name_errors_only_its_own_image(tmp_path, capsys):
    blobs, base, head = odd_builds(tmp_path)
    results = tmp_path / "results"
    code = main(["compare", "--base", str(base), "--head", str(head), "--store", str(blobs),
                 "--results-store", str(results), "--head-artifact-id", "42", "--base-artifact-id", "41",
                 "--out", str(tmp_path / "out"), "--quiet"])
    assert code == EXIT_RESULTS_NOT_WRITTEN  # the odd names' masks are not in the store
    assert "--results-store: not written: " in capsys.readouterr().err
    stored = json.loads((results / "42/41/comparison.json").read_text())
    ComparisonManifest.model_validate(stored)
    assert_only_odd_names_errored(stored["images"], results)
    local = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert {name: image["status"] for name, image in local["images"].items()} == {
        name: image["status"] for name, image in stored["images"].items()}


def test_an_odd_name_errors_only_its_own_image_in_a_cluster_chunk(tmp_path):
    """The worker's side (`ResultsPublisher.chunk`, as `chunk_task` runs it) and `finalize_from_store`."""
    blobs, base, head = odd_builds(tmp_path)
    options = CompareOptions(head_artifact_id=42, base_artifact_id=41)
    resources = Resources()
    comparison_plan = plan(load_manifest(base), load_manifest(head), options)
    with fetcher_from_url(str(tmp_path / "results"), create=True) as results, \
            fetcher_from_url(str(blobs)) as store:
        layout = SentryLayout.of(results, options)
        with BatchUploader(results) as uploader:
            publish_plan(comparison_plan, uploader, layout)
        publisher = ResultsPublisher(str(tmp_path / "results"), layout)
        for chunk in comparison_plan.chunks:
            returned = publisher.chunk(chunk, run_chunk(chunk, store, options, resources), results, options, resources)
            assert_only_odd_names_errored(
                {name: image_json(image) for name, image in returned.images.items()}, tmp_path / "results")
        comparison = finalize_from_store(results, layout)
    stored = json.loads((tmp_path / "results/42/41/comparison.json").read_text())
    ComparisonManifest.model_validate(stored)
    assert_only_odd_names_errored(stored["images"], tmp_path / "results")
    assert comparison.summary == stored["summary"]


def image_json(image: ImageResult) -> dict:
    return {"status": image.status, "reason": image.reason, "detail": image.detail,
            "diff_mask_key": image.diff_mask_key}


# A stored comparison.json never names a mask another run wrote.


class StopsAt:
    """A local store whose ``at``-th put fails: alone (``once``), or with every later one (the
    run stopped there)."""

    def __init__(self, root: Path, at: int, once: bool) -> None:
        self.store = fetcher_from_url(str(root), create=True)
        self.store_url, self.at, self.once, self.puts = self.store.store_url, at, once, 0
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes, content_type: str) -> None:
        with self._lock:
            self.puts += 1
            fails = self.puts == self.at or (self.puts > self.at and not self.once)
        if fails:
            raise WriteError(key, "refused by the test")
        self.store.put(key, data, content_type)

    def exists(self, key: str) -> bool:
        return self.store.exists(key)

    def fetch(self, key: str) -> bytes:
        return self.store.fetch(key)


def run_results(changed_pixels: int) -> Comparison:
    """One run's results: each image's mask says which image and run it is (names sharing a
    stem share a mask key)."""
    names = ["home.png", "a.png", "a.jpg", "deep/list.png"]
    images = {name: ImageResult(name=name, status=Status.CHANGED, changed_pixels=changed_pixels,
                                total_pixels=100, diff_mask_key=f"diff/{name}") for name in names}
    return Comparison(images, CompareOptions(head_artifact_id=11, base_artifact_id=7))


def masks_of(comparison: Comparison, layout: SentryLayout) -> dict[str, bytes]:
    return mask_uploads(comparison.images, layout, lambda image: f"{image.name}:{image.changed_pixels}".encode())


@pytest.mark.parametrize("once", [True, False], ids=["one-write-fails", "the-run-stops"])
def test_a_stored_comparison_only_names_masks_of_its_own_run(tmp_path, once):
    earlier, later = run_results(1), run_results(2)
    layout = SentryLayout("", 11, 7)
    writes = 2 + len(masks_of(later, layout))
    for at in range(1, writes + 1):
        store = StopsAt(tmp_path / f"{at}", at=writes + at, once=once)  # the earlier run's writes all succeed
        for comparison in (earlier, later):
            with BatchUploader(store, max_workers=2) as uploader:
                try:
                    publish_comparison(comparison, uploader, layout, masks_of(comparison, layout))
                except ResultsNotWritten:
                    assert comparison is later
        stored = json.loads(store.fetch(layout.comparison_key))
        named = {name: image for name, image in stored["images"].items() if image["diff_mask_key"]}
        for name, image in named.items():
            key = image["diff_mask_key"]
            last = max(other for other in stored["images"] if layout.mask_key(other) == key)
            assert store.fetch(key) == f"{last}:{image['changed_pixels']}".encode(), (at, name)
        if at == 1:  # the later run's first write failed: the earlier run's results stand whole
            assert len(named) == len(earlier.images) and stored["images"]["home.png"]["changed_pixels"] == 1


@pytest.mark.parametrize(("owner", "kept"), [("changed", True), ("errored", False), ("over max_pixels", True)])
def test_a_worker_stored_mask_key_whose_owner_wrote_nothing_is_not_named(owner, kept):
    # a.jpg and a.png share Sentry's key diff/a.png, which a.png, the later name, owns when both
    # are diffed: a worker stores a.jpg's result naming the key but leaves the key to a.png.
    sizes = {"width": 10, "height": 10}
    big = {"width": 10_000, "height": 10_000} if owner == "over max_pixels" else sizes
    base = parse_manifest(json.dumps({"images": {"a.jpg": {"content_hash": "1" * 64, **sizes},
                                                 "a.png": {"content_hash": "3" * 64, **sizes}}}).encode(), "base")
    head = parse_manifest(json.dumps({"images": {"a.jpg": {"content_hash": "2" * 64, **sizes},
                                                 "a.png": {"content_hash": "4" * 64, **big}}}).encode(), "head")
    options = CompareOptions(head_artifact_id=11, base_artifact_id=7, max_pixels=1_000_000)
    the_plan = plan(base, head, options)
    layout = SentryLayout("", 11, 7)
    key = layout.full_key(layout.mask_key("a.png"))
    shadowed = ImageResult("a.jpg", Status.CHANGED, diff_mask_key=key, diff_mask_image_id=key)
    images = {"a.jpg": shadowed, **the_plan.non_diff_images}
    if owner == "changed":
        images["a.png"] = ImageResult("a.png", Status.CHANGED, diff_mask_key=key, diff_mask_image_id=key)
    elif owner == "errored":
        images["a.png"] = ImageResult("a.png", Status.ERRORED, reason=Reason.IMAGE_PROCESSING_FAILED)

    stored = stored_masks_only(Comparison(images, options), the_plan).images["a.jpg"]

    expected = key if kept else None
    assert (stored.status, stored.diff_mask_key, stored.diff_mask_image_id) == (Status.CHANGED, expected, expected)


def test_a_cluster_run_first_replaces_the_comparison_naming_masks_its_workers_replace(tmp_path):
    with fetcher_from_url(str(tmp_path / "results"), create=True) as results:
        layout = SentryLayout("", 11, 7)
        with BatchUploader(results) as uploader:
            publish_comparison(run_results(1), uploader, layout, masks_of(run_results(1), layout))
            blobs, base, head = odd_builds(tmp_path / "builds")
            publish_plan(plan(load_manifest(base), load_manifest(head), run_results(1).options), uploader, layout)
        stored = json.loads(results.fetch(layout.comparison_key))
    assert not any(image["diff_mask_key"] or image["diff_mask_image_id"] for image in stored["images"].values())
    assert {image["reason"] for image in stored["images"].values()} == {"chunk_failed"}


def test_a_rerun_whose_comparison_cannot_be_written_leaves_the_earlier_one_as_it_was(
    objectstore_server, objectstore_target, tmp_path
):
    head_id, base_id = artifact_ids()
    assert upload_and_compare(objectstore_target, tmp_path, head_id, base_id) == EXIT_DIFFERENCES
    with fetcher_from_url(objectstore_target.url) as store:
        comparison_key = f"{head_id}/{base_id}/comparison.json"
        earlier = json.loads(store.fetch(comparison_key))
        keys = [comparison_key, *(image["diff_mask_key"].removeprefix(f"{PREFIX}/")
                                  for image in earlier["images"].values() if image["diff_mask_key"])]
        stored = {key: store.fetch(key) for key in keys}
        assert earlier["summary"]["changed"] == 4
        objectstore_server.faults.inject(500, method="PUT", times=20, retry_after=None,
                                         key=f"{PREFIX}/{comparison_key}")
        # Nothing changes at threshold 1: every mask of this run would be all zero.
        assert upload_and_compare(objectstore_target, tmp_path, head_id, base_id,
                                  "--threshold", "1") == EXIT_RESULTS_NOT_WRITTEN
        assert {key: store.fetch(key) for key in keys} == stored


@pytest.mark.parametrize("order", ["in order", "reversed"])
def test_names_sharing_a_stem_in_other_chunks_store_the_last_names_mask_whichever_finishes_last(
    tmp_path, order
):
    # a.jpg and a.png share Sentry's key diff/a.png; cut into two chunks, whichever worker finishes
    # last, the stored mask must be a.png's (the last name in name order), as on one machine.
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    images = {"base": {"a.jpg": png(1), "a.png": png(2)}, "head": {"a.jpg": png(11), "a.png": png(12)}}
    manifests = {}
    for side, named in images.items():
        entries = {}
        for name, data in named.items():
            key = hashlib.sha256(data).hexdigest()
            (blobs / key).write_bytes(data)
            entries[name] = {"content_hash": key, "width": 100, "height": 100}
        path = tmp_path / f"{side}.json"
        path.write_text(json.dumps({"images": entries}))
        manifests[side] = load_manifest(path)
    options = CompareOptions(head_artifact_id=11, base_artifact_id=7)
    resources = Resources(workers=1)
    the_plan = plan(manifests["base"], manifests["head"], options, max_chunk_pairs=1)
    assert [[c.name for c in chunk.candidates] for chunk in the_plan.chunks] == [["a.jpg"], ["a.png"]]
    layout = SentryLayout("", 11, 7)
    with fetcher_from_url(str(tmp_path / "results"), create=True) as results:
        with BatchUploader(results) as uploader:
            publish_plan(the_plan, uploader, layout)
        publisher = ResultsPublisher(str(tmp_path / "results"), layout)
        chunks = the_plan.chunks if order == "in order" else the_plan.chunks[::-1]
        for chunk in chunks:
            publisher.chunk(chunk, run_chunk(chunk, str(blobs), options, resources), results, options, resources)
        comparison = finalize_from_store(results, layout)
        stored = results.fetch(layout.mask_key("a.png"))
    local = compare_builds_mask(tmp_path, manifests, options, blobs)
    assert {r.diff_mask_key for r in comparison.images.values()} == {"11/7/diff/a.png"}
    assert stored == local


def compare_builds_mask(tmp_path: Path, manifests: dict, options: CompareOptions, blobs: Path) -> bytes:
    """The mask one machine stores under diff/a.png for the same comparison."""
    results = tmp_path / "one-machine"
    compare_builds(manifests["base"].source, manifests["head"].source, store=str(blobs),
                   out_dir=tmp_path / "out", options=options, results_store=str(results))
    return (results / "11" / "7" / "diff" / "a.png").read_bytes()
