"""snapcompare as a drop-in for Sentry's preprod snapshot comparison, through the CLI.

Each case of Sentry's categorisation (see the module doc of `compare.classify`) builds the two
manifests, runs ``snapcompare compare`` against a local folder store and checks every status;
every ``comparison.json`` written is validated with Sentry's models (`tests.sentry_models`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import struct
import zlib
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from compare import classify
from compare.classify import EXACT_PAIRS, categorize, pair_by_similarity
from compare.cli import EXIT_BAD_INPUT, EXIT_DIFFERENCES, EXIT_ERRORED, EXIT_SAME, main
from compare.inputs.approved import approved_fingerprints, comparison_fingerprints
from compare.inputs.manifest import ImageEntry, Manifest
from compare.model import ImageResult, Status
from compare.output.sentry_keys import mask_image_id, path_stem
from tests.sentry_models import ComparisonManifest, SnapshotManifestWithRegex

pytestmark = pytest.mark.unit

RED = (200, 30, 30, 255)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(size: tuple[int, int] = (10, 10), colour=RED, *, dots=(), text: str = "") -> bytes:
    """A PNG filled with ``colour``, with ``dots`` ((x, y), rgba) drawn; ``text`` changes only the bytes."""
    image = Image.new("RGBA", size, colour)
    for at, rgba in dots:
        image.putpixel(at, rgba)
    info = PngImagePlugin.PngInfo()
    if text:
        info.add_text("note", text)
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def label_png(label: str) -> bytes:
    """A distinct 10x10 picture per label: equal labels, equal bytes."""
    digest = hashlib.sha256(label.encode()).digest()
    return png(colour=(digest[0], digest[1], digest[2], 255))


@dataclass
class Store:
    """A local folder store: blobs by sha256, and manifests written beside it."""

    root: Path

    def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        (self.root / key).write_bytes(data)
        return key

    def manifest(self, images: dict, **top) -> dict:
        """Sentry's manifest of ``images``: name -> label, bytes, or (label or bytes, width, height, extra)."""
        entries = {}
        for name, spec in images.items():
            blob, width, height, extra = (spec if isinstance(spec, tuple) else (spec, None, None, {}))
            data = label_png(blob) if isinstance(blob, str) else blob
            if width is None:
                with Image.open(io.BytesIO(data)) as image:
                    width, height = image.size
            entries[name] = {"content_hash": self.put(data), "width": width, "height": height,
                             **extra}
        return {"images": entries, **top}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    root = tmp_path / "store"
    root.mkdir()
    return Store(root)


def compare(tmp_path: Path, store: Store, base: dict, head: dict, *extra: str) -> tuple[int, dict]:
    """Run the CLI on manifests ``base`` and ``head``; return the exit code and comparison.json."""
    paths = []
    for role, data in (("base", base), ("head", head)):
        path = tmp_path / f"{role}.json"
        path.write_text(json.dumps(data))
        paths.append(path)
    out = tmp_path / "out"
    code = main(["compare", "--base", str(paths[0]), "--head", str(paths[1]), "--store",
                 str(store.root), "--out", str(out), "--quiet", *extra])
    if code == EXIT_BAD_INPUT:
        return code, {}
    report = json.loads((out / "comparison.json").read_text())
    ComparisonManifest.model_validate(report)
    return code, report


def statuses(report: dict) -> dict[str, str]:
    return {name: image["status"] for name, image in report["images"].items()}


def renames(report: dict) -> dict[str, str]:
    return {name: image["previous_image_file_name"] for name, image in report["images"].items()
            if image["status"] == "renamed"}


# Cases: (id, base images, head images, head flags, statuses, renames) from Sentry's rules.
SEL = {"selective": True}


def listed(*names: str) -> dict:
    return {"selective": True, "all_image_file_names": list(names)}


