"""The output folder stays consistent: a run that fails, is interrupted or meets a full disk
leaves the previous reports and their files exactly as they were; links are never written
through; one run at a time."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from compare.engine.pairs import PairOutcome
from compare.model import CompareOptions, Comparison, ImageResult, Status
from compare.output import reports
from compare.output.artifacts import FOLDERS, LOCK_FILE, ArtifactWriter
from compare.output.reports import REPORT_FILES, write_reports
from tests.compare.helpers import snapshot
from tests.compare.pixel_samples import encode

pytestmark = pytest.mark.unit


def mask(seed: int) -> bytes:
    return encode(Image.new("1", (8, 4), seed % 2), "PNG", optimize=seed)


def picture(seed: int) -> bytes:
    return encode(Image.new("RGB", (6, 6), (seed % 256, 40, 90)), "PNG")


def one_run(out: Path, masks: dict[str, int], *, during: Callable[[], None] | None = None) -> Comparison:
    """One comparison's outputs: a mask per name (from its seed) and previews for the first name."""
    with ArtifactWriter(out) as writer:
        writer.open()
        images = {}
        for index, (name, seed) in enumerate(sorted(masks.items())):
            outcome = PairOutcome(f"{seed:064x}", f"{seed + 1:064x}",
                                  previews={"before": picture(seed), "diff": picture(seed + 7)})
            images[name] = ImageResult(
                name=name, status=Status.CHANGED, diff_mask_key=writer.mask(name, mask(seed)),
                previews=writer.previews(outcome) if index == 0 else None,
            )
        if during is not None:
            during()
        comparison = Comparison(images=images, options=CompareOptions())
        write_reports(comparison, writer)
    return comparison


def referenced(comparison: Comparison) -> set[str]:
    keys = set(REPORT_FILES.values())
    for result in comparison.images.values():
        keys.add(result.diff_mask_key)
        keys.update((result.previews or {}).values())
    return keys


def files_in(out: Path) -> set[str]:
    return {key for key, (kind, _, _) in snapshot(out).items() if kind != "dir"}


def test_a_run_adds_beside_the_previous_files_and_then_removes_the_stale_ones(tmp_path):
    out = tmp_path / "out"
    first = one_run(out, {"a.png": 1, "b.png": 2, "c.png": 3})
    before = snapshot(out)

    def unchanged_so_far() -> None:
        now = snapshot(out)
        assert {key: now[key] for key in before} == before

    second = one_run(out, {"a.png": 1, "b.png": 5, "d.png": 6}, during=unchanged_so_far)

    assert files_in(out) == referenced(second)
    kept = first.images["a.png"].diff_mask_key
    assert second.images["a.png"].diff_mask_key == kept
    assert snapshot(out)[kept] == before[kept]  # the same file, not a copy
    assert not (out / first.images["b.png"].diff_mask_key).exists()



def test_a_run_deletes_only_the_masks_and_previews_a_run_would_have_written(tmp_path):
    # An output folder given as a folder that holds other things (".", say): files and folders
    # in diff/ and previews/ that no run names so are the user's, and stay.
    out = tmp_path / "out"
    first = one_run(out, {"a.png": 1, "b.png": 2, ".png": 4})  # ".png": the mask diff/.<digest>.png
    theirs = {"diff/notes.md": b"mine", "diff/old.patch": b"mine", "previews/design.png": b"mine",
              "previews/sketches/one.png": b"mine", "diff/x.png": b"mine",
              "diff/My Design (v2).0123456789abcdef.png": b"mine", "diff/100%.0123456789abcdef.png": b"mine"}
    for key, data in theirs.items():
        (out / key).parent.mkdir(parents=True, exist_ok=True)
        (out / key).write_bytes(data)

    second = one_run(out, {"a.png": 1, "c.png": 3})

    assert files_in(out) == referenced(second) | set(theirs)
    assert not (out / first.images["b.png"].diff_mask_key).exists()
    assert not (out / first.images[".png"].diff_mask_key).exists()
    assert all((out / key).read_bytes() == data for key, data in theirs.items())


class Boom(Exception):
    pass


@pytest.mark.parametrize("error", [KeyboardInterrupt, Boom])
def test_a_run_stopped_while_writing_masks_leaves_the_previous_output_exactly(tmp_path, error):
    out = tmp_path / "out"
    one_run(out, {"a.png": 1, "b.png": 2})
    before = snapshot(out)

    def stop() -> None:
        assert len(files_in(out)) > len(before)  # the new run did add files
        raise error

    with pytest.raises(error):
        one_run(out, {"a.png": 3, "c.png": 4}, during=stop)

    assert snapshot(out) == before


def test_a_run_stopped_while_writing_reports_leaves_the_previous_output_exactly(tmp_path, monkeypatch):
    out = tmp_path / "out"
    one_run(out, {"a.png": 1, "b.png": 2})
    before = snapshot(out)

    def interrupted_html(*_args):
        yield "<!doctype html>"
        raise KeyboardInterrupt

    monkeypatch.setattr(reports, "iter_html", interrupted_html)
    with pytest.raises(KeyboardInterrupt):
        one_run(out, {"a.png": 3, "c.png": 4})

    assert snapshot(out) == before


