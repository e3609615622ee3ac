"""The ``snapcompare`` command end to end: S3 (moto over real sockets), folders, exit codes, output."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

from compare.cli import (
    EXIT_BAD_INPUT,
    EXIT_DIFFERENCES,
    EXIT_ERRORED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_SAME,
    main,
)
from compare.cli.common import MAX_TOKEN_BYTES
from compare.cli.progress import BAR_INTERVAL, LINE_INTERVAL, ProgressDisplay
from compare.engine.local import Progress
from compare.inputs.manifest import load_manifest, manifest_from_folder
from testing.s3 import REGION
from tests.compare.helpers import png, read_comparison, run, sha, statuses, write_folder

pytestmark = pytest.mark.integration

SCRIPT = Path(sys.executable).with_name("snapcompare")
PROGRESS_LINE = re.compile(r"^\[\s*[\d.]+s\]\s+(\d+)% fetched (\d+)/(\d+) blobs, diffed (\d+)/(\d+) pairs")
STATUSES = ("changed", "unchanged", "added", "removed", "errored", "renamed", "skipped")


@dataclass
class Build:
    """A build's images (name -> bytes) and per-image manifest overrides."""

    images: dict[str, bytes]
    sizes: dict[str, tuple[int, int] | None] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def manifest(self) -> dict:
        entries = {}
        for name, data in self.images.items():
            entry = {"content_hash": sha(data)}
            if name in self.sizes:
                size = self.sizes[name]
            else:
                with Image.open(io.BytesIO(data)) as image:
                    size = image.size
            if size is not None:
                entry["width"], entry["height"] = size
            entries[name] = entry
        return {"images": entries, **self.extra}

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.manifest()))
        return path


def summary_counts(stdout: str) -> dict[str, int]:
    """The per-status counts of the printed summary."""
    return {key: int(value) for key, value in re.findall(rf"\b({'|'.join(STATUSES)}|total) (\d+)\b", stdout)}


