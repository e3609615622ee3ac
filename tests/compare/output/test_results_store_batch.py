"""``--results-store`` on objectstore with batch requests: the builds are checked (``head``
operations) and uploaded, and the results written (``insert`` operations), in batch requests
(``POST /v1/objects:batch/...``), with no single HEAD or PUT on the wire; what was written reads
back as the comparison made it. The same run with ``batch=0`` sends one request a blob.

A zero-latency `LatencyProxy` in front of the test server counts the requests on the wire by
method; the server counts batch requests and each operation by its method and key."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from compare.cli import EXIT_DIFFERENCES, main
from compare.output.sentry_keys import path_stem
from fetchers import fetcher_from_url
from testing.objectstore import DEFAULT_USECASE, ObjectstoreServer, serve_objectstore
from testing.proxy import LatencyProxy
from tests.compare.helpers import png, write_folder
from tests.sentry_models import ComparisonManifest

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_store_settings_from_environment")]

PREFIX = "1/2"


@pytest.fixture(scope="module")
def server() -> Iterator[ObjectstoreServer]:
    """A server of this module's own, so that its counters see only these tests."""
    with serve_objectstore() as running:
        yield running


@pytest.fixture
def proxy(server: ObjectstoreServer) -> Iterator[LatencyProxy]:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    with LatencyProxy(host, int(port), rtt=0.0) as running:
        yield running


def store_url(proxy: LatencyProxy, *, batch: bool) -> str:
    return (f"objectstore+http://{proxy.host}:{proxy.port}/{DEFAULT_USECASE}"
            f"?org=1&project=2&prefix={PREFIX}" + ("" if batch else "&batch=0"))


def builds(tmp_path: Path, seed: int) -> tuple[Path, Path]:
    """Two builds of fresh images: three changed, one unchanged, one added, one removed."""
    base = write_folder(tmp_path / "base", {
        "home.png": png(seed), "list.png": png(seed + 1), "deep/settings.png": png(seed + 2, (80, 60)),
        "about.png": png(seed + 3), "gone.png": png(seed + 4),
    })
    head = write_folder(tmp_path / "head", {
        "home.png": png(seed), "list.png": png(seed + 11), "deep/settings.png": png(seed + 12, (80, 60)),
        "about.png": png(seed + 13), "new.png": png(seed + 14),
    })
    return base, head


def upload(url: str, folder: Path, manifest_key: str) -> None:
    assert main(["upload", str(folder), "--store", url, "--manifest-key", manifest_key, "--quiet"]) == 0


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "one-request-a-blob"])
def test_results_are_written_with_batch_inserts_and_read_back(server, proxy, tmp_path, batch):
    url = store_url(proxy, batch=batch)
    head_id, base_id = random.randrange(10**6, 10**9), random.randrange(10**6)
    base, head = builds(tmp_path, random.randrange(1000, 10**6, 100))

    batches, posts = server.counters.batches, proxy.requests_by_method("POST")
    puts, heads = proxy.requests_by_method("PUT"), proxy.requests_by_method("HEAD")
    head_operations = server.counters.total("HEAD")
    upload(url, base, f"manifests/base-{head_id}.json")
    upload(url, head, f"manifests/head-{head_id}.json")
    # The uploads check which blobs the store has (head operations) and write the rest.
    assert server.counters.total("HEAD") > head_operations
    if batch:
        assert server.counters.batches > batches
        assert proxy.requests_by_method("POST") - posts == server.counters.batches - batches
        assert proxy.requests_by_method("HEAD") == heads
    else:
        assert server.counters.batches == batches
        assert proxy.requests_by_method("HEAD") > heads

    comparison_dir = f"{PREFIX}/{head_id}/{base_id}"
    written_before = server.counters.by_key("PUT")
    batches, posts, puts = server.counters.batches, proxy.requests_by_method("POST"), proxy.requests_by_method("PUT")
    code = main(["compare", "--base", f"store:manifests/base-{head_id}.json",
                 "--head", f"store:manifests/head-{head_id}.json", "--store", url, "--results-store", url,
                 "--out", str(tmp_path / "out"), "--quiet",
                 "--head-artifact-id", str(head_id), "--base-artifact-id", str(base_id)])
    assert code == EXIT_DIFFERENCES

    local = json.loads((tmp_path / "out" / "comparison.json").read_text())
    diffed = sorted(name for name, image in local["images"].items() if image["diff_mask_key"])
    assert diffed == ["about.png", "deep/settings.png", "list.png"]
    masks = {f"{comparison_dir}/diff/{path_stem(name)}.png" for name in diffed}
    written = {key: count - written_before.get(key, 0) for key, count in server.counters.by_key("PUT").items()
               if key.startswith(f"{comparison_dir}/")}
    # comparison.json twice: naming no mask before the masks are written, then naming them.
    assert written == {**dict.fromkeys(masks, 1), f"{comparison_dir}/comparison.json": 2}
    result_writes = sum(written.values())
    if batch:
        # Masks and comparison.json (its two writes are two calls) go as insert operations of
        # batch requests, none with a PUT of its own; the run's reads of manifests and images
        # are batch requests too.
        assert server.counters.batches - batches == proxy.requests_by_method("POST") - posts
        assert proxy.requests_by_method("PUT") == puts
    else:
        assert server.counters.batches == batches
        assert proxy.requests_by_method("PUT") - puts == result_writes

    with fetcher_from_url(url) as store:
        stored = json.loads(store.fetch(f"{head_id}/{base_id}/comparison.json"))
        ComparisonManifest.model_validate(stored)
        assert (stored["head_artifact_id"], stored["base_artifact_id"]) == (head_id, base_id)
        assert stored["summary"] == local["summary"]
        for name in diffed:
            key = f"{head_id}/{base_id}/diff/{path_stem(name)}.png"
            assert stored["images"][name]["diff_mask_key"] == f"{PREFIX}/{key}"
            assert store.fetch(key) == (tmp_path / "out" / local["images"][name]["diff_mask_key"]).read_bytes()
        if batch:  # and in one batch request, read back
            keys = [f"{head_id}/{base_id}/diff/{path_stem(name)}.png" for name in diffed]
            assert dict(store.fetch_many(keys)) == {key: store.fetch(key) for key in keys}
