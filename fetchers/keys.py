"""Key validation, prefix joining and content checks, shared by every backend and batch."""

from __future__ import annotations

import hashlib
import re

from .errors import FetchError, IntegrityError, StoreError

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_MD5_HEX = re.compile(r"[0-9a-fA-F]{32}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def is_sha256_hex(key: str) -> bool:
    """True when ``key`` is a sha256 digest in hex (either case), as content-addressed keys are."""
    return isinstance(key, str) and _SHA256_HEX.fullmatch(key) is not None


def is_md5_hex(text: str) -> bool:
    """True when ``text`` is an MD5 digest in hex (either case), as a single-part S3 ETag is."""
    return _MD5_HEX.fullmatch(text) is not None


def check_key(key: str, kind: type[StoreError] = FetchError) -> str:
    """Return ``key`` if it is a valid relative blob key, else raise a non-retryable ``kind``
    (a `FetchError` by default; a write refuses its key with a `WriteError`).

    A valid key is a non-empty ``/``-separated relative path without empty, ``.`` or ``..``
    segments, without control characters and without lone surrogates (no store can name them).
    """
    if not isinstance(key, str) or not key:
        raise kind(str(key), "invalid key: empty or not a string")
    if _CONTROL.search(key):
        raise kind(key, "invalid key: contains a control character")
    if not key.isascii():
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: an undecodable file name, a JSON escape
            raise kind(key, "invalid key: not valid Unicode (a lone surrogate)") from None
    if key.startswith("/") or "\\" in key:
        raise kind(key, "invalid key: must be a relative path with '/' separators")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise kind(key, "invalid key: empty, '.' or '..' path segment")
    return key


def normalize_prefix(prefix: str) -> str:
    """Strip surrounding slashes from a prefix (``"/1/2/"`` -> ``"1/2"``)."""
    return prefix.strip("/")


def join_key(prefix: str, key: str, kind: type[StoreError] = FetchError) -> str:
    """Join a normalized prefix and a key checked by `check_key` (which raises ``kind``) with
    ``/`` (``"1/2"``, ``"k"`` -> ``"1/2/k"``)."""
    check_key(key, kind)
    return f"{prefix}/{key}" if prefix else key


def check_digest(key: str, data: bytes) -> None:
    """Raise `IntegrityError` unless ``data`` hashes to ``key`` (a sha256 hex digest); a
    non-retryable `FetchError` when ``key`` is no such digest."""
    if not is_sha256_hex(key):
        raise FetchError(key, "verify=True needs keys that are sha256 hex digests")
    if hashlib.sha256(data).hexdigest() != key.lower():
        raise IntegrityError(key, f"content of {len(data)} bytes does not match its sha256 key")
