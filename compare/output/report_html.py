"""``report.html``: one page for people, readable offline and without a server.

The page is a shell rendered by Jinja2 with autoescaping (``templates/report.html.j2``: the
header, the summary, the base build and approval banners, one empty section per status, the
settings) and ONE embedded JSON block with every image's data; the inline script
(``templates/report.js``, with ``templates/report.css``) builds the cards and rows from it.
It never builds them all: each section shows pages of at most 50 cards or 500 rows (a card
of a shared change counts one) and draws a page's entries a few at a time, as the reviewer
scrolls towards them, so a report of 10,000 changed images opens on its first screen about as
fast as one of ten. The script reads the JSON (its ``<``, ``>`` and ``&``
``\\u``-escaped) and only ever writes text with ``textContent`` and attributes through the DOM,
never markup; without the script the page shows its header and summary and says so.

Changes shared by several images are reviewed once: the images of a section with the same
identical change (`ImageResult.change_group`) make one card, largest group first, showing its
representative's pictures, "N images share this change", the names (each opens that image's
own card) and, on request, only the images where the change sits elsewhere (another bounding
box). Images whose change is similar (`ImageResult.similar_change`) to other cards' get a hint
linking them. Images whose only change is a known one (`ImageResult.known_change`) have their
own section. Filters and the name search run over every image, grouped or not.

Pictures: the previews and crops the comparison wrote under the output folder are listed once
each (a picture many images share is one entry). When together they take at most
`INLINE_BUDGET` bytes they are embedded as ``data:`` URIs, so the page shows everything on its
own; above that they stay files beside the page (``previews/``), loaded as their cards are
drawn, and the page says the folder must stay together. A picture that is missing or not an
image shows a note instead. The Content-Security-Policy allows no fetch at all but pictures:
``img-src data:`` for a self-contained page, ``img-src 'self'`` for one with picture files
(``'self'`` is the page's own origin: the folder's server, or local files for a ``file:`` page;
never the network), and no script but the page's own (by hash), so a name that slipped through
unescaped could still run nothing. Links to full-size files beside the page (the crops at full
resolution and the diff mask) work while it stays in its folder.

Each changed image opens on the changed area: crops of before and after at full resolution
(zoomed for small areas) with the changed pixels highlighted, beside the whole-image views
(slider, side by side, diff), which show a small image at its natural size, at most doubled.
Added, removed and renamed images show their one picture (see `compare.engine.singles`).
The image's ignore regions are drawn hatched over both, as boxes placed in the image's
coordinates (pixels on the crops, percentages of each picture's full size on the whole views):
at most a few hundred a picture, the others counted beneath it; the card lists the first
`REGIONS_LISTED` in words and counts the rest.
The header and the footer name the engine that compared the pixels and its version.

Names are shown with control, bidirectional and other invisible characters written as escapes
(``\\u202e``) and in isolated runs, so no name can reorder the text around it; the JSON carries
such a name as its runs (`shown_text`), the search the name itself. Of a name longer than
`NAME_SHOWN` characters the page shows the start and how many characters more; the search and
the JSON's ``name`` keep it whole.

With ``--base-from-git``, a banner at the top says how the base build was chosen from the
head's git history (`Comparison.base_build`): its commit, the merge-base and how far back from
it, the selective builds folded onto it and what the base would have been without the walk; or
that there was none, and every head image is added.

With ``--approved``, a banner at the top says what the approval did: carried over from where,
covering which images' changes, or given but not matching, with the images whose change it does
not hold and those whose approved change is not here (at most `BANNER_NAMES` names a list, the
rest counted; each name links to its entry, which the script then draws and scrolls to).

Figures carry their unit: sizes and areas in px, durations in s, data in bytes, counts as what
they count.

Sections, in order: changed (groups largest first, then single changes by diff ratio), errored,
renamed (old -> new), added, removed, known changes, skipped, unchanged (collapsed). The filter
state is kept in the URL fragment (``#status=changed,errored&q=button``), so a filtered view
can be linked to; a link to a part of the page (``#tuning-diff-threshold``) keeps the filter.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from PIL import Image, UnidentifiedImageError

from ..engine.singles import SINGLE_ROLES
from ..formats import open_allowed
from ..imaging.engines import get_engine
from ..imaging.previews import CROP_ORIGIN_KEY
from ..model import ChangeGroup, Comparison, ImageResult, Status, canvas_size
from ..regions import IgnoreRegion

INLINE_BUDGET = 8 * 1024 * 1024
"""Pictures that together take at most this many bytes are embedded in the page (``data:``
URIs, a third larger); more stay files beside it. Chosen by measurement (BENCHMARKS.md,
``benchmarks/bench_report.py``): a page embedding this much opens on its first cards in well
under a second, and stays a file a CI system takes as one attachment."""

SECTION_ORDER = (
    Status.CHANGED,
    Status.ERRORED,
    Status.RENAMED,
    Status.ADDED,
    Status.REMOVED,
    Status.SKIPPED,
    Status.UNCHANGED,
)
"""The statuses in the order the page's title counts them, most urgent first."""

