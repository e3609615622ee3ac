"""One module per store, each the only importer of its SDK; `fetchers.registry` names them.

Where an SDK offers no public way to do what its backend needs, the backend reads the SDK's
internal through `sdk_internal`, which fails at construction, naming the versions, when an SDK
upgrade has changed it: a safeguard never switches itself off quietly.
"""

from __future__ import annotations

from importlib import metadata
from typing import TypeVar

_T = TypeVar("_T")
_MISSING = object()


class UnsupportedSDK(ImportError):
    """The installed SDK of a store lacks an internal its backend relies on: its version is
    outside the range the backend supports."""


def sdk_internal(owner: object, name: str, kind: type[_T], *, package: str, supported: str) -> _T:
    """``owner.<name>``, an internal of SDK ``package`` that has no public equivalent, checked to
    be a ``kind``; `UnsupportedSDK` naming the installed version and the ``supported`` range
    (``">=0.2.10,<0.3"``) when it is missing or of another type."""
    value = getattr(owner, name, _MISSING)
    if value is not _MISSING and isinstance(value, kind):
        return value
    found = "missing" if value is _MISSING else f"of type {type(value).__name__}, not {kind.__name__}"
    raise UnsupportedSDK(
        f"{package} {_installed_version(package)} is not supported: {type(owner).__name__}.{name} is "
        f"{found}; install {package}{supported}"
    )


def _installed_version(package: str) -> str:
    """The installed version of ``package``, or ``"(version unknown)"``."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "(version unknown)"
