"""``snapcompare`` against hostile inputs and a hostile world, end to end: formats that would
start programs, repeatable error text, EXIF orientation, signals, a second run, a read-only or
full output folder, and names with terminal control characters."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from compare import cli
from compare.builds import compare_builds
from compare.output.artifacts import LOCK_FILE, ArtifactWriter
from compare.output.reports import write_reports
from testing.files import make_fifo, make_too_long_paths, make_zero_device
from tests.compare.helpers import png, read_comparison, run, sha, snapshot, statuses, write_folder

pytestmark = pytest.mark.integration

EPS_LOOP = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{ } loop\nshowpage\n%%EOF\n"


def builds(tmp_path: Path, head_seed: int = 2) -> tuple[Path, Path]:
    """A base and a head folder: one changed, one unchanged and three undecodable images."""
    def broken(side: int) -> dict[str, bytes]:  # each side's own bytes, so that they are decoded
        good = png(side)
        return {"eps.png": EPS_LOOP + b"%" + bytes([side]), "html.png": b"<html>502 Bad Gateway</html>" * side,
                "cut.png": good[: len(good) // 2]}

    base = write_folder(tmp_path / "base", {"a.png": png(1), "b.png": png(3), **broken(1)})
    head = write_folder(tmp_path / f"head{head_seed}", {"a.png": png(head_seed), "b.png": png(3), **broken(2)})
    return base, head


def without_timings(report: dict) -> dict:
    """The report without the figures of how the run went in time (durations, peak concurrency)."""
    report = dict(report)
    report["stats"] = {k: v for k, v in report["stats"].items() if not any(w in k for w in ("time", "peak"))}
    return report


def test_the_same_comparison_twice_gives_the_same_report(tmp_path, capsys, monkeypatch):
    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda *args, **kwargs: started.append(args))
    base, head = builds(tmp_path)
    reports = []
    for out in (tmp_path / "out", tmp_path / "out", tmp_path / "other"):
        code, _, _ = run(capsys, "compare", "--base", base, "--head", head, "--out", out, "--quiet")
        assert code == cli.EXIT_ERRORED
        reports.append(without_timings(read_comparison(out)))

    assert reports[0] == reports[1] == reports[2]
    assert started == []  # Ghostscript never ran on the EPS
    images = reports[0]["images"]
    assert statuses(reports[0])["a.png"] == "changed"
    for name in ("eps.png", "html.png", "cut.png"):
        assert images[name]["reason"] == "image_processing_failed"
        assert name in images[name]["detail"]
    assert "not a supported image format" in images["eps.png"]["detail"]
    assert "PS-Adobe" not in json.dumps(reports[0]) and "Bad Gateway" not in json.dumps(reports[0])


def upright_and_rotated() -> tuple[bytes, bytes]:
    upright = Image.new("RGB", (48, 32), (250, 250, 250))  # blocks on JPEG's 16-pixel grid survive
    upright.paste((250, 10, 10), (0, 0, 16, 16))
    upright.paste((10, 10, 250), (32, 16, 48, 32))
    exif = Image.Exif()
    exif[0x0112] = 6  # "turn 90 degrees clockwise to view"
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    encoded = []
    for image, extra in ((upright, {}), (stored, {"exif": exif.tobytes()})):
        out = io.BytesIO()
        image.save(out, "JPEG", quality=100, subsampling=0, **extra)
        encoded.append(out.getvalue())
    return encoded[0], encoded[1]


def test_a_photo_stored_rotated_that_displays_the_same_is_unchanged(tmp_path, capsys):
    upright, rotated = upright_and_rotated()
    base = write_folder(tmp_path / "base", {"photo.jpg": upright})
    head = write_folder(tmp_path / "head", {"photo.jpg": rotated})

    code, _, _ = run(capsys, "compare", "--base", base, "--head", head, "--out", tmp_path / "out", "--quiet")
    assert code == cli.EXIT_SAME
    image = read_comparison(tmp_path / "out")["images"]["photo.jpg"]
    assert image["status"] == "unchanged"
    assert (image["after_width"], image["after_height"]) == (48, 32)

    code, _, _ = run(capsys, "compare", "--base", base, "--head", head, "--out", tmp_path / "raw", "--quiet",
                     "--no-exif-orientation")
    assert code == cli.EXIT_DIFFERENCES
    image = read_comparison(tmp_path / "raw")["images"]["photo.jpg"]
    assert (image["status"], image["after_width"], image["after_height"]) == ("changed", 32, 48)


# Runs snapcompare with one function wrapped so that it sends the process a signal.
SIGNALLING = textwrap.dedent("""
    import importlib, os, signal, sys
    module, name, when, number, only = sys.argv[1:6]
    owner = importlib.import_module(module)
    path = name.split(".")
    if len(path) == 2:
        owner = getattr(owner, path[0])
    real = getattr(owner, path[-1])
    def wrapped(*args, **kwargs):
        hit = not only or only in map(str, args)  # all calls, or those with this argument
        if when == "before" and hit:
            os.kill(os.getpid(), int(number))
        result = real(*args, **kwargs)
        if when == "after" and hit:
            os.kill(os.getpid(), int(number))
        return result
    setattr(owner, path[-1], wrapped)
    from compare.cli import main
    sys.exit(main(sys.argv[6:]))
