"""``junit.xml``: one test case per image, for CI dashboards.

The root is ``<testsuite name="snapcompare">`` with ``tests``, ``failures``, ``errors`` and
``skipped`` counts. Each image is a ``<testcase classname="..." name="<file name>">``, in name
order. The test case stays the same test whatever happens to the image, so a CI's history and
flaky-test tracking follow it:

- ``classname`` is ``snapcompare`` followed by the image's folders, each a dotted part, as CI
  views group packages: ``settings/dark/home.png`` is ``snapcompare.settings.dark``, a name
  without a folder plain ``snapcompare``. ``\\`` counts as ``/`` (as in Sentry's mask names),
  empty folders are left out and a ``.`` inside a folder's name becomes ``_`` (``v1.2/a.png``
  is ``snapcompare.v1_2``), so that it does not nest a package; ``name`` keeps the whole name;
- the status is a property, ``<properties><property name="status" value="changed"/>``.

What each status gives:

- ``changed``: a ``<failure>`` whose message gives the diff ratio, the changed pixels and the
  share of changed pixels allowed (``--diff-threshold``, explained in the README's "Tuning
  diff threshold");
- ``errored``: an ``<error>`` (the image could not be judged, which fails a CI run as surely as
  a change but is a different problem), with the reason as its type and message and the detail
  as its text;
- ``skipped``: ``<skipped/>``;
- ``unchanged``, ``added``, ``removed``, ``renamed``: passing cases; what happened is in
  ``<system-out>``.

Approvals (``--approved``): when one carries over, every image it covers passes, errored ones
included, with the property ``approved`` (where the approval came from) beside its status and
what happened in ``<system-out>``; the counts follow. When one was given but does not match, it
carries over for no image: the images whose change it does not hold get the property
``not_approved`` (where it came from) and say so after their failure message or output
(Sentry's rule: all or nothing; the images whose approved change is not here at all are named in
``comparison.json`` and the HTML report).

An image whose size changed has the property ``canvas_changed`` (``390x844 -> 375x844``).

Known changes (``--known-changes``): a changed image whose only change is a known one, set aside
(without ``--fail-on-known-changes``), passes with the property ``known_change`` (where the known
changes came from), as it counts in no exit code.

Names and texts are shown as the HTML report shows them (`compare.output.report_html.shown_text`):
control, bidirectional and other invisible characters, noncharacters and lone surrogates, as
escapes (``\\u202e``, ``\\x00``, ``\\uffff``; names escape tabs and line breaks too, texts keep
them), so every character left is one XML 1.0 can hold. ElementTree escapes the rest.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ..model import CompareOptions, Comparison, ImageResult, Status
from .report_html import TUNING_ANCHOR, format_count, format_percent, shown_text

SUITE_NAME = "snapcompare"

_TEXT_KEEPS = "\n\t"


def render_junit(comparison: Comparison) -> bytes:
    """Return ``junit.xml``'s bytes (UTF-8, with an XML declaration)."""
    suite = ET.Element("testsuite", name=SUITE_NAME)
    counts = {"failures": 0, "errors": 0, "skipped": 0}
    approval, mismatch = comparison.approval, comparison.approval_mismatch
    approved = frozenset(approval.images) if approval is not None else frozenset()
    unapproved = frozenset(mismatch.unapproved) if mismatch is not None else frozenset()
    set_aside = frozenset(comparison.set_aside)
    for name in sorted(comparison.images):
        result = comparison.images[name]
        case = ET.SubElement(suite, "testcase", classname=_classname(name), name=_shown(name))
        properties = {"status": result.status.value}
        if result.canvas_changed:
            properties["canvas_changed"] = (f"{result.before_width}x{result.before_height} -> "
                                            f"{result.after_width}x{result.after_height}")
        if approval is not None and name in approved:
            properties["approved"] = approval.carried_over_from
            _properties(case, properties)
            _output(case, f"{_what_happened(result, comparison.options)}; approved, carried over from "
                          f"{approval.carried_over_from}")
            continue
        if name in set_aside and comparison.known_changes is not None:
            properties["known_change"] = comparison.known_changes.source
            _properties(case, properties)
            _output(case, f"{_what_happened(result, comparison.options)}; a known change, set aside "
                          f"(from {comparison.known_changes.source})")
            continue
        note = ""
        if mismatch is not None and name in unapproved:
            properties["not_approved"] = mismatch.source
            note = f"; this change is not in the approval given ({mismatch.source})"
        _properties(case, properties)
        counted = _judge(case, result, comparison.options, note)
        if counted is not None:
            counts[counted] += 1
    suite.set("tests", str(len(comparison.images)))
    for key, count in counts.items():
        suite.set(key, str(count))
    ET.indent(suite)
    xml: bytes = ET.tostring(suite, encoding="utf-8", xml_declaration=True)  # bytes for an encoding
    return xml + b"\n"


