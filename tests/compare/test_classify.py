"""Categorisation: statuses from manifests alone, renames, skips, pixel limit, pairs and blobs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from difflib import SequenceMatcher

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from compare import classify as planning
from compare.classify import DiffCandidate, Plan, RatioBudget, categorize, pair_by_similarity
from compare.inputs.manifest import ImageEntry, Manifest
from compare.model import DEFAULT_MAX_PIXELS, ImageResult, Reason, Status
from compare.regions import IgnorePattern, IgnoreRegion

pytestmark = pytest.mark.unit


def h(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def image(name: str, label: str, width=None, height=None, diff_threshold=None) -> ImageEntry:
    return ImageEntry(name=name, content_hash=h(label), width=width, height=height,
                      diff_threshold=diff_threshold)


def manifest(*entries: ImageEntry, **options) -> Manifest:
    return Manifest(images={e.name: e for e in entries}, **options)


def statuses(plan: Plan) -> dict[str, Status]:
    return {name: outcome.status for name, outcome in plan.outcomes.items()}


def test_each_status_decided_from_the_manifests():
    base = manifest(image("same.png", "s", 10, 20), image("edit.png", "e1", 10, 20),
                    image("gone.png", "g", 3, 4))
    head = manifest(image("same.png", "s", 10, 20), image("edit.png", "e2", 10, 30),
                    image("new.png", "n", 5, 6))

    plan = categorize(base, head)

    assert plan.outcomes == {
        "gone.png": ImageResult("gone.png", Status.REMOVED, base_hash=h("g"),
                                 before_width=3, before_height=4),
        "new.png": ImageResult("new.png", Status.ADDED, head_hash=h("n"),
                                after_width=5, after_height=6),
        "same.png": ImageResult("same.png", Status.UNCHANGED, base_hash=h("s"), head_hash=h("s"),
                                 before_width=10, before_height=20,
                                 after_width=10, after_height=20),
    }
    assert plan.candidates == {
        "edit.png": DiffCandidate("edit.png", base.images["edit.png"], head.images["edit.png"],
                                  0.0)
    }
    assert plan.candidates["edit.png"].pair == (h("e1"), h("e2"))
    assert plan.pairs == {(h("e1"), h("e2"), ()): ("edit.png",)}
    assert plan.blobs == {h("e1"), h("e2")}
    assert plan.total == 4
    assert plan.counts() == {Status.CHANGED: 0, Status.UNCHANGED: 1, Status.ADDED: 1,
                             Status.REMOVED: 1, Status.ERRORED: 0, Status.RENAMED: 0,
                             Status.SKIPPED: 0}


def test_statuses_and_reasons_are_their_report_strings():
    assert [s.value for s in Status] == ["changed", "unchanged", "added", "removed", "errored",
                                        "renamed", "skipped"]
    assert {r.value for r in Reason} == {"image_fetch_failed", "image_processing_failed",
                                        "exceeds_pixel_limit", "chunk_failed",
                                        "chunk_result_unreadable", "internal_error"}
    assert json.dumps({Status.RENAMED: Reason.EXCEEDS_PIXEL_LIMIT}) == \
        '{"renamed": "exceeds_pixel_limit"}'
    assert Status("skipped") is Status.SKIPPED


def test_empty_manifests_give_an_empty_plan():
    plan = categorize(manifest(), manifest())
    assert (plan.outcomes, plan.candidates, plan.pairs, plan.blobs, plan.total) == (
        {}, {}, {}, frozenset(), 0)


def test_rename_one_to_one_is_keyed_by_the_head_name():
    base = manifest(image("old.png", "x", 4, 4), image("gone.png", "g"))
    head = manifest(image("new.png", "x", 4, 4), image("fresh.png", "f"))

    plan = categorize(base, head)

    assert plan.outcomes["new.png"] == ImageResult(
        "new.png", Status.RENAMED, base_hash=h("x"), head_hash=h("x"),
        previous_image_file_name="old.png", before_width=4, before_height=4, after_width=4,
        after_height=4)
    assert "old.png" not in plan.outcomes
    assert statuses(plan) == {"new.png": Status.RENAMED, "gone.png": Status.REMOVED,
                              "fresh.png": Status.ADDED}
    assert plan.blobs == frozenset()
    assert plan.total == 3


def test_rename_with_several_candidates_pairs_most_similar_names():
    base = manifest(image("login_dark.png", "x"), image("login_light.png", "x"),
                    image("profile_light.png", "x"))
    head = manifest(image("auth/login_light.png", "x"), image("auth/login_dark.png", "x"),
                    image("auth/profile_light.png", "x"), image("auth/zzz.png", "x"))

    plan = categorize(base, head)

    renamed = {n: o.previous_image_file_name for n, o in plan.outcomes.items()
               if o.status is Status.RENAMED}
    assert renamed == {"auth/login_dark.png": "login_dark.png",
                       "auth/login_light.png": "login_light.png",
                       "auth/profile_light.png": "profile_light.png"}
    assert plan.outcomes["auth/zzz.png"].status is Status.ADDED


def test_rename_leftover_base_names_stay_removed():
    base = manifest(image("tab_home.png", "x"), image("tab_feed.png", "x"),
                    image("unrelated.png", "x"))
    head = manifest(image("tabs/home.png", "x"))

    plan = categorize(base, head)

    assert plan.outcomes["tabs/home.png"].previous_image_file_name == "tab_home.png"
    assert statuses(plan) == {"tabs/home.png": Status.RENAMED, "tab_feed.png": Status.REMOVED,
                              "unrelated.png": Status.REMOVED}


def test_rename_ties_are_broken_by_name_whatever_the_manifest_order():
    # Every old/new pair below has the same similarity ratio.
    olds = [image("a.png", "x"), image("b.png", "x")]
    news = [image("c.png", "x"), image("d.png", "x")]

    plans = [categorize(manifest(*o), manifest(*n))
             for o in (olds, olds[::-1]) for n in (news, news[::-1])]

    for plan in plans:
        assert plan == plans[0]
        assert {n: o.previous_image_file_name for n, o in plan.outcomes.items()} == {
            "c.png": "a.png", "d.png": "b.png"}


def test_renames_only_pair_equal_hashes():
    base = manifest(image("old_a.png", "a"), image("old_b.png", "b"))
    head = manifest(image("new_a.png", "b"), image("new_b.png", "a"))

    plan = categorize(base, head)

    assert {n: o.previous_image_file_name for n, o in plan.outcomes.items()} == {
        "new_a.png": "old_b.png", "new_b.png": "old_a.png"}


def test_selective_head_skips_base_images_it_did_not_upload():
    base = manifest(image("kept.png", "k"), image("edit.png", "e1"), image("moved.png", "m"))
    head = manifest(image("edit.png", "e2"), image("moved_v2.png", "m"), selective=True)

    plan = categorize(base, head)

    assert statuses(plan) == {"kept.png": Status.SKIPPED, "moved_v2.png": Status.RENAMED}
    assert plan.outcomes["kept.png"] == ImageResult("kept.png", Status.SKIPPED,
                                                     base_hash=h("k"))
    assert plan.outcomes["moved_v2.png"].previous_image_file_name == "moved.png"
    assert list(plan.candidates) == ["edit.png"]
    assert plan.blobs == {h("e1"), h("e2")}


@pytest.mark.parametrize("selective", [True, False])
def test_all_image_file_names_separates_skipped_from_removed(selective):
    base = manifest(image("listed.png", "l"), image("unlisted.png", "u"),
                    image("renamed_old.png", "r"), image("same.png", "s"))
    head = manifest(image("same.png", "s"), image("renamed_new.png", "r"),
                    image("new.png", "n"), selective=selective,
                    all_image_file_names=frozenset({"listed.png", "same.png", "renamed_new.png",
                                                    "never_built.png"}))

    plan = categorize(base, head)

    # new.png is uploaded but missing from the list: uploaded images count as present.
    assert statuses(plan) == {"listed.png": Status.SKIPPED, "unlisted.png": Status.REMOVED,
                              "renamed_new.png": Status.RENAMED, "same.png": Status.UNCHANGED,
                              "new.png": Status.ADDED}
    assert plan.outcomes["renamed_new.png"].previous_image_file_name == "renamed_old.png"


def test_a_name_listed_as_present_is_a_rename_source_in_the_second_pass():
    # Sentry's pass 2 pairs added names with skipped (listed, not uploaded) names.
    base = manifest(image("icon.png", "x"))
    head = manifest(image("icon_copy.png", "x"), selective=True,
                    all_image_file_names=frozenset({"icon.png", "icon_copy.png"}))

    plan = categorize(base, head)

    assert statuses(plan) == {"icon_copy.png": Status.RENAMED}
    assert plan.outcomes["icon_copy.png"].previous_image_file_name == "icon.png"


def test_an_empty_list_means_every_base_only_image_is_gone():
    base = manifest(image("a.png", "a"))
    head = manifest(selective=True, all_image_file_names=frozenset())
    assert statuses(categorize(base, head)) == {"a.png": Status.REMOVED}


def test_the_base_manifests_own_selectivity_is_ignored():
    base = manifest(image("a.png", "a"), selective=True, all_image_file_names=frozenset({"a.png"}))
    assert statuses(categorize(base, manifest())) == {"a.png": Status.REMOVED}


def test_pixel_limit_uses_the_widest_and_tallest_manifest_sizes():
    base = manifest(image("wide.png", "w1", 8000, 1000), image("ok.png", "o1", 5000, 8000),
                    image("tall.png", "t1", 100, 100))
    head = manifest(image("wide.png", "w2", 1000, 8000), image("ok.png", "o2", 5000, 8000),
                    image("tall.png", "t2", 100, 400_001))

    plan = categorize(base, head)

    assert plan.outcomes["wide.png"] == ImageResult(
        "wide.png", Status.ERRORED, base_hash=h("w1"), head_hash=h("w2"),
        reason=Reason.EXCEEDS_PIXEL_LIMIT, before_width=8000, before_height=1000,
        after_width=1000, after_height=8000,
        detail="'wide.png': comparison canvas 8000x8000 = 64000000 pixels (from the manifests) "
               "exceeds max_pixels=40000000")
    assert plan.outcomes["tall.png"].reason is Reason.EXCEEDS_PIXEL_LIMIT
    assert list(plan.candidates) == ["ok.png"]  # exactly 40,000,000 is within the limit
    assert plan.blobs == {h("o1"), h("o2")}
    assert DEFAULT_MAX_PIXELS == 40_000_000


def test_pixel_limit_is_configurable():
    base = manifest(image("a.png", "a1", 10, 10))
    head = manifest(image("a.png", "a2", 10, 11))
    assert categorize(base, head, max_pixels=110).candidates.keys() == {"a.png"}
    assert categorize(base, head, max_pixels=109).outcomes["a.png"].status is Status.ERRORED


def test_unknown_sizes_stay_candidates_unless_the_known_ones_already_exceed():
    base = manifest(image("unknown.png", "u1"), image("half.png", "h1", 10_000, 5_000),
                    image("width_only.png", "w1", 9_000, None))
    head = manifest(image("unknown.png", "u2"), image("half.png", "h2"),
                    image("width_only.png", "w2", None, 5_000))

    plan = categorize(base, head)

    assert list(plan.candidates) == ["unknown.png"]
    assert {n: o.reason for n, o in plan.outcomes.items()} == {
        "half.png": Reason.EXCEEDS_PIXEL_LIMIT, "width_only.png": Reason.EXCEEDS_PIXEL_LIMIT}


def test_threshold_resolution_order():
    """The one place the rule is tested; the engine and the Sentry drop-in test only what they add."""
    base = manifest(image("own.png", "a1", diff_threshold=0.9), image("zero.png", "b1"),
                    image("inherit.png", "c1", diff_threshold=0.7), diff_threshold=0.8)
    head = manifest(image("own.png", "a2", diff_threshold=0.2),
                    image("zero.png", "b2", diff_threshold=0.0), image("inherit.png", "c2"),
                    diff_threshold=0.3)

    plan = categorize(base, head, default_diff_threshold=0.05)

    # The head image's own threshold wins, even 0.0; the base image's and manifest's are never used.
    assert {n: c.diff_threshold for n, c in plan.candidates.items()} == {
        "own.png": 0.2, "zero.png": 0.0, "inherit.png": 0.3}
    no_manifest_threshold = categorize(base, manifest(*head.images.values()),
                                       default_diff_threshold=0.05)
    assert no_manifest_threshold.candidates["inherit.png"].diff_threshold == 0.05
    assert categorize(base, manifest(image("inherit.png", "c2"))).candidates[
        "inherit.png"].diff_threshold == 0.0


def test_identical_pairs_are_diffed_once_and_fanned_out():
    base = manifest(image("a.png", "old"), image("b.png", "old"), image("c.png", "old"),
                    image("d.png", "d1"), image("same.png", "shared"), image("gone.png", "g"))
    head = manifest(image("b.png", "new"), image("a.png", "new"), image("c.png", "other"),
                    image("d.png", "new"), image("same.png", "shared"), image("add.png", "ad"))

    plan = categorize(base, head)

    assert plan.pairs == {
        (h("old"), h("new"), ()): ("a.png", "b.png"),
        (h("old"), h("other"), ()): ("c.png",),
        (h("d1"), h("new"), ()): ("d.png",),
    }
    assert list(plan.pairs) == [(h("old"), h("new"), ()), (h("old"), h("other"), ()), (h("d1"), h("new"), ())]
    assert plan.blobs == {h("old"), h("new"), h("other"), h("d1")}
    assert list(plan.candidates) == ["a.png", "b.png", "c.png", "d.png"]


def test_unchanged_hashes_are_fetched_only_when_a_candidate_needs_them():
    base = manifest(image("same.png", "s"), image("edit.png", "s"))
    head = manifest(image("same.png", "s"), image("edit.png", "e"))
    assert categorize(base, head).blobs == {h("s"), h("e")}
    assert categorize(base, manifest(image("same.png", "s"))).blobs == frozenset()


@pytest.mark.parametrize("kwargs", [{"max_pixels": 0}, {"default_diff_threshold": 1.5},
                                    {"default_diff_threshold": -0.1},
                                    {"default_diff_threshold": float("nan")}])
def test_invalid_options_are_rejected(kwargs):
    with pytest.raises(ValueError):
        categorize(manifest(), manifest(), **kwargs)


# Properties over random manifests ---------------------------------------------------------

NAMES = ["a.png", "b.png", "a_dark.png", "dir/a.png", "dir/b.png", "c.jpg", "c_v2.jpg", "z.png"]
LABELS = ["p", "q", "r", "s"]
SIZES = [None, 10, 100]
MAX_PIXELS = 5_000


def _entries(draw, names):
    return [image(name, draw(st.sampled_from(LABELS)), draw(st.sampled_from(SIZES)),
                  draw(st.sampled_from(SIZES)), draw(st.sampled_from([None, 0.0, 0.4])))
            for name in names]


@st.composite
def manifest_pairs(draw):
    base = manifest(*_entries(draw, draw(st.lists(st.sampled_from(NAMES), unique=True))))
    head_entries = _entries(draw, draw(st.lists(st.sampled_from(NAMES), unique=True)))
    listed = draw(st.none() | st.frozensets(st.sampled_from(NAMES)))
    head = manifest(*head_entries, selective=draw(st.booleans()), all_image_file_names=listed,
                    diff_threshold=draw(st.sampled_from([None, 0.1])))
    return base, head


def _reversed(m: Manifest) -> Manifest:
    return dataclasses.replace(m, images=dict(reversed(m.images.items())))


def _without(m: Manifest, names: set[str]) -> Manifest:
    return dataclasses.replace(m, images={n: e for n, e in m.images.items() if n not in names})


@settings(max_examples=400, deadline=None)
@given(manifest_pairs())
def test_plan_invariants(pair):
    base, head = pair
    plan = categorize(base, head, max_pixels=MAX_PIXELS, default_diff_threshold=0.2)
    by_status = {s: {n for n, o in plan.outcomes.items() if o.status is s} for s in Status}
    renamed_from = {plan.outcomes[n].previous_image_file_name: n for n in by_status[Status.RENAMED]}

    # Every name of base and head is accounted for exactly once.
    accounted = Counter([*plan.outcomes, *plan.candidates, *renamed_from])
    assert set(accounted) == base.images.keys() | head.images.keys()
    assert set(accounted.values()) <= {1}
    assert plan.total == len(base.images.keys() | head.images.keys()) - len(renamed_from)
    assert sum(plan.counts().values()) + len(plan.candidates) == plan.total
    assert plan.counts()[Status.CHANGED] == 0

    # Blobs are exactly the hashes of the candidate pairs, and pairs cover every candidate once.
    assert plan.blobs == {x for c in plan.candidates.values() for x in c.pair}
    assert sorted(n for names in plan.pairs.values() for n in names) == sorted(plan.candidates)
    for key, names in plan.pairs.items():
        assert all(plan.candidates[n].key == key for n in names)
    # Unchanged names contribute nothing: without them the fetch work is the same.
    unchanged = by_status[Status.UNCHANGED]
    assert all(base.images[n].content_hash == head.images[n].content_hash for n in unchanged)
    pruned = categorize(_without(base, unchanged), _without(head, unchanged),
                        max_pixels=MAX_PIXELS, default_diff_threshold=0.2)
    assert (pruned.candidates, pruned.pairs, pruned.blobs) == (
        plan.candidates, plan.pairs, plan.blobs)

    # Each status agrees with the manifests.
    for name, c in plan.candidates.items():
        assert c.base is base.images[name] and c.head is head.images[name]
        assert c.base.content_hash != c.head.content_hash
        assert c.diff_threshold == next(t for t in (c.head.diff_threshold, head.diff_threshold,
                                                    0.2) if t is not None)
    for name in by_status[Status.ERRORED]:
        assert plan.outcomes[name].reason is Reason.EXCEEDS_PIXEL_LIMIT
        assert name in base.images and name in head.images
    for old, new in renamed_from.items():
        assert base.images[old].content_hash == head.images[new].content_hash
        assert old not in head.images and new not in base.images
    assert by_status[Status.ADDED] <= head.images.keys() - base.images.keys()
    gone = by_status[Status.REMOVED] | by_status[Status.SKIPPED] | renamed_from.keys()
    assert gone == base.images.keys() - head.images.keys()
    listed = head.all_image_file_names
    if listed is not None:
        assert by_status[Status.SKIPPED] | (renamed_from.keys() & listed) == (
            base.images.keys() - head.images.keys()) & listed
        assert not by_status[Status.REMOVED] & listed
    elif head.selective:
        assert not by_status[Status.REMOVED]
    else:
        assert not by_status[Status.SKIPPED]

    # Renaming is maximal: no leftover old and new name share a hash.
    may_rename = by_status[Status.REMOVED] if listed is not None or not head.selective \
        else by_status[Status.SKIPPED]
    assert not ({base.images[n].content_hash for n in may_rename}
                & {head.images[n].content_hash for n in by_status[Status.ADDED]})

    # The plan does not depend on the manifests' order.
    assert categorize(_reversed(base), _reversed(head), max_pixels=MAX_PIXELS,
                      default_diff_threshold=0.2) == plan


def test_pattern_regions_go_to_the_candidates_they_match_and_key_their_diffs():
    names = ("a/one.png", "a/two.png", "a/b/three.png", "top.png")
    base = manifest(*(image(name, "before") for name in names))
    own = {"ignore_regions": [{"x1": 0, "y1": 0, "x2": 1, "y2": 1}]}
    head = manifest(*(image(name, "after") for name in names[:3]),
                    dataclasses.replace(image("top.png", "after"), extra=own))
    first, second = IgnoreRegion(5, 5, 9, 9), IgnoreRegion(0, 0, 1, 1)
    patterns = (IgnorePattern("a/*", (first,)), IgnorePattern("**", (second,)))

    plan = categorize(base, head, ignore_patterns=patterns)

    assert {name: c.ignore_regions for name, c in plan.candidates.items()} == {
        "a/one.png": (first, second), "a/two.png": (first, second), "a/b/three.png": (second,),
        # A pattern's region equal to the image's own is listed once.
        "top.png": (second,),
    }
    # Names share a diff exactly when their hashes and their regions are the same.
    assert plan.pairs == {(h("before"), h("after"), (first, second)): ("a/one.png", "a/two.png"),
                          (h("before"), h("after"), (second,)): ("a/b/three.png", "top.png")}


class CountingMatcher(SequenceMatcher):
    """`SequenceMatcher`, counting the characters of every pair of names it is set to compare."""

    characters = 0

    def set_seq1(self, a: str) -> None:
        CountingMatcher.characters += len(a) + len(self.b or "")  # b is None while constructing
        super().set_seq1(a)


@pytest.mark.parametrize("length", [40, 1000, 4000])
@pytest.mark.parametrize("images", [22, 282, 10_000])
@pytest.mark.parametrize("rename", ["folder move", "changed ending"])
def test_rename_pairing_compares_a_bounded_number_of_characters_whatever_the_names(
    monkeypatch, length, images, rename
):
    monkeypatch.setattr(planning, "SequenceMatcher", CountingMatcher)
    monkeypatch.setattr(CountingMatcher, "characters", 0)
    pad = "p" * (length - 40)
    olds = [f"screens/{pad}/feature_{i:05d}/state_{i % 7}.png" for i in range(images // 2)]
    news = {(f"screens_v2{old.removeprefix('screens')}" if rename == "folder move"
             else old.removesuffix(".png") + "_dark.png"): old for old in olds}

    assert pair_by_similarity(news, olds) == news
    # Each pair's ratio costs about its names' length: the exact pass is bounded in characters
    # (each pair is set twice: for its quick bound, then for its ratio), the rest computes none.
    assert CountingMatcher.characters <= 2 * planning.EXACT_CHARACTERS
    pairs_characters = len(olds) * sum(map(len, news)) + len(news) * sum(map(len, olds))
    if len(news) * len(olds) > planning.EXACT_PAIRS or pairs_characters > planning.EXACT_CHARACTERS:
        assert CountingMatcher.characters == 0


RENAME_FOLDERS = [f"f{i:02d}" for i in range(12)]


def _renamed_alike(olds: list[str], rename: str, folder: str = "moved", ending: str = "_dark") -> dict[str, str]:
    """New names for ``olds`` (new -> old), all renamed alike: moved to ``folder``, or with
    ``ending`` added before ".png"."""
    if rename == "folder move":
        return {f"{folder}/{old.split('/', 1)[1]}": old for old in olds}
    return {old.removesuffix(".png") + ending + ".png": old for old in olds}


def _misplaced_by_name_order(news: dict[str, str], olds: list[str]) -> bool:
    """Whether pairing in name order gets some of the renames ``news`` wrong."""
    return dict(zip(sorted(news), sorted(olds), strict=False)) != news


@st.composite
def renames_in_shuffled_folders(draw, rename: str) -> tuple[dict[str, str], list[str]]:
    """Old names in folders drawn at random, and new names (new -> old) for some of them, all
    renamed alike; sorting does not line the new names up with their old ones."""
    folders = draw(st.lists(st.sampled_from(RENAME_FOLDERS), min_size=2, max_size=40))
    olds = [f"{folder}/screen_{i:04d}.png" for i, folder in enumerate(folders)]
    kept = draw(st.lists(st.booleans(), min_size=len(olds), max_size=len(olds)).filter(any))
    # An ending that ends in no digit: one that did ("-v2") would share as much with another
    # old name ("screen_0002.png") as with its own, a tie that is no rename's.
    news = _renamed_alike([old for old, keep in zip(olds, kept, strict=True) if keep], rename,
                          folder=draw(st.sampled_from(["moved", "v2/screens", "z"])),
                          ending=draw(st.sampled_from(["_dark", "@2x", "-rtl", "_landscape"])))
    assume(_misplaced_by_name_order(news, olds))
    return news, draw(st.permutations(olds))


@pytest.mark.parametrize("rename", ["folder move", "changed ending"])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_renames_beyond_the_ratio_budget_pair_every_name_whatever_its_place_in_name_order(rename, data):
    # With none of the budget left, each new name is paired by the ends it shares with its
    # nearest old names, by name (a changed ending) and by reversed name (a folder move), not
    # by where it sorts.
    news, olds = data.draw(renames_in_shuffled_folders(rename))
    spent = RatioBudget()
    spent.pairs = 0

    assert pair_by_similarity(news, olds, spent) == news


@pytest.mark.parametrize("rename", ["folder move", "changed ending"])
def test_renames_beyond_the_real_ratio_budget_pair_every_name_whatever_its_place_in_name_order(rename):
    olds = [f"{RENAME_FOLDERS[i * 7 % len(RENAME_FOLDERS)]}/screen_{i:04d}.png" for i in range(300)]
    news = _renamed_alike(olds[1::3], rename)
    assert len(news) * len(olds) > planning.EXACT_PAIRS and _misplaced_by_name_order(news, olds)

    assert pair_by_similarity(news, olds) == news


def test_long_names_of_few_letters_are_not_scored_past_the_length_products(monkeypatch):
    # A ratio's worst case grows with its names' lengths multiplied: two names of 60,000
    # characters over a few letters took 18 s, within the pair and character budgets.
    monkeypatch.setattr(planning, "SequenceMatcher", CountingMatcher)
    monkeypatch.setattr(CountingMatcher, "characters", 0)
    letters = "abc"
    old = ["".join(letters[(i * i + k) % 3] for i in range(5_000)) + ".png" for k in range(1)]
    new = ["".join(letters[(i * i + k) % 3] for i in range(5_000)) + f"-{k}.png" for k in range(2)]
    assert len(old) * sum(map(len, new)) + len(new) * sum(map(len, old)) <= planning.EXACT_CHARACTERS
    assert sum(map(len, new)) * sum(map(len, old)) > planning.EXACT_LENGTH_PRODUCTS

    paired = pair_by_similarity(new, old)

    assert len(paired) == 1 and CountingMatcher.characters == 0


# Folders a folder manifest could not list ------------------------------------------------

UNDER = ["sub/a.png", "sub/deep/b.png", "sub.png", "subway/c.png", "top.png", "other/sub/d.png"]
FOLDERS = ["sub/", "sub/deep/", "other/"]


def _under(name: str, folders) -> str | None:
    return next((folder for folder in folders if name.startswith(folder)), None)


@st.composite
def unlisted_folder_pairs(draw):
    """Base and head manifests of UNDER, one side with folders it could not list (and so no
    image under them)."""
    folders = draw(st.lists(st.sampled_from(FOLDERS), min_size=1, unique=True))
    sides = []
    for listing in (draw(st.booleans()), None):
        names = draw(st.lists(st.sampled_from(UNDER), unique=True))
        if listing is not None:
            names = [name for name in names if _under(name, folders) is None]
        sides.append(manifest(*(image(n, draw(st.sampled_from(LABELS))) for n in names),
                              selective=draw(st.booleans())))
    unlisted, other = sides
    unlisted = dataclasses.replace(unlisted, unreadable={f: f"cannot list {f}" for f in folders})
    return (unlisted, other) if draw(st.booleans()) else (other, unlisted)


@settings(max_examples=300, deadline=None)
@given(unlisted_folder_pairs())
def test_images_under_a_folder_the_other_side_could_not_list_are_errored_with_its_reason(pair):
    base, head = pair
    side, unlisted = ("base", base) if base.unreadable else ("head", head)
    other = head if unlisted is base else base
    plan = categorize(base, head)

    # The outermost folder a name is under comes first in name order.
    covered = {name: _under(name, sorted(unlisted.unreadable)) for name in other.images}
    covered = {name: folder for name, folder in covered.items() if folder is not None}
    for name, folder in covered.items():
        outcome = plan.outcomes[name]
        assert (outcome.status, outcome.reason) == (Status.ERRORED, Reason.IMAGE_PROCESSING_FAILED)
        assert outcome.detail == f'{side} image folder "{folder}": cannot list {folder}'
    for folder in unlisted.unreadable:
        assert plan.outcomes[folder].detail == f"{side} image folder: cannot list {folder}"
    # The other names are planned as if the covered ones and the folders were not there.
    rest = categorize(_without(dataclasses.replace(base, unreadable={}), set(covered)),
                      _without(dataclasses.replace(head, unreadable={}), set(covered)))
    assert {n: o for n, o in plan.outcomes.items() if n not in covered and n not in unlisted.unreadable} \
        == rest.outcomes
    assert plan.candidates == rest.candidates


# One ratio budget for the whole comparison -----------------------------------------------

class RatioCounter(CountingMatcher):
    """`CountingMatcher`, also counting the pairs of names scored (each gets one quick bound)."""

    scored = 0

    def quick_ratio(self) -> float:
        RatioCounter.scored += 1
        return super().quick_ratio()


@pytest.fixture
def ratio_counter(monkeypatch) -> type[RatioCounter]:
    monkeypatch.setattr(planning, "SequenceMatcher", RatioCounter)
    monkeypatch.setattr(CountingMatcher, "characters", 0)
    monkeypatch.setattr(RatioCounter, "scored", 0)
    return RatioCounter


def test_many_hashes_each_within_the_bound_share_one_budget(monkeypatch, ratio_counter):
    monkeypatch.setattr(planning, "EXACT_PAIRS", 100)
    # 40 hashes of 3 old and 3 new names: 9 pairs each, 360 in all.
    olds = [image(f"screens/feature_{i:02d}/state_{k}.png", f"h{i}") for i in range(40) for k in range(3)]
    news = [image(old.name.replace("screens/", "v2/"), f"h{i // 3}") for i, old in enumerate(olds)]

    plan = categorize(manifest(*olds), manifest(*news))

    assert ratio_counter.scored <= 100
    assert {n: o.previous_image_file_name for n, o in plan.outcomes.items()} == {
        new.name: old.name for new, old in zip(news, olds, strict=True)}


def _sentry_pairing(new: list[str], old: list[str]) -> dict[str, str]:
    """Sentry's greedy pairing by ``SequenceMatcher`` ratio, ties by name."""
    pairs: dict[str, str] = {}
    for _, n, o in sorted((-SequenceMatcher(None, n, o).ratio(), n, o) for n in new for o in old):
        if n not in pairs and o not in pairs.values():
            pairs[n] = o
    return pairs


