"""What every ``snapcompare`` command shares: exit codes, messages on the terminal, argument
types and the options several commands take."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from fetchers.files import read_regular_file

from ..builds import describe_os_error
from ..model import InputError
from ..output.report_html import shown_text
from ..regions import parse_ignore_pattern

EXIT_SAME = 0
EXIT_DIFFERENCES = 1
EXIT_ERRORED = 2
EXIT_BAD_INPUT = 3
EXIT_FAILED = 4
EXIT_RESULTS_NOT_WRITTEN = 5
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

STORE_ENV = "SNAPCOMPARE_STORE"
MAX_TOKEN_BYTES = 64 * 1024
"""The most bytes ``--objectstore-token-file`` may hold."""

EXIT_CODES_HELP = f"""\
exit codes:
  {EXIT_SAME}    no differences, or the changes of the --approved comparison, or only changes
       that --known-changes holds (unless --fail-on-known-changes)
  {EXIT_DIFFERENCES}    differences found: changed, added, removed or renamed images
  {EXIT_ERRORED}    some images errored (fetch failed, not decodable, over the pixel limit);
       wins over {EXIT_DIFFERENCES}
  {EXIT_BAD_INPUT}    bad input or configuration: arguments, manifests, folders, store URL,
       a store that cannot be used (no such bucket, denied credentials, unreachable),
       --out not writable or in use by another run
  {EXIT_FAILED}    the comparison itself failed, or a bug stopped some image (that image is
       errored, internal_error; the others finish and the reports are written)
  {EXIT_RESULTS_NOT_WRITTEN}    the comparison ran (and --out has its reports) but some of its results could
       not be written to --results-store; wins over {EXIT_SAME}, {EXIT_DIFFERENCES} and {EXIT_ERRORED} (on a
       cluster, a chunk whose worker cannot write its results errors its images: {EXIT_ERRORED})
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C, SIGINT)
  {EXIT_TERMINATED}  terminated (SIGTERM)
on {EXIT_BAD_INPUT}, {EXIT_INTERRUPTED}, {EXIT_TERMINATED} and a failed comparison ({EXIT_FAILED}), --out keeps \
the previous reports and their files as they were
"""

LISTED = 10
"""How many names a message lists before it says how many more there are."""
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", re.IGNORECASE)

FLAGS = {
    "base": "--base",
    "head": "--head",
    "store": f"--store URL (or ${STORE_ENV})",
    "out_dir": "--out",
    "approved": "--approved",
    "known_changes": "--known-changes",
    "results_store": "--results-store",
    "head_artifact_id": "--head-artifact-id",
    "base_artifact_id": "--base-artifact-id",
    "scheduler": "--scheduler",
    "follow_symlinks": "--follow-symlinks",
    "commit": "--commit",
    "branch": "--branch",
    "manifest_key": "--manifest-key",
    "base_branch": "--base-branch",
    "max_ancestors": "--max-ancestors",
}
"""The library's parameters as the commands' flags, for its errors (`compare.model.parameter`)."""


def add_token_option(parser: argparse.ArgumentParser) -> None:
    """``--objectstore-token-file``: where an objectstore store's token is read from."""
    parser.add_argument("--objectstore-token-file", type=path_argument, metavar="FILE",
                        help="file holding the objectstore token (default: "
                        "$SNAPCOMPARE_OBJECTSTORE_TOKEN); other stores use their SDK's credentials")


def objectstore_token(args: argparse.Namespace) -> str | None:
    """The objectstore token from ``--objectstore-token-file``, else None (the objectstore
    backend then reads ``$SNAPCOMPARE_OBJECTSTORE_TOKEN``).

    Raises `InputError` naming the file (never its content) when it cannot be read or is empty.
    """
    path: Path | None = args.objectstore_token_file
    if path is None:
        return None
    try:
        token = read_regular_file(path, MAX_TOKEN_BYTES).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = describe_os_error(exc) if isinstance(exc, OSError) else "not UTF-8 text"
        raise InputError(f"--objectstore-token-file: {reason}") from None
    if not token:
        raise InputError(f"--objectstore-token-file: {path} is empty")
    return token


def store_from(args: argparse.Namespace) -> tuple[str | None, str]:
    """The store URL from ``--store``, else ``$SNAPCOMPARE_STORE``, and the name of where it came from."""
    if args.store == "":
        raise InputError("--store: an empty URL (unset, the store comes from $SNAPCOMPARE_STORE)")
    return (args.store, "--store") if args.store is not None else (os.environ.get(STORE_ENV), STORE_ENV)


