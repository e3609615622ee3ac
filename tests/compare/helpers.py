"""Helpers of the end-to-end tests: PNGs drawn from a seed, folders of them, the ``snapcompare``
command run in-process and what it wrote, and a snapshot of a folder's entries."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
from pathlib import Path

from PIL import Image, ImageDraw

from compare.cli import main


def png(seed: int, size: tuple[int, int] = (100, 100), *, compress_level: int = 6) -> bytes:
    """A PNG of coloured rectangles drawn from ``seed``: equal seeds give equal pixels."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = rng.randrange(size[0] - 10), rng.randrange(size[1] - 10)
        x1, y1 = rng.randrange(x0 + 5, size[0]), rng.randrange(y0 + 5, size[1])
        draw.rectangle((x0, y0, x1, y1), fill=tuple(rng.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=compress_level)
    return out.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_folder(root: Path, images: dict[str, bytes]) -> Path:
    for name, data in images.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def run(capsys, *args: str | Path) -> tuple[int, str, str]:
    """Run ``snapcompare`` with ``args`` in this process; return its exit code, stdout and stderr."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_comparison(out_dir: Path) -> dict:
    return json.loads((out_dir / "comparison.json").read_text())


def statuses(comparison: dict) -> dict[str, str]:
    return {name: image["status"] for name, image in comparison["images"].items()}


def snapshot(root: Path) -> dict[str, tuple[str, bytes | str, int]]:
    """Every entry under ``root``: kind, content (or link target) and inode."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            info = path.lstat()
            key = str(path.relative_to(root))
            if path.is_symlink():
                found[key] = ("link", os.readlink(path), info.st_ino)
            elif path.is_file():
                found[key] = ("file", path.read_bytes(), info.st_ino)
            else:
                found[key] = ("dir", "", info.st_ino)
    return found