CATEGORY_CASES = [
    ("A1-same-hash", {"a.png": "h1"}, {"a.png": "h1"}, {}, {"a.png": "unchanged"}, {}),
    ("B1-added", {"a.png": "h1"}, {"a.png": "h1", "b.png": "h2"}, {},
     {"a.png": "unchanged", "b.png": "added"}, {}),
    ("B2-removed", {"a.png": "h1", "c.png": "h3"}, {"a.png": "h1"}, {},
     {"a.png": "unchanged", "c.png": "removed"}, {}),
    ("B3-renamed", {"old.png": "h1"}, {"new.png": "h1"}, {}, {"new.png": "renamed"},
     {"new.png": "old.png"}),
    ("B4-rename-needs-equal-hash", {"old.png": "h1"}, {"new.png": "h2"}, {},
     {"new.png": "added", "old.png": "removed"}, {}),
    ("B5-most-similar-pairs", {"home_dark.png": "h1", "home_light.png": "h1"},
     {"home_dark_v2.png": "h1", "home_light_v2.png": "h1"}, {},
     {"home_dark_v2.png": "renamed", "home_light_v2.png": "renamed"},
     {"home_dark_v2.png": "home_dark.png", "home_light_v2.png": "home_light.png"}),
    ("B6-no-minimum-ratio", {"login.png": "h1"}, {"new_login.png": "h1", "zzz.png": "h1"}, {},
     {"new_login.png": "renamed", "zzz.png": "added"}, {"new_login.png": "login.png"}),
    ("B7-greedy-highest-first", {"card_big_old.png": "h1", "cardx.png": "h1"},
     {"card_big.png": "h1", "card.png": "h1"}, {},
     {"card_big.png": "renamed", "card.png": "renamed"},
     {"card.png": "cardx.png", "card_big.png": "card_big_old.png"}),
    ("B8-leftovers-removed", {"shot.png": "h1", "shot_old.png": "h1", "other.png": "h1"},
     {"shot_new.png": "h1"}, {},
     {"shot_new.png": "renamed", "shot_old.png": "removed", "other.png": "removed"},
     {"shot_new.png": "shot.png"}),
    ("C2-rename-onto-skipped", {"old.png": "h1", "b.png": "h2"}, {"new.png": "h1"}, SEL,
     {"new.png": "renamed", "b.png": "skipped"}, {"new.png": "old.png"}),
    ("C3-selective-nothing-uploaded", {"a.png": "h1"}, {}, SEL, {"a.png": "skipped"}, {}),
    ("D2-pass-1-from-unlisted", {"old.png": "h1", "c.png": "h2"}, {"new.png": "h1"},
     listed("new.png", "c.png"), {"new.png": "renamed", "c.png": "skipped"}, {"new.png": "old.png"}),
    ("D3-pass-2-from-listed", {"old.png": "h1"}, {"new.png": "h1"}, listed("new.png", "old.png"),
     {"new.png": "renamed"}, {"new.png": "old.png"}),
    ("D4-pass-1-first", {"gone.png": "h1", "kept.png": "h1"}, {"new.png": "h1"},
     listed("new.png", "kept.png"), {"new.png": "renamed", "kept.png": "skipped"},
     {"new.png": "gone.png"}),
    ("D5-both-passes", {"gone.png": "h1", "kept.png": "h1"},
     {"gone_v2.png": "h1", "kept_v2.png": "h1"}, listed("gone_v2.png", "kept_v2.png", "kept.png"),
     {"gone_v2.png": "renamed", "kept_v2.png": "renamed"},
     {"gone_v2.png": "gone.png", "kept_v2.png": "kept.png"}),
    ("D6-list-without-selective", {"a.png": "h1", "b.png": "h2"}, {"a.png": "h1"},
     {"all_image_file_names": ["a.png", "b.png"]}, {"a.png": "unchanged", "b.png": "skipped"}, {}),
    ("D7-empty-list", {"a.png": "h1"}, {}, listed(), {"a.png": "removed"}, {}),
    ("F12-regex-declared", {"a.png": "h1", "b.png": "h2"}, {},
     {"selective": True, "all_image_file_names_as_regex": [r"a\..*"]},
     {"a.png": "skipped", "b.png": "removed"}, {}),
    ("regex-rename-onto-declared", {"old.png": "h1"}, {"new.png": "h1"},
     {"all_image_file_names_as_regex": [r"(new|old)\.png"]}, {"new.png": "renamed"},
     {"new.png": "old.png"}),
]


@pytest.mark.parametrize(("base", "head", "flags", "expected", "renamed"),
                         [case[1:] for case in CATEGORY_CASES], ids=[c[0] for c in CATEGORY_CASES])
def test_categorisation_case(tmp_path, store, base, head, flags, expected, renamed):
    head_manifest = store.manifest(head, **flags)
    SnapshotManifestWithRegex.model_validate(head_manifest)

    code, report = compare(tmp_path, store, store.manifest(base), head_manifest)

    assert statuses(report) == expected
    assert renames(report) == renamed
    assert report["summary"]["total"] == len(expected)
    differs = any(s in ("added", "removed", "renamed", "changed") for s in expected.values())
    assert code == (EXIT_DIFFERENCES if differs else EXIT_SAME)


