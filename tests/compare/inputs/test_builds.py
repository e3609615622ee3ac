"""compare.inputs.baseline: builds recorded by commit in a real store (S3 and objectstore test
servers), a base chosen from a real git history (made by the test: commits on main and a branch, a
merge, shallow clones) and completed by Sentry's rules, checked against a re-declaration of
Sentry's ``reconstruct_base_manifest``."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compare.inputs.baseline import (
    BaseBuild,
    BaselineError,
    GitError,
    NoBaseBuild,
    check_commit,
    default_manifest_key,
    find_base,
    find_base_from_git,
    fold_layers,
    read_builds,
    record_build,
    record_key,
)
from compare.inputs.manifest import Manifest, dump_manifest, parse_manifest
from fetchers import BlobNotFound, fetcher_from_url
from tests.sentry_models import SnapshotManifest
from tests.sentry_reconstruction import reconstruct_base_manifest

pytestmark = pytest.mark.integration


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def build(images: dict[str, str], *, selective: bool = False, names: list[str] | None = None,
          patterns: list[str] | None = None) -> Manifest:
    """A manifest of ``images`` (name -> a word hashed into its content hash)."""
    data: dict = {"images": {name: {"content_hash": digest(word), "width": 4, "height": 3}
                             for name, word in images.items()}, "selective": selective}
    if names is not None:
        data["all_image_file_names"] = names
    if patterns is not None:
        data["all_image_file_names_as_regex"] = patterns
    return parse_manifest(data, "test")


def contents(manifest: Manifest) -> dict[str, tuple[str, int | None, int | None]]:
    return {name: (e.content_hash, e.width, e.height) for name, e in manifest.images.items()}


def sentry_fold(chain: list[Manifest]) -> dict[str, tuple[str, int, int]] | None:
    """The re-declared Sentry reconstruction of ``chain`` (base first), as `contents` shows it."""
    result = reconstruct_base_manifest([SnapshotManifest.model_validate(dump_manifest(m)) for m in chain])
    if result.manifest is None:
        return None
    return {name: (m.content_hash, m.width, m.height) for name, m in result.manifest.images.items()}


class MemoryStore:
    """A thread-safe-enough dict store (one writer at a time in these tests)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.reads: list[str] = []

    def fetch(self, key: str) -> bytes:
        self.reads.append(key)
        if key not in self.blobs:
            raise BlobNotFound(key)
        return self.blobs[key]

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.blobs[key] = data

    def exists(self, key: str) -> bool:
        return key in self.blobs


def commit_id(n: int) -> str:
    return hashlib.sha1(str(n).encode()).hexdigest()


# --- stores ---------------------------------------------------------------------------------


@pytest.fixture(params=["s3", "objectstore"])
def store(request) -> Iterator[object]:
    """A fresh, empty store on the S3 or the objectstore test server."""
    if request.param == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        yield request.getfixturevalue("s3_fetcher_factory")(bucket)
        return
    server = request.getfixturevalue("objectstore_server")
    host = server.url.removeprefix("http://")
    with fetcher_from_url(f"objectstore+http://{host}/preprod?org=1&project=2&prefix={uuid.uuid4().hex}") as fetcher:
        yield fetcher


def test_a_build_is_stored_under_its_commit_and_recorded_beside_it(store):
    commit = commit_id(1)
    manifest = build({"a.png": "a", "b.png": "b"})
    when = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    record = record_build(store, commit.upper(), manifest, branch="main", uploaded_at=when)

    assert record_key(commit) == f"builds/{commit}/build.json"
    assert json.loads(store.fetch(record_key(commit))) == {
        "commit": commit, "branch": "main", "selective": False, "uploaded_at": "2025-03-04T05:06:07+00:00",
        "manifest_key": f"builds/{commit}/manifest.json",
        "manifest_sha256": hashlib.sha256(store.fetch(default_manifest_key(commit))).hexdigest()}
    assert parse_manifest(store.fetch(default_manifest_key(commit)), "stored") == manifest
    assert read_builds(store, [commit, commit_id(2)]) == {commit: record}


def test_recording_a_commit_again_replaces_its_build_and_a_named_key_wins(store):
    commit = commit_id(1)
    record_build(store, commit, build({"a.png": "a"}))
    again = record_build(store, commit, build({"a.png": "changed"}, selective=True), branch="feature",
                         manifest_key="elsewhere/manifest.json")

    assert read_builds(store, [commit]) == {commit: again}
    assert again.selective and again.manifest_key == "elsewhere/manifest.json"
    assert parse_manifest(store.fetch("elsewhere/manifest.json"), "stored") == build({"a.png": "changed"},
                                                                                        selective=True)


