"""Blobs stored as files under one folder."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, unquote

from ..errors import BlobNotFound, FetchError, WriteError, blob_too_large
from ..files import FileTooLarge, NotRegularFile, open_regular_file, read_regular_file
from ..keys import check_key
from ..protocol import ClosableFetcher, StoredBlob, check_max_blob_bytes, names_store
from ..registry import NETWORK_OPTIONS

# Errors worth trying again: the same call may well succeed in a moment.
_TRANSIENT_ERRNOS = (errno.EIO, errno.EAGAIN, errno.EINTR, errno.ESTALE)


class LocalFetcher(ClosableFetcher):
    """Reads and writes ``<root>/<key>``; a key that would leave the root is refused first.

    Reads: ``..`` segments, absolute keys and symlinks that resolve outside the root raise a
    non-retryable `FetchError`. Writes (`put`) never follow a symlink at all: every folder on
    the way is opened with ``O_NOFOLLOW`` relative to the one before (created if missing),
    and the blob is written to a temporary file in its folder and renamed over the key, so a
    reader sees the old blob or the new one, never part of one. The content type is not kept.
    Thread-safe: it holds no state but the root.

    ``root`` must be a folder, unless ``create`` (a store opened for writing, such as a results
    store): then a root that does not exist yet is made on the first `put`, parents included,
    the missing folders the way a key's are (``O_NOFOLLOW``, so a symlink planted there in
    the meantime is refused, not followed). Until then reads find no blob.

    ``max_blob_bytes``: a larger blob is refused (a non-retryable `FetchError`) without being
    read, as every backend does.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, create: bool = False, max_blob_bytes: int | None = None
    ) -> None:
        path = Path(root)
        self.max_blob_bytes = check_max_blob_bytes(max_blob_bytes)
        self._missing: tuple[str, ...] = ()
        if path.is_dir():
            self._base = path.resolve()
        elif create and not os.path.lexists(path):
            base, self._missing = _split_missing(path)
            self._base = base.resolve()
        else:
            raise ValueError(f"local store {str(path)!r} is not a folder")
        self.root = self._base.joinpath(*self._missing)
        self.store_url = self.root.as_uri()

    @classmethod
    def from_url(cls, parts: SplitResult, **options: Any) -> LocalFetcher:
        """The fetcher of a ``file:///abs/dir`` URL (percent-encoded path)."""
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file store URL must name a local path, not host {parts.netloc!r}")
        return cls.from_path(Path(unquote(parts.path)), **options)

    @classmethod
    def from_path(
        cls, path: Path, *, create: bool = False, max_blob_bytes: int | None = None, **options: Any
    ) -> LocalFetcher:
        """The fetcher of folder ``path`` (made on first write with ``create``); network
        options are accepted and ignored."""
        unknown = set(options) - set(NETWORK_OPTIONS)
        if unknown:
            raise ValueError(f"file store takes no options {sorted(unknown)}")
        return cls(path, create=create, max_blob_bytes=max_blob_bytes)

    def __repr__(self) -> str:
        return f"LocalFetcher({str(self.root)!r})"

    @names_store
    def fetch(self, key: str) -> bytes:
        """Return the bytes of the file ``<root>/<key>``."""
        return read_blob(key, self._resolve(key), self.max_blob_bytes)

    @names_store
    def exists(self, key: str) -> bool:
        """Whether ``<root>/<key>`` is a file (a symlink inside the root to one counts)."""
        return self._resolve(key).is_file()

    @names_store
    def stat(self, key: str) -> StoredBlob | None:
        """The blob under ``key`` as it is stored: its size and the sha256 of its bytes (the
        file is read and hashed: a local store's checksum is its content); None if absent."""
        try:
            with open_regular_file(self._resolve(key)) as file:
                digest = hashlib.file_digest(file, "sha256").hexdigest()
                return StoredBlob(size=file.tell(), sha256=digest)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _read_error(key, exc) from exc

    @names_store
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Write ``data`` to ``<root>/<key>`` atomically, creating folders on the way (and the
        root's missing folders, when it was opened with ``create``)."""
        *folders, name = check_key(key, WriteError).split("/")
        try:
            fd = os.open(self._base, os.O_RDONLY | os.O_DIRECTORY)
            for folder in (*self._missing, *folders):
                fd = _enter_folder(fd, folder)
            try:
                _replace_file(fd, name, data)
            finally:
                os.close(fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                reason = "a folder on the key's path is a symlink or a file"
            else:
                reason = f"write failed: {exc.strerror or exc}"
            raise WriteError(key, reason, retryable=exc.errno in _TRANSIENT_ERRNOS) from exc

    def _resolve(self, key: str) -> Path:
        check_key(key)
        try:
            path = (self.root / key).resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop raises RuntimeError before 3.13
            raise FetchError(key, "key cannot be resolved (symlink loop?)") from exc
        if not path.is_relative_to(self.root):
            raise FetchError(key, "key resolves outside the store root")
        return path


def _split_missing(path: Path) -> tuple[Path, tuple[str, ...]]:
    """``path`` as its deepest existing folder and the names of the folders below it still to be
    made; ValueError if something other than a folder (a file, a dangling symlink) or a ``..``
    is on the way."""
    base, missing = path.absolute(), []
    while not base.is_dir():
        if os.path.lexists(base) or base.name == "..":
            raise ValueError(f"local store {str(path)!r} cannot be created: {str(base)!r} is not a folder")
        missing.append(base.name)
        base = base.parent
    return base, tuple(reversed(missing))


def _enter_folder(parent: int, name: str) -> int:
    """Open (creating if missing) folder ``name`` in the folder ``parent``, never through a
    symlink; closes ``parent`` (whether or not this succeeds) and returns the new descriptor."""
    try:
        try:
            os.mkdir(name, dir_fd=parent)
        except FileExistsError:
            pass
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    finally:
        os.close(parent)


def _replace_file(folder: int, name: str, data: bytes) -> None:
    """Write ``data`` to a new temporary file in ``folder`` and rename it to ``name``."""
    temporary = f".{name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666, dir_fd=folder)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        try:
            os.unlink(temporary, dir_fd=folder)
        except FileNotFoundError:
            pass
        raise


def read_blob(key: str, path: Path, max_bytes: int | None = None) -> bytes:
    """Read the file ``path`` that holds blob ``key`` (a regular file: see `open_regular_file`),
    mapping OS errors to fetch errors; one over ``max_bytes`` is refused by its size, unread."""
    try:
        if max_bytes is not None:
            return read_regular_file(path, max_bytes)
        with open_regular_file(path) as file:
            return file.read()
    except FileTooLarge as exc:
        raise blob_too_large(key, exc.limit, exc.size) from None
    except OSError as exc:
        raise _read_error(key, exc) from exc


def _read_error(key: str, exc: OSError) -> FetchError:
    """The fetch error an OS error reading blob ``key`` means."""
    if isinstance(exc, FileNotFoundError):
        return BlobNotFound(key)
    if isinstance(exc, IsADirectoryError) or (isinstance(exc, NotRegularFile) and stat.S_ISDIR(exc.mode)):
        return FetchError(key, "key names a folder, not a blob")
    if isinstance(exc, PermissionError):
        return FetchError(key, "permission denied")
    return FetchError(key, f"read failed: {exc.strerror}", retryable=exc.errno in _TRANSIENT_ERRNOS)
