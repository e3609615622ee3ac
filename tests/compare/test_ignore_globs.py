"""compare.regions: ``--ignore-in`` globs are compiled when parsed, so one RE2 cannot compile is a
usage error naming it, before anything is read, and RE2 writes nothing of it to stderr."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compare.cli import EXIT_BAD_INPUT
from compare.model import CompareOptions
from compare.regions import IgnoreRegion, parse_ignore_pattern
from tests.compare.helpers import png, run, write_folder

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("no_store_settings_from_environment")]

TOO_LARGE = "?" * 100_000


def test_a_glob_too_large_for_re2_is_refused_when_parsed_naming_it(capfd):
    with pytest.raises(ValueError) as caught:
        parse_ignore_pattern(f"{TOO_LARGE}=0:0-1:1")
    assert str(caught.value) == f"glob {'?' * 60!r}... (100,000 characters): too large for RE2 to compile"
    assert capfd.readouterr().err == ""  # RE2 logs nothing (it would quote the pattern)


def test_the_library_refuses_it_in_the_options_naming_it():
    with pytest.raises(ValueError, match=r"\(100,000 characters\): too large for RE2 to compile"):
        CompareOptions(ignore_patterns=[(TOO_LARGE, [(0, 0, 1, 1)])])


def test_compare_refuses_it_as_a_usage_error(tmp_path, capfd):
    base = write_folder(tmp_path / "base", {"a.png": png(1)})
    code, _, err = run(capfd, "compare", "--base", base, "--head", base, "--out", tmp_path / "out",
                       "--quiet", "--ignore-in", f"{TOO_LARGE}=0:0-1:1")
    assert code == EXIT_BAD_INPUT
    assert err.endswith("error: argument --ignore-in: glob "
                        f"{'?' * 60!r}... (100,000 characters): too large for RE2 to compile\n")
    assert "Error compiling" not in err and not (tmp_path / "out").exists()


@settings(max_examples=100, deadline=None)
@given(st.text(st.characters(categories=["Cs"]) | st.sampled_from("*?/=") | st.characters(),
               min_size=1, max_size=30))
def test_any_glob_of_ordinary_size_parses_and_matches_itself_without_wildcards(glob):
    pattern = parse_ignore_pattern(f"{glob}=1:2-3:4")
    assert (pattern.glob, pattern.regions) == (glob, (IgnoreRegion(1, 2, 3, 4),))
    if not {"*", "?"} & set(glob):
        assert pattern.matches(glob)


def glob_matches(glob: str, name: str) -> bool:
    """The README's glob rules, spelled out: ``**/`` any folders (none too), ``**`` anything,
    ``*`` anything within a folder, ``?`` one character but ``/``; the rest as it is."""
    if not glob:
        return not name
    if glob.startswith("**/"):
        rest = glob[3:]
        return glob_matches(rest, name) or any(
            char == "/" and glob_matches(rest, name[i + 1:]) for i, char in enumerate(name))
    if glob.startswith("**"):
        return any(glob_matches(glob[2:], name[i:]) for i in range(len(name) + 1))
    if glob[0] == "*":
        return any(glob_matches(glob[1:], name[i:]) for i in range(len(name) + 1) if "/" not in name[:i])
    if glob[0] == "?":
        return bool(name) and name[0] != "/" and glob_matches(glob[1:], name[1:])
    return bool(name) and name[0] == glob[0] and glob_matches(glob[1:], name[1:])


@pytest.mark.parametrize(("glob", "name", "matched"), [
    ("**/home.png", "home.png", True), ("**/home.png", "a/b/home.png", True), ("**/home.png", "ahome.png", False),
    ("a/**/b.png", "a/b.png", True), ("a/**/b.png", "a/x/y/b.png", True), ("*.png", "a/b.png", False),
    ("**.png", "a/b.png", True), ("?.png", "/.png", False),
])
def test_globs_match_as_the_readme_says(glob, name, matched):
    assert parse_ignore_pattern(f"{glob}=0:0-1:1").matches(name) is matched is glob_matches(glob, name)


@settings(max_examples=300, deadline=None)
@given(st.text("ab/*?", min_size=1, max_size=8), st.text("ab/", max_size=8))
def test_any_glob_matches_the_names_the_rules_say(glob, name):
    assert parse_ignore_pattern(f"{glob}=0:0-1:1").matches(name) is glob_matches(glob, name)