def test_looking_up_many_commits_reads_each_record_once_and_lists_nothing(objectstore_server):
    prefix = uuid.uuid4().hex
    host = objectstore_server.url.removeprefix("http://")
    commits = [commit_id(n) for n in range(40)]
    with fetcher_from_url(f"objectstore+http://{host}/preprod?org=1&project=2&prefix={prefix}") as store:
        record_build(store, commits[30], build({"a.png": "a"}))
        record_build(store, commits[3], build({"a.png": "new"}, selective=True))
        before = objectstore_server.counters.by_key("GET")
        found = find_base(commits, store)
        after = objectstore_server.counters.by_key("GET")

    reads = {key.removeprefix(prefix + "/"): n - before.get(key, 0) for key, n in after.items()
             if n != before.get(key, 0)}
    expected = {record_key(c): 1 for c in commits}
    expected.update({default_manifest_key(commits[3]): 1, default_manifest_key(commits[30]): 1})
    assert reads == expected
    assert isinstance(found, BaseBuild) and found.commit == commits[30]


def test_a_malformed_record_is_an_error_naming_its_commit_and_key():
    store = MemoryStore()
    commit = commit_id(7)
    store.blobs[record_key(commit)] = b'{"commit": "' + commit.encode() + b'", "selective": "no"}'
    with pytest.raises(BaselineError) as info:
        read_builds(store, [commit_id(1), commit])
    assert f"commit {commit}: builds/{commit}/build.json: a build record needs" in str(info.value)


def test_a_record_naming_a_missing_manifest_is_an_error_not_an_absent_build():
    store = MemoryStore()
    record_build(store, commit_id(1), build({"a.png": "a"}))
    del store.blobs[default_manifest_key(commit_id(1))]
    with pytest.raises(BaselineError, match=f"the manifest of 1 build.*commit {commit_id(1)}: .*no such blob"):
        find_base([commit_id(1)], store)


@pytest.mark.parametrize("commit", ["abc1234", "", "g" * 40, "a" * 41, None])
def test_only_full_commit_ids_name_builds(commit):
    with pytest.raises(BaselineError, match="expected a full commit id"):
        check_commit(commit)


# --- the fold, against Sentry's -------------------------------------------------------------

NAMES = ["a.png", "b.png", "c.png", "d.png"]
images_of = st.dictionaries(st.sampled_from(NAMES), st.sampled_from("wxyz"), max_size=len(NAMES))


@st.composite
def builds(draw) -> Manifest | None:
    kind = draw(st.sampled_from(["none", "complete", "selective", "listed"]))
    if kind == "none":
        return None
    images = draw(images_of)
    if kind == "listed":
        extra = draw(st.lists(st.sampled_from(NAMES), max_size=len(NAMES)))
        return build(images, selective=draw(st.booleans()), names=sorted(set(images) | set(extra)))
    return build(images, selective=kind == "selective")


@settings(max_examples=150, deadline=None)
@given(st.lists(builds(), min_size=1, max_size=8))
def test_the_base_and_its_fold_are_sentrys(history):
    store = MemoryStore()
    commits = [commit_id(n) for n in range(len(history))]
    for commit, manifest in zip(commits, history, strict=True):
        if manifest is not None:
            record_build(store, commit, manifest)

    found = find_base(commits, store)

    chain = [m for m in history if m is not None]
    expected = sentry_fold(chain)
    if expected is None:
        assert isinstance(found, NoBaseBuild)
        assert found.manifest.images == {}
        assert found.selective_builds == tuple(c for c, m in zip(commits, history, strict=True) if m is not None)
        return
    assert isinstance(found, BaseBuild)
    assert contents(found.manifest) == expected
    assert not found.manifest.selective and found.manifest.declared_names() is None
    anchor = next(i for i, m in enumerate(history) if m is not None and not m.selective
                  and m.all_image_file_names is None)
    assert found.commit == commits[anchor] and found.ancestors_walked == anchor
    assert found.selective_layers == tuple(
        c for c, m in zip(commits[:anchor], history[:anchor], strict=True) if m is not None
    )


def test_patterns_declare_a_layers_names_as_a_list_does():
    complete = build({"a.png": "a", "b.png": "b", "login/c.png": "c"})
    layer = build({"a.png": "new"}, patterns=[r"[ab]\.png"])
    assert contents(fold_layers(complete, [layer])) == contents(build({"a.png": "new", "b.png": "b"}))


