"""BatchUploader through its public API, over a scripted in-memory store."""

from __future__ import annotations

import hashlib
import os
import threading
import traceback
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fetchers import (
    BatchUploader,
    BlobNotFound,
    FetchError,
    StoredBlob,
    StoreUnavailable,
    UploadStats,
    WriteError,
)
from fetchers.backends.local import LocalFetcher
from testing.waiting import PATIENCE, wait_until

from .helpers import FAST_RETRY

pytestmark = pytest.mark.unit


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class MemoryStore:
    """A thread-safe store in memory; ``failures[key]`` lists errors its next puts raise."""

    def __init__(self, failures=None, *, down: StoreUnavailable | None = None):
        self.blobs: dict[str, tuple[bytes, str]] = {}
        self.failures = {key: list(errors) for key, errors in (failures or {}).items()}
        self.down = down
        self.puts: Counter[str] = Counter()
        self.checks: Counter[str] = Counter()
        self.lock = threading.Lock()

    def exists(self, key: str) -> bool:
        with self.lock:
            self.checks[key] += 1
        if self.down is not None:
            raise self.down
        return key in self.blobs

    def put(self, key: str, data: bytes, content_type: str) -> None:
        with self.lock:
            self.puts[key] += 1
            failures = self.failures.get(key)
            if failures:
                raise failures.pop(0)
            self.blobs[key] = (data, content_type)


def blobs(count: int) -> dict[str, bytes]:
    contents = [f"image {i}".encode() for i in range(count)]
    return {sha(data): data for data in contents}


@settings(max_examples=30, deadline=None)
@given(count=st.integers(0, 30), present=st.integers(0, 30), workers=st.integers(1, 8))
def test_every_blob_ends_in_the_store_and_a_second_upload_writes_nothing(count, present, workers):
    data = blobs(count)
    store = MemoryStore()
    for key in list(data)[:present]:
        store.blobs[key] = (data[key], "image/png")
    with BatchUploader(store, max_workers=workers, retry=FAST_RETRY) as uploader:
        first = uploader.upload_all(data, content_type="image/png", verify=True)
        second = uploader.upload_all(data, content_type="image/png", verify=True)
    assert {key: body for key, (body, _) in store.blobs.items()} == data
    assert sorted(first.written + first.skipped) == sorted(data) and not first.errors
    assert len(first.skipped) == min(present, count)
    assert second.written == [] and sorted(second.skipped) == sorted(data)
    assert all(n == 1 for n in store.puts.values())
    assert first.stats.requests_issued == len(data) + len(first.written)


def test_retryable_write_failures_are_retried_and_permanent_ones_reported():
    data = blobs(3)
    flaky, denied, fine = data
    store = MemoryStore({
        flaky: [WriteError(flaky, "503", retryable=True), WriteError(flaky, "503", retryable=True)],
        denied: [WriteError(denied, "quota exceeded")],
    })
    with BatchUploader(store, max_workers=2, retry=FAST_RETRY) as uploader:
        result = uploader.upload_all(data)
    assert sorted(result.written) == sorted([flaky, fine])
    assert set(result.errors) == {denied} and isinstance(result.errors[denied], WriteError)
    assert store.puts == Counter({flaky: 3, denied: 1, fine: 1})
    assert result.stats.retries == 2


def test_sources_are_read_only_for_blobs_that_are_written():
    data = blobs(2)
    have, lack = data
    store = MemoryStore()
    store.blobs[have] = (data[have], "image/png")
    read = []

    def source(key):
        return lambda: read.append(key) or data[key]

    with BatchUploader(store) as uploader:
        result = uploader.upload_all({key: source(key) for key in data})
    assert read == [lack] and result.written == [lack] and result.skipped == [have]


def test_verify_refuses_bytes_that_do_not_match_their_key():
    key = sha(b"what was hashed")
    store = MemoryStore()
    with BatchUploader(store, retry=FAST_RETRY) as uploader:
        result = uploader.upload_all({key: b"what is there now"}, verify=True)
    assert isinstance(result.errors[key], WriteError) and not result.errors[key].retryable
    assert store.puts[key] == 0


def test_skip_existing_false_replaces_what_the_key_held():
    store = MemoryStore()
    store.blobs["builds/m.json"] = (b"old", "application/json")
    with BatchUploader(store) as uploader:
        result = uploader.upload_all({"builds/m.json": b"new"}, content_type="application/json",
                                     skip_existing=False)
    assert result.written == ["builds/m.json"] and store.checks["builds/m.json"] == 0
    assert store.blobs["builds/m.json"] == (b"new", "application/json")


