"""Writing a comparison's reports into the output folder, each file replaced atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .report_html import iter_html
from .report_json import render_json
from .report_junit import render_junit
from .results import Comparison

REPORT_FILES = {"json": "comparison.json", "html": "report.html", "junit": "junit.xml"}
"""The file name of each report, by the key `write_reports` returns it under."""


def write_reports(comparison: Comparison, out_dir: Path) -> dict[str, Path]:
    """Write ``comparison.json``, ``report.html`` and ``junit.xml`` into ``out_dir``.

    The previews the comparison refers to are read from ``out_dir`` and embedded in the HTML.
    Returns each file's path by kind (``json``, ``html``, ``junit``). A reader never sees a
    half-written report: each is written to a temporary file first and renamed over the old.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: out_dir / name for kind, name in REPORT_FILES.items()}
    write_atomic(paths["json"], [render_json(comparison)])
    write_atomic(paths["junit"], [render_junit(comparison)])
    write_atomic(paths["html"], (chunk.encode("utf-8") for chunk in iter_html(comparison, out_dir)))
    return paths


def write_atomic(path: Path, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to ``path`` through a temporary file in the same folder, then rename.

    On any failure the temporary file is removed and ``path`` is left as it was.
    """
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            for chunk in chunks:
                file.write(chunk)
            file.flush()
            os.fsync(file.fileno())
        # mkstemp makes the file private to its owner; a report is meant to be shared.
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise

