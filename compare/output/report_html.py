"""``report.html``: one self-contained page for people, readable offline and without a server.

The page is rendered here, every name and text escaped with `html.escape`; the previews are
embedded as ``data:`` URIs read from the output folder (a preview that is missing or not an
image shows a note instead). A small inline script adds the status filter, the name search and
the before / after slider; it reads what it needs from a JSON block whose ``<``, ``>`` and
``&`` are ``\\u``-escaped, and only ever writes text with ``textContent``. Without the script
the page still shows everything. A Content-Security-Policy allows no fetch at all and no script
but that one (by hash), so a name that slipped through unescaped could still run nothing.

Sections, in order: changed (largest diff ratio first), errored, renamed (old -> new), added,
removed, skipped, unchanged (collapsed). The filter state is kept in the URL fragment
(``#status=changed,errored&q=button``), so a filtered view can be linked to.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..model import ALGORITHM_VERSION, Comparison, ImageResult, Status

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

_SECTION_NOTES = {
    Status.CHANGED: "More pixels differ than the threshold allows. Largest change first.",
    Status.ERRORED: "These images could not be compared.",
    Status.RENAMED: "Same picture under a new name.",
    Status.ADDED: "New in the head build.",
    Status.REMOVED: "Gone from the head build.",
    Status.SKIPPED: "Not uploaded by the head build, which still has them.",
    Status.UNCHANGED: "Identical, or different by no more than the threshold.",
}
_PREVIEW_ROLES = ("before", "after", "diff")
_MIME_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
_SURROGATES = re.compile("[\ud800-\udfff]")
_JSON_IN_HTML = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


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


def iter_html(comparison: Comparison, out_dir: Path) -> Iterator[str]:
    """Yield ``report.html`` in pieces, so a report with many previews is never held whole.

    ``out_dir`` is the folder the previews' relative paths are resolved against.
    """
    summary = comparison.summary
    yield _head(summary)
    yield _header(comparison, summary)
    index: list[dict[str, str]] = []
    for status in SECTION_ORDER:
        results = [r for r in comparison.images.values() if r.status is status]
        if not results:
            continue
        if status is Status.CHANGED:
            results.sort(key=lambda r: (-(r.diff_ratio or 0.0), r.name))
        else:
            results.sort(key=lambda r: r.name)
        yield _section_start(status, len(results))
        for result in results:
            yield _item(result, len(index), out_dir)
            index.append({
                "name": _clean(result.name),
                "previous": _clean(result.previous_image_file_name or ""),
                "status": status.value,
            })
        yield _section_end(status)
    yield _footer(comparison)
    data = {"items": index, "statuses": [s.value for s in SECTION_ORDER if summary[s.value]]}
    yield _script_data(data)
    yield f"<script>{_SCRIPT}</script>\n</body>\n</html>\n"


@dataclass(frozen=True)
class _Picture:
    data_uri: str
    width: int
    height: int


def _clean(text: str) -> str:
    # Lone surrogates (undecodable bytes of a file name) cannot be written as UTF-8.
    return _SURROGATES.sub("\ufffd", text)


def _esc(text: object) -> str:
    return html.escape(_clean(str(text)), quote=True)


def _head(summary: Mapping[str, int]) -> str:
    counts = [f"{summary[s.value]} {s.value}" for s in SECTION_ORDER[:-1] if summary[s.value]]
    title = "snapcompare: " + (", ".join(counts) if counts else "no differences")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light dark">\n'
        f"<title>{_esc(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n<main>\n"
    )


def _header(comparison: Comparison, summary: Mapping[str, int]) -> str:
    if comparison.has_errors:
        verdict, tone = "Some images could not be compared", "bad"
    elif comparison.has_differences:
        verdict, tone = "Differences found", "warn"
    else:
        verdict, tone = "No differences", "good"
    tiles = "".join(_tile(status, summary[status.value]) for status in SECTION_ORDER)
    total = summary["total"]
    base = _esc(comparison.base_source or "?")
    head = _esc(comparison.head_source or "?")
    return (
        '<header class="top">\n'
        f'<h1>snapcompare report</h1>\n<p class="verdict {tone}">{verdict}</p>\n'
        '<p class="sources"><span class="muted">base</span> '
        f'<code>{base}</code> <span aria-hidden="true">→</span>'
        f' <span class="muted">head</span> <code>{head}</code></p>\n'
        '<div class="summary" role="group" aria-label="Images per status">'
        f'<div class="tile total"><span class="count">{total:,}</span>'
        f'<span class="label">images</span></div>{tiles}</div>\n'
        '<div class="toolbar" id="toolbar" hidden>'
        '<input type="search" id="search" placeholder="Search by name"'
        ' aria-label="Search by name" autocomplete="off" spellcheck="false">'
        '<button type="button" id="show-all">Show all</button>'
        '<output id="shown" aria-live="polite"></output>'
        '<span class="hint muted">Click a status to show only it; click others to add'
        " them.</span></div>\n</header>\n"
        '<p id="no-match" class="empty" hidden>No image matches the filter.</p>\n'
    )


def _tile(status: Status, count: int) -> str:
    disabled = "" if count else " disabled"
    return (
        f'<button type="button" class="tile" data-filter="{status.value}"'
        f' data-status="{status.value}" aria-pressed="true"{disabled}>'
        f'<span class="count">{count:,}</span><span class="label">{status.value}</span></button>'
    )


def _section_start(status: Status, count: int) -> str:
    plural = "" if count == 1 else "s"
    heading = (
        f'<h2><span class="badge" data-status="{status.value}">{status.value}</span> '
        f"{count:,} image{plural}</h2>"
        f'<p class="muted">{_SECTION_NOTES[status]}</p>'
    )
    if status is Status.UNCHANGED:
        return (
            f'<section data-status="{status.value}">\n<details>\n<summary>{heading}'
            '</summary>\n<ul class="rows">\n'
        )
    kind = "cards" if status is Status.CHANGED else "rows"
    return f'<section data-status="{status.value}">\n{heading}\n<ul class="{kind}">\n'


def _section_end(status: Status) -> str:
    if status is Status.UNCHANGED:
        return "</ul>\n</details>\n</section>\n"
    return "</ul>\n</section>\n"


def _item(result: ImageResult, index: int, out_dir: Path) -> str:
    status = result.status
    if status is Status.RENAMED:
        previous = _esc(result.previous_image_file_name or "?")
        title = (
            f'<span class="name old">{previous}</span>'
            '<span class="arrow" aria-label="renamed to"> → </span>'
            f'<span class="name">{_esc(result.name)}</span>'
        )
    else:
        title = f'<span class="name">{_esc(result.name)}</span>'
    facts = "".join(f"<li>{fact}</li>" for fact in _facts(result))
    detail = f'<pre class="detail">{_esc(result.detail)}</pre>' if result.detail else ""
    viewer = _viewer(result, out_dir) if result.previews else ""
    kind = "card" if status is Status.CHANGED else "row"
    return (
        f'<li class="item {kind}" data-item="{index}" data-status="{status.value}">'
        f'<h3>{title}</h3><ul class="facts">{facts}</ul>{detail}{viewer}</li>\n'
    )


def _facts(result: ImageResult) -> list[str]:
    """Short HTML fragments describing one image, most important first."""
    facts: list[str] = []
    if result.reason is not None:
        reason = _esc(result.reason.value.replace("_", " "))
        facts.append(f'<span class="reason">{reason}</span>')
    if result.changed_pixels is not None and result.total_pixels:
        facts.append(
            f"<strong>{format_percent(result.diff_ratio or 0.0)}</strong> of pixels changed"
            f" ({format_count(result.changed_pixels)} of {format_count(result.total_pixels)})"
        )
        facts.append(f"threshold {format_percent(result.diff_threshold or 0.0)}")
    if result.aa_pixels:
        facts.append(f"{format_count(result.aa_pixels)} anti-aliased pixels ignored")
    if result.bbox is not None:
        x0, y0, x1, y1 = result.bbox
        facts.append(f"changed area x {x0}–{x1}, y {y0}–{y1}")
    facts.extend(_sizes(result))
    if result.status is Status.SKIPPED:
        facts.append("not uploaded")
    for label, value in (("base", result.base_hash), ("head", result.head_hash)):
        if value and (result.status is not Status.RENAMED or label == "head"):
            facts.append(f'{label} <code title="{_esc(value)}">{_esc(value[:12])}</code>')
    return facts


def _sizes(result: ImageResult) -> list[str]:
    before = _size(result.before_width, result.before_height)
    after = _size(result.after_width, result.after_height)
    if before and after and before != after:
        return [f'<span class="resized">size {before} → {after}</span>']
    return [f"{before or after}"] if before or after else []


def _size(width: int | None, height: int | None) -> str | None:
    return f"{width}×{height}" if width is not None and height is not None else None


def _viewer(result: ImageResult, out_dir: Path) -> str:
    previews = result.previews or {}
    pictures = {
        role: _load_picture(out_dir, previews[role]) for role in _PREVIEW_ROLES if role in previews
    }
    if not pictures:
        return ""
    shown = [p for p in pictures.values() if p is not None]
    widest = max((p.width for p in shown), default=1)
    tallest = max((p.height for p in shown), default=1)
    modes = []
    if pictures.get("before") and pictures.get("after"):
        modes.append(("slider", "Slider"))
    modes.append(("side", "Side by side"))
    if pictures.get("diff"):
        modes.append(("diff", "Diff"))
    buttons = "".join(
        f'<button type="button" data-mode="{mode}" aria-pressed="false">{label}</button>'
        for mode, label in modes
    )
    figures = "".join(
        _figure(role, picture, widest, result.name) for role, picture in pictures.items()
    )
    slider = (
        '<input class="slider" type="range" min="0" max="100" value="50" hidden'
        ' aria-label="Divider between before (left) and after (right)">'
        if modes[0][0] == "slider" else ""
    )
    return (
        f'<div class="viewer" data-mode="side" data-initial="{modes[0][0]}"'
        f' style="--aspect: {widest / tallest:.4f}; --n: {len(pictures)}">'
        f'<div class="modes" role="group" aria-label="View" hidden>{buttons}</div>'
        f'<div class="stage">{figures}</div>{slider}</div>'
    )


def _figure(role: str, picture: _Picture | None, widest: int, name: str) -> str:
    if picture is None:
        content = f'<div class="missing">{role} picture unavailable</div>'
    else:
        content = (
            f'<img src="{picture.data_uri}" alt="{_esc(name)}: {role}"'
            f' width="{picture.width}" height="{picture.height}"'
            f' style="--w: {100 * picture.width / widest:.3f}%">'
        )
    return f'<figure class="layer {role}">{content}<figcaption>{role}</figcaption></figure>'


def _load_picture(out_dir: Path, key: str) -> _Picture | None:
    """Read a preview inside ``out_dir`` as a data URI; None if absent, outside or not an image."""
    root = out_dir.resolve()
    path = (root / key).resolve()
    if not path.is_relative_to(root):
        return None
    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            mime = _MIME_TYPES.get(image.format or "")
            width, height = image.size
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return None
    if mime is None or width < 1 or height < 1:
        return None
    encoded = base64.b64encode(data).decode("ascii")
    return _Picture(f"data:{mime};base64,{encoded}", width, height)


def _footer(comparison: Comparison) -> str:
    options = comparison.options
    rows = [
        ("per-pixel colour threshold", f"{options.threshold:g}"),
        ("anti-aliasing ignored", "yes" if options.antialiasing else "no"),
        ("default diff threshold", format_percent(options.diff_threshold)),
        ("largest canvas", f"{options.max_pixels:,} pixels"),
        ("algorithm", ALGORITHM_VERSION),
    ]
    stats = sorted(comparison.stats.items())
    rows.extend((key.replace("_", " "), _stat(value)) for key, value in stats)
    cells = "".join(f"<tr><th>{_esc(key)}</th><td>{_esc(value)}</td></tr>" for key, value in rows)
    return (
        f"<footer>\n<h2>How this comparison ran</h2>\n<table>{cells}</table>\n</footer>\n"
        "</main>\n"
    )


def _stat(value: float | int) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.3f}"
    return f"{int(value):,}"


def _script_data(data: object) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":")).translate(_JSON_IN_HTML)
    return f'<script type="application/json" id="report-data">{text}</script>\n'


_STYLE = """
:root {
  color-scheme: light dark;
  --bg: #f5f6f8; --fg: #1c2128; --muted: #5b6571; --card: #ffffff; --line: #d8dde4;
  --accent: #2563eb; --check: #e7e9ed;
  --changed: #c2410c; --errored: #b91c1c; --renamed: #0e7490; --added: #15803d;
  --removed: #7c3aed; --skipped: #6b7280; --unchanged: #4b5563;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1216; --fg: #e5e8ec; --muted: #98a1ad; --card: #181c22; --line: #2b323c;
    --accent: #7aa7ff; --check: #2a2f37;
    --changed: #fb923c; --errored: #f87171; --renamed: #5eead4; --added: #4ade80;
    --removed: #c4b5fd; --skipped: #a1a1aa; --unchanged: #a1a1aa;
  }
}
[hidden] { display: none !important; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 1.25rem 1rem 4rem; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
h2 { font-size: 1.1rem; margin: 0; display: inline-flex; gap: .5rem; align-items: center; }
h3 { font-size: 1rem; margin: 0; font-weight: 600; }
code { font: .85em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.muted { color: var(--muted); }
.sources { margin: .25rem 0 1rem; overflow-wrap: anywhere; }
.verdict { display: inline-block; margin: .25rem 0; padding: .15rem .6rem; border-radius: 999px;
  font-weight: 600; }
.verdict.good { color: var(--added); border: 1px solid var(--added); }
.verdict.warn { color: var(--changed); border: 1px solid var(--changed); }
.verdict.bad { color: var(--errored); border: 1px solid var(--errored); }
.summary { display: flex; flex-wrap: wrap; gap: .5rem; }
.tile { display: flex; flex-direction: column; align-items: flex-start; min-width: 6.5rem;
  padding: .5rem .75rem; border: 1px solid var(--line); border-left: 4px solid var(--line);
  border-radius: 8px; background: var(--card); color: var(--fg); font: inherit; text-align: left; }
button.tile { cursor: pointer; }
button.tile[aria-pressed="false"] { opacity: .45; }
button.tile:disabled { opacity: .35; cursor: default; }
.tile .count { font-size: 1.35rem; font-weight: 700; line-height: 1.1; }
.tile .label { color: var(--muted); font-size: .85rem; }
.toolbar { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; margin: 1rem 0 0; }
.toolbar input { flex: 0 1 22rem; min-width: 12rem; padding: .4rem .6rem; font: inherit;
  border: 1px solid var(--line); border-radius: 6px; background: var(--card); color: var(--fg); }
.toolbar button, .modes button { font: inherit; padding: .3rem .7rem; border-radius: 6px;
  border: 1px solid var(--line); background: var(--card); color: var(--fg); cursor: pointer; }
.hint { font-size: .85rem; }
section { margin-top: 2rem; }
section > p, summary > p { margin: .2rem 0 .75rem; }
summary { cursor: pointer; }
summary h2 { display: inline-flex; }
.badge { font-size: .8rem; font-weight: 700; text-transform: uppercase; letter-spacing: .03em;
  padding: .1rem .5rem; border-radius: 4px; color: var(--bg); background: var(--muted); }
[data-status="changed"] { --tone: var(--changed); }
[data-status="errored"] { --tone: var(--errored); }
[data-status="renamed"] { --tone: var(--renamed); }
[data-status="added"] { --tone: var(--added); }
[data-status="removed"] { --tone: var(--removed); }
[data-status="skipped"] { --tone: var(--skipped); }
[data-status="unchanged"] { --tone: var(--unchanged); }
.badge[data-status] { background: var(--tone); }
.tile[data-status] { border-left-color: var(--tone); }
ul.cards, ul.rows { list-style: none; margin: 0; padding: 0; display: grid; gap: .5rem; }
ul.cards { gap: 1rem; }
section[data-status="unchanged"] ul.rows {
  grid-template-columns: repeat(auto-fill, minmax(20rem, 1fr)); }
.item { background: var(--card); border: 1px solid var(--line); border-left: 4px solid var(--tone);
  border-radius: 8px; padding: .6rem .9rem; min-width: 0; }
.card { padding: .9rem 1rem 1rem; }
.name { overflow-wrap: anywhere; }
.name.old { color: var(--muted); font-weight: 400; }
.arrow { color: var(--tone); font-weight: 700; }
.facts { list-style: none; display: flex; flex-wrap: wrap; gap: .15rem 1rem; margin: .3rem 0 0;
  padding: 0; color: var(--muted); font-size: .9rem; }
.facts strong { color: var(--tone); font-size: 1rem; }
.reason { color: var(--errored); font-weight: 600; }
.resized { color: var(--changed); }
.detail { margin: .5rem 0 0; padding: .5rem .7rem; background: var(--bg); border-radius: 6px;
  white-space: pre-wrap; overflow-wrap: anywhere; font-size: .85rem; }
.viewer { margin-top: .75rem; --pos: 50%; }
.modes { display: flex; gap: .4rem; margin-bottom: .5rem; }
.modes button[aria-pressed="true"] { background: var(--accent); border-color: var(--accent);
  color: var(--card); }
.stage { position: relative; display: grid; gap: .75rem; margin: 0 auto;
  grid-auto-flow: column; grid-auto-columns: minmax(0, 1fr);
  width: min(100%, calc(var(--n) * 72vh * var(--aspect) + (var(--n) - 1) * .75rem)); }
.layer { margin: 0; min-width: 0; }
.layer img { display: block; width: 100%; height: auto; background:
  repeating-conic-gradient(var(--check) 0 25%, transparent 0 50%) 0 0 / 16px 16px;
  image-rendering: auto; }
.layer figcaption { font-size: .8rem; color: var(--muted); text-transform: uppercase;
  letter-spacing: .04em; margin-top: .2rem; }
.missing { display: grid; place-items: center; min-height: 6rem; border: 1px dashed var(--line);
  border-radius: 6px; color: var(--muted); font-size: .85rem; }
.viewer[data-mode="slider"] .stage, .viewer[data-mode="diff"] .stage {
  width: min(100%, max(18rem, calc(72vh * var(--aspect)))); gap: 0; }
.viewer[data-mode="slider"] .layer { grid-area: 1 / 1; }
.viewer[data-mode="slider"] .layer img { width: var(--w); }
.viewer[data-mode="slider"] .layer.after { clip-path: inset(0 0 0 var(--pos)); }
.viewer[data-mode="slider"] .layer.diff,
.viewer[data-mode="diff"] .layer.before, .viewer[data-mode="diff"] .layer.after { display: none; }
.viewer[data-mode="slider"] .stage::after { content: ""; position: absolute; top: 0; bottom: 0;
  left: var(--pos); width: 2px; margin-left: -1px; background: var(--accent);
  pointer-events: none; }
.viewer[data-mode="slider"] figcaption { position: absolute; top: .4rem; margin: 0;
  padding: .05rem .4rem; border-radius: 4px; background: var(--card); color: var(--fg); }
.viewer[data-mode="slider"] .before figcaption { left: .4rem; }
.viewer[data-mode="slider"] .after figcaption { right: .4rem; }
.slider { display: block; width: min(100%, max(18rem, calc(72vh * var(--aspect))));
  margin: .5rem auto 0; }
.empty { margin: 2rem 0; color: var(--muted); }
footer { margin-top: 3rem; color: var(--muted); font-size: .9rem; }
footer table { border-collapse: collapse; margin-top: .5rem; }
footer th { text-align: left; font-weight: 400; padding: .15rem 1.5rem .15rem 0; }
footer td { color: var(--fg); overflow-wrap: anywhere; }
"""

_SCRIPT = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var items = document.querySelectorAll("[data-item]");
  var sections = document.querySelectorAll("section[data-status]");
  var filters = document.querySelectorAll("button[data-filter]");
  var search = document.getElementById("search");
  var shown = document.getElementById("shown");
  var noMatch = document.getElementById("no-match");
  var texts = data.items.map(function (item) {
    return (item.name + "\\n" + item.previous).toLowerCase();
  });
  var active = {};

  function showAll() {
    data.statuses.forEach(function (status) { active[status] = true; });
  }

  function readState() {
    var params = new URLSearchParams(location.hash.slice(1));
    var wanted = params.get("status");
    showAll();
    if (wanted) {
      var list = wanted.split(",");
      data.statuses.forEach(function (status) { active[status] = list.indexOf(status) !== -1; });
    }
    search.value = params.get("q") || "";
  }

  function saveState(typed) {
    var params = new URLSearchParams();
    var on = data.statuses.filter(function (status) { return active[status]; });
    if (on.length !== data.statuses.length) { params.set("status", on.join(",")); }
    if (typed) { params.set("q", typed); }
    var hash = params.toString();
    if (hash === location.hash.slice(1)) { return; }
    try {
      history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search);
    } catch (error) {
      // Some browsers refuse history updates on file: pages; the filter works regardless.
    }
  }

  function apply() {
    var typed = search.value.trim();
    var query = typed.toLowerCase();
    var perStatus = {};
    var visible = 0;
    for (var i = 0; i < items.length; i++) {
      var index = Number(items[i].getAttribute("data-item"));
      var status = data.items[index].status;
      var show = active[status] === true && (query === "" || texts[index].indexOf(query) !== -1);
      items[i].hidden = !show;
      if (show) {
        visible += 1;
        perStatus[status] = (perStatus[status] || 0) + 1;
      }
    }
    sections.forEach(function (section) {
      var count = perStatus[section.getAttribute("data-status")] || 0;
      section.hidden = count === 0;
      var details = section.querySelector("details");
      if (details && query && count) { details.open = true; }
    });
    filters.forEach(function (button) {
      var status = button.getAttribute("data-filter");
      button.setAttribute("aria-pressed", String(active[status] === true));
    });
    var total = data.items.length;
    shown.textContent = visible === total
      ? "Showing all " + total + " images"
      : "Showing " + visible + " of " + total + " images";
    noMatch.hidden = visible !== 0;
    saveState(typed);
  }

  function toggle(status) {
    var on = data.statuses.filter(function (s) { return active[s]; });
    if (on.length === data.statuses.length) {
      data.statuses.forEach(function (s) { active[s] = s === status; });
    } else {
      active[status] = !active[status];
      if (!data.statuses.some(function (s) { return active[s]; })) { showAll(); }
    }
    apply();
  }

  function setMode(viewer, mode) {
    viewer.setAttribute("data-mode", mode);
    viewer.querySelectorAll("button[data-mode]").forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.getAttribute("data-mode") === mode));
    });
    var slider = viewer.querySelector("input.slider");
    if (slider) { slider.hidden = mode !== "slider"; }
  }

  var pending = 0;
  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target === search) {
      clearTimeout(pending);
      pending = setTimeout(apply, 120);
    } else if (target.classList.contains("slider")) {
      target.closest(".viewer").style.setProperty("--pos", target.value + "%");
    }
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button || button.disabled) { return; }
    if (button.hasAttribute("data-mode")) {
      setMode(button.closest(".viewer"), button.getAttribute("data-mode"));
    } else if (button.hasAttribute("data-filter")) {
      toggle(button.getAttribute("data-filter"));
    } else if (button.id === "show-all") {
      showAll();
      search.value = "";
      apply();
    }
  });
  window.addEventListener("hashchange", function () { readState(); apply(); });

  document.querySelectorAll(".viewer").forEach(function (viewer) {
    viewer.querySelector(".modes").hidden = false;
    setMode(viewer, viewer.getAttribute("data-initial"));
  });
  document.getElementById("toolbar").hidden = false;
  readState();
  apply();
  document.body.setAttribute("data-ready", "true");
})();
"""

_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()}'; "
    "base-uri 'none'; form-action 'none'"
)
