"""The command's process keeps freed buffers for reuse instead of faulting fresh pages in."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata

import pytest

from compare.cli.main import run


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (AttributeError, ValueError):
        return False


pytestmark = [pytest.mark.integration, pytest.mark.skipif(not _glibc(), reason="glibc's malloc only")]

# Allocates and frees a 64 MiB block (written in full) a few times, then counts the page faults
# of three more rounds; the settings are process-wide, so each case runs in a process of its own.
PROGRAM = """
import resource, sys
from compare.cli.malloc import reuse_freed_memory
if sys.argv[1] == "reuse":
    assert reuse_freed_memory()
def round_trip():
    block = bytearray(b"\\x01") * (64 << 20)
    del block
round_trip()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    round_trip()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    # malloc as glibc sets it by default: no tunables or preloaded allocator from outside.
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("MALLOC_") and key not in ("GLIBC_TUNABLES", "LD_PRELOAD")}
    done = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True,
                          check=True, timeout=60, env=env)
    return int(done.stdout)


def test_freed_blocks_are_reused_without_new_page_faults() -> None:
    # By default each 64 MiB block is mapped afresh: thousands of faults (or, with transparent
    # huge pages for every mapping, at least one per 2 MiB).
    assert _faults("default") >= 3 * 32
    assert _faults("reuse") < 32


def test_the_console_command_applies_it() -> None:
    (entry,) = metadata.entry_points(group="console_scripts", name="snapcompare")
    assert entry.load() is run
    probe = (
        "import sys; import compare.cli.main; cli = sys.modules['compare.cli.main']; "
        "cli.reuse_freed_memory = lambda: print('applied') or True; "
        "sys.argv = ['snapcompare', '--version']; cli.run()"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "applied"