def test_a_store_wide_failure_stops_the_upload_early():
    data = blobs(200)
    denied = FetchError("k", "HTTP 401", store_wide=True, store="objectstore+http://h:1/preprod")
    store = MemoryStore(down=denied)
    with BatchUploader(store, max_workers=16, retry=FAST_RETRY) as uploader:
        with pytest.raises(StoreUnavailable) as info:
            uploader.upload_all(data)
    assert sum(store.checks.values()) <= 5 and not store.puts  # 3 in flight, 2 started as 2 failed
    assert str(info.value) == "objectstore+http://h:1/preprod: store unavailable: HTTP 401"
    assert isinstance(info.value, WriteError) and isinstance(info.value, FetchError)


def test_a_bug_in_the_writer_or_a_source_reaches_the_caller_as_it_is():
    class Buggy(MemoryStore):
        def put(self, key: str, data: bytes, content_type: str) -> None:
            raise TypeError("planted")

    def source() -> bytes:
        raise IndexError("planted")

    data = blobs(1)
    with BatchUploader(Buggy(), retry=FAST_RETRY) as uploader:
        with pytest.raises(TypeError, match="^planted$") as caught:
            uploader.upload_all(data)
        assert traceback.extract_tb(caught.value.__traceback__)[-1].name == "put"
        with pytest.raises(IndexError, match="^planted$"):
            uploader.upload_all({key: source for key in data})


def test_a_source_that_cannot_be_read_is_one_blob_s_error(tmp_path):
    data = blobs(2)
    missing, present = data
    (tmp_path / "present").write_bytes(data[present])
    with BatchUploader(MemoryStore()) as uploader:
        result = uploader.upload_all({missing: tmp_path / "missing", present: tmp_path / "present"})
    assert result.written == [present] and isinstance(result.errors[missing], WriteError)
    assert isinstance(result.errors[missing].__cause__, FileNotFoundError)


def test_writer_without_put_is_refused():
    with pytest.raises(TypeError):
        BatchUploader(object())


class CheckedStore(MemoryStore):
    """A `MemoryStore` that describes what it holds (`stat`) as a store keeping ``keeps`` does:
    "md5" (and the size, as S3 and GCS), "size" (as objectstore) or "sha256" (as a folder);
    it can read blobs back (`fetch`)."""

    def __init__(self, keeps: str):
        super().__init__()
        self.keeps = keeps
        self.fetches: Counter[str] = Counter()

    def stat(self, key: str) -> StoredBlob | None:
        with self.lock:
            self.checks[key] += 1
            if key not in self.blobs:
                return None
            data = self.blobs[key][0]
        return StoredBlob(
            size=len(data) if self.keeps != "sha256" else None,
            md5=hashlib.md5(data).hexdigest() if self.keeps == "md5" else None,
            sha256=sha(data) if self.keeps == "sha256" else None,
        )

    def fetch(self, key: str) -> bytes:
        with self.lock:
            self.fetches[key] += 1
            return self.blobs[key][0]


@pytest.mark.parametrize("keeps", ["md5", "sha256", "size"])
def test_wrong_bytes_under_a_hash_are_rewritten_where_the_store_can_tell(keeps):
    data = blobs(3)
    good, bad, missing = data
    store = CheckedStore(keeps)
    store.blobs[good] = (data[good], "image/png")
    store.blobs[bad] = (bytes(reversed(data[bad])), "image/png")  # the right size, the wrong bytes
    with BatchUploader(store, retry=FAST_RETRY) as uploader:
        result = uploader.upload_all(data, verify=True)
        again = uploader.upload_all(data, verify=True, verify_existing=True)
    if keeps == "size":  # nothing tells the bytes apart but reading them back
        assert result.written == [missing] and result.stats.unverified == 2
        assert again.written == [bad] and again.stats.repaired == 1 and store.fetches == Counter(data.keys())
    else:
        assert sorted(result.written) == sorted([bad, missing]) and result.skipped == [good]
        assert result.stats.repaired == 1 and result.stats.unverified == 0
        assert again.written == [] and not store.fetches
    assert {key: body for key, (body, _) in store.blobs.items()} == data


class CheckedManyStore(CheckedStore):
    """A `CheckedStore` that also checks and writes many blobs a call (a `ManyWriter`)."""

    batch_keys = 1000
    max_batch_blob = 1024 * 1024

    def stat_many(self, keys):
        for key in keys:
            yield key, self.stat(key)

    def put_many(self, blobs):
        for key, data, content_type in blobs:
            self.put(key, data, content_type)
            yield key, None


