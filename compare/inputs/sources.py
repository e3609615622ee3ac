"""Where the two sides of a comparison come from: a manifest file, a manifest in the store, a
folder of images, or a manifest already read (such as the base build found in git history).

A spec starting with ``store:`` names a key in the blob store (``store:1/2/42/manifest.json``),
read with the store's ``fetch``; any other spec is a local path (write ``./store:x`` for a
local file of that name).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fetchers import BatchPrefetcher, BlobFetcher, BlobNotFound, ClosableFetcher
from fetchers.backends.local import read_blob
from fetchers.files import FileTooLarge, NotRegularFile, read_regular_file, too_large
from fetchers.protocol import connection_limit, describe_store

from ..model import parameter
from .manifest import MAX_MANIFEST_BYTES, Manifest, manifest_from_folder, parse_manifest

STORE_PREFIX = "store:"

MAX_INPUT_BYTES = 256 * 1024**2
"""Most bytes `read_input` reads from a file or the store unless told otherwise (256 MiB: an
approved ``comparison.json`` of two builds at `compare.inputs.manifest.MAX_MANIFEST_IMAGES`
has about 90 MB and decodes in about 0.4 GB); manifests have their own lower bound."""


class FolderFetcher(ClosableFetcher):
    """Serves blobs by content hash from the image files a folder manifest was built from; a
    file over ``max_blob_bytes`` is refused unread, as a store's blob is."""

    def __init__(self, paths_by_hash: Mapping[str, Path], max_blob_bytes: int | None = None) -> None:
        self.paths = dict(paths_by_hash)
        self.max_blob_bytes = max_blob_bytes

    def fetch(self, key: str) -> bytes:
        """Return the bytes of the file whose sha256 is ``key``."""
        path = self.paths.get(key)
        if path is None:
            raise BlobNotFound(key, "no image file in the input folders has this hash")
        return read_blob(key, path, self.max_blob_bytes)


class _Chain:
    """Serves a blob from the input folder's files when it has it, else from the store."""

    def __init__(self, files: FolderFetcher, store: BlobFetcher) -> None:
        self._files = files
        self._store = store
        self.max_connections = connection_limit(store)
        interrupt = getattr(store, "interrupt", None)
        if interrupt is not None:  # the store's requests stay interruptible (see `BlobFetcher`)
            self.interrupt = interrupt

    def fetch(self, key: str) -> bytes:
        if key in self._files.paths:
            return self._files.fetch(key)
        return self._store.fetch(key)


@dataclass(frozen=True)
class Side:
    """One side of a comparison: its manifest and, for a folder, a fetcher of its files."""

    manifest: Manifest
    fetcher: FolderFetcher | None
    source: str


def open_side(
    spec: str | os.PathLike[str] | Manifest,
    *,
    role: str,
    store: BlobFetcher | None = None,
    require_sizes: bool = True,
    follow_symlinks: bool = False,
    max_blob_bytes: int | None = None,
) -> Side:
    """Open ``spec`` (a manifest JSON file, ``store:KEY``, a folder of images, or a `Manifest`
    already read, whose blobs are in the store) as the ``role`` side.

    ``require_sizes`` and ``follow_symlinks`` are passed on to the manifest parser and the
    folder reader, ``max_blob_bytes`` to a folder's `FolderFetcher`; a `Manifest` is taken as
    it is. Raises ValueError naming the input when it
    is none of these or cannot be read (`ManifestError` when it is malformed), OSError when a
    local file fails.
    """
    if isinstance(spec, Manifest):
        return Side(spec, None, spec.source)
    text = os.fspath(spec)
    path = Path(spec)
    if not text.startswith(STORE_PREFIX) and path.is_dir():
        manifest, paths = manifest_from_folder(path, follow_symlinks=follow_symlinks)
        by_hash = {manifest.images[name].content_hash: file for name, file in paths.items()}
        return Side(manifest, FolderFetcher(by_hash, max_blob_bytes), str(path))
    data, source = read_input(spec, store, parameter(role), what="manifest file or image folder",
                              max_bytes=MAX_MANIFEST_BYTES)
    return Side(parse_manifest(data, source, require_sizes=require_sizes), None, source)


def read_input(
    spec: str | os.PathLike[str],
    store: BlobFetcher | None,
    setting: str,
    *,
    what: str = "file",
    max_bytes: int = MAX_INPUT_BYTES,
) -> tuple[bytes, str]:
    """The bytes of ``spec``, a local file or ``store:KEY``, and the name to report them by.

    A store key is fetched as blobs are (`fetchers.BatchPrefetcher`: retryable failures such
    as 429, 503, resets and truncated bodies retried with backoff, within a retry budget and
    the fetch deadline). A local file must be a regular file (`fetchers.files`). Either holds
    at most ``max_bytes`` (a local file's size is checked before it is read).

    ``setting`` (such as ``head``, see `compare.model.parameter`) and ``what`` word the errors, which are ValueErrors
    naming the key and its store (as `fetchers.protocol.describe_store` does: never a
    credential) or the path; OSError when a local file exists but cannot be read.
    """
    text = os.fspath(spec)
    if text.startswith(STORE_PREFIX):
        if store is None:
            raise ValueError(f"{setting} {text!r}: a store key needs a blob store: pass {parameter('store')}")
        data = _fetch_input(store, text[len(STORE_PREFIX):], f"{setting} {text!r}")
        if len(data) > max_bytes:
            raise ValueError(f"{setting} {text!r}: {too_large(len(data), max_bytes)}")
        return data, text
    try:
        return read_regular_file(spec, max_bytes), text
    except (FileNotFoundError, NotADirectoryError):
        raise ValueError(f"{setting} {text!r}: no such {what}") from None
    except (NotRegularFile, FileTooLarge) as exc:  # there, but a folder, a FIFO, a device; or too large
        raise ValueError(f"{setting} {text!r}: {exc.strerror}") from None


def _fetch_input(store: BlobFetcher, key: str, named: str) -> bytes:
    """The blob under ``key``, fetched with retries; ValueError starting with ``named`` if it fails."""
    with BatchPrefetcher(store, max_workers=1, fail_fast_after=0) as prefetcher:  # one key: its own error
        result = prefetcher.fetch_all([key])
    if key in result.blobs:
        return result.blobs[key]
    error = result.errors[key]
    raise ValueError(f"{named}: {error.message or 'cannot be fetched'} (in {error.store or describe_store(store)})")


def combine_fetchers(base: Side, head: Side, store: BlobFetcher | None) -> BlobFetcher:
    """The fetcher that serves every blob of both sides.

    Raises ValueError when a side is a manifest file and no store is configured.
    """
    folders = [side.fetcher for side in (base, head) if side.fetcher is not None]
    if len(folders) < 2 and store is None:
        needs = [side.source for side in (base, head) if side.fetcher is None]
        raise ValueError(
            f"manifest {needs[0]!r} needs a blob store: pass {parameter('store')}"
        )
    limits = [folder.max_blob_bytes for folder in folders if folder.max_blob_bytes is not None]
    files = FolderFetcher({key: path for folder in folders for key, path in folder.paths.items()},
                          min(limits, default=None))
    if store is None:
        return files
    return _Chain(files, store) if folders else store