KNOWN = "known"
"""The section of changed images whose only change is a known one."""

TUNING_ANCHOR = "tuning-diff-threshold"
"""The id of the page's (and the README's) explanation of ``--diff-threshold``."""

BANNER_NAMES = 20
"""At most this many names are listed in each list of the approval banner; the rest are counted."""

SIMILAR_LINKS = 8
"""At most this many similar changes are linked from a card's hint; the rest are counted."""

NAME_SHOWN = 500
"""At most this many characters of a name are shown, in headings and lists; the rest are counted."""

DETAIL_SHOWN = 10_000
"""At most this many characters of an image's detail (an error message) are shown; the rest are counted."""

REGIONS_LISTED = 20
"""At most this many ignore regions are listed in words, for an image and in the settings; the
rest are counted."""


@dataclass(frozen=True)
class _SectionKind:
    key: str
    note: str
    kind: str
    collapsed: bool = False


SECTIONS = (
    _SectionKind(Status.CHANGED.value, "More pixels changed than allowed. Shared changes first, "
                 "largest group first; then single changes, largest first.", "card"),
    _SectionKind(Status.ERRORED.value, "These images could not be compared.", "row"),
    _SectionKind(Status.RENAMED.value, "Same picture under a new name.", "row"),
    _SectionKind(Status.ADDED.value, "New in the head build.", "row"),
    _SectionKind(Status.REMOVED.value, "Gone from the head build.", "row"),
    _SectionKind(KNOWN, "Changed, but only by a change seen before (a known, flaky change): "
                 "set aside.", "card"),
    _SectionKind(Status.SKIPPED.value, "Not uploaded by the head build, which still has them.", "row"),
    _SectionKind(Status.UNCHANGED.value, "Identical, or fewer pixels changed than allowed.", "row",
                 collapsed=True),
)
"""The page's sections and summary tiles, in order."""

_CARD_SECTIONS = frozenset(section.key for section in SECTIONS if section.kind == "card")
_PREVIEW_ROLES = ("before", "after", "diff", "crop-before", "crop-after", "crop-diff")
_CROP_ROLES = ("crop-before", "crop-after", "crop-diff")
_MIME_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
_JSON_IN_HTML = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
_SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_JOINERS = frozenset("\u200c\u200d")
_JOINING_SCRIPTS = ((0x0600, 0x08FF), (0x0900, 0x0DFF), (0x1000, 0x109F), (0x1780, 0x18AF), (0xA8E0, 0xA8FF),
                    (0xFB50, 0xFDFF), (0xFE70, 0xFEFF))
"""Code point ranges of the scripts whose words hold joiners (Arabic, Syriac, N'Ko; the Indic
scripts, Devanagari to Sinhala; Myanmar, Khmer, Mongolian; Arabic presentation forms)."""
_EMOJI_SELECTORS = frozenset("\ufe0e\ufe0f")  # text and emoji presentation
_EMOJI_BASES = frozenset("\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194\u2195\u2196\u2197\u2198\u2199"
                         "\u21a9\u21aa\u2934\u2935\u25fb\u25fc\u25fd\u25fe\u3030\u303d")