def test_a_record_that_says_complete_over_a_selective_manifest_does_not_end_the_walk():
    store = MemoryStore()
    commits = [commit_id(n) for n in range(3)]
    record_build(store, commits[0], build({"a.png": "a2"}, selective=True))
    record_build(store, commits[1], build({"b.png": "b2"}, selective=True))
    record_build(store, commits[2], build({"a.png": "a", "b.png": "b", "c.png": "c"}))
    record = json.loads(store.blobs[record_key(commits[1])])
    store.blobs[record_key(commits[1])] = json.dumps({**record, "selective": False}).encode()

    found = find_base(commits, store)

    assert isinstance(found, BaseBuild) and found.commit == commits[2]
    assert found.selective_layers == (commits[0], commits[1])
    assert contents(found.manifest) == contents(build({"a.png": "a2", "b.png": "b2", "c.png": "c"}))


# --- a real history -------------------------------------------------------------------------
# (the `history` and `git_env` fixtures of tests/compare/conftest.py)


def test_the_nearest_complete_first_parent_build_is_the_base_with_the_selective_ones_folded_on(history, store):
    m1 = build({"a.png": "a", "b.png": "b", "c.png": "c", "d.png": "d"})
    m3 = build({"a.png": "a3"}, selective=True)
    m4 = build({"b.png": "b4", "e.png": "e4"}, names=["a.png", "b.png", "e.png"])
    for commit, manifest in ((history.m1, m1), (history.m3, m3), (history.m4, m4)):
        record_build(store, commit, manifest, branch="main")
    record_build(store, history.s1, build({"x.png": "x"}), branch="side")  # not a first parent
    record_build(store, history.m6, build({"y.png": "y"}), branch="main")  # after the fork

    found = find_base_from_git(history.repo.path, store, "main")

    assert isinstance(found, BaseBuild)
    assert (found.commit, found.merge_base, found.ancestors_walked) == (history.m1, history.m5, 4)
    assert found.selective_layers == (history.m4, history.m3)
    assert contents(found.manifest) == sentry_fold([m4, m3, m1])
    assert sorted(found.manifest.images) == ["a.png", "b.png", "e.png"]  # c and d removed by m4's list
    assert found.manifest.source == f"store:{default_manifest_key(history.m1)} with 2 selective builds folded onto it"
    assert found.to_json() == {
        "commit": history.m1, "merge_base": history.m5, "ancestors_walked": 4,
        "selective_layers": [history.m4, history.m3], "manifest_key": default_manifest_key(history.m1),
        "uploaded_at": found.record.uploaded_at, "chosen_by": found.message, "without_walk": None}
    assert found.message == (
        f"base build: commit {history.m1}, the nearest complete build, 4 first-parent commits back from "
        f"the merge-base {history.m5}, with 2 selective builds folded onto it; without the walk there would "
        "be none: the merge-base has no build")


def test_a_complete_build_at_the_merge_base_is_the_base_as_it_is(history, store):
    record_build(store, history.m1, build({"a.png": "old"}))
    merge_base_build = record_build(store, history.m5, build({"a.png": "a"}))

    found = find_base_from_git(history.repo.path, store, "main")

    assert isinstance(found, BaseBuild)
    assert (found.commit, found.ancestors_walked, found.selective_layers) == (history.m5, 0, ())
    assert found.manifest == build({"a.png": "a"}) and found.merge_base_build == merge_base_build
    assert found.message == f"base build: commit {history.m5}, the merge-base's complete build"
    assert found.to_json()["without_walk"] == {"commit": history.m5, "selective": False}


def test_a_selective_merge_base_says_what_the_base_would_have_been_without_the_walk(history, store):
    record_build(store, history.m2, build({"a.png": "a", "b.png": "b"}))
    record_build(store, history.m5, build({"b.png": "b5"}, selective=True))

    found = find_base_from_git(history.repo.path, store, "main")

    assert isinstance(found, BaseBuild) and found.selective_layers == (history.m5,)
    assert found.to_json()["without_walk"] == {"commit": history.m5, "selective": True}
    assert found.message.endswith("; without the walk it would be the merge-base's selective build alone")
    assert contents(found.manifest) == contents(build({"a.png": "a", "b.png": "b5"}))


