"""Chunks on a real Dask LocalCluster (2 worker processes) against moto S3 and objectstore."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import boto3
import psutil
import pytest

distributed = pytest.importorskip("distributed")

from distributed import Client, LocalCluster  # noqa: E402
from distributed.diagnostics.plugin import SchedulerPlugin  # noqa: E402
from distributed.protocol import pickle as dask_pickle  # noqa: E402

from compare.cli import EXIT_ERRORED, exit_code, main  # noqa: E402
from compare.demo import generate_demo  # noqa: E402
from compare.engine.chunks import plan, worker_fetcher  # noqa: E402
from compare.engine.distributed import run_on_cluster  # noqa: E402
from compare.engine.local import run_comparison  # noqa: E402
from compare.inputs.manifest import load_manifest  # noqa: E402
from compare.model import CompareOptions, Reason, Resources, Status  # noqa: E402
from compare.output.artifacts import ArtifactWriter  # noqa: E402
from compare.output.results_store import SentryLayout, finalize_from_store  # noqa: E402
from compare.output.sentry_keys import path_stem  # noqa: E402
from fetchers import StoreUnavailable, fetcher_from_url  # noqa: E402
from fetchers.backends.objectstore import TOKEN_ENV as OBJECTSTORE_TOKEN_ENV  # noqa: E402
from testing.objectstore import DEFAULT_SCOPES, DEFAULT_USECASE, serve_objectstore  # noqa: E402
from testing.proxy import LatencyProxy  # noqa: E402
from testing.s3 import REGION  # noqa: E402
from testing.waiting import wait_until  # noqa: E402
from tests.sentry_models import ComparisonManifest  # noqa: E402

from .helpers import png  # noqa: E402

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[3]
AWS_SECRET = f"aws-secret-{uuid.uuid4().hex}"
OBJECTSTORE_TOKEN = f"objectstore-token-{uuid.uuid4().hex}"
OPTIONS = CompareOptions()
RESOURCES = Resources(workers=1, fetch_workers=2, max_memory=128 * 1024 * 1024)
SMALL_CHUNKS = 2 * 60 * 40  # two of the test's pairs per chunk


@pytest.fixture(scope="module")
def cluster(s3_server, tmp_path_factory):
    """Two single-threaded worker processes whose environment holds the stores' credentials."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
            env.delenv(name, raising=False)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
        env.setenv("AWS_CONFIG_FILE", str(tmp_path_factory.mktemp("aws") / "none"))
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path_factory.mktemp("aws") / "none"))
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        env.setenv(OBJECTSTORE_TOKEN_ENV, OBJECTSTORE_TOKEN)
        children_before = {p.pid for p in psutil.Process().children(recursive=True)}
        threads_before = set(threading.enumerate())
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as running:
            yield running
        # multiprocessing's resource tracker lives as long as this process, by design.
        leftover = [p for p in psutil.Process().children(recursive=True)
                    if p.pid not in children_before and p.status() != psutil.STATUS_ZOMBIE
                    and not any("resource_tracker" in part for part in p.cmdline())]
        assert not leftover, f"worker processes left running: {leftover}"
        # Dask keeps one offload thread per process for good; nothing else may stay behind. The
        # threads watching worker processes end just after the cluster closes: they get a while.
        def new_threads() -> list[threading.Thread]:
            return [t for t in set(threading.enumerate()) - threads_before if not t.name.startswith("Dask-Offload")]

        with contextlib.suppress(AssertionError):
            wait_until(lambda: not new_threads())
        threads = new_threads()
        assert not threads, f"threads left running: {threads}"


@pytest.fixture(scope="module")
def objectstore(cluster):
    with serve_objectstore(token=OBJECTSTORE_TOKEN) as server:
        yield server


