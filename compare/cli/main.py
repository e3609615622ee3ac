"""The ``snapcompare`` command: the entry point, the parser of its subcommands (each in its own
module) and how an exception becomes an exit code."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from importlib import metadata
from typing import NoReturn

from fetchers import StoreUnavailable

from ..builds import describe_os_error
from ..model import InputError, parameter_names
from .approve import add_approve_command
from .common import (
    EXIT_BAD_INPUT,
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    FLAGS,
    error,
    one_line,
    print_lines,
)
from .compare import add_compare_command
from .demo import add_demo_command
from .known_changes import add_known_changes_command
from .malloc import reuse_freed_memory
from .manifest import add_manifest_command
from .upload import add_upload_command


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: the run stops as on Ctrl-C, then exits with `EXIT_TERMINATED`."""


def _terminate(_signal: int, _frame: object) -> None:
    raise Terminated


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def run() -> NoReturn:
    """The ``snapcompare`` console command: `main` on the process arguments, in a process whose
    malloc keeps freed pixel buffers for reuse (`compare.cli.malloc`)."""
    reuse_freed_memory()
    sys.exit(main())


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``snapcompare`` with ``argv`` (default: the process arguments); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if on_main_thread else None
    try:
        with parameter_names(FLAGS):
            # Every command sets its run(args) -> int with set_defaults: argparse types it Any.
            code: int = args.run(args)
            return code
    except InputError as exc:
        error(str(exc))
        return EXIT_BAD_INPUT
    except StoreUnavailable as exc:  # names the store and the cause, never a credential
        error(one_line(str(exc), 400))
        return EXIT_BAD_INPUT
    except Terminated:
        error("terminated")
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        error("interrupted")
        return EXIT_INTERRUPTED
    except OSError as exc:
        error(f"{_failed(args)}: {describe_os_error(exc)}")
        return EXIT_FAILED
    except Exception:  # noqa: BLE001 - whatever broke, CI must not read it as "differences"
        print_lines(traceback.format_exc())
        error(f"{_failed(args)} (see the traceback above)")
        return EXIT_FAILED
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _failed(args: argparse.Namespace) -> str:
    """What failed, in the words of the command that was run."""
    return "the comparison failed" if args.command == "compare" else f"{args.command} failed"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``snapcompare`` and its subcommands."""
    parser = _Parser(
        prog="snapcompare",
        description="Visual regression at scale: compare two builds' screenshots and report.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True, dest="command")
    for add_command in (add_compare_command, add_upload_command, add_approve_command,
                        add_known_changes_command, add_manifest_command, add_demo_command):
        add_command(commands)
    return parser


def _version() -> str:
    try:
        return metadata.version("snapcompare")
    except metadata.PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    run()