@pytest.fixture
def full_disk(monkeypatch):
    """``full_disk(predicate)``: writes to files whose path passes ``predicate`` fail with ENOSPC."""
    real_write = os.write

    def install(predicate: Callable[[str], bool]) -> None:
        def write(fd: int, data) -> int:
            try:
                path = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                path = ""
            if predicate(path):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", write)

    return install


@pytest.mark.parametrize(("where", "named"), [
    ("/diff/", "diff/"),
    ("/previews/", "previews/"),
    ("/.comparison.json.", "comparison.json"),
    ("/.report.html.", "report.html"),
])
def test_a_full_disk_leaves_the_previous_output_exactly_and_names_the_file(tmp_path, full_disk, where, named):
    out = tmp_path / "out"
    one_run(out, {"a.png": 1, "b.png": 2})
    before = snapshot(out)
    full_disk(lambda path: path.startswith(str(out)) and where in path)

    with pytest.raises(OSError) as caught:
        one_run(out, {"a.png": 3, "c.png": 4})

    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename.startswith(f"{out}/{named}")
    assert snapshot(out) == before


@given(
    runs=st.lists(
        st.tuples(
            st.dictionaries(st.sampled_from(["a.png", "b/c.png", "d.png", ".e"]), st.integers(0, 5), max_size=4),
            st.one_of(st.none(), st.integers(0, 12)),  # the write that fails, if any
            st.sampled_from(["full disk", "interrupt"]),
        ),
        min_size=1, max_size=5,
    )
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_after_any_runs_the_folder_holds_exactly_the_last_complete_report(runs, monkeypatch):
    real_write = os.write
    with tempfile.TemporaryDirectory() as temp:
        out = Path(temp) / "out"
        last: tuple[Comparison, dict] | None = None
        for masks, failing, how in runs:
            count = iter(range(10**6))

            def write(fd: int, data, failing=failing, how=how, count=count) -> int:
                if failing is not None and next(count) == failing:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)) if how == "full disk" else KeyboardInterrupt
                return real_write(fd, data)

            monkeypatch.setattr(os, "write", write)
            try:
                comparison = one_run(out, masks)
            except (OSError, KeyboardInterrupt):
                if last is not None:
                    assert snapshot(out) == last[1]
                continue
            finally:
                monkeypatch.setattr(os, "write", real_write)
            last = (comparison, snapshot(out))
            assert files_in(out) == referenced(comparison)
        if last is None:
            assert not out.exists() or files_in(out) == set()


def test_links_planted_in_the_folder_are_replaced_never_written_through(tmp_path):
    scratch = one_run(tmp_path / "scratch", {"a.png": 1})
    out, outside = tmp_path / "out", tmp_path / "outside"
    outside.mkdir()
    victims = {}
    for key in referenced(scratch):
        victim = outside / key.replace("/", "_")
        victim.write_bytes(b"precious")
        victims[victim] = b"precious"
        (out / key).parent.mkdir(parents=True, exist_ok=True)
        (out / key).symlink_to(victim)

    comparison = one_run(out, {"a.png": 1})

    assert all(victim.read_bytes() == data for victim, data in victims.items())
    for key in referenced(comparison):
        assert not (out / key).is_symlink() and (out / key).is_file()
    assert (out / comparison.images["a.png"].diff_mask_key).read_bytes() == mask(1)


@pytest.mark.parametrize("planted", ["diff", "previews", LOCK_FILE])
def test_a_link_in_place_of_a_folder_or_the_lock_fails_naming_it_and_writes_nothing_outside(tmp_path, planted):
    out, outside = tmp_path / "out", tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.png").write_bytes(b"precious")
    out.mkdir()
    (out / planted).symlink_to(outside)
    with pytest.raises(OSError) as caught:
        one_run(out, {"a.png": 1})
    assert caught.value.filename == str(out / planted)
    assert sorted(p.name for p in outside.iterdir()) == ["keep.png"]
    assert (outside / "keep.png").read_bytes() == b"precious"
    if planted in FOLDERS:  # told by `open`, before a run does its work
        with pytest.raises(OSError, match="a symbolic link, which nothing is written through") as opening:
            with ArtifactWriter(out) as writer:
                writer.open()
        assert opening.value.filename == str(out / planted)


def test_a_second_writer_is_refused_while_the_first_holds_the_folder(tmp_path):
    out = tmp_path / "out"
    with ArtifactWriter(out) as first:
        first.open()
        with pytest.raises(OSError) as caught:
            ArtifactWriter(out).open()
        assert caught.value.errno == errno.EAGAIN
        assert caught.value.filename == str(out)
        assert "another snapcompare run" in str(caught.value)
    assert not (out / LOCK_FILE).exists()
    with ArtifactWriter(out) as second:
        second.open()


def test_temporary_files_of_killed_runs_go_and_other_files_stay(tmp_path):
    out = tmp_path / "out"
    one_run(out, {"a.png": 1})
    leftovers = [out / ".comparison.json.1a2b.tmp", out / ".report.html.3c4d.tmp",
                 out / "diff" / ".x.0123456789abcdef.png.5e6f7a8b.tmp"]
    for path in leftovers:
        path.write_bytes(b"half")
    (out / ".mine.tmp").write_bytes(b"the user's")
    (out / "notes.txt").write_bytes(b"the user's")

    one_run(out, {"a.png": 1})

    assert not any(path.exists() for path in leftovers)
    assert (out / ".mine.tmp").exists() and (out / "notes.txt").exists()