class Builds:
    """Base and head manifests of diffed, shared, corrupt, missing and decided images."""

    def __init__(self, root: Path) -> None:
        self.blobs: dict[str, bytes] = {}
        shared_base = png(60, 40)
        base, head = {}, {}
        for i in range(8):
            base[f"screen-{i}.png"] = shared_base if i < 4 else png(60, 40, colour=(i, 40, 90))
            head[f"screen-{i}.png"] = png(60, 40, mark=(3 * i, 5), colour=base_colour(i))
        head["screen-7.png"] = base["screen-7.png"][:60]  # truncated: errors in decoding
        base["same.png"] = head["same.png"] = png(30, 30)
        base["copy-a.png"] = base["copy-b.png"] = png(50, 20)
        head["copy-a.png"] = head["copy-b.png"] = png(50, 20, mark=(1, 1))
        base["gone.png"] = png(20, 20, colour=(1, 2, 3))
        head["new.png"] = png(20, 20, colour=(3, 2, 1))
        missing = hashlib.sha256(b"never uploaded").hexdigest()
        self.base = self._write(root / "base.json", base)
        self.head = self._write(root / "head.json", head, {"lost.png": missing})
        base_manifest = json.loads(self.base.read_text())
        base_manifest["images"]["lost.png"] = base_manifest["images"]["screen-5.png"]
        self.base.write_text(json.dumps(base_manifest))

    def _write(self, path: Path, images: dict[str, bytes], extra: dict[str, str] | None = None) -> Path:
        entries = {}
        for name, data in images.items():
            key = hashlib.sha256(data).hexdigest()
            self.blobs[key] = data
            entries[name] = {"content_hash": key}
        entries.update({name: {"content_hash": key} for name, key in (extra or {}).items()})
        path.write_text(json.dumps({"images": entries}))
        return path


def base_colour(i: int) -> tuple[int, int, int]:
    return (20, 90, 200) if i < 4 else (i, 40, 90)


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> Builds:
    return Builds(tmp_path_factory.mktemp("builds"))


@pytest.fixture(scope="module")
def s3_url(cluster, s3_server, builds) -> str:
    bucket = s3_server.create_bucket(builds.blobs)
    return f"s3://{bucket}"


@pytest.fixture(scope="module")
def objectstore_url(objectstore, builds) -> str:
    for key, data in builds.blobs.items():
        objectstore.put(key, data)
    query = "&".join(f"{k}={v}" for k, v in DEFAULT_SCOPES.items())
    return f"objectstore+{objectstore.url}/{DEFAULT_USECASE}?{query}"


def report_without_run_figures(out: Path) -> dict:
    report = json.loads((out / "comparison.json").read_text())
    for key in ("stats", "base_source", "head_source"):
        report.pop(key)
    return report


def files_under(out: Path) -> dict[str, bytes]:
    return {str(path.relative_to(out)): path.read_bytes() for path in sorted(out.rglob("*"))
            if path.is_file() and path.parent != out}


@pytest.mark.parametrize("store", ["s3", "objectstore"])
def test_cluster_run_writes_what_a_local_run_writes(store, request, cluster, builds, tmp_path):
    url = request.getfixturevalue(f"{store}_url")
    common = ["compare", "--allow-unsized", "--base", str(builds.base), "--head", str(builds.head), "--store", url,
              "--quiet", "--workers", "1"]
    local_code = main([*common, "--out", str(tmp_path / "local")])
    cluster_code = main([*common, "--out", str(tmp_path / "cluster"), "--scheduler", cluster.scheduler_address])
    assert local_code == cluster_code == EXIT_ERRORED
    local, remote = report_without_run_figures(tmp_path / "local"), report_without_run_figures(tmp_path / "cluster")
    assert remote == local
    assert {name: image["status"] for name, image in local["images"].items()}["screen-0.png"] == "changed"
    assert local["images"]["lost.png"]["reason"] == "image_fetch_failed"
    masks = files_under(tmp_path / "cluster")
    assert masks == files_under(tmp_path / "local")
    assert any(name.startswith("diff/") for name in masks) and any(name.startswith("previews/") for name in masks)


