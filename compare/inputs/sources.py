"""Where the two sides of a comparison come from: a manifest file or a folder of images."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fetchers import BlobFetcher, BlobNotFound, ClosableFetcher
from fetchers.protocol import connection_limit
from fetchers.backends.local import read_blob

from .manifest import Manifest, load_manifest, manifest_from_folder


class FolderFetcher(ClosableFetcher):
    """Serves blobs by content hash from the image files a folder manifest was built from."""

    def __init__(self, paths_by_hash: Mapping[str, Path]) -> None:
        self.paths = dict(paths_by_hash)

    def fetch(self, key: str) -> bytes:
        """Return the bytes of the file whose sha256 is ``key``."""
        path = self.paths.get(key)
        if path is None:
            raise BlobNotFound(key, "no image file in the input folders has this hash")
        return read_blob(key, path)


class _Chain:
    """Serves a blob from the input folder's files when it has it, else from the store."""

    def __init__(self, files: FolderFetcher, store: BlobFetcher) -> None:
        self._files = files
        self._store = store
        self.max_connections = connection_limit(store)

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


def open_side(spec: str | os.PathLike[str], *, role: str) -> Side:
    """Open ``spec`` (a manifest JSON file or a folder of images) as the ``role`` side.

    Raises ValueError naming the input when it is neither.
    """
    path = Path(spec)
    if path.is_dir():
        manifest, paths = manifest_from_folder(path)
        by_hash = {manifest.images[name].content_hash: file for name, file in paths.items()}
        return Side(manifest, FolderFetcher(by_hash), str(path))
    if path.is_file():
        return Side(load_manifest(path), None, str(path))
    raise ValueError(f"--{role} {str(spec)!r}: no such manifest file or image folder")


def combine_fetchers(base: Side, head: Side, store: BlobFetcher | None) -> BlobFetcher:
    """The fetcher that serves every blob of both sides.

    Raises ValueError when a side is a manifest file and no store is configured.
    """
    folders = [side.fetcher for side in (base, head) if side.fetcher is not None]
    if len(folders) < 2 and store is None:
        needs = [side.source for side in (base, head) if side.fetcher is None]
        raise ValueError(
            f"manifest {needs[0]!r} needs a blob store: pass --store URL or set SNAPCOMPARE_STORE"
        )
    files = FolderFetcher({key: path for folder in folders for key, path in folder.paths.items()})
    if store is None:
        return files
    return _Chain(files, store) if folders else store
