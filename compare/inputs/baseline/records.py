"""Builds recorded by commit: where a build's manifest and its record live in the store, and
how they are written and read.

Layout, relative to the store's prefix (``<commit>`` is the full lowercase hex commit id)::

    builds/<commit>/manifest.json   the build's manifest (Sentry's format), unless the
                                    uploader named another key for it
    builds/<commit>/build.json      the build's record: {"commit", "branch", "selective",
                                    "uploaded_at", "manifest_key", "manifest_sha256"}

The record is small and sits at a key known from the commit alone, so whether many commits have
builds costs one read per commit and no listing of the store. It is written after the manifest,
so a record never names a manifest that is not there yet. Recording a commit again replaces its
manifest and record: the latest build of a commit is its build. The record holds its manifest's
sha256, so a manifest key that another build has written over since (a fixed key shared by
commits) is told, never read as this commit's build.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fetchers import (
    BatchPrefetcher,
    BatchUploader,
    BlobFetcher,
    BlobNotFound,
    BlobWriter,
    StoreError,
)
from fetchers.keys import check_key
from fetchers.protocol import connection_limit, describe_store

from ...model import InputError, parameter
from ..manifest import Manifest, ManifestError, manifest_text, parse_manifest

BUILDS_PREFIX = "builds"
"""The folder, under the store's prefix, that holds one folder per recorded commit."""

RECORD_NAME = "build.json"
MANIFEST_NAME = "manifest.json"
CONTENT_TYPE = "application/json"

MAX_RECORD_BYTES = 64 * 1024
"""Most bytes a build record may have; a larger blob under a record's key is refused."""

DEFAULT_LOOKUP_WORKERS = 8
"""Concurrent reads when looking up many commits, unless the store's connection pool is smaller."""

_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BaselineError(InputError):
    """A base build cannot be found or read; the message names the commit, key or store at fault."""


def check_commit(commit: str, name: str = "commit") -> str:
    """``commit`` in lowercase when it is a full commit id (40 hex digits, or 64 for SHA-256
    repositories); else `BaselineError`, calling it ``name``. Abbreviated ids are refused: a
    key must not depend on how much of the id was given."""
    normalized = commit.lower() if isinstance(commit, str) else ""
    if _COMMIT.fullmatch(normalized) is None:
        raise BaselineError(f"{name} {commit!r}: expected a full commit id (40 or 64 hex digits)")
    return normalized


def check_branch(branch: str, name: str = "branch") -> str:
    """``branch`` when it is a non-empty name without control characters; else `BaselineError`,
    calling it ``name``."""
    if not branch or any(ord(c) < 32 or ord(c) == 127 for c in branch):
        raise BaselineError(f"{name} {branch!r}: expected a non-empty name without control characters")
    return branch


def record_key(commit: str) -> str:
    """The key of ``commit``'s build record: ``builds/<commit>/build.json``."""
    return f"{BUILDS_PREFIX}/{check_commit(commit)}/{RECORD_NAME}"


def default_manifest_key(commit: str) -> str:
    """The key of ``commit``'s manifest unless its uploader named another: ``builds/<commit>/manifest.json``."""
    return f"{BUILDS_PREFIX}/{check_commit(commit)}/{MANIFEST_NAME}"


def is_complete(manifest: Manifest) -> bool:
    """Whether a build's manifest holds all its images, by Sentry's rule: not ``selective`` and no
    declared names (a build that lists or patterns its names uploaded only some of them)."""
    return not manifest.selective and manifest.declared_names() is None


def manifest_json(manifest: Manifest) -> bytes:
    """The manifest as stored: `manifest_text`, in UTF-8."""
    return manifest_text(manifest).encode()


