"""``report.html``: one page for people, readable offline and without a server.

This module prepares the data; the markup is in ``templates/report.html.j2`` and
``templates/item.html.j2``, rendered by Jinja2 with autoescaping, and the page's style and
script are ``templates/report.css`` and ``templates/report.js``, inlined. The previews are
embedded as ``data:`` URIs read from the output folder (a preview that is missing or not an
image shows a note instead), so the page shows everything on its own; links to full-size files
beside it (the crops at full resolution and the diff mask) work while it stays in its folder.

Each changed image opens on the changed area: crops of before and after at full resolution
(zoomed for small areas) with the changed pixels highlighted, beside the whole-image views
(slider, side by side, diff), which show a small image at its natural size, at most doubled.
The image's ignore regions are drawn hatched over both, as boxes placed in the image's
coordinates (pixels on the crops, percentages of each picture's full size on the whole views).
The header and the footer name the engine that compared the pixels and its version.

Names are shown with control, bidirectional and other invisible characters written as escapes
(``\\u202e``) and in isolated runs, so no name can reorder the text around it.

The inline script adds the status filter, the name search and the before / after slider; it
reads what it needs from a JSON block whose ``<``, ``>`` and ``&`` are ``\\u``-escaped, and only
ever writes text with ``textContent``. Without the script the page still shows everything. A
Content-Security-Policy allows no fetch at all and no script but that one (by hash), so a name
that slipped through unescaped could still run nothing.

With ``--approved``, a banner at the top says what the approval did: carried over from where,
covering which images' changes, or given but not matching, with the images whose change it does
not hold and those whose approved change is not here (at most `BANNER_NAMES` names a list, the
rest counted; each name links to its entry).

Figures carry their unit: sizes and areas in px, durations in s, data in bytes, counts as what
they count.

Sections, in order: changed (largest diff ratio first), errored, renamed (old -> new), added,
removed, skipped, unchanged (collapsed). The filter state is kept in the URL fragment
(``#status=changed,errored&q=button``), so a filtered view can be linked to.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import json
import math
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from PIL import Image, UnidentifiedImageError

from ..imaging.engines import get_engine
from ..imaging.previews import CROP_ORIGIN_KEY
from ..model import Comparison, ImageResult, Status, canvas_size
from ..regions import IgnoreRegion

SECTION_ORDER = (
    Status.CHANGED,
    Status.ERRORED,
    Status.RENAMED,
    Status.ADDED,
    Status.REMOVED,
    Status.SKIPPED,
    Status.UNCHANGED,
)
"""The page's sections and summary tiles, most urgent first."""

TUNING_ANCHOR = "tuning-diff-threshold"
"""The id of the page's (and the README's) explanation of ``--diff-threshold``."""

BANNER_NAMES = 20
"""At most this many names are listed in each list of the approval banner; the rest are counted."""

_SECTION_NOTES = {
    Status.CHANGED: "More pixels changed than allowed. Largest change first.",
    Status.ERRORED: "These images could not be compared.",
    Status.RENAMED: "Same picture under a new name.",
    Status.ADDED: "New in the head build.",
    Status.REMOVED: "Gone from the head build.",
    Status.SKIPPED: "Not uploaded by the head build, which still has them.",
    Status.UNCHANGED: "Identical, or fewer pixels changed than allowed.",
}
_PREVIEW_ROLES = ("before", "after", "diff")
_CROP_ROLES = ("before", "after")
# Crops are zoomed by a whole factor (at most this) until they fill about this box.
_FOCUS_BOX = (480, 400)
_MAX_ZOOM = 8
_MAX_NATURAL_ZOOM = 2
_MIME_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
_JSON_IN_HTML = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# Format characters that belong inside words: joiners (emoji sequences, Indic and Arabic
# scripts) and the tag characters of flag sequences.
_WORD_FORMAT = re.compile("[\u200c\u200d\U000e0020-\U000e007f]")
_ORIGIN = re.compile(r"(\d{1,9}),(\d{1,9})")
# What a count of `Comparison.stats` counts, by its key without ``fetch_``; durations and
# bytes are known by their keys' endings.
_STAT_NOUNS = {
    "pairs_diffed": "pair", "blobs": "blob", "chunks": "chunk", "chunks_failed": "chunk",
    "keys_requested": "key", "unique_keys": "key", "shared": "key", "errors": "key",
    "retries": "request", "fetches_issued": "request", "peak_in_flight": "request",
}
_SECONDS = ("wall_time", "_seconds")
_BYTE_UNITS = ("KiB", "MiB", "GiB", "TiB")


