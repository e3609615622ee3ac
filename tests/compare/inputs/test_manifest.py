"""Manifests: parsing and validation, JSON round trips, and manifests built from folders."""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
import re
import struct
import zlib
from pathlib import Path

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from compare.inputs.manifest import (
    IMAGE_EXTENSIONS,
    MAX_MANIFEST_BYTES,
    MAX_MANIFEST_IMAGES,
    MAX_NAME_PATTERNS,
    MAX_PATTERN_CHARACTERS,
    ImageEntry,
    Manifest,
    ManifestError,
    dump_manifest,
    ignore_regions_of,
    load_manifest,
    manifest_from_folder,
    parse_manifest,
    with_ignore_patterns,
    write_manifest,
)
from compare.regions import IgnorePattern, IgnoreRegion
from testing.files import make_fifo, make_too_long_paths, make_zero_device

pytestmark = pytest.mark.unit

HASH_A = hashlib.sha256(b"a").hexdigest()
HASH_B = hashlib.sha256(b"b").hexdigest()

FULL = {
    "images": {
        "home/feed.png": {
            "content_hash": HASH_A,
            "width": 1170,
            "height": 2532,
            "display_name": "Feed",
            "group": "Home",
            "diff_threshold": 0.02,
            "tags": {"theme": "dark"},
        },
        "settings.png": {"content_hash": HASH_B},
    },
    "diff_threshold": 0.5,
    "selective": True,
    "all_image_file_names": ["home/feed.png", "settings.png", "help.png"],
}


def test_every_field_is_read():
    manifest = parse_manifest(json.dumps(FULL), "head.json")

    assert manifest.source == "head.json"
    assert manifest.diff_threshold == 0.5
    assert manifest.selective is True
    assert manifest.all_image_file_names == frozenset({"home/feed.png", "settings.png", "help.png"})
    assert list(manifest.images) == ["home/feed.png", "settings.png"]
    assert manifest.images["home/feed.png"] == ImageEntry(
        name="home/feed.png",
        content_hash=HASH_A,
        width=1170,
        height=2532,
        display_name="Feed",
        group="Home",
        diff_threshold=0.02,
        tags={"theme": "dark"},
    )


def test_optional_fields_may_be_absent_or_null():
    minimal = parse_manifest({"images": {"a.png": {"content_hash": HASH_A}}}, "m.json")
    nulls = parse_manifest(
        {
            "images": {"a.png": {"content_hash": HASH_A, "width": None, "height": None,
                                 "display_name": None, "group": None, "diff_threshold": None,
                                 "tags": None}},
            "diff_threshold": None,
            "selective": None,
            "all_image_file_names": None,
        },
        "m.json",
    )

    expected = Manifest(images={"a.png": ImageEntry(name="a.png", content_hash=HASH_A)})
    assert minimal == expected
    assert nulls == expected
    assert minimal.selective is False and minimal.all_image_file_names is None


def test_empty_images_is_a_valid_manifest():
    assert parse_manifest('{"images": {}}', "m.json").images == {}


def test_unknown_fields_are_kept_and_written_back():
    data = {"images": {"a.png": {"content_hash": HASH_A, "image_file_name": "a.png",
                                 "meta": {"x": [1, 2]}}},
            "version": 3}

    manifest = parse_manifest(data, "m.json")

    assert manifest.images["a.png"].extra == {"image_file_name": "a.png", "meta": {"x": [1, 2]}}
    assert manifest.extra == {"version": 3}
    assert dump_manifest(manifest) == {**data, "selective": False}


def test_hashes_are_normalised_to_lowercase():
    manifest = parse_manifest({"images": {"a.png": {"content_hash": HASH_A.upper()}}}, "m.json")
    assert manifest.images["a.png"].content_hash == HASH_A


def test_integral_thresholds_are_floats():
    manifest = parse_manifest({"images": {"a.png": {"content_hash": HASH_A, "diff_threshold": 0}},
                               "diff_threshold": 0}, "m.json")
    assert manifest.diff_threshold == 0.0 and isinstance(manifest.diff_threshold, float)
    assert isinstance(manifest.images["a.png"].diff_threshold, float)


