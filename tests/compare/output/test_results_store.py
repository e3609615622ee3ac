"""``--results-store``: a comparison's results written under Sentry's keys to the objectstore
test server and to moto S3, read back and validated with Sentry's models; write failures are
retried, then reported with their own exit code."""

from __future__ import annotations

import json
import random
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from compare.cli import EXIT_DIFFERENCES, EXIT_RESULTS_NOT_WRITTEN, main
from compare.model import CompareOptions, Comparison, ImageResult, Status
from compare.output.results_store import SentryLayout, mask_uploads, store_form
from compare.output.sentry_keys import path_stem
from fetchers import fetcher_from_url
from testing.objectstore import DEFAULT_SCOPES, DEFAULT_USECASE, ObjectstoreServer
from testing.s3 import CREDENTIALS, REGION
from tests.compare.cli.test_cli import png, write_folder
from tests.sentry_models import ComparisonManifest

PREFIX = "1/2"  # Sentry's {org}/{project}


@dataclass
class Target:
    """A store under test: its URL, and what its server saw and holds."""

    url: str
    puts: Callable[[], dict[str, int]]  # PUT requests by full key
    content_type: Callable[[str], str]  # of the object at a full key


@pytest.fixture(autouse=True)
def no_store_settings_from_environment(monkeypatch):
    monkeypatch.delenv("SNAPCOMPARE_STORE", raising=False)
    monkeypatch.delenv("SNAPCOMPARE_OBJECTSTORE_TOKEN", raising=False)


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
    for role, folder in zip(("base", "head"), builds(tmp_path)):
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
    assert written == dict.fromkeys({f"{comparison_dir}/comparison.json", *masks}, 1)
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
    assert objectstore_target.puts()[f"{PREFIX}/{head_id}/{base_id}/comparison.json"] == 4


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
    assert json.loads((tmp_path / "out" / "comparison.json").read_text())["summary"]["changed"] == 4
    # comparison.json is written only once every mask is there.
    assert objectstore_target.puts().get(f"{PREFIX}/{head_id}/{base_id}/comparison.json", 0) == (
        4 if failing == "comparison.json" else 0)


def test_a_store_that_cannot_be_reached_is_reported(tmp_path, capsys):
    base, head = builds(tmp_path)
    unreachable = f"objectstore+http://127.0.0.1:9/{DEFAULT_USECASE}?org=1&project=2&prefix={PREFIX}"
    code = main(["compare", "--base", str(base), "--head", str(head), "--out", str(tmp_path / "out"),
                 "--quiet", "--results-store", unreachable, "--head-artifact-id", "42",
                 "--base-artifact-id", "41"])
    captured = capsys.readouterr()
    assert code == EXIT_RESULTS_NOT_WRITTEN
    assert "snapcompare: error: --results-store: not written: " in captured.err
    assert "store unavailable" in captured.err
    assert (tmp_path / "out" / "report.html").is_file()


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