"""Emoji with a presentation sequence that are not symbols of the 'other' category (So): letters,
punctuation and math symbols such as © ‼ ℹ ↔ ⤴ ◻ 〰."""
_KEYCAP = "\u20e3"
_TAGS = re.compile("[\U000e0020-\U000e007e]")  # a subdivision flag's tags, before its cancel tag
_CANCEL_TAG = "\U000e007f"
_BLACK_FLAG = "\U0001f3f4"
_MAX_TAGS = 32  # more than a subdivision flag's tag sequence has
_BLANKS = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u2800\u3164\uffa0")
_ORIGIN = re.compile(r"(\d{1,9}),(\d{1,9})")
# What a count of `Comparison.stats` counts, by its key without ``fetch_``; durations and
# bytes are known by their keys' endings.
_STAT_NOUNS = {
    "pairs_diffed": "pair", "blobs": "blob", "chunks": "chunk", "chunks_failed": "chunk",
    "diff_threads": "thread", "diff_threads_per_chunk": "thread",
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
    without markup (attributes). ``more`` counts the characters left out after the parts (see
    `shown_text`'s ``limit``), ``cut`` says so in words.
    """

    parts: tuple[tuple[str, bool], ...]
    more: int = 0

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self.parts)

    @property
    def cut(self) -> str:
        """``… 1,234 more characters`` when characters were left out, else nothing."""
        if not self.more:
            return ""
        return f"… {self.more:,} more character{'' if self.more == 1 else 's'}"


def shown_text(text: str, *, keep: str = "", limit: int | None = None) -> Shown:
    """Split ``text`` into plain runs and escapes (``\\u202e``, ``\\x00``, ``\\t``) of the
    characters that would be invisible or rearrange the page: controls, bidirectional and
    other format characters, line and paragraph separators, lone surrogates. Characters in
    ``keep`` stay as they are. With ``limit``, only the first ``limit`` characters are shown,
    each as in the whole text, and the others counted.
    """
    shown = len(text) if limit is None else min(len(text), limit)
    more = len(text) - shown
    if text.isascii() and text.isprintable():  # nothing to escape: the common case, at once
        return Shown(((text[:shown], False),) if text else (), more)
    parts: list[tuple[str, bool]] = []
    run: list[str] = []  # the characters of the run under way, escaped ones as their escapes
    escaping = False
    part = text[:shown]  # decided on what is shown: a joiner or a flag's tag cut from what follows is escaped
    for index, char in enumerate(part):
        invisible = char not in keep and _invisible(part, index)
        if run and invisible != escaping:  # one run of escapes, however many: one box on the page
            parts.append(("".join(run), escaping))
            run = []
        escaping = invisible
        run.append(_escape_sequence(char) if invisible else char)
    if run:
        parts.append(("".join(run), escaping))
    return Shown(tuple(parts), more)


def _invisible(text: str, index: int) -> bool:
    """Whether ``text[index]`` is shown as an escape: a character that draws nothing or a
    blank, or moves the text around it, unless it is one that draws as part of its
    neighbours: a joiner inside a word of a script that joins, or in an emoji sequence; an
    emoji's presentation selector (a keycap's too); the tags of a whole subdivision flag."""
    char = text[index]
    category = unicodedata.category(char)
    if char in _JOINERS:
        before, after = _char(text, index - 1), _char(text, index + 1)
        if _joining(before) and _joining(after):
            return False
        return not (char == "\u200d" and _emoji(after) and (_emoji(before) or before in _EMOJI_SELECTORS))
    if char in _EMOJI_SELECTORS:
        before = _char(text, index - 1)
        return not (_emoji(before) or (before in "0123456789#*" and _char(text, index + 1) == _KEYCAP))
    if _TAGS.match(char) or char == _CANCEL_TAG:
        return not _in_flag(text, index)
    if char in _BLANKS:
        return True
    if category == "Zs":
        return char != " "
    return category in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Mn") and _ignorable(char, category)


def _ignorable(char: str, category: str) -> bool:
    """Whether a control, format, unassigned or marking character draws nothing of its own:
    every one but the nonspacing marks, of which only the variation selectors draw nothing."""
    return category != "Mn" or "VARIATION SELECTOR" in unicodedata.name(char, "")


def _char(text: str, index: int) -> str:
    return text[index] if 0 <= index < len(text) else ""


def _joining(char: str) -> bool:
    """Whether ``char`` is a letter or mark of a script whose words hold joiners."""
    code = ord(char) if char else -1
    return any(low <= code <= high for low, high in _JOINING_SCRIPTS) and unicodedata.category(char)[0] in "LM"


def _emoji(char: str) -> bool:
    """Whether ``char`` is a symbol outside ASCII, an emoji or one of its modifiers, or one of
    the other emoji (`_EMOJI_BASES`)."""
    return char in _EMOJI_BASES or (bool(char) and char >= "\x80" and unicodedata.category(char) in ("So", "Sk"))


def _in_flag(text: str, index: int) -> bool:
    """Whether the tag at ``index`` belongs to a whole subdivision flag: the black flag, at most
    `_MAX_TAGS` tags, and the cancel tag."""
    start = index
    while start > 0 and index - start < _MAX_TAGS and _TAGS.match(text[start - 1]):
        start -= 1
    end = index
    while end < len(text) and end - start < _MAX_TAGS and _TAGS.match(text[end]):
        end += 1
    return _char(text, start - 1) == _BLACK_FLAG and _char(text, end) == _CANCEL_TAG and start < end


def _escape_sequence(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


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


@dataclass(frozen=True)
class _BaseBuildBanner:
    """The base build's commit (None: no base build was found), how it was chosen from git
    history in words, and the commits of the selective builds folded onto it (or found with
    nothing to fold them onto), under ``title``."""

    commit: str | None
    chosen_by: str
    layers: list[str]
    title: str


@dataclass(frozen=True)
class _Entry:
    """One card or row of a section: an image, or the images of one shared change (the
    representative first, then the others by name)."""

    images: list[ImageResult]
    group: str | None = None


@dataclass(frozen=True)
class _PictureFile:
    """A picture file of the output folder as the page lists it."""

    key: str
    path: Path
    size: int
    mime: str
    width: int
    height: int
    origin: tuple[int, int] | None


@dataclass
class _Pictures:
    """Every picture the page shows, once each, by its key in the output folder."""

    out_dir: Path
    index: dict[str, int | None] = field(default_factory=dict)
    files: list[_PictureFile] = field(default_factory=list)

    def add(self, key: str) -> int | None:
        """The picture's position in the page's table; None when it cannot be shown."""
        if key not in self.index:
            found = _picture_file(self.out_dir, key)
            self.index[key] = None if found is None else len(self.files)
            if found is not None:
                self.files.append(found)
        return self.index[key]

    def get(self, position: int | None) -> _PictureFile | None:
        return None if position is None else self.files[position]

    @property
    def size(self) -> int:
        """Bytes of every picture together."""
        return sum(picture.size for picture in self.files)

    def table(self, inline: bool) -> list[list[Any]]:
        """``[href, width, height]``, with the crop's ``origin x, y`` and, when ``inline``, its
        ``data:`` URI after it (the origin then ``null`` when it has none)."""
        rows = []
        for picture in self.files:
            row: list[Any] = [quote(picture.key, safe="/"), picture.width, picture.height]
            if picture.origin is not None or inline:
                row.extend(picture.origin or (None, None))
            if inline:
                encoded = base64.b64encode(picture.path.read_bytes()).decode("ascii")
                row.append(f"data:{picture.mime};base64,{encoded}")
            rows.append(row)
        return rows


@dataclass(frozen=True)
class _Page:
    """What the page's JSON and shell are made of."""

    data: dict[str, Any]
    sections: list[dict[str, Any]]
    anchors: dict[str, str]
    inline: bool
    picture_files: int
    picture_bytes: int


def iter_html(comparison: Comparison, out_dir: Path) -> Iterator[str]:
    """Yield ``report.html`` in pieces.

    ``out_dir`` is the folder the previews' relative paths are resolved against. What is held
    at once is the page's data (a few hundred bytes an image) and, for a self-contained page,
    its pictures (at most `INLINE_BUDGET` bytes).
    """
    summary = comparison.summary
    page = _page(comparison, out_dir)
    script = _assets().script
    engine = get_engine(comparison.options.engine)
    yield from _environment().get_template("report.html.j2").generate(
        engine={"name": engine.name, "version": engine.version, "reference": engine.reference},
        csp=_csp(script, page.inline),
        style=_assets().style,
        script=script,
        data=_script_json(page.data),
        title=_title(comparison),
        verdict=_verdict(comparison),
        approval=_approval_banner(comparison, page.anchors),
        mismatch=_mismatch_banner(comparison, page.anchors),
        base_build=_base_build_banner(comparison),
        base_source=shown_text(comparison.base_source or "?"),
        head_source=shown_text(comparison.head_source or "?"),
        total=summary["total"],
        tiles=[{"status": s["key"], "count": s["count"]} for s in page.sections],
        sections=[s for s in page.sections if s["count"]],
        pictures=None if page.inline else {
            "files": page.picture_files, "size": _bytes(page.picture_bytes), "budget": _bytes(INLINE_BUDGET)},
        settings=_settings(comparison),
    )


def _page(comparison: Comparison, out_dir: Path) -> _Page:
    """Every image's data in page order, with the pictures, groups and sections they are in."""
    entries = _entries(comparison)
    keys = [section.key for section in SECTIONS if entries[section.key]]
    order = [(key, entry) for key in keys for entry in entries[key]]
    positions: dict[str, int] = {}
    for _, entry in order:
        positions.update((result.name, len(positions)) for result in entry.images)
    similar = _similar_entries(order, positions)
    pictures = _Pictures(out_dir)
    images: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    for key, entry in order:
        section = keys.index(key)
        group = None
        if entry.group is not None:
            group = len(groups)
            groups.append(_group_data(entry, positions))
        for result in entry.images:
            image = _image_data(result, section, pictures, out_dir, comparison)
            if group is not None:
                image["group"] = group
            if result is entry.images[0] and result.similar_change in similar:
                image.update(_similar_hint(similar[result.similar_change], positions[result.name],
                                           len(entry.images)))
            images.append(image)
    inline = pictures.size <= INLINE_BUDGET
    data = {"sections": keys, "images": images, "groups": groups, "pictures": pictures.table(inline)}
    sections = [
        {"key": section.key, "count": sum(len(entry.images) for entry in entries[section.key]),
         "note": section.note, "kind": section.kind, "collapsed": section.collapsed}
        for section in SECTIONS
        if section.key != KNOWN or entries[KNOWN]
    ]
    anchors = {name: _anchor(position) for name, position in positions.items()}
    return _Page(data, sections, anchors, inline, len(pictures.files), pictures.size)


def _entries(comparison: Comparison) -> dict[str, list[_Entry]]:
    """Each section's cards or rows, in order: shared changes (2 or more of the section's images
    with one `ImageResult.change_group`) largest first, then single images. Known changes go to
    their own section when they are set aside (`Comparison.set_aside`); counted ones
    (``--fail-on-known-changes``) stay with the changed images."""
    by_section: dict[str, list[ImageResult]] = {section.key: [] for section in SECTIONS}
    aside = frozenset(comparison.set_aside)
    for name, result in comparison.images.items():
        by_section[KNOWN if name in aside else result.status.value].append(result)
    known_groups = {group.id: group for group in comparison.change_groups}
    entries = {}
    for key, results in by_section.items():
        if key in _CARD_SECTIONS:
            results.sort(key=lambda r: (-(r.diff_ratio or 0.0), r.name))
        else:
            results.sort(key=lambda r: r.name)
        shared: dict[str, list[ImageResult]] = defaultdict(list)
        for result in results:
            if result.change_group is not None:
                shared[result.change_group].append(result)
        grouped = {group: members for group, members in shared.items() if len(members) > 1}
        groups = sorted(
            (_Entry(_representative_first(members, known_groups.get(group)), group)
             for group, members in grouped.items()),
            key=lambda entry: -len(entry.images),
        )
        entries[key] = groups + [_Entry([r]) for r in results if r.change_group not in grouped]
    return entries


def _representative_first(members: list[ImageResult], group: ChangeGroup | None) -> list[ImageResult]:
    """A shared change's images: the group's representative (else the first in section order),
    then the others by name."""
    names = {result.name: result for result in members}
    first = names.get(group.representative) if group is not None else None
    first = first or members[0]
    return [first, *sorted((r for r in members if r is not first), key=lambda r: r.name)]


def _group_data(entry: _Entry, positions: dict[str, int]) -> dict[str, Any]:
    """A shared change in the JSON: its id, its images (consecutive from ``first``, the
    representative first) and those whose change sits elsewhere than the representative's."""
    first = entry.images[0]
    elsewhere = [positions[r.name] for r in entry.images[1:] if r.bbox != first.bbox]
    return {"id": entry.group, "first": positions[first.name], "count": len(entry.images),
            "elsewhere": elsewhere}


@dataclass(frozen=True)
class _Similar:
    """The cards that show one similar change: how many, with how many images in all, and the
    first image's position of the first `SIMILAR_LINKS` + 1 of them (one may be the card's own)."""

    cards: int
    images: int
    first: tuple[int, ...]


def _similar_entries(order: list[tuple[str, _Entry]], positions: dict[str, int]) -> dict[str, _Similar]:
    """Each similar change that several cards show, with those cards."""
    cards: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for key, entry in order:
        first = entry.images[0]
        if key in _CARD_SECTIONS and first.similar_change is not None:
            cards[first.similar_change].append((positions[first.name], len(entry.images)))
    return {similar: _Similar(len(found), sum(count for _, count in found),
                              tuple(position for position, _ in found[:SIMILAR_LINKS + 1]))
            for similar, found in cards.items() if len(found) > 1}


def _similar_hint(similar: _Similar, own: int, own_images: int) -> dict[str, Any]:
    """The hint of the card at ``own`` (with ``own_images`` images): how many other cards show
    a similar change, with how many images, and links to the first `SIMILAR_LINKS` of them."""
    links = [position for position in similar.first if position != own][:SIMILAR_LINKS]
    return {"similar": {"cards": similar.cards - 1, "images": similar.images - own_images, "links": links}}


def _image_data(
    result: ImageResult, section: int, pictures: _Pictures, out_dir: Path, comparison: Comparison
) -> dict[str, Any]:
    """One image in the JSON; fields that do not apply are left out."""
    image: dict[str, Any] = {"name": _clean(result.name), "section": section}
    image.update(_shown("shown", result.name))
    if result.status is Status.RENAMED:
        image["previous"] = _clean(result.previous_image_file_name or "?")
        image.update(_shown("previousShown", result.previous_image_file_name or "?"))
    image["facts"] = _facts(result, comparison.options.window_size)
    known = comparison.known_changes
    if result.known_change and known is not None and known.counted:
        image["facts"].insert(0, ["text", "a known change, counted (--fail-on-known-changes)"])
    if result.detail:
        image["detail"] = _runs(shown_text(result.detail, keep="\n\t", limit=DETAIL_SHOWN))
    previews = dict(result.previews or {})
    if not previews and comparison.options.previews and result.status in SINGLE_ROLES:
        previews = dict.fromkeys(SINGLE_ROLES[result.status], "")  # expected, but not made
    pics = {role: pictures.add(key) if key else None for role, key in previews.items() if role in _PREVIEW_ROLES}
    if pics:
        image["pics"] = pics
    crops = [found for role in _CROP_ROLES if (found := pictures.get(pics.get(role))) is not None]
    origin = next((crop.origin for crop in crops if crop.origin is not None), None)
    if origin is not None:
        width, height = max(crop.width for crop in crops), max(crop.height for crop in crops)
        image["where"] = _area_text((origin[0], origin[1], origin[0] + width, origin[1] + height))
    mask = _href(out_dir, result.diff_mask_key) if result.diff_mask_key else None
    if mask is not None:
        image["mask"] = mask
    if result.ignore_regions:
        image["regions"] = [[str(r), r.x1, r.y1, r.x2 + 1, r.y2 + 1] for r in result.ignore_regions]
        image["sizes"] = {role: list(size) for role, size in _full_sizes(result).items()}
    return image


def _shown(field_name: str, text: str) -> dict[str, list[list[Any]]]:
    """``{field_name: runs}`` when name ``text`` holds characters shown as escapes or is cut
    short (`NAME_SHOWN`), else nothing."""
    shown = shown_text(text, limit=NAME_SHOWN)
    return {field_name: _runs(shown)} if shown.more or any(invisible for _, invisible in shown.parts) else {}


def _runs(shown: Shown) -> list[list[Any]]:
    """A shown text as JSON: ``[text, 1]`` for an escape, ``[text, 0]`` for plain text, and
    last ``[text, 2]`` saying how many characters were left out, if any."""
    runs: list[list[Any]] = [[text, int(invisible)] for text, invisible in shown.parts]
    if shown.more:
        runs.append([shown.cut, 2])
    return runs


@dataclass(frozen=True)
class _Assets:
    style: Markup
    script: Markup


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
    """The page's style and script: package files, trusted, Markup so they go in as written."""
    templates = files(__package__) / "templates"
    style, script = ((templates / name).read_text(encoding="utf-8") for name in ("report.css", "report.js"))
    return _Assets(Markup(style), Markup(script))


def _csp(script: str, inline: bool) -> Markup:
    """The page's Content-Security-Policy: no fetch, no script but ``script`` (by hash), and
    pictures only from ``data:`` URIs (``inline``) or else from the page's own origin."""
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    pictures = "data:" if inline else "'self'"
    return Markup(
        f"default-src 'none'; img-src {pictures}; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def _script_json(data: object) -> Markup:
    """``data`` as JSON that can sit inside ``<script>``: ``<``, ``>`` and ``&`` are ``\\u``
    escapes, so no ``</script>`` or comment can be formed; JSON.parse reads them back."""
    return Markup(json.dumps(data, ensure_ascii=False, separators=(",", ":")).translate(_JSON_IN_HTML))


def _clean(text: str) -> str:
    # Lone surrogates (undecodable bytes of a file name) cannot be written as UTF-8.
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _title(comparison: Comparison) -> str:
    """The page's title: the count of each status but unchanged, known changes set aside apart."""
    aside = len(comparison.set_aside)
    summary = comparison.counted_summary
    counts = [f"{summary[s.value]} {s.value}" for s in SECTION_ORDER[:-1] if summary[s.value]]
    counts += [f"{aside} {KNOWN}"] if aside else []
    approved = "approved: " if comparison.approval is not None else ""
    return "snapcompare: " + approved + (", ".join(counts) if counts else "no differences")


def _verdict(comparison: Comparison) -> dict[str, str]:
    """The page's verdict, as the exit code has it: known changes set aside are no differences."""
    if comparison.has_errors:
        text, tone = "Some images could not be compared", "bad"
    elif comparison.has_counted_differences:
        text, tone = "Differences found", "warn"
    elif comparison.set_aside:
        return {"text": "No differences but known changes", "tone": "good"}
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


def _base_build_banner(comparison: Comparison) -> _BaseBuildBanner | None:
    base = comparison.base_build
    if base is None:
        return None
    commit = base.get("commit")
    layers = base.get("selective_builds" if commit is None else "selective_layers")
    title = ("Selective builds found, with no complete build beneath to fold onto" if commit is None
             else "Selective builds folded onto it, nearest the merge-base first")
    commits = [str(layer) for layer in layers] if isinstance(layers, list) else []
    return _BaseBuildBanner(None if commit is None else str(commit), str(base["chosen_by"]), commits, title)


def _listed(names: Iterable[str], anchors: dict[str, str]) -> _Listed:
    """The first `BANNER_NAMES` of ``names`` (in name order), linked to their entries."""
    ordered = sorted(names)
    listed = [(shown_text(name, limit=NAME_SHOWN), anchors.get(name)) for name in ordered[:BANNER_NAMES]]
    return _Listed(listed, len(ordered))


def _anchor(position: int) -> str:
    """The id of the page's entry of the image at ``position`` in the JSON."""
    return f"image-{position}"


def _facts(result: ImageResult, window_size: int | None) -> list[list[str]]:
    """What to say about one image, most important first: ``[kind, text]`` or ``[kind, text,
    value]``, each kind shown its own way by the script."""
    facts: list[list[str]] = []
    if result.reason is not None:
        facts.append(["reason", result.reason.value.replace("_", " ")])
    if result.changed_pixels is not None and result.total_pixels:
        figures = f"{format_count(result.changed_pixels)} of {format_count(result.total_pixels)}"
        facts.append(["ratio", format_percent(result.diff_ratio or 0.0), figures])
        facts.append(["allowed", format_percent(result.diff_threshold or 0.0)])
    if result.aa_pixels:
        facts.append(["text", f"{format_count(result.aa_pixels)} anti-aliased pixels ignored"])
    if result.bbox is not None:
        facts.append(["area", f"changed area {_area_text(result.bbox)}"])
    if result.window_max is not None and window_size is not None:
        facts.append(["window", format_count(result.window_max), f"{window_size}×{window_size}"])
    if result.ignore_regions:
        facts.append(["ignored", _regions_text(result.ignore_regions)])
    facts.extend(_sizes(result))
    if result.status is Status.SKIPPED:
        facts.append(["text", "not uploaded"])
    for label, value in (("base", result.base_hash), ("head", result.head_hash)):
        if value and (result.status is not Status.RENAMED or label == "head"):
            facts.append(["hash", label, value])
    return facts


def _regions_text(regions: tuple[IgnoreRegion, ...]) -> str:
    """The first `REGIONS_LISTED` ignore regions in words, and how many more there are."""
    listed = ", ".join(map(str, regions[:REGIONS_LISTED]))
    more = len(regions) - REGIONS_LISTED
    return f"{listed}, and {more:,} more" if more > 0 else listed


def _sizes(result: ImageResult) -> list[list[str]]:
    before = _size(result.before_width, result.before_height)
    after = _size(result.after_width, result.after_height)
    if before and after and before != after:
        return [["resized", f"{before} → {after}"]]
    return [["text", before or after or ""]] if before or after else []


def _size(width: int | None, height: int | None) -> str | None:
    return f"{width}×{height} px" if width is not None and height is not None else None


def _area_text(area: tuple[int, int, int, int]) -> str:
    """An area of the canvas (exclusive ends) in words: ``x 10–20 px, y 5–9 px``."""
    x0, y0, x1, y1 = area
    return f"x {x0}–{x1} px, y {y0}–{y1} px"


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


def _picture_file(out_dir: Path, key: str) -> _PictureFile | None:
    """Picture ``key`` of ``out_dir`` as the page lists it: its size, format and dimensions
    from its header (and a crop's origin); None if absent, outside or not an image."""
    path = _inside(out_dir, key)
    if path is None:
        return None
    try:
        with path.open("rb") as file, open_allowed(file) as image:
            mime = _MIME_TYPES.get(image.format or "")
            width, height = image.size
            origin = _ORIGIN.fullmatch(str(image.info.get(CROP_ORIGIN_KEY, "")))
        size = path.stat().st_size
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return None
    if mime is None or width < 1 or height < 1:
        return None
    corner = (int(origin[1]), int(origin[2])) if origin else None
    return _PictureFile(key, path, size, mime, width, height, corner)


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
        rows.append(("ignored in every image (--ignore)", _regions_text(options.ignore_regions)))
    stats = sorted(comparison.stats.items())
    rows.extend((key.replace("_", " "), _stat(key, value)) for key, value in stats)
    return [(_clean(key), _clean(value)) for key, value in rows]


def _stat(key: str, value: float | int | str) -> str:
    """A figure of `Comparison.stats` with its unit: seconds, bytes, or what it counts (a count
    whose key is unknown stays a bare number); a note as it is."""
    if isinstance(value, str):
        return value
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
