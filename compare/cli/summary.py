"""What ``snapcompare compare`` prints: the summary screen, the outcome line, the exit code."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from ..model import Comparison, ImageResult, Status
from ..output.report_html import format_percent
from .common import EXIT_DIFFERENCES, EXIT_ERRORED, EXIT_RESULTS_NOT_WRITTEN, EXIT_SAME, LISTED, one_line, shown


def exit_code(comparison: Comparison) -> int:
    """`EXIT_SAME` when an approval carries over; else `EXIT_ERRORED` if any image errored, else
    `EXIT_DIFFERENCES` if any differs (known changes set aside do not), else `EXIT_SAME`."""
    if comparison.approval is not None:
        return EXIT_SAME
    if comparison.has_errors:
        return EXIT_ERRORED
    if comparison.has_counted_differences:
        return EXIT_DIFFERENCES
    return EXIT_SAME


def outcome_line(comparison: Comparison, reports: dict[str, Path], code: int) -> str:
    """The run's outcome in one line, with the counts that matter and the report's path."""
    summary = comparison.summary
    aside = len(comparison.set_aside)
    counted = comparison.counted_summary
    differing = [f"{counted[s]} {s}" for s in (Status.CHANGED, Status.ADDED, Status.REMOVED, Status.RENAMED)
                 if counted[s]]
    parts = []
    if comparison.approval is not None:
        parts.append(f"approved changes carried over from {shown(comparison.approval.carried_over_from)}")
    elif comparison.approval_mismatch is not None:
        parts.append(f"the approval {shown(comparison.approval_mismatch.source)} does not match")
    elif exit_code(comparison) == EXIT_SAME:
        parts.append(f"no {'other ' if aside else ''}differences in {summary['total']} images")
    if differing:
        parts.append("differences found: " + ", ".join(differing))
    if aside:
        parts.append(f"{aside} known changes set aside")
    if summary[Status.ERRORED]:
        parts.append(f"{summary[Status.ERRORED]} errored")
    if code == EXIT_RESULTS_NOT_WRITTEN:
        parts.append("results not written to --results-store")
    report = main_report(reports)
    where = f"; report: {shown(str(report))}" if report else ""
    return f"snapcompare: {'; '.join(parts)}{where} (exit {code})"


def print_summary(comparison: Comparison, reports: dict[str, Path], elapsed: float, out: TextIO) -> None:
    """One screen: counts per status, the most changed images, renames, errors, report paths."""
    summary = comparison.summary
    lines = [
        f"Compared {summary['total']} images in {elapsed:.1f}s"
        f"  (base: {shown(comparison.base_source)}, head: {shown(comparison.head_source)})",
        "  " + "  ".join(f"{status.value} {summary[status]}" for status in Status)
        + f"  total {summary['total']}",
    ]
    lines += _base_build_lines(comparison)
    resized = [r for r in comparison.images.values() if r.canvas_changed]
    if resized:
        unchanged = sum(1 for r in resized if r.status is Status.UNCHANGED)
        kept = f", {unchanged} of them unchanged as Sentry pads them" if unchanged else ""
        lines.append(f"  {len(resized)} changed size (before and after differ){kept}")
    aside = frozenset(comparison.set_aside)
    changed = sorted(
        (r for r in comparison.images.values() if r.status is Status.CHANGED and r.name not in aside),
        key=lambda r: (-(r.diff_ratio or 0.0), r.name),
    )
    if changed:
        lines += ["", "Most changed:"]
        lines += [
            f"  {format_percent(r.diff_ratio or 0.0):>8}  {shown(r.name)}  "
            f"({r.changed_pixels:,} of {r.total_pixels:,} pixels)"
            for r in changed[:LISTED]
        ]
        lines += more_line(len(changed))
    renamed = [r for r in comparison.images.values() if r.status is Status.RENAMED]
    if renamed:
        lines += ["", "Renamed:"]
        lines += [f"  {shown(r.previous_image_file_name or '')} -> {shown(r.name)}" for r in renamed[:LISTED]]
        lines += more_line(len(renamed))
    lines += _known_changes_lines(comparison)
    lines += _approval_lines(comparison)
    failed = errored(comparison)
    if failed:
        lines += ["", "Errored:"]
        lines += [f"  {shown(r.name)}: {r.reason}: {one_line(r.detail)}" for r in failed[:LISTED]]
        lines += more_line(len(failed))
    if reports:
        lines += ["", "Reports:"]
        lines += [f"  {shown(str(path))}" for path in reports.values()]
    out.write("\n".join([*lines, ""]) + "\n")


def _base_build_lines(comparison: Comparison) -> list[str]:
    """How the base build was chosen from git history, with the commits of its selective builds."""
    base = comparison.base_build
    if base is None:
        return []
    chosen = shown(str(base["chosen_by"]))
    lines = ["", chosen[:1].upper() + chosen[1:]]
    for title, key in (("selective builds folded onto it, nearest the merge-base first", "selective_layers"),
                       ("selective builds found", "selective_builds")):
        commits = base.get(key)
        if isinstance(commits, list) and commits:
            lines.append(f"  {title}: " + ", ".join(map(str, commits)))
    return lines


def _approval_lines(comparison: Comparison) -> list[str]:
    """What an approval covered, or which images kept a given approval from carrying over."""
    if comparison.approval is not None:
        names = comparison.approval.images
        return ["", f"Approved: the changes of {len(names)} images, carried over from "
                f"{shown(comparison.approval.carried_over_from)}"]
    mismatch = comparison.approval_mismatch
    if mismatch is None:
        return []
    lines = ["", f"Not approved: {shown(mismatch.source)} does not hold this run's changes"]
    for title, names in (("changes here that it does not approve", mismatch.unapproved),
                         ("approved changes that are not here", mismatch.not_present)):
        if names:
            lines.append(f"  {title}:")
            lines += [f"    {shown(name)}" for name in names[:LISTED]]
            lines += ["  " + line for line in more_line(len(names))]
    return lines


def _known_changes_lines(comparison: Comparison) -> list[str]:
    """How many changed images hold a known change, whether they count, and which."""
    known = comparison.known_changes
    if known is None:
        return []
    where = shown(known.source)
    if not known.images:
        return ["", f"Known changes: none of this run's changes is in {where}"]
    if known.counted:
        title = (f"Known changes: {len(known.images)} changed images hold a change known in {where}, "
                 "counted (--fail-on-known-changes)")
    else:
        title = (f"Known changes set aside: {len(known.images)} changed images hold only a change "
                 f"known in {where}")
    return ["", title, *(f"  {shown(name)}" for name in known.images[:LISTED]), *more_line(len(known.images))]


def errored(comparison: Comparison) -> list[ImageResult]:
    return [r for r in comparison.images.values() if r.status is Status.ERRORED]


def more_line(count: int) -> list[str]:
    return [f"  ... and {count - LISTED} more in the report"] if count > LISTED else []


def main_report(reports: dict[str, Path]) -> Path | None:
    shown = [path for path in reports.values() if path.suffix == ".html"] or list(reports.values())
    return shown[0] if shown else None