def local_run(builds: Builds, url: str, out: Path):
    with worker_fetcher(url, RESOURCES) as fetcher:
        return run_comparison(load_manifest(builds.base), load_manifest(builds.head), fetcher, OPTIONS,
                              resources=RESOURCES, artifacts=ArtifactWriter(out))


def test_a_killed_worker_changes_nothing(cluster, builds, objectstore, tmp_path):
    # Slow fetches keep chunks running long enough to kill a worker in the middle of one.
    with LatencyProxy("127.0.0.1", int(objectstore.url.rsplit(":", 1)[1]), rtt=0.15) as proxy:
        query = "&".join(f"{k}={v}" for k, v in DEFAULT_SCOPES.items())
        url = f"objectstore+{proxy.url}/{DEFAULT_USECASE}?{query}"
        for key, data in builds.blobs.items():
            objectstore.put(key, data)
        expected = local_run(builds, url, tmp_path / "local")
        the_plan = plan(load_manifest(builds.base), load_manifest(builds.head), OPTIONS,
                        max_chunk_pixels=SMALL_CHUNKS)
        assert len(the_plan.chunks) >= 4
        killed = []
        with Client(cluster.scheduler_address) as observer:
            pids = observer.run(os.getpid)

            def kill_a_busy_worker(progress) -> None:
                if killed or progress.pairs_done == 0:
                    return
                busy = [addr for addr, ws in list(cluster.scheduler.workers.items()) if ws.processing]
                if busy:
                    killed.append(busy[0])
                    os.kill(pids[busy[0]], signal.SIGKILL)

            comparison = run_on_cluster(the_plan, url, cluster.scheduler_address,
                                        artifacts=ArtifactWriter(tmp_path / "cluster"), progress=kill_a_busy_worker)
            observer.wait_for_workers(2, timeout=60)
    assert killed, "no chunk was running when the first one finished"
    assert comparison.images == expected.images
    assert files_under(tmp_path / "cluster") == files_under(tmp_path / "local")


def _fail_chunks_with(name: str, attempts_file: str) -> None:
    """Runs on each worker: chunks holding image ``name`` raise, and each attempt is logged."""
    from compare.engine import distributed as on_worker

    original = getattr(on_worker, "_original_run_chunk", on_worker.run_chunk)

    def failing(chunk, store, options, resources):
        if any(candidate.name == name for candidate in chunk.candidates):
            with open(attempts_file, "a") as log:
                log.write(f"{chunk.chunk_index}\n")
            raise RuntimeError("this chunk always fails")
        return original(chunk, store, options, resources)

    on_worker._original_run_chunk = original
    on_worker.run_chunk = failing


def _restore_run_chunk() -> None:
    from compare.engine import distributed as on_worker

    if hasattr(on_worker, "_original_run_chunk"):
        on_worker.run_chunk = on_worker._original_run_chunk
        del on_worker._original_run_chunk


def test_a_chunk_that_always_fails_errors_only_its_images(cluster, builds, s3_url, tmp_path):
    expected = local_run(builds, s3_url, tmp_path / "local")
    the_plan = plan(load_manifest(builds.base), load_manifest(builds.head), OPTIONS, max_chunk_pixels=SMALL_CHUNKS)
    [doomed] = [chunk for chunk in the_plan.chunks if "screen-5.png" in {c.name for c in chunk.candidates}]
    doomed_names = {c.name for c in doomed.candidates}
    attempts = tmp_path / "attempts"
    with Client(cluster.scheduler_address) as helper:
        helper.run(_fail_chunks_with, "screen-5.png", str(attempts))
        try:
            comparison = run_on_cluster(the_plan, s3_url, cluster.scheduler_address,
                                        artifacts=ArtifactWriter(tmp_path / "cluster"), retries=2)
        finally:
            helper.run(_restore_run_chunk)
    assert attempts.read_text().split() == [str(doomed.chunk_index)] * 3
    for name, result in comparison.images.items():
        if name in doomed_names:
            assert result.status is Status.ERRORED and result.reason is Reason.CHUNK_FAILED
            assert "RuntimeError: this chunk always fails" in result.detail
        else:
            assert result == expected.images[name]
    assert exit_code(comparison) == EXIT_ERRORED
    assert comparison.stats["chunks_failed"] == 1


