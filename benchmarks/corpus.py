"""Real browser screenshots for the benchmarks: local HTML pages rendered by headless Chromium.

Run from the repository root:

    .venv/bin/python -m benchmarks.corpus [--jobs 3] [--chromium /usr/bin/chromium]

Python templates write self-contained pages (inline CSS and SVG, "photos" generated here as PNG
or JPEG data URIs, system fonts only) and a head variant of each for a typical change: a text
edit, a colour change, a block shifted by 1 to 20 px, an added row, a font change, an image swap,
no change at all (rendered again) and identical pixels in other bytes (the base PNG re-encoded by
Pillow with another zlib level and filter). Two more classes of screenshot:

- components: element screenshots of icons, buttons, badges, table rows, cards, form fields,
  toggles, tabs, alerts, avatars and tooltips (24x24 to 280x340 px, all under 0.1 MP, some on a
  transparent background), the element filling the viewport as an element screenshot crops it;
  heads change a colour, a border, one word, a 1-px shift, a hover or checked state, the text's
  sub-pixel position (anti-aliasing only), a picture, or nothing;
- photographic pages: full-page captures of 13 to 40 MP, mostly JPEG photographs generated here
  (fractal landscapes and textures, bokeh), CSS gradients and text; heads change one word, one
  photo, a whole section, shift the lower half by 2 px, or nothing.

Chromium's screenshots are kept exactly as it wrote them, under benchmarks/.cache/corpus/
(git-ignored): shots/<sha256 of page source and viewport>.png, so a page renders again only when
its source changes. pairs.json lists every pair with its category (CATEGORIES).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CORPUS = Path(__file__).resolve().parent / ".cache" / "corpus"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
CATEGORIES = ("small UI", "phone", "tall page", "identical pixels", "components", "photographic page")
# Each page of these categories also gets its base re-encoded, a pair in "identical pixels".
REENCODED = ("small UI", "phone", "tall page")

WORDS = (
    "account activity alert analysis archive billing branch build cache change channel client "
    "cluster commit config cost customer dashboard data deploy device domain draft event export "
    "feature filter growth health history incident insight invoice issue latency layout limit "
    "metric monitor network order owner page payment pipeline plan policy preview project "
    "quota region release report request revenue review role sample schedule screen search "
    "session setting signal snapshot source status storage stream summary team theme ticket "
    "timeline token traffic trend update upload usage user version visitor volume warning "
    "window workflow workspace"
).split()
NAMES = (
    "Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov",
    "Ken Thompson", "Margaret Hamilton", "Donald Knuth", "Frances Allen", "Leslie Lamport",
    "Radia Perlman", "John Backus", "Hedy Lamarr", "Dennis Ritchie", "Niklaus Wirth",
)


@dataclass(frozen=True)
class Change:
    """What a head variant changes relative to its base page (all off: the base itself)."""

    text: bool = False
    colour: bool = False
    shift: int = 0
    row: bool = False
    font: bool = False
    image: bool = False
    border: bool = False
    hover: bool = False
    subpixel: bool = False
    section: bool = False


@dataclass(frozen=True)
class Page:
    """One page: a template, a data seed, a viewport (CSS px) and device scale factor;
    ``transparent``: rendered on a transparent background (an RGBA screenshot)."""

    name: str
    template: str
    seed: int
    width: int
    height: int
    scale: int
    category: str
    repeats: int = 1
    transparent: bool = False


# ---------------------------------------------------------------------------------------------
# Building blocks


def sentence(rng: random.Random, n: int) -> str:
    """A pseudo sentence of ``n`` words, capitalised, with a full stop."""
    text = " ".join(rng.choice(WORDS) for _ in range(n))
    return text[0].upper() + text[1:] + "."


def paragraph(rng: random.Random, sentences: int) -> str:
    """Several pseudo sentences."""
    return " ".join(sentence(rng, rng.randint(6, 16)) for _ in range(sentences))


_PHOTOS: dict[tuple[int, int, int], str] = {}


def photo(seed: int, width: int, height: int) -> str:
    """A deterministic photo-like PNG (smooth colour field, blobs, sensor noise) as a data URI."""
    key = (seed, width, height)
    if key not in _PHOTOS:
        rng = np.random.default_rng(seed)
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        base = rng.uniform(40, 215, size=3)
        tilt = rng.uniform(-0.4, 0.4, size=(3, 2))
        img = np.empty((height, width, 3), np.float32)
        for c in range(3):
            img[..., c] = base[c] + tilt[c, 0] * x + tilt[c, 1] * y
        for _ in range(6):
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            radius = rng.uniform(0.1, 0.4) * min(width, height)
            blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2))
            img += blob[..., None] * rng.uniform(-90, 90, size=3)
        img += rng.normal(0, 6, size=img.shape)
        pixels = np.clip(img, 0, 255).astype(np.uint8)
        out = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(out, "PNG", compress_level=6)
        _PHOTOS[key] = "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()
    return _PHOTOS[key]


def fractal(rng: np.random.Generator, height: int, width: int, beta: float) -> np.ndarray:
    """Spectral 1/f^beta noise scaled to [0, 1] (clipped at its 1st and 99th percentiles)."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    freq = np.hypot(fx, fy)
    freq[0, 0] = 1
    spectrum = (rng.normal(size=freq.shape) + 1j * rng.normal(size=freq.shape)) / freq ** (beta / 2)
    spectrum[0, 0] = 0
    field = np.fft.irfft2(spectrum, s=(height, width))
    low, high = np.percentile(field, (1, 99))
    return np.clip((field - low) / (high - low), 0, 1).astype(np.float32)


_PICTURES: dict[tuple[int, int, int], str] = {}


def picture(seed: int, width: int, height: int) -> str:
    """A deterministic photograph as a JPEG data URI: a fractal landscape under a sky gradient,
    a fractal texture through a three-colour map, or blurred discs (bokeh), with film grain."""
    key = (seed, width, height)
    if key not in _PICTURES:
        rng = np.random.default_rng(seed)
        palette = rng.uniform(30, 230, size=(3, 3)).astype(np.float32)
        y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
        x = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
        kind = seed % 3
        if kind == 0:
            sky = palette[0] * (1 - y) + np.float32(235) * y
            ridge = 0.3 + 0.3 * fractal(rng, 1, width, 2.2)[0][None, :, None]
            ground = fractal(rng, height, width, 2.2)[..., None]
            land = (palette[1] * (1 - ground) + palette[2] * ground) * (1.1 - 0.5 * y)
            img = np.where(y < ridge, sky, land)
        elif kind == 1:
            t = fractal(rng, height, width, 2.6)[..., None]
            img = np.where(t < 0.5, palette[0] + (palette[1] - palette[0]) * 2 * t,
                           palette[1] + (palette[2] - palette[1]) * (2 * t - 1))
        else:
            discs = Image.new("RGB", (width, height))
            draw = ImageDraw.Draw(discs)
            for _ in range(40):
                cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.02, 0.08) * width
                draw.ellipse((cx - r, cy - r, cx + r, cy + r),
                             fill=tuple(int(v) for v in rng.uniform(60, 255, 3)))
            blurred = np.asarray(discs.filter(ImageFilter.GaussianBlur(width / 100)), np.float32)
            img = 0.7 * (palette[0] * (1 - x) * (1 - y) + palette[1] * x + palette[2] * y * (1 - x))
            img = img + 0.5 * blurred
        img = img + rng.normal(0, 4, size=(height, width, 1)).astype(np.float32)
        out = io.BytesIO()
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB").save(out, "JPEG", quality=84)
        _PICTURES[key] = "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()
    return _PICTURES[key]


