"""The benchmarks' own environments: a Python venv with the `bench` group, and node peers.

- Python: benchmarks/.cache/venv, the project with every extra plus the `bench` dependency group
  (blazediff 6.0.2, pywuffs, psutil) from uv.lock; `ensure_python()` builds it with uv when
  missing and re-executes the calling module under it.
- Node: benchmarks/.cache/node, `npm install` pinned by benchmarks/package.json and package-lock.json
  (pixelmatch 7.2.0 with pngjs, odiff-bin 4.5.0).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CACHE = BENCH / ".cache"
VENV = CACHE / "venv"
NODE_DIR = CACHE / "node"
UV = ROOT / ".tools" / "bin" / "uv"


def _stamp(*files: Path) -> str:
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()


def in_bench_env() -> bool:
    """Whether this interpreter is the benchmark venv's."""
    return Path(sys.prefix).resolve() == VENV.resolve()


def ensure_python(module: str) -> None:
    """Build benchmarks/.cache/venv if needed and re-run ``module`` in it (argv kept).

    Returns only when already running inside that venv. Prints how long the install took (the
    first build compiles pywuffs, a peer of bench_decode, from its sdist).
    """
    if in_bench_env():
        return
    stamp_file = VENV / ".bench-stamp"
    stamp = _stamp(ROOT / "pyproject.toml", ROOT / "uv.lock", ROOT / "setup.py",
                   *sorted((ROOT / "compare").rglob("*.c")))
    if not stamp_file.exists() or stamp_file.read_text() != stamp:
        if not UV.exists():
            subprocess.run(["make", "-C", str(ROOT), "sync"], check=True)
        print(f"bench env: uv sync --group bench into {VENV}", file=sys.stderr)
        start = time.perf_counter()
        env = dict(os.environ, UV_PROJECT_ENVIRONMENT=str(VENV), UV_PYTHON_DOWNLOADS="never")
        subprocess.run(
            [str(UV), "sync", "--frozen", "--all-extras", "--group", "bench",
             "--python", sys.executable],
            cwd=ROOT, env=env, check=True,
        )
        took = time.perf_counter() - start
        with open(CACHE / "bench-env-install.txt", "a", encoding="utf-8") as log:
            log.write(f"{time.strftime('%Y-%m-%d %H:%M')} uv sync --group bench: {took:.1f} s, "
                      f"load average {os.getloadavg()[0]:.1f}\n")
        print(f"bench env: installed in {took:.1f} s", file=sys.stderr)
        stamp_file.write_text(stamp)
    python = VENV / "bin" / "python"
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(ROOT)
    os.execv(python, [str(python), "-m", module, *sys.argv[1:]])


def ensure_node() -> Path:
    """Install the node peers into benchmarks/.cache/node if needed (pinned by the lock).

    Returns that directory. `npm install` rather than `npm ci`: odiff-bin lists platform
    packages that are not all published, which `npm ci` refuses.
    """
    package, lock = BENCH / "package.json", BENCH / "package-lock.json"
    stamp_file = NODE_DIR / ".bench-stamp"
    stamp = _stamp(package, lock)
    if stamp_file.exists() and stamp_file.read_text() == stamp:
        return NODE_DIR
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed for the pixelmatch and odiff peers")
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copy(package, NODE_DIR / "package.json")
    shutil.copy(lock, NODE_DIR / "package-lock.json")
    print(f"bench env: npm install into {NODE_DIR}", file=sys.stderr)
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR,
                   check=True)
    stamp_file.write_text(stamp)
    return NODE_DIR


def odiff_binary() -> Path:
    """odiff's native binary (what odiff-bin's compare() and ODiffServer spawn), not the Node shim."""
    found = sorted((ensure_node() / "node_modules" / "@odiff").glob("*/odiff"))
    if not found:
        raise RuntimeError("odiff-bin installed no native binary for this platform")
    return found[0]