def _classname(name: str) -> str:
    """The ``classname`` of image ``name``: ``snapcompare`` and its folders (see the module doc)."""
    folders = name.replace("\\", "/").split("/")[:-1]
    return ".".join([SUITE_NAME, *(_shown(folder).replace(".", "_") for folder in folders if folder)])


def _judge(case: ET.Element, result: ImageResult, options: CompareOptions, note: str) -> str | None:
    """Add the outcome of ``result`` (with ``note`` after its message) to ``case``; return the
    suite count it adds to, if any."""
    if result.status is Status.CHANGED:
        ET.SubElement(case, "failure", type="changed", message=_text(_changed_message(result, options) + note))
        return "failures"
    if result.status is Status.ERRORED:
        reason = _reason(result)
        message = f"{reason}: {result.detail}" if result.detail else reason
        error = ET.SubElement(case, "error", type=reason, message=_text(message + note))
        error.text = _text(result.detail or reason)
        return "errors"
    if result.status is Status.SKIPPED:
        ET.SubElement(case, "skipped", message="not uploaded by the head build")
        return "skipped"
    _output(case, _what_happened(result, options) + note)
    return None


def _properties(case: ET.Element, properties: dict[str, str]) -> None:
    element = ET.SubElement(case, "properties")
    for key, value in properties.items():
        ET.SubElement(element, "property", name=key, value=_shown(value))


def _output(case: ET.Element, text: str) -> None:
    ET.SubElement(case, "system-out").text = _text(text)


def _shown(name: str) -> str:
    """A name as the HTML report shows it, in characters XML can hold."""
    return shown_text(name).plain


def _text(text: str) -> str:
    """A text (message, detail) as the HTML report shows it, line breaks and tabs kept."""
    return shown_text(text, keep=_TEXT_KEEPS).plain


def _changed_message(result: ImageResult, options: CompareOptions) -> str:
    """Why a ``changed`` image is: its size changed, or its changed pixels are over what is
    allowed (and, with ``--window-min``, crowd into one window)."""
    if result.canvas_changed and not options.padded:
        return (f"size changed {result.before_width}x{result.before_height} -> "
                f"{result.after_width}x{result.after_height}, a change whatever the pixels; {_diff_figures(result)}")
    message = f"{_diff_figures(result)}, more than allowed; {_allowed(result, options)}"
    if options.window_min is not None:
        message += f"; and {_window(result, options)}, more than --window-min {options.window_min}"
    return message


def _window(result: ImageResult, options: CompareOptions) -> str:
    size = options.window_size
    return f"{format_count(result.window_max)} changed pixels in one {size}x{size} window"


def _reason(result: ImageResult) -> str:
    return result.reason.value if result.reason is not None else "error"


def _what_happened(result: ImageResult, options: CompareOptions) -> str:
    """What happened to an image, in words, for ``<system-out>``."""
    if result.status is Status.RENAMED:
        return f"renamed from {result.previous_image_file_name}"
    if result.status is Status.UNCHANGED and result.changed_pixels:
        if (result.diff_ratio or 0.0) > (result.diff_threshold or 0.0) and options.window_min is not None:
            return (f"unchanged: {_diff_figures(result)}, more than allowed ({_allowed(result, options)}), but at most "
                    f"{_window(result, options)}, not more than --window-min {options.window_min}")
        return f"unchanged: {_diff_figures(result)}, within what is allowed; {_allowed(result, options)}"
    if result.status is Status.CHANGED:
        return f"changed: {_changed_message(result, options)}"
    if result.status is Status.ERRORED:
        return f"errored: {_reason(result)}" + (f": {result.detail}" if result.detail else "")
    return result.status.value


def _diff_figures(result: ImageResult) -> str:
    return (
        f"{format_percent(result.diff_ratio or 0.0)} of pixels changed "
        f"({format_count(result.changed_pixels)} of {format_count(result.total_pixels)})"
    )


def _allowed(result: ImageResult, options: CompareOptions) -> str:
    """What share of changed pixels the image was allowed, and where that came from: the
    run's --diff-threshold, or the head manifest's own ``diff_threshold`` for the image."""
    allowed = result.diff_threshold or 0.0
    source = "--diff-threshold" if allowed == options.diff_threshold else "the head manifest's diff_threshold"
    return f"changed pixels allowed: {format_percent(allowed)} ({source}, see README #{TUNING_ANCHOR})"