def add_follow_symlinks_option(parser: argparse.ArgumentParser, unfollowed: str) -> None:
    """``--follow-symlinks`` for the commands that read folders; ``unfollowed`` says what
    becomes of a symlink leading outside its folder without it."""
    parser.add_argument("--follow-symlinks", action="store_true",
                        help=f"read symlinked files and folders that lead outside the folder (by default {unfollowed})")


MANIFEST_IGNORE_IN_HELP = ("write these regions into the manifest's ignore_regions of the images "
                           "whose names GLOB matches: a comparison with this manifest as its head "
                           "ignores them there")
"""What ``--ignore-in`` does for the commands that write a manifest (``manifest``, ``upload``)."""


def add_ignore_in_option(parser: argparse.ArgumentParser, effect: str) -> None:
    """``--ignore-in GLOB=x1:y1-x2:y2,...`` (repeatable): regions for the images whose names
    match GLOB; ``effect`` says what the command does with them."""
    parser.add_argument("--ignore-in", type=parsed(parse_ignore_pattern), action="append", default=[],
                        metavar="GLOB=x1:y1-x2:y2,...",
                        help=f"{effect}; repeatable. GLOB matches whole image names: * within one "
                        "folder level (not /), ** across levels (**/ also matches no folder), ? one "
                        "character other than /, any other character itself; GLOB ends at the last "
                        "'=', so it may hold '=' and ','. Example: 'phone/**=0:0-1169:46'")


_Parsed = TypeVar("_Parsed")

ParserT = TypeVar("ParserT", bound=argparse.ArgumentParser)
"""The parser class of the ``snapcompare`` subcommands (`compare.cli.main` has its own)."""


def parsed(parse: Callable[[str], _Parsed]) -> Callable[[str], _Parsed]:
    """``parse`` as an argparse type: its ValueError becomes a usage error with its message."""
    def convert(text: str) -> _Parsed:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return convert


def path_argument(text: str) -> Path:
    """A file or folder argument; an empty one (an unset variable, say) is a usage error rather
    than the current folder."""
    if not text:
        raise argparse.ArgumentTypeError("expected a path, got an empty one")
    return Path(text)


def input_argument(text: str) -> str:
    """A file or ``store:KEY`` argument, kept as typed: a `Path` would turn ``./store:x`` (the
    file of that name) into the store key ``store:x``, and ``a//b`` into ``a/b``."""
    if not text:
        raise argparse.ArgumentTypeError("expected a path, got an empty one")
    return text


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def size(text: str) -> int:
    """Bytes from ``1073741824``, ``512M``, ``1G``, ``1.5GiB`` (K, M, G, T are powers of 1024)."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a size such as 512M or 2G, got {text!r}")
    value = int(float(match[1]) * _SIZE_UNITS[match[2].upper()])
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a size of at least one byte, got {text!r}")
    return value


def note_left_out(unreadable: Mapping[str, str]) -> None:
    """Name on stderr the files of a folder that got no manifest entry, and why."""
    for name, reason in list(unreadable.items())[:LISTED]:
        error(f"left out {shown(name)}: {reason}", prefix="snapcompare: ")
    if len(unreadable) > LISTED:
        error(f"left out {len(unreadable) - LISTED} more files", prefix="snapcompare: ")


def shown(text: str) -> str:
    """``text`` safe to print on a terminal, as the reports show it: control, invisible and
    blank characters are escaped (``\\u202e``), not sent (see `shown_text`)."""
    if text.isascii() and text.isprintable():
        return text
    return shown_text(text).plain


def one_line(text: str | None, limit: int = 160) -> str:
    line = shown(" ".join((text or "").split()))
    return line if len(line) <= limit else line[: limit - 3] + "..."


def print_lines(text: str) -> None:
    """``text`` (a traceback) on stderr, line by line, each safe for a terminal (`shown`)."""
    _to_stderr("".join(shown(line) + "\n" for line in text.splitlines()))


def error(message: str, *, prefix: str = "snapcompare: error: ") -> None:
    # Messages name inputs (paths, image names, URLs' parts): their control characters are escaped.
    _to_stderr(prefix + shown(message) + "\n")


def _to_stderr(text: str) -> None:
    """Write ``text`` to stderr, if there is one to write to: with none (2>&-) or a closed pipe
    it goes unsaid, and the exit code still tells."""
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass
