"""Snapshot manifests: the file name -> content hash map of one build, read, written or built.

The JSON format is the one Sentry's snapshot pipeline uses::

    {"images": {"<file name>": {"content_hash": "<sha256 hex>", "width": 1170, "height": 2532,
                                "display_name": "...", "group": "...", "diff_threshold": 0.01,
                                "tags": {...}}},
     "diff_threshold": 0.0, "selective": false, "all_image_file_names": ["..."]}

Validation follows Sentry's ``SnapshotManifest``/``ImageMetadata`` models: each image needs
``content_hash``, ``width`` and ``height`` (integers >= 0; absent sizes are accepted unless
`parse_manifest` is given ``require_sizes``, as the comparison's inputs are by default);
``diff_threshold`` is in ``[0, 1)``; ``tags`` is coerced the way Sentry coerces it (a list
becomes ``{tag: tag}``, an object's keys and values become strings, anything else ``null``);
``canvas_theme`` other than ``"light"``/``"dark"`` becomes ``null``; a repeated JSON key keeps
its last value. ``all_image_file_names_as_regex`` (RE2 patterns, matched against the whole
name; at most `MAX_NAME_PATTERNS` of them, `MAX_PATTERN_CHARACTERS` characters in all, compiled
together within `PATTERN_MEMORY`) is the pattern form of ``all_image_file_names``; the two are
mutually exclusive. Where snapcompare is stricter than Sentry's models it refuses what Sentry's
upload API refuses: every uploaded image must be declared by the list or the patterns when one
is given. It also requires sha256 hex hashes (Sentry takes any string; its uploads are sha256)
and strict JSON types (Sentry's models also take ``"3"`` for ``3``). Unknown fields are kept
(in ``extra``) so a manifest round-trips. One of them is snapcompare's own: an image's
``ignore_regions`` (a list of ``{"x1", "y1", "x2", "y2"}`` objects, see `compare.regions`),
read by `ignore_regions_of` and added to by `with_ignore_patterns`.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from heapq import heappop, heappush
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, TypeGuard

import re2
from PIL import Image, UnidentifiedImageError

from fetchers.files import FileTooLarge, open_regular_file, read_regular_file, too_large
from fetchers.keys import is_sha256_hex

from ..formats import open_allowed
from ..model import parameter
from ..regions import (
    IgnorePattern,
    IgnoreRegion,
    ignore_regions_from_json,
    ignore_regions_json,
    merged,
    pattern_regions,
    re2_bytes,
)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp"})
"""File suffixes (matched case-insensitively) that `manifest_from_folder` treats as images."""

MAX_MANIFEST_IMAGES = 100_000
"""Most images a manifest (or an image folder) may hold, and most names its
``all_image_file_names`` may list: a comparison of two such builds takes about 0.65 GB and
20 s before any pixel is diffed, and writes about 140 MB of reports."""

MAX_MANIFEST_BYTES = 64 * 1024**2
"""Most bytes a manifest file may have (64 MiB: 100,000 images with 600-character names parse
in under 0.3 GB)."""

MAX_NAME_PATTERNS = 10_000
"""Most patterns ``all_image_file_names_as_regex`` may hold."""

MAX_PATTERN_CHARACTERS = 100_000
"""Most characters its patterns may have together: RE2 expands counted repetitions while
compiling them, up to about 1.5 KB a character (0.15 GB) before `PATTERN_MEMORY` stops it."""

PATTERN_MEMORY = 32 * 1024**2
"""Most memory RE2 may give the compiled patterns, all in one program (see
`Manifest.declared_names`); patterns that need more are refused."""

_IMAGE_FIELDS = ("content_hash", "width", "height", "display_name", "group", "diff_threshold",
                 "tags", "canvas_theme")
_MANIFEST_FIELDS = ("images", "diff_threshold", "selective", "all_image_file_names",
                    "all_image_file_names_as_regex")
_CANVAS_THEMES = ("light", "dark")
_SHOWN_VALUE = 40
"""Longest value (as written by repr) quoted in a message; longer ones are described."""


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
    image; ``tags`` is a str -> str map (coerced as Sentry coerces it) or None;
    ``canvas_theme`` is ``"light"``, ``"dark"`` or None; ``extra`` holds unknown fields as-is.
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
    canvas_theme: str | None = None


@dataclass(frozen=True)
class Manifest:
    """The images of one build, keyed by file name, with the build-wide options.

    ``selective`` says the build uploaded only some of its images; ``all_image_file_names``,
    when given, lists every image the build has, uploaded or not; ``image_name_patterns``
    (``all_image_file_names_as_regex``) says the same with RE2 patterns, see
    `declared_names`. ``source`` names the file or folder the manifest came from and is not
    part of equality; ``extra`` holds unknown top-level fields as-is. ``unreadable`` (folder
    manifests only) maps the names of image files that could not be read to why; they have no
    entry in ``images``.
    """

    images: Mapping[str, ImageEntry]
    diff_threshold: float | None = None
    selective: bool = False
    all_image_file_names: frozenset[str] | None = None
    source: str = field(default="", compare=False)
    extra: Mapping[str, Any] = field(default_factory=dict)
    image_name_patterns: tuple[str, ...] | None = None
    unreadable: Mapping[str, str] = field(default_factory=dict)

    def declared_names(self) -> Callable[[str], bool] | None:
        """Whether a name is among the build's declared images; None when none are declared.

        The literal list is a set; a name is declared when any pattern matches the whole of it
        (RE2 ``fullmatch``). The patterns are one RE2 set, so each name is matched once,
        whatever their number; names and patterns are matched as `re2_bytes`, so lone
        surrogates (undecodable bytes of a file name) match as characters. Raises
        `PatternError` when RE2 refuses the patterns (`parse_manifest` has checked they pass).
        """
        if self.all_image_file_names is not None:
            return self.all_image_file_names.__contains__
        if self.image_name_patterns is not None:
            patterns = _pattern_set(self.image_name_patterns)
            return lambda name: patterns.Match(re2_bytes(name)) is not None
        return None


class FolderManifest(NamedTuple):
    """A manifest built from a folder, with the file each image's bytes are read from."""

    manifest: Manifest
    paths: dict[str, Path]