def line_chart(rng: random.Random, width: int, height: int, colour: str) -> str:
    """An SVG line chart with a gradient-filled area, grid lines and axis labels."""
    points, value = [], rng.uniform(0.3, 0.7)
    for i in range(24):
        value = min(0.95, max(0.05, value + rng.uniform(-0.12, 0.12)))
        points.append((40 + i * (width - 60) / 23, 10 + (1 - value) * (height - 40)))
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    area = f"40,{height - 30} {path} {width - 20},{height - 30}"
    grid = "".join(
        f'<line x1="40" x2="{width - 20}" y1="{10 + k * (height - 40) / 4:.1f}" '
        f'y2="{10 + k * (height - 40) / 4:.1f}" stroke="#e3e6ea"/>'
        f'<text x="4" y="{14 + k * (height - 40) / 4:.1f}" font-size="11" fill="#8a8f98">'
        f"{100 - 25 * k}</text>"
        for k in range(5)
    )
    gid = f"g{rng.randint(0, 10**9)}"
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<defs><linearGradient id="{gid}" x1="0" y1="0" x2="0" y2="1">'
        f'<stop offset="0" stop-color="{colour}" stop-opacity="0.45"/>'
        f'<stop offset="1" stop-color="{colour}" stop-opacity="0"/></linearGradient></defs>'
        f'{grid}<polygon points="{area}" fill="url(#{gid})"/>'
        f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.5" '
        f'stroke-linejoin="round"/></svg>'
    )


def bar_chart(rng: random.Random, width: int, height: int, colour: str) -> str:
    """An SVG bar chart with rounded bars and labels."""
    bars = []
    count = 12
    step = (width - 20) / count
    for i in range(count):
        h = rng.uniform(0.15, 0.95) * (height - 30)
        bars.append(
            f'<rect x="{12 + i * step:.1f}" y="{height - 20 - h:.1f}" width="{step * 0.6:.1f}" '
            f'height="{h:.1f}" rx="3" fill="{colour}"/>'
            f'<text x="{12 + i * step:.1f}" y="{height - 4}" font-size="10" fill="#8a8f98">'
            f"{'JFMAMJJASOND'[i]}</text>"
        )
    return f'<svg width="{width}" height="{height}">{"".join(bars)}</svg>'


def donut(rng: random.Random, size: int, colours: list[str]) -> str:
    """An SVG donut chart from stroke-dasharray arcs."""
    shares = [rng.uniform(1, 4) for _ in colours]
    total, offset, radius = sum(shares), 0.0, size * 0.35
    circumference = 2 * 3.14159265 * radius
    arcs = []
    for share, colour in zip(shares, colours, strict=True):
        length = circumference * share / total
        arcs.append(
            f'<circle cx="{size / 2}" cy="{size / 2}" r="{radius}" fill="none" stroke="{colour}" '
            f'stroke-width="{size * 0.14}" stroke-dasharray="{length:.2f} {circumference:.2f}" '
            f'stroke-dashoffset="{-offset:.2f}" transform="rotate(-90 {size / 2} {size / 2})"/>'
        )
        offset += length
    pct = int(100 * shares[0] / total)
    return (
        f'<svg width="{size}" height="{size}">{"".join(arcs)}'
        f'<text x="50%" y="54%" text-anchor="middle" font-size="{size // 7}" '
        f'font-weight="bold" fill="currentColor">{pct}%</text></svg>'
    )


def icon(rng: random.Random, colour: str, size: int = 20) -> str:
    """A small SVG icon: one of a few shapes."""
    kind = rng.randint(0, 3)
    shapes = (
        f'<circle cx="10" cy="10" r="7" fill="none" stroke="{colour}" stroke-width="2"/>',
        f'<path d="M3 10 L8 15 L17 5" fill="none" stroke="{colour}" stroke-width="2.4" '
        'stroke-linecap="round"/>',
        f'<rect x="3" y="3" width="14" height="14" rx="3" fill="{colour}"/>',
        f'<path d="M10 2 L12.4 7.5 L18 8 L13.8 12 L15 18 L10 15 L5 18 L6.2 12 L2 8 L7.6 7.5 Z" '
        f'fill="{colour}"/>',
    )
    return f'<svg width="{size}" height="{size}" viewBox="0 0 20 20">{shapes[kind]}</svg>'


