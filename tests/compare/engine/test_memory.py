"""What diffs and pictures are charged to the memory budget, and so how many run at once: sized
from the images' headers (never the manifests, which a pull request writes) and by what each
format's decoder holds."""

from __future__ import annotations

import gc
import hashlib
import io
import threading
import zlib
from collections.abc import Callable, Hashable

import numpy as np
import pytest
from PIL import Image, ImageFile

from compare.engine import pairs, singles
from compare.engine.budget import (
    DECODE_BYTES_PER_PIXEL,
    FAST_PNG_BYTES_PER_PIXEL,
    RGBA_BYTES_PER_PIXEL,
    DecodeCost,
    MemoryBudget,
    decode_cost,
)
from compare.engine.chunks import plan, run_chunk
from compare.engine.local import run_comparison
from compare.engine.pairs import DIFF_BYTES_PER_PIXEL, PairOutcome, PairTask, diff_pair, stream_pairs
from compare.engine.singles import add_single_previews
from compare.formats import SUPPORTED_FORMATS
from compare.imaging import decode as image_module
from compare.imaging.decode import OpenedImage
from compare.inputs.manifest import parse_manifest
from compare.model import CompareOptions, Comparison, ImageResult, Resources, Status
from compare.output.artifacts import ArtifactWriter
from fetchers import LocalFetcher

from ..imaging.compiled import need_fast_decoder
from .helpers import Store, png

pytestmark = pytest.mark.unit

RESOURCES = Resources(workers=4, fetch_workers=4, max_memory=256 * 1024 * 1024)
"""192 MiB for diffs and pictures, four threads to run them."""


def header_only_png(width: int, height: int, salt: bytes) -> bytes:
    """A PNG signature and IHDR claiming ``width`` x ``height``, then a unique text chunk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 6, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"tEXt", b"k\x00" + salt) + chunk(b"IDAT", b"")


def encoded(kind: str, width: int, height: int, colour: int = 0, **save: object) -> bytes:
    """An opaque ``width`` x ``height`` image of one grey, ``colour``, in format ``kind``."""
    pixels = np.full((height, width, 3), colour, dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=kind, **save)
    return out.getvalue()


def upright_by_exif(kind: str, width: int, height: int) -> bytes:
    """An image stored ``width`` x ``height`` whose EXIF orientation (6) turns it upright sideways."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(kind, width, height, exif=exif)