def _with(path: tuple, value) -> dict:
    """FULL with the field at ``path`` replaced by ``value`` (or removed, for ``...``)."""
    data = copy.deepcopy(FULL)
    target = data
    for key in path[:-1]:
        target = target[key]
    if value is ...:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


FEED = ("images", "home/feed.png")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1], "head.json: expected a JSON object, got an array"),
        (_with(("images",), ...), "head.json: images: missing"),
        (_with(("images",), ["a.png"]), "head.json: images: expected a JSON object, got an array"),
        (_with(FEED, "abc"),
         'head.json: images["home/feed.png"]: expected a JSON object, got a string'),
        (_with((*FEED, "content_hash"), ...),
         'head.json: images["home/feed.png"].content_hash: missing'),
        (_with((*FEED, "content_hash"), "xyz"),
         'head.json: images["home/feed.png"].content_hash: expected 64 hex characters (sha256), '
         'got "xyz"'),
        (_with((*FEED, "content_hash"), "g" * 64),
         'images["home/feed.png"].content_hash: expected 64 hex characters'),
        (_with((*FEED, "content_hash"), HASH_A + "0"),
         'images["home/feed.png"].content_hash: expected 64 hex characters'),
        (_with((*FEED, "content_hash"), 12),
         'images["home/feed.png"].content_hash: expected 64 hex characters'),
        (_with((*FEED, "width"), -1),
         'head.json: images["home/feed.png"].width: expected an integer >= 0, got -1'),
        (_with((*FEED, "height"), -3),
         'head.json: images["home/feed.png"].height: expected an integer >= 0, got -3'),
        (_with((*FEED, "height"), 10.5),
         'images["home/feed.png"].height: expected an integer >= 0, got 10.5'),
        (_with((*FEED, "width"), "1170"),
         'images["home/feed.png"].width: expected an integer >= 0, got "1170"'),
        (_with((*FEED, "width"), True),
         'images["home/feed.png"].width: expected an integer >= 0, got true'),
        (_with((*FEED, "diff_threshold"), 1.5),
         'head.json: images["home/feed.png"].diff_threshold: expected a number >= 0 and < 1, '
         "got 1.5"),
        (_with((*FEED, "diff_threshold"), 1.0),
         'images["home/feed.png"].diff_threshold: expected a number >= 0 and < 1, got 1.0'),
        (_with((*FEED, "diff_threshold"), -0.1),
         'images["home/feed.png"].diff_threshold: expected a number >= 0 and < 1'),
        (_with((*FEED, "diff_threshold"), "0.1"),
         'images["home/feed.png"].diff_threshold: expected a number >= 0 and < 1'),
        (_with((*FEED, "diff_threshold"), float("nan")),
         'images["home/feed.png"].diff_threshold: expected a number >= 0 and < 1'),
        (_with((*FEED, "display_name"), 5),
         'head.json: images["home/feed.png"].display_name: expected a string, got a number'),
        (_with((*FEED, "group"), ["a"]),
         'head.json: images["home/feed.png"].group: expected a string, got an array'),
        (_with(("diff_threshold",), 1),
         "head.json: diff_threshold: expected a number >= 0 and < 1, got 1"),
        (_with(("diff_threshold",), 10**400),
         "head.json: diff_threshold: expected a number >= 0 and < 1, got a number"),
        (_with((*FEED, "diff_threshold"), -(10**400)),
         'head.json: images["home/feed.png"].diff_threshold: expected a number >= 0 and < 1, '
         "got a number"),
        (_with(("selective",), "yes"), 'head.json: selective: expected true or false, got "yes"'),
        (_with(("all_image_file_names",), "a.png"),
         "head.json: all_image_file_names: expected a JSON array, got a string"),
        (_with(("all_image_file_names",), ["a.png", ""]),
         'head.json: all_image_file_names[1]: image names must be non-empty strings, got ""'),
        (_with(("all_image_file_names",), ["a.png", 3]),
         "head.json: all_image_file_names[1]: image names must be non-empty strings, got 3"),
        (_with(("images", ""), {"content_hash": HASH_A}),
         'head.json: images: image names must be non-empty strings, got ""'),
        (_with(("all_image_file_names",), ["home/feed.png", "help.png"]),
         'head.json: images["settings.png"]: uploaded but not declared by all_image_file_names'),
        ({**FULL, "all_image_file_names_as_regex": ["x"]},
         "head.json: all_image_file_names and all_image_file_names_as_regex are mutually exclusive"),
        ({**_with(("all_image_file_names",), ...), "all_image_file_names_as_regex": ["home/.*"]},
         'head.json: images["settings.png"]: uploaded but not declared by '
         "all_image_file_names_as_regex"),
        ({**_with(("all_image_file_names",), ...), "all_image_file_names_as_regex": "x"},
         "head.json: all_image_file_names_as_regex: expected a JSON array, got a string"),
        ({**_with(("all_image_file_names",), ...), "all_image_file_names_as_regex": [".*", 1]},
         "head.json: all_image_file_names_as_regex[1]: expected a string, got a number"),
        ({**_with(("all_image_file_names",), ...), "all_image_file_names_as_regex": ["a(?=b)"]},
         'head.json: all_image_file_names_as_regex[0]: invalid RE2 pattern "a(?=b)"'),
        ({**_with(("all_image_file_names",), ...), "all_image_file_names_as_regex": [r"(a)\1"]},
         'head.json: all_image_file_names_as_regex[0]: invalid RE2 pattern "(a)\\\\1"'),
        ({**_with(("all_image_file_names",), ...), "all_image_file_names_as_regex": [".*", "a)|(b"]},
         'head.json: all_image_file_names_as_regex[1]: invalid RE2 pattern "a)|(b"'),
    ],
)
def test_each_invalid_field_is_named_with_the_file(data, message):
    with pytest.raises(ManifestError) as caught:
        parse_manifest(json.dumps(data), "head.json")
    assert message in str(caught.value)
    assert caught.value.source == "head.json"