def load_manifest(path: str | os.PathLike[str], *, require_sizes: bool = False) -> Manifest:
    """Read and validate the JSON manifest at ``path`` (see `parse_manifest`).

    Raises `ManifestError` when it is malformed or over `MAX_MANIFEST_BYTES` (told before it is
    read), `OSError` when it cannot be read or is not a regular file.
    """
    try:
        data = read_regular_file(path, MAX_MANIFEST_BYTES)
    except FileTooLarge as exc:
        raise _too_large(os.fspath(path), exc.size) from None
    return parse_manifest(data, os.fspath(path), require_sizes=require_sizes)


def parse_manifest(
    data: bytes | str | Mapping[str, Any], source: str, *, require_sizes: bool = False
) -> Manifest:
    """Validate a manifest given as JSON text or as already-decoded JSON.

    ``source`` names where it came from, for error messages and `Manifest.source`. Hashes are
    normalised to lowercase. With ``require_sizes`` (as `compare_builds` and the CLI parse,
    unless told otherwise) every image needs ``width`` and ``height``, as in Sentry; without
    it they may be left out, and are then read from the images' headers. Raises `ManifestError` naming
    the field or JSON position at fault; input is never echoed beyond short values. A manifest
    over `MAX_MANIFEST_BYTES` (checked before decoding) or `MAX_MANIFEST_IMAGES` is refused.
    """
    if isinstance(data, (bytes, str)):
        if len(data) > MAX_MANIFEST_BYTES:
            raise _too_large(source, len(data))
        data = decode_json(data, source)
    return _Validator(source, require_sizes).manifest(data)


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
    if manifest.image_name_patterns is not None:
        out["all_image_file_names_as_regex"] = list(manifest.image_name_patterns)
    return _with_extra(out, manifest.extra)


def write_manifest(manifest: Manifest, path: str | os.PathLike[str]) -> None:
    """Write the manifest to ``path`` as `manifest_text` gives it, in UTF-8."""
    Path(path).write_bytes(manifest_text(manifest).encode())


def manifest_text(manifest: Manifest) -> str:
    """The manifest as written: indented JSON with a final newline, every character as it is
    but the unprintable ones, spelled ``\\uXXXX``.

    Only strings can hold those, where the escape means the same: names with terminal control
    sequences (C1 controls, bidi overrides) print as text, and names with undecodable bytes of
    a file name (lone surrogates, which UTF-8 cannot encode) can be written at all, and read
    back as the same names.
    """
    text = json.dumps(dump_manifest(manifest), indent=2, ensure_ascii=False)
    if not text.isprintable():
        text = "".join(c if c.isprintable() or c == "\n" else _json_escape(c) for c in text)
    return text + "\n"


