"""``snapcompare upload DIR --store URL``: put a folder's images in a store by content hash.

Every image under DIR is hashed (`manifest_from_folder`); each unique blob is uploaded under
``<prefix>/<sha256>`` (no extension) unless the store already holds it (checked against the
checksum the store keeps, see `fetchers.BatchUploader`; a blob holding other bytes is
rewritten), concurrently through `fetchers.BatchUploader` within ``--max-memory``. Once every
blob is in the store, the build's manifest (Sentry's format) is written to ``-o FILE``
(atomically) and/or to the store under ``--manifest-key KEY``; with ``--commit SHA`` it is
recorded as that commit's build (`compare.inputs.baseline.record_build`: the manifest under
``--manifest-key`` or ``builds/<SHA>/manifest.json``, then the record ``builds/<SHA>/build.json``
that ``compare --base-from-git`` reads). When some blob is not in the store, no manifest is
written, and the summary says so. Exit codes: 0 uploaded, 2 some blob (or the manifest or the
record) could not be written, 3 bad input or a store that cannot be used.
"""

from __future__ import annotations

import argparse
import errno
import mimetypes
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from pathlib import Path

from fetchers import BatchUploader, BlobWriter, StoreError, StoreUnavailable, UploadStats, WriteError
from fetchers.keys import check_key

from ..builds import describe_os_error, open_store
from ..engine.local import Progress
from ..inputs.baseline import BuildRecord, check_branch, check_commit, manifest_json, record_build, record_key
from ..inputs.manifest import Manifest, ManifestError, manifest_from_folder, with_ignore_patterns
from ..model import DEFAULT_FETCH_WORKERS, DEFAULT_MAX_MEMORY, InputError
from .common import (
    EXIT_BAD_INPUT,
    EXIT_ERRORED,
    EXIT_SAME,
    LISTED,
    MANIFEST_IGNORE_IN_HELP,
    STORE_ENV,
    ParserT,
    add_follow_symlinks_option,
    add_ignore_in_option,
    add_token_option,
    error,
    note_left_out,
    objectstore_token,
    one_line,
    path_argument,
    positive,
    size,
    store_from,
)
from .progress import ProgressDisplay

MANIFEST_CONTENT_TYPE = "application/json"

UPLOAD_HELP = f"""\
exit codes:
  {EXIT_SAME}    every blob is in the store and the manifest written where -o, --manifest-key
       and --commit say (with none of them, the blobs are uploaded and no manifest written)
  {EXIT_ERRORED}    some blobs (then no manifest is written and no build recorded), the manifest
       or the build's record could not be written, or files under DIR were left out of the
       manifest (named on stderr)
  {EXIT_BAD_INPUT}    bad input or configuration, or a store that cannot be used (no manifest written)
"""