""")


def run_signalled(
    where: tuple[str, str, str], sig: int, *args: str | Path, only: str = ""
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SIGNALLING, *where, str(int(sig)), only, *map(str, args)],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2],
    )


@pytest.mark.parametrize(("sig", "code", "word"), [
    (signal.SIGINT, cli.EXIT_INTERRUPTED, "interrupted"),
    (signal.SIGTERM, cli.EXIT_TERMINATED, "terminated"),
])
@pytest.mark.parametrize("where", [
    ("compare.output.artifacts", "ArtifactWriter.mask", "after"),  # a new mask is on disk
    ("compare.output.reports", "iter_html", "before"),  # while the reports are staged
])
def test_a_signal_mid_run_leaves_the_previous_output_exactly(tmp_path, capsys, sig, code, word, where):
    base, head = builds(tmp_path)
    out = tmp_path / "out"
    assert run(capsys, "compare", "--base", base, "--head", head, "--out", out, "--quiet")[0] == cli.EXIT_ERRORED
    before = snapshot(out)
    _, other_head = builds(tmp_path, head_seed=7)

    result = run_signalled(where, sig, "compare", "--base", base, "--head", other_head, "--out", out, "--quiet")

    assert result.returncode == code, result.stderr
    assert result.stderr.rstrip().endswith(f"snapcompare: error: {word}")
    assert "Traceback" not in result.stderr
    assert snapshot(out) == before


def test_a_signal_while_the_reports_are_swapped_in_waits_for_the_last_one(tmp_path, capsys):
    base, head = builds(tmp_path)
    out = tmp_path / "out"
    run(capsys, "compare", "--base", base, "--head", head, "--out", out, "--quiet")
    before = snapshot(out)
    _, other_head = builds(tmp_path, head_seed=7)

    # renamed into place first of the three, once all are staged
    result = run_signalled(("os", "rename", "after"), signal.SIGTERM,
                           "compare", "--base", base, "--head", other_head, "--out", out, "--quiet",
                           only="comparison.json")

    assert result.returncode == cli.EXIT_TERMINATED, result.stderr
    fresh = tmp_path / "fresh"
    run(capsys, "compare", "--base", base, "--head", other_head, "--out", fresh, "--quiet")
    assert without_timings(read_comparison(out)) == without_timings(read_comparison(fresh))
    after = snapshot(out)
    assert all(after[report][2] != before[report][2] for report in ("report.html", "junit.xml"))
    assert str(other_head) in (out / "report.html").read_text()
    for image in read_comparison(out)["images"].values():
        for key in [image["diff_mask_key"], *(image["previews"] or {}).values()]:
            assert key is None or (out / key).is_file()
    assert not [p for p in out.rglob("*.tmp")]


def test_a_second_run_on_the_same_folder_fails_at_once(tmp_path, capsys):
    base, head = builds(tmp_path)
    out = tmp_path / "out"
    run(capsys, "compare", "--base", base, "--head", head, "--out", out, "--quiet")
    before = snapshot(out)
    with ArtifactWriter(out) as holder:
        holder.open()
        held = snapshot(out)
        code, stdout, stderr = run(capsys, "compare", "--base", base, "--head", head, "--out", out, "--quiet")
        assert snapshot(out) == held
    assert code == cli.EXIT_BAD_INPUT
    assert stderr == f"snapcompare: error: --out: {out}: in use by another snapcompare run\n"
    assert stdout == ""
    assert snapshot(out) == before and LOCK_FILE not in before


@pytest.fixture
def read_only_folder(tmp_path):
    """An empty folder nobody can write to, root included (a read-only mount when run as root)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only folder: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_read_only_out_fails_at_once_naming_it(tmp_path, capsys, read_only_folder, monkeypatch):
    base, head = builds(tmp_path)
    started = []
    monkeypatch.setattr("compare.builds.run_comparison", lambda *args, **kwargs: started.append(args))

    code, stdout, stderr = run(capsys, "compare", "--base", base, "--head", head, "--out", read_only_folder)

    assert code == cli.EXIT_BAD_INPUT
    assert stderr.startswith(f"snapcompare: error: --out: {read_only_folder}")
    assert any(words in stderr for words in ("Read-only file system", "Permission denied"))
    assert started == [] and stdout == ""
    assert list(read_only_folder.iterdir()) == []


