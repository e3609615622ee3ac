"""Files a comparison writes beside its reports: diff masks and report previews."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from ..engine.pairs import PairOutcome


class ArtifactWriter:
    """Writes masks and previews under the output folder, at collision-free paths."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir

    def mask(self, name: str, png: bytes) -> str:
        return self._write(f"diff/{safe_file_name(name)}.png", png)

    def previews(self, outcome: PairOutcome) -> dict[str, str] | None:
        if not outcome.previews:
            return None
        pair = f"{outcome.base_hash[:16]}-{outcome.head_hash[:16]}"
        return {kind: self._write(f"previews/{pair}/{file}", data) for kind, (file, data) in _named(outcome.previews)}

    def _write(self, relative: str, data: bytes) -> str:
        path = self.out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return relative


def _named(previews: dict[str, bytes]) -> Iterator[tuple[str, tuple[str, bytes]]]:
    for kind, data in previews.items():
        extension = "png" if data.startswith(b"\x89PNG") else "jpg"
        yield kind, (f"{kind}.{extension}", data)


def safe_file_name(name: str) -> str:
    """A single file name for image ``name``, distinct for every distinct name.

    Every character but ASCII letters, digits and ``._-~`` is percent-encoded, ``/`` included
    (``icons/home.png`` -> ``icons%2Fhome.png``), and ``.`` and ``..`` are spelled ``%2E``, so
    names can neither leave the folder nor collide as a file and a folder. A name too long for a file system maps to ``%%`` and its
    sha256, a form percent-encoding never produces.
    """
    encoded = quote(name, safe="", errors="surrogatepass")
    if encoded in (".", ".."):
        return encoded.replace(".", "%2E")  # quote never writes %2E, so this stays distinct
    if len(encoded) > 200:
        return "%%" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    return encoded
