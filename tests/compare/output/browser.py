"""Running report.html in a real headless browser (Debian's chromium), for the browser tests:
the DOM after the page's scripts, a screenshot, the console, a page driven by a script of the
test's own."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.compare.output.helpers import Page


def _find_chromium() -> str | None:
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


CHROMIUM = _find_chromium()
BROWSER_TIMEOUT = 60

# CI installs chromium (.ci/run), so there a missing browser is a failure, not a skip.
skip_without_chromium = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="needs Debian's chromium (apt-get install chromium) to check report.html in a browser",
)
"""The mark of every browser test module, beside ``pytest.mark.browser``."""


def dump_dom(url: str, profile: Path, window: tuple[int, int] | None = None) -> tuple[Page, str]:
    """Load ``url`` headless (in a window of ``window`` CSS pixels, else the default) and return
    the DOM after its scripts ran, and the browser's log."""
    size = [f"--window-size={window[0]},{window[1]}"] if window else []
    stdout, log = run_chromium([*size, "--dump-dom", url], profile)
    return Page(stdout.decode("utf-8")), log


def screenshot(url: str, profile: Path, path: Path, size: tuple[int, int] = (1280, 1100)) -> np.ndarray:
    """Load ``url`` headless in a window of ``size`` CSS pixels (one device pixel each) and
    return the top of the page as drawn, as an HxWx3 int array."""
    run_chromium(
        ["--hide-scrollbars", "--force-device-scale-factor=1", f"--window-size={size[0]},{size[1]}",
         f"--screenshot={path}", url],
        profile,
    )
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def run_chromium(arguments: list[str], profile: Path) -> tuple[bytes, str]:
    """Run headless chromium with ``arguments``; return its output and its log."""
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
        "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", *arguments,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=BROWSER_TIMEOUT)
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    finally:
        # Chromium's helper processes share its session; none may outlive the test.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    log = stderr.decode(errors="replace")
    assert process.returncode == 0, log
    return stdout, log


def console_messages(log: str) -> list[str]:
    return re.findall(r":CONSOLE[^\]]*\] (.*)", log)


def with_driver(report: Path, driver: str) -> Path:
    """A copy of ``report`` that runs ``driver`` after the page's own script."""
    digest = base64.b64encode(hashlib.sha256(driver.encode()).digest()).decode()
    text = report.read_text(encoding="utf-8")
    text = text.replace("script-src '", f"script-src 'sha256-{digest}' '", 1)
    text = text.replace("</body>", f"<script>{driver}</script>\n</body>", 1)
    driven = report.with_name("driven.html")
    driven.write_text(text, encoding="utf-8")
    return driven