def test_d9_the_base_manifests_own_flags_are_ignored(tmp_path, store):
    base = store.manifest({"a.png": "h1", "b.png": "h2"}, **listed("a.png", "b.png", "c.png"))

    _, report = compare(tmp_path, store, base, store.manifest({"a.png": "h1"}))

    assert statuses(report) == {"a.png": "unchanged", "b.png": "removed"}


def test_renamed_and_removed_entries_carry_sentrys_fields(tmp_path, store):
    base = store.manifest({"old.png": "h1", "c.png": ("h3", 7, 9, {})})
    head = store.manifest({"new.png": "h1"})

    _, report = compare(tmp_path, store, base, head)

    new, gone = report["images"]["new.png"], report["images"]["c.png"]
    assert (new["head_hash"], new["previous_image_file_name"]) == (
        base["images"]["old.png"]["content_hash"], "old.png")
    assert (gone["base_hash"], gone["before_width"], gone["before_height"]) == (
        base["images"]["c.png"]["content_hash"], 7, 9)
    assert report["summary"] == {"total": 2, "changed": 0, "unchanged": 0, "added": 0,
                                 "removed": 1, "errored": 0, "renamed": 1, "skipped": 0}


def test_c1_selective_head_skips_what_it_did_not_upload(tmp_path, store):
    base = store.manifest({"a.png": png(), "b.png": "h2", "c.png": "h3"})
    head = store.manifest({"a.png": png(dots=[((0, 0), (0, 0, 255, 255))])}, selective=True)

    code, report = compare(tmp_path, store, base, head)

    assert statuses(report) == {"a.png": "changed", "b.png": "skipped", "c.png": "skipped"}
    assert report["summary"]["removed"] == 0
    assert code == EXIT_DIFFERENCES


def test_d1_listed_names_are_skipped_and_unlisted_ones_removed(tmp_path, store):
    base = store.manifest({"a.png": png(), "c.png": "h3", "d.png": "h4"})
    head = store.manifest({"a.png": png(text="re-encoded")}, **listed("a.png", "c.png"))

    _, report = compare(tmp_path, store, base, head)

    assert statuses(report) == {"a.png": "unchanged", "c.png": "skipped", "d.png": "removed"}


def test_b9_a_matched_name_is_not_a_rename_source(tmp_path, store):
    base = store.manifest({"a.png": "h1"})
    head = store.manifest({"a.png": "h2", "b.png": "h1"})

    _, report = compare(tmp_path, store, base, head)

    assert statuses(report) == {"a.png": "changed", "b.png": "added"}


def test_d8_an_uploaded_name_missing_from_the_list_is_refused(tmp_path, store, capsys):
    base = store.manifest({"a.png": "h1"})
    head = store.manifest({"a.png": "h1"}, **listed("b.png"))

    code, _ = compare(tmp_path, store, base, head)

    assert code == EXIT_BAD_INPUT
    assert 'head.json: images["a.png"]: uploaded but not declared by all_image_file_names' in (
        capsys.readouterr().err)


# The pixel decision --------------------------------------------------------------------

ONE_DOT = png(dots=[((3, 3), (0, 0, 255, 255))])


# Which of the thresholds applies (A7: the image's, even 0.0, over the manifest's; A8: the base's
# never read) is classify's rule, tested where it is decided: test_classify.test_threshold_resolution_order.
# Here: Sentry's manifest fields are read, and a share of changed pixels must be over them.
@pytest.mark.parametrize(("head_extra", "head_top", "expected"), [
    ({}, {}, "changed"),                                          # A3: 0.01 > 0.0
    ({"diff_threshold": 0.01}, {}, "unchanged"),                  # A4: not strictly above
    ({"diff_threshold": 0.009}, {}, "changed"),                   # A5
    ({}, {"diff_threshold": 0.5}, "unchanged"),                   # A6
], ids=["A3", "A4", "A5", "A6"])
def test_threshold_case(tmp_path, store, head_extra, head_top, expected):
    base = store.manifest({"a.png": (png(), 10, 10, {})}, diff_threshold=None)
    head = store.manifest({"a.png": (ONE_DOT, 10, 10, head_extra)}, **head_top)

    _, report = compare(tmp_path, store, base, head)

    image = report["images"]["a.png"]
    assert image["status"] == expected
    assert (image["changed_pixels"], image["total_pixels"]) == (1, 100)


