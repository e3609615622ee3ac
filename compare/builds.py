"""`compare_builds`: one whole comparison from two builds and a store, as the CLI runs it."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from fetchers import (
    BatchUploader,
    BlobFetcher,
    BlobSource,
    BlobWriter,
    ClosableFetcher,
    StoreError,
    StoreUnavailable,
    UploadStats,
    token_env,
)

from .engine.chunks import StoreFetcher, plan, store_fetcher
from .engine.local import ArtifactSink, Progress, run_comparison
from .engine.singles import add_single_previews
from .inputs.approved import approved_fingerprints, carry_over
from .inputs.baseline import BaseBuild, NoBaseBuild
from .inputs.known_changes import apply_known_changes, read_known_changes
from .inputs.manifest import Manifest
from .inputs.sources import MAX_INPUT_BYTES, Side, combine_fetchers, open_side, read_input
from .model import ApprovalMismatch, CompareOptions, Comparison, ImageResult, InputError, Resources, parameter
from .output.artifacts import FOLDERS, ArtifactWriter
from .output.results_store import (
    ResultsPublisher,
    SentryLayout,
    mask_uploads,
    publish_comparison,
    publish_plan,
    stored_masks_only,
)
from .output.sentry_keys import fill_sentry_fields


def compare_builds(
    base: str | os.PathLike[str] | Manifest | BaseBuild | NoBaseBuild,
    head: str | os.PathLike[str] | Manifest,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    store: str | BlobFetcher | None = None,
    options: CompareOptions | None = None,
    resources: Resources | None = None,
    progress: Callable[[Progress], None] | None = None,
    store_setting: str = "store",
    artifacts: ArtifactWriter | None = None,
    approved: str | os.PathLike[str] | None = None,
    scheduler: str | None = None,
    store_token: str | None = None,
    results_store: str | None = None,
    known_changes: str | os.PathLike[str] | None = None,
    fail_on_known_changes: bool = False,
) -> Comparison:
    """Compare build ``head`` against build ``base``; every image of both ends with a status.

    Each build is a manifest JSON file, ``store:KEY`` (a manifest in the store), a folder of
    images or a `Manifest` already read. ``base`` may also be the base build found in the head's
    git history (`compare.inputs.baseline.find_base`, `find_base_from_git`): its manifest is
    the base (empty for a `NoBaseBuild`: every head image is added) and
    `Comparison.base_build` says how it was chosen. ``store`` (a store URL, see
    `fetchers.fetcher_from_url`, or a fetcher) serves the blobs of manifests; folders serve
    their own files. ``options`` are the comparison's
    settings; ``resources`` what this process may use (default: `Resources()`; cluster workers
    decide their own). ``approved`` (a file or ``store:KEY``)
    is a previously approved ``comparison.json``: when its changes are this comparison's,
    `Comparison.approval` says so, else `Comparison.approval_mismatch` names the images whose
    changes differ from it (see `compare.inputs.approved`). ``known_changes`` (a file or
    ``store:KEY``: a ``comparison.json`` or a file ``snapcompare known-changes`` wrote) marks
    each ``changed`` image's ``known_change`` and sets `Comparison.known_changes` (see
    `compare.inputs.known_changes`); with ``fail_on_known_changes`` those images still count as
    differences, else they are set aside (`Comparison.set_aside`). Diff masks and report
    previews are written under ``out_dir`` (`compare.output.reports.write_reports` writes the reports);
    without it the comparison is kept in memory only: every image gets its status and
    figures, but no mask or preview is made or kept. ``store_setting`` names where
    the store came from in messages; ``store_token`` authenticates to a store URL that takes
    one (objectstore). ``artifacts``, a writer for ``out_dir``, lets the caller hold the
    folder's lock until `write_reports` is given the same writer; without it the lock is held
    for this call only. With ``scheduler`` (``tcp://host:8786`` or ``local:N``) the pixel diffs
    run on that Dask cluster (the ``dask`` extra; both builds manifests and ``store`` a URL the
    workers can reach, or with ``local:N`` both builds folders; workers read credentials from
    their own environment).

    ``results_store`` (a store URL, authenticated as ``store`` is) also receives the masks and
    ``comparison.json`` under Sentry's keys (`compare.output.results_store`); with
    ``scheduler``, the workers write the masks and ``chunks/{i}.json`` there themselves, this
    process ``plan.json`` and ``comparison.json``, and the masks are not copied into
    ``out_dir`` (there ``diff_mask_key`` then names the mask's key in the store).

    ``results_store`` needs ``out_dir`` and both artifact ids in ``options`` (results are kept
    under ``{head}/{base}/``; without the ids every run would write over the others').

    Raises `InputError` naming the parameter (see `compare.model.parameter`) when a build, a
    store or ``out_dir`` cannot be used (``out_dir`` not writable, or in use by another run),
    and `ResultsNotWritten` (carrying the comparison when it ran) when results could not be
    written to ``results_store``.
    """
    options = options if options is not None else CompareOptions()
    resources = resources if resources is not None else Resources()
    if out_dir is not None:
        _check_out_dir_apart(Path(out_dir), {"base": base, "head": head})
    found: BaseBuild | NoBaseBuild | None = None
    if isinstance(base, (BaseBuild, NoBaseBuild)):
        found, base = base, base.manifest
    with ExitStack() as stack:
        store_fetcher: BlobFetcher | None
        if isinstance(store, str):
            store_fetcher = stack.enter_context(
                open_store(store, store_setting, max_connections=resources.fetch_workers, token=store_token,
                           max_blob_bytes=MAX_INPUT_BYTES)
            )
        else:
            store_fetcher = store
        try:
            sides = {role: open_side(spec, role=role, store=store_fetcher,
                                     require_sizes=options.require_sizes,
                                     follow_symlinks=options.follow_symlinks,
                                     max_blob_bytes=resources.fetch_budget)
                     for role, spec in (("base", base), ("head", head))}
            approval_input = None
            if approved is not None:
                data, approved_source = read_input(approved, store_fetcher, parameter("approved"))
                approval_input = (approved_fingerprints(data, approved_source), approved_source)
            known_input = None
            if known_changes is not None:
                data, known_source = read_input(known_changes, store_fetcher, parameter("known_changes"))
                known_input = (read_known_changes(data, known_source), known_source)
            # Images within the run's fetch budget (and a given fetcher's own bound, if tighter);
            # manifests, approvals and records within their own bounds.
            images_store = store_fetcher
            if isinstance(store_fetcher, ClosableFetcher):
                given = None if isinstance(store, str) else store_fetcher.max_blob_bytes
                images_store = store_fetcher.limited(min(resources.fetch_budget, given or resources.fetch_budget))
            fetcher = combine_fetchers(sides["base"], sides["head"], images_store)
        except ValueError as exc:  # ManifestError included
            raise InputError(str(exc)) from None
        except OSError as exc:
            raise InputError(describe_os_error(exc)) from None
        results = None
        if results_store is not None:
            if not (options.head_artifact_id and options.base_artifact_id):
                raise InputError(
                    f"{parameter('results_store')} needs {parameter('head_artifact_id')} and "
                    f"{parameter('base_artifact_id')}: results are kept under {{head}}/{{base}}/ below "
                    "the store's prefix, and without the ids every run would write over the others' under 0/0")
            results = stack.enter_context(_ResultsTarget.open(results_store, options, resources, store_token))
        writer: ArtifactSink
        files = artifacts
        if files is None and out_dir is not None:
            files = stack.enter_context(ArtifactWriter(Path(out_dir)))
        if files is None:
            if results is not None:
                raise InputError(f"{parameter('results_store')} needs {parameter('out_dir')}: "
                                 "the masks are written there first")
            writer = _NoFiles()
            options = replace(options, previews=False)
        else:
            try:
                files.open()
            except OSError as exc:
                raise InputError(f"{parameter('out_dir')}: {describe_os_error(exc)}") from None
            writer = files
        if scheduler is not None:
            cluster_store = _cluster_store(sides["base"], sides["head"], store, scheduler, stack)
            comparison = _compare_on_cluster(sides["base"], sides["head"], cluster_store, scheduler,
                                             writer, options, progress, results, store_token)
        else:
            comparison = run_comparison(sides["base"].manifest, sides["head"].manifest, fetcher, options,
                                        artifacts=writer, resources=resources, progress=progress)
        comparison = add_single_previews(comparison, fetcher, writer, options, resources)
        comparison = fill_sentry_fields(comparison, writer)
        if found is not None:
            comparison.base_build = found.to_json()
        if known_input is not None:
            comparison.images, comparison.known_changes = apply_known_changes(
                comparison.images, *known_input, counted=fail_on_known_changes)
        if approval_input is not None:  # known changes set aside need no approval, on either side
            aside = frozenset(comparison.set_aside)
            fingerprints, source = approval_input
            outcome = carry_over({name: result for name, result in comparison.images.items() if name not in aside},
                                 frozenset(f for f in fingerprints if f[0] not in aside), source)
            if isinstance(outcome, ApprovalMismatch):
                comparison.approval_mismatch = outcome
            else:
                comparison.approval = outcome
        if results is not None:
            # On a cluster the workers stored the masks; here they are read back from out_dir.
            masks = {} if scheduler is not None else mask_uploads(comparison.images, results.layout,
                                                                  partial(_mask_file, files))
            publish_comparison(comparison, results.uploader, results.layout, masks)
        return comparison


def _check_out_dir_apart(out_dir: Path, sides: dict[str, object]) -> None:
    """Raise `InputError` when ``out_dir`` is an image folder given as a side, or inside one, or
    a side's folder is one of ``out_dir``'s own (`FOLDERS`) or inside one: the masks and
    previews of one run would be read as that side's images by the next."""
    where = out_dir.resolve()
    for role, spec in sides.items():
        if isinstance(spec, (str, os.PathLike)) and Path(spec).is_dir():
            folder = Path(spec).resolve()
            if where == folder or where.is_relative_to(folder):
                raise InputError(f"{parameter('out_dir')} {str(out_dir)!r} is inside the {role} folder "
                                 f"{str(spec)!r}, whose images the reports' own pictures would join: "
                                 "write the reports elsewhere")
            if any(folder.is_relative_to(where / own) for own in FOLDERS):
                raise InputError(f"the {role} folder {str(spec)!r} is inside {parameter('out_dir')} "
                                 f"{str(out_dir)!r}, among the pictures a run writes there: write the "
                                 "reports elsewhere")


def _mask_file(files: ArtifactWriter | None, image: ImageResult) -> BlobSource:
    """Where `mask_uploads` reads ``image``'s mask: the file in the output folder it was written
    to, a path, so the uploader knows its size before reading it (small ones go in batches)."""
    assert files is not None and image.diff_mask_key is not None  # a results store has both
    return files.out_dir / image.diff_mask_key


class _NoFiles:
    """Where the files of a comparison without an output folder go: nowhere. Its images keep
    their figures; their masks and previews are not kept (``diff_mask_key`` is None)."""

    def mask(self, name: str, png: bytes) -> None:
        return None

    def previews(self, outcome: object) -> None:
        return None


@dataclass(frozen=True)
class _ResultsTarget:
    """The results store of one run: its URL, Sentry's keys in it and the uploader writing them
    (one retry budget for the whole run)."""

    url: str
    layout: SentryLayout
    uploader: BatchUploader

    @classmethod
    @contextmanager
    def open(cls, url: str, options: CompareOptions, resources: Resources,
             token: str | None) -> Iterator[_ResultsTarget]:
        with open_store(url, parameter("results_store"), max_connections=resources.fetch_workers, token=token,
                        create=True) as store:
            if not isinstance(store, BlobWriter):
                raise InputError(f"{parameter('results_store')}: this store cannot be written to")
            with BatchUploader(store, max_workers=resources.fetch_workers) as uploader:
                layout = SentryLayout.of(store, options)
                # Asked before the work, as the images' store is: one that cannot be used at all
                # (unreachable, denied, no bucket) ends the run now, not after every diff.
                try:
                    uploader.with_retries(layout.comparison_key, partial(store.exists, layout.comparison_key),
                                          UploadStats(), threading.Event())
                except StoreError as exc:
                    if exc.store_wide:
                        raise StoreUnavailable(uploader.store_name, exc) from exc
                yield cls(url, layout, uploader)


def _cluster_store(base: Side, head: Side, store: str | BlobFetcher | None, scheduler: str,
                   stack: ExitStack) -> str:
    """The store URL the cluster's workers read blobs from.

    Manifests need a store URL. Folders of images can be read by ``local:N`` workers, which run
    on this machine: their files are linked (or copied) by content hash into a temporary local
    store that lives as long as ``stack``. A remote cluster cannot read this machine's folders.
    """
    folders = [side for side in (base, head) if side.fetcher is not None]
    if not folders:
        if not isinstance(store, str):
            raise InputError(f"{parameter('scheduler')}: the store must be a URL the workers can reach "
                             f"({parameter('store')})")
        return store
    if not scheduler.startswith("local:"):
        raise InputError(
            f"{parameter('scheduler')} {scheduler}: the workers cannot read the folder {folders[0].source!r} "
            "on this machine; put the build into a store they reach first (snapcompare upload DIR "
            "--store URL -o build.json) and compare the manifests")
    if len(folders) < 2:
        raise InputError(
            f"{parameter('scheduler')}: compare two folders, or two manifests in a store, not a folder "
            f"and a manifest ({folders[0].source!r} is a folder); upload the folder first (snapcompare "
            "upload DIR --store URL -o build.json)")
    root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="snapcompare-blobs-")))
    for folder in (side.fetcher for side in folders if side.fetcher is not None):
        for key, path in folder.paths.items():
            _link_or_copy(path, root / key)
    return str(root)


