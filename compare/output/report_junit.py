"""``junit.xml``: one test case per image, for CI dashboards.

The root is ``<testsuite name="snapcompare">`` with ``tests``, ``failures``, ``errors`` and
``skipped`` counts. Each image is a ``<testcase classname="snapcompare.<status>"
name="<file name>">``, in name order:

- ``changed``: a ``<failure>`` whose message gives the diff ratio, the changed pixels and the
  share of changed pixels allowed (``--diff-threshold``, explained in the README's "Tuning
  diff threshold");
- ``errored``: an ``<error>`` (the image could not be judged, which fails a CI run as surely as
  a change but is a different problem), with the reason as its type and message and the detail
  as its text;
- ``skipped``: ``<skipped/>``;
- ``unchanged``, ``added``, ``removed``, ``renamed``: passing cases; what happened is in
  ``<system-out>``.

Names and texts lose the characters XML 1.0 cannot hold (control characters other than tab,
newline and carriage return, lone surrogates, U+FFFE and U+FFFF); ElementTree escapes the rest.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ..model import Comparison, ImageResult, Status
from .report_html import TUNING_ANCHOR, format_count, format_percent

SUITE_NAME = "snapcompare"

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def render_junit(comparison: Comparison) -> bytes:
    """Return ``junit.xml``'s bytes (UTF-8, with an XML declaration)."""
    suite = ET.Element("testsuite", name=SUITE_NAME)
    counts = {"failures": 0, "errors": 0, "skipped": 0}
    for name in sorted(comparison.images):
        result = comparison.images[name]
        case = ET.SubElement(
            suite, "testcase", classname=f"{SUITE_NAME}.{result.status.value}", name=_xml(name)
        )
        if result.status is Status.CHANGED:
            counts["failures"] += 1
            ET.SubElement(case, "failure", type="changed", message=_changed_message(result))
        elif result.status is Status.ERRORED:
            counts["errors"] += 1
            reason = _reason(result)
            message = f"{reason}: {result.detail}" if result.detail else reason
            error = ET.SubElement(case, "error", type=reason, message=_xml(message))
            error.text = _xml(result.detail or reason)
        elif result.status is Status.SKIPPED:
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message="not uploaded by the head build")
        else:
            ET.SubElement(case, "system-out").text = _xml(_passed_text(result))
    suite.set("tests", str(len(comparison.images)))
    for key, count in counts.items():
        suite.set(key, str(count))
    ET.indent(suite)
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True) + b"\n"


def _xml(text: str) -> str:
    return _NOT_XML.sub("", text)


def _changed_message(result: ImageResult) -> str:
    return f"{_diff_figures(result)}, more than allowed; {_allowed(result)}"


def _reason(result: ImageResult) -> str:
    return result.reason.value if result.reason is not None else "error"


def _passed_text(result: ImageResult) -> str:
    if result.status is Status.RENAMED:
        return f"renamed from {result.previous_image_file_name}"
    if result.status is Status.UNCHANGED and result.changed_pixels:
        return f"unchanged: {_diff_figures(result)}, within what is allowed; {_allowed(result)}"
    return result.status.value


def _diff_figures(result: ImageResult) -> str:
    return (
        f"{format_percent(result.diff_ratio or 0.0)} of pixels changed "
        f"({format_count(result.changed_pixels)} of {format_count(result.total_pixels)})"
    )


def _allowed(result: ImageResult) -> str:
    allowed = format_percent(result.diff_threshold or 0.0)
    return f"changed pixels allowed: {allowed} (--diff-threshold, see README #{TUNING_ANCHOR})"