def document(body: str, css: str, font: str = '"DejaVu Sans", sans-serif') -> str:
    """A complete page around ``body``; no external resources."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width'>"
        f"<style>*{{box-sizing:border-box}}html,body{{margin:0}}"
        f"body{{font-family:{font};font-size:15px;line-height:1.5;color:#1f2328}}"
        f"{css}</style></head><body>{body}</body></html>"
    )


# ---------------------------------------------------------------------------------------------
# Templates: each takes the seed, the change and how many times to repeat its main content
# (tall pages) and returns the page source. Every random draw happens whatever the change is, so
# a head differs from its base only where the change applies.


def t_doc(seed: int, c: Change, repeats: int) -> str:
    """Text-heavy documentation page: headings, paragraphs, list, code, quote, figure."""
    rng = random.Random(seed)
    link = "#c2255c" if c.colour else "#0969da"
    head_font = '"DejaVu Serif", serif' if c.font else '"DejaVu Sans", sans-serif'
    sections = []
    for s in range(3 * repeats):
        paras = [paragraph(rng, rng.randint(3, 6)) for _ in range(3)]
        items = [sentence(rng, rng.randint(4, 9)) for _ in range(4)]
        if s == 0 and c.text:
            paras[1] = "This paragraph was edited in the head build. " + paras[1]
        if s == 0 and c.row:
            items.append("An item added to the list in the head build.")
        code = "\n".join(
            f"    {rng.choice(WORDS)}_{rng.choice(WORDS)} = load('{rng.choice(WORDS)}', {i})"
            for i in range(5)
        )
        shift = f"margin-top:{24 + c.shift}px" if s == 0 else "margin-top:24px"
        img_seed = seed * 100 + s + (5000 if c.image and s == 0 else 0)
        sections.append(
            f"<h2>{sentence(rng, 4)[:-1]}</h2><p>{paras[0]} <a href='#'>{rng.choice(WORDS)} "
            f"reference</a>.</p><figure style='{shift}'><img src='{photo(img_seed, 560, 220)}'>"
            f"<figcaption>Figure {s + 1}. {sentence(rng, 7)}</figcaption></figure>"
            f"<p>{paras[1]}</p><ul>{''.join(f'<li>{i}</li>' for i in items)}</ul>"
            f"<pre>{code}</pre><blockquote>{paras[2]}</blockquote>"
        )
    nav = "".join(f"<li><a href='#'>{sentence(rng, 2)[:-1]}</a></li>" for _ in range(14))
    css = (
        f".side{{position:absolute;left:0;top:0;width:240px;padding:24px;background:#f6f8fa;"
        f"bottom:0;border-right:1px solid #d0d7de}}.side ul{{list-style:none;padding:0}}"
        f".main{{margin-left:240px;padding:24px 56px;max-width:900px}}"
        f"h1,h2{{font-family:{head_font};font-weight:600}}a{{color:{link}}}"
        f"pre{{background:#f6f8fa;padding:12px;font-family:'DejaVu Sans Mono';font-size:13px;"
        f"border-radius:6px}}blockquote{{border-left:4px solid #d0d7de;margin:0;padding:0 16px;"
        f"color:#59636e}}figure{{margin:24px 0}}figcaption{{font-size:13px;color:#59636e}}"
        f"@media (max-width:600px){{.side{{display:none}}.main{{margin:0;padding:16px}}"
        f"img{{width:100%}}}}"
    )
    body = (
        f"<nav class='side'><b>Guide</b><ul>{nav}</ul></nav><main class='main'>"
        f"<h1>{sentence(rng, 5)[:-1]}</h1>{''.join(sections)}</main>"
    )
    return document(body, css)


def t_dashboard(seed: int, c: Change, repeats: int) -> str:
    """Analytics dashboard: gradient header, KPI cards, SVG line, bar and donut charts, events."""
    rng = random.Random(seed)
    accent = "#e8590c" if c.colour else "#1c7ed6"
    kpi_font = "'DejaVu Sans Mono', monospace" if c.font else "inherit"
    kpis = []
    for i in range(4):
        value = f"{rng.randint(10, 999)},{rng.randint(100, 999)}"
        if i == 1 and c.text:
            value = "12,345"
        kpis.append(
            f"<div class='card kpi'><div class='label'>{sentence(rng, 2)[:-1]}</div>"
            f"<div class='value'>{value}</div><div class='delta'>+{rng.uniform(0, 30):.1f}%"
            f"</div></div>"
        )
    blocks = []
    for r in range(repeats):
        rows = []
        for i in range(8 + (1 if c.row and r == 0 else 0)):
            rrng = random.Random(seed * 31 + r * 97 + i)
            rows.append(
                f"<tr><td>{icon(rrng, accent)}</td><td>{rrng.choice(NAMES)}</td>"
                f"<td>{sentence(rrng, 5)}</td><td>{rrng.randint(1, 59)} min ago</td></tr>"
            )
        top = 16 + (c.shift if r == 0 else 0)
        blocks.append(
            f"<div class='grid' style='margin-top:{top}px'>"
            f"<div class='card wide'><h3>Traffic</h3>{line_chart(rng, 620, 240, accent)}</div>"
            f"<div class='card'><h3>Share</h3>"
            f"{donut(rng, 200, [accent, '#37b24d', '#f59f00', '#ae3ec9'])}</div>"
            f"<div class='card'><h3>Monthly</h3>{bar_chart(rng, 300, 200, accent)}</div>"
            f"<div class='card wide'><h3>Events</h3><table>{''.join(rows)}</table></div></div>"
        )
    avatar = photo(seed * 7 + (1 if c.image else 0), 64, 64)
    css = (
        ".top{height:64px;background:linear-gradient(90deg,#0b3d91,#1c7ed6 60%,#66d9e8);"
        "color:#fff;display:flex;align-items:center;padding:0 24px;gap:16px}"
        ".top img{width:36px;height:36px;border-radius:50%;margin-left:auto}"
        "body{background:#f1f3f5}.wrap{padding:16px 24px}"
        ".kpis{display:grid;grid-template-columns:repeat(4,1fr);gap:16px}"
        ".grid{display:grid;grid-template-columns:2fr 1fr;gap:16px}"
        ".card{background:#fff;border-radius:10px;padding:16px;box-shadow:0 1px 3px #0002}"
        ".card h3{margin:0 0 8px;font-size:14px;color:#495057}.label{color:#868e96;font-size:13px}"
        f".value{{font-size:28px;font-weight:700;font-family:{kpi_font}}}"
        ".delta{color:#2b8a3e;font-size:13px}table{width:100%;border-collapse:collapse}"
        "td{padding:6px 8px;border-top:1px solid #eee;font-size:13px}"
        "svg{max-width:100%}"
        "@media (max-width:600px){.kpis,.grid{grid-template-columns:1fr 1fr}.wide{grid-column:span 2}}"
    )
    body = (
        f"<div class='top'><b>{sentence(rng, 2)[:-1]}</b><span>Overview</span>"
        f"<img src='{avatar}'></div><div class='wrap'><div class='kpis'>{''.join(kpis)}</div>"
        f"{''.join(blocks)}</div>"
    )
    return document(body, css)


def t_products(seed: int, c: Change, repeats: int) -> str:
    """Shop grid: product cards with generated photos, names, prices, rating stars, buttons."""
    rng = random.Random(seed)
    button = "#2f9e44" if c.colour else "#f76707"
    title_font = '"Liberation Serif", serif' if c.font else "inherit"
    cards = []
    count = 12 * repeats + (4 if c.row else 0)
    for i in range(count):
        prng = random.Random(seed * 1000 + i)
        price = f"${prng.randint(5, 400)}.{prng.randint(0, 99):02d}"
        if i == 2 and c.text:
            price = "$19.99"
        pseed = seed * 1000 + i + (777 if c.image and i == 5 else 0)
        stars = "★" * prng.randint(2, 5)
        cards.append(
            f"<div class='card'><img src='{photo(pseed, 280, 200)}'><div class='body'>"
            f"<div class='name'>{sentence(prng, 3)[:-1]}</div><div class='stars'>{stars}</div>"
            f"<div class='price'>{price}</div><button>Add to cart</button></div></div>"
        )
    css = (
        "header{background:#212529;color:#fff;padding:14px 24px;font-size:20px}"
        ".filters{padding:12px 24px;display:flex;gap:8px}.chip{padding:4px 12px;"
        "border:1px solid #ced4da;border-radius:16px;font-size:13px}"
        f".grid{{display:grid;grid-template-columns:repeat(4,1fr);gap:20px;padding:0 24px;"
        f"margin-top:{8 + c.shift}px}}"
        ".card{border:1px solid #e9ecef;border-radius:12px;overflow:hidden;background:#fff}"
        ".card img{width:100%;height:180px;object-fit:cover;display:block}.body{padding:12px}"
        f".name{{font-weight:600;font-family:{title_font}}}.stars{{color:#fab005}}"
        ".price{font-size:18px;margin:4px 0}"
        f"button{{background:{button};color:#fff;border:0;border-radius:6px;padding:8px 14px;"
        f"font:inherit}}"
        "@media (max-width:600px){.grid{grid-template-columns:1fr 1fr;gap:10px;padding:0 10px}"
        ".card img{height:120px}}"
    )
    chips = "".join(f"<span class='chip'>{rng.choice(WORDS)}</span>" for _ in range(6))
    body = f"<header>{sentence(rng, 2)[:-1]}</header><div class='filters'>{chips}</div>"
    body += f"<div class='grid'>{''.join(cards)}</div>"
    return document(body, css)


def t_form(seed: int, c: Change, repeats: int) -> str:
    """Sign-up form with native controls: inputs, select, checkboxes, radios, textarea."""
    rng = random.Random(seed)
    primary = "#7048e8" if c.colour else "#1971c2"
    label_font = '"Liberation Sans", sans-serif' if c.font else "inherit"
    fields = []
    labels = ["Full name", "Email", "Company", "Phone", "Website", "City"]
    if c.row:
        labels.insert(3, "Job title")
    for i, label in enumerate(labels):
        value = rng.choice(NAMES) if i % 2 == 0 else ""
        fields.append(
            f"<label>{label}<input value='{value}' placeholder='{sentence(rng, 2)[:-1]}'></label>"
        )
    title = "Create your workspace" if c.text else "Create your account"
    checks = "".join(
        f"<label class='inline'><input type='checkbox' {'checked' if k % 2 else ''}>"
        f"{sentence(rng, 4)[:-1]}</label>"
        for k in range(3)
    )
    radios = "".join(
        f"<label class='inline'><input type='radio' name='p' {'checked' if k == 1 else ''}>"
        f"{p}</label>"
        for k, p in enumerate(("Free", "Team", "Enterprise"))
    )
    side = photo(seed * 3 + (9 if c.image else 0), 420, 640)
    css = (
        "body{background:#f8f9fa}.page{display:flex;min-height:100vh}"
        ".hero{flex:1;background-size:cover;background-position:center}"
        f".formwrap{{flex:1;padding:40px 56px;padding-top:{40 + c.shift}px}}"
        f"label{{display:block;margin:10px 0;font-size:13px;color:#495057;font-family:{label_font}}}"
        "input:not([type]),select,textarea{display:block;width:100%;margin-top:4px;padding:8px;"
        "border:1px solid #ced4da;border-radius:6px;font:inherit}.inline{display:flex;gap:8px}"
        f"button{{background:{primary};color:#fff;border:0;border-radius:6px;padding:10px 20px;"
        f"font:inherit;margin-top:12px}}.err{{color:#e03131;font-size:13px}}"
        "@media (max-width:600px){.hero{display:none}.formwrap{padding:20px}}"
    )
    body = (
        f"<div class='page'><div class='hero' style=\"background-image:url('{side}')\"></div>"
        f"<div class='formwrap'><h1>{title}</h1><p>{paragraph(rng, 2)}</p>{''.join(fields)}"
        f"<label>Plan<select><option>{rng.choice(WORDS)}</option></select></label>{radios}"
        f"<label>Notes<textarea rows='4'>{paragraph(rng, 1)}</textarea></label>{checks}"
        f"<div class='err'>{sentence(rng, 6)}</div><button>Continue</button></div></div>"
    )
    return document(body, css)


def t_dark(seed: int, c: Change, repeats: int) -> str:
    """Dark-theme app: sidebar, toggles, code panels, status badges."""
    rng = random.Random(seed)
    accent = "#ff6b6b" if c.colour else "#4dabf7"
    code_font = "'Liberation Mono', monospace" if c.font else "'DejaVu Sans Mono', monospace"
    rows = []
    count = 10 * repeats + (1 if c.row else 0)
    for i in range(count):
        rr = random.Random(seed * 53 + i)
        on = rr.random() < 0.5
        text = "Edited setting label" if (i == 1 and c.text) else sentence(rr, 3)[:-1]
        rows.append(
            f"<div class='row'><div><div>{text}</div><small>{sentence(rr, 8)}</small></div>"
            f"<span class='toggle {'on' if on else ''}'><i></i></span></div>"
        )
    code = "<br>".join(
        f"<span style='color:#c792ea'>const</span> {rng.choice(WORDS)} = "
        f"<span style='color:#c3e88d'>'{rng.choice(WORDS)}'</span>;"
        for _ in range(8)
    )
    avatar = photo(seed * 11 + (4 if c.image else 0), 96, 96)
    nav = "".join(f"<div class='nav'>{icon(rng, '#868e96')} {rng.choice(WORDS)}</div>" for _ in range(9))
    css = (
        "body{background:#1a1b1e;color:#c1c2c5}.app{display:flex;min-height:100vh}"
        ".side{width:220px;background:#141517;padding:16px}.nav{padding:8px;display:flex;gap:8px}"
        f".main{{flex:1;padding:24px;padding-top:{24 + c.shift}px}}"
        ".row{display:flex;justify-content:space-between;align-items:center;padding:12px 16px;"
        "border-bottom:1px solid #2c2e33}small{color:#6c6f75}"
        ".toggle{width:40px;height:22px;border-radius:11px;background:#373a40;position:relative}"
        f".toggle.on{{background:{accent}}}.toggle i{{position:absolute;top:3px;left:3px;"
        f"width:16px;height:16px;border-radius:50%;background:#fff}}.toggle.on i{{left:21px}}"
        f".code{{background:#25262b;border-radius:8px;padding:16px;font-family:{code_font};"
        f"font-size:13px;margin:16px 0}}.avatar{{width:48px;height:48px;border-radius:50%}}"
        f".badge{{background:{accent}33;color:{accent};padding:2px 8px;border-radius:10px}}"
        "@media (max-width:600px){.side{display:none}.main{padding:12px}}"
    )
    body = (
        f"<div class='app'><div class='side'>{nav}</div><div class='main'>"
        f"<img class='avatar' src='{avatar}'> <span class='badge'>{rng.choice(WORDS)}</span>"
        f"<h2>{sentence(rng, 3)[:-1]}</h2><div class='code'>{code}</div>{''.join(rows)}</div></div>"
    )
    return document(body, css)


def t_table(seed: int, c: Change, repeats: int) -> str:
    """Data table: sticky-looking header, zebra rows, status badges, numbers, pagination."""
    rng = random.Random(seed)
    ok = "#099268" if not c.colour else "#5f3dc4"
    num_font = "'DejaVu Sans Mono', monospace" if c.font else "inherit"
    rows = []
    count = 30 * repeats + (1 if c.row else 0)
    for i in range(count):
        rr = random.Random(seed * 71 + i)
        status, colour = rr.choice((("active", ok), ("paused", "#f08c00"), ("failed", "#e03131")))
        name = rr.choice(NAMES)
        if i == 4 and c.text:
            name = "Renamed Customer"
        av = photo(seed * 5000 + i + (333 if c.image and i == 2 else 0), 28, 28)
        rows.append(
            f"<tr><td><input type='checkbox'></td><td><img src='{av}'> {name}</td>"
            f"<td>{rr.choice(WORDS)}.{rr.choice(('com', 'io', 'dev'))}</td>"
            f"<td><span class='b' style='background:{colour}22;color:{colour}'>{status}</span>"
            f"</td><td class='n'>{rr.randint(0, 99999):,}</td><td class='n'>"
            f"{rr.uniform(0, 100):.2f}%</td><td>2026-{rr.randint(1, 12):02d}-"
            f"{rr.randint(1, 28):02d}</td></tr>"
        )
    sort = icon(rng, "#868e96", 12)
    head = "".join(
        f"<th>{h} {sort}</th>"
        for h in ("Customer", "Domain", "Status", "Events", "Error rate", "Updated")
    )
    css = (
        f".bar{{padding:16px 24px;display:flex;gap:12px;align-items:center;"
        f"margin-bottom:{c.shift}px}}"
        ".bar input{padding:6px 10px;border:1px solid #ced4da;border-radius:6px;width:260px}"
        "table{border-collapse:collapse;width:calc(100% - 48px);margin:0 24px;font-size:13px}"
        "th{background:#f1f3f5;text-align:left;padding:8px;border-bottom:2px solid #dee2e6}"
        "td{padding:6px 8px;border-bottom:1px solid #f1f3f5}tr:nth-child(even) td{background:#fafbfc}"
        f"td img{{vertical-align:middle;border-radius:50%}}.n{{text-align:right;font-family:{num_font}}}"
        ".b{padding:2px 8px;border-radius:10px;font-size:12px}"
        ".pages{padding:16px 24px;display:flex;gap:6px}.pages span{padding:4px 10px;"
        "border:1px solid #dee2e6;border-radius:4px}"
        "@media (max-width:600px){td:nth-child(3),th:nth-child(2),td:nth-child(6),th:nth-child(5),"
        "td:nth-child(7),th:nth-child(6){display:none}table{margin:0 8px;width:calc(100% - 16px)}}"
    )
    pages = "".join(f"<span>{k}</span>" for k in range(1, 8))
    body = (
        f"<div class='bar'><b>{sentence(rng, 2)[:-1]}</b><input placeholder='Search'></div>"
        f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table><div class='pages'>{pages}</div>"
    )
    return document(body, css)


def t_landing(seed: int, c: Change, repeats: int) -> str:
    """Marketing page: big gradient hero, feature grid with SVG icons, testimonial, pricing."""
    rng = random.Random(seed)
    hero = (
        "linear-gradient(135deg,#f06595,#845ef7)" if c.colour
        else "linear-gradient(135deg,#4c6ef5,#15aabf)"
    )
    head_font = '"Liberation Serif", serif' if c.font else '"DejaVu Sans", sans-serif'
    title = "Ship visual changes with confidence" if c.text else "Catch visual changes early"
    features = []
    for i in range(6 * repeats + (3 if c.row else 0)):
        fr = random.Random(seed * 13 + i)
        features.append(
            f"<div class='f'>{icon(fr, '#4c6ef5', 32)}<h3>{sentence(fr, 3)[:-1]}</h3>"
            f"<p>{paragraph(fr, 2)}</p></div>"
        )
    person = photo(seed * 17 + (2 if c.image else 0), 120, 120)
    css = (
        f".hero{{background:{hero};color:#fff;padding:80px 64px;position:relative;overflow:hidden}}"
        ".hero:after{content:'';position:absolute;right:-120px;top:-120px;width:480px;"
        "height:480px;border-radius:50%;background:radial-gradient(#fff6,#fff0 70%)}"
        f"h1{{font-size:48px;margin:0;font-family:{head_font}}}"
        f".features{{display:grid;grid-template-columns:repeat(3,1fr);gap:32px;padding:48px 64px;"
        f"margin-top:{c.shift}px}}.f h3{{margin:8px 0}}.quote{{display:flex;gap:24px;"
        "align-items:center;padding:32px 64px;background:#f8f9fa}.quote img{border-radius:50%}"
        ".cta{display:inline-block;background:#fff;color:#364fc7;padding:12px 24px;"
        "border-radius:8px;font-weight:700;margin-top:24px}"
        "@media (max-width:600px){.hero{padding:40px 20px}h1{font-size:30px}"
        ".features{grid-template-columns:1fr;padding:20px}.quote{padding:20px}}"
    )
    body = (
        f"<div class='hero'><h1>{title}</h1><p>{paragraph(rng, 2)}</p>"
        f"<span class='cta'>Start free</span></div><div class='features'>{''.join(features)}</div>"
        f"<div class='quote'><img src='{person}'><blockquote>{paragraph(rng, 3)}"
        f"<br><b>{rng.choice(NAMES)}</b></blockquote></div>"
    )
    return document(body, css)


def t_kanban(seed: int, c: Change, repeats: int) -> str:
    """Kanban board: columns of cards with tags, avatars and progress bars."""
    rng = random.Random(seed)
    tag = "#d6336c" if c.colour else "#1098ad"
    card_font = '"DejaVu Serif", serif' if c.font else "inherit"
    columns = []
    for col, name in enumerate(("Backlog", "In progress", "Review", "Done")):
        cards = []
        for i in range(5 * repeats + (1 if c.row and col == 1 else 0)):
            cr = random.Random(seed * 400 + col * 50 + i)
            title = "Renamed task in head" if (c.text and col == 0 and i == 1) else sentence(cr, 5)
            av = photo(seed * 900 + col * 50 + i + (99 if c.image and col == 2 and i == 0 else 0), 24, 24)
            cards.append(
                f"<div class='card'><span class='tag'>{cr.choice(WORDS)}</span><p>{title}</p>"
                f"<div class='prog'><i style='width:{cr.randint(5, 100)}%'></i></div>"
                f"<img src='{av}'></div>"
            )
        shift = f"margin-top:{c.shift}px" if col == 2 else ""
        columns.append(f"<div class='col' style='{shift}'><h4>{name}</h4>{''.join(cards)}</div>")
    css = (
        "body{background:#e7f5ff}.board{display:flex;gap:16px;padding:20px}"
        ".col{flex:1;background:#f1f3f5;border-radius:10px;padding:10px}"
        f".card{{background:#fff;border-radius:8px;padding:10px;margin:8px 0;box-shadow:0 1px 2px #0002;"
        f"font-family:{card_font}}}.card p{{margin:6px 0}}.card img{{border-radius:50%}}"
        f".tag{{background:{tag};color:#fff;font-size:11px;padding:2px 6px;border-radius:4px}}"
        ".prog{height:6px;background:#e9ecef;border-radius:3px;margin:6px 0}"
        ".prog i{display:block;height:6px;background:#51cf66;border-radius:3px}"
    )
    body = f"<h2 style='margin:20px'>{sentence(rng, 3)[:-1]}</h2><div class='board'>{''.join(columns)}</div>"
    return document(body, css)


def t_inbox(seed: int, c: Change, repeats: int) -> str:
    """Mail/chat list: avatars, bold unread subjects, snippets, timestamps, a compose button."""
    unread = "#e64980" if c.colour else "#228be6"
    font = '"Liberation Sans", sans-serif' if c.font else '"DejaVu Sans", sans-serif'
    items = []
    for i in range(14 * repeats + (1 if c.row else 0)):
        ir = random.Random(seed * 29 + i)
        subject = "Subject edited in head" if (c.text and i == 3) else sentence(ir, 5)[:-1]
        av = photo(seed * 300 + i + (55 if c.image and i == 0 else 0), 40, 40)
        dot = "<i class='dot'></i>" if ir.random() < 0.4 else ""
        items.append(
            f"<div class='item'><img src='{av}'><div class='t'><b>{ir.choice(NAMES)}</b> "
            f"{dot}<div class='s'>{subject}</div><div class='p'>{sentence(ir, 12)}</div></div>"
            f"<span class='time'>{ir.randint(1, 12)}:{ir.randint(0, 59):02d}</span></div>"
        )
    css = (
        f".top{{padding:14px 16px;font-size:22px;font-weight:700;margin-bottom:{c.shift}px}}"
        ".item{display:flex;gap:12px;padding:10px 16px;border-bottom:1px solid #f1f3f5}"
        ".item img{width:40px;height:40px;border-radius:50%}.t{flex:1;min-width:0}"
        ".p{color:#868e96;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}"
        f".dot{{display:inline-block;width:8px;height:8px;border-radius:50%;background:{unread}}}"
        ".time{color:#adb5bd;font-size:12px}"
        f".fab{{position:fixed;right:20px;bottom:20px;background:{unread};color:#fff;"
        f"border-radius:28px;padding:16px 22px;box-shadow:0 4px 12px #0004}}"
    )
    body = f"<div class='top'>Inbox</div>{''.join(items)}<div class='fab'>Compose</div>"
    return document(body, css, font=font)


def _photo_section(seed: int, kind: int, text: bool, image: bool) -> str:
    """One section of a photographic page, with one word or one photo changed."""
    rng = random.Random(seed)
    pic = seed * 50 + (7 if image else 0)
    if kind == 0:
        words = paragraph(rng, 9).split(" ")
        if text:
            words[7] = next(w for w in WORDS if len(w) == len(words[7]) and w != words[7])
        return (
            f"<section class='story'><div class='cols'><h2>{sentence(rng, 4)[:-1]}</h2>"
            f"<p>{' '.join(words)}</p><p>{paragraph(rng, 8)}</p></div><figure>"
            f"<img src='{picture(pic, 1400, 930)}'><figcaption>{sentence(rng, 9)}</figcaption>"
            f"</figure></section>"
        )
    if kind == 1:
        cells = "".join(
            f"<figure><img src='{picture(pic + k, 900, 600)}'><figcaption>{sentence(rng, 6)}"
            f"</figcaption></figure>"
            for k in range(6)
        )
        return f"<section class='gallery'><h2>{sentence(rng, 3)[:-1]}</h2><div>{cells}</div></section>"
    if kind == 2:
        hue = rng.randint(0, 359)
        return (
            f"<section class='band' style='background:radial-gradient(circle at 20% 30%,"
            f"hsl({hue} 80% 70%),transparent 55%),linear-gradient(120deg,hsl({hue + 40} 70% 35%),"
            f"hsl({hue + 160} 60% 20%))'><img src='{picture(pic, 320, 320)}'><blockquote>"
            f"{paragraph(rng, 2)}<br><b>{rng.choice(NAMES)}</b></blockquote></section>"
        )
    if kind == 3:
        cards = "".join(
            f"<div class='card'><img src='{picture(pic + k, 800, 600)}'><h3>{sentence(rng, 3)[:-1]}"
            f"</h3><p>{sentence(rng, 10)}</p><b>${rng.randint(40, 900)}</b>"
            f"<button>Book now</button></div>"
            for k in range(4)
        )
        return f"<section class='cards'>{cards}</section>"
    tiles = "".join(
        f"<div style=\"background-image:linear-gradient(#0000 50%,#000b),url('{picture(pic + k, 1600, 1000)}')\">"
        f"<h3>{sentence(rng, 3)[:-1]}</h3></div>"
        for k in range(3)
    )
    return f"<section class='mosaic'>{tiles}</section>"


def t_photo(seed: int, c: Change, repeats: int) -> str:
    """Photographic full page: photo hero, then ``repeats`` sections (text beside a photo, photo
    gallery, gradient band with a quote, photo cards, photo mosaic), footer. Its changes, all
    around the middle: one word (same length), one photo, a whole section replaced by another
    of the same kind (same height), every section below shifted."""
    rng = random.Random(seed)
    mid = repeats // 2

    def first_after_mid(kind: int) -> int:
        return mid + (kind - mid) % 5

    sections = []
    for i in range(repeats):
        sseed = seed * 1000 + i + (500 if c.section and i == first_after_mid(3) else 0)
        html = _photo_section(sseed, i % 5, c.text and i == first_after_mid(0),
                              c.image and i == first_after_mid(1))
        if i == mid and c.shift:
            html = f"<div style='height:{c.shift}px'></div>" + html
        sections.append(html)
    css = (
        "body{background:#fbfaf7}h1{font:700 64px/1.1 'DejaVu Serif',serif;margin:0}"
        "h2{font:600 32px 'DejaVu Serif',serif;margin:0 0 16px}img{display:block}"
        ".hero{height:720px;background-size:cover;color:#fff;padding:360px 6% 0;"
        "text-shadow:0 2px 12px #000a}.hero p{font-size:22px;max-width:900px}"
        "section{padding:56px 6%}.story{display:flex;gap:48px;align-items:flex-start}"
        ".story .cols{flex:1;columns:2;column-gap:32px}.story h2{column-span:all}"
        ".story figure{flex:1;margin:0}.story img{width:100%;border-radius:4px}"
        "figcaption{font-size:13px;color:#6b6b6b;white-space:nowrap;overflow:hidden;"
        "text-overflow:ellipsis}.gallery>div{display:grid;grid-template-columns:repeat(3,1fr);gap:20px}"
        ".gallery figure{margin:0}.gallery img{width:100%;aspect-ratio:3/2;object-fit:cover}"
        ".band{display:flex;gap:40px;align-items:center;color:#fff;padding:80px 12%}"
        ".band img{width:200px;height:200px;border-radius:50%;box-shadow:0 8px 30px #0006}"
        ".band blockquote{font:italic 26px/1.4 'DejaVu Serif',serif;margin:0}"
        ".cards{display:grid;grid-template-columns:repeat(4,1fr);gap:24px;background:#f1efe9}"
        ".card{background:#fff;border-radius:14px;overflow:hidden;box-shadow:0 4px 18px #0002;"
        "padding-bottom:16px}.card img{width:100%;aspect-ratio:4/3;object-fit:cover}"
        ".card h3,.card p,.card b{margin:10px 16px;display:block;white-space:nowrap;overflow:hidden;"
        "text-overflow:ellipsis}.card button{margin:0 16px;background:#2b8a3e;color:#fff;border:0;"
        "border-radius:20px;padding:8px 18px;font:inherit}"
        ".mosaic{display:grid;grid-template-columns:2fr 1fr;grid-template-rows:1fr 1fr;gap:12px;"
        "aspect-ratio:2.4}.mosaic div{background-size:cover;background-position:center;"
        "color:#fff;display:flex;align-items:flex-end;padding:24px;border-radius:6px}"
        ".mosaic div:first-child{grid-row:span 2}.mosaic h3{font-size:28px;margin:0}"
        "footer{background:linear-gradient(#1b1f24,#0b0d10);color:#aab;padding:64px 6%;height:400px}"
    )
    body = (
        f"<header class='hero' style=\"background-image:linear-gradient(#0000 35%,#000a),"
        f"url('{picture(seed, 2400, 1100)}')\"><h1>{sentence(rng, 5)[:-1]}</h1>"
        f"<p>{paragraph(rng, 2)}</p></header>{''.join(sections)}"
        f"<footer>{paragraph(rng, 4)}</footer>"
    )
    return document(body, css)


# Components: each fills the viewport as an element screenshot crops it, and paints only itself
# (around rounded corners Chromium's default background shows: white, or transparent).


def component(body: str, css: str) -> str:
    """A page holding one component that fills the viewport."""
    return document(body, "html,body{height:100%;overflow:hidden;background:transparent}"
                          "body>*{width:100%;height:100%}" + css)


def offset(c: Change) -> str:
    """The CSS transform moving content by the change's shift and sub-pixel offset."""
    return f"transform:translate({0.4 if c.subpixel else 0}px,{c.shift}px)"