def test_json_syntax_error_names_line_and_column():
    text = f'{{\n  "images": {{\n    "a.png": {{"content_hash": "{HASH_A}",}}\n  }}\n}}'

    with pytest.raises(ManifestError) as caught:
        parse_manifest(text, "base.json")

    column = text.splitlines()[2].index(",}") + 2
    assert caught.value.location == f"line 3, column {column}"
    assert str(caught.value).startswith(f"base.json: line 3, column {column}: invalid JSON: ")


def test_undecodable_bytes_are_a_manifest_error():
    with pytest.raises(ManifestError, match=r"^m\.json: byte \d+: not valid utf-8"):
        parse_manifest(b'{"images": {"\xff": {}}}', "m.json")


def test_a_repeated_key_keeps_its_last_value_as_in_sentry():
    text = f'{{"images": {{"a.png": {{"content_hash": "{HASH_A}"}}, "a.png": {{"content_hash": "{HASH_B}"}}}}}}'
    assert parse_manifest(text, "m.json").images["a.png"].content_hash == HASH_B


@pytest.mark.parametrize(("tags", "expected"), [
    (["dark", 1], {"dark": "dark", "1": "1"}),
    ({"k": True, "n": None, "x": 1.5}, {"k": "True", "n": "None", "x": "1.5"}),
    (42, None), ("dark", None), (None, None),
])
def test_tags_are_coerced_as_sentry_coerces_them(tags, expected):
    manifest = parse_manifest({"images": {"a.png": {"content_hash": HASH_A, "tags": tags}}}, "m")
    assert manifest.images["a.png"].tags == expected


@pytest.mark.parametrize(("theme", "expected"), [("light", "light"), ("dark", "dark"),
                                                 ("sepia", None), (1, None)])
def test_unknown_canvas_themes_become_none(theme, expected):
    entry = {"content_hash": HASH_A, "canvas_theme": theme}
    assert parse_manifest({"images": {"a.png": entry}}, "m").images["a.png"].canvas_theme == expected


