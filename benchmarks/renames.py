"""Time rename pairing when many images share one hash, and check it against the intended pairs.

    .venv/bin/python benchmarks/renames.py [IMAGES [LENGTH]]

Half the images are old names, half new names of the same hash: renamed by a folder move, by a
changed ending, or unrelated random names (timing only). With LENGTH, every name gets a leading
folder that pads it to about that many characters. Prints the seconds
`compare.classify.pair_by_similarity` takes and whether its pairs are the intended ones.
"""

from __future__ import annotations

import random
import string
import sys
import time

from compare.classify import pair_by_similarity


def _random_name(rng: random.Random) -> str:
    parts = ("".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 10)))
             for _ in range(rng.randint(1, 3)))
    return "/".join(parts) + ".png"


def main(images: int = 10_000, length: int = 0) -> None:
    half = images // 2
    pad = "p" * max(0, length - 40) + "/" if length > 40 else ""
    olds = [f"{pad}screens/feature_{i:05d}/state_{i % 7}.png" for i in range(half)]
    moved = {f"{pad}screens_v2/feature_{i:05d}/state_{i % 7}.png": old for i, old in enumerate(olds)}
    suffixed = {old.removesuffix(".png") + "_dark.png": old for old in olds}
    for label, expected in (("folder move", moved), ("suffix change", suffixed)):
        started = time.perf_counter()
        pairs = pair_by_similarity(expected, olds)
        elapsed = time.perf_counter() - started
        print(f"{label}: {images} images sharing one hash paired in {elapsed:.2f}s; "
              f"pairs as intended: {pairs == expected}")
    rng = random.Random(1)
    news = {pad + _random_name(rng) + "~" for _ in range(half)}
    randoms = {pad + _random_name(rng) for _ in range(half)}
    started = time.perf_counter()
    pairs = pair_by_similarity(news, randoms)
    print(f"random names: {len(news) + len(randoms)} images sharing one hash paired in "
          f"{time.perf_counter() - started:.2f}s; {len(pairs)} pairs")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:]))