def c_icon(seed: int, c: Change, repeats: int) -> str:
    """A stroked SVG icon; the border change thickens its strokes."""
    rng = random.Random(seed)
    colour = rng.choice(("#1c7ed6", "#2b8a3e", "#495057", "#862e9c"))
    shape = rng.choice((
        '<circle cx="12" cy="12" r="9"/><path d="M7.5 12.5l3 3 6-7"/>',
        '<path d="M6 17V11a6 6 0 0 1 12 0v6l2 2H4z"/><path d="M10 21h4"/>',
        '<path d="M12 3l2.7 5.6 6.1.9-4.4 4.3 1 6.1L12 17l-5.4 2.9 1-6.1L3.2 9.5l6.1-.9z"/>',
        '<path d="M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13M10 11v6M14 11v6"/>',
    ))
    stroke = "2.6" if c.border else "2"
    return component(
        f'<svg viewBox="0 0 24 24" fill="none" stroke="{"#e8590c" if c.colour else colour}" '
        f'stroke-width="{stroke}" stroke-linecap="round" stroke-linejoin="round" '
        f'style="{offset(c)}">{shape}</svg>', "svg{display:block}")


def c_button(seed: int, c: Change, repeats: int) -> str:
    """A filled button with a two-word label; hover darkens it and adds a shadow."""
    rng = random.Random(seed)
    colour = rng.choice(("#1971c2", "#2f9e44", "#5f3dc4", "#212529"))
    if c.colour:
        colour = "#e8590c"
    verb, noun = rng.choice(("Save", "Export", "Send", "Create", "Invite")), rng.choice(WORDS)
    hover = "box-shadow:inset 0 0 0 40px #0003,0 2px 6px #0005;" if c.hover else ""
    border = "2px solid #0008" if c.border else "1px solid #0003"
    return component(
        f"<button><span style='{offset(c)}'>{verb} {'changes' if c.text else noun}</span></button>",
        f"button{{background:{colour};color:#fff;border:{border};border-radius:6px;{hover}"
        f"font:600 13px 'DejaVu Sans',sans-serif;padding:0;white-space:nowrap}}"
        "span{display:inline-block}")


