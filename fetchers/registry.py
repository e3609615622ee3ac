"""Every store backend, named once: `BACKENDS`, and `fetcher_from_url` that reads it.

A row says which URL scheme selects the backend, where its class lives (imported only when used,
since each backend's SDK is an optional extra), which extra installs that SDK, and how its URL
and configuration look. URL parsing, the lazy imports of ``fetchers`` and the CLI's help all read
this table; adding a store is one row here and one module under ``fetchers/backends/`` whose
class has a ``from_url(parts, **options)`` constructor.
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import SplitResult, unquote_plus, urlsplit

from .protocol import BlobFetcher

_F = TypeVar("_F")


def _is_pool_size(value: object) -> bool:
    """Whether ``value`` is an int (not a bool) of at least 1."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _is_timeout(value: object) -> bool:
    """Whether ``value`` is an int or float (not a bool), finite and above 0."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and value > 0)


_NETWORK_CHECKS: dict[str, tuple[Callable[[object], bool], str]] = {
    "max_connections": (_is_pool_size, "an integer of at least 1"),
    "connect_timeout": (_is_timeout, "a finite number of seconds above 0"),
    "read_timeout": (_is_timeout, "a finite number of seconds above 0"),
}

NETWORK_OPTIONS = tuple(_NETWORK_CHECKS)
"""Options every network backend takes; a local folder checks them and ignores them."""


def carries_credentials(url: SplitResult) -> bool:
    """Whether ``url`` holds a ``user:password@`` part (credentials belong to the SDKs' own ways)."""
    return url.username is not None or url.password is not None


def check_network_options(**options: object) -> None:
    """Refuse a network option (`NETWORK_OPTIONS`) of the wrong type or out of range: a
    ValueError naming it. ``max_connections`` is an int of at least 1, a timeout a finite
    number of seconds above 0 (a bool is neither)."""
    for name, value in options.items():
        valid, wanted = _NETWORK_CHECKS[name]
        if not valid(value):
            raise ValueError(f"{name} must be {wanted}, got {value!r}")


def check_option_names(scheme: str, options: Iterable[str], accepted: Iterable[str]) -> None:
    """Refuse options a store does not take (``accepted``): a ValueError naming them."""
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"{scheme} store takes no options {unknown}")


@dataclass(frozen=True)
class Backend:
    """One store backend: where its class is, what installs it, how it is configured."""

    module: str
    class_name: str
    extra: str | None
    url_form: str
    configuration: str
    takes_token: bool = False
    token_env: str | None = None
    """The environment variable its token is read from when none is passed."""
    query: tuple[str, ...] = ()
    """The query parameters its URL takes; `check_query` refuses any other (it may be a secret)."""
    creatable: bool = False
    """Whether its store may have to be made before the first write (a local folder): such a
    backend takes ``create=True``; buckets and objectstore scopes need no making."""

    def load(self) -> type:
        """Import the backend's class; ImportError names the extra that provides its SDK."""
        try:
            module = importlib.import_module(self.module)
        except ImportError as exc:
            extra = (f"the {self.extra} extra (pip install '.[{self.extra}]' in a checkout of snapcompare)"
                     if self.extra else "snapcompare's dependencies")
            raise ImportError(
                f"{self.class_name} needs {exc.name or 'an optional dependency'}: install {extra}",
                name=exc.name,
            ) from exc
        cls = getattr(module, self.class_name)
        if not isinstance(cls, type):
            raise ImportError(f"{self.module}.{self.class_name} is not a class")
        return cls


OBJECTSTORE_TOKEN_ENV = "SNAPCOMPARE_OBJECTSTORE_TOKEN"
"""Where an objectstore store reads its token from when none is passed."""

_OBJECTSTORE_QUERY = ("org", "project", "prefix", "batch")
"""Sentry's objectstore scopes, in order, the key prefix, and whether to send batch requests
(``batch=0`` switches them off): ids and switches, never secrets."""

BACKENDS: dict[str, Backend] = {
    "file": Backend("fetchers.backends.local", "LocalFetcher", None,
                    "file:///abs/dir or a plain path", "none", creatable=True),
    "s3": Backend("fetchers.backends.s3", "S3Fetcher", "s3",
                  "s3://bucket/prefix", "AWS_ENDPOINT_URL, the AWS credential chain"),
    "gs": Backend("fetchers.backends.gcs", "GCSFetcher", "gcs",
                  "gs://bucket/prefix", "STORAGE_EMULATOR_HOST, Application Default Credentials"),
    "objectstore+http": Backend("fetchers.backends.objectstore", "ObjectstoreFetcher", "objectstore",
                                "objectstore+http://host:port/<usecase>?org=1&project=2&prefix=1/2",
                                "token passed as an option, never in the URL", takes_token=True,
                                token_env=OBJECTSTORE_TOKEN_ENV, query=_OBJECTSTORE_QUERY),
    "objectstore+https": Backend("fetchers.backends.objectstore", "ObjectstoreFetcher", "objectstore",
                                 "objectstore+https://host/<usecase>?org=1&project=2&prefix=1/2",
                                 "token passed as an option, never in the URL", takes_token=True,
                                 token_env=OBJECTSTORE_TOKEN_ENV, query=_OBJECTSTORE_QUERY),
}
"""Backends by URL scheme. A URL without a scheme is a local path."""

SCHEMES = tuple(BACKENDS)


