"""The compiled parts, each built when the machine can build it and left out (with a warning) when
not, the Python code then taking its pure fallback:

- ``compare.imaging._pixelmatch``: pixelmatch's pixel scan (else the vectorised numpy scan);
- ``compare.imaging._wuffs``: PNG decoding by Wuffs into the diff's own arrays (else Pillow). It
  compiles the Wuffs C file of pywuffs 2.0.1's source release, fetched from PyPI once into
  build/wuffs/ and checked against its sha256.
"""

import hashlib
import io
import os
import platform
import sys
import tarfile
import urllib.request
import warnings
from pathlib import Path

from setuptools import Extension, setup

# Contraction off: no fused multiply-add may round pixelmatch's arithmetic differently.
SCAN_FLAGS = [] if sys.platform == "win32" else ["-O2", "-ffp-contract=off"]
WUFFS_FLAGS = [] if sys.platform == "win32" else ["-O3"]


def _x86_features() -> list[str]:
    """Compiler flags for the SIMD features Wuffs would otherwise ask the CPU for with cpuid on
    every decode (costly where cpuid traps to a hypervisor: 8 us a call, 50 us a small PNG), as
    far as this Linux machine's CPU has them: the extension is then for CPUs that have them all.
    SNAPCOMPARE_PORTABLE_BUILD=1 leaves them out, for a wheel that runs on any x86-64."""
    if platform.machine() not in ("x86_64", "AMD64") or os.environ.get("SNAPCOMPARE_PORTABLE_BUILD") == "1":
        return []
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return []
    return [flag for feature, flag in _X86_FLAGS.items() if feature in flags]


_X86_FLAGS = {"sse4_2": "-msse4.2", "pclmulqdq": "-mpclmul", "popcnt": "-mpopcnt", "avx2": "-mavx2",
              "bmi2": "-mbmi2"}


WUFFS_RELEASE = (
    "https://files.pythonhosted.org/packages/e1/62/"
    "977c7605afd60aafd66825f4fc4405e390b9016dbb676c842633371e08f2/pywuffs-2.0.1.tar.gz"
)
WUFFS_RELEASE_SHA256 = "5a9fd8a5026badf9e133940cee87ad58bd5cb4cd5264b9c46b607cb34e2bb9ab"
WUFFS_FILE = "wuffs-unsupported-snapshot.c"
WUFFS_FILE_SHA256 = "2bf34180305c775cb46654d1279132f1cde5ed29e86c8b46f4f0b4f67622fee2"
WUFFS_DIR = Path(__file__).resolve().parent / "build" / "wuffs"


def wuffs_source() -> Path | None:
    """The folder holding Wuffs' C file, fetched if it is not there yet (or not the one pinned);
    None when it cannot be."""
    target = WUFFS_DIR / WUFFS_FILE
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == WUFFS_FILE_SHA256:
        return WUFFS_DIR
    try:
        with urllib.request.urlopen(WUFFS_RELEASE, timeout=120) as response:
            release = response.read()
    except OSError as exc:
        warnings.warn(f"Wuffs not fetched ({exc}): PNGs will be decoded by Pillow", stacklevel=1)
        return None
    if hashlib.sha256(release).hexdigest() != WUFFS_RELEASE_SHA256:
        warnings.warn(f"{WUFFS_RELEASE} has another sha256: PNGs will be decoded by Pillow", stacklevel=1)
        return None
    with tarfile.open(fileobj=io.BytesIO(release)) as archive:
        member = archive.extractfile(f"pywuffs-2.0.1/libs/wuffs/release/c/{WUFFS_FILE}")
        assert member is not None  # the archive's sha256 is the one checked above
        source = member.read()
    if hashlib.sha256(source).hexdigest() != WUFFS_FILE_SHA256:
        warnings.warn(f"{WUFFS_FILE} in {WUFFS_RELEASE} has another sha256: PNGs will be decoded by Pillow",
                      stacklevel=1)
        return None
    WUFFS_DIR.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(source)
    partial.replace(target)
    return WUFFS_DIR


extensions = [
    Extension("compare.imaging._pixelmatch", ["compare/imaging/_pixelmatch.c"],
              extra_compile_args=SCAN_FLAGS, optional=True),
]
wuffs = wuffs_source()
if wuffs is not None:
    extensions.append(Extension("compare.imaging._wuffs", ["compare/imaging/_wuffs.c"],
                                include_dirs=[str(wuffs)], extra_compile_args=WUFFS_FLAGS + _x86_features(),
                                optional=True))

setup(ext_modules=extensions)