def format_percent(ratio: float) -> str:
    """Format a share (0..1) as a percentage with two significant digits below 0.01 %.

    A small but non-zero share never reads as ``0%``: ``0.0000341`` gives ``0.0034%``.
    """
    percent = ratio * 100
    if percent == 0:
        return "0%"
    digits = 2 if percent >= 0.01 else min(12, 1 - math.floor(math.log10(percent)))
    text = f"{percent:.{digits}f}".rstrip("0").rstrip(".")
    return f"{text}%"


def format_count(value: int | None) -> str:
    """Format a pixel count with thousands separators; ``?`` when unknown."""
    return f"{value:,}" if value is not None else "?"


@dataclass(frozen=True)
class Shown:
    """A text as the report shows it: runs of plain text and of escaped invisible characters.

    ``parts`` is (text, invisible) pairs; ``plain`` is the whole, escapes included, for places
    without markup (attributes).
    """

    parts: tuple[tuple[str, bool], ...]

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self.parts)


def shown_text(text: str, *, keep: str = "") -> Shown:
    """Split ``text`` into plain runs and escapes (``\\u202e``, ``\\x00``, ``\\t``) of the
    characters that would be invisible or rearrange the page: controls, bidirectional and
    other format characters, line and paragraph separators, lone surrogates. Characters in
    ``keep`` stay as they are.
    """
    parts: list[tuple[str, bool]] = []
    plain: list[str] = []
    for char in text:
        if char in keep or not _invisible(char):
            plain.append(char)
            continue
        if plain:
            parts.append(("".join(plain), False))
            plain = []
        parts.append((_escape_sequence(char), True))
    if plain:
        parts.append(("".join(plain), False))
    return Shown(tuple(parts))


def _invisible(char: str) -> bool:
    category = unicodedata.category(char)
    if category == "Cf":
        return not _WORD_FORMAT.match(char)
    return category in ("Cc", "Cs", "Zl", "Zp")


def _escape_sequence(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


@dataclass(frozen=True)
class _Picture:
    data_uri: str
    width: int
    height: int
    origin: tuple[int, int] | None = None


@dataclass(frozen=True)
class _Fact:
    kind: str
    text: str
    value: str = ""


@dataclass(frozen=True)
class _Box:
    """An ignore region on a picture: CSS left, top, width and height, each with its unit."""

    region: str
    left: str
    top: str
    width: str
    height: str


@dataclass(frozen=True)
class _Figure:
    role: str
    picture: _Picture | None
    share: float = 100.0
    ignored: tuple[_Box, ...] = ()


@dataclass(frozen=True)
class _Viewer:
    modes: list[tuple[str, str]]
    figures: list[_Figure]
    aspect: float
    natural: int


@dataclass(frozen=True)
class _Focus:
    crops: list[_Figure]
    overlay: _Picture | None
    zoom: int
    where: str | None
    links: list[tuple[str, str]]
    ignored: tuple[_Box, ...] = ()


@dataclass(frozen=True)
class _Item:
    index: int
    anchor: str
    name: Shown
    previous: Shown | None
    facts: list[_Fact]
    detail: Shown | None
    focus: _Focus | None
    viewer: _Viewer | None


@dataclass(frozen=True)
class _Section:
    status: str
    count: int
    note: str
    kind: str
    collapsed: bool
    items: Iterator[_Item]


@dataclass(frozen=True)
class _Listed:
    """Names a banner lists, each with its entry's anchor on the page (None when it has none),
    and how many names there are in all."""

    names: list[tuple[Shown, str | None]]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.names)


@dataclass(frozen=True)
class _ApprovalBanner:
    source: Shown
    fingerprint: str
    covered: _Listed


@dataclass(frozen=True)
class _MismatchBanner:
    source: Shown
    unapproved: _Listed
    not_present: _Listed


