"""Reading a file only when it is a regular file (a FIFO or a device never blocks or feeds a read),
and only up to a size."""

from __future__ import annotations

import errno
import io
import os
import stat


class NotRegularFile(OSError):
    """A path names something other than a regular file (a FIFO, a device, a folder...), which
    is never read: a FIFO without a writer blocks its reader forever, a device may never end."""

    def __init__(self, path: str | os.PathLike[str], mode: int) -> None:
        super().__init__(None, f"not a regular file ({_file_kind(mode)})", os.fspath(path))
        self.mode = mode


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symlink"))
    return next((kind for test, kind in kinds if test(mode)), "of another kind")


def open_regular_file(
    path: str | os.PathLike[str], *, dir_fd: int | None = None, follow_symlinks: bool = True
) -> io.BufferedReader:
    """Open ``path`` for reading in binary mode, only if it is a regular file.

    ``path`` is relative to the folder open as ``dir_fd``, when given; a symlink is followed
    unless not ``follow_symlinks`` (then it is not a regular file). Anything else raises
    `NotRegularFile` without being opened (``stat`` first). The open itself never blocks
    (``O_NONBLOCK``: a FIFO put in place after the check has no writer) and the descriptor is
    checked again (``fstat``) before a byte is read, so nothing swapped in meanwhile is read
    either. Other failures raise the `OSError` of ``stat`` or ``open``.
    """
    mode = os.stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFile(path, mode)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    fd = os.open(path, flags, dir_fd=dir_fd)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path, mode)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class FileTooLarge(OSError):
    """A file holds more bytes than its reader allows."""

    def __init__(self, path: str | os.PathLike[str], size: int, limit: int) -> None:
        super().__init__(errno.EFBIG, too_large(size, limit), os.fspath(path))
        self.size = size
        self.limit = limit


def too_large(size: int, limit: int) -> str:
    """Why ``size`` bytes are refused where ``limit`` are allowed, in words."""
    return f"{size:,} bytes, more than the {limit:,} allowed"


def read_regular_file(
    path: str | os.PathLike[str], max_bytes: int, *, dir_fd: int | None = None, follow_symlinks: bool = True
) -> bytes:
    """The bytes of ``path``, opened by `open_regular_file` (with ``dir_fd`` and ``follow_symlinks``);
    `FileTooLarge` when it holds more than ``max_bytes``, told by its size before reading (and by
    what was read, should it grow)."""
    with open_regular_file(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks) as file:
        size = os.fstat(file.fileno()).st_size
        if size > max_bytes:
            raise FileTooLarge(path, size, max_bytes)
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FileTooLarge(path, len(data), max_bytes)
    return data