@dataclass(frozen=True)
class BuildRecord:
    """What the store keeps about one commit's build.

    ``selective`` is true when the build's manifest is not complete (see `is_complete`);
    ``uploaded_at`` is an ISO 8601 UTC time; ``manifest_key`` is where its manifest is, and
    ``manifest_sha256`` the sha256 of the manifest's bytes as written there (None in a record
    that does not say: it is then read unchecked).
    """

    commit: str
    branch: str | None
    selective: bool
    uploaded_at: str
    manifest_key: str
    manifest_sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as stored."""
        return {"commit": self.commit, "branch": self.branch, "selective": self.selective,
                "uploaded_at": self.uploaded_at, "manifest_key": self.manifest_key,
                "manifest_sha256": self.manifest_sha256}


def record_build(
    store: BlobWriter,
    commit: str,
    manifest: Manifest,
    *,
    branch: str | None = None,
    manifest_key: str | None = None,
    uploaded_at: datetime | None = None,
) -> BuildRecord:
    """Store ``manifest`` as ``commit``'s build and record it; return the record.

    The manifest goes under ``manifest_key`` (default `default_manifest_key`), then the record
    under `record_key`; each replaces what was there, so recording a commit again is harmless.
    Whether the build is selective is read from the manifest (`is_complete`). ``uploaded_at``
    defaults to now. Writes are retried as `fetchers.BatchUploader` retries them. Raises
    `BaselineError` naming the parameter (`compare.model.parameter`) for a bad commit, branch or
    key, the `fetchers.WriteError` of a write that failed, `fetchers.StoreUnavailable` when the
    store cannot be used.
    """
    commit = check_commit(commit, parameter("commit"))
    if branch is not None:
        check_branch(branch, parameter("branch"))
    key = default_manifest_key(commit) if manifest_key is None else manifest_key
    try:
        check_key(key)
    except StoreError as exc:
        raise BaselineError(f"{parameter('manifest_key')} {key!r}: {exc.message}") from None
    when = (uploaded_at or datetime.now(UTC)).astimezone(UTC)
    stored = manifest_json(manifest)
    record = BuildRecord(commit, branch, not is_complete(manifest), when.isoformat(timespec="seconds"), key,
                         hashlib.sha256(stored).hexdigest())
    with BatchUploader(store, max_workers=1) as uploader:
        for blob_key, data in ((key, stored),
                               (record_key(commit), json.dumps(record.to_json(), indent=2).encode() + b"\n")):
            result = uploader.upload_all({blob_key: data}, content_type=CONTENT_TYPE, skip_existing=False)
            if result.errors:
                raise result.errors[blob_key]
    return record


def read_builds(
    store: BlobFetcher, commits: Iterable[str], *, max_workers: int = DEFAULT_LOOKUP_WORKERS
) -> dict[str, BuildRecord]:
    """The build records of those ``commits`` that have one, by commit.

    One read per commit, run concurrently (at most ``max_workers``, and no more than the
    store's connection pool) and retried as `fetchers.BatchPrefetcher` retries; a missing
    record means no build. Raises `BaselineError` naming the commits whose records could not
    be read or are malformed, `fetchers.StoreUnavailable` when the store cannot be used.
    """
    keys = {record_key(commit): check_commit(commit) for commit in commits}
    found, failed = _fetch(store, keys, max_workers, missing_ok=True)
    records: dict[str, BuildRecord] = {}
    for key, data in found.items():
        try:
            records[keys[key]] = _parse_record(keys[key], data)
        except ValueError as exc:
            failed[key] = str(exc)
    if failed:
        raise _read_failure("build record", failed, keys, store)
    return records


def read_manifests(
    store: BlobFetcher, records: Iterable[BuildRecord], *, max_workers: int = DEFAULT_LOOKUP_WORKERS
) -> dict[str, Manifest]:
    """The manifests of the builds ``records`` name, by commit, read concurrently as `read_builds`
    reads. Raises `BaselineError` naming the builds whose manifests are missing, unreadable,
    malformed or not the one their record names (another build wrote over its key since),
    `fetchers.StoreUnavailable` when the store cannot be used."""
    records = list(records)
    keys = {record.manifest_key: record.commit for record in records}
    found, failed = _fetch(store, keys, max_workers, missing_ok=False)
    for record in records:
        data = found.get(record.manifest_key)
        if data is not None and record.manifest_sha256 not in (None, found_sha := hashlib.sha256(data).hexdigest()):
            keys[record.manifest_key] = record.commit
            failed[record.manifest_key] = (
                f"not the manifest this commit recorded (sha256 {record.manifest_sha256[:12]}…, found "
                f"{found_sha[:12]}…): another build has written over the key since; record each commit's "
                "build under its own key (the default)")
    parsed: dict[str, Manifest] = {}
    for key, data in found.items():
        if key in failed:
            continue
        try:
            parsed[key] = parse_manifest(data, f"store:{key}")
        except ManifestError as exc:
            failed[key] = ": ".join(part for part in (exc.location, exc.message) if part)
    if failed:
        raise _read_failure("manifest", failed, keys, store)
    return {record.commit: parsed[record.manifest_key] for record in records}


def _fetch(
    store: BlobFetcher, keys: Mapping[str, str], max_workers: int, *, missing_ok: bool
) -> tuple[dict[str, bytes], dict[str, str]]:
    """The blobs under ``keys``, and why each of the others could not be read (with
    ``missing_ok``, a missing blob is left out of both)."""
    if not keys:
        return {}, {}
    workers = min(max_workers, len(keys), connection_limit(store) or max_workers)
    with BatchPrefetcher(store, max_workers=workers) as prefetcher:
        result = prefetcher.fetch_all(keys)
    failed = {key: error.message or type(error).__name__ for key, error in result.errors.items()
              if not (missing_ok and isinstance(error, BlobNotFound))}
    return result.blobs, failed


def _parse_record(commit: str, data: bytes) -> BuildRecord:
    if len(data) > MAX_RECORD_BYTES:
        raise ValueError(f"{len(data):,} bytes, more than a build record may have")
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ValueError("not a JSON build record") from None
    if not isinstance(value, dict) or value.get("commit") != commit:
        raise ValueError(f"not a build record of commit {commit}")
    branch, selective = value.get("branch"), value.get("selective")
    uploaded_at, manifest_key = value.get("uploaded_at"), value.get("manifest_key")
    manifest_sha256 = value.get("manifest_sha256")
    if not (branch is None or isinstance(branch, str)) or not isinstance(selective, bool) \
            or not isinstance(uploaded_at, str) or not isinstance(manifest_key, str):
        raise ValueError("a build record needs branch (a string or null), selective (true or false), "
                         "uploaded_at and manifest_key (strings)")
    if not (manifest_sha256 is None or isinstance(manifest_sha256, str) and _SHA256.fullmatch(manifest_sha256)):
        raise ValueError("a build record's manifest_sha256 is a sha256 (64 lowercase hex digits) or null")
    try:
        check_key(manifest_key)
    except StoreError as exc:
        raise ValueError(f"manifest_key {manifest_key!r}: {exc.message}") from None
    return BuildRecord(commit, branch, selective, uploaded_at, manifest_key, manifest_sha256)


_LISTED = 5


def _read_failure(what: str, failed: Mapping[str, str], commits: Mapping[str, str], store: object) -> BaselineError:
    shown = [f"commit {commits[key]}: {key}: {reason}" for key, reason in sorted(failed.items())[:_LISTED]]
    more = f"; and {len(failed) - _LISTED} more" if len(failed) > _LISTED else ""
    return BaselineError(f"cannot read the {what} of {len(failed)} build(s) in {describe_store(store)}: "
                         + "; ".join(shown) + more)