class TinyBatchStore(CheckedManyStore):
    """A `CheckedManyStore` whose batch writes take no blob: each goes with a request of its own."""

    max_batch_blob = 1


@pytest.mark.parametrize("store_type", [CheckedStore, CheckedManyStore, TinyBatchStore])
def test_a_source_that_changed_since_it_was_hashed_is_refused_though_the_store_holds_it(tmp_path, store_type):
    # The store keeps an MD5 that matches the source's bytes now, and those bytes no longer
    # hash to their key: with verify, an error for that key, whether it is written alone,
    # in a batch, or alone by a store that writes batches; without, the store already holds
    # what the source holds, and nothing is written.
    (key, original), = blobs(1).items()
    changed = bytes(reversed(original))
    (tmp_path / "blob").write_bytes(changed)
    store = store_type("md5")
    store.blobs[key] = (changed, "image/png")
    with BatchUploader(store, retry=FAST_RETRY) as uploader:
        checked = uploader.upload_all({key: tmp_path / "blob"}, verify=True)
        unchecked = uploader.upload_all({key: tmp_path / "blob"})
    assert list(checked.errors) == [key] and "does not match" in checked.errors[key].message
    assert not checked.errors[key].retryable and checked.written == checked.skipped == []
    assert unchecked.skipped == [key] and unchecked.written == [] and not unchecked.errors
    assert store.puts == Counter()


def test_a_stored_blob_of_another_size_is_rewritten_without_reading_its_source(tmp_path):
    data = blobs(1)
    key = next(iter(data))
    store = CheckedStore("size")
    store.blobs[key] = (data[key][:-1], "image/png")  # truncated
    (tmp_path / "blob").write_bytes(data[key])
    with BatchUploader(store) as uploader:
        result = uploader.upload_all({key: tmp_path / "blob"}, verify=True)
    assert result.written == [key] and result.stats.repaired == 1 and not store.fetches
    assert store.blobs[key][0] == data[key]


class GatedStore(MemoryStore):
    """A `MemoryStore` whose puts wait for the test to let each one finish."""

    def __init__(self):
        super().__init__()
        self.putting = 0
        self.finished = 0
        self.let_one_finish = threading.Semaphore(0)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        with self.lock:
            self.putting += 1
        self.let_one_finish.acquire()
        with self.lock:
            self.putting -= 1
            self.finished += 1
        super().put(key, data, content_type)


def test_blobs_held_in_memory_stay_within_max_bytes_whatever_the_workers(tmp_path):
    contents = [bytes([i]) * 100 for i in range(8)]
    files = {}
    for data in contents:
        files[sha(data)] = tmp_path / sha(data)
        files[sha(data)].write_bytes(data)
    store = GatedStore()
    uploader = BatchUploader(store, max_workers=8, max_bytes=250)  # two blobs of 100 bytes fit, not three
    outcome = {}
    running = threading.Thread(target=lambda: outcome.update(result=uploader.upload_all(files, verify=True)))
    running.start()
    try:
        for _ in contents:
            # Once every job left is writing or waiting for memory, count the writes in progress.
            wait_until(lambda: store.putting + uploader.memory.waiting == len(contents) - store.finished)
            assert store.putting <= 2
            store.let_one_finish.release()
    finally:
        for _ in contents:  # whatever happened, let every write end
            store.let_one_finish.release()
        running.join()
        uploader.close()
    result = outcome["result"]
    assert sorted(result.written) == sorted(files) and result.stats.peak_bytes_held == 200


def test_a_blob_larger_than_max_bytes_is_uploaded_alone():
    data = {sha(body): body for body in (b"x" * 300, b"y" * 50, b"z" * 50)}
    store = MemoryStore()
    with BatchUploader(store, max_workers=3, max_bytes=100) as uploader:
        result = uploader.upload_all(data)
    assert sorted(result.written) == sorted(data) and result.stats.peak_bytes_held in (100, 300)



class VanishingStore(CheckedStore):
    """A `CheckedStore` keeping sizes only (as objectstore), whose ``vanished`` blob its checks
    list but is gone when read back."""

    def __init__(self, vanished: str, size: int):
        super().__init__("size")
        self.vanished, self.size = vanished, size
        self.read_while_checking = False

    def stat(self, key: str) -> StoredBlob | None:
        return StoredBlob(size=self.size) if key == self.vanished else super().stat(key)

    def fetch(self, key: str) -> bytes:
        if key == self.vanished:
            raise BlobNotFound(key)
        return super().fetch(key)