def test_sizes_are_required_when_asked_and_zero_is_a_size():
    entry = {"content_hash": HASH_A, "width": 0}
    with pytest.raises(ManifestError, match=r'^m: images\["a.png"\].height: missing$'):
        parse_manifest({"images": {"a.png": entry}}, "m", require_sizes=True)
    sized = parse_manifest({"images": {"a.png": {**entry, "height": 0}}}, "m", require_sizes=True)
    assert (sized.images["a.png"].width, sized.images["a.png"].height) == (0, 0)


def test_regex_declared_names_match_the_whole_name():
    manifest = parse_manifest({"images": {}, "all_image_file_names_as_regex": [r"login\.png", "b.*"]},
                              "m")
    declared = manifest.declared_names()
    assert [declared(n) for n in ("login.png", "screens/login.png", "bar.png", "abar")] == [
        True, False, True, False]
    assert dump_manifest(manifest)["all_image_file_names_as_regex"] == [r"login\.png", "b.*"]


def test_name_patterns_are_bounded_in_number_and_size_naming_the_file_and_field():
    def refused(patterns: list[str]) -> str:
        with pytest.raises(ManifestError) as caught:
            parse_manifest({"images": {}, "all_image_file_names_as_regex": patterns}, "head.json")
        return str(caught.value)

    assert refused(["x"] * (MAX_NAME_PATTERNS + 1)) == (
        f"head.json: all_image_file_names_as_regex: {MAX_NAME_PATTERNS + 1:,} patterns, more than "
        f"a manifest may have ({MAX_NAME_PATTERNS:,})")
    half = MAX_PATTERN_CHARACTERS // 2
    assert refused(["x" * half, "y" * (half + 1)]) == (
        f"head.json: all_image_file_names_as_regex: {MAX_PATTERN_CHARACTERS + 1:,} characters of "
        f"patterns, more than a manifest may have ({MAX_PATTERN_CHARACTERS:,})")
    # Short patterns whose compiled programs are large: together they would take hundreds of MB.
    large = [rf"(?:[^/]{{1000}}){{1}}[^/]{{1000}}|a\.png|x{i}" for i in range(100)]
    assert sum(map(len, large)) < MAX_PATTERN_CHARACTERS
    assert refused(large).startswith(
        "head.json: all_image_file_names_as_regex: the patterns together are too large for RE2")
    parse_manifest({"images": {}, "all_image_file_names_as_regex": ["x"] * MAX_NAME_PATTERNS}, "m")


def test_each_name_is_matched_once_against_all_patterns(monkeypatch):
    matched: list[bytes] = []
    compiled: list[int] = []
    match, compile_set = re2.Set.Match, re2.Set.Compile
    monkeypatch.setattr(re2.Set, "Match", lambda self, text: matched.append(text) or match(self, text))
    monkeypatch.setattr(re2.Set, "Compile", lambda self: compiled.append(1) or compile_set(self))
    names = [f"screen_{i}.png" for i in range(300)]
    patterns = [rf"screen_{i}\.png" for i in range(300)]

    manifest = parse_manifest({"images": {name: {"content_hash": HASH_A} for name in names},
                               "all_image_file_names_as_regex": patterns}, "m")

    # One match per uploaded name, not one per name and pattern.
    assert sorted(matched) == sorted(name.encode() for name in names)
    declared = manifest.declared_names()
    assert declared("screen_7.png") and not declared("screen_300.png")
    # Compiled once: when checked, then kept for the names' matching.
    assert len(compiled) == 1


# Lone surrogates (as undecodable bytes of a file name decode) and pattern syntax, often.
_any_characters = st.characters(categories=["Cs"]) | st.sampled_from(".*+?()[]{}|^$\\/") | st.characters()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(_any_characters, min_size=1, max_size=6), min_size=1, max_size=6, unique=True),
       st.lists(st.text(_any_characters, min_size=1, max_size=6), max_size=6))
def test_escaped_names_as_patterns_declare_exactly_those_names(names, others):
    # Undecodable bytes of a file name are lone surrogates: they match as characters, as RE2
    # reads their three bytes as one.
    images = {name: {"content_hash": HASH_A} for name in names}
    manifest = parse_manifest({"images": images, "all_image_file_names_as_regex": [re.escape(n) for n in names]},
                              "m.json")
    declared = manifest.declared_names()
    assert all(declared(name) for name in names)
    assert [declared(other) for other in others] == [other in names for other in others]