def _json_escape(char: str) -> str:
    units = char.encode("utf-16-be", "surrogatepass")
    return "".join(f"\\u{int.from_bytes(units[i:i + 2], 'big'):04x}" for i in range(0, len(units), 2))


def ignore_regions_of(manifest: Manifest, name: str) -> tuple[IgnoreRegion, ...]:
    """Image ``name``'s own ``ignore_regions`` (none when it has no such field).

    Raises `ManifestError` naming the manifest, the image and the field when they are malformed.
    """
    extra = manifest.images[name].extra
    if "ignore_regions" not in extra:
        return ()
    try:
        return ignore_regions_from_json(extra["ignore_regions"], f"images[{quoted(name)}].ignore_regions")
    except ValueError as exc:
        raise ManifestError(manifest.source, "", str(exc)) from None


def with_ignore_patterns(manifest: Manifest, patterns: Sequence[IgnorePattern]) -> Manifest:
    """``manifest`` with the regions of each pattern whose glob matches an image's name added to
    that image's ``ignore_regions`` (after its own), so a comparison with it as the head
    ignores them there.

    Raises `ManifestError` as `ignore_regions_of` does for an image a pattern matches.
    """
    images = dict(manifest.images)
    for name, entry in manifest.images.items():
        added = pattern_regions(patterns, name)
        if added:
            regions = ignore_regions_json(merged(ignore_regions_of(manifest, name), added))
            images[name] = replace(entry, extra={**entry.extra, "ignore_regions": regions})
    return replace(manifest, images=images)


def manifest_from_folder(
    folder: str | os.PathLike[str], *, follow_symlinks: bool = False
) -> FolderManifest:
    """Build the manifest of a folder of images, and the path of each image's file.

    Every file under ``folder`` (recursively) whose suffix is in `IMAGE_EXTENSIONS` is an image,
    named by its POSIX path relative to ``folder``. Hidden files and folders (name starting
    with ``.``) are left out. A symlink, to a file or a folder, is followed when it resolves
    inside ``folder``, or anywhere with ``follow_symlinks``. Each folder is listed once: one
    reached by several names (a symlink to a folder listed already, or a symlink loop) is listed
    under the name through the fewest symlinks, then the first in name order, and its other
    names are left out (nothing of it is lost). Only regular files are
    read (a FIFO or device node never is, see `fetchers.files.open_regular_file`). The hash is
    the sha256 of the file's bytes, read in a stream; the size comes from the image header
    without decoding pixels. A file Pillow cannot identify (or refuses as a decompression
    bomb) still gets an entry, with unknown size, so it is compared like any other and ends
    errored if it must be decoded, rather than vanishing. A file that cannot be read (not a
    regular file, a path longer than the system takes, ...), a symlink leading out of the
    folder, or a header Pillow rejects for another reason (such as an oversized text or ICC
    chunk) gets no entry: it is listed in `Manifest.unreadable` with the reason, and a
    comparison reports it errored; so is a subfolder left unlisted (one that cannot be listed,
    or a symlink leading out of the folder unless followed), under its name and a ``/``.
    Images are in name order.

    Raises `NotADirectoryError` when ``folder`` is not a folder, the `OSError` of listing it,
    and `ManifestError` as soon as it is found to hold more than `MAX_MANIFEST_IMAGES` images
    (before any is read).
    """
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"{os.fspath(folder)}: not a folder")
    real_root = root.resolve()
    files, unreadable = _image_files(root, real_root, follow_symlinks)
    images: dict[str, ImageEntry] = {}
    readable: dict[str, Path] = {}
    for name in sorted(files):
        path, is_symlink = files[name]
        if not follow_symlinks and is_symlink and not _inside(path, real_root):
            unreadable[name] = ("a symlink leading outside the input folder; not read "
                                f"(pass {parameter('follow_symlinks')} to read it)")
            continue
        try:
            images[name] = _describe_file(name, path)
        except _Unreadable as exc:
            unreadable[name] = exc.reason
            continue
        readable[name] = path
    manifest = Manifest(images=images, source=os.fspath(folder), unreadable=dict(sorted(unreadable.items())))
    return FolderManifest(manifest, readable)