def test_a2_identical_pixels_under_other_hashes_are_unchanged_with_a_mask(tmp_path, store):
    base = store.manifest({"a.png": png()})
    head = store.manifest({"a.png": png(text="re-encoded")}, )

    code, report = compare(tmp_path, store, base, head, "--head-artifact-id", "7",
                           "--base-artifact-id", "3")

    image = report["images"]["a.png"]
    assert code == EXIT_SAME
    assert (image["status"], image["changed_pixels"], image["total_pixels"]) == ("unchanged", 0, 100)
    assert (image["aligned_height"], image["before_width"], image["after_height"]) == (10, 10, 10)
    assert image["diff_mask_image_id"] == "7/3/diff/a.png"
    with Image.open(tmp_path / "out" / image["diff_mask_key"]) as mask:
        assert mask.size == (10, 10) and mask.getextrema() == (0, 0)
    assert (report["head_artifact_id"], report["base_artifact_id"]) == (7, 3)


@pytest.mark.parametrize(("head_size", "total", "aligned"), [((10, 12), 120, 12), ((12, 10), 120, 10)],
                         ids=["A10-taller", "A11-wider"])
def test_size_changes_diff_on_the_larger_canvas(tmp_path, store, head_size, total, aligned):
    base = store.manifest({"a.png": png()})
    head = store.manifest({"a.png": png(head_size)})

    _, report = compare(tmp_path, store, base, head)

    image = report["images"]["a.png"]
    assert image["status"] == "changed"
    assert (image["total_pixels"], image["aligned_height"]) == (total, aligned)
    assert (image["before_width"], image["before_height"]) == (10, 10)
    assert (image["after_width"], image["after_height"]) == head_size
    assert image["changed_pixels"] == 20


def test_e2_a_canvas_over_the_limit_from_the_manifests_is_errored_unfetched(tmp_path, store):
    # The blobs are never written to the store: fetching them would fail differently.
    base = {"images": {"a.png": {"content_hash": "1" * 64, "width": 8000, "height": 5000}}}
    head = {"images": {"a.png": {"content_hash": "2" * 64, "width": 8000, "height": 5001}}}

    code, report = compare(tmp_path, store, base, head)

    image = report["images"]["a.png"]
    assert code == EXIT_ERRORED
    assert (image["status"], image["reason"]) == ("errored", "exceeds_pixel_limit")