def test_a_store_that_cannot_be_used_ends_the_run_as_on_one_machine(cluster, builds, tmp_path):
    # On one machine this is exit 3 with --out left as it was; retrying the chunks mends nothing.
    unreachable = "objectstore+http://127.0.0.1:9/preprod?org=1&project=2&prefix=builds"
    the_plan = plan(load_manifest(builds.base), load_manifest(builds.head), OPTIONS, max_chunk_pixels=SMALL_CHUNKS)
    with pytest.raises(StoreUnavailable, match="cannot connect"):
        run_on_cluster(the_plan, unreachable, cluster.scheduler_address, artifacts=ArtifactWriter(tmp_path / "out"))


class RecordTasks(SchedulerPlugin):
    """Keeps the pickled run spec of every task the scheduler is given."""

    name = "record-tasks"

    def __init__(self) -> None:
        self.pickled: list[bytes] = []

    def update_graph(self, scheduler, *, keys, **kwargs) -> None:
        for key in keys:
            self.pickled.append(dask_pickle.dumps(scheduler.tasks[key].run_spec))


def test_no_secret_is_sent_to_the_scheduler(cluster, builds, s3_url, objectstore_url, tmp_path):
    recorder = RecordTasks()
    cluster.scheduler.add_plugin(recorder)
    try:
        for number, url in enumerate((s3_url, objectstore_url)):
            comparison = run_on_cluster(
                plan(load_manifest(builds.base), load_manifest(builds.head), OPTIONS, max_chunk_pixels=SMALL_CHUNKS),
                url, cluster.scheduler_address, artifacts=ArtifactWriter(tmp_path / str(number)),
            )
            assert comparison.summary["changed"] > 0
    finally:
        cluster.scheduler.remove_plugin(name=RecordTasks.name)
    sent = b"".join(recorder.pickled)
    assert s3_url.encode() in sent and objectstore_url.encode() in sent  # the inspection sees the arguments
    for secret in (AWS_SECRET, OBJECTSTORE_TOKEN):
        assert secret.encode() not in sent
        assert secret.encode("utf-16-le") not in sent


def test_an_interrupt_cancels_the_run_and_stops_its_cluster(builds, objectstore, objectstore_url, tmp_path):
    port = int(objectstore.url.rsplit(":", 1)[1])
    with LatencyProxy("127.0.0.1", port, rtt=0.5) as proxy:
        url = objectstore_url.replace(objectstore.url, proxy.url)
        command = [sys.executable, "-c", "import sys; from compare.cli import main; sys.exit(main())",
                   "compare", "--allow-unsized", "--base", str(builds.base), "--head", str(builds.head), "--store", url,
                   "--out", str(tmp_path / "out"), "--fetch-workers", "1", "--workers", "1",
                   "--scheduler", "local:1"]
        run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, OBJECTSTORE_TOKEN_ENV: OBJECTSTORE_TOKEN})
        try:
            for _ in range(600):  # until a worker fetches through the proxy (the client never does)
                if proxy.requests_seen or run.poll() is not None:
                    break
                time.sleep(0.1)
            assert proxy.requests_seen, run.communicate()
            processes = psutil.Process(run.pid).children(recursive=True)
            run.send_signal(signal.SIGINT)
            _, stderr = run.communicate(timeout=120)
        finally:
            run.kill()
    assert run.returncode == 130, stderr
    assert b"interrupted" in stderr
    assert not (tmp_path / "out" / "comparison.json").exists()
    _, alive = psutil.wait_procs(processes, timeout=30)
    assert not [p for p in alive if not any("resource_tracker" in part for part in p.cmdline())]


