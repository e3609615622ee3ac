"""Sentry's names for a comparison's masks, and the per-image fields Sentry fills for diffed images.

Sentry stores a diff mask at ``{org}/{project}/{head_artifact_id}/{base_artifact_id}/diff/
{stem}.png`` and reports that key as ``diff_mask_key`` and the same key without
``{org}/{project}/`` as ``diff_mask_image_id``. ``stem`` is the image name with ``\\``
turned into ``/``, leading and trailing ``/`` stripped and everything after its last ``.``
dropped, so ``a.png`` and ``a.jpg`` share a stem (and, in Sentry, a mask).

The stem is Sentry's whatever the name: ``a//b.png``, ``./a.png`` or a name with a newline keep
the key Sentry would give them, which a store refuses; with ``--results-store`` only such an
image then errors (`compare.output.results_store`), since making its key valid would name a
mask Sentry's formula does not.

A local run writes masks under the output folder instead (`compare.output.artifacts`), and
its ``diff_mask_key`` is the mask's path relative to that folder (Sentry's model takes any
string there). ``diff_mask_image_id`` is Sentry's form whatever the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from ..classify import path_stem
from ..engine.chunks import ArtifactSink
from ..imaging.png import encode_mask
from ..model import CompareOptions, Comparison, ImageResult, Status, canvas_size
from .artifacts import ArtifactWriter


def mask_image_id(head_artifact_id: int, base_artifact_id: int, name: str) -> str:
    """Sentry's ``diff_mask_image_id`` of image ``name``."""
    return f"{head_artifact_id}/{base_artifact_id}/diff/{path_stem(name)}.png"


def fill_sentry_fields(comparison: Comparison, masks: ArtifactSink) -> Comparison:
    """Give every diffed image Sentry's ``diff_mask_key``, ``diff_mask_image_id`` and ``aligned_height``.

    Sentry writes a mask for ``unchanged`` diffs too (all zero); the engine writes masks only
    for changed pixels, so the empty ones are written here, through ``masks``. When ``masks``
    is the `ArtifactWriter` of an output folder, which then holds every mask and preview of the
    comparison, that folder becomes its `Comparison.artifacts_dir`.
    """
    folder = masks.out_dir.absolute() if isinstance(masks, ArtifactWriter) else comparison.artifacts_dir
    return replace(comparison, images=fill_images(comparison.images, comparison.options, masks),
                   artifacts_dir=folder)


def fill_images(
    images: Mapping[str, ImageResult], options: CompareOptions, masks: ArtifactSink
) -> dict[str, ImageResult]:
    """`fill_sentry_fields` for some of a comparison's ``images``, run with ``options``."""
    filled = dict(images)
    for name, result in filled.items():
        if result.status not in (Status.CHANGED, Status.UNCHANGED) or result.total_pixels is None:
            continue
        width, height = _canvas(result)
        key = result.diff_mask_key
        if key is None:
            key = masks.mask(name, encode_mask(np.zeros((height, width), dtype=bool)))
        filled[name] = replace(
            result,
            diff_mask_key=key,
            diff_mask_image_id=mask_image_id(options.head_artifact_id, options.base_artifact_id, name),
            aligned_height=height,
        )
    return filled


def _canvas(result: ImageResult) -> tuple[int, int]:
    return canvas_size((result.before_width or 0, result.before_height or 0),
                       (result.after_width or 0, result.after_height or 0))
