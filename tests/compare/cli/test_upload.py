"""``snapcompare upload`` end to end against each real store, and what compare makes of the
uploaded builds; unusable stores exit 3 naming the store; tokens never show."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from compare.cli import EXIT_BAD_INPUT, EXIT_DIFFERENCES, EXIT_ERRORED, EXIT_SAME
from compare.inputs.manifest import load_manifest, manifest_from_folder
from fetchers import fetcher_from_url
from testing.gcs import STORAGE_EMULATOR_HOST
from testing.objectstore import serve_objectstore
from testing.s3 import REGION
from tests.compare.helpers import png, read_comparison, run, sha, write_folder

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_store_settings_from_environment")]

TOKEN = "tok-3f1b2e-secret"


@dataclass
class Store:
    """A store under test: its URL, its count of blob writes at the server, its token."""

    url: str
    writes: Callable[[], int]
    token: str | None = None


@pytest.fixture
def s3_store(s3_server, s3_bucket, s3_env, monkeypatch) -> Store:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    return Store(f"s3://{s3_bucket}/builds/blobs", lambda: s3_server.requests_by_method("PUT"))


@pytest.fixture
def gcs_store(gcs_server, gcs_bucket, latency_proxy, monkeypatch) -> Store:
    proxy = latency_proxy(gcs_server.host, gcs_server.port)  # counts the uploads (POSTs)
    monkeypatch.setenv(STORAGE_EMULATOR_HOST, proxy.url)
    return Store(f"gs://{gcs_bucket}/builds", lambda: proxy.requests_by_method("POST"))


@pytest.fixture
def objectstore_with_token(monkeypatch) -> Iterator[Store]:
    with serve_objectstore(token=TOKEN) as server:
        monkeypatch.setenv("SNAPCOMPARE_OBJECTSTORE_TOKEN", TOKEN)
        host = server.url.removeprefix("http://")
        url = f"objectstore+http://{host}/preprod?org=1&project=2&prefix=1/2"
        yield Store(url, lambda: server.counters.total("PUT"), TOKEN)


@pytest.fixture(params=["s3", "gcs", "objectstore"])
def store(request) -> Store:
    return request.getfixturevalue({"s3": "s3_store", "gcs": "gcs_store",
                                    "objectstore": "objectstore_with_token"}[request.param])


def builds(tmp_path: Path) -> tuple[Path, Path]:
    base = write_folder(tmp_path / "base", {
        "home.png": png(1), "list.png": png(2), "gone.png": png(3), "copy.png": png(1),
        "deep/settings.png": png(4, (120, 80)),
    })
    head = write_folder(tmp_path / "head", {
        "home.png": png(1), "list.png": png(22), "new.png": png(5), "copy.png": png(1),
        "deep/settings.png": png(44, (120, 80)),
    })
    return base, head


def masks(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in (out / "diff").rglob("*") if p.is_file()}


def test_uploaded_builds_compare_like_their_folders_and_a_second_upload_writes_nothing(
    store, tmp_path, capsys
):
    base, head = builds(tmp_path)
    writes = store.writes()
    code, stdout, stderr = run(capsys, "upload", base, "--store", store.url, "-o", tmp_path / "base.json",
                               "--manifest-key", "manifests/base.json")
    assert code == EXIT_SAME, stdout
    assert stdout.startswith("snapcompare: uploaded 4 blobs (")  # copy.png is home.png's blob
    assert "uploaded or found 4/4 blobs" in stderr and "diffed" not in stderr  # its progress
    assert store.writes() - writes == 4 + 1  # and the manifest
    code, _, _ = run(capsys, "upload", head, "--store", store.url, "-o", tmp_path / "head.json", "--quiet")
    assert code == EXIT_SAME

    writes = store.writes()
    code, stdout, _ = run(capsys, "upload", base, "--store", store.url, "-o", tmp_path / "again.json", "--quiet")
    assert code == EXIT_SAME and store.writes() == writes
    assert "uploaded 0 blobs (0 bytes); 4 already in the store" in stdout

    assert load_manifest(tmp_path / "base.json") == manifest_from_folder(base).manifest
    with fetcher_from_url(store.url, token=store.token) as fetcher:
        stored = json.loads(fetcher.fetch("manifests/base.json"))
        assert stored == json.loads((tmp_path / "base.json").read_text())
        assert fetcher.fetch(sha(png(2))) == png(2)

    via_store = run(capsys, "compare", "--base", tmp_path / "base.json", "--head", tmp_path / "head.json",
                    "--store", store.url, "--out", tmp_path / "via-store", "--quiet")
    direct = run(capsys, "compare", "--base", base, "--head", head, "--out", tmp_path / "direct", "--quiet")
    assert via_store[0] == direct[0] == EXIT_DIFFERENCES
    ours, theirs = read_comparison(tmp_path / "via-store"), read_comparison(tmp_path / "direct")
    fields = ("status", "reason", "changed_pixels", "diff_ratio")
    assert {n: [i.get(f) for f in fields] for n, i in ours["images"].items()} == {
        n: [i.get(f) for f in fields] for n, i in theirs["images"].items()
    }
    assert masks(tmp_path / "via-store") == masks(tmp_path / "direct") != {}


def test_a_missing_bucket_exits_3_naming_the_store(s3_store, tmp_path, capsys):
    base, head = builds(tmp_path)
    missing = f"s3://missing-{uuid.uuid4().hex[:8]}/p"
    code, stdout, stderr = run(capsys, "upload", base, "--store", missing, "--quiet")
    assert code == EXIT_BAD_INPUT and stdout == ""
    assert stderr == f"snapcompare: error: {missing}: store unavailable: S3 NoSuchBucket (HTTP 404)\n"

    run(capsys, "manifest", base, "-o", tmp_path / "base.json")
    run(capsys, "manifest", head, "-o", tmp_path / "head.json")
    code, _, stderr = run(capsys, "compare", "--base", tmp_path / "base.json", "--head", tmp_path / "head.json",
                          "--store", missing, "--out", tmp_path / "out", "--quiet")
    assert code == EXIT_BAD_INPUT
    assert stderr == f"snapcompare: error: {missing}: store unavailable: S3 NoSuchBucket (HTTP 404)\n"


def test_objectstore_token_comes_from_a_file_or_the_environment_and_never_shows(
    objectstore_with_token, tmp_path, capsys, monkeypatch
):
    store = objectstore_with_token
    base, head = builds(tmp_path)
    monkeypatch.delenv("SNAPCOMPARE_OBJECTSTORE_TOKEN")
    code, stdout, stderr = run(capsys, "upload", base, "--store", store.url, "--quiet")
    assert code == EXIT_BAD_INPUT and TOKEN not in stdout + stderr
    assert "store unavailable: objectstore answered HTTP 401" in stderr
    assert f"{store.url}: store unavailable" in stderr

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    code, stdout, stderr = run(capsys, "upload", base, "--store", store.url, "--objectstore-token-file",
                               token_file, "-o", tmp_path / "base.json", "--quiet")
    assert code == EXIT_SAME and TOKEN not in stdout + stderr
    code, _, stderr = run(capsys, "compare", "--base", tmp_path / "base.json", "--head", base, "--store",
                          store.url, "--objectstore-token-file", token_file, "--out", tmp_path / "o", "--quiet")
    assert code == EXIT_SAME and stderr == ""

    (tmp_path / "empty").write_text("\n")
    for bad, reason in ((tmp_path / "empty", "is empty"), (tmp_path / "nowhere", "No such file")):
        code, _, stderr = run(capsys, "upload", base, "--store", store.url, "--objectstore-token-file", bad)
        assert code == EXIT_BAD_INPUT and reason in stderr and stderr.startswith(
            "snapcompare: error: --objectstore-token-file: ")


def test_a_blob_that_cannot_be_written_exits_2_and_writes_no_manifest(tmp_path, capsys):
    base, _ = builds(tmp_path)
    (tmp_path / "m.json").write_text("the previous build's manifest")
    with serve_objectstore() as server:
        host = server.url.removeprefix("http://")
        url = f"objectstore+http://{host}/preprod?org=1&project=2&prefix=1/2"
        server.faults.inject(500, times=100, method="PUT", key=f"1/2/{sha(png(2))}")
        code, stdout, stderr = run(capsys, "upload", base, "--store", url, "--manifest-key", "m.json",
                                   "-o", tmp_path / "m.json", "--quiet")
        assert server.counters.requests("PUT", "1/2/m.json") == 0
    assert code == EXIT_ERRORED
    assert f"{url}: '{sha(png(2))}': objectstore answered HTTP 500" in stderr
    assert "3 already in the store" not in stdout and "1 failed" in stdout
    assert "manifest not written: 1 of its blobs are not in the store" in stdout and "manifest: " not in stdout
    assert (tmp_path / "m.json").read_text() == "the previous build's manifest"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base", "head", "m.json"]  # nothing staged is left


def test_a_store_that_cannot_be_used_writes_no_manifest(tmp_path, capsys):
    base, _ = builds(tmp_path)
    with serve_objectstore(token="s3cr3t") as server:  # no token given: every request is refused
        url = f"objectstore+{server.url}/preprod?org=1&project=2&prefix=1/2"
        code, stdout, stderr = run(capsys, "upload", base, "--store", url, "-o", tmp_path / "m.json", "--quiet")
    assert code == EXIT_BAD_INPUT and "store unavailable" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base", "head"]


def test_an_output_that_cannot_be_written_fails_before_any_upload(tmp_path, capsys):
    base, _ = builds(tmp_path)
    store = tmp_path / "store"
    store.mkdir()
    code, _, stderr = run(capsys, "upload", base, "--store", store, "-o", tmp_path / "nowhere" / "m.json")
    assert code == EXIT_BAD_INPUT
    assert stderr == f"snapcompare: error: -o: {tmp_path / 'nowhere' / 'm.json'}: No such file or directory\n"
    assert list(store.iterdir()) == []


def test_upload_needs_a_store_and_a_folder(tmp_path, capsys):
    code, _, stderr = run(capsys, "upload", tmp_path)
    assert code == EXIT_BAD_INPUT and "upload needs a blob store" in stderr
    code, _, stderr = run(capsys, "upload", tmp_path / "nowhere", "--store", str(tmp_path))
    assert code == EXIT_BAD_INPUT and "nowhere" in stderr
    code, _, stderr = run(capsys, "upload", tmp_path, "--store", str(tmp_path), "--manifest-key", "../up")
    assert code == EXIT_BAD_INPUT and "--manifest-key: invalid key" in stderr


def test_a_folder_of_no_images_is_no_complete_build(tmp_path, capsys):
    # A screenshot step that made nothing must not become the base every later image is added to.
    (tmp_path / "empty").mkdir()
    (tmp_path / "store").mkdir()
    commit = "1" * 40
    code, _, stderr = run(capsys, "upload", tmp_path / "empty", "--store", tmp_path / "store", "--commit", commit)
    assert code == EXIT_BAD_INPUT
    assert stderr == (f"snapcompare: error: {tmp_path / 'empty'}: no image to upload: a build of none would make "
                      "every image of a later comparison added (pass --selective for a build that uploads none)\n")
    assert list((tmp_path / "store").iterdir()) == []
    code, _, _ = run(capsys, "upload", tmp_path / "empty", "--store", tmp_path / "store", "--commit", commit,
                     "--selective", "--quiet")
    assert code == EXIT_SAME and (tmp_path / "store" / "builds" / commit / "build.json").is_file()


def test_ignore_in_writes_regions_into_the_manifest_in_the_file_and_the_store(tmp_path, capsys):
    folder = write_folder(tmp_path / "shots", {"home.png": png(1), "deep/settings.png": png(2)})
    store = tmp_path / "store"
    store.mkdir()

    code, _, _ = run(capsys, "upload", folder, "--store", store, "-o", tmp_path / "m.json",
                     "--manifest-key", "m.json", "--ignore-in", "deep/*=0:0-9:9,20:20-29:29", "--quiet")

    assert code == EXIT_SAME
    written = (tmp_path / "m.json").read_bytes()
    assert (store / "m.json").read_bytes() == written
    images = json.loads(written)["images"]
    assert images["deep/settings.png"]["ignore_regions"] == [
        {"x1": 0, "y1": 0, "x2": 9, "y2": 9}, {"x1": 20, "y1": 20, "x2": 29, "y2": 29}]
    assert "ignore_regions" not in images["home.png"]


def test_a_symlink_out_of_the_folder_is_left_out_and_named_unless_followed(tmp_path, capsys):
    folder, store = tmp_path / "shots", tmp_path / "store"
    write_folder(folder, {"home.png": png(1)})
    store.mkdir()
    (tmp_path / "outside.png").write_bytes(png(2))
    (folder / "leak.png").symlink_to(tmp_path / "outside.png")

    code, stdout, stderr = run(capsys, "upload", folder, "--store", store, "-o", tmp_path / "m.json")

    assert code == EXIT_ERRORED and "left out leak.png" in stderr
    assert "left out of the manifest: 1 files" in stdout
    assert set(load_manifest(tmp_path / "m.json").images) == {"home.png"}
    assert {p.name for p in store.iterdir()} == {sha(png(1))}

    code, _, _ = run(capsys, "upload", folder, "--store", store, "-o", tmp_path / "m.json",
                     "--follow-symlinks", "--quiet")

    assert code == EXIT_SAME
    assert set(load_manifest(tmp_path / "m.json").images) == {"home.png", "leak.png"}
    assert sha(png(2)) in {p.name for p in store.iterdir()}


@pytest.fixture
def folder_store(tmp_path) -> Store:
    root = tmp_path / "folder-store"
    root.mkdir()
    return Store(str(root), lambda: 0)


@pytest.mark.parametrize("kind", ["s3", "gcs", "objectstore", "folder"])
def test_wrong_bytes_stored_under_a_hash_are_rewritten(request, kind, tmp_path, capsys):
    store = request.getfixturevalue({"s3": "s3_store", "gcs": "gcs_store", "objectstore": "objectstore_with_token",
                                     "folder": "folder_store"}[kind])
    base, _ = builds(tmp_path)
    key, right = sha(png(2)), png(2)
    wrong = bytes(reversed(right))  # the right size: only a checksum or the bytes tell
    with fetcher_from_url(store.url, token=store.token) as fetcher:
        fetcher.put(key, wrong, "image/png")
        # objectstore keeps no checksum: its blobs are read back only when asked to
        options = ["--verify-existing"] if kind == "objectstore" else []
        code, stdout, _ = run(capsys, "upload", base, "--store", store.url, "--quiet", *options)
        assert code == EXIT_SAME
        assert "uploaded 4 blobs (" in stdout and ", 1 of them over other bytes stored under their hash" in stdout
        assert fetcher.fetch(key) == right

        fetcher.put(key, wrong, "image/png")
        code, stdout, _ = run(capsys, "upload", base, "--store", store.url, "--quiet")
    if kind == "objectstore":
        assert "4 already in the store (4 unverified: the store keeps no checksum; --verify-existing" in stdout
    else:
        assert "uploaded 1 blobs (" in stdout and "; 3 already in the store in " in stdout


def test_max_memory_bounds_upload_and_an_image_larger_than_it_goes_alone(tmp_path, capsys):
    base, _ = builds(tmp_path)
    store = tmp_path / "store"
    store.mkdir()
    code, stdout, _ = run(capsys, "upload", base, "--store", store, "--max-memory", "100", "--workers", "8",
                          "--quiet")
    assert code == EXIT_SAME and stdout.startswith("snapcompare: uploaded 4 blobs (")
    assert sorted(p.name for p in store.iterdir()) == sorted(
        {sha(png(i)) for i in (1, 2, 3)} | {sha(png(4, (120, 80)))}
    )
    code, _, stderr = run(capsys, "upload", base, "--store", store, "--max-memory", "lots")
    assert code == EXIT_BAD_INPUT and "--max-memory" in stderr


@pytest.mark.parametrize("manifests", ["files", "store keys"])
def test_a_server_without_batches_is_compared_one_blob_a_request_and_the_reports_say_so(manifests, tmp_path, capsys):
    base, head = builds(tmp_path)
    with serve_objectstore() as server:
        url = f"objectstore+{server.url}/preprod?org=1&project=2&prefix=1/2"
        for side, folder in (("base", base), ("head", head)):
            code, _, stderr = run(capsys, "upload", folder, "--store", url, "-o", tmp_path / f"{side}.json",
                                  "--manifest-key", f"manifests/{side}.json", "--quiet")
            assert code == EXIT_SAME, stderr
        server.faults.inject(404, times=1000, method="BATCH")  # an objectstore from before the batch route
        sides = ([tmp_path / "base.json", tmp_path / "head.json"] if manifests == "files"
                 else ["store:manifests/base.json", "store:manifests/head.json"])
        code, _, stderr = run(capsys, "compare", "--base", sides[0], "--head", sides[1], "--store", url,
                              "--out", tmp_path / "out", "--quiet")
    assert code == EXIT_DIFFERENCES, stderr
    note = read_comparison(tmp_path / "out")["stats"]["fetch_batch_fallback"]
    assert note.startswith("objectstore answered HTTP 404 to a batch request")
    assert note in (tmp_path / "out" / "report.html").read_text()