@pytest.fixture
def s3_store(s3_server, s3_bucket, s3_env, monkeypatch):
    """Points the AWS SDK at the moto server; returns a function uploading blobs under a prefix."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)

    def upload(*blobs: bytes, prefix: str = "builds/blobs") -> str:
        for data in blobs:
            s3_server.put_object(s3_bucket, f"{prefix}/{sha(data)}", data)
        return f"s3://{s3_bucket}/{prefix}"

    return upload


@pytest.fixture(autouse=True)
def no_store_from_environment(monkeypatch):
    monkeypatch.delenv("SNAPCOMPARE_STORE", raising=False)


def every_status_builds() -> tuple[Build, Build, bytes]:
    """Base and head builds with every status and every error reason; also the blob never uploaded."""
    login, recompressed_base = png(1), png(2, compress_level=1)
    corrupt = png(31)
    never_uploaded = png(40)
    base = Build({
        "same.png": png(0),
        "recompressed.png": recompressed_base,
        "button.png": png(3),
        "old.png": png(4),
        "kept.png": png(5),
        "login.png": login,
        "corrupt.png": png(30),
        "missing.png": png(41),
        "huge.png": png(50),
        "tall.png": png(60, (200, 300)),
    }, sizes={"huge.png": (10_000, 10_000), "tall.png": None})
    head = Build({
        "same.png": png(0),
        "recompressed.png": png(2, compress_level=9),
        "button.png": png(33),
        "new.png": png(6),
        "sign_in.png": login,
        "corrupt.png": corrupt[: len(corrupt) // 2],
        "missing.png": never_uploaded,
        "huge.png": png(51),
        "tall.png": png(61, (200, 300)),
    }, sizes={"huge.png": (10_000, 10_000), "tall.png": None})
    head.extra = {"selective": True, "all_image_file_names": [*head.images, "kept.png"]}
    assert recompressed_base != head.images["recompressed.png"]
    return base, head, never_uploaded


EVERY_STATUS = {
    "same.png": ("unchanged", None),
    "recompressed.png": ("unchanged", None),
    "button.png": ("changed", None),
    "new.png": ("added", None),
    "old.png": ("removed", None),
    "kept.png": ("skipped", None),
    "sign_in.png": ("renamed", None),
    "corrupt.png": ("errored", "image_processing_failed"),
    "missing.png": ("errored", "image_fetch_failed"),
    "huge.png": ("errored", "exceeds_pixel_limit"),
    "tall.png": ("errored", "exceeds_pixel_limit"),
}


def test_every_status_and_reason_from_s3(s3_store, tmp_path, capsys):
    base, head, never_uploaded = every_status_builds()
    blobs = {*base.images.values(), *head.images.values()} - {never_uploaded}
    store = s3_store(*blobs)
    out = tmp_path / "out"

    # 40,000 pixels: the 100x100 pairs fit, tall.png's 200x300 (sizes only in its headers) does not.
    code, stdout, stderr = run(
        capsys, "compare", "--base", base.write(tmp_path / "base.json"), "--head",
        head.write(tmp_path / "head.json"), "--store", store, "--out", out, "--max-pixels", "40000",
        "--allow-unsized",
    )

    assert code == EXIT_ERRORED
    comparison = read_comparison(out)
    found = {name: (image["status"], image["reason"]) for name, image in comparison["images"].items()}
    assert found == EVERY_STATUS
    assert comparison["images"]["sign_in.png"]["previous_image_file_name"] == "login.png"
    assert comparison["images"]["recompressed.png"]["changed_pixels"] == 0
    assert comparison["images"]["button.png"]["changed_pixels"] > 0
    assert "(from the manifests)" in comparison["images"]["huge.png"]["detail"]
    assert "(from the manifests)" not in comparison["images"]["tall.png"]["detail"]
    assert (out / comparison["images"]["button.png"]["diff_mask_key"]).is_file()

    summary = comparison["summary"]
    assert summary["total"] == len(comparison["images"]) == len(EVERY_STATUS)
    assert sum(summary[s] for s in STATUSES) == summary["total"]
    assert summary_counts(stdout) == summary
    for report in ("report.html", "comparison.json", "junit.xml"):
        assert str(out / report) in stdout
        assert (out / report).is_file()
    for name in ("corrupt.png", "missing.png", "huge.png", "tall.png"):
        assert re.search(rf"^  {re.escape(name)}: {EVERY_STATUS[name][1]}: ", stdout, re.MULTILINE)
    assert "login.png -> sign_in.png" in stdout
    assert re.search(r"^\s+[\d.]+%  button\.png  \(", stdout, re.MULTILINE)
    assert stdout.rstrip().splitlines()[-1] == (
        f"snapcompare: differences found: 1 changed, 1 added, 1 removed, 1 renamed; 4 errored; "
        f"report: {out / 'report.html'} (exit {EXIT_ERRORED})"
    )

    # Not a terminal: plain progress lines, the last one complete (5 pairs, 10 blobs).
    progress = [PROGRESS_LINE.match(line) for line in stderr.splitlines()]
    assert progress and all(progress), stderr
    assert progress[-1].groups() == ("100", "10", "10", "5", "5")
    assert len(progress) <= 12
    assert "Traceback" not in stderr


def test_exit_1_for_differences_only_with_store_from_environment(s3_store, tmp_path, capsys, monkeypatch):
    base = Build({"a.png": png(1), "b.png": png(2), "gone.png": png(3)})
    head = Build({"a.png": png(1), "b.png": png(22), "new.png": png(4)})
    monkeypatch.setenv("SNAPCOMPARE_STORE", s3_store(*base.images.values(), *head.images.values()))
    out = tmp_path / "out"

    code, stdout, _ = run(capsys, "compare", "--base", base.write(tmp_path / "b.json"),
                          "--head", head.write(tmp_path / "h.json"), "--out", out)

    assert code == EXIT_DIFFERENCES
    assert statuses(read_comparison(out)) == {
        "a.png": "unchanged", "b.png": "changed", "gone.png": "removed", "new.png": "added",
    }
    assert "differences found: 1 changed, 1 added, 1 removed;" in stdout


def test_a_changed_pair_under_its_diff_threshold_is_unchanged(s3_store, tmp_path, capsys):
    before, after = Image.new("RGB", (100, 100), "white"), Image.new("RGB", (100, 100), "white")
    after.paste((0, 0, 0), (50, 50, 53, 53))
    encoded = []
    for image in (before, after):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    store = s3_store(*encoded)
    base, head = Build({"dot.png": encoded[0]}), Build({"dot.png": encoded[1]})
    out = tmp_path / "out"

    assert run(capsys, "compare", "--base", base.write(tmp_path / "b.json"), "--head",
               head.write(tmp_path / "h.json"), "--store", store, "--out", out, "--quiet",
               "--diff-threshold", "0.001")[0] == EXIT_SAME
    assert 0 < read_comparison(out)["images"]["dot.png"]["changed_pixels"] <= 9
    assert run(capsys, "compare", "--base", tmp_path / "b.json", "--head", tmp_path / "h.json",
               "--store", store, "--out", out, "--quiet")[0] == EXIT_DIFFERENCES


def test_a_blob_whose_bytes_are_not_its_key_s_is_never_used(tmp_path, capsys):
    # A tampered or corrupted store: the bytes under a key must hash to it.
    base = Build({"pair.png": png(1), "same.png": png(3)})
    head = Build({"pair.png": png(2), "same.png": png(3), "added.png": png(4)})
    store = tmp_path / "store"
    store.mkdir()
    for data in (png(1), png(3)):
        (store / sha(data)).write_bytes(data)
    (store / sha(png(2))).write_bytes(png(1))  # the changed head holds the base's bytes
    (store / sha(png(4))).write_bytes(png(5))

    code, _, _ = run(capsys, "compare", "--base", base.write(tmp_path / "base.json"), "--head",
                     head.write(tmp_path / "head.json"), "--store", store.as_uri(), "--out", tmp_path / "out",
                     "--quiet")

    assert code == EXIT_ERRORED
    images = read_comparison(tmp_path / "out")["images"]
    assert images["pair.png"]["status"] == "errored" and images["pair.png"]["reason"] == "image_fetch_failed"
    assert "sha256" in images["pair.png"]["detail"]
    # An added image is judged from the manifests; its picture is not made from the wrong bytes.
    assert images["added.png"]["status"] == "added" and images["added.png"]["previews"] is None
    assert images["same.png"]["status"] == "unchanged"


def test_folders_need_no_store(tmp_path, capsys):
    base = write_folder(tmp_path / "base", {"home.png": png(1), "nested/list.png": png(2)})
    head = write_folder(tmp_path / "head", {"home.png": png(1), "nested/list.png": png(22),
                                            "nested/new.png": png(3)})
    same = write_folder(tmp_path / "same", {"home.png": png(1), "nested/list.png": png(2)})

    code, stdout, _ = run(capsys, "compare", "--base", base, "--head", head, "--out", tmp_path / "o1", "--quiet")
    assert code == EXIT_DIFFERENCES
    assert statuses(read_comparison(tmp_path / "o1")) == {
        "home.png": "unchanged", "nested/list.png": "changed", "nested/new.png": "added",
    }
    assert len(stdout.splitlines()) == 1

    code, stdout, stderr = run(capsys, "compare", "--base", base, "--head", same, "--out", tmp_path / "o2", "--quiet")
    assert code == EXIT_SAME
    assert stdout.startswith("snapcompare: no differences in 2 images; report: ")
    assert stderr == ""


def test_a_file_where_the_masks_folder_goes_is_bad_input_told_before_the_work(tmp_path, capsys):
    # (A failure while writing, after the work, exits EXIT_FAILED: tests/compare/test_safety.py.)
    base = write_folder(tmp_path / "base", {"a.png": png(1)})
    head = write_folder(tmp_path / "head", {"a.png": png(2)})
    out = tmp_path / "out"
    out.mkdir()
    (out / "diff").write_text("a file where the masks' folder goes")

    code, stdout, stderr = run(capsys, "compare", "--base", base, "--head", head, "--out", out, "--quiet")

    assert code == EXIT_BAD_INPUT
    assert stdout == ""
    assert stderr == f"snapcompare: error: --out: {out / 'diff'}: Not a directory\n"


@pytest.mark.parametrize("role", ["head", "base"])
def test_an_out_folder_inside_an_image_folder_is_refused_before_the_work(role, tmp_path, capsys):
    # Else its masks and previews would be the next run's added (or removed) images.
    folders = {side: write_folder(tmp_path / side, {"a.png": png(1 if side == "base" else 2)})
               for side in ("base", "head")}
    out = folders[role] / "report"

    code, stdout, stderr = run(capsys, "compare", "--base", folders["base"], "--head", folders["head"],
                               "--out", out, "--quiet")

    assert code == EXIT_BAD_INPUT and stdout == ""
    assert stderr == (f"snapcompare: error: --out {str(out)!r} is inside the {role} folder {str(folders[role])!r}, "
                      "whose images the reports' own pictures would join: write the reports elsewhere\n")
    assert not out.exists()


def test_an_image_folder_among_an_out_folders_pictures_is_refused(tmp_path, capsys):
    base = write_folder(tmp_path / "base", {"a.png": png(1)})
    head = write_folder(tmp_path / "out" / "previews", {"a.png": png(2)})

    code, _, stderr = run(capsys, "compare", "--base", base, "--head", head, "--out", tmp_path / "out", "--quiet")

    assert code == EXIT_BAD_INPUT
    assert stderr == (f"snapcompare: error: the head folder {str(head)!r} is inside --out {str(tmp_path / 'out')!r}, "
                      "among the pictures a run writes there: write the reports elsewhere\n")


def test_the_summary_never_rounds_a_small_change_to_nothing(tmp_path, capsys):
    before = Image.new("RGB", (1000, 1000), "white")
    after = before.copy()
    after.putpixel((500, 500), (0, 0, 0))
    shots = {}
    for side, picture in (("base", before), ("head", after)):
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        shots[side] = write_folder(tmp_path / side, {"page.png": buffer.getvalue()})

    code, stdout, _ = run(capsys, "compare", "--base", shots["base"], "--head", shots["head"],
                          "--out", tmp_path / "out")

    assert code == EXIT_DIFFERENCES
    assert "   0.0001%  page.png  (1 of 1,000,000 pixels)" in stdout.split("Most changed:")[1]


def test_a_manifest_side_reads_a_local_store_and_the_folder_side_its_files(tmp_path, capsys):
    store = write_folder(tmp_path / "store", {sha(png(1)): png(1), sha(png(2)): png(2)})
    base = Build({"a.png": png(1), "b.png": png(2)}).write(tmp_path / "base.json")
    head = write_folder(tmp_path / "head", {"a.png": png(1), "b.png": png(5)})

    code, _, _ = run(capsys, "compare", "--base", base, "--head", head, "--store", store.as_uri(),
                     "--out", tmp_path / "out", "--quiet")

    assert code == EXIT_DIFFERENCES
    assert statuses(read_comparison(tmp_path / "out")) == {"a.png": "unchanged", "b.png": "changed"}


def test_manifest_subcommand(tmp_path, capsys):
    folder = write_folder(tmp_path / "shots", {"a.png": png(1), "deep/b.png": png(2, (120, 80))})

    code, stdout, stderr = run(capsys, "manifest", folder, "-o", tmp_path / "m.json")
    assert code == EXIT_SAME
    assert stdout == ""
    assert stderr == f"snapcompare: wrote 2 images to {tmp_path / 'm.json'}\n"
    manifest = load_manifest(tmp_path / "m.json")
    assert manifest == manifest_from_folder(folder).manifest
    assert manifest.images["deep/b.png"].content_hash == sha(png(2, (120, 80)))
    assert (manifest.images["deep/b.png"].width, manifest.images["deep/b.png"].height) == (120, 80)

    code, stdout, _ = run(capsys, "manifest", folder)
    assert code == EXIT_SAME
    assert set(json.loads(stdout)["images"]) == {"a.png", "deep/b.png"}



def test_a_file_name_that_is_not_utf8_goes_into_written_manifests_and_reads_back_the_same(tmp_path, capsys):
    folder = write_folder(tmp_path / "shots", {"ok.png": png(1)})
    undecodable = os.path.join(os.fsencode(folder), b"caf\xe9.png")  # Latin-1, as an old tool wrote it
    Path(os.fsdecode(undecodable)).write_bytes(png(2))
    store = tmp_path / "store"
    store.mkdir()
    (tmp_path / "m.json").write_text("{}")

    written = [run(capsys, "manifest", folder, "-o", tmp_path / "m.json"),
               run(capsys, "upload", folder, "--store", store.as_uri(), "-o", tmp_path / "up.json", "--quiet")]
    code, stdout, _ = run(capsys, "manifest", folder)

    assert [outcome[0] for outcome in written] == [EXIT_SAME, EXIT_SAME] and code == EXIT_SAME
    for text in ((tmp_path / "m.json").read_text(encoding="utf-8"), (tmp_path / "up.json").read_text(encoding="utf-8"),
                 stdout):
        assert '"caf\\udce9.png"' in text
    for manifest in ("m.json", "up.json"):
        assert load_manifest(tmp_path / manifest) == manifest_from_folder(folder).manifest
        code, _, _ = run(capsys, "compare", "--base", tmp_path / manifest, "--head", folder, "--store", store.as_uri(),
                         "--out", tmp_path / "out", "--quiet")
        assert code == EXIT_SAME


def test_manifest_writes_pattern_regions_that_a_comparison_with_it_as_head_applies(tmp_path, capsys):
    base = write_folder(tmp_path / "base", {"phone/home.png": png(1), "desk.png": png(2)})
    head = write_folder(tmp_path / "head", {"phone/home.png": png(11), "desk.png": png(22)})
    store = write_folder(tmp_path / "store", {sha(data): data for data in (png(11), png(22))})

    code, _, _ = run(capsys, "manifest", head, "-o", tmp_path / "head.json",
                     "--ignore-in", "phone/**=0:0-99:49", "--ignore-in", "**/home.png=0:50-99:99")

    assert code == EXIT_SAME
    images = json.loads((tmp_path / "head.json").read_text())["images"]
    assert images["phone/home.png"]["ignore_regions"] == [
        {"x1": 0, "y1": 0, "x2": 99, "y2": 49}, {"x1": 0, "y1": 50, "x2": 99, "y2": 99}]
    assert "ignore_regions" not in images["desk.png"]
    code, _, _ = run(capsys, "compare", "--base", base, "--head", tmp_path / "head.json",
                     "--store", store, "--out", tmp_path / "out", "--quiet")
    assert code == EXIT_DIFFERENCES
    compared = read_comparison(tmp_path / "out")["images"]
    home = compared["phone/home.png"]
    assert (home["status"], home["changed_pixels"]) == ("unchanged", 0)
    assert compared["desk.png"]["status"] == "changed"


@pytest.mark.parametrize("command", ["manifest", "upload"])
def test_a_bad_ignore_in_exits_3_naming_the_option_and_the_bad_part(command, tmp_path, capsys):
    folder = write_folder(tmp_path / "shots", {"a.png": png(1)})
    store = ["--store", tmp_path] if command == "upload" else []
    for value, said in (("a.png", "'a.png': no '='"),
                        ("a.png=1:1-0:0", "'a.png=1:1-0:0': ignore region 1:1-0:0: inverted")):
        code, _, stderr = run(capsys, command, folder, *store, "-o", tmp_path / "m.json", "--ignore-in", value)
        assert code == EXIT_BAD_INPUT
        assert f"error: argument --ignore-in: {said}" in stderr
        assert not (tmp_path / "m.json").exists()


def test_help_documents_the_exit_codes(capsys):
    code, stdout, _ = run(capsys, "compare", "--help")
    assert code == EXIT_SAME
    for line in ("0    no differences", "1    differences found", "2    some images errored",
                 "3    bad input", "130  interrupted"):
        assert line in stdout


@pytest.fixture
def inputs(tmp_path):
    """A valid head manifest, a folder and manifests broken in two ways."""
    Build({"a.png": png(1)}).write(tmp_path / "head.json")
    write_folder(tmp_path / "folder", {"a.png": png(1)})
    (tmp_path / "broken.json").write_text('{"images": {"a.png": {"content_hash": ')
    (tmp_path / "badhash.json").write_text('{"images": {"a.png": {"content_hash": "xyz"}}}')
    return tmp_path


@pytest.mark.parametrize(("args", "env", "expected"), [
    (["--base", "broken.json", "--head", "head.json", "--store", "STORE"], {},
     "broken.json: line 1, column 39: invalid JSON: Expecting value"),
    (["--base", "badhash.json", "--head", "head.json", "--store", "STORE"], {},
     'badhash.json: images["a.png"].content_hash: expected 64 hex characters'),
    (["--base", "nowhere", "--head", "head.json", "--store", "STORE"], {},
     "--base 'nowhere': no such manifest file or image folder"),
    (["--base", "folder", "--head", "head.json"], {}, "manifest 'head.json' needs a blob store"),
    (["--base", "folder", "--head", "head.json", "--store", "ftp://host/x"], {},
     "--store: unknown store scheme 'ftp'"),
    (["--base", "folder", "--head", "head.json"], {"SNAPCOMPARE_STORE": "s3:///no-bucket"},
     "SNAPCOMPARE_STORE: s3 store URL needs a bucket"),
    (["--base", "folder", "--head", "head.json", "--store", "STORE", "--max-memory", "10M"], {},
     "--max-memory must be at least 64 MiB"),
    (["--base", "folder", "--head", "folder", "--fail-on-known-changes"], {},
     "--fail-on-known-changes goes with --known-changes"),
    (["--base", "folder", "--head", "head.json", "--store", ""], {"SNAPCOMPARE_STORE": "STORE"},
     "--store: an empty URL"),
])
def test_bad_input_is_one_line_naming_it(inputs, capsys, monkeypatch, args, env, expected):
    monkeypatch.chdir(inputs)
    for name, value in env.items():
        monkeypatch.setenv(name, inputs.as_uri() if value == "STORE" else value)
    args = [inputs.as_uri() if a == "STORE" else a for a in args]

    code, stdout, stderr = run(capsys, "compare", *args, "--out", "out")

    assert code == EXIT_BAD_INPUT
    assert stdout == ""
    assert stderr.count("\n") == 1 and stderr.startswith("snapcompare: error: "), stderr
    assert expected in stderr
    assert not (inputs / "out").exists()


@pytest.mark.parametrize("command", [["compare", "--base", "folder", "--head", "folder", "--out"],
                                     ["manifest", "folder", "-o"], ["manifest"], ["upload", "--store", "STORE"],
                                     ["demo", "--out"]])
def test_an_empty_path_is_refused_not_taken_for_the_current_folder(inputs, capsys, monkeypatch, command):
    monkeypatch.chdir(inputs)
    before = sorted(os.listdir(inputs))

    code, stdout, stderr = run(capsys, *[inputs.as_uri() if a == "STORE" else a for a in command], "")

    assert code == EXIT_BAD_INPUT and stdout == ""
    assert "expected a path, got an empty one" in stderr
    assert sorted(os.listdir(inputs)) == before


@pytest.mark.parametrize("size", ["0", "0.5", "0K"])
def test_a_size_of_no_bytes_is_a_usage_error(inputs, capsys, size):
    code, _, stderr = run(capsys, "upload", inputs / "folder", "--store", inputs.as_uri(), "--max-memory", size)
    assert code == EXIT_BAD_INPUT and "expected a size of at least one byte" in stderr


def test_a_token_file_that_is_no_regular_file_or_too_large_is_refused_without_reading_it(inputs, capsys):
    os.mkfifo(inputs / "fifo")  # no writer: reading it would wait for ever
    (inputs / "large").write_bytes(b"t" * (MAX_TOKEN_BYTES + 1))
    for name, reason in (("fifo", "not a regular file (a FIFO)"), ("large", "more than the 65,536 allowed")):
        code, _, stderr = run(capsys, "upload", inputs / "folder", "--store", "objectstore+http://127.0.0.1:9/p",
                              "--objectstore-token-file", inputs / name)
        assert code == EXIT_BAD_INPUT and stderr.startswith("snapcompare: error: --objectstore-token-file: ")
        assert reason in stderr


def test_a_secret_in_an_objectstore_scope_is_not_echoed(inputs, capsys, monkeypatch):
    monkeypatch.chdir(inputs)
    url = "objectstore+http://127.0.0.1:9/preprod?org=1&sig=s3cr3t/x=y"
    code, _, stderr = run(capsys, "compare", "--base", "folder", "--head", "head.json",
                          "--store", url, "--out", "out")
    assert code == EXIT_BAD_INPUT
    assert "takes no query parameter 'sig'" in stderr and "s3cr3t" not in stderr


def test_a_store_whose_sdk_refuses_its_configuration_is_bad_input(inputs, capsys, monkeypatch):
    for name in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(inputs / "no-gcloud-config"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # never look for a metadata server
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    monkeypatch.chdir(inputs)

    code, _, stderr = run(capsys, "compare", "--base", "folder", "--head", "head.json",
                          "--store", "gs://bucket/prefix", "--out", "out")

    assert code == EXIT_BAD_INPUT
    assert stderr.startswith("snapcompare: error: --store: GCS credentials: ")
    assert "Traceback" not in stderr


@pytest.mark.parametrize(("args", "expected"), [
    (["compare", "--base", "a", "--head", "b"], "the following arguments are required: --out"),
    (["compare", "--base", "a", "--head", "b", "--out", "o", "--threshold", "2"], "argument --threshold"),
    (["compare", "--base", "a", "--head", "b", "--out", "o", "--diff-threshold", "5"],
     "got '5' (for 5%, give 0.05)"),
    (["compare", "--base", "a", "--head", "b", "--out", "o", "--threshold", "nan"], "got 'nan'"),
    (["compare", "--base", "a", "--head", "b", "--out", "o", "--max-memory", "lots"], "argument --max-memory"),
    (["compare", "--base", "a", "--head", "b", "--out", "o", "--workers", "0"], "argument --workers"),
    ([], "the following arguments are required: COMMAND"),
    (["manifest", "no-such-folder"], "no-such-folder: not a folder"),
])
def test_usage_errors_exit_with_the_bad_input_code_and_no_traceback(capsys, args, expected):
    code, _, stderr = run(capsys, *args)
    assert code == EXIT_BAD_INPUT
    assert expected in stderr
    assert "Traceback" not in stderr


def test_installed_script_against_s3(s3_server, s3_store, tmp_path):
    base = Build({"a.png": png(1), "b.png": png(2)})
    head = Build({"a.png": png(1), "b.png": png(3)})
    store = s3_store(*base.images.values(), *head.images.values())

    result = subprocess.run(
        [SCRIPT, "compare", "--base", base.write(tmp_path / "b.json"), "--head",
         head.write(tmp_path / "h.json"), "--store", store, "--out", tmp_path / "out"],
        capture_output=True, text=True, timeout=60, env=dict(os.environ),
    )

    assert result.returncode == EXIT_DIFFERENCES, result.stderr
    assert PROGRESS_LINE.match(result.stderr.splitlines()[-1])
    assert "differences found: 1 changed;" in result.stdout
    assert statuses(read_comparison(tmp_path / "out")) == {"a.png": "unchanged", "b.png": "changed"}


def test_interrupt_exits_130_promptly(s3_server, s3_bucket, s3_store, tmp_path):
    base, head = Build({"a.png": png(1)}), Build({"a.png": png(2)})
    store = s3_store(*base.images.values(), *head.images.values())
    stalled = sha(png(2))
    s3_server.faults.set("stall", match=stalled, seconds=2.0)

    process = subprocess.Popen(
        [SCRIPT, "compare", "--base", base.write(tmp_path / "b.json"), "--head",
         head.write(tmp_path / "h.json"), "--store", store, "--out", tmp_path / "out"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 20
        while s3_server.requests("GET", s3_bucket, f"builds/blobs/{stalled}") == 0:
            assert process.poll() is None and time.monotonic() < deadline, "the fetch never started"
            time.sleep(0.02)
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert time.monotonic() - interrupted < 10
    assert stderr.rstrip().endswith("snapcompare: error: interrupted")
    assert "Traceback" not in stderr
    assert stdout == ""


def progress(blobs: int, pairs: int, *, of: tuple[int, int] = (10, 10), phase: str = "comparing") -> Progress:
    return Progress(images_total=20, blobs_total=of[0], blobs_fetched=blobs, pairs_total=of[1],
                    pairs_done=pairs, phase=phase)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_redraws_one_line_throttled():
    clock, stream = FakeClock(), Terminal()
    display = ProgressDisplay(stream, clock=clock)
    assert display.mode == "bar"

    updates = [(b, 0) for b in range(11)] + [(10, p) for p in range(1, 11)]
    for blobs, pairs in updates:
        display(progress(blobs, pairs))
        clock.now += BAR_INTERVAL / 4
    display.close()

    text = stream.getvalue()
    draws = text.split("\r")[1:]
    assert 2 <= len(draws) <= len(updates) // 4 + 2
    assert text.endswith("\n") and text.count("\n") == 1
    assert "fetched 0/10 blobs, diffed 0/10 pairs" in draws[0]
    assert "100% fetched 10/10 blobs, diffed 10/10 pairs" in draws[-1]
    assert all(draw.startswith("[") and "\x1b[K" in draw for draw in draws)


def test_progress_lines_when_not_a_terminal_every_tenth_or_every_few_seconds():
    clock, stream = FakeClock(), io.StringIO()
    display = ProgressDisplay(stream, clock=clock)
    assert display.mode == "lines"

    for done in range(0, 1001):
        display(progress(done // 2, done - done // 2, of=(500, 500)))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11
    assert [int(PROGRESS_LINE.match(line)[1]) for line in lines] == list(range(0, 101, 10))

    stream = io.StringIO()
    display = ProgressDisplay(stream, clock=clock)
    display(progress(0, 0, of=(1000, 1000)))
    clock.now += LINE_INTERVAL
    display(progress(1, 0, of=(1000, 1000)))
    display(progress(2, 0, of=(1000, 1000)))
    display.close()
    lines = stream.getvalue().splitlines()
    assert [PROGRESS_LINE.match(line)[2] for line in lines] == ["0", "1", "2"]


class ClosedPipe(io.StringIO):
    """A stream whose reader has gone: every write fails, as stderr piped into ``head`` does."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_progress_stream_that_fails_turns_the_display_off():
    display = ProgressDisplay(ClosedPipe(), mode="lines", clock=FakeClock())
    display(progress(1, 0))
    display(progress(10, 10, phase="done"))
    display.close()