def iter_html(comparison: Comparison, out_dir: Path) -> Iterator[str]:
    """Yield ``report.html`` in pieces, so a report with many previews is never held whole.

    ``out_dir`` is the folder the previews' relative paths are resolved against; each image's
    previews are read when its turn to be written comes.
    """
    summary = comparison.summary
    ordered = [(status, _ordered(comparison, status)) for status in SECTION_ORDER]
    ordered = [(status, results) for status, results in ordered if results]
    index: list[dict[str, str]] = []
    anchors: dict[str, str] = {}
    sections = []
    for status, results in ordered:
        anchors.update((r.name, _anchor(len(index) + offset)) for offset, r in enumerate(results))
        sections.append(_Section(
            status=status.value,
            count=len(results),
            note=_SECTION_NOTES[status],
            kind="card" if status is Status.CHANGED else "row",
            collapsed=status is Status.UNCHANGED,
            items=_items(results, len(index), out_dir, comparison.options.window_size),
        ))
        index.extend(
            {"name": _clean(r.name), "previous": _clean(r.previous_image_file_name or ""),
             "status": status.value}
            for r in results
        )
    data = {"items": index, "statuses": [s.value for s in SECTION_ORDER if summary[s.value]]}
    assets = _assets()
    engine = get_engine(comparison.options.engine)
    yield from _environment().get_template("report.html.j2").generate(
        engine={"name": engine.name, "version": engine.version, "reference": engine.reference},
        csp=assets.csp,
        style=assets.style,
        script=assets.script,
        data=_script_json(data),
        title=_title(comparison),
        verdict=_verdict(comparison),
        approval=_approval_banner(comparison, anchors),
        mismatch=_mismatch_banner(comparison, anchors),
        base_source=shown_text(comparison.base_source or "?"),
        head_source=shown_text(comparison.head_source or "?"),
        total=summary["total"],
        tiles=[{"status": s.value, "count": summary[s.value]} for s in SECTION_ORDER],
        sections=sections,
        settings=_settings(comparison),
    )


@dataclass(frozen=True)
class _Assets:
    style: Markup
    script: Markup
    csp: Markup


@functools.cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader(__package__, "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@functools.cache
def _assets() -> _Assets:
    """The page's style and script (package files, trusted) and the policy naming the script.

    All three are Markup: they are ours and go into the page as written (the policy's quotes
    included, inside a double-quoted attribute).
    """
    templates = files(__package__) / "templates"
    style, script = ((templates / name).read_text(encoding="utf-8") for name in ("report.css", "report.js"))
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )
    return _Assets(Markup(style), Markup(script), Markup(csp))


def _script_json(data: object) -> Markup:
    """``data`` as JSON that can sit inside ``<script>``: ``<``, ``>`` and ``&`` are ``\\u``
    escapes, so no ``</script>`` or comment can be formed; JSON.parse reads them back."""
    return Markup(json.dumps(data, ensure_ascii=False, separators=(",", ":")).translate(_JSON_IN_HTML))


def _ordered(comparison: Comparison, status: Status) -> list[ImageResult]:
    results = [r for r in comparison.images.values() if r.status is status]
    if status is Status.CHANGED:
        results.sort(key=lambda r: (-(r.diff_ratio or 0.0), r.name))
    else:
        results.sort(key=lambda r: r.name)
    return results


def _items(
    results: list[ImageResult], first: int, out_dir: Path, window_size: int | None
) -> Iterator[_Item]:
    for offset, result in enumerate(results):
        yield _item(result, first + offset, out_dir, window_size)


def _clean(text: str) -> str:
    # Lone surrogates (undecodable bytes of a file name) cannot be written as UTF-8.
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _title(comparison: Comparison) -> str:
    summary = comparison.summary
    counts = [f"{summary[s.value]} {s.value}" for s in SECTION_ORDER[:-1] if summary[s.value]]
    approved = "approved: " if comparison.approval is not None else ""
    return "snapcompare: " + approved + (", ".join(counts) if counts else "no differences")


