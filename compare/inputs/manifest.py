"""Snapshot manifests: the file name -> content hash map of one build, read, written or built.

The JSON format is the one Sentry's snapshot pipeline uses::

    {"images": {"<file name>": {"content_hash": "<sha256 hex>", "width": 1170, "height": 2532,
                                "display_name": "...", "group": "...", "diff_threshold": 0.01,
                                "tags": {...}}},
     "diff_threshold": 0.0, "selective": false, "all_image_file_names": ["..."]}

Only ``images`` and each image's ``content_hash`` are required. Optional fields may be absent or
``null``; unknown fields are allowed and kept (in ``extra``) so a manifest round-trips.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from PIL import Image, UnidentifiedImageError

from fetchers.keys import is_sha256_hex

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp"})
"""File suffixes (matched case-insensitively) that `manifest_from_folder` treats as images."""

_IMAGE_FIELDS = ("content_hash", "width", "height", "display_name", "group", "diff_threshold",
                 "tags")
_MANIFEST_FIELDS = ("images", "diff_threshold", "selective", "all_image_file_names")


class ManifestError(ValueError):
    """A manifest is malformed.

    ``source`` is the file (or folder) it came from, ``location`` the field path (such as
    ``images["a.png"].width``) or the JSON position (``line 3, column 7``), ``message`` what is
    wrong there. ``str()`` joins the three: ``head.json: images["a.png"].width: ...``.
    """

    def __init__(self, source: str, location: str, message: str) -> None:
        self.source = source
        self.location = location
        self.message = message
        super().__init__(source, location, message)

    def __str__(self) -> str:
        return ": ".join(part for part in (self.source, self.location, self.message) if part)


@dataclass(frozen=True)
class ImageEntry:
    """One image of a manifest: its file name, content hash and optional metadata.

    ``content_hash`` is lowercase sha256 hex; ``width`` and ``height`` are the sizes the build
    declared (``None`` when unknown); ``diff_threshold`` overrides the manifest's for this
    image; ``tags`` is kept as given; ``extra`` holds unknown fields as-is.
    """

    name: str
    content_hash: str
    width: int | None = None
    height: int | None = None
    display_name: str | None = None
    group: str | None = None
    diff_threshold: float | None = None
    tags: Any = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """The images of one build, keyed by file name, with the build-wide options.

    ``selective`` says the build uploaded only some of its images; ``all_image_file_names``,
    when given, lists every image the build has, uploaded or not. ``source`` names the file or
    folder the manifest came from and is not part of equality; ``extra`` holds unknown
    top-level fields as-is.
    """

    images: Mapping[str, ImageEntry]
    diff_threshold: float | None = None
    selective: bool = False
    all_image_file_names: frozenset[str] | None = None
    source: str = field(default="", compare=False)
    extra: Mapping[str, Any] = field(default_factory=dict)


class FolderManifest(NamedTuple):
    """A manifest built from a folder, with the file each image's bytes are read from."""

    manifest: Manifest
    paths: dict[str, Path]


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read and validate the JSON manifest at ``path``.

    Raises `ManifestError` when it is malformed, `OSError` when it cannot be read.
    """
    return parse_manifest(Path(path).read_bytes(), os.fspath(path))


def parse_manifest(data: bytes | str | Mapping[str, Any], source: str) -> Manifest:
    """Validate a manifest given as JSON text or as already-decoded JSON.

    ``source`` names where it came from, for error messages and `Manifest.source`. Hashes are
    normalised to lowercase. Raises `ManifestError` naming the field or JSON position at fault.
    """
    if isinstance(data, (bytes, str)):
        data = _decode_json(data, source)
    return _Validator(source).manifest(data)


def dump_manifest(manifest: Manifest) -> dict[str, Any]:
    """Return the manifest as JSON-ready data; `parse_manifest` turns it back into an equal one.

    Absent optional fields are left out; unknown fields are written back as they were read.
    """
    out: dict[str, Any] = {"images": {name: _dump_entry(e) for name, e in manifest.images.items()}}
    if manifest.diff_threshold is not None:
        out["diff_threshold"] = manifest.diff_threshold
    out["selective"] = manifest.selective
    if manifest.all_image_file_names is not None:
        out["all_image_file_names"] = sorted(manifest.all_image_file_names)
    return _with_extra(out, manifest.extra)


def write_manifest(manifest: Manifest, path: str | os.PathLike[str]) -> None:
    """Write the manifest to ``path`` as indented UTF-8 JSON."""
    text = json.dumps(dump_manifest(manifest), indent=2, ensure_ascii=False) + "\n"
    Path(path).write_text(text, encoding="utf-8")


def manifest_from_folder(folder: str | os.PathLike[str]) -> FolderManifest:
    """Build the manifest of a folder of images, and the path of each image's file.

    Every file under ``folder`` (recursively) whose suffix is in `IMAGE_EXTENSIONS` is an image,
    named by its POSIX path relative to ``folder``. Hidden files and folders (name starting
    with ``.``) are left out; symlinked files are read, symlinked folders are not entered. The
    hash is the sha256 of the file's bytes, read in a stream; the size comes from the image
    header without decoding pixels. A file Pillow cannot identify (or refuses as a
    decompression bomb) still gets an entry, with unknown size, so it is compared like any
    other and ends errored if it must be decoded, rather than vanishing. Images are in name
    order.
    """
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"{os.fspath(folder)}: not a folder")
    paths: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root, onerror=_raise):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for filename in filenames:
            if filename.startswith(".") or Path(filename).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            path = Path(dirpath, filename)
            paths[path.relative_to(root).as_posix()] = path
    paths = {name: paths[name] for name in sorted(paths)}
    images = {name: _describe_file(name, path) for name, path in paths.items()}
    return FolderManifest(Manifest(images=images, source=os.fspath(folder)), paths)


def _raise(error: OSError) -> None:
    raise error


def _describe_file(name: str, path: Path) -> ImageEntry:
    with path.open("rb") as file:
        content_hash = hashlib.file_digest(file, "sha256").hexdigest()
        file.seek(0)
        width, height = _header_size(file)
    return ImageEntry(name=name, content_hash=content_hash, width=width, height=height)


def _header_size(file: BinaryIO) -> tuple[int | None, int | None]:
    # Image.open reads only the header; pixels are decoded on first access, which never
    # happens here. Images too large for Pillow's bomb check are left sized None as well: the
    # comparison re-checks sizes from the real headers before decoding anything.
    try:
        with Image.open(file) as image:
            return image.size
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError):
        return None, None


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json keeps the last of repeated keys; for image names that would silently drop images.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _decode_json(data: bytes | str, source: str) -> Any:
    try:
        return json.loads(data, object_pairs_hook=_reject_duplicates)
    except json.JSONDecodeError as e:
        raise ManifestError(source, f"line {e.lineno}, column {e.colno}",
                            f"invalid JSON: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise ManifestError(source, f"byte {e.start}",
                            f"not valid {e.encoding}: {e.reason}") from None
    except _DuplicateKey as e:
        raise ManifestError(source, "", f"duplicate key {_quote(e.key)}") from None


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _dump_entry(entry: ImageEntry) -> dict[str, Any]:
    out = {key: getattr(entry, key) for key in _IMAGE_FIELDS}
    return _with_extra({k: v for k, v in out.items() if v is not None}, entry.extra)


def _with_extra(known: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        known.setdefault(key, value)
    return known


class _Validator:
    """Checks decoded JSON field by field, raising `ManifestError` with the field's path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, location: str, message: str) -> ManifestError:
        return ManifestError(self.source, location, message)

    def manifest(self, data: Any) -> Manifest:
        if not isinstance(data, Mapping):
            raise self.fail("", f"expected a JSON object, got {_kind(data)}")
        if data.get("images") is None:
            raise self.fail("images", "missing")
        images = data["images"]
        if not isinstance(images, Mapping):
            raise self.fail("images", f"expected a JSON object, got {_kind(images)}")
        return Manifest(
            images={self.name(n, "images"): self.entry(n, v) for n, v in images.items()},
            diff_threshold=self.threshold(data.get("diff_threshold"), "diff_threshold"),
            selective=self.boolean(data.get("selective"), "selective"),
            all_image_file_names=self.name_list(data.get("all_image_file_names")),
            source=self.source,
            extra={k: v for k, v in data.items() if k not in _MANIFEST_FIELDS},
        )

    def entry(self, name: str, data: Any) -> ImageEntry:
        at = f"images[{_quote(name)}]"
        if not isinstance(data, Mapping):
            raise self.fail(at, f"expected a JSON object, got {_kind(data)}")
        return ImageEntry(
            name=name,
            content_hash=self.content_hash(data.get("content_hash"), f"{at}.content_hash"),
            width=self.size(data.get("width"), f"{at}.width"),
            height=self.size(data.get("height"), f"{at}.height"),
            display_name=self.text(data.get("display_name"), f"{at}.display_name"),
            group=self.text(data.get("group"), f"{at}.group"),
            diff_threshold=self.threshold(data.get("diff_threshold"), f"{at}.diff_threshold"),
            tags=self.tags(data.get("tags"), f"{at}.tags"),
            extra={k: v for k, v in data.items() if k not in _IMAGE_FIELDS},
        )

    def name(self, value: Any, at: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(at, f"image names must be non-empty strings, got {value!r}")
        return value

    def content_hash(self, value: Any, at: str) -> str:
        if value is None:
            raise self.fail(at, "missing")
        if not is_sha256_hex(value):
            raise self.fail(at, f"expected 64 hex characters (sha256), got {value!r}")
        return value.lower()

    def size(self, value: Any, at: str) -> int | None:
        if value is not None and (not _is_int(value) or value <= 0):
            raise self.fail(at, f"expected a positive integer, got {value!r}")
        return value

    def threshold(self, value: Any, at: str) -> float | None:
        if value is None:
            return None
        if not _is_number(value) or not 0 <= value <= 1:
            raise self.fail(at, f"expected a number from 0 to 1, got {value!r}")
        return float(value)

    def boolean(self, value: Any, at: str) -> bool:
        if value is not None and not isinstance(value, bool):
            raise self.fail(at, f"expected true or false, got {value!r}")
        return bool(value)

    def text(self, value: Any, at: str) -> str | None:
        if value is not None and not isinstance(value, str):
            raise self.fail(at, f"expected a string, got {_kind(value)}")
        return value

    def tags(self, value: Any, at: str) -> Any:
        if value is not None and not isinstance(value, (Mapping, list)):
            raise self.fail(at, f"expected a JSON object or array, got {_kind(value)}")
        return value

    def name_list(self, value: Any) -> frozenset[str] | None:
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.fail("all_image_file_names", f"expected a JSON array, got {_kind(value)}")
        return frozenset(self.name(n, f"all_image_file_names[{i}]") for i, n in enumerate(value))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _kind(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
