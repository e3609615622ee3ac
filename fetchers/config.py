"""One URL names the store a deployment reads from: `fetcher_from_url`."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from .local import LocalFetcher
from .protocol import BlobFetcher

SCHEMES = ("file", "s3", "gs", "objectstore+http", "objectstore+https")
_NETWORK_OPTIONS = ("max_connections", "connect_timeout", "read_timeout")


def fetcher_from_url(url: str, **options: Any) -> BlobFetcher:
    """Build the fetcher a store URL names.

    - ``file:///abs/dir`` or a plain path: `LocalFetcher`;
    - ``s3://bucket/prefix``: `S3Fetcher` (endpoint from ``AWS_ENDPOINT_URL``, credentials
      from the AWS chain);
    - ``gs://bucket/prefix``: `GCSFetcher` (``STORAGE_EMULATOR_HOST`` for an emulator,
      credentials from Application Default Credentials);
    - ``objectstore+http://host:port/<usecase>?org=1&project=2&prefix=1/2`` (or ``+https``):
      `ObjectstoreFetcher`; every query parameter but ``prefix`` is a scope, in order.

    ``options`` go to the backend: ``max_connections``, ``connect_timeout`` and
    ``read_timeout`` for the network stores (a local folder ignores them), and each backend's
    own keywords (e.g. ``token`` for objectstore). Raises ``ValueError`` naming the scheme or
    the part of the URL that is wrong; credentials in the URL are refused and never echoed.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("store URL is empty")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "":
        return _local(Path(url), options)
    if scheme not in SCHEMES:
        raise ValueError(f"unknown store scheme {parts.scheme!r}: expected one of {', '.join(SCHEMES)}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            f"{scheme} store URL must not carry credentials: configure them the SDK's own way"
        )
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file store URL must name a local path, not host {parts.netloc!r}")
        return _local(Path(unquote(parts.path)), options)
    if scheme in ("s3", "gs"):
        return _bucket_store(scheme, parts.netloc, parts.path, parts.query, options)
    return _objectstore(scheme, parts, options)


def _local(path: Path, options: dict[str, Any]) -> BlobFetcher:
    unknown = set(options) - set(_NETWORK_OPTIONS)
    if unknown:
        raise ValueError(f"file store takes no options {sorted(unknown)}")
    return LocalFetcher(path)


def _bucket_store(scheme: str, bucket: str, path: str, query: str, options: dict[str, Any]) -> BlobFetcher:
    if not bucket:
        raise ValueError(f"{scheme} store URL needs a bucket: {scheme}://bucket/prefix")
    if query:
        raise ValueError(f"{scheme} store URL takes no query parameters")
    prefix = path.strip("/")
    if scheme == "s3":
        from .s3 import S3Fetcher

        return S3Fetcher(bucket, prefix=prefix, **options)
    from .gcs import GCSFetcher

    return GCSFetcher(bucket, prefix=prefix, **options)


def _objectstore(scheme: str, parts: SplitResult, options: dict[str, Any]) -> BlobFetcher:
    if not parts.hostname:
        raise ValueError(f"{scheme} store URL needs a host: {scheme}://host:port/<usecase>")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise ValueError(f"{scheme} store URL has an invalid port") from exc
    base_path, _, usecase = parts.path.rstrip("/").rpartition("/")
    if not usecase:
        raise ValueError(f"{scheme} store URL needs a usecase as its path: {scheme}://host:port/<usecase>")
    prefix = ""
    scopes: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if name == "prefix":
            prefix = value
        elif name in scopes:
            raise ValueError(f"{scheme} store URL repeats scope {name!r}")
        else:
            scopes[name] = value
    base_url = f"{scheme.removeprefix('objectstore+')}://{parts.netloc}{base_path}"
    from .objectstore import ObjectstoreFetcher

    return ObjectstoreFetcher.connect(base_url, usecase, scopes=scopes, prefix=prefix, **options)