def _verdict(comparison: Comparison) -> dict[str, str]:
    if comparison.has_errors:
        text, tone = "Some images could not be compared", "bad"
    elif comparison.has_differences:
        text, tone = "Differences found", "warn"
    else:
        return {"text": "No differences", "tone": "good"}
    if comparison.approval is not None:
        return {"text": f"{text}, all approved", "tone": "good"}
    if comparison.approval_mismatch is not None:
        text += "; the approval given does not match"
    return {"text": text, "tone": tone}


def _approval_banner(comparison: Comparison, anchors: dict[str, str]) -> _ApprovalBanner | None:
    approval = comparison.approval
    if approval is None:
        return None
    return _ApprovalBanner(shown_text(approval.carried_over_from), approval.fingerprint,
                           _listed(approval.images, anchors))


def _mismatch_banner(comparison: Comparison, anchors: dict[str, str]) -> _MismatchBanner | None:
    mismatch = comparison.approval_mismatch
    if mismatch is None:
        return None
    return _MismatchBanner(shown_text(mismatch.source), _listed(mismatch.unapproved, anchors),
                           _listed(mismatch.not_present, anchors))


def _listed(names: tuple[str, ...], anchors: dict[str, str]) -> _Listed:
    """The first `BANNER_NAMES` of ``names`` (in name order), linked to their entries."""
    ordered = sorted(names)
    return _Listed([(shown_text(name), anchors.get(name)) for name in ordered[:BANNER_NAMES]], len(ordered))


def _anchor(index: int) -> str:
    """The id of the page's ``index``-th image entry."""
    return f"image-{index}"


def _item(result: ImageResult, index: int, out_dir: Path, window_size: int | None) -> _Item:
    previous = None
    if result.status is Status.RENAMED:
        previous = shown_text(result.previous_image_file_name or "?")
    return _Item(
        index=index,
        anchor=_anchor(index),
        name=shown_text(result.name),
        previous=previous,
        facts=_facts(result, window_size),
        detail=shown_text(result.detail, keep="\n\t") if result.detail else None,
        focus=_focus(result, out_dir),
        viewer=_viewer(result, out_dir),
    )


def _facts(result: ImageResult, window_size: int | None) -> list[_Fact]:
    """What to say about one image, most important first."""
    facts: list[_Fact] = []
    if result.reason is not None:
        facts.append(_Fact("reason", result.reason.value.replace("_", " ")))
    if result.changed_pixels is not None and result.total_pixels:
        figures = f"{format_count(result.changed_pixels)} of {format_count(result.total_pixels)}"
        facts.append(_Fact("ratio", format_percent(result.diff_ratio or 0.0), figures))
        facts.append(_Fact("allowed", format_percent(result.diff_threshold or 0.0)))
    if result.aa_pixels:
        facts.append(_Fact("text", f"{format_count(result.aa_pixels)} anti-aliased pixels ignored"))
    if result.bbox is not None:
        facts.append(_Fact("text", f"changed area {_area_text(result.bbox)}"))
    if result.window_max is not None and window_size is not None:
        facts.append(_Fact("window", format_count(result.window_max), f"{window_size}×{window_size}"))
    if result.ignore_regions:
        facts.append(_Fact("ignored", ", ".join(map(str, result.ignore_regions))))
    facts.extend(_sizes(result))
    if result.status is Status.SKIPPED:
        facts.append(_Fact("text", "not uploaded"))
    for label, value in (("base", result.base_hash), ("head", result.head_hash)):
        if value and (result.status is not Status.RENAMED or label == "head"):
            facts.append(_Fact("hash", label, value))
    return facts


def _sizes(result: ImageResult) -> list[_Fact]:
    before = _size(result.before_width, result.before_height)
    after = _size(result.after_width, result.after_height)
    if before and after and before != after:
        return [_Fact("resized", f"{before} → {after}")]
    return [_Fact("text", before or after or "")] if before or after else []


def _size(width: int | None, height: int | None) -> str | None:
    return f"{width}×{height} px" if width is not None and height is not None else None


def _area_text(area: tuple[int, int, int, int]) -> str:
    """An area of the canvas (exclusive ends) in words: ``x 10–20 px, y 5–9 px``."""
    x0, y0, x1, y1 = area
    return f"x {x0}–{x1} px, y {y0}–{y1} px"