def test_a_pattern_refusing_a_name_with_a_lone_surrogate_names_the_file_and_image():
    with pytest.raises(ManifestError) as caught:
        parse_manifest({"images": {"a\udcff.png": {"content_hash": HASH_A}},
                        "all_image_file_names_as_regex": ["a\\.png"]}, "head.json")
    assert (caught.value.source, caught.value.location) == ("head.json", 'images["a\udcff.png"]')
    assert caught.value.message == "uploaded but not declared by all_image_file_names_as_regex"


def test_a_deeply_nested_manifest_is_an_error_naming_the_file():
    with pytest.raises(ManifestError, match="^deep.json: invalid JSON: nested too deeply$"):
        parse_manifest('{"images": {}, "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "deep.json")


def test_a_5000_digit_width_names_file_and_field_without_echoing_it():
    text = f'{{"images": {{"a.png": {{"content_hash": "{HASH_A}", "width": {"9" * 5000}, "height": 1}}}}}}'
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text, "big.json")
    assert str(caught.value) == (
        'big.json: images["a.png"].width: expected an integer >= 0, got a number with 5000 digits')


def test_manifest_error_survives_pickling():
    error = ManifestError("head.json", "images", "missing")
    copy_ = pickle.loads(pickle.dumps(error))
    assert (copy_.source, copy_.location, copy_.message) == ("head.json", "images", "missing")
    assert str(copy_) == "head.json: images: missing"
    assert isinstance(copy_, ValueError)


def test_load_manifest_names_the_file_in_errors(tmp_path):
    path = tmp_path / "head.json"
    path.write_text('{"images": {"a.png": {"content_hash": "nope"}}}')

    with pytest.raises(ManifestError) as caught:
        load_manifest(path)

    assert str(caught.value).startswith(f'{path}: images["a.png"].content_hash: ')


def test_load_manifest_of_a_missing_file_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_manifest(tmp_path / "absent.json")


def test_dump_and_parse_round_trip():
    manifest = parse_manifest(FULL, "head.json")
    dumped = dump_manifest(manifest)

    assert dumped == {**FULL, "all_image_file_names": sorted(FULL["all_image_file_names"])}
    assert parse_manifest(json.dumps(dumped), "copy.json") == manifest


def test_write_and_load_round_trip(tmp_path):
    manifest = parse_manifest(
        {"images": {"ünïcode/ß.png": {"content_hash": HASH_A, "width": 2}}}, "head.json")
    path = tmp_path / "out.json"

    write_manifest(manifest, path)

    loaded = load_manifest(path)
    assert loaded == manifest
    assert loaded.source == str(path)
    assert "ünïcode/ß.png" in path.read_text(encoding="utf-8")


_names = st.text(min_size=1, max_size=12)
_json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
_entries = st.fixed_dictionaries(
    {"content_hash": st.sampled_from([HASH_A, HASH_B, HASH_A.upper()])},
    optional={
        "width": st.integers(1, 10_000),
        "height": st.integers(1, 10_000),
        "display_name": st.text(max_size=8),
        "group": st.text(max_size=8),
        "diff_threshold": st.floats(0, 1, exclude_max=True),
        "tags": st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
        "x-extra": _json_scalars,
    },
)
_manifests = st.fixed_dictionaries(
    {"images": st.dictionaries(_names, _entries, max_size=5)},
    optional={
        "diff_threshold": st.floats(0, 1, exclude_max=True),
        "selective": st.booleans(),
        "build": _json_scalars,
    },
)


@settings(max_examples=150, deadline=None)
@given(_manifests)
def test_any_valid_manifest_round_trips_through_json(data):
    manifest = parse_manifest(json.dumps(data), "m.json")
    again = parse_manifest(json.dumps(dump_manifest(manifest)), "again.json")
    assert again == manifest
    assert dump_manifest(again) == dump_manifest(manifest)


# Folder manifests ------------------------------------------------------------------------


def _png(path: Path, size: tuple[int, int], color=(200, 30, 30)) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path.read_bytes()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG claiming ``width`` x ``height`` whose pixel data is cut off after a few bytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(bytes(100))[:20]))


