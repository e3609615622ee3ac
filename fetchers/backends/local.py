"""Blobs stored as files under one folder."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import SplitResult, unquote

from ..errors import BlobNotFound, FetchError, WriteError, blob_too_large
from ..files import FileTooLarge, NotRegularFile, open_regular_file, read_regular_file
from ..keys import check_key
from ..protocol import ClosableFetcher, StoredBlob, check_max_blob_bytes, names_store
from ..registry import NETWORK_OPTIONS, check_network_options, check_option_names

_T = TypeVar("_T")

_SEARCH_ONLY = getattr(os, "O_PATH", os.O_RDONLY)
"""How the folders on a read's way are opened: to search them only (Linux's ``O_PATH``)."""

# Errors worth trying again: the same call may well succeed in a moment.
_TRANSIENT_ERRNOS = (errno.EIO, errno.EAGAIN, errno.EINTR, errno.ESTALE)


class LocalFetcher(ClosableFetcher):
    """Reads and writes ``<root>/<key>``; a key that would leave the root is refused first.

    Reads: ``..`` segments, absolute keys and symlinks that resolve outside the root raise a
    non-retryable `FetchError`; symlinks inside the root are followed. The key's path is
    resolved first and then opened folder by folder from the root, never through a symlink
    (``O_NOFOLLOW``): a folder swapped for a symlink in between is not followed out of the root
    (the read fails, retryable). Writes (`put`) never follow a symlink at all: every folder on
    the way is opened with ``O_NOFOLLOW`` relative to the one before (created if missing),
    and the blob is written to a temporary file in its folder and renamed over the key, so a
    reader sees the old blob or the new one, never part of one. The content type is not kept.
    Thread-safe: it holds no state but the root.

    ``root`` must be a folder this process may read (else ValueError), unless ``create`` (a
    store opened for writing, such as a results store): then a root that does not exist yet
    is made on the first `put`, parents included, the missing folders the way a key's are
    (``O_NOFOLLOW``, so a symlink planted there in the meantime is refused, not followed).
    Until then reads find no blob.

    ``max_blob_bytes``: a larger blob is refused (a non-retryable `FetchError`) without being
    read, as every backend does.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, create: bool = False, max_blob_bytes: int | None = None
    ) -> None:
        path = Path(root)
        self.max_blob_bytes = check_max_blob_bytes(max_blob_bytes)
        self._missing: tuple[str, ...] = ()
        if "\x00" in str(path):
            raise ValueError("local store path has a NUL character")
        try:
            if path.is_dir():
                self._base = path.resolve()
            elif create and not os.path.lexists(path):
                base, self._missing = _split_missing(path)
                self._base = base.resolve()
            else:
                raise ValueError(f"local store {str(path)!r} is not a folder")
            os.close(self._open_folders(()))  # what every read and write opens first
            if not os.access(self._base, os.X_OK):  # an O_PATH descriptor opens without the right
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self._base))
        except OSError as exc:  # not allowed to look, or a name too long
            raise ValueError(f"local store {str(path)!r} cannot be used: {exc.strerror or exc}") from exc
        self.root = self._base.joinpath(*self._missing)
        self.store_url = self.root.as_uri()

    @classmethod
    def from_url(cls, parts: SplitResult, **options: Any) -> LocalFetcher:
        """The fetcher of a ``file:///abs/dir`` URL (percent-encoded path)."""
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file store URL must name a local path, not host {parts.netloc!r}")
        if not parts.path:
            raise ValueError("file store URL names no folder: file:///abs/dir")
        return cls.from_path(Path(unquote(parts.path)), **options)

    @classmethod
    def from_path(
        cls, path: Path, *, create: bool = False, max_blob_bytes: int | None = None, **options: Any
    ) -> LocalFetcher:
        """The fetcher of folder ``path`` (made on first write with ``create``); network
        options are checked and ignored."""
        check_option_names("file", options, NETWORK_OPTIONS)
        check_network_options(**options)
        return cls(path, create=create, max_blob_bytes=max_blob_bytes)

    def __repr__(self) -> str:
        return f"LocalFetcher({str(self.root)!r})"

    @names_store
    def fetch(self, key: str) -> bytes:
        """Return the bytes of the file ``<root>/<key>``."""
        return self._at(key, lambda folder, name: _read(name, self.max_blob_bytes, dir_fd=folder))

    @names_store
    def exists(self, key: str) -> bool:
        """Whether ``<root>/<key>`` is a file (a symlink inside the root to one counts)."""
        try:
            return self._at(key, _is_file)
        except BlobNotFound:
            return False

    @names_store
    def stat(self, key: str) -> StoredBlob | None:
        """The blob under ``key`` as it is stored: its size and the sha256 of its bytes (the
        file is read and hashed: a local store's checksum is its content); None if absent."""
        try:
            return self._at(key, _hashed)
        except BlobNotFound:
            return None

    @names_store
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Write ``data`` to ``<root>/<key>`` atomically, creating folders on the way (and the
        root's missing folders, when it was opened with ``create``)."""
        *folders, name = check_key(key, WriteError).split("/")
        try:
            fd = self._open_folders((*self._missing, *folders), create=True)
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

    def _open_folders(self, folders: Iterable[str], *, create: bool = False) -> int:
        """A descriptor of the folder ``folders`` name below the root's deepest existing folder,
        each opened relative to the one before and never through a symlink (made first if
        missing, with ``create``). Reading needs only the right to search each folder (an
        ``O_PATH`` descriptor where the system has them), as reading by path does."""
        fd = os.open(self._base, _folder_flags(create) | os.O_CLOEXEC)
        for folder in folders:
            fd = _enter_folder(fd, folder, create=create)
        return fd

    def _at(self, key: str, read: Callable[[int, str], _T]) -> _T:
        """``read(folder, name)`` of the file ``key`` names, given the descriptor of its folder,
        reached without following a symlink (see the class), and its name in it; OS errors
        raise the fetch error they mean."""
        relative = self._relative(key)
        *folders, name = relative or (".",)  # a key that resolves to the root names a folder
        try:
            folder = self._open_folders(folders)
            try:
                return read(folder, name)
            finally:
                os.close(folder)
        except OSError as exc:
            if exc.errno == errno.ELOOP or (isinstance(exc, NotRegularFile) and stat.S_ISLNK(exc.mode)):
                if self._resolves_to(key, relative):  # as before: a lasting symlink loop
                    raise FetchError(key, "key cannot be resolved (symlink loop?)") from exc
                raise FetchError(key, "a symlink appeared on the key's path as it was read", retryable=True) from exc
            raise _read_error(key, exc) from exc

    def _resolves_to(self, key: str, relative: tuple[str, ...]) -> bool:
        """Whether ``key`` still resolves to ``relative`` (see `_relative`)."""
        try:
            return self._relative(key) == relative
        except FetchError:
            return False

    def _relative(self, key: str) -> tuple[str, ...]:
        """The names of ``key``'s resolved path below the root's deepest existing folder."""
        return self._resolve(key).relative_to(self._base).parts

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


def _folder_flags(create: bool) -> int:
    """How a folder on a key's way is opened: to write in (``create``), else to search only."""
    return (os.O_RDONLY if create else _SEARCH_ONLY) | os.O_DIRECTORY


def _enter_folder(parent: int, name: str, *, create: bool) -> int:
    """Open folder ``name`` in the folder ``parent`` (made first if missing, with ``create``),
    never through a symlink (ELOOP); closes ``parent`` (whether or not this succeeds) and
    returns the new descriptor."""
    try:
        if create:
            try:
                os.mkdir(name, dir_fd=parent)
            except FileExistsError:
                pass
        try:
            return os.open(name, _folder_flags(create) | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        except NotADirectoryError:  # Linux's answer for a symlink as well as for a file
            if stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), name) from None
            raise
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
        return _read(path, max_bytes)
    except OSError as exc:
        raise _read_error(key, exc) from exc