_rename_name = st.text("ab/_.", min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(LABELS), st.tuples(st.sets(_rename_name, min_size=1, max_size=5),
                                                          st.sets(_rename_name, min_size=1, max_size=5)),
                       min_size=1),
       st.integers(0, 60), st.integers(0, 1500))
def test_rename_ratios_stay_within_one_budget_and_are_sentrys_while_they_fit(groups, pairs, characters):
    new = {f"{label}{name}+": h(label) for label, (names, _) in groups.items() for name in names}
    old = {f"{label}{name}~": h(label) for label, (_, names) in groups.items() for name in names}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(planning, "EXACT_PAIRS", pairs)
        patch.setattr(planning, "EXACT_CHARACTERS", characters)
        patch.setattr(planning, "SequenceMatcher", RatioCounter)
        patch.setattr(CountingMatcher, "characters", 0)
        patch.setattr(RatioCounter, "scored", 0)
        renames = planning.pair_renames(new, old)
        scored, compared = RatioCounter.scored, CountingMatcher.characters

    assert scored <= pairs and compared <= 2 * characters
    for label, (news, olds) in groups.items():
        paired = {n: o for n, o in renames.items() if new[n] == h(label)}
        assert len(paired) == len(set(paired.values())) == min(len(news), len(olds))
        assert all(old[o] == h(label) for o in paired.values())
    # A name costs its characters and the two its label and ending add.
    costs = [(len(n) * len(o), len(o) * sum(len(x) + 2 for x in n) + len(n) * sum(len(x) + 2 for x in o))
             for n, o in groups.values() if len(n) * len(o) > 1]
    if sum(c[0] for c in costs) <= pairs and sum(c[1] for c in costs) <= characters:
        expected = {}
        for label in groups:
            expected |= _sentry_pairing([n for n in new if new[n] == h(label)],
                                        [o for o in old if old[o] == h(label)])
        assert renames == expected
