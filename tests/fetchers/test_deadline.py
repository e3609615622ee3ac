"""A store that trickles its answers (200 OK, then a byte at a time, so no read timeout ever
fires) against each network backend: a fetch ends at its deadline, and closing a batch ends
the requests on the wire at once, leaving no thread, connection or response behind."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from fetchers import BatchPrefetcher, BatchUploader, ClosableFetcher, fetcher_from_url
from fetchers.backends.gcs import GCSFetcher
from testing.gcs import STORAGE_EMULATOR_HOST
from testing.proxy import LatencyProxy

from .helpers import connections_to, runner_threads

pytestmark = pytest.mark.integration

DATA = os.urandom(20_000)
KEY = hashlib.sha256(DATA).hexdigest()


@dataclass
class Trickling:
    """A store behind a proxy whose next answers trickle, and a way to open a fetcher of it."""

    proxy: LatencyProxy
    open: Callable[[], ClosableFetcher]


@pytest.fixture
def s3_trickling(s3_server, s3_bucket, s3_fetcher_factory, latency_proxy) -> Trickling:
    s3_server.put_object(s3_bucket, KEY, DATA)
    proxy = latency_proxy("127.0.0.1", int(s3_server.endpoint_url.rsplit(":", 1)[1]))
    return Trickling(proxy, lambda: s3_fetcher_factory(s3_bucket, endpoint_url=proxy.url, max_connections=4))


@pytest.fixture
def gcs_trickling(gcs_server, gcs_bucket, latency_proxy, monkeypatch) -> Trickling:
    gcs_server.upload(gcs_bucket, KEY, DATA)
    proxy = latency_proxy(gcs_server.host, gcs_server.port)
    monkeypatch.setenv(STORAGE_EMULATOR_HOST, proxy.url)
    return Trickling(proxy, lambda: GCSFetcher(gcs_bucket, max_connections=4))


@pytest.fixture
def objectstore_trickling(objectstore_server, latency_proxy) -> Trickling:
    objectstore_server.put(f"1/2/{KEY}", DATA, compress="none")
    host, port = objectstore_server.url.removeprefix("http://").rsplit(":", 1)
    proxy = latency_proxy(host, int(port))
    url = f"objectstore+http://{proxy.url.removeprefix('http://')}/preprod?org=1&project=2&prefix=1/2"
    return Trickling(proxy, lambda: fetcher_from_url(url, max_connections=4))


@pytest.fixture(params=["s3", "gcs", "objectstore"])
def trickling(request) -> Iterator[Trickling]:
    store = request.getfixturevalue(f"{request.param}_trickling")
    # Headers and the first body bytes arrive at once; the rest a byte every 50 ms, past any
    # read timeout's reach (each wait for bytes is short) and past the test (20 kB: 16 min).
    store.proxy.inject("trickle", count=1000, at_byte=1000, interval=0.05)
    yield store


def test_a_trickled_answer_ends_at_the_deadline(trickling):
    with trickling.open() as fetcher, BatchPrefetcher(fetcher, max_workers=4, deadline=0.5) as batch:
        result = batch.fetch_all([KEY])
    error = result.errors[KEY]
    assert error.message == "no complete answer within the 0.5 s deadline (request interrupted)"
    assert not error.retryable and result.stats.fetches_issued == 1
    assert trickling.proxy.bytes_trickled > 0
    assert connections_to(trickling.proxy.port) == [] and runner_threads() == []


def test_closing_a_batch_ends_a_trickled_fetch_at_once_and_leaves_nothing_open(trickling):
    fetcher = trickling.open()
    batch = BatchPrefetcher(fetcher, max_workers=4, deadline=3600)
    outcome: dict[str, object] = {}
    consumer = threading.Thread(target=lambda: outcome.update(batch.fetch_all([KEY]).errors))
    consumer.start()
    assert trickling.proxy.trickled.wait(30)  # the request is on the wire, its body trickling

    batch.close()  # were it to wait for the trickle, the test would time out
    consumer.join()

    assert str(outcome[KEY]).endswith("cancelled: the batch was closed (request interrupted)")
    assert runner_threads() == []
    assert connections_to(trickling.proxy.port) == []
    fetcher.close()


def test_closing_the_fetcher_ends_a_direct_fetch_on_the_wire(trickling):
    fetcher = trickling.open()
    failed: list[BaseException] = []

    def fetch() -> None:
        try:
            fetcher.fetch(KEY)
        except Exception as exc:  # noqa: BLE001 - the failure is what the test looks at
            failed.append(exc)

    reader = threading.Thread(target=fetch)
    reader.start()
    assert trickling.proxy.trickled.wait(30)
    fetcher.close()
    reader.join()
    assert failed and getattr(failed[0], "retryable", False)
    assert connections_to(trickling.proxy.port) == []


def test_a_write_whose_answer_trickles_ends_at_the_deadline(objectstore_trickling):
    blob = os.urandom(100)
    key = hashlib.sha256(blob).hexdigest()
    objectstore_trickling.proxy.inject("trickle", count=1000, interval=0.05)  # the status line too
    with objectstore_trickling.open() as fetcher, BatchUploader(fetcher, max_workers=2, deadline=0.5) as uploader:
        result = uploader.upload_all({key: blob}, skip_existing=False)
    assert "0.5 s deadline" in str(result.errors[key])
    assert connections_to(objectstore_trickling.proxy.port) == []