def add_upload_command(commands: argparse._SubParsersAction[ParserT]) -> None:
    """Register ``upload`` on the ``snapcompare`` subcommands."""
    upload = commands.add_parser(
        "upload",
        help="upload a folder's images to a store by content hash, with their manifest",
        description="Hash every image under DIR, upload each blob the store does not have yet\n"
        "under <prefix>/<sha256> and write the build's manifest (Sentry's format).",
        epilog=UPLOAD_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    upload.add_argument("folder", type=path_argument, metavar="DIR", help="folder of images")
    upload.add_argument("--store", metavar="URL", help=f"blob store to upload to (default: ${STORE_ENV})")
    upload.add_argument("-o", "--output", type=path_argument, metavar="FILE", help="write the manifest to FILE")
    upload.add_argument("--manifest-key", metavar="KEY",
                        help="also store the manifest in the store under KEY (application/json)")
    upload.add_argument("--commit", metavar="SHA",
                        help="record the upload as the build of commit SHA (its full id), for "
                        "'compare --base-from-git': the manifest goes under builds/SHA/manifest.json "
                        "(or --manifest-key), then its record under builds/SHA/build.json; "
                        "uploading a commit again replaces its build")
    upload.add_argument("--branch", metavar="NAME",
                        help="with --commit: the branch the commit was built on, kept in the record")
    upload.add_argument("--selective", action="store_true",
                        help="with --commit: DIR holds only some of the build's images (a selective "
                        "build, as in Sentry); 'compare --base-from-git' folds it onto the nearest "
                        "complete build before it, which gives the others")
    add_token_option(upload)
    add_follow_symlinks_option(upload, "they are left out")
    add_ignore_in_option(upload, MANIFEST_IGNORE_IN_HELP)
    upload.add_argument("--workers", type=positive, default=DEFAULT_FETCH_WORKERS, metavar="N",
                        help="concurrent uploads (default: %(default)s)")
    upload.add_argument("--max-memory", type=size, default=DEFAULT_MAX_MEMORY, metavar="SIZE",
                        help="most bytes of images held in memory at once, whatever --workers; an "
                        f"image larger than that is uploaded alone (default: {DEFAULT_MAX_MEMORY / 1024**3:g}G)")
    upload.add_argument("--verify-existing", action="store_true",
                        help="where the store keeps no checksum (objectstore), read each blob it "
                        "already holds back and check its sha256 (S3, GCS and folders are checked "
                        "by their checksums without it)")
    upload.add_argument("--quiet", action="store_true", help="print only errors and the outcome")
    upload.set_defaults(run=run_upload)


def run_upload(args: argparse.Namespace) -> int:
    """Upload the folder's blobs and write its manifest; return the exit code."""
    store_url, setting = store_from(args)
    if not store_url:
        raise InputError(f"upload needs a blob store: pass --store URL or set {STORE_ENV}")
    if args.manifest_key is not None:
        try:
            check_key(args.manifest_key)
        except StoreError as exc:
            raise InputError(f"--manifest-key: {exc.message}") from None
    if args.commit is not None:
        check_commit(args.commit, "--commit")
        if args.branch is not None:
            check_branch(args.branch, "--branch")
    elif args.branch is not None or args.selective:
        raise InputError("--branch and --selective describe the build of a commit: pass --commit SHA")
    try:
        manifest, paths = manifest_from_folder(args.folder, follow_symlinks=args.follow_symlinks)
    except OSError as exc:
        raise InputError(describe_os_error(exc)) from None
    except ManifestError as exc:
        raise InputError(str(exc)) from None
    note_left_out(manifest.unreadable)
    if not manifest.images and not args.selective:
        raise InputError(f"{args.folder}: no image to upload: a build of none would make every image "
                         "of a later comparison added (pass --selective for a build that uploads none)")
    manifest = replace(with_ignore_patterns(manifest, args.ignore_in), selective=args.selective)
    data = manifest_json(manifest)
    token = objectstore_token(args)
    started = time.monotonic()
    record = None
    with _staged_output(args.output, data) as publish_output:
        store = open_store(store_url, setting, max_connections=args.workers, token=token)
        with closing(store):
            writer = _writer(store, setting)
            with BatchUploader(writer, max_workers=args.workers, max_bytes=args.max_memory) as uploader:
                stats, failed = _upload_blobs(uploader, manifest, paths, quiet=args.quiet,
                                              verify_existing=args.verify_existing)
                blobs_failed = len(failed)
                if args.commit is not None and not failed:
                    try:
                        record = record_build(writer, args.commit, manifest, branch=args.branch,
                                              manifest_key=args.manifest_key)
                    except StoreUnavailable:
                        raise
                    except WriteError as exc:
                        failed[exc.key] = exc
                elif args.manifest_key is not None and not failed:
                    result = uploader.upload_all(
                        {args.manifest_key: data}, content_type=MANIFEST_CONTENT_TYPE, skip_existing=False
                    )
                    failed.update(result.errors)
        if not blobs_failed:  # the manifest names only blobs the store holds
            publish_output()
    for failure in list(failed.values())[:LISTED]:
        error(one_line(str(failure), 400))
    # A file left out of the manifest would be "removed" in the next comparison: say so.
    code = EXIT_ERRORED if failed or manifest.unreadable else EXIT_SAME
    print(_outcome_line(args, stats, failed, blobs_failed, len(manifest.unreadable), time.monotonic() - started,
                        code, record), flush=True)
    return code


@contextmanager
def _staged_output(output: Path | None, data: bytes) -> Iterator[Callable[[], None]]:
    """Stage ``data`` for ``-o`` in a temporary file beside it (so an unwritable ``-o`` fails
    before any upload) and yield the function that renames it into place; a temporary file
    not renamed when the block ends is removed. Nothing is staged without ``output``.
    `InputError` naming ``-o`` when staging or renaming fails."""
    if output is None:
        yield lambda: None
        return
    staged = output.parent / f".{output.name}.{uuid.uuid4().hex}.tmp"

    def publish() -> None:
        try:
            os.replace(staged, output)
        except OSError as exc:
            raise InputError(f"-o: {output}: {exc.strerror or exc}") from None

    try:
        try:
            if output.is_dir():
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(output))
            with os.fdopen(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as file:
                file.write(data)
        except OSError as exc:  # named as -o, not as the temporary file beside it
            raise InputError(f"-o: {output}: {exc.strerror or exc}") from None
        yield publish
    finally:
        if os.path.lexists(staged):
            os.unlink(staged)


def _writer(store: object, setting: str) -> BlobWriter:
    if not isinstance(store, BlobWriter):
        raise InputError(f"{setting}: this store cannot be written to")
    return store


def _upload_blobs(
    uploader: BatchUploader, manifest: Manifest, paths: dict[str, Path], *, quiet: bool, verify_existing: bool
) -> tuple[UploadStats, dict[str, StoreError]]:
    """Upload each unique blob of ``manifest`` the store lacks (or holds wrong), grouped by
    content type; each is read from its file only when it must be compared or written."""
    groups: dict[str, dict[str, Path]] = {}
    for name, entry in manifest.images.items():
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if not any(entry.content_hash in group for group in groups.values()):
            groups.setdefault(content_type, {})[entry.content_hash] = paths[name]
    total = sum(map(len, groups.values()))
    stats = UploadStats()
    failed: dict[str, StoreError] = {}
    display = None if quiet else ProgressDisplay(
        sys.stderr, wording=lambda p: f"uploaded or found {p.blobs_fetched}/{p.blobs_total} blobs"
    )
    done = 0

    def report(phase: str) -> None:
        if display is not None:
            display(Progress(len(manifest.images), total, done, 0, 0, phase))

    try:
        report("uploading")
        for content_type, sources in groups.items():
            for key, outcome in uploader.iter_upload(sources, content_type=content_type, verify=True,
                                                     verify_existing=verify_existing, stats=stats):
                if isinstance(outcome, StoreError):
                    failed[key] = outcome
                done += 1
                report("uploading")
        report("done")
    finally:
        if display is not None:
            display.close()
    return stats, failed


def _outcome_line(
    args: argparse.Namespace,
    stats: UploadStats,
    failed: dict[str, StoreError],
    blobs_failed: int,
    left_out: int,
    elapsed: float,
    code: int,
    record: BuildRecord | None,
) -> str:
    uploaded = f"uploaded {stats.written} blobs ({stats.bytes_written:,} bytes)"
    if stats.repaired:
        uploaded += f", {stats.repaired} of them over other bytes stored under their hash"
    parts = [uploaded, f"{stats.skipped} already in the store"]
    if stats.unverified:
        parts[-1] += (f" ({stats.unverified} unverified: the store keeps no checksum; "
                      "--verify-existing reads them back)")
    if failed:
        parts.append(f"{len(failed)} failed")
    if left_out:
        parts.append(f"left out of the manifest: {left_out} files")
    if blobs_failed and (args.output is not None or args.manifest_key is not None or args.commit is not None):
        recorded = f" and the build of commit {args.commit} not recorded" if args.commit is not None else ""
        parts.append(f"manifest not written{recorded}: {blobs_failed} of its blobs are not in the store")
    else:
        written_to = [str(args.output)] if args.output is not None else []
        manifest_key = args.manifest_key if record is None else record.manifest_key
        if manifest_key is not None and not failed:
            written_to.append(f"store key {manifest_key}")
        if written_to:
            parts.append("manifest: " + ", ".join(written_to))
        if record is not None:
            kind = "selective" if record.selective else "complete"
            branch = f" on {record.branch}" if record.branch is not None else ""
            parts.append(f"recorded the {kind} build of commit {record.commit}{branch}: {record_key(record.commit)}")
        elif args.commit is not None:
            parts.append(f"the build of commit {args.commit} not recorded")
    return f"snapcompare: {'; '.join(parts)} in {elapsed:.1f}s (exit {code})"