def _image_files(
    root: Path, real_root: Path, follow_symlinks: bool
) -> tuple[dict[str, tuple[Path, bool]], dict[str, str]]:
    """Every image file under ``root`` by name, with its path and whether it is a symlink; and
    what cannot be read, with the reason: subfolders not listed (``name/``) and image files
    whose kind could not be told.

    Iterative (no depth limit) and one listing per folder, folders taken by how many symlinks
    lead to them, then by name (see `manifest_from_folder`); a folder is known by its device
    and inode. Listing ``root`` itself raises its `OSError`; finding more than
    `MAX_MANIFEST_IMAGES` images a `ManifestError`.
    """
    files: dict[str, tuple[Path, bool]] = {}
    unlisted: dict[str, str] = {}
    listed: dict[tuple[int, int], str] = {}  # (device, inode) -> the name it is listed under
    folders: list[tuple[int, str, Path]] = [(0, "", root)]  # (symlinks to it, name, path)
    while folders:
        symlinks, name, folder = heappop(folders)
        try:
            info = folder.stat()
            if listed.setdefault((info.st_dev, info.st_ino), name) != name:
                continue  # its files are listed under its first name
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError as exc:
            if folder is root:
                raise
            unlisted[name] = (
                f"a folder that cannot be listed: {exc.strerror or type(exc).__name__}; its files were not read")
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path, entry_name = Path(entry.path), name + entry.name
            try:  # a folder or a symlink to one, as `os.walk` sorts entries
                is_folder, is_symlink = entry.is_dir(), entry.is_symlink()
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                if Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS:
                    unlisted[entry_name] = f"cannot be examined: {reason}"
                elif exc.errno == errno.ELOOP and entry.is_symlink():  # a loop, or a chain too long to
                    # follow: maybe to a folder, so the other side's images under its name are told
                    unlisted[entry_name + "/"] = f"a symlink that cannot be followed: {reason}; not entered"
                continue
            if is_folder:
                if is_symlink and not follow_symlinks and not _inside(path, real_root):
                    unlisted[entry_name + "/"] = ("a symlink leading outside the input folder; not entered "
                                                  f"(pass {parameter('follow_symlinks')} to enter it)")
                else:
                    heappush(folders, (symlinks + is_symlink, entry_name + "/", path))
            elif Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS:
                files[entry_name] = (path, is_symlink)
                if len(files) > MAX_MANIFEST_IMAGES:
                    raise ManifestError(os.fspath(root), "", f"more than {MAX_MANIFEST_IMAGES:,} image files, "
                                        "more than a manifest may have")
    return files, unlisted


def _too_large(source: str, size: int) -> ManifestError:
    return ManifestError(source, "", f"{too_large(size, MAX_MANIFEST_BYTES)} in a manifest")