def test_a_branch_whose_history_has_no_complete_build_gets_an_empty_base_and_says_how_to_start(history, store):
    record_build(store, history.m4, build({"a.png": "a"}, selective=True))
    record_build(store, history.s1, build({"a.png": "a"}))

    found = find_base_from_git(history.repo.path, store, "main")

    assert isinstance(found, NoBaseBuild)
    assert found.manifest.images == {} and found.selective_builds == (history.m4,)
    assert found.to_json() == {
        "commit": None, "merge_base": history.m5, "ancestors_walked": 4, "selective_layers": [],
        "selective_builds": [history.m4], "chosen_by": found.message, "without_walk": None}
    assert found.message == (
        f"no base build: no complete build among the 5 commits looked at, the merge-base {history.m5} and "
        "its first-parent ancestors; 1 selective build found, with no complete build beneath to fold onto; "
        "every head image is added. Record a complete (not selective) build of a commit of the base "
        "branch, such as its tip, and later comparisons find it")


def test_the_walk_stops_at_its_limit(history, store):
    record_build(store, history.m1, build({"a.png": "a"}))

    assert isinstance(find_base_from_git(history.repo.path, store, "main", max_ancestors=5), BaseBuild)
    found = find_base_from_git(history.repo.path, store, "main", max_ancestors=4)
    assert isinstance(found, NoBaseBuild) and found.ancestors_walked == 3
    assert "among the 4 commits looked at (the limit of 4)" in found.message


def test_a_head_given_by_revision_and_a_local_base_branch(history):
    store = MemoryStore()
    record_build(store, history.m2, build({"a.png": "a"}))
    found = find_base_from_git(history.repo.path, store, "side", head="main")
    assert isinstance(found, BaseBuild) and (found.merge_base, found.commit) == (history.s1, history.m2)


def test_a_shallow_clone_without_the_merge_base_says_so_and_what_to_fetch(history, tmp_path):
    clone = history.repo.clone(tmp_path / "clone", "--depth=1", "--no-single-branch", "--branch=feature")
    with pytest.raises(GitError) as info:
        find_base_from_git(clone, MemoryStore(), "main")
    assert info.value.repository == str(clone)
    assert str(info.value) == (
        f"git repository {clone}: HEAD and origin/main have no common commit in the history this shallow "
        "clone has: fetch all of it (fetch depth 0) or deepen it (git fetch --deepen=N)")


def test_a_shallow_clone_whose_history_ends_before_a_complete_build_says_how_much_to_fetch(history, tmp_path):
    store = MemoryStore()
    record_build(store, history.m4, build({"a.png": "a4"}, selective=True))
    record_build(store, history.m1, build({"a.png": "a", "b.png": "b"}))
    clone = history.repo.clone(tmp_path / "clone", "--depth=3", "--no-single-branch", "--branch=feature")

    found = find_base_from_git(clone, store, "main", max_ancestors=10)

    assert isinstance(found, NoBaseBuild) and found.ancestors_walked == 1  # m5 and m4, then the clone ends
    assert found.history_note == (
        "the repository is a shallow clone whose history stops 2 commits back from the merge-base, short "
        "of the 10 looked at: fetch more of it (git fetch --deepen=8, or a fetch depth of at least 12; "
        "fetch depth 0 fetches all of it)")
    assert found.message.endswith(found.history_note)

    history.repo.run_in(clone, "fetch", "-q", "--deepen=8")
    found = find_base_from_git(clone, store, "main", max_ancestors=10)
    assert isinstance(found, BaseBuild) and found.commit == history.m1


def test_a_base_branch_that_is_not_there_is_named_with_how_to_fetch_it(history):
    with pytest.raises(GitError, match="neither origin/release nor release names a commit: fetch the base "
                                       r"branch first \(git fetch origin release\)"):
        find_base_from_git(history.repo.path, MemoryStore(), "release")


@pytest.mark.parametrize("head", ["--output=/tmp/x", "no-such-rev"])
def test_a_head_that_names_no_commit_is_refused_and_never_read_as_an_option(history, head):
    with pytest.raises(GitError, match=f"{head!r} names no commit"):
        find_base_from_git(history.repo.path, MemoryStore(), "main", head=head)


def test_a_folder_that_is_not_a_repository_is_named(tmp_path, git_env):
    with pytest.raises(GitError) as info:
        find_base_from_git(tmp_path, MemoryStore(), "main")
    assert str(info.value).startswith(f"git repository {tmp_path}: git rev-parse failed: fatal: not a git repository")
