"""The demo builds: what `generate_demo` writes, and ``snapcompare demo`` end to end."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compare.classify import categorize
from compare.cli import EXIT_BAD_INPUT, EXIT_ERRORED, main
from compare.demo import HEIGHT, TALL_HEIGHT, WIDTH, generate_demo, record_demo_history
from compare.inputs.baseline import default_manifest_key, record_key
from compare.inputs.manifest import load_manifest
from compare.model import Status

pytestmark = pytest.mark.integration

SCRIPT = Path(sys.executable).with_name("snapcompare")


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    return generate_demo(tmp_path_factory.mktemp("demo"))


def blob(builds, content_hash: str) -> bytes:
    return (builds.store / content_hash).read_bytes()


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGBA"))


def test_generation_is_deterministic(builds, tmp_path):
    again = generate_demo(tmp_path)
    for name in ("base.json", "head.json"):
        assert (tmp_path / name).read_bytes() == (builds.root / name).read_bytes()
    assert sorted(p.name for p in again.store.iterdir()) == sorted(p.name for p in builds.store.iterdir())


def test_every_image_is_in_the_store_under_its_sha256(builds):
    base, head = load_manifest(builds.base_manifest), load_manifest(builds.head_manifest)
    hashes = {e.content_hash for m in (base, head) for e in m.images.values()}
    assert {p.name for p in builds.store.iterdir()} == hashes
    for content_hash in hashes:
        assert hashlib.sha256(blob(builds, content_hash)).hexdigest() == content_hash
    for entry in (*base.images.values(), *head.images.values()):
        assert entry.width == WIDTH and entry.height in (HEIGHT, TALL_HEIGHT)
        assert entry.group and entry.display_name


def test_the_builds_hold_each_kind_of_difference(builds):
    base, head = load_manifest(builds.base_manifest), load_manifest(builds.head_manifest)
    plan = categorize(base, head)
    decided = {name: outcome.status for name, outcome in plan.outcomes.items()}
    assert decided == {name: status for name, status in builds.expected.items() if name not in plan.candidates}
    assert plan.outcomes["account/sign_in.png"].previous_image_file_name == "account/login.png"
    assert set(plan.candidates) == {
        "account/orders.png", "home/dashboard.png", "shop/product.png", "shop/cart.png",
        "shop/feed.png", "settings/main.png", "settings/notifications.png",
    }
    assert set(builds.notes) == {n for n, s in builds.expected.items() if s is not Status.UNCHANGED} | {
        "account/orders.png", "home/dashboard.png"}

    orders = [blob(builds, m.images["account/orders.png"].content_hash) for m in (base, head)]
    assert orders[0] != orders[1]
    assert np.array_equal(pixels(orders[0]), pixels(orders[1]))

    feed = head.images["shop/feed.png"]
    assert pixels(blob(builds, feed.content_hash)).shape == (TALL_HEIGHT, WIDTH, 4)
    assert base.images["shop/feed.png"].height == HEIGHT

    corrupt = blob(builds, head.images["settings/notifications.png"].content_hash)
    with Image.open(io.BytesIO(corrupt)) as image:
        assert image.size == (WIDTH, HEIGHT)
        with pytest.raises(OSError):
            image.load()

    dashboard = [pixels(blob(builds, m.images["home/dashboard.png"].content_hash)) for m in (base, head)]
    changed = np.any(dashboard[0] != dashboard[1], axis=2)
    assert 0 < changed.mean() < head.images["home/dashboard.png"].diff_threshold
    assert not changed[60:].any()  # only the status bar's clock


def test_demo_command_compares_the_builds(builds, tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out)])
    stdout = capsys.readouterr().out

    assert code == EXIT_ERRORED  # the corrupt upload: errors win over differences
    comparison = json.loads((out / "report" / "comparison.json").read_text())
    assert {name: image["status"] for name, image in comparison["images"].items()} == builds.expected
    assert comparison["images"]["settings/notifications.png"]["reason"] == "image_processing_failed"
    assert comparison["summary"]["total"] == len(builds.expected)
    assert (out / "report" / "report.html").stat().st_size > 0
    assert f"Open {(out / 'report' / 'report.html').resolve().as_uri()} in a browser." in stdout
    for name, note in builds.notes.items():
        assert f"  {name}: {note}\n" in stdout
    assert {Status(s) for s in builds.expected.values()} == set(Status) - {Status.SKIPPED}


def test_demo_compares_a_feature_branch_against_the_base_found_in_its_git_history(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out)])
    stdout = capsys.readouterr().out
    history = record_demo_history(generate_demo(tmp_path / "again"))  # the same commits, made again

    assert code == EXIT_ERRORED
    comparison = json.loads((out / "report-from-git" / "comparison.json").read_text())
    assert {name: image["status"] for name, image in comparison["images"].items()} == history.expected
    base = comparison["base_build"]
    assert (base["commit"], base["ancestors_walked"], base["selective_layers"]) == (
        history.base_commit, 1, [history.layer_commit])
    assert base["merge_base"] == history.layer_commit
    assert base["without_walk"] == {"commit": history.layer_commit, "selective": True}
    for commit in (history.base_commit, history.layer_commit):
        assert (out / "store" / record_key(commit)).is_file()
        assert (out / "store" / default_manifest_key(commit)).is_file()
    assert f"\nBase build: commit {history.base_commit}, the nearest complete build, 1 first-parent commit" in stdout
    for name, note in history.notes.items():
        assert f"  {name}: {note}\n" in stdout
    assert "snapcompare: differences found: 1 changed, 1 added; report: " in stdout
    assert f"Open {(out / 'report-from-git' / 'report.html').resolve().as_uri()} in a browser." in stdout


def test_a_repo_folder_the_demo_did_not_make_is_left_as_it_is(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quiet"]) == EXIT_ERRORED
    assert main(["demo", "--out", str(out), "--quiet"]) == EXIT_ERRORED  # its own repository is made anew
    capsys.readouterr()
    other = tmp_path / "other"
    (other / "repo").mkdir(parents=True)
    (other / "repo" / "important.txt").write_text("mine")

    assert main(["demo", "--out", str(other), "--quiet"]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err.endswith(f"--out: {other / 'repo'}: not the demo's own repository, so it is "
                                            "left as it is: give the demo another folder\n")
    assert (other / "repo" / "important.txt").read_text() == "mine"
    assert sorted(path.name for path in other.iterdir()) == ["repo"]  # told before any work


def test_demo_without_git_leaves_the_second_comparison_out_and_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs"))
    code = main(["demo", "--out", str(tmp_path / "demo"), "--quiet"])
    captured = capsys.readouterr()

    assert code == EXIT_ERRORED
    assert "git is not installed (no git on PATH): the comparison whose base is found in git history is left " \
           "out" in captured.err
    assert captured.out.count("snapcompare: differences found") == 1
    assert not (tmp_path / "demo" / "report-from-git").exists()


def test_demo_runs_with_no_arguments_from_the_installed_script(tmp_path):
    result = subprocess.run([SCRIPT, "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert result.returncode == EXIT_ERRORED, result.stderr
    report = tmp_path / "snapcompare-demo" / "report" / "report.html"
    assert report.is_file()
    assert (
        "snapcompare: differences found: 4 changed, 2 added, 2 removed, 1 renamed; 1 errored; "
        f"report: {Path('snapcompare-demo/report/report.html')} (exit {EXIT_ERRORED})"
    ) in result.stdout.splitlines()
    assert f"Open {report.as_uri()} in a browser." in result.stdout.splitlines()
    assert (
        "snapcompare: differences found: 1 changed, 1 added; "
        f"report: {Path('snapcompare-demo/report-from-git/report.html')} (exit 1)"
    ) in result.stdout.splitlines()
    from_git = tmp_path / "snapcompare-demo" / "report-from-git" / "report.html"
    assert result.stdout.rstrip().endswith(f"Open {from_git.as_uri()} in a browser.")
    assert "Traceback" not in result.stderr