def test_folder_manifest_covers_nested_images_with_hashes_and_sizes(tmp_path):
    root = tmp_path / "build"
    contents = {
        "home.png": _png(root / "home.png", (4, 3)),
        "screens/settings/dark.PNG": _png(root / "screens/settings/dark.PNG", (2, 5)),
        "screens/feed.jpeg": b"",
    }
    Image.new("RGB", (6, 7)).save(root / "screens/feed.jpeg", format="JPEG")
    contents["screens/feed.jpeg"] = (root / "screens/feed.jpeg").read_bytes()
    (root / "notes.txt").write_text("not an image")
    _png(root / ".hidden.png", (1, 1))
    _png(root / ".cache/inner.png", (1, 1))

    folder = manifest_from_folder(root)

    assert list(folder.manifest.images) == ["home.png", "screens/feed.jpeg",
                                            "screens/settings/dark.PNG"]
    assert folder.paths == {name: root / name for name in folder.manifest.images}
    for name, data in contents.items():
        assert folder.manifest.images[name].content_hash == hashlib.sha256(data).hexdigest()
    sizes = {n: (e.width, e.height) for n, e in folder.manifest.images.items()}
    assert sizes == {"home.png": (4, 3), "screens/feed.jpeg": (6, 7),
                     "screens/settings/dark.PNG": (2, 5)}
    assert folder.manifest.source == str(root)
    assert folder.manifest.selective is False and folder.manifest.all_image_file_names is None


def test_folder_manifest_accepts_each_documented_extension(tmp_path):
    for i, ext in enumerate(sorted(IMAGE_EXTENSIONS)):
        _png(tmp_path / f"img{i}{ext.upper() if i % 2 else ext}", (1, 1))
    (tmp_path / "img.tiff").write_bytes(b"")

    names = manifest_from_folder(tmp_path).manifest.images

    assert [Path(n).suffix.lower() for n in names] == sorted(IMAGE_EXTENSIONS)


def test_folder_manifest_reads_sizes_from_the_header_only(tmp_path):
    data = _png_header_only(8000, 6000)
    (tmp_path / "huge.png").write_bytes(data)
    with Image.open(tmp_path / "huge.png") as image, pytest.raises(OSError, match="truncated"):
        image.load()

    entry = manifest_from_folder(tmp_path).manifest.images["huge.png"]

    assert (entry.width, entry.height) == (8000, 6000)
    assert entry.content_hash == hashlib.sha256(data).hexdigest()


def test_unidentifiable_image_file_still_gets_an_entry(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"definitely not a png")
    (tmp_path / "empty.webp").write_bytes(b"")
    (tmp_path / "bomb.png").write_bytes(_png_header_only(20_000, 20_000))

    images = manifest_from_folder(tmp_path).manifest.images

    assert images["broken.png"] == ImageEntry(
        name="broken.png", content_hash=hashlib.sha256(b"definitely not a png").hexdigest())
    assert images["empty.webp"].content_hash == hashlib.sha256(b"").hexdigest()
    assert (images["empty.webp"].width, images["empty.webp"].height) == (None, None)
    assert (images["bomb.png"].width, images["bomb.png"].height) == (None, None)


def test_folder_manifest_of_a_non_folder_raises(tmp_path):
    with pytest.raises(NotADirectoryError):
        manifest_from_folder(tmp_path / "absent")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        manifest_from_folder(tmp_path / "file.png")


def test_folder_manifest_written_and_loaded_back(tmp_path):
    _png(tmp_path / "build/a/b.png", (3, 3))
    folder = manifest_from_folder(tmp_path / "build")

    write_manifest(folder.manifest, tmp_path / "manifest.json")

    assert load_manifest(tmp_path / "manifest.json") == folder.manifest


# Ignore regions.