class VanishingManyStore(VanishingStore, CheckedManyStore):
    """A `VanishingStore` that checks many blobs a call, and records a read back while the
    answer to such a check is still open."""

    checking = False

    def stat_many(self, keys):
        self.checking = True
        try:
            yield from super().stat_many(keys)
        finally:
            self.checking = False

    def fetch(self, key: str) -> bytes:
        self.read_while_checking |= self.checking
        return super().fetch(key)


@pytest.mark.parametrize("store_type", [VanishingStore, VanishingManyStore])
def test_a_stored_blob_that_cannot_be_read_back_is_that_key_s_error_alone(store_type):
    data = blobs(4)
    vanished = next(iter(data))
    store = store_type(vanished, len(data[vanished]))
    store.blobs.update({key: (body, "image/png") for key, body in data.items() if key != vanished})
    with BatchUploader(store, max_workers=1, retry=FAST_RETRY) as uploader:
        result = uploader.upload_all(data, verify=True, verify_existing=True)
    assert list(result.errors) == [vanished] and "cannot read the stored blob back" in result.errors[vanished].message
    assert sorted(result.skipped) == sorted(set(data) - {vanished}) and not store.read_while_checking


def test_an_upload_that_ends_early_leaves_the_keys_another_upload_joined_running():
    gate = threading.Event()

    class GatedChecks(CheckedManyStore):
        batch_keys = 2

        def stat_many(self, keys):
            for key in keys:
                if key == held_up:
                    assert gate.wait(PATIENCE)
                yield key, self.stat(key)

    data = blobs(4)
    present, held_up, _, shared = data
    store = GatedChecks("md5")
    store.blobs[present] = (data[present], "image/png")
    stats = UploadStats()
    outcomes: dict[str, object] = {}
    with BatchUploader(store, max_workers=1, fail_fast_after=0, retry=FAST_RETRY) as uploader:
        first = uploader.iter_upload(data)
        assert next(first) == (present, False)  # its request waits on `held_up`; the next two are queued
        second = threading.Thread(target=lambda: outcomes.update(uploader.iter_upload({shared: data[shared]},
                                                                                      stats=stats)))
        second.start()
        wait_until(lambda: stats.shared == 1)  # it joined the first upload's queued key
        first.close()
        gate.set()
        second.join(PATIENCE)
    assert outcomes == {shared: True} and store.blobs[shared][0] == data[shared]


class SizelessFolder(LocalFetcher):
    """A folder store that, as objectstore's server, tells neither a checksum nor a size, and
    records (in ``reads``, which its limited copies share) the largest blob read back and the
    most read-backs at once."""

    def __init__(self, root):
        super().__init__(root)
        self.lock = threading.Lock()
        self.reads = Counter()

    def stat(self, key: str) -> StoredBlob | None:
        return None if super().stat(key) is None else StoredBlob()

    def fetch(self, key: str) -> bytes:
        with self.lock:
            self.reads["now"] += 1
            self.reads["most at once"] = max(self.reads["most at once"], self.reads["now"])
        try:
            data = super().fetch(key)
        finally:
            with self.lock:
                self.reads["now"] -= 1
        with self.lock:
            self.reads["largest"] = max(self.reads["largest"], len(data))
        return data


def test_read_backs_from_a_store_that_tells_no_size_keep_to_the_budget_and_the_source_size(tmp_path):
    sources = {sha(data): data for data in (os.urandom(2_000) for _ in range(6))}
    same, longer, shorter, unsized, *rest = sources
    (tmp_path / "store").mkdir()
    store = SizelessFolder(tmp_path / "store")
    for key, data in sources.items():
        stored = data + b"tail" if key in (longer, unsized) else data[:-1] if key == shorter else data
        (tmp_path / "store" / key).write_bytes(stored)
    given = {key: (lambda data=data: data) if key == unsized else data for key, data in sources.items()}
    with BatchUploader(store, max_workers=6, max_bytes=2_000, retry=FAST_RETRY) as uploader:
        result = uploader.upload_all(given, verify=True, verify_existing=True)
    # (The unsized source, read by a function, is read back no further than the whole budget.)
    assert sorted(result.written) == sorted([longer, shorter, unsized])
    assert sorted(result.skipped) == sorted([same, *rest])
    assert result.stats.peak_bytes_held <= 2_000 and store.reads["most at once"] == 1  # a source's size at a time
    assert store.reads["largest"] == 2_000  # the longer blob was not read past the source's size
    assert {key: (tmp_path / "store" / key).read_bytes() for key in sources} == sources