def c_badge(seed: int, c: Change, repeats: int) -> str:
    """A status pill: a dot and a word on a tinted background."""
    rng = random.Random(seed)
    colour = rng.choice(("#2b8a3e", "#e67700", "#1864ab"))
    if c.colour:
        colour = "#c92a2a"
    word = rng.choice(("active", "paused", "queued", "ready"))
    border = f"1px solid {colour}" if c.border else "1px solid transparent"
    return component(
        f"<span class='b'><i></i>{'failing' if c.text else word}</span>",
        f".b{{display:flex;align-items:center;justify-content:center;gap:5px;border-radius:12px;"
        f"background:{colour}22;color:{colour};font:600 11px 'DejaVu Sans';border:{border}}}"
        f"i{{width:6px;height:6px;border-radius:50%;background:{colour}}}")


def c_row(seed: int, c: Change, repeats: int) -> str:
    """A table row: checkbox, avatar photo, name, status badge, right-aligned number."""
    rng = random.Random(seed)
    colour = rng.choice(("#2b8a3e", "#1864ab"))
    if c.colour:
        colour = "#c92a2a"
    name, number = rng.choice(NAMES), f"{rng.randint(1000, 99999):,}"
    if c.text:
        number = f"{int(number.replace(',', '')) + 1:,}"
    return component(
        f"<div class='r'><input type='checkbox'><img src='{photo(seed, 24, 24)}'>"
        f"<span class='n' style='{offset(c)}'>{name}</span><span class='b'>ok</span>"
        f"<span class='v' style='{offset(c)}'>{number}</span></div>",
        f".r{{display:flex;align-items:center;gap:10px;padding:0 10px;font-size:13px;"
        f"border-bottom:1px solid #e9ecef;background:{'#f1f3f5' if c.hover else '#fff'}}}"
        f"img{{border-radius:50%}}.n{{flex:1;white-space:nowrap;overflow:hidden}}"
        f".b{{color:{colour};background:{colour}22;padding:1px 8px;border-radius:9px}}"
        f".v{{font-family:'DejaVu Sans Mono';width:56px;text-align:right}}")