def test_a_worker_runs_each_chunk_on_one_diff_thread_whatever_the_client_has(cluster, builds, s3_url, tmp_path):
    the_plan = plan(load_manifest(builds.base), load_manifest(builds.head), OPTIONS)
    assert len(the_plan.chunks) == 1 and len(the_plan.chunks[0].tasks()) >= 8
    comparison = run_on_cluster(the_plan, s3_url, cluster.scheduler_address, artifacts=ArtifactWriter(tmp_path))
    assert comparison.summary["changed"] > 0
    # The chunk's pairs are ready together: a pool of more threads would start more than one.
    assert comparison.stats["diff_threads_per_chunk"] == 1


def test_each_worker_reuses_one_fetcher_per_store(cluster, builds, objectstore, objectstore_url, tmp_path):
    url = objectstore_url.replace("127.0.0.1", "localhost")  # a store URL no worker has opened yet
    the_plan = plan(load_manifest(builds.base), load_manifest(builds.head), OPTIONS, max_chunk_pixels=SMALL_CHUNKS)
    assert len(the_plan.chunks) > 8
    before = objectstore.counters.connections
    comparison = run_on_cluster(the_plan, url, cluster.scheduler_address, artifacts=ArtifactWriter(tmp_path))
    opened = objectstore.counters.connections - before
    assert comparison.summary["changed"] > 0
    # A fetcher per chunk would open at least one connection per chunk.
    assert 0 < opened < len(the_plan.chunks)


@pytest.mark.parametrize("scheduler", ["local:0", "local:many", "http://host:8786"])
def test_a_malformed_scheduler_is_bad_input(scheduler, builds, s3_url, tmp_path, capsys):
    code = main(["compare", "--allow-unsized", "--base", str(builds.base), "--head", str(builds.head),
                 "--store", s3_url, "--out", str(tmp_path), "--quiet", "--scheduler", scheduler])
    assert code == 3
    assert f"--scheduler {scheduler!r}" in capsys.readouterr().err


def _image_folders(tmp_path: Path) -> tuple[Path, Path]:
    for side in ("base", "head"):
        (tmp_path / side).mkdir()
        (tmp_path / side / "a.png").write_bytes(png(10, 10, mark=(1, 1) if side == "head" else None))
        (tmp_path / side / "same.png").write_bytes(png(12, 12))
    (tmp_path / "head" / "new.png").write_bytes(png(8, 8, mark=(2, 2)))
    return tmp_path / "base", tmp_path / "head"


def test_image_folders_on_a_remote_cluster_are_refused_saying_what_to_do(cluster, tmp_path, capsys):
    base, head = _image_folders(tmp_path)
    code = main(["compare", "--base", str(base), "--head", str(head),
                 "--out", str(tmp_path / "out"), "--quiet", "--scheduler", cluster.scheduler_address])
    assert code == 3
    err = capsys.readouterr().err
    assert f"the workers cannot read the folder {str(base)!r}" in err
    assert "snapcompare upload DIR --store URL -o build.json" in err


def test_image_folders_run_on_local_workers_as_on_one_machine(tmp_path, monkeypatch):
    base, head = _image_folders(tmp_path)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    reports = {}
    for run, extra in (("here", []), ("cluster", ["--scheduler", "local:1"])):
        out = tmp_path / run
        code = main(["compare", "--base", str(base), "--head", str(head), "--out", str(out), "--quiet",
                     "--workers", "1", *extra])
        assert code == 1
        report = json.loads((out / "comparison.json").read_text())
        reports[run] = {name: (image["status"], image["changed_pixels"]) for name, image in report["images"].items()}
        masks = sorted(path.read_bytes() for path in (out / "diff").iterdir())
        reports[run, "masks"] = masks
    assert reports["cluster"] == reports["here"]
    assert reports["cluster"]["a.png"] == ("changed", 9)
    assert reports["cluster", "masks"] == reports["here", "masks"]
    # The blobs linked for the workers are gone with the run.
    assert not list((tmp_path / "tmp").glob("snapcompare-*"))


