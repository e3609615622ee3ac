"""Blobs stored as files under one folder."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, unquote

from ..errors import BlobNotFound, FetchError
from ..keys import check_key
from ..protocol import ClosableFetcher
from ..registry import NETWORK_OPTIONS


class LocalFetcher(ClosableFetcher):
    """Reads ``<root>/<key>``; a key that would leave the root is refused before any read.

    ``..`` segments, absolute keys and symlinks that resolve outside the root raise a
    non-retryable `FetchError`. Thread-safe: it holds no state but the root.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        path = Path(root)
        if not path.is_dir():
            raise ValueError(f"local store {str(path)!r} is not a folder")
        self.root = path.resolve()

    @classmethod
    def from_url(cls, parts: SplitResult, **options: Any) -> LocalFetcher:
        """The fetcher of a ``file:///abs/dir`` URL (percent-encoded path)."""
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file store URL must name a local path, not host {parts.netloc!r}")
        return cls.from_path(Path(unquote(parts.path)), **options)

    @classmethod
    def from_path(cls, path: Path, **options: Any) -> LocalFetcher:
        """The fetcher of folder ``path``; network options are accepted and ignored."""
        unknown = set(options) - set(NETWORK_OPTIONS)
        if unknown:
            raise ValueError(f"file store takes no options {sorted(unknown)}")
        return cls(path)

    def __repr__(self) -> str:
        return f"LocalFetcher({str(self.root)!r})"

    def fetch(self, key: str) -> bytes:
        """Return the bytes of the file ``<root>/<key>``."""
        check_key(key)
        try:
            path = (self.root / key).resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop raises RuntimeError before 3.13
            raise FetchError(key, "key cannot be resolved (symlink loop?)") from exc
        if not path.is_relative_to(self.root):
            raise FetchError(key, "key resolves outside the store root")
        return read_blob(key, path)


def read_blob(key: str, path: Path) -> bytes:
    """Read the file ``path`` that holds blob ``key``, mapping OS errors to fetch errors."""
    try:
        with open(path, "rb") as file:
            return file.read()
    except FileNotFoundError as exc:
        raise BlobNotFound(key) from exc
    except IsADirectoryError as exc:
        raise FetchError(key, "key names a folder, not a blob") from exc
    except PermissionError as exc:
        raise FetchError(key, "permission denied") from exc
    except OSError as exc:
        transient = exc.errno in (errno.EIO, errno.EAGAIN, errno.EINTR, errno.ESTALE)
        raise FetchError(key, f"read failed: {exc.strerror}", retryable=transient) from exc
