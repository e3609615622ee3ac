"""Writing a comparison's reports into the output folder, swapped in together with their files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from ..model import Comparison
from .artifacts import ArtifactWriter
from .report_html import iter_html
from .report_json import render_json
from .report_junit import render_junit

REPORT_FILES = {"json": "comparison.json", "html": "report.html", "junit": "junit.xml"}
"""The file name of each report, by the key `write_reports` returns it under."""


def write_reports(comparison: Comparison, out_dir: str | os.PathLike[str] | ArtifactWriter) -> dict[str, Path]:
    """Write ``comparison.json``, ``report.html`` and ``junit.xml`` into ``out_dir``.

    ``out_dir`` is a folder, or the `ArtifactWriter` that wrote the run's masks and previews
    (which then keeps its lock from the run through the reports). The masks and previews the
    comparison refers to that ``out_dir`` lacks are copied from the comparison's
    `Comparison.artifacts_dir` (the folder `compare.builds.compare_builds` wrote them into), so the
    reports can go into another folder than the run's; one that is in neither folder raises
    FileNotFoundError naming it, and nothing is written. The HTML lists the previews of
    ``out_dir`` once each: embedded when together they fit `report_html.INLINE_BUDGET`, else
    files beside it that the page loads as they come into view. Returns each file's path by
    kind (``json``, ``html``, ``junit``). The three are replaced together: all are rendered to
    temporary files first and renamed over the old ones only when every one was written, so a
    failure leaves the previous set untouched and consistent. Masks and previews the new
    reports do not refer to are deleted afterwards.
    """
    if isinstance(out_dir, ArtifactWriter):
        return _write(comparison, out_dir)
    with ArtifactWriter(out_dir) as writer:
        return _write(comparison, writer)


def _write(comparison: Comparison, writer: ArtifactWriter) -> dict[str, Path]:
    out_dir = writer.out_dir
    if comparison.artifacts_dir is not None:
        writer.gather(_referenced(comparison), comparison.artifacts_dir)
    renders = {
        REPORT_FILES["json"]: lambda: [render_json(comparison)],
        REPORT_FILES["junit"]: lambda: [render_junit(comparison)],
        REPORT_FILES["html"]: lambda: (chunk.encode("utf-8") for chunk in iter_html(comparison, out_dir)),
    }
    writer.commit(renders, referenced=_referenced(comparison))
    return {kind: out_dir / name for kind, name in REPORT_FILES.items()}


def _referenced(comparison: Comparison) -> Iterator[str]:
    for result in comparison.images.values():
        if result.diff_mask_key is not None:
            yield result.diff_mask_key
        yield from (result.previews or {}).values()
