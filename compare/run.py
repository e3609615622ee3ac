"""`compare_builds`: one whole comparison from two builds and a store, as the CLI runs it."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from fetchers import BlobFetcher, ClosableFetcher, fetcher_from_url

from .engine.run import Progress, run_comparison
from .inputs.sources import combine_fetchers, open_side
from .model import CompareOptions, Comparison, InputError
from .output.artifacts import ArtifactWriter


def compare_builds(
    base: str | os.PathLike[str],
    head: str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str],
    store: str | BlobFetcher | None = None,
    options: CompareOptions | None = None,
    progress: Callable[[Progress], None] | None = None,
    store_setting: str = "store",
    store_token: str | None = None,
) -> Comparison:
    """Compare build ``head`` against build ``base``; every image of both ends with a status.

    Each build is a manifest JSON file or a folder of images. ``store`` (a store URL, see
    `fetchers.fetcher_from_url`, or a fetcher) serves the blobs of manifest files; folders
    serve their own files. Diff masks and report previews are written under ``out_dir``
    (`compare.output.reports.write_reports` writes the reports). ``store_setting`` names where
    the store came from in messages; ``store_token`` authenticates to a store URL that takes
    one (objectstore).

    Raises `InputError` naming the input when a build, the store or ``out_dir`` cannot be used.
    """
    options = options if options is not None else CompareOptions()
    out = Path(out_dir)
    with ExitStack() as stack:
        try:
            base_side = open_side(base, role="base")
            head_side = open_side(head, role="head")
        except ValueError as exc:  # ManifestError included
            raise InputError(str(exc)) from None
        except OSError as exc:
            raise InputError(describe_os_error(exc)) from None
        store_fetcher = store
        if isinstance(store, str):
            store_fetcher = stack.enter_context(
                open_store(store, store_setting, max_connections=options.fetch_workers, token=store_token)
            )
        try:
            fetcher = combine_fetchers(base_side, head_side, store_fetcher)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"--out: {describe_os_error(exc)}") from None
        return run_comparison(
            base_side.manifest,
            head_side.manifest,
            fetcher,
            options,
            artifacts=ArtifactWriter(out),
            progress=progress,
        )


def open_store(url: str, setting: str, *, max_connections: int, token: str | None = None) -> ClosableFetcher:
    """The store at ``url`` (read and written through); `InputError` naming ``setting`` if it
    cannot be opened. The URL itself is never echoed: it may carry secrets in its query."""
    try:
        return fetcher_from_url(url, max_connections=max_connections, token=token)
    except ImportError as exc:
        raise InputError(f"{setting}: {exc}") from None
    except ValueError as exc:
        raise InputError(f"{setting}: {exc}") from None


def describe_os_error(exc: OSError) -> str:
    """An OS error in one line, naming its file when it has one."""
    if exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc)
