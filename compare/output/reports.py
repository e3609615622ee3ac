"""Writing a comparison's reports into the output folder, each file replaced atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .report_html import iter_html
from .report_json import render_json
from .report_junit import render_junit
from ..model import Comparison

REPORT_FILES = {"json": "comparison.json", "html": "report.html", "junit": "junit.xml"}
"""The file name of each report, by the key `write_reports` returns it under."""


def write_reports(comparison: Comparison, out_dir: Path) -> dict[str, Path]:
    """Write ``comparison.json``, ``report.html`` and ``junit.xml`` into ``out_dir``.

    The previews the comparison refers to are read from ``out_dir`` and embedded in the HTML.
    Returns each file's path by kind (``json``, ``html``, ``junit``). The three are replaced
    together: all are rendered to temporary files first and renamed over the old ones only when
    every one was written, so a failure leaves the previous set untouched and consistent.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: out_dir / name for kind, name in REPORT_FILES.items()}
    renders = {
        "json": lambda: [render_json(comparison)],
        "junit": lambda: [render_junit(comparison)],
        "html": lambda: (chunk.encode("utf-8") for chunk in iter_html(comparison, out_dir)),
    }
    staged: dict[str, Path] = {}
    try:
        for kind, render in renders.items():
            staged[kind] = _stage(paths[kind], render())
        for kind, temp in staged.items():
            os.replace(temp, paths[kind])
    finally:
        for temp in staged.values():
            temp.unlink(missing_ok=True)
    return paths


def _stage(path: Path, chunks: Iterable[bytes]) -> Path:
    """Write ``chunks`` to a new temporary file beside ``path`` (flushed to disk); return it."""
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            for chunk in chunks:
                file.write(chunk)
            file.flush()
            os.fsync(file.fileno())
        # mkstemp makes the file private to its owner; a report is meant to be shared.
        os.chmod(temp_name, 0o644)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return Path(temp_name)
