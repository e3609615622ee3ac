"""Time rename pairing when many images share one hash, and check it against the exact pairing.

    .venv/bin/python benchmarks/renames.py [IMAGES]

Half the images are old names, half new names of the same hash, renamed by a folder move or a
changed ending; prints the seconds `compare.plan.pair_by_similarity` takes and whether its
pairs equal the intended ones.
"""

from __future__ import annotations

import sys
import time

from compare.plan import pair_by_similarity


def main(images: int = 10_000) -> None:
    half = images // 2
    olds = [f"screens/feature_{i:05d}/state_{i % 7}.png" for i in range(half)]
    moved = {f"screens_v2/feature_{i:05d}/state_{i % 7}.png": old for i, old in enumerate(olds)}
    suffixed = {old.removesuffix(".png") + "_dark.png": old for old in olds}
    for label, expected in (("folder move", moved), ("suffix change", suffixed)):
        started = time.perf_counter()
        pairs = pair_by_similarity(expected, olds)
        elapsed = time.perf_counter() - started
        print(f"{label}: {images} images sharing one hash paired in {elapsed:.2f}s; "
              f"pairs as intended: {pairs == expected}")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:]))
