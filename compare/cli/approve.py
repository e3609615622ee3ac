"""``snapcompare approve COMPARISON --store URL --key KEY``: keep a reviewed comparison as an approval.

The comparison (a ``comparison.json`` a reviewer accepted) is checked as ``--approved`` reads
it (`compare.inputs.approved.approved_fingerprints`), must hold changes to approve, and is
written unchanged to the store under KEY, where a later ``compare --approved store:KEY`` finds
it. Exit codes: 0 stored, 2 the store did not take it, 3 bad input or a store that cannot be
used.
"""

from __future__ import annotations

import argparse
from contextlib import closing

from fetchers import BatchUploader, BlobWriter, StoreError
from fetchers.keys import check_key

from ..builds import describe_os_error, open_store
from ..inputs.approved import approved_fingerprints
from ..inputs.sources import read_input
from ..model import InputError
from .common import (
    EXIT_BAD_INPUT,
    EXIT_ERRORED,
    EXIT_SAME,
    STORE_ENV,
    ParserT,
    add_token_option,
    error,
    input_argument,
    objectstore_token,
    one_line,
    shown,
    store_from,
)

APPROVAL_CONTENT_TYPE = "application/json"

APPROVE_HELP = f"""\
exit codes:
  {EXIT_SAME}    the approval is stored under KEY
  {EXIT_ERRORED}    the store did not take it (the error is on stderr)
  {EXIT_BAD_INPUT}    bad input or configuration: not a comparison, nothing to approve, a bad
       key, or a store that cannot be used
"""


def add_approve_command(commands: argparse._SubParsersAction[ParserT]) -> None:
    """Register ``approve`` on the ``snapcompare`` subcommands."""
    approve = commands.add_parser(
        "approve",
        help="store a reviewed comparison.json as an approval for --approved store:KEY",
        description="Store a reviewed comparison.json in the store under KEY, so that a later\n"
        "'snapcompare compare --approved store:KEY' exits 0 when its changes are the same.",
        epilog=APPROVE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    approve.add_argument("comparison", type=input_argument, metavar="COMPARISON",
                         help="the comparison.json to approve (ours or Sentry's): a file, or store:KEY")
    approve.add_argument("--store", metavar="URL", help=f"store to keep it in (default: ${STORE_ENV})")
    approve.add_argument("--key", required=True, metavar="KEY",
                         help="key to store it under, e.g. approvals/pr-123.json")
    add_token_option(approve)
    approve.set_defaults(run=run_approve)


def run_approve(args: argparse.Namespace) -> int:
    """Check the comparison and store it under ``--key``; return the exit code."""
    store_url, setting = store_from(args)
    if not store_url:
        raise InputError(f"approve needs a store: pass --store URL or set {STORE_ENV}")
    try:
        check_key(args.key)
    except StoreError as exc:
        raise InputError(f"--key: {exc.message}") from None
    store = open_store(store_url, setting, max_connections=1, token=objectstore_token(args))
    with closing(store):
        if not isinstance(store, BlobWriter):
            raise InputError(f"{setting}: this store cannot be written to")
        try:  # a file, or store:KEY (a comparison.json a results store holds)
            data, source = read_input(args.comparison, store, "COMPARISON")
            fingerprints = approved_fingerprints(data, source)
        except ValueError as exc:  # ManifestError included
            raise InputError(str(exc)) from None
        except OSError as exc:
            raise InputError(describe_os_error(exc)) from None
        if not fingerprints:
            raise InputError(f"{source}: nothing to approve: no image is changed, added, removed, "
                             "renamed or errored")
        with BatchUploader(store, max_workers=1) as uploader:
            result = uploader.upload_all({args.key: data}, content_type=APPROVAL_CONTENT_TYPE,
                                         skip_existing=False)
    if result.errors:
        for failure in result.errors.values():
            error(one_line(str(failure), 400))
        print(f"snapcompare: approval not stored (exit {EXIT_ERRORED})", flush=True)
        return EXIT_ERRORED
    print(f"snapcompare: approval of {len({f[0] for f in fingerprints})} images stored under "
          f"{shown(args.key)}; compare with --approved store:{shown(args.key)} (exit {EXIT_SAME})",
          flush=True)
    return EXIT_SAME