def token_env(url: str) -> str | None:
    """The environment variable the store at ``url`` reads its token from (None for stores
    that take none, and for URLs of no known scheme)."""
    backend = BACKENDS.get(urlsplit(url).scheme.lower() or "file") if isinstance(url, str) else None
    return backend.token_env if backend is not None else None


def backend_by_class(class_name: str) -> Backend | None:
    """The backend whose class is called ``class_name``, if any."""
    return next((b for b in BACKENDS.values() if b.class_name == class_name), None)


def fetcher_from_url(
    url: str, *, token: str | None = None, create: bool = False, **options: Any
) -> BlobFetcher:
    """Build the fetcher a store URL names (see `BACKENDS` for the forms).

    - ``file:///abs/dir`` or a plain path: `LocalFetcher`;
    - ``s3://bucket/prefix``: `S3Fetcher` (endpoint from ``AWS_ENDPOINT_URL``, credentials
      from the AWS chain);
    - ``gs://bucket/prefix``: `GCSFetcher` (``STORAGE_EMULATOR_HOST`` for an emulator,
      credentials from Application Default Credentials);
    - ``objectstore+http://host:port/<usecase>?org=1&project=2&prefix=1/2`` (or ``+https``):
      `ObjectstoreFetcher`; ``org`` and ``project`` are scopes, in order.

    ``options`` go to the backend: ``max_connections``, ``connect_timeout`` and
    ``read_timeout`` for the network stores (a local folder ignores them), and each backend's
    own keywords. ``token`` goes to the stores that authenticate with one (objectstore's
    ``x-os-auth``); the others take credentials their SDK's way and ignore it. ``create``
    opens the store for writing: a local folder that does not exist yet is made on the first
    write (see `LocalFetcher`); without it a missing folder is refused, and the other stores
    ignore it. Every backend is also a `BlobWriter`. Raises ``ValueError`` naming the scheme
    or the part of the URL that is wrong; credentials in the URL (``user:password``, or any
    query parameter the backend does not take, see `check_query`) are refused and never
    echoed. Raises ImportError naming the extra to install when the backend's SDK is missing.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("store URL is empty")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    backend = BACKENDS.get(scheme or "file")
    if backend is None:
        raise ValueError(f"unknown store scheme {parts.scheme!r}: expected one of {', '.join(SCHEMES)}")
    if create and backend.creatable:
        options["create"] = True
    if scheme == "":
        return _built(backend, "from_path", Path(url), **options)
    if "#" in url:  # a fragment names no part of a store: it would be dropped
        raise ValueError(f"{scheme} store URL must not have a fragment ('#...')")
    if carries_credentials(parts):
        raise ValueError(
            f"{scheme} store URL must not carry credentials: configure them the SDK's own way"
        )
    check_query(scheme, parts.query, backend.query)
    if token is not None and backend.takes_token:
        options["token"] = token
    return _built(backend, "from_url", parts._replace(scheme=scheme), **options)


def _built(backend: Backend, constructor: str, where: object, **options: Any) -> BlobFetcher:
    """The fetcher the backend's class ``constructor`` (``from_url``, ``from_path``) builds."""
    fetcher = getattr(backend.load(), constructor)(where, **options)
    if not isinstance(fetcher, BlobFetcher):
        raise TypeError(f"{backend.class_name}.{constructor} built no fetcher")
    return fetcher


_SHOWN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,31}")
"""A query parameter name that an error may quote: short and word-like, unlike a pasted secret."""


def check_query(scheme: str, query: str, accepted: tuple[str, ...]) -> None:
    """Refuse a URL query holding any parameter but ``accepted``: such a parameter (``token``,
    ``signature``, ...) may carry a secret, and a URL is shown in messages and sent to workers.

    The ValueError names the parameter (when its name is short and word-like and it has a
    value; a bare ``?s3cr3t`` may be the secret itself) and never its value.
    """
    for field in query.split("&"):
        name, has_value, _ = field.partition("=")
        name = unquote_plus(name)
        if not field or name in accepted:
            continue
        shown = f"{name!r}" if has_value and _SHOWN_NAME.fullmatch(name) else "(its name not shown)"
        takes = f" (only {', '.join(accepted)})" if accepted else ""
        raise ValueError(
            f"{scheme} store URL takes no query parameter {shown}{takes}: credentials never go in a URL"
        )


def from_bucket_url(cls: Callable[..., _F], parts: SplitResult, options: dict[str, Any]) -> _F:
    """``cls(bucket, prefix=prefix, **options)`` for a ``scheme://bucket/prefix`` URL, for
    bucket stores: the URL needs a bucket, its prefix no ``.`` or ``..`` segment, and
    ``options`` are ``cls``'s own keywords (ValueError naming what is wrong)."""
    scheme = parts.scheme
    if not parts.netloc:
        raise ValueError(f"{scheme} store URL needs a bucket: {scheme}://bucket/prefix")
    prefix = parts.path.strip("/")
    if any(segment in (".", "..") for segment in prefix.split("/")):
        raise ValueError(f"{scheme} store URL's prefix must not have '.' or '..' segments")
    keywords = inspect.signature(cls).parameters.values()
    check_option_names(scheme, options, [p.name for p in keywords if p.kind is p.KEYWORD_ONLY and p.name != "prefix"])
    return cls(parts.netloc, prefix=prefix, **options)
