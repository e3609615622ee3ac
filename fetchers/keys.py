"""Key validation and prefix joining, shared by every backend."""

from __future__ import annotations

from .errors import FetchError


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid relative blob key, else raise a non-retryable `FetchError`.

    A valid key is a non-empty ``/``-separated relative path without empty, ``.`` or ``..``
    segments and without control characters.
    """
    if not isinstance(key, str) or not key:
        raise FetchError(str(key), "invalid key: empty or not a string")
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise FetchError(key, "invalid key: contains a control character")
    if key.startswith("/") or "\\" in key:
        raise FetchError(key, "invalid key: must be a relative path with '/' separators")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise FetchError(key, "invalid key: empty, '.' or '..' path segment")
    return key


def normalize_prefix(prefix: str) -> str:
    """Strip surrounding slashes from a prefix (``"/1/2/"`` -> ``"1/2"``)."""
    return prefix.strip("/")


def join_key(prefix: str, key: str) -> str:
    """Join a normalized prefix and a checked key with ``/`` (``"1/2"``, ``"k"`` -> ``"1/2/k"``)."""
    check_key(key)
    return f"{prefix}/{key}" if prefix else key