def _read(path: str | Path, max_bytes: int | None, *, dir_fd: int | None = None) -> bytes:
    """The bytes of the regular file ``path``; `FileTooLarge` past ``max_bytes``. With ``dir_fd``,
    ``path`` is a name in that folder, and a symlink there is not followed."""
    follow = dir_fd is None
    if max_bytes is not None:
        return read_regular_file(path, max_bytes, dir_fd=dir_fd, follow_symlinks=follow)
    with open_regular_file(path, dir_fd=dir_fd, follow_symlinks=follow) as file:
        return file.read()


def _is_file(folder: int, name: str) -> bool:
    """Whether ``name`` in ``folder`` is a regular file (a symlink is not followed)."""
    return stat.S_ISREG(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)


def _hashed(folder: int, name: str) -> StoredBlob:
    """The size and sha256 of the regular file ``name`` in ``folder`` (a symlink is not followed)."""
    with open_regular_file(name, dir_fd=folder, follow_symlinks=False) as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
        return StoredBlob(size=file.tell(), sha256=digest)


def _read_error(key: str, exc: OSError) -> FetchError:
    """The fetch error an OS error reading blob ``key`` means."""
    if isinstance(exc, FileTooLarge):
        return blob_too_large(key, exc.limit, exc.size)
    if isinstance(exc, (FileNotFoundError, NotADirectoryError)):  # no such file, or a file on the way
        return BlobNotFound(key)
    if isinstance(exc, IsADirectoryError) or (isinstance(exc, NotRegularFile) and stat.S_ISDIR(exc.mode)):
        return FetchError(key, "key names a folder, not a blob")
    if isinstance(exc, PermissionError):
        return FetchError(key, "permission denied")
    return FetchError(key, f"read failed: {exc.strerror}", retryable=exc.errno in _TRANSIENT_ERRNOS)