def c_card(seed: int, c: Change, repeats: int) -> str:
    """A product card: photo, title, two lines of text, price and button; hover underlines the
    title."""
    rng = random.Random(seed)
    title, text = sentence(rng, 3)[:-1], sentence(rng, 12)
    if c.text:
        title = "Updated " + title.split(" ", 1)[1]
    price = f"${rng.randint(5, 400)}"
    hover = "color:#1971c2;text-decoration:underline" if c.hover else ""
    return component(
        f"<div class='k'><img src='{picture(seed + (9 if c.image else 0), 560, 300)}'>"
        f"<div style='{offset(c)}'><h4>{title}</h4><p>{text}</p><b>{price}</b><button>Buy</button>"
        f"</div></div>",
        f".k{{background:#fff;border-radius:12px;overflow:hidden;"
        f"border:1px solid {'#adb5bd' if c.border else '#e9ecef'}}}"
        "img{width:100%;height:45%;object-fit:cover;display:block}"
        f"h4{{margin:10px 12px 4px;white-space:nowrap;overflow:hidden;{hover}}}"
        "p{margin:0 12px;font-size:12px;"
        "color:#495057;height:36px;overflow:hidden;line-height:18px}b{margin:8px 12px;display:inline-block}"
        f"button{{float:right;margin:4px 12px;background:{'#e8590c' if c.colour else '#1971c2'};"
        "color:#fff;border:0;border-radius:6px;padding:6px 14px;font:inherit}")


def c_field(seed: int, c: Change, repeats: int) -> str:
    """A labelled text input with a value and help text; border: focus ring, colour: error."""
    rng = random.Random(seed)
    label, value, help_text = sentence(rng, 2)[:-1], rng.choice(NAMES), sentence(rng, 4)
    if c.text:
        value = value.split(" ")[0] + " Smith"
    tone = "#e03131" if c.colour else "#868e96"
    ring = "border-color:#1c7ed6;box-shadow:0 0 0 3px #1c7ed633" if c.border else ""
    return component(
        f"<label>{label}<input value='{value}' style='{ring}'>"
        f"<small style='{offset(c)}'>{help_text}</small></label>",
        "label{display:block;font-size:12px;color:#495057;padding:2px 4px;background:#fff}"
        "input{display:block;width:100%;margin:3px 0;padding:5px 8px;border:1px solid #ced4da;"
        f"border-radius:6px;font:13px 'DejaVu Sans'}}small{{display:block;color:{tone};"
        "white-space:nowrap;overflow:hidden}")