class Admissions:
    """A stream's admissions, watched: the work it holds budget reservations for at once (``held``,
    at most ``peak_held``) with what each was charged (``charges``), and the most that ran at once.

    ``module.<work>`` is replaced by one returning ``result(*its arguments)``, which waits until
    the stream waits for some work to finish, so a stream that admits one at a time holds one
    reservation; with ``together``, the first ``together`` wait at a barrier instead, which
    breaks unless that many run at once. ``owner`` says which budget owners are that work's.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module, work: str, result: Callable[..., object],
                 owner: Callable[[Hashable], bool], together: int | None = None) -> None:
        self.lock = threading.Lock()
        self.held: set[Hashable] = set()
        self.charges: dict[Hashable, int] = {}
        self.peak_held = self.peak_running = self.running = self.started = 0
        barrier = threading.Barrier(together, timeout=60) if together is not None else None
        stream_waits = threading.Event()
        real_wait = module.wait
        acquire, release = MemoryBudget.acquire, MemoryBudget.release

        def waiting(futures, timeout=None, return_when=None):
            if timeout is None:
                stream_waits.set()
            return real_wait(futures, timeout=timeout, return_when=return_when)

        def acquiring(budget, who, size):
            acquire(budget, who, size)
            if owner(who):
                with self.lock:
                    self.held.add(who)
                    self.charges[who] = size
                    self.peak_held = max(self.peak_held, len(self.held))

        def releasing(budget, who):
            with self.lock:
                self.held.discard(who)
            return release(budget, who)

        def working(*args, **kwargs):
            with self.lock:
                self.running += 1
                self.peak_running = max(self.peak_running, self.running)
                first = together is not None and self.started < together
                self.started += 1
            if barrier is None:
                assert stream_waits.wait(timeout=60)
            elif first:
                barrier.wait()
            with self.lock:
                self.running -= 1
            return result(*args, **kwargs)

        monkeypatch.setattr(MemoryBudget, "acquire", acquiring)
        monkeypatch.setattr(MemoryBudget, "release", releasing)
        monkeypatch.setattr(module, work, working)
        monkeypatch.setattr(module, "wait", waiting)


def watch_diffs(monkeypatch: pytest.MonkeyPatch, together: int | None = None) -> Admissions:
    """`Admissions` of the diffs of `stream_pairs`, each finding nothing changed."""
    def unchanged(task, before, after, options, images=None):
        return PairOutcome(task.base_hash, task.head_hash, changed_pixels=0, total_pixels=1)

    return Admissions(monkeypatch, pairs, "diff_pair", unchanged, lambda who: who[0] == "diff", together)


def watch_pictures(monkeypatch: pytest.MonkeyPatch) -> Admissions:
    """`Admissions` of the pictures of `add_single_previews`, each made of nothing."""
    return Admissions(monkeypatch, singles, "single_preview", lambda blob, options: None,
                      lambda who: isinstance(who, str))


def lying_builds(store: Store, count: int) -> tuple[object, object]:
    """Base and head manifests of ``count`` pairs of 2000x4000 images (by their headers), each
    declared 1x1."""
    def build(side: bytes, source: str) -> object:
        images = {f"n{i}.png": {"content_hash": store.add(header_only_png(2000, 4000, side + b"%d" % i)),
                                "width": 1, "height": 1} for i in range(count)}
        return parse_manifest({"images": images}, source)

    return build(b"b", "base.json"), build(b"h", "head.json")


def test_diffs_are_admitted_by_the_images_headers_whatever_the_manifests_declare(store, monkeypatch, tmp_path):
    # A 2000x4000 diff costs more than half of the 192 MiB for diffs: one at a time, however
    # small the manifests say its images are.
    base, head = lying_builds(store, 6)
    watched = watch_diffs(monkeypatch)
    comparison = run_comparison(base, head, LocalFetcher(store.root), CompareOptions(previews=False),
                                resources=RESOURCES, artifacts=ArtifactWriter(tmp_path / "out"))
    assert comparison.stats["pairs_diffed"] == 6
    assert watched.peak_held == 1
    canvas = 2000 * 4000
    assert set(watched.charges.values()) == {2 * canvas * RGBA_BYTES_PER_PIXEL + canvas * DIFF_BYTES_PER_PIXEL}


def test_a_cluster_worker_admits_a_chunk_s_diffs_by_their_headers(store, monkeypatch):
    # The plan sized the chunk by the manifests (six 1x1 pairs); the worker running it does not.
    base, head = lying_builds(store, 6)
    options = CompareOptions(previews=False)
    [chunk] = plan(base, head, options).chunks
    watched = watch_diffs(monkeypatch)
    result = run_chunk(chunk, LocalFetcher(store.root), options, RESOURCES)
    assert len(result.images) == 6
    assert watched.peak_held == 1


def test_small_diffs_run_together(store, monkeypatch):
    tasks = [PairTask(store.add(header_only_png(300, 200, b"b%d" % i)),
                      store.add(header_only_png(300, 200, b"h%d" % i)), f"n{i}.png") for i in range(6)]
    watched = watch_diffs(monkeypatch, together=4)
    outcomes = list(stream_pairs(LocalFetcher(store.root), CompareOptions(previews=False), RESOURCES, tasks))
    assert len(outcomes) == 6
    assert watched.peak_running == 4  # the pool's threads, all busy


def test_diffs_refused_before_decoding_cost_nothing(store, monkeypatch):
    # Over max_pixels, a pair is refused from its headers: it holds no pixels, however large.
    tasks = [PairTask(store.add(header_only_png(2000, 4000, b"b%d" % i)),
                      store.add(header_only_png(2000, 4000, b"h%d" % i)), f"n{i}.png") for i in range(6)]
    watched = watch_diffs(monkeypatch, together=4)
    options = CompareOptions(previews=False, max_pixels=1_000_000)
    outcomes = list(stream_pairs(LocalFetcher(store.root), options, RESOURCES, tasks))
    assert len(outcomes) == 6
    assert watched.peak_running == 4 and set(watched.charges.values()) == {0}


@pytest.mark.parametrize(("exif_orientation", "canvas"), [(True, 60 * 60), (False, 60 * 40)])
def test_a_diff_is_charged_for_its_canvas_as_the_images_are_placed_on_it(store, monkeypatch, exif_orientation,
                                                                          canvas):
    # 60x40 against a JPEG stored 60x40 that its EXIF orientation turns to 40x60.
    tasks = [PairTask(store.add(encoded("PNG", 60, 40)), store.add(upright_by_exif("JPEG", 60, 40)), "a.png")]
    watched = watch_diffs(monkeypatch)
    options = CompareOptions(previews=False, exif_orientation=exif_orientation)
    list(stream_pairs(LocalFetcher(store.root), options, RESOURCES, tasks))
    assert list(watched.charges.values()) == [2 * 2400 * RGBA_BYTES_PER_PIXEL + canvas * DIFF_BYTES_PER_PIXEL]


def test_each_image_of_a_pair_is_let_go_once_decoded(monkeypatch):
    # Pillow's WebP decoder keeps two canvases (8 bytes a pixel) for as long as its image lives:
    # the first image's are gone before the second decodes, and both before the diff.
    def opened() -> int:
        return sum(isinstance(thing, ImageFile.ImageFile) for thing in gc.get_objects())

    decoding, diffing = [], []  # images alive as each decodes, then as the diff starts
    real_rgba, real_diff = OpenedImage.rgba, pairs.diff_images

    def rgba(self):
        if not diffing:  # the diff "decodes" its arrays too
            decoding.append(opened())
        return real_rgba(self)

    def diff(*args, **kwargs):
        diffing.append(opened())
        return real_diff(*args, **kwargs)

    monkeypatch.setattr(OpenedImage, "rgba", rgba)
    monkeypatch.setattr(pairs, "diff_images", diff)
    gc.collect()
    before = opened()
    outcome = diff_pair(PairTask("a", "b", "a.webp"), encoded("WEBP", 50, 40, lossless=True),
                        encoded("WEBP", 50, 40, colour=255, lossless=True), CompareOptions())
    assert outcome.reason is None and outcome.changed_pixels
    assert [count - before for count in decoding] == [2, 1]
    assert [count - before for count in diffing] == [0]


def pictured(store: Store, blobs: list[bytes]) -> Comparison:
    """A comparison of ``blobs`` as added images."""
    images = [ImageResult(f"n{i}", Status.ADDED, head_hash=store.add(blob)) for i, blob in enumerate(blobs)]
    return Comparison({image.name: image for image in images}, CompareOptions())


PICTURES = [
    ("PNG", {}, True),
    ("PNG", {}, False),
    ("JPEG", {}, False),
    ("GIF", {}, False),
    ("BMP", {}, False),
    ("TIFF", {}, False),
    ("WEBP", {"lossless": True}, False),
]


@pytest.mark.parametrize(("kind", "save", "compiled"), PICTURES,
                         ids=[f"{kind}{'-compiled' if compiled else ''}" for kind, _, compiled in PICTURES])
def test_a_picture_is_charged_its_blob_and_what_its_format_takes_to_decode(store, monkeypatch, tmp_path, kind,
                                                                           save, compiled):
    if compiled:
        need_fast_decoder()
    monkeypatch.setattr(image_module, "FAST_PNG_DECODER", compiled)
    blob = encoded(kind, 64, 48, **save)
    watched = watch_pictures(monkeypatch)
    with ArtifactWriter(tmp_path / "out") as writer:
        add_single_previews(pictured(store, [blob]), LocalFetcher(store.root), writer, CompareOptions(), RESOURCES)
    per_pixel = FAST_PNG_BYTES_PER_PIXEL if compiled else DECODE_BYTES_PER_PIXEL[kind]
    assert watched.charges == {store.add(blob): len(blob) + 64 * 48 * per_pixel}


def test_pictures_that_take_much_to_decode_are_made_one_at_a_time(store, monkeypatch, tmp_path):
    # Decoding a 2000x2000 WebP holds 112 MB: more than half of the 192 MiB for pictures.
    blobs = [encoded("WEBP", 2000, 2000, colour=colour) for colour in range(0, 250, 50)]
    watched = watch_pictures(monkeypatch)
    with ArtifactWriter(tmp_path / "out") as writer:
        add_single_previews(pictured(store, blobs), LocalFetcher(store.root), writer, CompareOptions(), RESOURCES)
    assert len(watched.charges) == 5
    assert watched.peak_held == 1


def test_every_format_read_has_its_decoding_cost():
    assert set(DECODE_BYTES_PER_PIXEL) == set(SUPPORTED_FORMATS)


def test_a_decode_is_sized_upright_and_an_unreadable_one_costs_nothing():
    stored = upright_by_exif("WEBP", 30, 20)
    assert decode_cost(stored) == DecodeCost((20, 30), 600 * DECODE_BYTES_PER_PIXEL["WEBP"])
    assert decode_cost(stored, exif_orientation=False).size == (30, 20)
    assert decode_cost(b"\x89PNG\r\n\x1a\n not a png") is None


class Recording:
    """A fetcher of blobs in memory that records the order it is asked for them."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs
        self.order: list[str] = []

    def fetch(self, key: str) -> bytes:
        self.order.append(key)
        return self.blobs[key]


