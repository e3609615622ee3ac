"""Showing a running comparison's progress on a terminal or in a CI log.

`ProgressDisplay` is the ``progress`` callback of `compare.engine.local.run_comparison`. On a
terminal it redraws one line in place (a bar with the fetched and diffed counts), at most
``BAR_INTERVAL`` apart; anywhere else (a pipe, a CI log) it writes a plain line whenever
another tenth of the work is done, at least ``LINE_INTERVAL`` apart otherwise, and always at
the first and last update.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, TextIO

if TYPE_CHECKING:
    from ..engine.local import Progress

BAR_INTERVAL = 0.1
LINE_INTERVAL = 5.0
_BAR_WIDTH = 24
_CLEAR_TO_END = "\x1b[K"

Mode = Literal["bar", "lines"]


def fraction_done(progress: Progress) -> float:
    """The share of the work done, 0 to 1: fetched blobs and diffed pairs count alike."""
    total = progress.blobs_total + progress.pairs_total
    if total == 0:
        return 1.0
    return min(1.0, (progress.blobs_fetched + progress.pairs_done) / total)


def describe(progress: Progress) -> str:
    """``fetched 3/10 blobs, diffed 1/5 pairs``."""
    return (
        f"fetched {progress.blobs_fetched}/{progress.blobs_total} blobs, "
        f"diffed {progress.pairs_done}/{progress.pairs_total} pairs"
    )


class ProgressDisplay:
    """Writes progress updates to ``stream`` (stderr by default); call `close` when the run ends.

    ``mode`` is ``"bar"`` (one line redrawn in place) or ``"lines"`` (plain lines); by default
    a bar when the stream is a terminal. ``wording`` puts the counts in words (default:
    `describe`). ``clock`` returns seconds (monotonic). Safe to call from several threads.
    A stream that fails (a closed pipe) turns the display off: progress never stops a run.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        mode: Mode | None = None,
        wording: Callable[[Progress], str] = describe,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self._wording = wording
        self.mode: Mode = mode or ("bar" if _is_terminal(self.stream) else "lines")
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._last_shown_at: float | None = None
        self._last_tenth = -1
        self._latest: Progress | None = None
        self._shown: Progress | None = None
        self._bar_drawn = False
        self._broken = False  # the stream failed: nothing more is written

    def __call__(self, progress: Progress) -> None:
        with self._lock:
            if self._broken:
                return
            self._latest = progress
            now = self._clock()
            tenth = int(fraction_done(progress) * 10)
            last = self._last_shown_at
            if self.mode == "bar":
                due = last is None or now - last >= BAR_INTERVAL or progress.phase == "done"
            else:
                due = (last is None or tenth > self._last_tenth or now - last >= LINE_INTERVAL)
            if due:
                self._show(progress, now, tenth)

    def close(self) -> None:
        """Show the latest counts if they were held back, and end the bar's line."""
        with self._lock:
            latest = self._latest
            if latest is not None and (self._shown is None or _counts(latest) != _counts(self._shown)):
                self._show(latest, self._clock(), int(fraction_done(latest) * 10))
            if self._bar_drawn:
                self._write("\n")
                self._bar_drawn = False

    def __enter__(self) -> ProgressDisplay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _show(self, progress: Progress, now: float, tenth: int) -> None:
        self._last_shown_at = now
        self._last_tenth = tenth
        self._shown = progress
        elapsed = now - self._started
        if self.mode == "bar":
            self._write("\r" + self._bar(progress, elapsed) + _CLEAR_TO_END)
            self._bar_drawn = True
        else:
            percent = int(fraction_done(progress) * 100)
            self._write(f"[{elapsed:6.1f}s] {percent:3d}% {self._wording(progress)} ({progress.images_total} images)\n")

    def _write(self, text: str) -> None:
        if self._broken:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (AttributeError, OSError, ValueError):  # a closed pipe, a closed file, none (2>&-)
            self._broken = True

    def _bar(self, progress: Progress, elapsed: float) -> str:
        done = fraction_done(progress)
        filled = round(done * _BAR_WIDTH)
        text = (
            f"[{'#' * filled}{'-' * (_BAR_WIDTH - filled)}] {int(done * 100):3d}% "
            f"{self._wording(progress)}  {elapsed:.1f}s"
        )
        # Wider than the terminal would wrap, and "\r" would then redraw only the last row.
        columns = shutil.get_terminal_size().columns
        return text[: max(columns - 1, 1)]


def _counts(progress: Progress) -> tuple[int, int, int, int]:
    return progress.blobs_fetched, progress.blobs_total, progress.pairs_done, progress.pairs_total


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
