"""Every pixel-diff engine, named once: what it reproduces, its version, its own options.

`diff_images` and the comparison pick an engine by name; ``version`` is recorded with every
result so two comparisons can tell whether their counts are comparable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import odiff, oklab, pixelmatch
from .kernel import window_max
from .scan import Scan


@dataclass(frozen=True)
class Engine:
    """A pixel-diff engine: ``scan(a, b, overlap, *, threshold, antialiasing, ignore, ...)``."""

    name: str
    version: str
    reference: str
    scan: Callable[..., Scan]
    options: frozenset[str] = frozenset()
    own_window: bool = False
    """True when ``scan`` computes ``window_max`` itself (as its reference does)."""
    takes_sizes: bool = False
    """True when ``scan`` needs the images' own sizes (its canvas rule reads their bounds)."""

    def check_options(self, names: Iterable[str]) -> None:
        """Raise ValueError naming the options in ``names`` this engine does not take."""
        unknown = sorted(set(names) - self.options) if names else []
        if unknown:
            raise ValueError(f"engine {self.name!r} has no option {', '.join(unknown)}")

    def run(
        self,
        a: np.ndarray,
        b: np.ndarray,
        overlap: tuple[int, int],
        *,
        threshold: float,
        antialiasing: bool,
        ignore: np.ndarray | None,
        window_size: int | None,
        options: Mapping[str, Any],
        sizes: tuple[tuple[int, int], tuple[int, int]],
    ) -> Scan:
        """Scan with this engine; ``window_size`` adds ``window_max`` whichever engine it is;
        ``sizes`` are the two images' own (width, height)."""
        self.check_options(options)
        if self.own_window:
            options = {**options, "window_size": window_size}
        if self.takes_sizes:
            options = {**options, "sizes": sizes}
        result = self.scan(a, b, overlap, threshold=threshold, antialiasing=antialiasing,
                           ignore=ignore, **options)
        if window_size is not None and not self.own_window:
            return Scan(result.mask, result.changed_pixels, result.aa_pixels, result.bbox,
                        window_max(result.mask, window_size, result.bbox))
        return result


ENGINES: dict[str, Engine] = {
    "pixelmatch": Engine("pixelmatch", "snapcompare-pixelmatch7-yiq/1",
                         "pixelmatch 7.2.0 (YIQ)", pixelmatch.scan, frozenset({"checkerboard"})),
    "oklab": Engine("oklab", "snapcompare-pixelmatch-c6fee35-oklab/1",
                    "pixelmatch main at c6fee35 (OKLab HyAB)", oklab.scan,
                    frozenset({"checkerboard"}), own_window=True),
    "odiff": Engine("odiff", "snapcompare-odiff4.5/2", "odiff 4.5.0", odiff.scan,
                    frozenset({"padded"}), takes_sizes=True),
}
"""Engines by name; ``pixelmatch`` is the default."""

DEFAULT_ENGINE = "pixelmatch"


def get_engine(name: str) -> Engine:
    """The engine called ``name``; ValueError listing the engines otherwise."""
    engine = ENGINES.get(name)
    if engine is None:
        raise ValueError(f"unknown engine {name!r}: expected one of {', '.join(ENGINES)}")
    return engine