def _header_only_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height``, with no pixel data worth the name."""
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return png()[:8] + _chunk(b"IHDR", header) + _chunk(b"IEND", b"")


@pytest.mark.parametrize(("head_blob", "store_it", "reason"), [
    (_header_only_png(8000, 5001), True, "exceeds_pixel_limit"),   # E3: real header re-checked
    (ONE_DOT, False, "image_fetch_failed"),                        # E4: blob not in the store
    (b"not an image", True, "image_processing_failed"),            # E5
], ids=["E3", "E4", "E5"])
def test_pair_errors(tmp_path, store, head_blob, store_it, reason):
    base = store.manifest({"a.png": png()})
    head = {"images": {"a.png": {"content_hash": hashlib.sha256(head_blob).hexdigest(),
                                 "width": 10, "height": 10}}}
    if store_it:
        store.put(head_blob)

    code, report = compare(tmp_path, store, base, head)

    image = report["images"]["a.png"]
    assert code == EXIT_ERRORED
    assert (image["status"], image["reason"]) == ("errored", reason)


def test_e1_a_canvas_of_exactly_40m_pixels_is_diffed():
    base = Manifest({"a.png": ImageEntry("a.png", "1" * 64, 8000, 5000)})
    head = Manifest({"a.png": ImageEntry("a.png", "2" * 64, 8000, 5000)})
    assert list(categorize(base, head).candidates) == ["a.png"]


# Manifest validation (F) ---------------------------------------------------------------------

@pytest.mark.parametrize(("entry", "top", "message"), [
    ({"width": None}, {}, 'images["a.png"].width: missing'),                          # F1
    ({"width": -1}, {}, 'images["a.png"].width: expected an integer >= 0, got -1'),  # F3
    ({"diff_threshold": 1.0}, {}, 'images["a.png"].diff_threshold: expected a number >= 0 and < 1'),
    ({}, {"diff_threshold": 1.0}, "diff_threshold: expected a number >= 0 and < 1"),   # A9/F9
    ({}, {"all_image_file_names": ["a.png"], "all_image_file_names_as_regex": [".*"]},
     "all_image_file_names and all_image_file_names_as_regex are mutually exclusive"),  # F10
    ({}, {"all_image_file_names_as_regex": ["a(?=b)"]},
     'all_image_file_names_as_regex[0]: invalid RE2 pattern "a(?=b)"'),                 # F11
], ids=["F1", "F3", "F9-image", "F9-manifest", "F10", "F11"])
def test_invalid_head_manifest_exits_3_naming_it(tmp_path, store, capsys, entry, top, message):
    base = store.manifest({"a.png": "h1"})
    head = store.manifest({"a.png": "h1"}, **top)
    head["images"]["a.png"].update(entry)
    head["images"]["a.png"] = {k: v for k, v in head["images"]["a.png"].items() if v is not None}

    code, _ = compare(tmp_path, store, base, head)

    assert code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert f"{tmp_path / 'head.json'}: {message}" in err
    assert "Traceback" not in err


def test_f4_hashes_must_be_sha256_hex_unlike_sentrys_model(tmp_path, store, capsys):
    # Deliberate: blobs are content-addressed by sha256; Sentry's uploads are sha256 too.
    base = store.manifest({"a.png": "h1"})
    head = {"images": {"a.png": {"content_hash": "abc", "width": 1, "height": 1}}}

    code, _ = compare(tmp_path, store, base, head)

    assert code == EXIT_BAD_INPUT
    assert 'images["a.png"].content_hash: expected 64 hex characters (sha256), got "abc"' in (
        capsys.readouterr().err)


def test_unsized_manifests_are_accepted_when_asked(tmp_path, store):
    base = store.manifest({"a.png": "h1"})
    head = store.manifest({"a.png": "h2"})
    for entry in head["images"].values():
        del entry["width"], entry["height"]

    code, report = compare(tmp_path, store, base, head, "--allow-unsized")

    assert code == EXIT_DIFFERENCES
    assert report["images"]["a.png"]["after_width"] == 10


def test_f2_f5_f6_f7_what_sentry_accepts_is_accepted(tmp_path, store):
    base = store.manifest({"a.png": ("h1", 0, 0, {})})
    head = store.manifest({"a.png": ("h1", 0, 0, {"tags": 42, "canvas_theme": "sepia",
                                                  "custom": {"x": 1}})}, unknown_top=True)
    SnapshotManifestWithRegex.model_validate(head)

    code, report = compare(tmp_path, store, base, head)

    assert (code, statuses(report)) == (EXIT_SAME, {"a.png": "unchanged"})


# Keys and report shape (G) -------------------------------------------------------------------

@pytest.mark.parametrize(("name", "stem"), [
    ("a.png", "a"), ("dir\\sub/x.y.png", "dir/sub/x.y"), ("v1.2/home", "v1"), ("/x/y.png/", "x/y"),
    ("noext", "noext"),
])
def test_path_stem_is_sentrys(name, stem):
    assert path_stem(name) == stem
    assert mask_image_id(4, 2, name) == f"4/2/diff/{stem}.png"


def test_g1_stem_collisions_share_an_id_but_never_a_local_mask(tmp_path, store):
    names = ["a.png", "a.jpg", "a", "a.png.png"]
    base = store.manifest({name: png() for name in names})
    head = store.manifest({name: ONE_DOT for name in names})

    code, report = compare(tmp_path, store, base, head)

    images = report["images"]
    assert code == EXIT_DIFFERENCES
    assert {images[n]["diff_mask_image_id"] for n in ("a.png", "a.jpg", "a")} == {"0/0/diff/a.png"}
    keys = {n: images[n]["diff_mask_key"] for n in names}
    # Local masks are named by image and content: images whose masks differ never share a file.
    stems = {"a.png": "a", "a.jpg": "a.jpg", "a": "a", "a.png.png": "a.png"}
    for name, key in keys.items():
        assert re.fullmatch(rf"diff/{re.escape(stems[name])}\.[0-9a-f]{{16}}\.png", key), key
        assert (tmp_path / "out" / key).is_file()


def test_g2_backslash_names_get_sentrys_image_id_and_a_local_mask_inside_out(tmp_path, store):
    base = store.manifest({"dir\\sub/x.y.png": png()})
    head = store.manifest({"dir\\sub/x.y.png": ONE_DOT})

    _, report = compare(tmp_path, store, base, head, "--head-artifact-id", "11")

    image = report["images"]["dir\\sub/x.y.png"]
    assert image["diff_mask_image_id"] == "11/0/diff/dir/sub/x.y.png"
    assert (tmp_path / "out" / image["diff_mask_key"]).parent == tmp_path / "out" / "diff"


def test_g4_summary_counts_every_status(tmp_path, store):
    base = store.manifest({"same.png": "s", "gone.png": "g", "old.png": "r", "a.png": png()})
    head = store.manifest({"same.png": "s", "new.png": "n", "moved.png": "r", "a.png": ONE_DOT})

    _, report = compare(tmp_path, store, base, head)

    assert report["summary"] == {"total": 5, "changed": 1, "unchanged": 1, "added": 1,
                                 "removed": 1, "errored": 0, "renamed": 1, "skipped": 0}
    fields = {"diff_mask_key", "diff_mask_image_id", "aligned_height"}
    assert all(report["images"][n][f] is None for n in ("same.png", "new.png") for f in fields)


@pytest.mark.parametrize("value", ["-1", "x", "1.5", "99999999999999999999", "9999999999999999999",
                                   str(2**63), "\u0661"])
def test_artifact_ids_must_be_integers_of_64_bits(tmp_path, value, capsys):
    assert main(["compare", "--base", "b", "--head", "h", "--out", str(tmp_path),
                 "--head-artifact-id", value]) == EXIT_BAD_INPUT
    assert f"an integer from 0 to {2**63 - 1}" in capsys.readouterr().err


def test_the_largest_artifact_id_is_taken(tmp_path, store):
    same = store.manifest({"a.png": "h1"})
    code, report = compare(tmp_path, store, same, same, "--head-artifact-id", str(2**63 - 1))
    assert (code, report["head_artifact_id"]) == (EXIT_SAME, 2**63 - 1)


# Rename pairing ------------------------------------------------------------------------------

def sentry_pairing(new: list[str], old: list[str]) -> dict[str, str]:
    """Sentry's ``_match_by_name_similarity``, ties broken by name as snapcompare breaks them."""
    scored = sorted((-SequenceMatcher(None, n, o).ratio(), n, o) for n in new for o in old)
    pairs: dict[str, str] = {}
    for _, n, o in scored:
        if n not in pairs and o not in pairs.values():
            pairs[n] = o
    return pairs