def test_a_folder_and_a_manifest_on_a_cluster_are_refused_saying_what_to_do(builds, s3_url, tmp_path, capsys):
    base, _ = _image_folders(tmp_path)
    code = main(["compare", "--allow-unsized", "--base", str(base), "--head", str(builds.head),
                 "--store", s3_url, "--out", str(tmp_path / "out"), "--quiet", "--scheduler", "local:1"])
    assert code == 3
    err = capsys.readouterr().err
    assert f"({str(base)!r} is a folder)" in err and "snapcompare upload DIR" in err


def stored_under(s3_server, bucket: str, prefix: str) -> dict[str, bytes]:
    client = boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name=REGION,
                          aws_access_key_id="testing", aws_secret_access_key=AWS_SECRET)
    try:
        listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        return {item["Key"].removeprefix(prefix): client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                for item in listed}
    finally:
        client.close()


def test_workers_write_results_under_sentrys_keys_and_finalize_runs_again_from_the_store(
    cluster, s3_server, s3_url, builds, tmp_path
):
    results_url, comparison_dir = f"{s3_url}/1/2", "1/2/5/3/"
    bucket = s3_url.removeprefix("s3://")
    local_command = ["compare", "--allow-unsized", "--base", str(builds.base), "--head", str(builds.head),
                     "--store", s3_url, "--quiet", "--workers", "1"]
    command = [*local_command, "--scheduler", cluster.scheduler_address,
               "--results-store", results_url, "--head-artifact-id", "5", "--base-artifact-id", "3"]
    assert main([*command, "--out", str(tmp_path / "out")]) == EXIT_ERRORED
    assert main([*local_command, "--out", str(tmp_path / "local")]) == EXIT_ERRORED
    stored = stored_under(s3_server, bucket, comparison_dir)
    chunks = len(json.loads(stored["plan.json"])["chunks"])
    comparison = json.loads(stored["comparison.json"])
    ComparisonManifest.model_validate(comparison)
    local = json.loads((tmp_path / "local" / "comparison.json").read_text())
    diffed = sorted(name for name, image in local["images"].items() if image["diff_mask_key"])
    assert set(stored) == {"plan.json", "comparison.json", *(f"chunks/{i}.json" for i in range(chunks)),
                           *(f"diff/{path_stem(name)}.png" for name in diffed)}
    for name, image in comparison["images"].items():
        assert image["status"] == local["images"][name]["status"]
        if name in diffed:
            assert image["diff_mask_key"] == f"{comparison_dir}diff/{path_stem(name)}.png"
            local_mask = (tmp_path / "local" / local["images"][name]["diff_mask_key"]).read_bytes()
            assert stored[f"diff/{path_stem(name)}.png"] == local_mask
    # The masks stayed on the workers: --out has the previews and the reports only.
    assert not (tmp_path / "out" / "diff").exists()
    assert any((tmp_path / "out" / "previews").iterdir())

    # Every chunk runs again: the same objects, byte for byte, but comparison.json's run figures.
    assert main([*command, "--out", str(tmp_path / "again")]) == EXIT_ERRORED
    again = stored_under(s3_server, bucket, comparison_dir)
    assert {k: v for k, v in again.items() if k != "comparison.json"} == {
        k: v for k, v in stored.items() if k != "comparison.json"}
    assert json.loads(again["comparison.json"])["images"] == comparison["images"]

    # finalize from the store alone; a chunk whose result is gone errors its own images.
    lost = json.loads(stored[f"chunks/{chunks - 1}.json"])["images"]
    with fetcher_from_url(results_url) as store:
        store.put(f"5/3/chunks/{chunks - 1}.json", b"{not json", "application/json")
        store.put("5/3/comparison.json", b"", "application/json")
        rebuilt = finalize_from_store(store, SentryLayout.of(store, CompareOptions(head_artifact_id=5,
                                                                                   base_artifact_id=3)))
    written = json.loads(stored_under(s3_server, bucket, comparison_dir)["comparison.json"])
    ComparisonManifest.model_validate(written)
    assert written["summary"] == rebuilt.summary
    for name, image in written["images"].items():
        if name in lost:
            assert (image["status"], image["reason"]) == ("errored", "chunk_result_unreadable")
        else:
            assert image == comparison["images"][name]