def c_toggle(seed: int, c: Change, repeats: int) -> str:
    """A switch and its label; hover stands for the switch flipped."""
    rng = random.Random(seed)
    on = rng.random() < 0.5
    if c.hover:
        on = not on
    label = "Notify team" if c.text else sentence(rng, 2)[:-1]
    return component(
        f"<div class='t'><span class='s{' on' if on else ''}'><i></i></span>{label}</div>",
        f".t{{display:flex;align-items:center;gap:8px;font-size:13px;background:#fff;"
        f"color:{'#1864ab' if c.colour else '#212529'}}}"
        ".s{width:34px;height:18px;border-radius:9px;background:#ced4da;position:relative;flex:none}"
        ".s.on{background:#37b24d}.s i{position:absolute;left:2px;top:2px;width:14px;height:14px;"
        "border-radius:50%;background:#fff;box-shadow:0 1px 2px #0004}.s.on i{left:18px}")


def c_tabs(seed: int, c: Change, repeats: int) -> str:
    """A tab bar, the first tab active; hover highlights the second."""
    rng = random.Random(seed)
    names = [rng.choice(WORDS).title() for _ in range(4)]
    if c.text:
        names[2] = "Edited"
    accent = "#e8590c" if c.colour else "#1c7ed6"
    tabs = "".join(f"<span class='{'a' if i == 0 else 'h' if c.hover and i == 1 else ''}'>{n}</span>"
                   for i, n in enumerate(names))
    return component(
        f"<nav>{tabs}</nav>",
        "nav{display:flex;border-bottom:1px solid #dee2e6;background:#fff;font-size:13px}"
        f"span{{padding:0 12px;display:flex;align-items:center;color:#495057;{offset(c)}}}"
        f"span.a{{color:{accent};box-shadow:inset 0 -2px {accent}}}"
        "span.h{background:#f1f3f5}")


def c_alert(seed: int, c: Change, repeats: int) -> str:
    """An inline alert: tinted box, accent edge, round icon, bold title and one line of text."""
    rng = random.Random(seed)
    accent = rng.choice(("#1c7ed6", "#f08c00", "#2f9e44"))
    if c.colour:
        accent = "#e03131"
    title, text = sentence(rng, 2)[:-1], sentence(rng, 5)
    if c.text:
        title = title.split(" ")[0] + " failed"
    return component(
        f"<div class='a'><i>i</i><div style='{offset(c)}'><b>{title}</b><br>{text}</div></div>",
        f".a{{display:flex;gap:10px;align-items:center;padding:0 12px;font-size:12px;"
        f"background:{accent}14;border-left:{6 if c.border else 4}px solid {accent};border-radius:4px}}"
        f"i{{width:20px;height:20px;border-radius:50%;background:{accent};color:#fff;flex:none;"
        "text-align:center;font:bold 13px/20px 'DejaVu Serif'}div{white-space:nowrap;overflow:hidden}")


def c_avatar(seed: int, c: Change, repeats: int) -> str:
    """An avatar chip: round photo, name and role; border rings the photo."""
    rng = random.Random(seed)
    name, role = rng.choice(NAMES), rng.choice(WORDS)
    ring = "box-shadow:0 0 0 2px #fff,0 0 0 4px #1c7ed6" if c.border else ""
    return component(
        f"<div class='v'><img src='{photo(seed * 3 + (1 if c.image else 0), 64, 64)}' style='{ring}'>"
        f"<div><b>{name.split(' ')[0]}</b><br>{'admin' if c.text else role}</div></div>",
        ".v{display:flex;align-items:center;gap:8px;padding:0 10px 0 6px;font-size:11px;"
        "line-height:1.3;background:#f1f3f5;border-radius:22px}"
        "img{width:30px;height:30px;border-radius:50%}")


def c_tooltip(seed: int, c: Change, repeats: int) -> str:
    """A dark tooltip bubble with an arrow, on a transparent background."""
    rng = random.Random(seed)
    text = sentence(rng, 3)[:-1]
    if c.text:
        text = "Copied " + text.split(" ", 1)[1]
    return component(
        f"<div class='p'><span style='{offset(c)}'>{text}</span></div>",
        ".p{position:relative;height:calc(100% - 8px)!important;background:#212529;color:#fff;"
        "border-radius:6px;font-size:11px;display:flex;align-items:center;padding:0 10px}"
        "span{white-space:nowrap;overflow:hidden}.p:after{content:'';position:absolute;left:16px;"
        "bottom:-6px;border:6px solid transparent;border-top-color:#212529;border-bottom:0}")


TEMPLATES: dict[str, Callable[[int, Change, int], str]] = {
    "doc": t_doc,
    "dashboard": t_dashboard,
    "products": t_products,
    "form": t_form,
    "dark": t_dark,
    "table": t_table,
    "landing": t_landing,
    "kanban": t_kanban,
    "inbox": t_inbox,
}

# Component kind: (template, its head variants, instances as CSS width, height, device scale and
# whether the background is transparent). Every instance is at most 0.1 MP in device pixels.
COMPONENTS: dict[str, tuple[Callable[[int, Change, int], str], str, tuple[tuple[int, int, int, bool], ...]]] = {
    "icon": (c_icon, "colour border shift1 subpixel same", ((24, 24, 1, True), (20, 20, 2, True))),
    "button": (c_button, "colour border text shift1 hover subpixel same",
               ((120, 40, 1, False), (96, 32, 2, False))),
    "badge": (c_badge, "colour text border same", ((72, 24, 1, False), (64, 22, 2, False))),
    "row": (c_row, "colour text hover shift1 subpixel same", ((320, 44, 1, False), (300, 40, 2, False))),
    "card": (c_card, "text colour border hover image shift1 same",
             ((280, 340, 1, False), (220, 300, 1, False))),
    "field": (c_field, "border text colour shift1 subpixel same", ((260, 72, 1, False), (200, 68, 2, False))),
    "toggle": (c_toggle, "hover colour text same", ((160, 28, 1, False), (140, 24, 2, False))),
    "tabs": (c_tabs, "hover text shift1 colour same", ((300, 44, 1, False), (240, 40, 2, False))),
    "alert": (c_alert, "colour border text subpixel same", ((300, 64, 1, False), (280, 60, 2, False))),
    "avatar": (c_avatar, "image text border same", ((140, 44, 1, False), (120, 40, 2, True))),
    "tooltip": (c_tooltip, "text shift1 subpixel same", ((180, 48, 1, True), (150, 44, 2, True))),
}
ALL_TEMPLATES = {**TEMPLATES, "photo": t_photo, **{kind: spec[0] for kind, spec in COMPONENTS.items()}}

PAGES: tuple[Page, ...] = (
    *(Page(f"{t}-1280", t, 1, 1280, 900, 1, "small UI") for t in TEMPLATES),
    *(
        Page(f"{t}-1440", t, 2, 1440, 1000, 1, "small UI")
        for t in ("doc", "dashboard", "products", "table", "landing")
    ),
    *(
        Page(f"{t}-phone", t, 3, 390, 844, 3, "phone")
        for t in ("doc", "products", "form", "dark", "table", "inbox")
    ),
    Page("doc-tall", "doc", 4, 1280, 10000, 1, "tall page", repeats=6),
    Page("table-tall", "table", 5, 1280, 12000, 1, "tall page", repeats=12),
    Page("products-huge", "products", 6, 1723, 5364, 2, "tall page", repeats=4),
    *(
        Page(f"{kind}-{w}x{h}@{scale}", kind, 100 + 10 * k + i, w, h, scale, "components",
             transparent=clear)
        for k, (kind, (_, _, instances)) in enumerate(COMPONENTS.items())
        for i, (w, h, scale, clear) in enumerate(instances)
    ),
    Page("photo-1440", "photo", 21, 1440, 9000, 1, "photographic page", repeats=15),
    Page("photo-1920", "photo", 22, 1920, 10000, 1, "photographic page", repeats=14),
    Page("photo-2560", "photo", 23, 2560, 10000, 1, "photographic page", repeats=13),
    Page("photo-1280@2", "photo", 24, 1280, 7800, 2, "photographic page", repeats=14),
)