def test_patterns_add_their_regions_to_the_images_they_match_after_their_own():
    own = {"x1": 0, "y1": 0, "x2": 9, "y2": 9}
    manifest = parse_manifest({"images": {
        "phone/a.png": {"content_hash": HASH_A, "ignore_regions": [own], "note": "kept"},
        "phone/b.png": {"content_hash": HASH_B},
        "desk.png": {"content_hash": HASH_A},
    }}, "m.json")
    patterns = [IgnorePattern("phone/*", (IgnoreRegion(1, 2, 3, 4), IgnoreRegion(0, 0, 9, 9))),
                IgnorePattern("*/b.png", (IgnoreRegion(5, 5, 6, 6),))]

    marked = with_ignore_patterns(manifest, patterns)

    images = dump_manifest(marked)["images"]
    assert images["phone/a.png"]["ignore_regions"] == [own, {"x1": 1, "y1": 2, "x2": 3, "y2": 4}]
    assert images["phone/a.png"]["note"] == "kept"
    assert images["phone/b.png"]["ignore_regions"] == [
        {"x1": 1, "y1": 2, "x2": 3, "y2": 4}, own, {"x1": 5, "y1": 5, "x2": 6, "y2": 6}]
    assert "ignore_regions" not in images["desk.png"]
    again = parse_manifest(json.dumps(dump_manifest(marked)), "m.json")
    assert ignore_regions_of(again, "phone/b.png") == (
        IgnoreRegion(1, 2, 3, 4), IgnoreRegion(0, 0, 9, 9), IgnoreRegion(5, 5, 6, 6))
    assert ignore_regions_of(again, "desk.png") == ()
    assert with_ignore_patterns(manifest, []) == manifest


def test_malformed_own_regions_are_named_with_the_manifest_image_and_field():
    manifest = parse_manifest({"images": {"a.png": {"content_hash": HASH_A, "ignore_regions": {}}}}, "m.json")
    with pytest.raises(ManifestError, match=r'^m\.json: images\["a\.png"\]\.ignore_regions: expected a list'):
        with_ignore_patterns(manifest, [IgnorePattern("*", (IgnoreRegion(0, 0, 1, 1),))])



def _symlinked_folders(tmp_path: Path) -> Path:
    """A build whose ``ios/`` leads out of it, ``same/`` to its own ``real/``, ``loop/`` to itself."""
    _png(tmp_path / "outside/home.png", (2, 2))
    root = tmp_path / "build"
    _png(root / "top.png", (1, 1))
    _png(root / "real/a.png", (3, 3))
    (root / "ios").symlink_to(tmp_path / "outside")
    (root / "same").symlink_to("real")
    (root / "real/loop").symlink_to("..")
    return root


def test_a_symlinked_folder_leading_out_is_entered_only_when_followed(tmp_path):
    root = _symlinked_folders(tmp_path)

    unfollowed = manifest_from_folder(root).manifest
    followed = manifest_from_folder(root, follow_symlinks=True)

    assert list(unfollowed.images) == ["real/a.png", "top.png"]
    assert unfollowed.unreadable["ios/"] == (
        "a symlink leading outside the input folder; not entered (pass follow_symlinks to enter it)")
    assert list(followed.manifest.images) == ["ios/home.png", "real/a.png", "top.png"]
    assert followed.paths["ios/home.png"] == root / "ios/home.png"
    assert "ios/" not in followed.manifest.unreadable


@pytest.mark.parametrize("follow_symlinks", [False, True])
def test_a_folder_reached_by_two_names_is_listed_once_and_a_loop_ends(tmp_path, follow_symlinks):
    root = _symlinked_folders(tmp_path)

    manifest = manifest_from_folder(root, follow_symlinks=follow_symlinks).manifest

    # Listed under its own name, not through the symlinks; its other names add nothing and lose
    # nothing (an alias such as latest -> v3 is no error).
    assert "real/a.png" in manifest.images and "same/a.png" not in manifest.images
    assert not any(name.startswith(("same", "real/loop")) for name in [*manifest.images, *manifest.unreadable])


def test_a_symlinked_folder_inside_a_hidden_one_is_listed_through_its_link(tmp_path):
    _png(tmp_path / ".shots/v3/a.png", (1, 1))
    (tmp_path / "latest").symlink_to(".shots/v3")
    folder = manifest_from_folder(tmp_path)
    assert list(folder.manifest.images) == ["latest/a.png"] and not folder.manifest.unreadable


