"""Headless Chromium driven through the DevTools protocol over a pipe, for the report's browser
tests and ``benchmarks/bench_report.py``.

``--remote-debugging-pipe`` makes Chromium read commands from its fd 3 and write answers to its
fd 4, NUL-separated JSON: no port is opened and no websocket client is needed. Unlike
``--dump-dom`` with a virtual time budget, a page runs in real time here: it draws frames, so
scrolling fires scroll events and lazy pictures load as they come into view.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil


class DevTools:
    """One headless Chromium with one page, in a window of ``window`` CSS pixels (one device
    pixel each); a context manager that kills the browser and its helpers on exit."""

    def __init__(self, chromium: str, profile: Path, window: tuple[int, int] = (1280, 900)) -> None:
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()

        def pipes() -> None:
            os.dup2(commands_read, 3)
            os.dup2(replies_write, 4)

        self.process = subprocess.Popen(
            [chromium, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
             "--force-device-scale-factor=1", f"--window-size={window[0]},{window[1]}",
             f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=pipes, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        os.close(commands_read)
        os.close(replies_write)
        self._buffer = b""
        self._next = 0
        self.session: str | None = None

    def __enter__(self) -> DevTools:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def call(self, method: str, params: dict[str, Any] | None = None, *, browser: bool = False,
             timeout: float = 60) -> dict[str, Any]:
        """Send a command to the page (to the browser with ``browser``); return its result.
        Events that arrive meanwhile are dropped."""
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if not browser and self.session is not None:
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def open(self, url: str, *, before: str | None = None) -> None:
        """Open a page and navigate it to ``url``; ``before`` is a script run in every document
        before its own scripts (DevTools' scripts are not the page's: its policy does not apply)."""
        target = self.call("Target.createTarget", {"url": "about:blank"}, browser=True)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 browser=True)["sessionId"]
        self.call("Page.enable")
        self.call("Performance.enable")
        if before is not None:
            self.call("Page.addScriptToEvaluateOnNewDocument", {"source": before})
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression: str) -> Any:
        """The value of ``expression`` in the page (JSON-able values only)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, expression: str, timeout: float = 60) -> Any:
        """Evaluate ``expression`` until it is truthy; return that value."""
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(expression)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression} still false after {timeout} s")
            time.sleep(0.02)
        return value

    def memory(self) -> int:
        """PSS of the browser and every process it started, in bytes."""
        root = psutil.Process(self.process.pid)
        total = 0
        for process in [root, *root.children(recursive=True)]:
            try:
                total += process.memory_full_info().pss
            except psutil.Error:
                pass
        return total

    def close(self) -> None:
        """Kill the browser and its helpers (they share its session)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        for fd in (self._commands, self._replies):
            try:
                os.close(fd)
            except OSError:
                pass

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if not select.select([self._replies], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed its pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)