def _viewer(result: ImageResult, out_dir: Path) -> _Viewer | None:
    previews = result.previews or {}
    pictures = {
        role: _load_picture(out_dir, previews[role]) for role in _PREVIEW_ROLES if role in previews
    }
    if not pictures:
        return None
    shown = [p for p in pictures.values() if p is not None]
    widest = max((p.width for p in shown), default=1)
    tallest = max((p.height for p in shown), default=1)
    modes = []
    if pictures.get("before") and pictures.get("after"):
        modes.append(("slider", "Slider"))
    modes.append(("side", "Side by side"))
    if pictures.get("diff"):
        modes.append(("diff", "Diff"))
    sizes = _full_sizes(result)
    figures = [
        _Figure(role, picture, 100 * picture.width / widest if picture else 100.0,
                _boxes_in_percent(result.ignore_regions or (), sizes.get(role)))
        for role, picture in pictures.items()
    ]
    return _Viewer(modes, figures, widest / tallest, _MAX_NATURAL_ZOOM * widest)


def _focus(result: ImageResult, out_dir: Path) -> _Focus | None:
    """The crops of the changed area, if the comparison made them."""
    previews = result.previews or {}
    keys = {role: previews.get(f"crop-{role}") for role in (*_CROP_ROLES, "diff")}
    if not any(keys.values()):
        return None
    pictures = {role: _load_picture(out_dir, key) if key else None for role, key in keys.items()}
    shown = [p for p in pictures.values() if p is not None]
    if not shown:
        return None
    width, height = max(p.width for p in shown), max(p.height for p in shown)
    zoom = max(1, min(_MAX_ZOOM, _FOCUS_BOX[0] // width, _FOCUS_BOX[1] // height))
    origin = next((p.origin for p in shown if p.origin is not None), None)
    area = (origin[0], origin[1], origin[0] + width, origin[1] + height) if origin else None
    links = [
        (f"{role} crop", href)
        for role in _CROP_ROLES
        if pictures[role] and (href := _href(out_dir, keys[role])) is not None
    ]
    mask = _href(out_dir, result.diff_mask_key) if result.diff_mask_key else None
    if mask is not None:
        links.append(("diff mask (whole image)", mask))
    crops = [_Figure(role, pictures[role]) for role in _CROP_ROLES]
    ignored = _boxes_in_pixels(result.ignore_regions or (), area, zoom) if area else ()
    return _Focus(crops, pictures["diff"], zoom, _area_text(area) if area else None, links, ignored)


def _full_sizes(result: ImageResult) -> dict[str, tuple[int, int]]:
    """Each whole-image picture's full size: the before and after images', the canvas for the diff."""
    sizes = {}
    if result.before_width and result.before_height:
        sizes["before"] = (result.before_width, result.before_height)
    if result.after_width and result.after_height:
        sizes["after"] = (result.after_width, result.after_height)
    if len(sizes) == 2:
        sizes["diff"] = canvas_size(sizes["before"], sizes["after"])
    return sizes


def _boxes_in_percent(regions: tuple[IgnoreRegion, ...], size: tuple[int, int] | None) -> tuple[_Box, ...]:
    """Regions as boxes in percent of a picture of full ``size``, clipped to it."""
    if size is None:
        return ()
    width, height = size
    boxes = []
    for region, (x0, y0, x1, y1) in _clipped(regions, (0, 0, width, height)):
        boxes.append(_Box(str(region), f"{100 * x0 / width:.4f}%", f"{100 * y0 / height:.4f}%",
                          f"{100 * (x1 - x0) / width:.4f}%", f"{100 * (y1 - y0) / height:.4f}%"))
    return tuple(boxes)


def _boxes_in_pixels(
    regions: tuple[IgnoreRegion, ...], area: tuple[int, int, int, int], zoom: int
) -> tuple[_Box, ...]:
    """Regions as boxes in (zoomed) pixels of a crop of canvas ``area``, clipped to it."""
    return tuple(
        _Box(str(region), f"{(x0 - area[0]) * zoom}px", f"{(y0 - area[1]) * zoom}px",
             f"{(x1 - x0) * zoom}px", f"{(y1 - y0) * zoom}px")
        for region, (x0, y0, x1, y1) in _clipped(regions, area)
    )


def _clipped(
    regions: tuple[IgnoreRegion, ...], area: tuple[int, int, int, int]
) -> Iterator[tuple[IgnoreRegion, tuple[int, int, int, int]]]:
    """Each region that overlaps ``area`` (exclusive ends) with the overlap, exclusive ends."""
    for region in regions:
        x0, y0 = max(region.x1, area[0]), max(region.y1, area[1])
        x1, y1 = min(region.x2 + 1, area[2]), min(region.y2 + 1, area[3])
        if x0 < x1 and y0 < y1:
            yield region, (x0, y0, x1, y1)


def _inside(out_dir: Path, key: str) -> Path | None:
    """The file ``key`` names inside ``out_dir``; None if it would be outside or is absent."""
    root = out_dir.resolve()
    path = (root / key).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def _href(out_dir: Path, key: str) -> str | None:
    """A relative link from the report to file ``key`` of ``out_dir``, if that file exists."""
    if _inside(out_dir, key) is None:
        return None
    return quote(key, safe="/")


def _load_picture(out_dir: Path, key: str) -> _Picture | None:
    """Read a preview inside ``out_dir`` as a data URI; None if absent, outside or not an image."""
    path = _inside(out_dir, key)
    if path is None:
        return None
    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            mime = _MIME_TYPES.get(image.format or "")
            width, height = image.size
            origin = _ORIGIN.fullmatch(str(image.info.get(CROP_ORIGIN_KEY, "")))
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return None
    if mime is None or width < 1 or height < 1:
        return None
    encoded = base64.b64encode(data).decode("ascii")
    corner = (int(origin[1]), int(origin[2])) if origin else None
    return _Picture(f"data:{mime};base64,{encoded}", width, height, corner)


def _settings(comparison: Comparison) -> list[tuple[str, str]]:
    options = comparison.options
    engine = get_engine(options.engine)
    rows = [
        ("per-pixel colour threshold (--threshold)", f"{options.threshold:g}"),
        ("anti-aliasing ignored", "yes" if options.antialiasing else "no"),
        ("changed pixels allowed (--diff-threshold)", format_percent(options.diff_threshold)),
        ("largest canvas", f"{options.max_pixels:,} pixels"),
        ("engine (--engine)", f"{engine.name}: {engine.reference}"),
        ("algorithm", engine.version),
    ]
    rows.extend((f"{name} (engine option)", str(getattr(options, name))) for name in sorted(engine.options))
    if options.window_size is not None:
        rows.append(("window (--window-size)", f"{options.window_size}×{options.window_size} pixels"))
    if options.window_min is not None:
        rows.append(("changed pixels a window must exceed (--window-min)", f"{options.window_min:,}"))
    if options.ignore_regions:
        rows.append(("ignored in every image (--ignore)", ", ".join(map(str, options.ignore_regions))))
    stats = sorted(comparison.stats.items())
    rows.extend((key.replace("_", " "), _stat(key, value)) for key, value in stats)
    return [(_clean(key), _clean(value)) for key, value in rows]


def _stat(key: str, value: float | int) -> str:
    """A figure of `Comparison.stats` with its unit: seconds, bytes, or what it counts (a count
    whose key is unknown stays a bare number)."""
    if key.endswith(_SECONDS):
        return f"{value:,.3f} s"
    if key.endswith("bytes_fetched"):
        return _bytes(int(value))
    number = f"{value:,.3f}" if isinstance(value, float) and not value.is_integer() else f"{int(value):,}"
    noun = _STAT_NOUNS.get(key.removeprefix("fetch_"))
    if noun is None:
        return number
    return f"{number} {noun}" if value == 1 else f"{number} {noun}s"


def _bytes(count: int) -> str:
    """A byte count, in binary units beside the exact figure above 1 KiB: ``3.0 MiB (3,145,740 bytes)``."""
    exponent = min(len(_BYTE_UNITS), (count.bit_length() - 1) // 10) if count > 0 else 0
    if exponent == 0:
        return f"{count:,} bytes"
    return f"{count / 1024 ** exponent:,.1f} {_BYTE_UNITS[exponent - 1]} ({count:,} bytes)"
