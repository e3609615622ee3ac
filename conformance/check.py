"""Whether two copies of the conformance cases agree: the same inputs (and own option sets) byte
for byte, every expected value of every engine and option set, every mask pixel for pixel; and
`digest`, the same comparison as one value per case, so that a copy can be checked against a
record of another (``seed.json``) where the other is not at hand.

``python -m conformance.check SEED`` prints the record of the cases under ``SEED``."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from conformance import ENGINES, OPTIONS, inputs


def read_mask(path: Path) -> np.ndarray:
    """A mask PNG as a boolean array (True where the pixel is 255: changed)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("L")) == 255


def disagreements(ours: Path, theirs: Path) -> list[str]:
    """What differs between the case folders ``ours`` and ``theirs``; empty when they agree."""
    given = [tuple(path.name for path in inputs(folder) or ()) for folder in (ours, theirs)]
    if given[0] != given[1] or not given[0]:
        return [f"inputs: {', '.join(given[0]) or 'none'} here, {', '.join(given[1]) or 'none'} there"]
    required = given[0] + tuple(f for pair in ENGINES.values() for f in pair)
    missing = [f"{name}: missing {'here' if not (ours / name).is_file() else 'there'}"
               for name in required if not ((ours / name).is_file() and (theirs / name).is_file())]
    has_options = (ours / OPTIONS).is_file()
    if has_options != (theirs / OPTIONS).is_file():
        missing.append(f"{OPTIONS}: missing {'there' if has_options else 'here'}")
    if missing:
        return missing
    problems = [f"{name}: the bytes differ" for name in given[0] + ((OPTIONS,) if has_options else ())
                if (ours / name).read_bytes() != (theirs / name).read_bytes()]
    for expected_file, mask_file in ENGINES.values():
        here, there = (json.loads((folder / expected_file).read_text()) for folder in (ours, theirs))
        for key in sorted((here.keys() | there.keys()) - {"results"}):
            if here.get(key) != there.get(key):
                problems.append(f"{expected_file} {key}: {here.get(key)!r} here, {there.get(key)!r} there")
        if len(here["results"]) != len(there["results"]):
            problems.append(f"{expected_file}: {len(here['results'])} option sets here, "
                            f"{len(there['results'])} there")
        for index, (mine, other) in enumerate(zip(here["results"], there["results"], strict=False)):
            for key in sorted(mine.keys() | other.keys()):
                if mine.get(key) != other.get(key):
                    problems.append(f"{expected_file} results[{index}] {key}: {mine.get(key)!r} here, "
                                    f"{other.get(key)!r} there")
        mask, other_mask = read_mask(ours / mask_file), read_mask(theirs / mask_file)
        if mask.shape != other_mask.shape:
            problems.append(f"{mask_file}: {mask.shape[1]}x{mask.shape[0]} here, "
                            f"{other_mask.shape[1]}x{other_mask.shape[0]} there")
        elif (differing := int((mask != other_mask).sum())):
            problems.append(f"{mask_file}: {differing} of {mask.size} pixels differ")
    return problems


def digest(folder: Path) -> str:
    """One sha256 of what `disagreements` compares in the case ``folder``: its inputs' and own
    option sets' bytes, every engine's expected values, every mask's pixels (not its PNG bytes)."""
    given = inputs(folder)
    if given is None:
        raise ValueError(f"{folder}: not a case (no base and head inputs)")
    hashed = hashlib.sha256()
    for path in (*given, *([folder / OPTIONS] if (folder / OPTIONS).is_file() else [])):
        hashed.update(path.name.encode() + b"\0" + path.read_bytes())
    for expected_file, mask_file in ENGINES.values():
        expected = json.loads((folder / expected_file).read_text())
        hashed.update(json.dumps(expected, sort_keys=True).encode())
        mask = read_mask(folder / mask_file)
        hashed.update(b"%dx%d" % (mask.shape[1], mask.shape[0]) + np.packbits(mask).tobytes())
    return hashed.hexdigest()


if __name__ == "__main__":
    from conformance import case_names

    seed = Path(sys.argv[1])
    print(json.dumps({case: digest(seed / case) for case in case_names(seed)}, indent=2))
