"""Image folders and unusual manifests through the ``snapcompare`` command: a sub-folder that is
not listed (a symlink, or one that cannot be listed) is named, and the other side's images
under it are errored, never reported added or removed; odd values are bad input (exit 3)."""

from __future__ import annotations

import json
import os

import pytest

from compare.cli import EXIT_BAD_INPUT, EXIT_DIFFERENCES, EXIT_ERRORED, EXIT_SAME
from testing.files import make_too_long_paths
from tests.compare.helpers import png, read_comparison, run, sha, write_folder

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("no_store_settings_from_environment")]

HOME, TOP = png(1), png(2)


@pytest.fixture
def builds(tmp_path):
    """A base with ``ios/home.png``, and a head whose ``ios/`` is a symlink leading out of it."""
    base = write_folder(tmp_path / "base", {"ios/home.png": HOME, "top.png": TOP})
    head = write_folder(tmp_path / "head", {"top.png": TOP})
    write_folder(tmp_path / "real-ios", {"home.png": HOME})
    (head / "ios").symlink_to(tmp_path / "real-ios")
    return base, head


def test_a_symlinked_sub_folder_is_compared_when_followed(tmp_path, capsys, builds):
    base, head = builds
    code, _, _ = run(capsys, "compare", "--base", base, "--head", head, "--out", tmp_path / "out",
                     "--follow-symlinks", "--quiet")
    assert code == EXIT_SAME
    images = read_comparison(tmp_path / "out")["images"]
    assert {name: image["status"] for name, image in images.items()} == {
        "ios/home.png": "unchanged", "top.png": "unchanged"}


def test_an_unfollowed_symlinked_sub_folder_and_the_images_under_it_are_errored(tmp_path, capsys, builds):
    base, head = builds
    code, _, _ = run(capsys, "compare", "--base", base, "--head", head, "--out", tmp_path / "out", "--quiet")

    assert code == EXIT_ERRORED
    images = read_comparison(tmp_path / "out")["images"]
    reason = "a symlink leading outside the input folder; not entered (pass --follow-symlinks to enter it)"
    assert {name: (image["status"], image.get("detail")) for name, image in images.items()} == {
        "ios/": ("errored", f"head image folder: {reason}"),
        "ios/home.png": ("errored", f'head image folder "ios/": {reason}'),
        "top.png": ("unchanged", None),
    }


def test_the_manifest_command_names_an_unfollowed_symlinked_folder(tmp_path, capsys, builds):
    _, head = builds
    code, _, err = run(capsys, "manifest", head, "-o", tmp_path / "m.json")
    assert code == EXIT_SAME
    assert "left out ios/: a symlink leading outside the input folder" in err
    assert list(json.loads((tmp_path / "m.json").read_text())["images"]) == ["top.png"]

    code, _, _ = run(capsys, "manifest", head, "--follow-symlinks", "-o", tmp_path / "m.json")
    assert code == EXIT_SAME
    assert list(json.loads((tmp_path / "m.json").read_text())["images"]) == ["ios/home.png", "top.png"]


def test_base_images_under_a_head_folder_that_cannot_be_listed_are_errored(tmp_path, capsys):
    head = tmp_path / "head"
    head.mkdir()
    write_folder(head, {"top.png": TOP})
    long_file, unlisted = make_too_long_paths(head, HOME)
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"images": {
        name: {"content_hash": sha(data), "width": 100, "height": 100}
        for name, data in ((f"{unlisted}x.png", HOME), ("top.png", TOP))}}))
    (tmp_path / "store").mkdir()

    code, _, _ = run(capsys, "compare", "--base", base, "--head", head, "--store", tmp_path / "store",
                     "--out", tmp_path / "out", "--quiet")

    assert code == EXIT_ERRORED
    images = read_comparison(tmp_path / "out")["images"]
    assert {name: image["status"] for name, image in images.items()} == {
        long_file: "errored", unlisted: "errored", f"{unlisted}x.png": "errored", "top.png": "unchanged"}
    assert images[f"{unlisted}x.png"]["detail"].startswith(f'head image folder "{unlisted}": a folder that '
                                                           "cannot be listed: File name too long")


def test_an_undecodable_file_name_is_matched_against_name_patterns(tmp_path, capsys):
    base = write_folder(tmp_path / "base", {"a.png": TOP})
    (base / os.fsdecode(b"\xff.png")).write_bytes(HOME)
    (tmp_path / "store").mkdir()
    entry = {"content_hash": sha(TOP), "width": 100, "height": 100}

    def compare(patterns: list[str]) -> tuple[int, dict]:
        head = tmp_path / "head.json"
        head.write_text(json.dumps({"images": {"a.png": entry}, "all_image_file_names_as_regex": patterns}))
        code, _, _ = run(capsys, "compare", "--base", base, "--head", head, "--store", tmp_path / "store",
                         "--out", tmp_path / "out", "--quiet")
        return code, read_comparison(tmp_path / "out")["images"]

    # Not declared: gone from the head. Declared by a pattern holding the same lone surrogate: skipped.
    code, images = compare([r"a\.png"])
    assert code == EXIT_DIFFERENCES and images["\udcff.png"]["status"] == "removed"
    code, images = compare([r"a\.png", "\udcff\\.png"])
    assert code == EXIT_SAME and images["\udcff.png"]["status"] == "skipped"


def test_a_huge_integer_threshold_is_bad_input_naming_the_file_and_field(tmp_path, capsys):
    head = tmp_path / "head.json"
    head.write_text('{"images": {}, "diff_threshold": 1' + "0" * 400 + "}")
    code, _, err = run(capsys, "compare", "--base", head, "--head", head, "--store", tmp_path,
                       "--out", tmp_path / "out", "--quiet")
    assert code == EXIT_BAD_INPUT
    assert f"{head}: diff_threshold: expected a number >= 0 and < 1, got a number" in err


def test_a_symlink_too_deep_to_follow_is_named_and_the_images_under_it_errored(tmp_path, capsys):
    # A chain of 41 links (past the system's 40): whether it leads to a folder cannot be told.
    base = write_folder(tmp_path / "base", {"ios/home.png": HOME, "top.png": TOP})
    head = write_folder(tmp_path / "head", {"top.png": TOP})
    write_folder(tmp_path / "real-ios", {"home.png": HOME})
    target = tmp_path / "real-ios"
    for index in range(41):
        (tmp_path / f"link{index}").symlink_to(target)
        target = tmp_path / f"link{index}"
    (head / "ios").symlink_to(target)

    code, _, _ = run(capsys, "compare", "--base", base, "--head", head, "--out", tmp_path / "out",
                     "--follow-symlinks", "--quiet")

    assert code == EXIT_ERRORED
    images = read_comparison(tmp_path / "out")["images"]
    assert {name: image["status"] for name, image in images.items()} == {
        "ios/": "errored", "ios/home.png": "errored", "top.png": "unchanged"}
    assert images["ios/home.png"]["detail"].startswith('head image folder "ios/": a symlink that cannot be followed')