def test_fifos_and_device_nodes_are_never_read_and_are_left_out_named(tmp_path):
    Image.new("RGB", (4, 3)).save(tmp_path / "ok.png")
    make_fifo(tmp_path / "fifo.png")  # reading it would block for ever
    make_zero_device(tmp_path / "zero.png")  # reading it would never end
    folder = manifest_from_folder(tmp_path)
    assert list(folder.manifest.images) == ["ok.png"] and list(folder.paths) == ["ok.png"]
    assert folder.manifest.unreadable == {
        "fifo.png": "cannot read the file: not a regular file (a FIFO)",
        "zero.png": "cannot read the file: not a regular file (a character device)",
    }


def test_paths_longer_than_path_max_are_left_out_named(tmp_path):
    Image.new("RGB", (4, 3)).save(tmp_path / "ok.png")
    long_file, deep_folder = make_too_long_paths(tmp_path, b"\x89PNG")
    folder = manifest_from_folder(tmp_path)
    assert list(folder.manifest.images) == ["ok.png"]
    assert folder.manifest.unreadable == {
        long_file: "cannot read the file: File name too long",
        deep_folder: "a folder that cannot be listed: File name too long; its files were not read",
    }


def test_a_folder_nested_deeper_than_the_recursion_limit_is_read(tmp_path):
    folders = [tmp_path]
    for _ in range(1200):  # a recursive walk would stop at Python's recursion limit
        folders.append(folders[-1] / "a")
        folders[-1].mkdir()
    (folders[-1] / "deep.png").write_bytes(b"not an image")
    try:
        assert list(manifest_from_folder(tmp_path).manifest.images) == ["a/" * 1200 + "deep.png"]
    finally:  # pytest's own clean-up recurses too
        (folders[-1] / "deep.png").unlink()
        for folder in reversed(folders[1:]):
            folder.rmdir()


def test_manifests_over_the_size_bounds_are_refused_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr("compare.inputs.manifest.MAX_MANIFEST_IMAGES", 2)
    images = {f"{i}.png": {"content_hash": HASH_A, "width": 1, "height": 1} for i in range(3)}
    with pytest.raises(ManifestError, match=r"^head.json: images: 3 entries, more than a manifest may have \(2\)$"):
        parse_manifest({"images": images}, "head.json")
    names = ["a.png", "b.png", "c.png"]
    with pytest.raises(ManifestError, match=r"^head.json: all_image_file_names: 3 entries, more than"):
        parse_manifest({"images": {}, "all_image_file_names": names}, "head.json")
    for name in names:
        Image.new("RGB", (1, 1)).save(tmp_path / name)
    with pytest.raises(ManifestError, match=r": more than 2 image files, more than a manifest may have$"):
        manifest_from_folder(tmp_path)

    monkeypatch.setattr("compare.inputs.manifest.MAX_MANIFEST_BYTES", 100)
    big = json.dumps({"images": {}, "padding": "x" * 100})
    (tmp_path / "big.json").write_text(big)
    message = r": 129 bytes, more than the 100 allowed in a manifest$"
    with pytest.raises(ManifestError, match=r"^big.json" + message):
        parse_manifest(big.encode(), "big.json")
    with pytest.raises(ManifestError, match=message):
        load_manifest(tmp_path / "big.json")


def test_the_size_bounds_are_those_documented():
    assert MAX_MANIFEST_IMAGES == 100_000 and MAX_MANIFEST_BYTES == 64 * 1024**2


@pytest.mark.parametrize("pillow_format", ["ICO", "PCX", "TGA"])
def test_a_folders_sizes_are_read_by_the_allowed_formats_plugins_only(tmp_path, pillow_format):
    Image.new("RGB", (16, 16), (1, 2, 3)).save(tmp_path / "disguised.png", format=pillow_format)
    with Image.open(tmp_path / "disguised.png") as image:
        assert image.size == (16, 16)  # Pillow alone would read it
    manifest, _ = manifest_from_folder(tmp_path)
    entry = manifest.images["disguised.png"]
    assert (entry.width, entry.height) == (None, None)