_name = st.text("ab/_.", min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(_name, min_size=1, max_size=8, unique=True),
       st.lists(_name, min_size=1, max_size=8, unique=True))
def test_similarity_pairing_is_sentrys_greedy_pairing(new, old):
    old = [name + "~" for name in old]  # old and new names are disjoint, as added and removed are
    assert pair_by_similarity(new, old) == sentry_pairing(new, old)


@pytest.mark.parametrize("rename", [
    lambda i, name: f"v2/{name}",                        # folder move
    lambda i, name: name.replace(".png", "_dark.png"),   # changed ending
])
def test_many_names_sharing_a_hash_pair_like_sentry_beyond_the_exact_limit(rename):
    olds = [f"screens/feature_{i:04d}/state_{i % 7}.png" for i in range(400)]
    news = {rename(i, name): name for i, name in enumerate(olds)}
    assert len(news) * len(olds) > EXACT_PAIRS

    assert pair_by_similarity(news, olds) == news


@settings(max_examples=200, deadline=None)
@given(st.lists(_name, min_size=1, max_size=12, unique=True),
       st.lists(_name, min_size=1, max_size=12, unique=True))
def test_bounded_pairing_pairs_as_many_names_as_sentry_does(new, old):
    old = [name + "~" for name in old]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(classify, "EXACT_PAIRS", 3)  # force the neighbour rounds on small inputs
        pairs = pair_by_similarity(new, old)
    assert len(pairs) == len(set(pairs.values())) == min(len(new), len(old))
    assert set(pairs) <= set(new) and set(pairs.values()) <= set(old)


def test_every_name_pairs_even_when_neighbours_run_out():
    olds = [f"o{i:04d}" for i in range(300)]
    news = [f"n{i:04d}" for i in range(250)]
    pairs = pair_by_similarity(news, olds)
    assert sorted(pairs) == news and len(set(pairs.values())) == 250


# Approval carry-over -------------------------------------------------------------------------

def _result(name: str, status: Status, head_hash: str | None = None, previous: str | None = None):
    return ImageResult(name=name, status=status, head_hash=head_hash,
                       previous_image_file_name=previous)


def test_fingerprints_are_sentrys():
    images = {r.name: r for r in [
        _result("u", Status.UNCHANGED, "h"), _result("s", Status.SKIPPED),
        _result("c", Status.CHANGED, "h1"), _result("a", Status.ADDED, "h2"),
        _result("c0", Status.CHANGED), _result("r", Status.RENAMED, "h3", "old"),
        _result("r0", Status.RENAMED, "h3"), _result("x", Status.REMOVED),
        _result("e", Status.ERRORED, "h4"),
    ]}
    assert comparison_fingerprints(images) == {
        ("c", "changed", "h1", None), ("a", "added", "h2", None), ("r", "renamed", "h3", "old"),
        ("x", "removed", None, None), ("e", "errored", None, None),
    }


def _approval_builds(store: Store, head_label: str) -> tuple[dict, dict]:
    base = store.manifest({"a.png": png(), "gone.png": "g", "old.png": "r"})
    head = store.manifest({"a.png": ONE_DOT, "new.png": head_label, "moved.png": "r"})
    return base, head


