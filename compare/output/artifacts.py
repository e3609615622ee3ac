"""The output folder of a comparison: diff masks, report previews and the reports, kept consistent.

A run never changes a file the previous report refers to. Masks and previews are named after
their content (``diff/<name>.<sha256 prefix>.png``, a ``.png`` ending of the name dropped;
``previews/<sha256 prefix>.<png or jpg>``, so a picture that many images share, such as the
crop of one change on a thousand screens, is one file), so a new run adds files beside the old
ones and reuses identical ones; the reports are then swapped in together, and only after that
are the files the new reports do not refer to deleted. Until then an interrupted, killed or failed
run leaves the previous reports and their files as they were, and removes what it added.

Every file is written to a temporary name and renamed into place, through directory file
descriptors opened without following symbolic links: a link planted inside the folder can be
replaced but never written through. A lock file (`LOCK_FILE`) keeps a second run out while one
is writing.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import secrets
import signal
import stat
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TypeVar
from urllib.parse import quote

from ..engine.pairs import PairOutcome

LOCK_FILE = ".snapcompare.lock"
"""Held (``flock``) by the run writing into the folder, and deleted when it ends."""

FOLDERS = ("diff", "previews")
"""The subfolders of the output folder that hold masks and previews; nothing else goes there."""

_T = TypeVar("_T")
_PROBE = ".snapcompare.probe"
_TEMP_SUFFIX = ".tmp"

_MASK = r"(?:(?:[A-Za-z0-9._~-]|%[0-9A-F]{2}){0,200}|%%[0-9a-f]{64})\.[0-9a-f]{16}\.png"  # see `safe_file_name`
_PREVIEW = r"[0-9a-f]{16}\.(?:png|jpg)"
_OURS = {folder: re.compile(rf"{name}|\.{name}\.[0-9a-f]{{8}}{re.escape(_TEMP_SUFFIX)}")
         for folder, name in (("diff", _MASK), ("previews", _PREVIEW))}
"""The names a run gives the files of each of `FOLDERS` (see `ArtifactWriter.mask` and
`ArtifactWriter.previews`), and of their temporary files (`ArtifactWriter._write`): the only
ones pruning deletes."""

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_OLD_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
# What reading a file below a folder fails with when there is no regular file to read there.
_NO_FILE = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EISDIR})


class ArtifactWriter:
    """Writes one run's masks, previews and reports into ``out_dir``.

    `mask` and `previews` may be called at once; they open the folder as needed. `open`
    (idempotent) also checks that the folder is writable and takes its lock. Used as a context
    manager, the writer deletes what the run added unless `commit` swapped its reports in, and
    releases the lock. ``reports`` names the report files `commit` will swap in, so that `open`
    tells one that cannot be replaced before the work.
    """

    def __init__(self, out_dir: str | os.PathLike[str], *, reports: Iterable[str] = ()) -> None:
        self.out_dir = Path(out_dir)
        self._reports = tuple(reports)
        self._fds: dict[str, int] = {}  # "" is out_dir itself, then the FOLDERS
        self._lock: int | None = None
        self._added: set[str] = set()  # keys of files, and names of FOLDERS, this run created
        self._committed = False
        self._guard = threading.Lock()
        weakref.finalize(self, _close_all, self._fds)

    def __enter__(self) -> ArtifactWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and not self._committed:
            self.abort()
        self.close()

    def open(self) -> ArtifactWriter:
        """Create ``out_dir`` if needed, check it is writable and lock it against other runs.

        Raises OSError naming the folder: EAGAIN when another run holds the lock, EROFS, EACCES
        or ENOSPC when nothing can be written there, and naming one of `FOLDERS` that is there
        but no folder (a symbolic link, a file), or one of the ``reports`` that is a folder.
        """
        if self._lock is not None:
            return self
        root = self._folder("")
        while self._lock is None:
            lock = _named(lambda: os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                                          0o644, dir_fd=root), self.out_dir / LOCK_FILE)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(lock)
                raise OSError(errno.EAGAIN, "in use by another snapcompare run", str(self.out_dir)) from None
            # The run that held it may have deleted the file since we opened it: lock the file
            # that is there now.
            if _same_file(lock, root, LOCK_FILE):
                self._lock = lock
            else:
                os.close(lock)
        # The lock file may exist already: only creating a file shows the folder takes writes.
        self._write(root, self.out_dir, _PROBE, [b""], keep=False)
        for folder in FOLDERS:  # one there that is no folder (a link, a file) is told now, not after the work
            self._existing_folder(folder)
        for file in self._reports:
            self._check_replaceable(root, file)
        return self

    def mask(self, name: str, png: bytes) -> str:
        """Store image ``name``'s diff mask; return its key (its path relative to ``out_dir``)."""
        return self._put("diff", f"{safe_file_name(name.removesuffix('.png'))}.{_digest(png)}.png", png)

    def previews(self, outcome: PairOutcome) -> dict[str, str] | None:
        """Store a pair's report previews, if it has any; return their keys by role.

        A preview is named by its content alone: identical pictures (of any pairs, in any
        roles) are one file, written once.
        """
        if not outcome.previews:
            return None
        return {
            kind: self._put("previews", f"{_digest(data)}.{_extension(data)}", data)
            for kind, data in outcome.previews.items()
        }

    def gather(self, keys: Iterable[str], source: str | os.PathLike[str]) -> None:
        """Have every mask and preview of ``keys`` in this folder: copy the ones it lacks from
        the output folder ``source``, where the comparison wrote them.

        Keys that are not a file of `FOLDERS` (a mask's key in a results store) are passed
        over. Raises FileNotFoundError naming a key that is in neither folder (no symbolic link
        in ``source`` is followed). The copies are this run's: `abort` deletes them.
        """
        self.open()
        source = Path(source)
        for key in keys:
            folder, _, file = key.partition("/")
            if folder not in FOLDERS or "/" in file or file in ("", ".", ".."):
                continue
            with self._guard:
                if _is_file(self._folder(folder), file):
                    continue
            try:
                data = _read_below(source, folder, file)
            except OSError as exc:
                if exc.errno not in _NO_FILE:
                    raise
                raise FileNotFoundError(
                    errno.ENOENT, f"the comparison refers to it, but it is in neither {self.out_dir} nor {source}",
                    key) from None
            self._put(folder, file, data)

    def commit(self, reports: Mapping[str, Callable[[], Iterable[bytes]]], referenced: Iterable[str]) -> None:
        """Swap in new reports, then delete the masks and previews they do not refer to.

        ``reports`` maps each report's file name to a function giving its bytes. All are written
        to temporary files first; only when every one is complete, and none of the old ones is a
        folder (which a rename cannot replace: IsADirectoryError naming it, nothing renamed), are
        they renamed over the old ones, with SIGINT and SIGTERM held off until the last rename.
        ``referenced`` lists the keys (as `mask` and `previews` return them) the reports refer to.
        """
        self.open()
        root = self._folder("")
        staged: dict[str, str] = {}
        try:
            for file, render in reports.items():
                staged[file] = self._write(root, self.out_dir, file, render(), keep=None, durable=True)
            for file in staged:
                self._check_replaceable(root, file)
            with _signals_held():
                for file, temp in staged.items():
                    _named(partial(os.rename, temp, file, src_dir_fd=root, dst_dir_fd=root), self.out_dir / file)
                self._committed = True
        finally:
            for temp in staged.values():
                _unlink(root, temp)
        self._prune(set(referenced), temporary=tuple(f".{file}." for file in (*reports, _PROBE)))

    def abort(self) -> None:
        """Delete the masks and previews this run added (files the previous reports use stay)."""
        for key in sorted(self._added, reverse=True):  # a folder's files sort after it
            folder, _, file = key.partition("/")
            if file:
                _unlink(self._fds[folder], file)
            else:
                with suppress(OSError):  # only if empty
                    os.rmdir(folder, dir_fd=self._fds[""])
        self._added.clear()

    def close(self) -> None:
        """Release the lock and the folder's descriptors."""
        if self._lock is not None:
            _unlink(self._fds[""], LOCK_FILE)  # while still holding it, see open
            os.close(self._lock)  # releases the lock
            self._lock = None
        _close_all(self._fds)

    def _check_replaceable(self, root: int, file: str) -> None:
        """Raise IsADirectoryError naming ``file`` when a folder is in its place."""
        try:
            mode = os.stat(file, dir_fd=root, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "a folder, which a report cannot replace", str(self.out_dir / file))

    def _put(self, folder: str, file: str, data: bytes) -> str:
        key = f"{folder}/{file}"
        with self._guard:
            fd = self._folder(folder)
            if _is_file(fd, file):  # a name carries its content's hash: the file is already right
                return key
            self._added.add(key)
        self._write(fd, self.out_dir / folder, file, [data], keep=True)
        return key

    def _folder(self, name: str) -> int:
        """The descriptor of ``out_dir`` ("") or one of its `FOLDERS`, created if missing."""
        if name in self._fds:
            return self._fds[name]
        if not name:
            path = self.out_dir
            _named(lambda: path.mkdir(parents=True, exist_ok=True), path)
            # out_dir itself is the caller's choice and may be a link; nothing below it is followed.
            fd = _named(lambda: os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), path)
        else:
            root, path = self._folder(""), self.out_dir / name
            try:
                os.mkdir(name, dir_fd=root)
                self._added.add(name)
            except FileExistsError:
                pass
            except OSError as exc:
                raise _naming(exc, path) from None
            try:
                fd = os.open(name, _DIRECTORY, dir_fd=root)
            except OSError as exc:
                if _is_link(root, name):
                    raise OSError(exc.errno, "a symbolic link, which nothing is written through", str(path)) from None
                raise _naming(exc, path) from None
        self._fds[name] = fd
        return fd

    def _existing_folder(self, name: str) -> int | None:
        try:
            os.stat(name, dir_fd=self._folder(""), follow_symlinks=False)
        except FileNotFoundError:
            return None
        return self._folder(name)

    def _write(
        self, dir_fd: int, where: Path, file: str, chunks: Iterable[bytes], *, keep: bool | None, durable: bool = False
    ) -> str:
        """Write ``chunks`` to a new temporary file in ``dir_fd`` (flushed to disk if ``durable``).

        ``keep``: True renames it to ``file``, False deletes it, None leaves it and returns its
        name. Errors name ``where / file``; the temporary file never outlives a failure.
        """
        path = where / file
        temp = f".{file}.{secrets.token_hex(4)}{_TEMP_SUFFIX}"
        fd: int | None = None
        try:
            fd = _named(lambda: os.open(temp, _NEW_FILE, 0o644, dir_fd=dir_fd), path)
            for chunk in chunks:  # an error making the chunks is the caller's, unnamed
                _named(partial(_write_all, fd, chunk), path)
            if durable:
                _named(partial(os.fsync, fd), path)
            done, fd = fd, None
            _named(lambda: os.close(done), path)  # some file systems report a full disk only here
            if keep:
                _named(lambda: os.rename(temp, file, src_dir_fd=dir_fd, dst_dir_fd=dir_fd), path)
        except BaseException:
            if fd is not None:
                os.close(fd)
            _unlink(dir_fd, temp)
            raise
        if keep is False:
            _unlink(dir_fd, temp)
        return temp

    def _prune(self, referenced: set[str], temporary: tuple[str, ...]) -> None:
        """Delete the masks and previews in `FOLDERS` (and their temporary files) that are not
        ``referenced``, and the temporary files (names starting with one of ``temporary``)
        that killed runs left in ``out_dir``. Nothing else is touched: not a file a run would
        not have named so, not a folder."""
        for folder in FOLDERS:
            fd = self._existing_folder(folder)
            if fd is None:
                continue
            for entry in list(os.scandir(fd)):
                if (f"{folder}/{entry.name}" not in referenced and _OURS[folder].fullmatch(entry.name)
                        and not entry.is_dir(follow_symlinks=False)):
                    _unlink(fd, entry.name)
        root = self._folder("")
        for entry in list(os.scandir(root)):
            if (entry.name.startswith(temporary) and entry.name.endswith(_TEMP_SUFFIX)
                    and entry.is_file(follow_symlinks=False)):
                _unlink(root, entry.name)
        self._added.clear()