def test_a_full_disk_fails_naming_the_file_and_keeps_the_previous_output(tmp_path, capsys, monkeypatch):
    base, head = builds(tmp_path)
    out = tmp_path / "out"
    run(capsys, "compare", "--base", base, "--head", head, "--out", out, "--quiet")
    before = snapshot(out)
    _, other_head = builds(tmp_path, head_seed=7)
    real_write = os.write

    def write(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(f"{out}/diff/"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    code, stdout, stderr = run(capsys, "compare", "--base", base, "--head", other_head, "--out", out, "--quiet")
    monkeypatch.setattr(os, "write", real_write)

    assert code == cli.EXIT_FAILED
    assert stderr.startswith(f"snapcompare: error: the comparison failed: {out}/diff/a.")
    assert stderr.rstrip().endswith(": No space left on device")
    assert snapshot(out) == before


@pytest.mark.parametrize("report", ["report.html", "junit.xml", "comparison.json"])
def test_a_folder_in_place_of_a_report_is_told_before_the_work_and_the_library_changes_nothing(
        tmp_path, capsys, report):
    base, head = builds(tmp_path)
    out = tmp_path / "out"
    run(capsys, "compare", "--base", base, "--head", head, "--out", out, "--quiet")
    (out / report).unlink()
    (out / report).mkdir()
    before = snapshot(out)
    _, other_head = builds(tmp_path, head_seed=7)

    code, stdout, stderr = run(capsys, "compare", "--base", base, "--head", other_head, "--out", out, "--quiet")
    assert (code, stdout) == (cli.EXIT_BAD_INPUT, "")
    assert stderr == f"snapcompare: error: --out: {out / report}: a folder, which a report cannot replace\n"
    assert snapshot(out) == before

    # The library, told no report names, finds it when the reports are swapped in: none is.
    with pytest.raises(IsADirectoryError, match="a report cannot replace"), ArtifactWriter(out) as writer:
        write_reports(compare_builds(base, other_head, out_dir=out, artifacts=writer), writer)
    assert snapshot(out) == before


HOSTILE = ["\x1b[31mred.png", "\u202eevil.png", "\x9b2J.png", "tab\there.png"]


def test_manifest_output_keeps_control_characters_off_the_terminal(tmp_path, capsys):
    folder = write_folder(tmp_path / "shots", {name: png(1) for name in HOSTILE})
    (folder / os.fsdecode(b"\xff.png")).write_bytes(png(2))  # a name that is not UTF-8

    code, stdout, stderr = run(capsys, "manifest", folder)

    assert code == cli.EXIT_SAME and stderr == ""
    assert all(c.isprintable() or c == "\n" for c in stdout)
    assert set(json.loads(stdout)["images"]) == {*HOSTILE, os.fsdecode(b"\xff.png")}

    target = tmp_path / "out\x1b]0;title\x07.json"
    code, _, stderr = run(capsys, "manifest", write_folder(tmp_path / "plain", {"a.png": png(1)}), "-o", target)
    assert code == cli.EXIT_SAME
    assert "\x1b" not in stderr and "\x07" not in stderr and "\\x1b]0;title\\x07" in stderr


def test_errors_naming_inputs_keep_control_characters_off_the_terminal(tmp_path, capsys):
    missing = tmp_path / "no\x1b[2Jsuch"
    code, stdout, stderr = run(capsys, "compare", "--base", missing, "--head", missing, "--out", tmp_path / "o")
    assert code == cli.EXIT_BAD_INPUT
    assert "\x1b" not in stderr and "\\x1b[2J" in stderr
    code, _, stderr = run(capsys, "manifest", missing)
    assert code == cli.EXIT_BAD_INPUT and "\x1b" not in stderr and "\\x1b[2J" in stderr


def test_an_unexpected_failure_prints_its_traceback_with_control_characters_escaped(tmp_path, capsys, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("name \x1b[2J in a message")

    monkeypatch.setattr(sys.modules["compare.cli.compare"], "compare_builds", broken)
    base, head = builds(tmp_path)
    code, _, stderr = run(capsys, "compare", "--base", base, "--head", head, "--out", tmp_path / "out")
    assert code == cli.EXIT_FAILED
    assert "Traceback" in stderr and "RuntimeError: name \\x1b[2J in a message" in stderr
    assert "\x1b" not in stderr


@pytest.mark.parametrize(("sig", "code", "word"), [
    (signal.SIGINT, cli.EXIT_INTERRUPTED, "interrupted"),
    (signal.SIGTERM, cli.EXIT_TERMINATED, "terminated"),
])
def test_a_signal_ends_a_run_whose_store_trickles_at_once(tmp_path, objectstore_server, latency_proxy,
                                                          sig, code, word):
    before, after = png(1) + os.urandom(50_000), png(2) + os.urandom(50_000)  # 40 min at a byte per 50 ms
    for blob in (before, after):
        objectstore_server.put(f"1/2/{sha(blob)}", blob, compress="none")
    manifests = {}
    for side, blob in (("base", before), ("head", after)):
        manifests[side] = tmp_path / f"{side}.json"
        manifests[side].write_text(json.dumps(
            {"images": {"home.png": {"content_hash": sha(blob), "width": 100, "height": 100}}}))
    host, port = objectstore_server.url.removeprefix("http://").rsplit(":", 1)
    proxy = latency_proxy(host, int(port))
    proxy.inject("trickle", count=1000, interval=0.05)
    store = f"objectstore+{proxy.url}/preprod?org=1&project=2&prefix=1/2"
    out = tmp_path / "out"

    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; from compare.cli import main; sys.exit(main(sys.argv[1:]))",
         "compare", "--base", manifests["base"], "--head", manifests["head"], "--store", store,
         "--out", out, "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2],
    )
    try:
        assert proxy.trickled.wait(60), "the run never fetched"
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=60)  # not the trickle: minutes; nor the deadline: 120 s
    finally:
        process.kill()
    assert process.returncode == code, stderr
    assert stderr.rstrip().endswith(f"snapcompare: error: {word}")
    assert "Traceback" not in stderr


@pytest.fixture(params=["fifo", "device", "path_max"])
def hostile_entry(request, tmp_path) -> tuple[Path, dict[str, str]]:
    """A head folder holding one good image and a hostile entry; the names left out, with why."""
    head = write_folder(tmp_path / "head", {"a.png": png(2)})
    if request.param == "fifo":
        make_fifo(head / "b.png")
        return head, {"b.png": "not a regular file (a FIFO)"}
    if request.param == "device":
        make_zero_device(head / "b.png")
        return head, {"b.png": "not a regular file (a character device)"}
    long_file, deep_folder = make_too_long_paths(head, png(3))
    return head, {long_file: "File name too long", deep_folder: "File name too long"}


def test_a_hostile_entry_in_a_folder_errors_or_leaves_out_only_itself(tmp_path, capsys, hostile_entry):
    head, left_out = hostile_entry
    base = write_folder(tmp_path / "base", {"a.png": png(1)})

    code, _, _ = run(capsys, "compare", "--base", base, "--head", head, "--out", tmp_path / "out", "--quiet")
    assert code == cli.EXIT_ERRORED
    images = read_comparison(tmp_path / "out")["images"]
    assert images["a.png"]["status"] == "changed"
    for name, reason in left_out.items():
        assert images[name]["status"] == "errored" and reason in images[name]["detail"]

    code, stdout, stderr = run(capsys, "manifest", head)
    assert code == cli.EXIT_SAME and list(json.loads(stdout)["images"]) == ["a.png"]
    assert all(f"left out {name}: " in stderr and reason in stderr for name, reason in left_out.items())

    store = tmp_path / "store"
    store.mkdir()
    code, stdout, stderr = run(capsys, "upload", head, "--store", store, "-o", tmp_path / "m.json", "--quiet")
    assert code == cli.EXIT_ERRORED and f"left out of the manifest: {len(left_out)} files" in stdout
    assert all(f"left out {name}: " in stderr for name in left_out)
    assert [p.name for p in store.iterdir()] == [sha(png(2))]


def test_a_manifest_or_folder_over_the_size_bound_exits_3_naming_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("compare.inputs.manifest.MAX_MANIFEST_IMAGES", 2)
    head = write_folder(tmp_path / "head", {"a.png": png(1), "b.png": png(2), "c.png": png(3)})
    (tmp_path / "base.json").write_text(json.dumps({"images": {
        name: {"content_hash": sha(png(1)), "width": 100, "height": 100} for name in ("a.png", "b.png", "c.png")}}))
    store = tmp_path / "store"
    store.mkdir()

    code, _, stderr = run(capsys, "compare", "--base", tmp_path / "base.json", "--head", tmp_path / "base.json",
                          "--store", store, "--out", tmp_path / "out", "--quiet")
    assert code == cli.EXIT_BAD_INPUT
    assert stderr == (
        f"snapcompare: error: {tmp_path / 'base.json'}: images: 3 entries, more than a manifest may have (2)\n"
    )
    code, _, stderr = run(capsys, "upload", head, "--store", store, "--quiet")
    assert code == cli.EXIT_BAD_INPUT
    assert stderr == f"snapcompare: error: {head}: more than 2 image files, more than a manifest may have\n"
    assert list(store.iterdir()) == []


def test_a_bug_on_one_image_errors_it_with_its_traceback_the_others_finish_and_the_run_exits_4(
        tmp_path, capsys, monkeypatch):
    from compare.engine import pairs

    real = pairs.diff_images

    def buggy(before, after, **kwargs):
        if kwargs["name"] == "b.png":
            return [][0]  # an IndexError: a bug, not something an image can cause
        return real(before, after, **kwargs)

    monkeypatch.setattr(pairs, "diff_images", buggy)
    base, head = tmp_path / "base", tmp_path / "head"
    for folder, red in ((base, 10), (head, 90)):
        folder.mkdir()
        for green, name in enumerate(("a.png", "b.png")):
            Image.new("RGB", (8, 8), (red, green, 10)).save(folder / name)
    code, _, stderr = run(capsys, "compare", "--base", base, "--head", head, "--out", tmp_path / "out")
    assert code == cli.EXIT_FAILED
    assert "Traceback" in stderr and "IndexError: list index out of range" in stderr
    images = json.loads((tmp_path / "out" / "comparison.json").read_text())["images"]
    assert images["a.png"]["status"] == "changed"
    assert images["b.png"]["status"] == "errored" and images["b.png"]["reason"] == "internal_error"
    assert "internal error while diffing" in images["b.png"]["detail"]
    assert "IndexError: list index out of range" in images["b.png"]["detail"]


@pytest.mark.parametrize("source", ["store", "folder"])
def test_a_blob_over_a_quarter_of_max_memory_errors_only_its_image_unread(tmp_path, capsys, source):
    # --max-memory 64M: 16 MiB of blobs fetched ahead, and no blob larger. Bytes that would not
    # even decode say nothing: the error is the size, told before the blob is read.
    huge = b"\x89PNG\r\n\x1a\n" + bytes(16 * 1024**2)
    base = write_folder(tmp_path / "base", {"a.png": png(1), "huge.png": png(2)})
    head_files = {"a.png": png(3), "huge.png": huge}
    head = write_folder(tmp_path / "head", head_files)
    extra = []
    if source == "store":
        store = write_folder(tmp_path / "store", {sha(data): data for data in (*head_files.values(), png(1), png(2))})
        (tmp_path / "head.json").write_text(run(capsys, "manifest", head)[1])
        head, extra = tmp_path / "head.json", ["--store", store.as_uri(), "--allow-unsized"]

    code, _, _ = run(capsys, "compare", "--base", base, "--head", head, *extra, "--out", tmp_path / "out",
                     "--max-memory", "64M", "--quiet")

    images = read_comparison(tmp_path / "out")["images"]
    assert code == cli.EXIT_ERRORED and images["a.png"]["status"] == "changed"
    assert images["huge.png"]["status"] == "errored" and images["huge.png"]["reason"] == "image_fetch_failed"
    assert f"blob too large: {len(huge):,} bytes, more than the {16 * 1024**2:,}" in images["huge.png"]["detail"]


def test_a_store_manifest_is_bounded_by_the_manifest_limit_not_by_the_blob_budget(tmp_path, capsys):
    # 17 MiB of manifest (padding) against a 16 MiB blob bound (--max-memory 64M): a manifest
    # may have 64 MiB, and is read as one.
    store = write_folder(tmp_path / "store", {sha(data): data for data in (png(1), png(2))})
    for name, data in (("base.json", png(1)), ("head.json", png(2))):
        entry = {"a.png": {"content_hash": sha(data), "width": 100, "height": 100}}
        (store / name).write_text(json.dumps({"images": entry}) + " " * (17 * 1024**2))

    code, _, stderr = run(capsys, "compare", "--base", "store:base.json", "--head", "store:head.json",
                          "--store", store.as_uri(), "--out", tmp_path / "out", "--max-memory", "64M", "--quiet")

    assert code == cli.EXIT_DIFFERENCES, stderr
    assert statuses(read_comparison(tmp_path / "out")) == {"a.png": "changed"}


def test_a_store_fetcher_given_with_a_tighter_blob_bound_keeps_it(tmp_path):
    from compare import compare_builds
    from compare.inputs.manifest import ImageEntry, Manifest
    from fetchers.backends.local import LocalFetcher

    store = write_folder(tmp_path / "store", {sha(data): data for data in (png(1), png(2))})
    manifests = [Manifest(images={"a.png": ImageEntry("a.png", content_hash=sha(data), width=100, height=100)})
                 for data in (png(1), png(2))]
    bound = min(len(png(1)), len(png(2))) - 1

    with LocalFetcher(store, max_blob_bytes=bound) as tight:
        comparison = compare_builds(*manifests, store=tight)

    result = comparison.images["a.png"]
    assert result.status.value == "errored" and "blob too large" in (result.detail or "")
