"""The JSON of a comparison kept in a results store: ``plan.json`` (the chunk assignments, the
decided images, the comparison's settings) and ``chunks/{i}.json`` (one chunk's judged images),
read back by `compare.output.results_store.finalize_from_store`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any

from ..engine.chunks import ChunkAssignment, ChunkCandidate, ChunkFailure, ChunkResult, ComparisonPlan
from ..imaging.decode import describe_error
from ..model import CompareOptions, ImageResult, Reason, Status, as_regions

SCHEMA_VERSION = 1
"""The version of ``plan.json``'s and its chunks' layout."""


def plan_to_json(plan: ComparisonPlan) -> dict[str, Any]:
    """``plan.json``'s data, as Sentry's ``ComparisonPlan`` has it (the artifact ids, the chunk
    assignments, the decided images) with snapcompare's own fields beside: the options and the
    builds' sources."""
    return {
        "head_artifact_id": plan.options.head_artifact_id,
        "base_artifact_id": plan.options.base_artifact_id,
        "schema_version": SCHEMA_VERSION,
        "chunks": [
            {
                "chunk_index": chunk.chunk_index,
                "candidates": [{**asdict(c), "pixel_count": c.pixel_count} for c in chunk.candidates],
                "mask_shadowed": list(chunk.mask_shadowed),
                "schema_version": SCHEMA_VERSION,
            }
            for chunk in plan.chunks
        ],
        "non_diff_images": _images_to_json(plan.non_diff_images),
        "options": asdict(plan.options),
        "base_source": plan.base_source,
        "head_source": plan.head_source,
    }


def plan_from_json(data: Mapping[str, Any]) -> ComparisonPlan:
    """The plan `plan_to_json` wrote. Raises ValueError when ``data`` is not one."""
    try:
        names = {f.name for f in fields(ChunkCandidate)}
        chunks = tuple(
            ChunkAssignment(
                int(chunk["chunk_index"]),
                tuple(ChunkCandidate(**{k: v for k, v in c.items() if k in names}) for c in chunk["candidates"]),
                tuple(str(name) for name in chunk.get("mask_shadowed", ())),
            )
            for chunk in data["chunks"]
        )
        return ComparisonPlan(
            chunks,
            _images_from_json(data["non_diff_images"]),
            CompareOptions(**data["options"]),
            str(data.get("base_source", "")),
            str(data.get("head_source", "")),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a comparison plan: {type(exc).__name__}: {exc}") from None


def chunk_result_to_json(result: ChunkResult) -> dict[str, Any]:
    """``chunks/{i}.json``'s data: the chunk's images (mask and preview bytes left out)."""
    return {"chunk_index": result.chunk_index, "images": _images_to_json(result.images)}


def chunk_result_from_json(data: Mapping[str, Any]) -> ChunkResult | ChunkFailure:
    """The chunk result `chunk_result_to_json` wrote, or an unreadable `ChunkFailure`."""
    try:
        return ChunkResult(int(data["chunk_index"]), _images_from_json(data["images"]))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return ChunkFailure(f"chunk result unreadable: {describe_error(exc)}", unreadable=True)


_IMAGE_FIELDS = [f.name for f in fields(ImageResult) if f.name != "name"]


def _images_to_json(images: Mapping[str, ImageResult]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, result in images.items():
        entry = {key: getattr(result, key) for key in _IMAGE_FIELDS}
        entry["bbox"] = list(result.bbox) if result.bbox is not None else None
        entry["previews"] = dict(result.previews) if result.previews is not None else None
        out[name] = entry
    return out


_CHANGE_FIELDS = {"change_group": str, "similar_change": str, "known_change": bool}


def _images_from_json(data: Mapping[str, Mapping[str, Any]]) -> dict[str, ImageResult]:
    images = {}
    for name, entry in data.items():
        values: dict[str, Any] = {key: entry.get(key) for key in _IMAGE_FIELDS}  # JSON values, checked below
        for key, kind in _CHANGE_FIELDS.items():
            if values[key] is not None and not isinstance(values[key], kind):
                raise ValueError(f"{name}: {key} must be a {kind.__name__} or null")
        values["status"] = Status(values["status"])
        if values["reason"] is not None:
            values["reason"] = Reason(values["reason"])
        if values["bbox"] is not None:
            values["bbox"] = tuple(values["bbox"])
        if values["ignore_regions"] is not None:
            values["ignore_regions"] = as_regions(values["ignore_regions"], f"{name}: ignore_regions")
        images[name] = ImageResult(name=name, **values)
    return images