def _read_below(root: Path, folder: str, file: str) -> bytes:
    """The bytes of the regular file ``root/folder/file``, following no symbolic link below ``root``."""
    path = root / folder / file
    with ExitStack() as stack:
        def opened(name: str | Path, flags: int, dir_fd: int | None, where: Path) -> int:
            fd = _named(lambda: os.open(name, flags, dir_fd=dir_fd), where)
            stack.callback(os.close, fd)
            return fd

        root_fd = opened(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, None, root)
        fd = opened(file, _OLD_FILE, opened(folder, _DIRECTORY, root_fd, root / folder), path)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file", str(path))
        chunks = []
        while chunk := _named(lambda: os.read(fd, 1 << 20), path):
            chunks.append(chunk)
        return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _named(action: Callable[[], _T], path: Path) -> _T:
    """Run ``action``; an OSError it raises names ``path`` (descriptor-relative calls name less)."""
    try:
        return action()
    except OSError as exc:
        raise _naming(exc, path) from None


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` naming ``path`` (a descriptor-relative call names a relative name or nothing)."""
    return exc if exc.errno is None else OSError(exc.errno, exc.strerror, str(path))


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _same_file(fd: int, dir_fd: int, name: str) -> bool:
    try:
        there = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    here = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _is_file(dir_fd: int, name: str) -> bool:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode & 0o170000 == 0o100000
    except FileNotFoundError:
        return False


def _unlink(dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def _close_all(fds: dict[str, int]) -> None:
    for fd in fds.values():
        os.close(fd)
    fds.clear()


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM off until the block ends, then deliver the first that came."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda number, _frame: caught.append(number)) for sig in held}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if caught:
            signal.raise_signal(caught[0])


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _extension(data: bytes) -> str:
    return "png" if data.startswith(b"\x89PNG") else "jpg"


def safe_file_name(name: str) -> str:
    """A single file name for image ``name``, distinct for every distinct name.

    Every character but ASCII letters, digits and ``._-~`` is percent-encoded, ``/`` included
    (``icons/home.png`` -> ``icons%2Fhome.png``), and ``.`` and ``..`` are spelled ``%2E``, so
    names can neither leave the folder nor collide as a file and a folder. A name too long for
    a file system maps to ``%%`` and its sha256, a form percent-encoding never produces.
    """
    encoded = quote(name, safe="", errors="surrogatepass")
    if encoded in (".", ".."):
        return encoded.replace(".", "%2E")  # quote never writes %2E, so this stays distinct
    if len(encoded) > 200:
        return "%%" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    return encoded