def test_an_approval_carries_over_when_the_changes_are_the_same(tmp_path, store, capsys):
    first = tmp_path / "first"
    first.mkdir()
    code, report = compare(first, store, *_approval_builds(store, "n"))
    assert code == EXIT_DIFFERENCES and report["approval"] is None
    approved = first / "out" / "comparison.json"
    capsys.readouterr()

    code, report = compare(tmp_path, store, *_approval_builds(store, "n"), "--approved",
                           str(approved))

    assert code == EXIT_SAME
    assert report["approval"]["carried_over_from"] == str(approved)
    assert len(report["approval"]["fingerprint"]) == 64
    assert f"approved changes carried over from {approved}" in capsys.readouterr().out
    assert statuses(report)["a.png"] == "changed"


def test_an_approval_does_not_carry_over_when_a_change_differs(tmp_path, store):
    first = tmp_path / "first"
    first.mkdir()
    compare(first, store, *_approval_builds(store, "n"))

    code, report = compare(tmp_path, store, *_approval_builds(store, "other"), "--approved",
                           str(first / "out" / "comparison.json"))

    assert (code, report["approval"]) == (EXIT_DIFFERENCES, None)


def test_an_approved_comparison_from_the_store(tmp_path, store):
    first = tmp_path / "first"
    first.mkdir()
    compare(first, store, *_approval_builds(store, "n"))
    key = "1/2/99/comparison.json"
    (store.root / key).parent.mkdir(parents=True)
    (store.root / key).write_bytes((first / "out" / "comparison.json").read_bytes())

    code, report = compare(tmp_path, store, *_approval_builds(store, "n"), "--approved",
                           f"store:{key}")

    assert code == EXIT_SAME and report["approval"]["carried_over_from"] == f"store:{key}"


def test_no_changes_carry_no_approval(tmp_path, store):
    same = store.manifest({"a.png": "h1"})
    approved = tmp_path / "approved.json"
    approved.write_text(json.dumps({"images": {}}))
    code, report = compare(tmp_path, store, same, same, "--approved", str(approved))
    assert (code, report["approval"]) == (EXIT_SAME, None)


def test_a_malformed_approved_comparison_exits_3_naming_it(tmp_path, store, capsys):
    approved = tmp_path / "approved.json"
    approved.write_text(json.dumps({"images": {"a.png": {"status": "weird"}}}))
    same = store.manifest({"a.png": "h1"})

    code, _ = compare(tmp_path, store, same, same, "--approved", str(approved))

    assert code == EXIT_BAD_INPUT
    assert f'{approved}: images["a.png"]: expected an object with a known status' in (
        capsys.readouterr().err)


def test_approved_fingerprints_read_sentrys_own_comparison_json():
    sentry = {"head_artifact_id": 1, "base_artifact_id": 2, "summary": {},
              "images": {"a": {"status": "added", "head_hash": "h"}, "b": {"status": "unchanged"}}}
    assert approved_fingerprints(json.dumps(sentry).encode(), "s") == {("a", "added", "h", None)}


# Manifests from the store --------------------------------------------------------------------

def test_manifests_are_read_from_store_keys(tmp_path, store, capsys):
    base = store.manifest({"old.png": "h1"})
    head = store.manifest({"new.png": "h1"})
    for artifact, data in (("1", base), ("2", head)):
        path = store.root / "7/8" / artifact / "manifest.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
    out = tmp_path / "out"

    code = main(["compare", "--base", "store:7/8/1/manifest.json", "--head",
                 "store:7/8/2/manifest.json", "--store", str(store.root), "--out", str(out), "--quiet"])

    report = json.loads((out / "comparison.json").read_text())
    assert code == EXIT_DIFFERENCES
    assert renames(report) == {"new.png": "old.png"}
    assert report["head_source"] == "store:7/8/2/manifest.json"


@pytest.mark.parametrize(("key", "content", "message"), [
    ("absent.json", None, "--head 'store:absent.json': "),
    ("bad.json", b'{"images": 3}', "store:bad.json: images: expected a JSON object, got a number"),
    ("../escape.json", None, "--head 'store:../escape.json': invalid key"),
])
def test_store_manifest_errors_name_the_key(tmp_path, store, capsys, key, content, message):
    if content is not None:
        (store.root / key).write_bytes(content)
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"images": {}}))

    code = main(["compare", "--base", str(base), "--head", f"store:{key}", "--store",
                 str(store.root), "--out", str(tmp_path / "out")])

    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert message in err and "Traceback" not in err