def test_a_closed_stderr_stops_neither_the_run_nor_its_exit_code(tmp_path, monkeypatch):
    base = write_folder(tmp_path / "base", {"a.png": png(1)})
    head = write_folder(tmp_path / "head", {"a.png": png(2)})
    monkeypatch.setattr(sys, "stderr", ClosedPipe())
    assert main(["compare", "--base", str(base), "--head", str(head), "--out", str(tmp_path / "out")]) == \
        EXIT_DIFFERENCES
    assert statuses(read_comparison(tmp_path / "out")) == {"a.png": "changed"}
    assert main(["compare", "--base", str(base), "--head", str(tmp_path / "nowhere")]) == EXIT_BAD_INPUT


def test_a_failure_is_worded_as_the_command_that_was_run(tmp_path, capsys, monkeypatch):
    folder = write_folder(tmp_path / "folder", {"a.png": png(1)})

    class FullDisk(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(sys, "stdout", FullDisk())
    code = main(["manifest", str(folder)])
    assert code == EXIT_FAILED
    assert capsys.readouterr().err.startswith("snapcompare: error: manifest failed: [Errno 28] No space left")


def test_a_results_store_that_cannot_be_used_is_told_before_the_work(tmp_path, capsys):
    base = write_folder(tmp_path / "base", {"a.png": png(1)})
    head = write_folder(tmp_path / "head", {"a.png": png(2)})
    code, _, stderr = run(capsys, "compare", "--base", base, "--head", head, "--out", tmp_path / "out",
                          "--results-store", "objectstore+http://127.0.0.1:9/preprod?org=1&project=2",
                          "--head-artifact-id", "2", "--base-artifact-id", "1", "--quiet")
    assert code == EXIT_BAD_INPUT
    assert "store unavailable: cannot connect" in stderr
    assert not (tmp_path / "out" / "comparison.json").exists()


def test_a_comparison_argument_is_read_as_typed(tmp_path, capsys, monkeypatch):
    # "./store:x" is the file of that name, not the store key "store:x"; "a//b" is no "a/b".
    monkeypatch.chdir(tmp_path)
    base = write_folder(tmp_path / "base", {"a.png": png(1)})
    head = write_folder(tmp_path / "head", {"a.png": png(2)})
    run(capsys, "compare", "--base", base, "--head", head, "--out", "out", "--quiet")
    Path("store:c.json").write_bytes(Path("out/comparison.json").read_bytes())
    store = tmp_path / "approvals"
    store.mkdir()
    (store / "a").mkdir()
    (store / "a" / "b.json").write_bytes(Path("out/comparison.json").read_bytes())

    code, stdout, stderr = run(capsys, "approve", "./store:c.json", "--store", store.as_uri(), "--key", "k.json")
    assert code == EXIT_SAME, stderr
    code, _, stderr = run(capsys, "approve", "store:a//b.json", "--store", store.as_uri(), "--key", "k2.json")
    assert code == EXIT_BAD_INPUT and "store:a//b.json" in stderr
    code, _, stderr = run(capsys, "known-changes", "./store:c.json", "out/comparison.json", "-o", "known.json",
                          "--min-count", "1")
    assert code == EXIT_SAME, stderr
    assert json.loads(Path("known.json").read_text())["changes"]
    code, _, stderr = run(capsys, "known-changes", "./store:c.json", "store:c.json/../store:c.json", "-o", "k.json")
    assert code == EXIT_BAD_INPUT and "is given twice" not in stderr  # the second is a store key, refused
    code, _, stderr = run(capsys, "known-changes", "./store:c.json", f"{tmp_path}/store:c.json", "-o", "k.json")
    assert code == EXIT_BAD_INPUT and "is given twice" in stderr  # one file by two names
    code, _, stderr = run(capsys, "known-changes", "store:c.json", "-o", "known.json", "--min-count", "1")
    assert code == EXIT_BAD_INPUT and "known-changes reads comparisons from files" in stderr
    assert "--store" not in stderr


def test_junit_says_where_an_image_s_allowance_came_from(tmp_path, capsys):
    base = Build({"own.png": png(1), "run.png": png(1)})
    head = Build({"own.png": png(2), "run.png": png(2)})
    store = tmp_path / "store"
    store.mkdir()
    for data in (png(1), png(2)):
        (store / sha(data)).write_bytes(data)
    manifest = head.manifest()
    manifest["images"]["own.png"]["diff_threshold"] = 0.001
    (tmp_path / "head.json").write_text(json.dumps(manifest))

    run(capsys, "compare", "--base", base.write(tmp_path / "base.json"), "--head", tmp_path / "head.json",
        "--store", store.as_uri(), "--out", tmp_path / "out", "--quiet")

    junit = (tmp_path / "out" / "junit.xml").read_text()
    assert "changed pixels allowed: 0.1% (the head manifest's diff_threshold" in junit
    assert "changed pixels allowed: 0% (--diff-threshold" in junit


def test_no_stderr_at_all_keeps_the_exit_code(tmp_path, monkeypatch):
    # 2>&-: Python starts with sys.stderr None.
    monkeypatch.setattr(sys, "stderr", None)
    assert main(["compare", "--base", str(tmp_path / "nowhere"), "--head", str(tmp_path / "nowhere")]) == \
        EXIT_BAD_INPUT