def _inside(path: Path, real_root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(real_root)
    except (OSError, RuntimeError):  # a symlink loop resolves nowhere
        return False


class _Unreadable(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def _describe_file(name: str, path: Path) -> ImageEntry:
    try:
        with open_regular_file(path) as file:
            content_hash = hashlib.file_digest(file, "sha256").hexdigest()
            file.seek(0)
            width, height = _header_size(file)
    except OSError as exc:
        raise _Unreadable(f"cannot read the file: {exc.strerror or type(exc).__name__}") from None
    return ImageEntry(name=name, content_hash=content_hash, width=width, height=height)


def _header_size(file: BinaryIO) -> tuple[int | None, int | None]:
    # Only the plugin of a supported format reads the header; pixels are decoded on first
    # access, which never happens here. A file in no supported format is left unsized. Images
    # too large for Pillow's bomb check are left sized None as well: the comparison re-checks
    # sizes from the real headers before decoding anything. Pillow's other refusals (ValueError
    # for a text or ICC chunk over its limit, and the like) make the file unreadable; their
    # messages may quote the file's bytes, so only the kind is kept.
    try:
        with open_allowed(file) as image:
            return image.size
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError):
        return None, None
    except Exception as exc:  # noqa: BLE001 - any header Pillow refuses is this image's problem
        raise _Unreadable(f"image header rejected by Pillow ({type(exc).__name__})") from None


class _TooManyDigits:
    """Stands in for a JSON integer too long for Python to convert."""

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _parse_int(text: str) -> int | _TooManyDigits:
    try:
        return int(text)
    except ValueError:  # over sys.get_int_max_str_digits()
        return _TooManyDigits(len(text.lstrip("-")))


def decode_json(data: bytes | str, source: str) -> Any:
    """Decode JSON read from ``source``, raising `ManifestError` with the position at fault.

    Like Sentry's orjson, a repeated key keeps its last value. Integers too long for Python to
    convert and nesting too deep to decode are errors, not crashes.
    """
    try:
        return json.loads(data, parse_int=_parse_int)
    except json.JSONDecodeError as e:
        raise ManifestError(source, f"line {e.lineno}, column {e.colno}",
                            f"invalid JSON: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise ManifestError(source, f"byte {e.start}",
                            f"not valid {e.encoding}: {e.reason}") from None
    except RecursionError:
        raise ManifestError(source, "", "invalid JSON: nested too deeply") from None


def quoted(text: str) -> str:
    """``text`` as a JSON string, as error locations name images (``images["a.png"]``)."""
    return json.dumps(text, ensure_ascii=False)


class PatternError(ValueError):
    """RE2 refuses name patterns: ``index`` is the pattern it cannot parse, None when they
    parse but are too large together (over `PATTERN_MEMORY`)."""

    def __init__(self, index: int | None) -> None:
        self.index = index
        super().__init__(f"all_image_file_names_as_regex[{index}]: invalid RE2 pattern" if index is not None
                         else "all_image_file_names_as_regex: too large for RE2 to compile")


@functools.lru_cache(maxsize=2)
def _pattern_set(patterns: tuple[str, ...]) -> Any:
    """``patterns`` as one compiled RE2 set, each anchored at both ends; `PatternError` if RE2
    refuses them. The last two sets are kept: a manifest's are compiled when it is checked and
    used again when its names are (here, then by the comparison)."""
    options = re2.Options()
    options.log_errors = False
    options.max_mem = PATTERN_MEMORY
    compiled = re2.Set.FullMatchSet(options)
    for index, pattern in enumerate(patterns):
        try:
            compiled.Add(re2_bytes(pattern))
        except re2.error:
            raise PatternError(index) from None
    try:
        compiled.Compile()
    except re2.error:
        raise PatternError(None) from None
    return compiled


def _dump_entry(entry: ImageEntry) -> dict[str, Any]:
    out = {key: getattr(entry, key) for key in _IMAGE_FIELDS}
    return _with_extra({k: v for k, v in out.items() if v is not None}, entry.extra)


def _with_extra(known: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        known.setdefault(key, value)
    return known


class _Validator:
    """Checks decoded JSON field by field, raising `ManifestError` with the field's path."""

    def __init__(self, source: str, require_sizes: bool) -> None:
        self.source = source
        self.require_sizes = require_sizes

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
        self.bounded(images, "images")
        listed = self.name_list(data.get("all_image_file_names"), "all_image_file_names")
        patterns = self.patterns(data.get("all_image_file_names_as_regex"))
        if listed is not None and patterns is not None:
            raise self.fail("", "all_image_file_names and all_image_file_names_as_regex are "
                            "mutually exclusive")
        manifest = Manifest(
            images={self.name(n, "images"): self.entry(n, v) for n, v in images.items()},
            diff_threshold=self.threshold(data.get("diff_threshold"), "diff_threshold"),
            selective=self.boolean(data.get("selective"), "selective"),
            all_image_file_names=frozenset(listed) if listed is not None else None,
            source=self.source,
            extra={k: v for k, v in data.items() if k not in _MANIFEST_FIELDS},
            image_name_patterns=patterns,
        )
        self.uploads_declared(manifest)
        return manifest

    def uploads_declared(self, manifest: Manifest) -> None:
        # Sentry's upload API refuses an image missing from all_image_file_names; its
        # comparison would report such an image both matched and removed.
        declared = manifest.declared_names()
        if declared is None:
            return
        field_name = ("all_image_file_names" if manifest.all_image_file_names is not None
                      else "all_image_file_names_as_regex")
        for name in manifest.images:
            if not declared(name):
                raise self.fail(f"images[{quoted(name)}]", f"uploaded but not declared by {field_name}")

    def entry(self, name: str, data: Any) -> ImageEntry:
        at = f"images[{quoted(name)}]"
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
            tags=_coerce_tags(data.get("tags")),
            extra={k: v for k, v in data.items() if k not in _IMAGE_FIELDS},
            canvas_theme=data.get("canvas_theme") if data.get("canvas_theme") in _CANVAS_THEMES else None,
        )

    def name(self, value: Any, at: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(at, f"image names must be non-empty strings, got {shown_value(value)}")
        return value

    def content_hash(self, value: Any, at: str) -> str:
        if value is None:
            raise self.fail(at, "missing")
        if not isinstance(value, str) or not is_sha256_hex(value):
            raise self.fail(at, f"expected 64 hex characters (sha256), got {shown_value(value)}")
        return value.lower()

    def size(self, value: Any, at: str) -> int | None:
        if value is None:
            if self.require_sizes:
                raise self.fail(at, "missing")
            return None
        if not _is_int(value) or value < 0:
            raise self.fail(at, f"expected an integer >= 0, got {shown_value(value)}")
        return value

    def threshold(self, value: Any, at: str) -> float | None:
        if value is None:
            return None
        if not _is_number(value) or not 0 <= value < 1:
            raise self.fail(at, f"expected a number >= 0 and < 1, got {shown_value(value)}")
        return float(value)

    def boolean(self, value: Any, at: str) -> bool:
        if value is not None and not isinstance(value, bool):
            raise self.fail(at, f"expected true or false, got {shown_value(value)}")
        return bool(value)

    def text(self, value: Any, at: str) -> str | None:
        if value is not None and not isinstance(value, str):
            raise self.fail(at, f"expected a string, got {_kind(value)}")
        return value

    def name_list(self, value: Any, at: str) -> list[str] | None:
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.fail(at, f"expected a JSON array, got {_kind(value)}")
        self.bounded(value, at)
        return [self.name(n, f"{at}[{i}]") for i, n in enumerate(value)]

    def bounded(self, value: Sequence[Any] | Mapping[str, Any], at: str) -> None:
        if len(value) > MAX_MANIFEST_IMAGES:
            raise self.fail(at, f"{len(value):,} entries, more than a manifest may have ({MAX_MANIFEST_IMAGES:,})")

    def patterns(self, value: Any) -> tuple[str, ...] | None:
        at = "all_image_file_names_as_regex"
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.fail(at, f"expected a JSON array, got {_kind(value)}")
        if len(value) > MAX_NAME_PATTERNS:
            raise self.fail(at, f"{len(value):,} patterns, more than a manifest may have ({MAX_NAME_PATTERNS:,})")
        for i, pattern in enumerate(value):
            if not isinstance(pattern, str):
                raise self.fail(f"{at}[{i}]", f"expected a string, got {_kind(pattern)}")
        characters = sum(map(len, value))
        if characters > MAX_PATTERN_CHARACTERS:
            raise self.fail(at, f"{characters:,} characters of patterns, more than a manifest may have "
                            f"({MAX_PATTERN_CHARACTERS:,})")
        try:
            _pattern_set(tuple(value))
        except PatternError as exc:
            if exc.index is None:
                raise self.fail(at, f"the patterns together are too large for RE2 to compile (over "
                                f"{PATTERN_MEMORY // 1024**2} MiB)") from None
            raise self.fail(f"{at}[{exc.index}]", f"invalid RE2 pattern {shown_value(value[exc.index])}") from None
        return tuple(value)


def _coerce_tags(value: Any) -> dict[str, str] | None:
    """Sentry's ``coerce_tags``: an object's keys and values as strings, a list as {t: t}, else None."""
    if isinstance(value, Mapping):
        return {_py_str(k): _py_str(v) for k, v in value.items()}
    if isinstance(value, list):
        return {_py_str(tag): _py_str(tag) for tag in value}
    return None


def _py_str(value: Any) -> str:
    # Sentry applies Python's str() to decoded JSON: true -> "True", null -> "None".
    if isinstance(value, _TooManyDigits):
        return f"<{value.digits}-digit number>"
    return str(value)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    # math.isfinite would convert an integer to a float, which overflows past 1e308.
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


def shown_value(value: Any) -> str:
    """A short value as written in JSON, else what kind of value it is: input is never quoted at length."""
    if isinstance(value, _TooManyDigits):
        return f"a number with {value.digits} digits"
    if value is None or isinstance(value, (bool, int, float, str)):
        text = json.dumps(value, ensure_ascii=True)
        if len(text) <= _SHOWN_VALUE:
            return text
    return _kind(value)


def _kind(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float, _TooManyDigits)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