def test_a_store_key_without_a_store_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SNAPCOMPARE_STORE", raising=False)
    code = main(["compare", "--base", "store:a.json", "--head", "store:b.json", "--out",
                 str(tmp_path)])
    assert code == EXIT_BAD_INPUT
    assert "a store key needs a blob store" in capsys.readouterr().err


# Folder hardening ----------------------------------------------------------------------------

SECRET = b"SECRET-BYTES-" * 8


def _with_chunk(data: bytes, kind: bytes, body: bytes) -> bytes:
    return data[:33] + _chunk(kind, body) + data[33:]  # right after the signature and IHDR


def _huge_icc_png() -> bytes:
    return _with_chunk(png(), b"iCCP", b"icc\x00\x00" + zlib.compress(SECRET * 400_000))


def test_an_image_with_an_oversized_chunk_is_errored_and_the_rest_compared(tmp_path, capsys):
    for side in ("base", "head"):
        (tmp_path / side).mkdir()
        (tmp_path / side / "ok.png").write_bytes(png())
    (tmp_path / "base" / "icc.png").write_bytes(png())
    (tmp_path / "head" / "icc.png").write_bytes(_huge_icc_png())
    out = tmp_path / "out"

    code = main(["compare", "--base", str(tmp_path / "base"), "--head", str(tmp_path / "head"),
                 "--out", str(out)])

    report = json.loads((out / "comparison.json").read_text())
    ComparisonManifest.model_validate(report)
    captured = capsys.readouterr()
    assert code == EXIT_ERRORED
    assert statuses(report) == {"ok.png": "unchanged", "icc.png": "errored"}
    icc = report["images"]["icc.png"]
    assert icc["reason"] == "image_processing_failed"
    assert "head image file: image header rejected by Pillow" in icc["detail"]
    assert "SECRET" not in captured.out + captured.err + json.dumps(report)


def test_manifest_command_leaves_unreadable_files_out_without_a_traceback(tmp_path, capsys):
    (tmp_path / "ok.png").write_bytes(png())
    (tmp_path / "icc.png").write_bytes(_huge_icc_png())

    code = main(["manifest", str(tmp_path)])

    captured = capsys.readouterr()
    assert code == EXIT_SAME
    assert list(json.loads(captured.out)["images"]) == ["ok.png"]
    assert "left out icc.png: image header rejected by Pillow (ValueError)" in captured.err
    assert "Traceback" not in captured.err and "SECRET" not in captured.err


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlinks_leading_out_of_a_folder_are_not_read_unless_followed(tmp_path, capsys):
    outside = tmp_path / "outside.png"
    outside.write_bytes(png(colour=(1, 2, 3, 255)))
    for side in ("base", "head"):
        (tmp_path / side).mkdir()
        (tmp_path / side / "ok.png").write_bytes(png())
    (tmp_path / "head" / "inner.png").symlink_to(tmp_path / "head" / "ok.png")
    (tmp_path / "head" / "link.png").symlink_to(outside)

    def run(*extra: str) -> tuple[int, dict]:
        out = tmp_path / f"out{len(extra)}"
        code = main(["compare", "--base", str(tmp_path / "base"), "--head", str(tmp_path / "head"),
                     "--out", str(out), "--quiet", *extra])
        return code, json.loads((out / "comparison.json").read_text())

    code, report = run()
    assert code == EXIT_ERRORED
    assert statuses(report) == {"ok.png": "unchanged", "inner.png": "added", "link.png": "errored"}
    assert "symlink leading outside the input folder" in report["images"]["link.png"]["detail"]

    code, report = run("--follow-symlinks")
    assert code == EXIT_DIFFERENCES
    assert statuses(report)["link.png"] == "added"

    assert main(["manifest", str(tmp_path / "head")]) == EXIT_SAME
    assert "left out link.png: a symlink leading outside" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "message"), [
    ('{"images": {}, "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "invalid JSON: nested too deeply"),
    (f'{{"images": {{"a.png": {{"content_hash": "{"1" * 64}", "width": {"9" * 5000}, "height": 1}}}}}}',
     'images["a.png"].width: expected an integer >= 0, got a number with 5000 digits'),
], ids=["nested-100000-deep", "5000-digit-width"])
def test_hostile_manifests_exit_3_naming_the_file(tmp_path, capsys, text, message):
    head = tmp_path / "head.json"
    head.write_text(text)

    code = main(["compare", "--base", str(head), "--head", str(head), "--out", str(tmp_path / "o"),
                 "--store", str(tmp_path)])

    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    assert f"{head}: {message}" in err and "Traceback" not in err and "9999" not in err
