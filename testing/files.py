"""Test helpers that make file-system entries hostile inputs bring: FIFOs, device nodes, and
paths longer than the system's ``PATH_MAX``."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

PATH_MAX = os.pathconf("/", "PC_PATH_MAX")
"""The longest path the system takes, in bytes (4096 on Linux)."""


def make_fifo(path: Path) -> Path:
    """A FIFO at ``path``: opening it for reading blocks until a writer comes (none will)."""
    os.mkfifo(path)
    return path


def make_zero_device(path: Path) -> Path:
    """A character device at ``path`` that reads as ``/dev/zero`` (endless zeros); skips the test
    where this process may not make device nodes."""
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("making a device node needs CAP_MKNOD")
    return path


def make_too_long_paths(root: Path, data: bytes) -> tuple[str, str]:
    """Under ``root``, folders nested as deep as paths stay within ``PATH_MAX``; in the deepest,
    an image file whose own path passes it, and a folder (whose path passes it too) holding
    another. Returns their names below ``root``: the file's, and the folder's with a trailing
    ``/``. Everything is made relative to its folder (``dir_fd``), which works where a path
    that long does not."""
    segment = "d" * 200
    depth = (PATH_MAX - 1 - len(os.fsencode(root))) // (len(segment) + 1)
    file_name = "f" * 200 + ".png"
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            fd = _enter(fd, segment)
        _write(fd, file_name, data)
        fd = _enter(fd, segment)
        _write(fd, "x.png", data)
    finally:
        os.close(fd)
    deepest = "/".join([segment] * depth)
    return f"{deepest}/{file_name}", f"{deepest}/{segment}/"


def _enter(parent: int, name: str) -> int:
    """Make folder ``name`` in ``parent`` and open it; ``parent`` is closed once it is open."""
    os.mkdir(name, dir_fd=parent)
    child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=parent)
    os.close(parent)
    return child


def _write(folder: int, name: str, data: bytes) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=folder)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
