"""The hand-made comparisons, hostile names and HTML parser the report tests share."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path

from PIL import Image

from compare.builds import compare_builds
from compare.model import CompareOptions, Comparison, ImageResult, Reason, Resources, Status
from compare.output.reports import write_reports

XSS_IMG = '<img src=x onerror="document.title=\'pwned\'">.png'
XSS_SCRIPT = "</script><script>document.title='pwned'</script>.png"
XSS_ATTR = "\"><svg onload=\"document.title='pwned'\">.png"
CONTROL_NAME = "tab\there\x00nul\x1bescape.png"
BIDI_NAME = "invoice\u202egnp.exe"  # shows as "invoiceexe.png" when the override is obeyed

BACKGROUND = (200, 200, 200)
CHANGED_COLOUR = (255, 0, 255)


def fake_hash(char: str) -> str:
    """A made-up content hash: ``char`` 64 times."""
    return char * 64


def write_previews(out_dir: Path, stem: str, colour: tuple[int, int, int]) -> dict[str, str]:
    """Write small before / after / diff PNGs under out_dir/previews; return their keys."""
    keys = {}
    for role, shade in (("before", 0), ("after", 60), ("diff", 120)):
        key = f"previews/{stem}.{role}.png"
        path = out_dir / key
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (12, 20), tuple(min(255, c + shade) for c in colour)).save(path)
        keys[role] = key
    return keys


def changed(name: str, ratio: float, previews: dict[str, str] | None = None) -> ImageResult:
    total = 240
    return ImageResult(
        name=name, status=Status.CHANGED, base_hash=fake_hash("a"), head_hash=fake_hash("b"),
        before_width=12, before_height=20, after_width=12, after_height=20,
        changed_pixels=round(ratio * total), total_pixels=total, diff_ratio=ratio, aa_pixels=3,
        bbox=(1, 2, 10, 18), diff_threshold=0.01, diff_mask_key=f"diff/{name}.png",
        previews=previews,
    )


def sample_comparison(out_dir: Path) -> Comparison:
    """Every status, hostile names, previews on disk (one missing, one outside out_dir)."""
    feed = write_previews(out_dir, "feed", (200, 30, 30))
    xss = write_previews(out_dir, "xss", (30, 30, 200))
    broken = dict(write_previews(out_dir, "broken", (30, 200, 30)))
    (out_dir / broken["after"]).unlink()
    (out_dir.parent / "secret.png").write_bytes((out_dir / broken["before"]).read_bytes())
    broken["before"] = "../secret.png"
    images = [
        changed("home/feed.png", 0.25, feed),
        changed(XSS_IMG, 0.5, xss),
        changed("settings/broken previews.png", 0.05, broken),
        changed(XSS_SCRIPT, 0.125),
        ImageResult(
            name="huge.png", status=Status.ERRORED, base_hash=fake_hash("c"), head_hash=fake_hash("d"),
            reason=Reason.EXCEEDS_PIXEL_LIMIT,
            detail="canvas 9000x9000 is over 40,000,000 pixels <b>really</b>",
        ),
        ImageResult(
            name=XSS_ATTR, status=Status.ERRORED, base_hash=fake_hash("e"),
            reason=Reason.IMAGE_FETCH_FAILED,
            detail="</pre><script>document.title='pwned'</script>",
        ),
        ImageResult(
            name="login/new.png", status=Status.RENAMED, base_hash=fake_hash("f"), head_hash=fake_hash("f"),
            previous_image_file_name="login/<old>.png",
        ),
        ImageResult(name="onboarding/step4.png", status=Status.ADDED, head_hash=fake_hash("1"),
                    after_width=12, after_height=20),
        ImageResult(name="legacy/banner.png", status=Status.REMOVED, base_hash=fake_hash("2")),
        ImageResult(name="tablet/home.png", status=Status.SKIPPED, base_hash=fake_hash("3")),
        ImageResult(name=CONTROL_NAME, status=Status.UNCHANGED, base_hash=fake_hash("4"),
                    head_hash=fake_hash("4")),
        ImageResult(
            name="almost.png", status=Status.UNCHANGED, base_hash=fake_hash("5"), head_hash=fake_hash("6"),
            changed_pixels=1, total_pixels=240, diff_ratio=1 / 240, diff_threshold=0.01,
        ),
    ]
    return Comparison(
        images={result.name: result for result in images},
        options=CompareOptions(threshold=0.2, antialiasing=False, diff_threshold=0.01),
        base_source="builds/<base>",
        head_source="builds/head & co",
        stats={"elapsed_seconds": 1.5, "blobs_fetched": 9},
    )


def one_pixel_change(tmp_path: Path, size: tuple[int, int], at: tuple[int, int]) -> Path:
    """Compare two folders whose one image differs in the pixel ``at``; return report.html."""
    base, head, out_dir = tmp_path / "base", tmp_path / "head", tmp_path / "out"
    base.mkdir()
    head.mkdir()
    image = Image.new("RGB", size, BACKGROUND)
    image.save(base / "screen.png")
    image.putpixel(at, CHANGED_COLOUR)
    image.save(head / "screen.png")
    options = CompareOptions()
    resources = Resources(workers=1, fetch_workers=1)
    comparison = compare_builds(base, head, out_dir=out_dir, options=options, resources=resources)
    return write_reports(comparison, out_dir)["html"]


def decode_data_uri(src: str) -> Image.Image:
    assert src.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))


def errored(names: list[str], detail: str) -> Comparison:
    """A comparison of images that all errored, each with ``detail`` formatted with its name."""
    return Comparison(
        images={
            name: ImageResult(name, Status.ERRORED, reason=Reason.IMAGE_PROCESSING_FAILED,
                              detail=detail.format(name))
            for name in names
        },
        options=CompareOptions(),
    )


class Page(HTMLParser):
    """The tags, attributes and texts of an HTML page, as a browser's tokenizer sees them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.names: list[str] = []
        self.title = ""
        self.scripts: list[str] = []
        self.texts: list[str] = []
        self._capture: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        classes = (attributes.get("class") or "").split()
        if tag == "span" and "name" in classes:
            self._capture = "name"
            self.names.append("")
        elif tag == "title":
            self._capture = "title"
        elif tag == "script":
            self._capture = "script"
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("span", "title", "script"):
            self._capture = None

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        if self._capture == "name":
            self.names[-1] += data
        elif self._capture == "title":
            self.title += data
        elif self._capture == "script":
            self.scripts[-1] += data

    def find(self, tag: str) -> list[dict[str, str | None]]:
        return [attributes for name, attributes in self.tags if name == tag]

    def report_data(self) -> dict:
        [block] = [
            attributes for name, attributes in self.tags
            if name == "script" and attributes.get("type") == "application/json"
        ]
        assert block["id"] == "report-data"
        return json.loads(next(s for s in self.scripts if s.startswith("{")))
