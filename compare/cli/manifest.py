"""``snapcompare manifest DIR``: hash a folder's images and write its manifest."""

from __future__ import annotations

import argparse
import json
import sys

from ..builds import describe_os_error
from ..inputs.manifest import ManifestError, dump_manifest, manifest_from_folder, with_ignore_patterns, write_manifest
from ..model import InputError
from .common import (
    EXIT_SAME,
    MANIFEST_IGNORE_IN_HELP,
    ParserT,
    add_follow_symlinks_option,
    add_ignore_in_option,
    error,
    note_left_out,
)


def add_manifest_command(commands: argparse._SubParsersAction[ParserT]) -> None:
    """Register ``manifest`` on the ``snapcompare`` subcommands."""
    manifest = commands.add_parser(
        "manifest",
        help="build a manifest from a folder of images",
        description="Hash every image under DIR and write its manifest (Sentry's format).",
    )
    manifest.add_argument("folder", metavar="DIR", help="folder of images")
    manifest.add_argument("-o", "--output", metavar="FILE",
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
        text = json.dumps(dump_manifest(manifest), indent=2, ensure_ascii=False)
        sys.stdout.write(_printable_json(text) + "\n")
        return EXIT_SAME
    try:
        write_manifest(manifest, args.output)
    except OSError as exc:
        raise InputError(f"-o: {describe_os_error(exc)}") from None
    unsized = sum(1 for entry in manifest.images.values() if entry.width is None)
    note = f" ({unsized} not readable as images)" if unsized else ""
    error(f"wrote {len(manifest.images)} images{note} to {args.output}", prefix="snapcompare: ")
    return EXIT_SAME


def _printable_json(text: str) -> str:
    """JSON ``text`` with every unprintable character but its line breaks spelled ``\\uXXXX``.

    Only strings can hold such characters, where the escape means the same: names with
    terminal control sequences (C1 controls, bidi overrides) or undecodable bytes (lone
    surrogates) print as text, and the output stays the same JSON.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == "\n" else _json_escape(c) for c in text)


def _json_escape(char: str) -> str:
    units = char.encode("utf-16-be", "surrogatepass")
    return "".join(f"\\u{int.from_bytes(units[i:i + 2], 'big'):04x}" for i in range(0, len(units), 2))
