"""Pictures of added, removed and renamed images: fetched once each when previews are on, made as
pair previews are, and never an error: a picture that cannot be made is only missing."""

from __future__ import annotations

import io
import threading

import pytest
from PIL import Image

from compare.engine.singles import add_single_previews
from compare.model import CompareOptions, Comparison, ImageResult, Status
from compare.output.artifacts import ArtifactWriter
from fetchers import BatchPrefetcher, FetchError, LocalFetcher, StoreUnavailable

from .helpers import Store, png

pytestmark = pytest.mark.unit


class Counting(LocalFetcher):
    """A local store that counts the fetches of each key."""

    def __init__(self, root) -> None:
        super().__init__(root)
        self.fetched: dict[str, int] = {}
        self._lock = threading.Lock()

    def fetch(self, key: str) -> bytes:
        with self._lock:
            self.fetched[key] = self.fetched.get(key, 0) + 1
        return super().fetch(key)


def comparison(store: Store) -> Comparison:
    """One of each status a picture is made for, two added images sharing a blob, a corrupt
    blob, a missing one, and images that get none."""
    tall = store.add(png(900, 300))
    small = store.add(png(40, 30, mark=(5, 5)))
    gone = store.add(png(50, 20, colour=(200, 20, 20)))
    corrupt = store.add(png(30, 30)[:60])
    images = [
        ImageResult("added.png", Status.ADDED, head_hash=tall),
        ImageResult("copy.png", Status.ADDED, head_hash=tall),
        ImageResult("removed.png", Status.REMOVED, base_hash=gone),
        ImageResult("renamed.png", Status.RENAMED, base_hash=small, head_hash=small,
                    previous_image_file_name="old.png"),
        ImageResult("corrupt.png", Status.ADDED, head_hash=corrupt),
        ImageResult("missing.png", Status.ADDED, head_hash="f" * 64),
        ImageResult("same.png", Status.UNCHANGED, base_hash=small, head_hash=small),
        ImageResult("skipped.png", Status.SKIPPED, base_hash=gone),
    ]
    return Comparison({r.name: r for r in images}, CompareOptions())


def test_added_removed_and_renamed_images_get_their_picture(store: Store, tmp_path) -> None:
    before = comparison(store)
    fetcher = Counting(store.root)

    with ArtifactWriter(tmp_path / "out") as writer:
        after = add_single_previews(before, fetcher, writer, before.options)

    images = after.images
    assert {name for name, r in images.items() if r.previews} == {"added.png", "copy.png", "removed.png", "renamed.png"}
    assert set(images["added.png"].previews) == {"after"}
    assert set(images["removed.png"].previews) == {"before"}
    # A rename has one blob: both sides are one picture, one file.
    assert images["renamed.png"].previews["before"] == images["renamed.png"].previews["after"]
    # Two images of one blob: one fetch, one file.
    assert images["copy.png"].previews == images["added.png"].previews
    assert all(count == 1 for count in fetcher.fetched.values())
    singles = ("added.png", "removed.png", "renamed.png", "corrupt.png", "missing.png")
    assert set(fetcher.fetched) == {r.head_hash or r.base_hash for name, r in before.images.items() if name in singles}
    # Pictures as pair previews are: JPEGs at most 400 pixels wide, small images as they are.
    sizes = {name: Image.open(io.BytesIO((tmp_path / "out" / key).read_bytes())).size
             for name in ("added.png", "removed.png", "renamed.png")
             for key in images[name].previews.values()}
    assert sizes == {"added.png": (300, 100), "removed.png": (50, 20), "renamed.png": (40, 30)}
    # The pictures that could not be made are only missing: statuses and figures stay.
    for name in ("corrupt.png", "missing.png", "same.png", "skipped.png"):
        assert images[name] == before.images[name]
    assert {name: r.status for name, r in images.items()} == {name: r.status for name, r in before.images.items()}


def test_without_previews_nothing_is_fetched(store: Store, tmp_path) -> None:
    before = comparison(store)
    before.options = CompareOptions(previews=False)
    fetcher = Counting(store.root)

    with ArtifactWriter(tmp_path / "out") as writer:
        after = add_single_previews(before, fetcher, writer, before.options)

    assert after is before and fetcher.fetched == {}
    assert not (tmp_path / "out" / "previews").exists()


def test_an_image_over_the_pixel_limit_gets_no_picture(store: Store, tmp_path) -> None:
    before = comparison(store)
    options = CompareOptions(max_pixels=100_000)

    with ArtifactWriter(tmp_path / "out") as writer:
        after = add_single_previews(before, Counting(store.root), writer, options)

    assert after.images["added.png"].previews is None  # 900x300
    assert after.images["removed.png"].previews is not None


class Down(LocalFetcher):
    """A store every request fails for a store-wide reason (as denied credentials would)."""

    def fetch(self, key: str) -> bytes:
        raise FetchError(key, "access denied (HTTP 403)", store_wide=True)


def test_a_store_that_is_down_leaves_the_pictures_missing(store: Store, tmp_path) -> None:
    before = comparison(store)
    fetcher = Down(store.root)
    with pytest.raises(StoreUnavailable), BatchPrefetcher(fetcher) as prefetcher:
        prefetcher.fetch_all(list({r.head_hash or r.base_hash for r in before.images.values()}))

    with ArtifactWriter(tmp_path / "out") as writer:
        after = add_single_previews(before, fetcher, writer, before.options)

    assert after.images == before.images
