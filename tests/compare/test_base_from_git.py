"""``snapcompare upload --commit`` and ``snapcompare compare --base-from-git`` end to end: builds
recorded at commits of a real git history (made by the test: main, a branch, a merge, shallow
clones) in the S3 and objectstore test servers, the base chosen and folded from them, and how
the choice is told in the summary, comparison.json and report.html; the library's
`compare_builds` given the base found."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from markupsafe import escape

from compare.builds import compare_builds
from compare.cli import EXIT_BAD_INPUT, EXIT_DIFFERENCES, EXIT_SAME
from compare.inputs.baseline import BaseBuild, default_manifest_key, find_base_from_git, record_key
from compare.output.report_json import comparison_dict
from fetchers import fetcher_from_url
from testing.s3 import REGION
from tests.compare.helpers import png, read_comparison, run, statuses, write_folder

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_store_settings_from_environment")]


@pytest.fixture
def s3_url(s3_server, s3_bucket, s3_env, monkeypatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    return f"s3://{s3_bucket}/ci"


@pytest.fixture
def objectstore_url(objectstore_server) -> str:
    host = objectstore_server.url.removeprefix("http://")
    return f"objectstore+http://{host}/preprod?org=1&project=2&prefix={uuid.uuid4().hex}"


@pytest.fixture(params=["s3", "objectstore"])
def store(request) -> str:
    """The URL of a fresh, empty store on the S3 or the objectstore test server."""
    return request.getfixturevalue(f"{request.param}_url")


def upload(capsys, store: str, folder: Path, commit: str, *options: str | Path) -> tuple[int, str, str]:
    return run(capsys, "upload", folder, "--store", store, "--commit", commit, "--quiet", *options)


def compare_from_git(
    capsys, store: str, repository: Path, head: Path, out: Path, *options: str
) -> tuple[int, str, str]:
    return run(capsys, "compare", "--base-from-git", "--repo", repository, "--head", head, "--store", store,
               "--out", out, *options)


def html(out: Path) -> str:
    return (out / "report.html").read_text(encoding="utf-8")


COMPLETE = {"a.png": png(1), "b.png": png(2), "c.png": png(3), "d.png": png(4)}


def test_the_nearest_complete_build_with_the_selective_ones_folded_on_is_the_base(history, store, tmp_path, capsys):
    m1 = write_folder(tmp_path / "m1", COMPLETE)
    m3 = write_folder(tmp_path / "m3", {"a.png": png(11)})
    m4 = write_folder(tmp_path / "m4", {"b.png": png(12)})
    head = write_folder(tmp_path / "head", {"a.png": png(11), "b.png": png(12), "c.png": png(3),
                                            "d.png": png(44), "e.png": png(5)})
    code, stdout, _ = upload(capsys, store, m1, history.m1.upper(), "--branch", "main")
    assert code == EXIT_SAME
    assert (f"manifest: store key builds/{history.m1}/manifest.json; recorded the complete build of commit "
            f"{history.m1} on main: builds/{history.m1}/build.json") in stdout
    code, stdout, _ = upload(capsys, store, m3, history.m3, "--branch", "main", "--selective",
                             "-o", tmp_path / "m3.json")
    assert code == EXIT_SAME and f"recorded the selective build of commit {history.m3} on main" in stdout
    assert upload(capsys, store, m4, history.m4, "--selective")[0] == EXIT_SAME
    for commit, folder in ((history.s1, m3), (history.m6, m4)):  # not first-parent ancestors of the merge-base
        assert upload(capsys, store, folder, commit)[0] == EXIT_SAME
    assert upload(capsys, store, m1, history.m1, "--branch", "main")[0] == EXIT_SAME  # again: harmless
    with fetcher_from_url(store) as fetcher:
        assert fetcher.fetch(default_manifest_key(history.m3)) == (tmp_path / "m3.json").read_bytes()
        assert json.loads(fetcher.fetch(record_key(history.m3)))["selective"] is True

    out = tmp_path / "out"
    code, stdout, stderr = compare_from_git(capsys, store, history.repo.path, head, out)

    assert code == EXIT_DIFFERENCES, stderr
    report = read_comparison(out)
    # a and b are the selective builds' own: unchanged only because they are folded onto m1
    assert statuses(report) == {"a.png": "unchanged", "b.png": "unchanged", "c.png": "unchanged",
                                "d.png": "changed", "e.png": "added"}
    chosen_by = (f"base build: commit {history.m1}, the nearest complete build, 4 first-parent commits back from "
                 f"the merge-base {history.m5}, with 2 selective builds folded onto it; without the walk there "
                 "would be none: the merge-base has no build")
    assert report["base_build"] == {
        "commit": history.m1, "merge_base": history.m5, "ancestors_walked": 4,
        "selective_layers": [history.m4, history.m3], "manifest_key": default_manifest_key(history.m1),
        "uploaded_at": report["base_build"]["uploaded_at"], "chosen_by": chosen_by, "without_walk": None}
    assert report["base_source"] == f"store:builds/{history.m1}/manifest.json with 2 selective builds folded onto it"
    assert "\n\nB" + chosen_by[1:] + "\n" in stdout
    assert f"\n  selective builds folded onto it, nearest the merge-base first: {history.m4}, {history.m3}\n" in stdout
    page = html(out)
    assert f"<strong>Base build</strong> <code>{history.m1}</code>, found in the head's git history" in page
    assert f"<p>{escape(chosen_by)}</p>" in page
    assert f"<code>{history.m4}</code>, <code>{history.m3}</code></p>" in page


def test_a_complete_build_at_the_merge_base_is_the_base_and_a_selective_one_is_what_it_would_have_been(
    history, objectstore_url, tmp_path, capsys, monkeypatch
):
    m2 = write_folder(tmp_path / "m2", COMPLETE)
    m5 = write_folder(tmp_path / "m5", {"d.png": png(44)})
    upload(capsys, objectstore_url, m2, history.m2)
    upload(capsys, objectstore_url, m5, history.m5, "--selective")
    monkeypatch.chdir(history.repo.path)  # --repo defaults to the current folder

    code, stdout, _ = run(capsys, "compare", "--base-from-git", "--head", m2, "--store", objectstore_url,
                          "--out", tmp_path / "out")

    assert code == EXIT_DIFFERENCES and statuses(read_comparison(tmp_path / "out"))["d.png"] == "changed"
    base = read_comparison(tmp_path / "out")["base_build"]
    assert (base["commit"], base["ancestors_walked"], base["selective_layers"]) == (history.m2, 3, [history.m5])
    assert base["without_walk"] == {"commit": history.m5, "selective": True}
    assert "without the walk it would be the merge-base's selective build alone\n" in stdout

    upload(capsys, objectstore_url, m2, history.m5)  # the merge-base's build, complete this time
    code, stdout, _ = run(capsys, "compare", "--base-from-git", "--head", m2, "--store", objectstore_url,
                          "--out", tmp_path / "out")
    assert code == EXIT_SAME
    base = read_comparison(tmp_path / "out")["base_build"]
    assert (base["commit"], base["ancestors_walked"], base["selective_layers"]) == (history.m5, 0, [])
    assert base["without_walk"] == {"commit": history.m5, "selective": False}
    assert f"\nBase build: commit {history.m5}, the merge-base's complete build\n" in stdout


def test_no_base_build_adds_every_head_image_exits_1_and_says_how_to_record_one(history, store, tmp_path, capsys):
    upload(capsys, store, write_folder(tmp_path / "m4", {"a.png": png(1)}), history.m4, "--selective")
    upload(capsys, store, write_folder(tmp_path / "s1", COMPLETE), history.s1)  # on the side branch only
    head = write_folder(tmp_path / "head", {"a.png": png(1), "b.png": png(2)})

    code, stdout, stderr = compare_from_git(capsys, store, history.repo.path, head, tmp_path / "out",
                                            "--base-branch", "main")

    assert code == EXIT_DIFFERENCES
    report = read_comparison(tmp_path / "out")
    assert statuses(report) == {"a.png": "added", "b.png": "added"}
    message = (f"no base build: no complete build among the 5 commits looked at, the merge-base {history.m5} and "
               "its first-parent ancestors; 1 selective build found, with no complete build beneath to fold onto; "
               "every head image is added. Record a complete (not selective) build of a commit of the base "
               "branch, such as its tip, and later comparisons find it")
    assert stderr.startswith(
        f"snapcompare: {message}\nsnapcompare: to record one, upload a build of main by its commit, as CI does on "
        "each push to it: snapcompare upload DIR --store URL --commit <commit of main> --branch main\n")
    assert report["base_build"] == {
        "commit": None, "merge_base": history.m5, "ancestors_walked": 4, "selective_layers": [],
        "selective_builds": [history.m4], "chosen_by": message, "without_walk": None}
    assert report["base_source"] == "no base build"
    assert "\n\nNo base build: no complete build among the 5 commits" in stdout
    assert f"\n  selective builds found: {history.m4}\n" in stdout
    assert "<strong>No base build</strong> in the head's git history: every head image is added" in html(
        tmp_path / "out")


def test_the_walk_stops_at_max_ancestors(history, objectstore_url, tmp_path, capsys):
    upload(capsys, objectstore_url, write_folder(tmp_path / "m1", COMPLETE), history.m1)
    head = write_folder(tmp_path / "head", COMPLETE)

    code, _, stderr = compare_from_git(capsys, objectstore_url, history.repo.path, head, tmp_path / "out",
                                       "--max-ancestors", "4")

    assert code == EXIT_DIFFERENCES and "among the 4 commits looked at (the limit of 4)" in stderr
    code, _, _ = compare_from_git(capsys, objectstore_url, history.repo.path, head, tmp_path / "out",
                                  "--max-ancestors", "5")
    assert code == EXIT_SAME and read_comparison(tmp_path / "out")["base_build"]["commit"] == history.m1


def test_a_shallow_clone_tells_how_much_more_to_fetch(history, objectstore_url, tmp_path, capsys):
    upload(capsys, objectstore_url, write_folder(tmp_path / "m1", COMPLETE), history.m1)
    head = write_folder(tmp_path / "head", COMPLETE)
    clone = history.repo.clone(tmp_path / "clone", "--depth=3", "--no-single-branch", "--branch=feature")

    code, _, stderr = compare_from_git(capsys, objectstore_url, clone, head, tmp_path / "out", "--max-ancestors", "10")

    assert code == EXIT_DIFFERENCES
    assert ("; the repository is a shallow clone whose history stops 2 commits back from the merge-base, short of "
            "the 10 looked at: fetch more of it (git fetch --deepen=8, or a fetch depth of at least 12; fetch depth "
            "0 fetches all of it)\n") in stderr
    assert "shallow clone" in read_comparison(tmp_path / "out")["base_build"]["chosen_by"]

    shallower = history.repo.clone(tmp_path / "shallower", "--depth=1", "--no-single-branch", "--branch=feature")
    code, stdout, stderr = compare_from_git(capsys, objectstore_url, shallower, head, tmp_path / "out2")
    assert code == EXIT_BAD_INPUT and stdout == ""
    assert stderr == (f"snapcompare: error: git repository {shallower}: HEAD and origin/main have no common commit "
                      "in the history this shallow clone has: fetch all of it (fetch depth 0) or deepen it (git "
                      "fetch --deepen=N)\n")


def test_a_missing_manifest_names_the_key_and_the_store(history, s3_url, tmp_path, capsys):
    head = write_folder(tmp_path / "head", COMPLETE)
    code, _, stderr = run(capsys, "compare", "--base", "store:builds/nothing/manifest.json", "--head", head,
                          "--store", s3_url, "--out", tmp_path / "out")
    assert code == EXIT_BAD_INPUT
    assert stderr == (f"snapcompare: error: --base 'store:builds/nothing/manifest.json': no such blob (in {s3_url})\n")

    upload(capsys, s3_url, head, history.m5, "--manifest-key", "elsewhere/m5.json")
    with fetcher_from_url(s3_url) as fetcher:
        record = json.loads(fetcher.fetch(record_key(history.m5)))
        assert record["manifest_key"] == "elsewhere/m5.json" and fetcher.exists("elsewhere/m5.json")
        fetcher.put(record_key(history.m5), json.dumps({**record, "manifest_key": "gone/m5.json"}).encode())
    code, _, stderr = compare_from_git(capsys, s3_url, history.repo.path, head, tmp_path / "out")
    assert code == EXIT_BAD_INPUT
    assert stderr == (f"snapcompare: error: cannot read the manifest of 1 build(s) in {s3_url}: commit {history.m5}: "
                      "gone/m5.json: no such blob\n")


def test_a_shared_manifest_key_written_over_by_a_later_build_is_told_not_compared(history, s3_url, tmp_path,
                                                                                    capsys):
    # Main records each commit under one fixed key: the merge-base's record still names it, but
    # a later commit of main (m6) has written its own manifest there since.
    at_merge_base = write_folder(tmp_path / "m5", COMPLETE)
    later = write_folder(tmp_path / "m6", {**COMPLETE, "a.png": png(21)})
    assert upload(capsys, s3_url, at_merge_base, history.m5, "--manifest-key", "manifests/main.json")[0] == EXIT_SAME
    assert upload(capsys, s3_url, later, history.m6, "--manifest-key", "manifests/main.json")[0] == EXIT_SAME
    code, _, stderr = compare_from_git(capsys, s3_url, history.repo.path, at_merge_base, tmp_path / "out")
    assert code == EXIT_BAD_INPUT
    assert stderr.startswith(f"snapcompare: error: cannot read the manifest of 1 build(s) in {s3_url}: commit "
                             f"{history.m5}: manifests/main.json: not the manifest this commit recorded (sha256 ")
    assert "another build has written over the key since" in stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("args", "expected"), [
    (["--base", "b.json", "--base-from-git"], "argument --base-from-git: not allowed with argument --base"),
    ([], "one of the arguments --base --base-from-git is required"),
    (["--base", "b.json", "--repo", "."], "--repo goes with --base-from-git, not --base"),
    (["--base-from-git"], "--base-from-git reads the builds recorded by commit from a store: pass --store URL"),
    (["--base-from-git", "--max-ancestors", "0"], "argument --max-ancestors: expected a positive integer"),
])
def test_base_options_that_do_not_go_together_are_usage_errors(args, expected, tmp_path, capsys):
    code, stdout, stderr = run(capsys, "compare", *args, "--head", tmp_path, "--out", tmp_path / "out")
    assert code == EXIT_BAD_INPUT and stdout == ""
    assert expected in stderr and "Traceback" not in stderr


@pytest.mark.parametrize(("args", "expected"), [
    (["--branch", "main"], "--branch and --selective describe the build of a commit: pass --commit SHA"),
    (["--selective"], "--branch and --selective describe the build of a commit: pass --commit SHA"),
    (["--commit", "abc1234"], "--commit 'abc1234': expected a full commit id (40 or 64 hex digits)"),
    (["--commit", "a" * 40, "--branch", "x\ny"], "--branch 'x\\ny': expected a non-empty name"),
])
def test_upload_refuses_a_bad_build_description_before_uploading(args, expected, tmp_path, capsys):
    folder, store = write_folder(tmp_path / "shots", {"a.png": png(1)}), tmp_path / "store"
    store.mkdir()
    code, _, stderr = run(capsys, "upload", folder, "--store", store, *args)
    assert code == EXIT_BAD_INPUT and expected in stderr
    assert list(store.iterdir()) == []


def test_compare_builds_takes_the_base_found_and_says_how_it_was_chosen(history, objectstore_url, tmp_path, capsys):
    upload(capsys, objectstore_url, write_folder(tmp_path / "m3", COMPLETE), history.m3)
    head = write_folder(tmp_path / "head", {**COMPLETE, "d.png": png(44)})
    with fetcher_from_url(objectstore_url) as store:
        found = find_base_from_git(history.repo.path, store, "main")
        assert isinstance(found, BaseBuild)
        comparison = compare_builds(found, head, store=store)
        given = compare_builds(found.manifest, head, store=store)

    assert comparison.base_build == found.to_json() and comparison_dict(comparison)["base_build"] == found.to_json()
    assert {n: r.status.value for n, r in comparison.images.items()} == {
        n: r.status.value for n, r in given.images.items()} == {
        "a.png": "unchanged", "b.png": "unchanged", "c.png": "unchanged", "d.png": "changed"}
    assert given.base_build is None and comparison_dict(given)["base_build"] is None
    assert comparison.base_source == given.base_source == f"store:{default_manifest_key(history.m3)}"