def most_held(order: list[str], tasks: list[PairTask]) -> int:
    """The most blobs held at once when fetched in ``order``: each from its fetch until every
    pair that uses it has both blobs."""
    position = {key: index for index, key in enumerate(order)}
    last_needed: dict[str, int] = {}
    for task in tasks:
        ready = max(position[task.base_hash], position[task.head_hash])
        for key in (task.base_hash, task.head_hash):
            last_needed[key] = max(last_needed.get(key, 0), ready)
    return max(sum(position[key] <= step <= last_needed[key] for key in order) for step in range(len(order)))


def test_heads_that_pair_with_two_bases_are_not_held_from_one_base_s_pairs_to_the_other_s():
    # 40 names compare with base one, 40 with base two, and each head is in one pair of each:
    # fetched base by base, all 40 heads (and their pixels) were held until the second base.
    bases = [png(24, 24, colour=(200, 0, 0)), png(24, 24, colour=(0, 200, 0))]
    heads = [png(24, 24, mark=(i % 20, i // 20)) for i in range(40)]
    blobs = {hashlib.sha256(data).hexdigest(): data for data in (*bases, *heads)}
    base_keys = [hashlib.sha256(data).hexdigest() for data in bases]
    head_keys = [hashlib.sha256(data).hexdigest() for data in heads]
    tasks = [PairTask(base, head, f"{side}/{i}.png") for side, base in enumerate(base_keys)
             for i, head in enumerate(head_keys)]
    fetcher = Recording(blobs)
    outcomes = list(stream_pairs(fetcher, CompareOptions(), Resources(workers=1, fetch_workers=1), tasks))
    assert len(outcomes) == len(tasks) and all(outcome.reason is None for outcome in outcomes)
    assert sorted(fetcher.order) == sorted(blobs)  # each blob once
    assert most_held(fetcher.order, tasks) <= 4


def test_a_pair_refused_for_its_size_reports_the_sizes_its_headers_told():
    base, head = png(50, 40), png(60, 40)
    blobs = {hashlib.sha256(data).hexdigest(): data for data in (base, head)}
    task = PairTask(*blobs, "big.png")
    (outcome,) = stream_pairs(Recording(blobs), CompareOptions(max_pixels=1000), Resources(workers=1), [task])
    assert outcome.reason is not None and outcome.reason.value == "exceeds_pixel_limit"
    assert (outcome.before_size, outcome.after_size) == ((50, 40), (60, 40))


def test_a_chain_of_bases_linked_by_shared_heads_holds_few_blobs_at_a_time():
    # a_i compares H_i with B_i, b_i with B_i+1, c_i compares X_i with B_i: a walk that went down
    # the chain first left every base waiting for its c pair until the chain's end.
    n = 30
    images = [png(24, 24, mark=(i % 20, i // 20)) for i in range(3 * n + 1)]
    keys = [hashlib.sha256(data).hexdigest() for data in images]
    blobs = dict(zip(keys, images, strict=True))
    bases, heads, others = keys[:n + 1], keys[n + 1:2 * n + 1], keys[2 * n + 1:]
    tasks = [task for i in range(n) for task in (PairTask(bases[i], heads[i], f"a{i}.png"),
                                                 PairTask(bases[i + 1], heads[i], f"b{i}.png"),
                                                 PairTask(bases[i], others[i], f"c{i}.png"))]
    fetcher = Recording(blobs)
    outcomes = list(stream_pairs(fetcher, CompareOptions(), Resources(workers=1, fetch_workers=1), tasks))
    assert len(outcomes) == len(tasks) and sorted(fetcher.order) == sorted(blobs)
    assert most_held(fetcher.order, tasks) <= 4
