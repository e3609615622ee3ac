"""PNG decoders on Chromium's screenshots: median decode time per corpus category.

Run from the repository root (builds the corpus and benchmarks/.cache/venv when missing):

    .venv/bin/python -m benchmarks.bench_decode [--repeats 3] [--quick]

Decoders, each from the PNG bytes in memory to an HxWx4 uint8 RGBA array, checked pixel-equal to
Pillow's `convert("RGBA")` on every file:

- `compare.imaging.png.decode_png`: snapcompare's fast path (Wuffs compiled at install, straight
  into the array), and `decode_rgba`, the whole path (header read, then decode_png);
- pywuffs 2.0.1's `aux.ImageDecoder`, the same Wuffs through its C++ wrapper (a zero-filled
  buffer per image, then copied into numpy);
- imagecodecs `png_decode` (libpng) and `spng_decode` (libspng), which return RGB for RGB files:
  their RGBA expansion is timed too, as its own column;
- Pillow: `Image.open(...).convert("RGBA")` into an array;

Also prints how Chromium filtered its rows (share of rows per PNG filter type), which decides
how much work each row takes to undo.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks import corpus, peers

Decoder = Callable[[bytes], np.ndarray]


def to_rgba(pixels: np.ndarray) -> np.ndarray:
    """HxWx3 or HxWx4 uint8 to HxWx4 (opaque alpha added), as the diff needs."""
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        return pixels
    out = np.empty(pixels.shape[:2] + (4,), np.uint8)
    out[..., :3] = pixels
    out[..., 3] = 255
    return out


def decoders() -> tuple[dict[str, Decoder], dict[str, bool]]:
    """Name -> decoder giving the library's native output; name -> whether that needs to_rgba."""
    import imagecodecs
    import pywuffs
    from PIL import Image
    from pywuffs import aux

    from compare.imaging.decode import decode_rgba
    from compare.imaging.png import decode_png

    def pillow(data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGBA"))

    def fast(data: bytes) -> np.ndarray:
        pixels = decode_png(data)
        if pixels is None:
            raise ValueError("decode_png handed this PNG back (_wuffs not built or not its PNG)")
        return pixels

    config = aux.ImageDecoderConfig()
    config.enabled_decoders = [pywuffs.ImageDecoderType.PNG]
    config.pixel_format = pywuffs.PixelFormat.RGBA_NONPREMUL
    wrapper = aux.ImageDecoder(config)

    def through_pywuffs(data: bytes) -> np.ndarray:
        pixels: np.ndarray = wrapper.decode(data).pixbuf
        return pixels

    found: dict[str, Decoder] = {
        "snapcompare decode_png (Wuffs)": fast,
        "snapcompare decode_rgba (header, then decode_png)": decode_rgba,
        "pywuffs ImageDecoder (Wuffs)": through_pywuffs,
        "imagecodecs png_decode (libpng)": imagecodecs.png_decode,
        "imagecodecs spng_decode (libspng)": imagecodecs.spng_decode,
        "Pillow": pillow,
    }
    expands = {name: name.startswith("imagecodecs") for name in found}
    return found, expands


def filter_shares(data: bytes) -> Counter[int]:
    """Rows per PNG filter type of a non-interlaced 8-bit RGB/RGBA PNG."""
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    channels = {2: 3, 6: 4}[data[25]]
    idat, position = bytearray(), 8
    while position < len(data):
        length = int.from_bytes(data[position:position + 4], "big")
        if data[position + 4:position + 8] == b"IDAT":
            idat += data[position + 8:position + 8 + length]
        position += 12 + length
    raw = np.frombuffer(zlib.decompress(bytes(idat)), np.uint8).reshape(height, -1)
    assert raw.shape[1] == width * channels + 1
    return Counter(raw[:, 0].tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="decodes per file (median; 3)")
    parser.add_argument("--quick", action="store_true", help="three files per category")
    args = parser.parse_args()
    peers.ensure_python("benchmarks.bench_decode")
    pairs = corpus.load_pairs()
    files: dict[str, dict[Path, None]] = defaultdict(dict)
    for pair in pairs:
        category = pair["category"]
        sides = ("head",) if category == "identical pixels" else ("base", "head")
        for side in sides:
            files[category][corpus.CORPUS / pair[side]] = None
    if args.quick:
        args.repeats = 1
        files = defaultdict(dict, {c: dict.fromkeys(list(f)[:3]) for c, f in files.items()})
    found, expands = decoders()
    times: dict[str, dict[str, list[float]]] = {n: defaultdict(list) for n in found}
    expand_times: dict[str, dict[str, list[float]]] = {n: defaultdict(list) for n in found}
    unequal: dict[str, list[str]] = defaultdict(list)
    failed: dict[str, list[str]] = defaultdict(list)
    filters: dict[str, Counter[int]] = defaultdict(Counter)
    sizes: dict[str, list[float]] = defaultdict(list)
    start = time.perf_counter()
    for category, paths in files.items():
        for path in paths:
            data = path.read_bytes()
            filters[category] += filter_shares(data)
            reference = found["Pillow"](data)
            sizes[category].append(reference.shape[0] * reference.shape[1] / 1e6)
            for name, decode in found.items():
                samples, expand = [], []
                try:
                    for _ in range(args.repeats):
                        t0 = time.perf_counter()
                        pixels = decode(data)
                        t1 = time.perf_counter()
                        rgba = to_rgba(pixels) if expands[name] else pixels
                        t2 = time.perf_counter()
                        samples.append(t1 - t0)
                        expand.append(t2 - t1)
                except Exception as exc:  # noqa: BLE001 - reported in the table
                    failed[name].append(f"{path.name}: {exc}")
                    continue
                times[name][category].append(statistics.median(samples))
                expand_times[name][category].append(statistics.median(expand))
                if not np.array_equal(np.asarray(rgba), reference):
                    unequal[name].append(path.name)
        print(f"  {category}: {len(paths)} files ({time.perf_counter() - start:.0f} s)",
              file=sys.stderr)

    categories = [c for c in corpus.CATEGORIES if c in files]
    header = ["decoder"] + [
        f"{c} ({len(files[c])} files, {statistics.median(sizes[c]):.1f} MP)" for c in categories
    ] + ["vs Pillow (median of categories)", "pixel-equal to Pillow"]
    print(f"# PNG decode to RGBA, median ms per file, {args.repeats} decodes per file\n")
    print("| " + " | ".join(header) + " |")
    print("|---" + "|---:" * (len(header) - 1) + "|")
    pillow = {c: statistics.median(times["Pillow"][c]) for c in categories}
    summary = {}
    for name in found:
        cells, ratios = [], []
        for c in categories:
            if not times[name][c]:
                cells.append("failed")
                continue
            total = [a + b for a, b in zip(times[name][c], expand_times[name][c], strict=True)]
            median = statistics.median(total)
            ratios.append(pillow[c] / median)
            extra = statistics.median(expand_times[name][c]) if expands[name] else 0.0
            note = f" ({extra * 1000:.1f} to RGBA)" if expands[name] else ""
            cells.append(f"{median * 1000:.1f}{note}")
        equal = "failed: " + "; ".join(failed[name][:2]) if failed[name] else (
            "yes" if not unequal[name] else f"no ({len(unequal[name])} files)")
        speed = f"{statistics.median(ratios):.2f}x" if ratios else "-"
        print(f"| {name} | " + " | ".join(cells) + f" | {speed} | {equal} |")
        summary[name] = {c: statistics.median(times[name][c]) for c in categories
                         if times[name][c]}
    print("\nRows per PNG filter type (None/Sub/Up/Average/Paeth):")
    for c in categories:
        total = sum(filters[c].values())
        shares = " / ".join(f"{100 * filters[c][k] / total:.1f}%" for k in range(5))
        print(f"- {c}: {shares} of {total} rows")
    install = peers.CACHE / "bench-env-install.txt"
    if install.exists():
        print("\nbench env installs (the first one builds pywuffs, a peer here, from its sdist):\n"
              + install.read_text().strip())
    out = peers.CACHE / "results" / f"bench_decode-{time.strftime('%Y%m%d-%H%M')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"decode_s": summary, "unequal": unequal, "failed": failed,
                               "filters": {c: dict(v) for c, v in filters.items()}}, indent=1))
    print(f"\n(results: {out})")


if __name__ == "__main__":
    main()