def test_a_mask_a_worker_cannot_write_errors_only_its_image(cluster, s3_server, s3_url, builds, tmp_path):
    bucket = s3_url.removeprefix("s3://")
    s3_server.faults.set("denied", count=1000, match="/1/2/6/3/diff/screen-0.png", method="PUT")
    try:
        code = main(["compare", "--allow-unsized", "--base", str(builds.base), "--head", str(builds.head),
                     "--store", s3_url, "--quiet", "--workers", "1", "--scheduler", cluster.scheduler_address,
                     "--results-store", f"{s3_url}/1/2", "--head-artifact-id", "6", "--base-artifact-id", "3",
                     "--out", str(tmp_path / "out")])
    finally:
        s3_server.faults.clear()
    assert code == EXIT_ERRORED
    stored = stored_under(s3_server, bucket, "1/2/6/3/")
    chunks = json.loads(stored["plan.json"])["chunks"]
    assert {f"chunks/{chunk['chunk_index']}.json" for chunk in chunks} <= set(stored)
    assert "diff/screen-0.png" not in stored
    comparison = json.loads(stored["comparison.json"])
    ComparisonManifest.model_validate(comparison)
    for name, image in comparison["images"].items():
        if name == "screen-0.png":
            assert (image["status"], image["reason"], image["diff_mask_key"]) == (
                "errored", "image_processing_failed", None)
            assert "its diff mask could not be written to the results store" in image["detail"]
        else:
            assert image["reason"] != "chunk_failed"


def test_the_demo_on_a_cluster_gives_the_local_report(cluster, tmp_path):
    builds = generate_demo(tmp_path / "demo")
    common = ["compare", "--base", str(builds.base_manifest), "--head", str(builds.head_manifest),
              "--store", str(builds.store), "--quiet"]

    local_code = main([*common, "--out", str(tmp_path / "local")])
    cluster_code = main([*common, "--out", str(tmp_path / "cluster"),
                         "--scheduler", cluster.scheduler_address])

    assert local_code == cluster_code == EXIT_ERRORED  # the demo plants a corrupt image
    assert report_without_run_figures(tmp_path / "cluster") == report_without_run_figures(tmp_path / "local")
    assert files_under(tmp_path / "cluster") == files_under(tmp_path / "local")


def test_a_token_file_reaches_the_local_workers(builds, objectstore, objectstore_url, tmp_path,
                                                              monkeypatch):
    monkeypatch.delenv(OBJECTSTORE_TOKEN_ENV)
    token_file = tmp_path / "token"
    token_file.write_text(OBJECTSTORE_TOKEN)
    common = ["compare", "--allow-unsized", "--base", str(builds.base), "--head", str(builds.head),
              "--store", objectstore_url, "--quiet", "--workers", "1", "--objectstore-token-file", str(token_file)]

    here = main([*common, "--out", str(tmp_path / "here")])
    on_workers = main([*common, "--out", str(tmp_path / "cluster"), "--scheduler", "local:1"])

    assert here == on_workers
    assert report_without_run_figures(tmp_path / "cluster") == report_without_run_figures(tmp_path / "here")
    images = json.loads((tmp_path / "cluster" / "comparison.json").read_text())["images"]
    assert not [name for name, image in images.items() if image["reason"] == "chunk_failed"]