def _link_or_copy(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source``, or a copy where links cannot be made."""
    if target.exists():
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _compare_on_cluster(
    base: Side,
    head: Side,
    store: str,
    scheduler: str,
    artifacts: ArtifactSink,
    options: CompareOptions,
    progress: Callable[[Progress], None] | None,
    results: _ResultsTarget | None,
    store_token: str | None,
) -> Comparison:
    try:
        from .engine.distributed import run_on_cluster
    except ImportError as exc:
        raise InputError(f"{parameter('scheduler')}: {exc}") from None
    comparison_plan = plan(base.manifest, head.manifest, options)
    publisher = None
    if results is not None:
        publish_plan(comparison_plan, results.uploader, results.layout)
        publisher = ResultsPublisher(results.url, results.layout)
    # A token given here reaches local:N workers as it would reach this process: through the
    # environment variable its store reads, set as they start (never through the scheduler).
    urls = [store] + ([results.url] if results is not None else [])
    worker_env = {name: store_token for name in filter(None, map(token_env, urls))} if store_token else {}
    comparison = run_on_cluster(comparison_plan, store, scheduler, artifacts=artifacts, progress=progress,
                                publisher=publisher, worker_env=worker_env)
    return comparison if results is None else stored_masks_only(comparison, comparison_plan)


def open_store(url: str, setting: str, *, max_connections: int, token: str | None = None,
               create: bool = False, max_blob_bytes: int | None = None) -> StoreFetcher:
    """The store at ``url`` (read and written through); `InputError` naming ``setting`` if it
    cannot be opened. ``create`` lets a local store's folder be made on its first write;
    ``max_blob_bytes`` refuses larger blobs unread. The URL itself is never echoed: it may
    carry secrets in its query."""
    try:
        return store_fetcher(url, max_connections=max_connections, token=token, create=create,
                             max_blob_bytes=max_blob_bytes)
    except ImportError as exc:
        raise InputError(f"{setting}: {exc}") from None
    except ValueError as exc:
        raise InputError(f"{setting}: {exc}") from None


def describe_os_error(exc: OSError) -> str:
    """An OS error in one line, naming its file when it has one."""
    if exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc)
