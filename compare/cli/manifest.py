"""``snapcompare manifest DIR``: hash a folder's images and write its manifest."""

from __future__ import annotations

import argparse
import sys

from ..builds import describe_os_error
from ..inputs.manifest import (
    ManifestError,
    manifest_from_folder,
    manifest_text,
    with_ignore_patterns,
    write_manifest,
)
from ..model import InputError
from .common import (
    EXIT_SAME,
    MANIFEST_IGNORE_IN_HELP,
    ParserT,
    add_follow_symlinks_option,
    add_ignore_in_option,
    error,
    note_left_out,
    path_argument,
)


def add_manifest_command(commands: argparse._SubParsersAction[ParserT]) -> None:
    """Register ``manifest`` on the ``snapcompare`` subcommands."""
    manifest = commands.add_parser(
        "manifest",
        help="build a manifest from a folder of images",
        description="Hash every image under DIR and write its manifest (Sentry's format).",
    )
    manifest.add_argument("folder", type=path_argument, metavar="DIR", help="folder of images")
    manifest.add_argument("-o", "--output", type=path_argument, metavar="FILE",
                          help="where to write the manifest (default: standard output)")
    add_follow_symlinks_option(manifest, "they are left out")
    add_ignore_in_option(manifest, MANIFEST_IGNORE_IN_HELP)
    manifest.set_defaults(run=_run_manifest)


def _run_manifest(args: argparse.Namespace) -> int:
    try:
        manifest, _ = manifest_from_folder(args.folder, follow_symlinks=args.follow_symlinks)
    except OSError as exc:
        raise InputError(describe_os_error(exc)) from None
    except ManifestError as exc:  # e.g. a folder over the manifest size bound
        raise InputError(str(exc)) from None
    note_left_out(manifest.unreadable)
    manifest = with_ignore_patterns(manifest, args.ignore_in)
    if args.output is None:
        sys.stdout.write(manifest_text(manifest))
        return EXIT_SAME
    try:
        write_manifest(manifest, args.output)
    except OSError as exc:
        raise InputError(f"-o: {describe_os_error(exc)}") from None
    unsized = sum(1 for entry in manifest.images.values() if entry.width is None)
    note = f" ({unsized} not readable as images)" if unsized else ""
    error(f"wrote {len(manifest.images)} images{note} to {args.output}", prefix="snapcompare: ")
    return EXIT_SAME

