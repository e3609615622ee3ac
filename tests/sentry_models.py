"""Sentry's snapshot manifest and comparison models, re-declared for conformance tests.

This is our own pydantic v2 transcription of the models in getsentry/sentry
``src/sentry/preprod/snapshots/manifest.py`` at commit
9cce492a6e1908674e9133588dce653afa479f77 (Sentry writes them with pydantic's v1-style
``Config``/``validator`` API on pydantic 2; the behaviour below is the same). It exists so tests
can check that what snapcompare reads and writes validates the way Sentry would validate it::

    SnapshotManifest.model_validate(json.loads(manifest_bytes))
    ComparisonManifest.model_validate(json.loads(comparison_bytes))

Rules worth knowing (all from that file):

- ``ImageMetadata``: ``content_hash`` (any string), ``width`` and ``height`` are required, the
  sizes ``>= 0``; ``diff_threshold`` in ``[0, 1)``; ``tags`` is coerced (a list becomes
  ``{tag: tag}``, a dict's keys and values become strings, anything else becomes ``None``);
  ``canvas_theme`` other than ``"light"``/``"dark"`` becomes ``None``; unknown fields are
  kept (``extra="allow"``).
- ``SnapshotManifest``: only ``images`` is required; unknown top-level fields are dropped
  (pydantic's default ``extra="ignore"``). ``diff_threshold`` in ``[0, 1)``.
- ``ComparisonManifest``: ``head_artifact_id``, ``base_artifact_id``, ``summary`` and ``images``
  are required; ``ComparisonSummary.skipped`` defaults to 0, every other count is required.

``SnapshotManifestWithRegex`` is the variant of ``SnapshotManifest`` found in another stored
version of the same file (``all_image_file_names_as_regex``, mutually exclusive with
``all_image_file_names``; patterns compiled with RE2 and matched with ``fullmatch``). The
matcher here uses Python's ``re``, which accepts a few constructs RE2 rejects
(backreferences, lookaround); tests that depend on that difference must not use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Status = Literal["added", "removed", "changed", "unchanged", "errored", "renamed", "skipped"]


class ImageMetadata(BaseModel):
    """One entry of a snapshot manifest's ``images`` (keyed by image file name)."""

    model_config = ConfigDict(extra="allow")

    content_hash: str
    display_name: str | None = None
    group: str | None = None
    width: int = Field(ge=0)
    height: int = Field(ge=0)
    diff_threshold: float | None = Field(default=None, ge=0.0, lt=1.0)
    description: str | None = None
    tags: dict[str, str] | None = None
    canvas_theme: Literal["light", "dark"] | None = None

    @field_validator("tags", mode="before")
    @classmethod
    def _coerce_tags(cls, value: object) -> dict[str, str] | None:
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        if isinstance(value, list):
            return {str(tag): str(tag) for tag in value}
        return None

    @field_validator("canvas_theme", mode="before")
    @classmethod
    def _coerce_canvas_theme(cls, value: object) -> str | None:
        return value if value in ("light", "dark") else None


class SnapshotManifest(BaseModel):
    """A build's snapshot manifest, as stored at ``{org}/{project}/{artifact_id}/manifest.json``."""

    images: dict[str, ImageMetadata]
    diff_threshold: float | None = Field(default=None, ge=0.0, lt=1.0)
    selective: bool = False
    all_image_file_names: list[str] | None = None


class SnapshotManifestWithRegex(SnapshotManifest):
    """The manifest variant that also accepts ``all_image_file_names_as_regex``."""

    all_image_file_names_as_regex: list[str] | None = None

    @model_validator(mode="after")
    def _declared_sets_are_exclusive(self) -> SnapshotManifestWithRegex:
        if self.all_image_file_names is not None and self.all_image_file_names_as_regex is not None:
            raise ValueError(
                "all_image_file_names and all_image_file_names_as_regex are mutually exclusive"
            )
        return self

    def head_image_name_matcher(self) -> Callable[[str], bool] | None:
        """Whether a name is in the head's declared image set; None when none was declared."""
        if self.all_image_file_names is not None:
            return set(self.all_image_file_names).__contains__
        if self.all_image_file_names_as_regex is not None:
            compiled = [re.compile(pattern) for pattern in self.all_image_file_names_as_regex]
            return lambda name: any(pattern.fullmatch(name) for pattern in compiled)
        return None


class ComparisonImageResult(BaseModel):
    """One image of ``comparison.json``, keyed by its (head, or for removed/skipped base) name."""

    status: Status
    head_hash: str | None = None
    base_hash: str | None = None
    changed_pixels: int | None = None
    total_pixels: int | None = None
    diff_mask_key: str | None = None
    diff_mask_image_id: str | None = None
    before_width: int | None = None
    before_height: int | None = None
    after_width: int | None = None
    after_height: int | None = None
    aligned_height: int | None = None
    reason: str | None = None
    previous_image_file_name: str | None = None


class ComparisonSummary(BaseModel):
    total: int
    changed: int
    unchanged: int
    added: int
    removed: int
    errored: int
    renamed: int
    skipped: int = 0


class ComparisonManifest(BaseModel):
    """``comparison.json``: the result of comparing a head build with its base build."""

    head_artifact_id: int
    base_artifact_id: int
    summary: ComparisonSummary
    images: dict[str, ComparisonImageResult]


class ChunkCandidate(BaseModel):
    """One pixel diff to run: a name whose head and base hashes differ."""

    name: str
    head_hash: str
    base_hash: str
    pixel_count: int
    diff_threshold: float
    kind: Literal["base", "sibling"] = "base"


class ChunkAssignment(BaseModel):
    chunk_index: int
    candidates: list[ChunkCandidate]
    schema_version: Literal[1, 2] = 1
    diff_algorithm_version: int = 1


class ComparisonPlan(BaseModel):
    """``plan.json``: the diff chunks and every result that needs no pixel diff."""

    head_artifact_id: int
    base_artifact_id: int
    chunks: list[ChunkAssignment]
    non_diff_images: dict[str, ComparisonImageResult]
    sibling_artifact_id: int | None = None
    sibling_comparison_key: str | None = None
    sibling_fingerprints: list[tuple[str, str, str | None, str | None]] | None = None
    schema_version: Literal[1, 2] = 1
    diff_algorithm_version: int = 1


class ChunkResult(BaseModel):
    """``chunks/{chunk_index}.json``: the results of one chunk's diffs."""

    chunk_index: int
    images: dict[str, ComparisonImageResult]
    sibling_images: dict[str, ComparisonImageResult] = {}


class ImageFingerprint(NamedTuple):
    """What approval carry-over compares per image: (name, status, head_hash, previous name)."""

    name: str
    status: str
    head_hash: str | None = None
    previous_image_file_name: str | None = None