SMALL_HEADS: dict[str, Change] = {
    "text": Change(text=True),
    "colour": Change(colour=True),
    "shift1": Change(shift=1),
    "shift4": Change(shift=4),
    "shift20": Change(shift=20),
    "row": Change(row=True),
    "font": Change(font=True),
    "image": Change(image=True),
    "same": Change(),
}
TALL_HEADS: dict[str, Change] = {
    "text": Change(text=True),
    "colour": Change(colour=True),
    "shift3": Change(shift=3),
    "row": Change(row=True),
    "image": Change(image=True),
    "same": Change(),
}
PHOTO_HEADS: dict[str, Change] = {
    "word": Change(text=True),
    "photo": Change(image=True),
    "section": Change(section=True),
    "shift2": Change(shift=2),
    "same": Change(),
}
COMPONENT_HEADS: dict[str, Change] = {
    "colour": Change(colour=True),
    "border": Change(border=True),
    "text": Change(text=True),
    "shift1": Change(shift=1),
    "hover": Change(hover=True),
    "subpixel": Change(subpixel=True),
    "image": Change(image=True),
    "same": Change(),
}


def heads_of(page: Page) -> dict[str, Change]:
    """The head variants of ``page``, by name."""
    if page.category == "components":
        return {name: COMPONENT_HEADS[name] for name in COMPONENTS[page.template][1].split()}
    return {"tall page": TALL_HEADS, "photographic page": PHOTO_HEADS}.get(page.category, SMALL_HEADS)


# ---------------------------------------------------------------------------------------------
# Rendering


def page_source(page: Page, change: Change) -> str:
    """The HTML of ``page`` with ``change`` applied."""
    return ALL_TEMPLATES[page.template](page.seed, change, page.repeats)


def shot_key(html: str, page: Page) -> str:
    """Cache key of a screenshot: the page source and the viewport."""
    digest = hashlib.sha256(html.encode())
    digest.update(f"|{page.width}x{page.height}@{page.scale}".encode())
    if page.transparent:
        digest.update(b"|transparent")
    return digest.hexdigest()[:32]


def render(html: str, page: Page, out: Path, chromium: str, attempts: int = 3) -> float:
    """Screenshot ``html`` at the page's viewport with a fresh Chromium profile; returns seconds.

    Headless Chromium now and then never delivers its screenshot: a run past a timeout scaled to
    the page's size is started again, up to ``attempts`` runs.
    """
    megapixels = page.width * page.height * page.scale**2 / 1e6
    with tempfile.TemporaryDirectory(prefix="corpus-") as tmp:
        source = Path(tmp) / "page.html"
        source.write_text(html, encoding="utf-8")
        shot = Path(tmp) / "shot.png"
        start = time.perf_counter()
        for attempt in range(1, attempts + 1):
            try:
                result = subprocess.run(
                    [
                        chromium,
                        *CHROMIUM_FLAGS,
                        f"--user-data-dir={tmp}/profile{attempt}",
                        f"--screenshot={shot}",
                        f"--window-size={page.width},{page.height}",
                        f"--force-device-scale-factor={page.scale}",
                        *(["--default-background-color=00000000"] if page.transparent else []),
                        source.as_uri(),
                    ],
                    capture_output=True,
                    timeout=60 + 6 * megapixels,
                    check=False,
                )
                break
            except subprocess.TimeoutExpired:
                if attempt == attempts:
                    raise
        elapsed = time.perf_counter() - start
        if result.returncode != 0 or not shot.exists():
            raise RuntimeError(
                f"chromium failed on {page.name} ({result.returncode}): {result.stderr[-800:]!r}"
            )
        size = Image.open(shot).size
        if size != (page.width * page.scale, page.height * page.scale):
            raise RuntimeError(f"{page.name}: screenshot is {size}, expected the viewport")
        shutil.move(shot, out)
    return elapsed


def reencode(source: Path, out: Path) -> None:
    """Same pixels, other bytes: the PNG re-encoded by Pillow (zlib level 9, then 1 if equal)."""
    data = source.read_bytes()
    with Image.open(source) as image:
        image.load()
        for level in (9, 1, 3):
            buffer = io.BytesIO()
            image.save(buffer, "PNG", compress_level=level)
            if buffer.getvalue() != data:
                out.write_bytes(buffer.getvalue())
                return
    raise RuntimeError(f"could not re-encode {source} into other bytes")


def build(jobs: int = 3, chromium: str = CHROMIUM, quiet: bool = False) -> Path:
    """Render every page not yet cached, write pairs.json; returns its path."""
    shots = CORPUS / "shots"
    shots.mkdir(parents=True, exist_ok=True)
    todo: dict[str, tuple[str, Page]] = {}
    pairs = []
    for page in PAGES:
        base_html = page_source(page, Change())
        base = shot_key(base_html, page)
        todo[base] = (base_html, page)
        for variant, change in heads_of(page).items():
            html = page_source(page, change)
            key = shot_key(html, page)
            if variant == "same":
                # No change, rendered again: its own file even though the source is the base's.
                key = shot_key(html + "<!-- rendered again -->", page)
            elif key == base:
                raise RuntimeError(f"{page.name}/{variant} changes nothing in the source")
            todo[key] = (html, page)
            pairs.append(_pair(page, variant, page.category, base, key))
        if page.category in REENCODED:
            pairs.append(_pair(page, "reencoded", "identical pixels", base, f"{base}-reencoded"))
    missing = [(k, h, p) for k, (h, p) in todo.items() if not (shots / f"{k}.png").exists()]
    if missing and not quiet:
        print(f"corpus: rendering {len(missing)} of {len(todo)} screenshots, {jobs} at a time",
              file=sys.stderr)
    start = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        futures = [pool.submit(render, h, p, shots / f"{k}.png", chromium) for k, h, p in missing]
        for done, future in enumerate(futures, 1):
            future.result()
            if not quiet and done % 20 == 0:
                print(f"corpus: {done}/{len(missing)} ({time.perf_counter() - start:.0f} s)",
                      file=sys.stderr)
    for page in PAGES:
        if page.category not in REENCODED:
            continue
        base = shot_key(page_source(page, Change()), page)
        target = shots / f"{base}-reencoded.png"
        if not target.exists():
            reencode(shots / f"{base}.png", target)
    for pair in pairs:
        for side in ("base", "head"):
            path = shots / f"{pair[side]}.png"
            pair[side] = f"shots/{path.name}"
            pair[f"{side}_bytes"] = path.stat().st_size
    with Image.open(CORPUS / pairs[0]["base"]) as probe:
        probe_mode = probe.mode
    manifest = {
        "chromium": _chromium_version(chromium),
        "pages": [asdict(p) for p in PAGES],
        "pairs": pairs,
        "first_mode": probe_mode,
    }
    out = CORPUS / "pairs.json"
    out.write_text(json.dumps(manifest, indent=1))
    if not quiet:
        total = sum(p["base_bytes"] + p["head_bytes"] for p in pairs)
        print(f"corpus: {len(pairs)} pairs, {len(todo)} screenshots, {total / 1e6:.0f} MB of "
              f"pair PNGs, in {CORPUS}", file=sys.stderr)
    return out


def _pair(page: Page, variant: str, category: str, base: str, head: str) -> dict:
    return {
        "name": f"{page.name}/{variant}",
        "page": page.name,
        "variant": variant,
        "category": category,
        "size": [page.width * page.scale, page.height * page.scale],
        "base": base,
        "head": head,
    }


def _chromium_version(chromium: str) -> str:
    try:
        return subprocess.run([chromium, "--version"], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def load_pairs(build_if_missing: bool = True) -> list[dict]:
    """The corpus pairs (building the corpus first when pairs.json is missing or stale)."""
    manifest = CORPUS / "pairs.json"
    if build_if_missing:
        build(quiet=False)
    return json.loads(manifest.read_text())["pairs"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=3, help="Chromium processes at once (3)")
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args()
    build(args.jobs, args.chromium)


if __name__ == "__main__":
    main()
