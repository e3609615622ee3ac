"""`compare_builds`: one whole comparison from two builds and a store, as the CLI runs it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from fetchers import BatchUploader, BlobFetcher, BlobWriter, ClosableFetcher, fetcher_from_url

from .engine.chunks import plan
from .engine.run import Progress, run_comparison
from .inputs.approved import approved_fingerprints, carry_over
from .inputs.sources import Side, combine_fetchers, open_side, read_input
from .model import CompareOptions, Comparison, InputError
from .output.artifacts import ArtifactWriter
from .output.results_store import ResultsPublisher, SentryLayout, mask_uploads, publish_comparison, publish_plan
from .output.sentry_keys import fill_sentry_fields


def compare_builds(
    base: str | os.PathLike[str],
    head: str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str],
    store: str | BlobFetcher | None = None,
    options: CompareOptions | None = None,
    progress: Callable[[Progress], None] | None = None,
    store_setting: str = "store",
    artifacts: ArtifactWriter | None = None,
    approved: str | os.PathLike[str] | None = None,
    scheduler: str | None = None,
    store_token: str | None = None,
    results_store: str | None = None,
) -> Comparison:
    """Compare build ``head`` against build ``base``; every image of both ends with a status.

    Each build is a manifest JSON file, ``store:KEY`` (a manifest in the store) or a folder of
    images. ``store`` (a store URL, see `fetchers.fetcher_from_url`, or a fetcher) serves the
    blobs of manifests; folders serve their own files. ``approved`` (a file or ``store:KEY``)
    is a previously approved ``comparison.json``: when its changes are this comparison's,
    `Comparison.approval` says so (see `compare.inputs.approved`). Diff masks and report
    previews are written under ``out_dir``
    (`compare.output.reports.write_reports` writes the reports). ``store_setting`` names where
    the store came from in messages; ``store_token`` authenticates to a store URL that takes
    one (objectstore). ``artifacts``, a writer for ``out_dir``, lets the caller hold the
    folder's lock until `write_reports` is given the same writer; without it the lock is held
    for this call only. With ``scheduler`` (``tcp://host:8786`` or ``local:N``) the pixel diffs
    run on that Dask cluster (the ``dask`` extra; both builds must be manifests and ``store`` a
    URL the workers can reach; workers read credentials from their own environment).

    ``results_store`` (a store URL, authenticated as ``store`` is) also receives the masks and
    ``comparison.json`` under Sentry's keys (`compare.output.results_store`); with
    ``scheduler``, the workers write the masks and ``chunks/{i}.json`` there themselves, this
    process ``plan.json`` and ``comparison.json``, and the masks are not copied into
    ``out_dir`` (there ``diff_mask_key`` then names the mask's key in the store).

    Raises `InputError` naming the input when a build, a store or ``out_dir`` cannot be used
    (``out_dir`` not writable, or in use by another run), and `ResultsNotWritten` (carrying
    the comparison when it ran) when results could not be written to ``results_store``.
    """
    options = options if options is not None else CompareOptions()
    out = Path(out_dir)
    with ExitStack() as stack:
        store_fetcher = store
        if isinstance(store, str):
            store_fetcher = stack.enter_context(
                open_store(store, store_setting, max_connections=options.fetch_workers, token=store_token)
            )
        try:
            sides = {role: open_side(spec, role=role, store=store_fetcher,
                                     require_sizes=options.require_sizes,
                                     follow_symlinks=options.follow_symlinks)
                     for role, spec in (("base", base), ("head", head))}
            approval_input = None
            if approved is not None:
                data, approved_source = read_input(approved, store_fetcher, "--approved")
                approval_input = (approved_fingerprints(data, approved_source), approved_source)
            fetcher = combine_fetchers(sides["base"], sides["head"], store_fetcher)
        except ValueError as exc:  # ManifestError included
            raise InputError(str(exc)) from None
        except OSError as exc:
            raise InputError(describe_os_error(exc)) from None
        results = None
        if results_store is not None:
            results = stack.enter_context(_ResultsTarget.open(results_store, options, store_token))
        writer = artifacts if artifacts is not None else stack.enter_context(ArtifactWriter(out))
        try:
            writer.open()
        except OSError as exc:
            raise InputError(f"--out: {describe_os_error(exc)}") from None
        manifests = [sides[role].manifest for role in ("base", "head")]
        if scheduler is not None:
            comparison = _compare_on_cluster(sides["base"], sides["head"], store, scheduler, writer,
                                             options, progress, results)
        else:
            comparison = run_comparison(*manifests, fetcher, options, artifacts=writer, progress=progress)
        comparison = fill_sentry_fields(comparison, writer)
        if approval_input is not None:
            comparison.approval = carry_over(comparison.images, *approval_input)
        if results is not None:
            # On a cluster the workers stored the masks; here they are read back from out_dir.
            masks = {} if scheduler is not None else mask_uploads(
                comparison.images, results.layout, lambda image: (writer.out_dir / image.diff_mask_key).read_bytes)
            publish_comparison(comparison, results.uploader, results.layout, masks)
        return comparison


@dataclass(frozen=True)
class _ResultsTarget:
    """The results store of one run: its URL, Sentry's keys in it and the uploader writing them
    (one retry budget for the whole run)."""

    url: str
    layout: SentryLayout
    uploader: BatchUploader

    @classmethod
    @contextmanager
    def open(cls, url: str, options: CompareOptions, token: str | None) -> Iterator[_ResultsTarget]:
        with open_store(url, "--results-store", max_connections=options.fetch_workers, token=token) as store:
            if not isinstance(store, BlobWriter):
                raise InputError("--results-store: this store cannot be written to")
            with BatchUploader(store, max_workers=options.fetch_workers) as uploader:
                yield cls(url, SentryLayout.of(store, options), uploader)


def _compare_on_cluster(
    base: Side,
    head: Side,
    store: str | BlobFetcher | None,
    scheduler: str,
    artifacts: ArtifactWriter,
    options: CompareOptions,
    progress: Callable[[Progress], None] | None,
    results: _ResultsTarget | None,
) -> Comparison:
    if base.fetcher is not None or head.fetcher is not None or not isinstance(store, str):
        raise InputError("--scheduler: both builds must be manifests and the store a URL the workers can reach")
    try:
        from .engine.distributed import run_on_cluster
    except ImportError as exc:
        raise InputError(f"--scheduler: {exc}") from None
    comparison_plan = plan(base.manifest, head.manifest, options)
    publisher = None
    if results is not None:
        publish_plan(comparison_plan, results.uploader, results.layout)
        publisher = ResultsPublisher(results.url, results.layout)
    return run_on_cluster(comparison_plan, store, scheduler, artifacts=artifacts, progress=progress,
                          publisher=publisher)


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
