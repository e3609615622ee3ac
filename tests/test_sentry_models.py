"""The re-declared Sentry models accept what Sentry accepts and refuse what it refuses."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from tests.sentry_models import (
    ComparisonManifest,
    ImageMetadata,
    SnapshotManifest,
    SnapshotManifestWithRegex,
)

pytestmark = pytest.mark.unit

HASH_A = "a" * 64
HASH_B = "b" * 64

COMPARISON = {
    "head_artifact_id": 12,
    "base_artifact_id": 7,
    "summary": {"total": 3, "changed": 1, "unchanged": 0, "added": 1, "removed": 0,
                "errored": 0, "renamed": 1, "skipped": 0},
    "images": {
        "home.png": {
            "status": "changed", "head_hash": HASH_B, "base_hash": HASH_A,
            "changed_pixels": 120, "total_pixels": 10000,
            "diff_mask_key": "1/2/12/7/diff/home.png", "diff_mask_image_id": "12/7/diff/home.png",
            "before_width": 100, "before_height": 100, "after_width": 100, "after_height": 100,
            "aligned_height": 100,
        },
        "new.png": {"status": "added", "head_hash": HASH_A},
        "settings/dark.png": {"status": "renamed", "head_hash": HASH_A,
                              "previous_image_file_name": "dark.png"},
    },
}


def test_valid_comparison_validates():
    manifest = ComparisonManifest.model_validate(COMPARISON)
    assert manifest.summary.changed == 1
    assert manifest.images["settings/dark.png"].previous_image_file_name == "dark.png"
    assert manifest.images["new.png"].changed_pixels is None


def test_comparison_without_head_artifact_id_is_refused():
    data = copy.deepcopy(COMPARISON)
    del data["head_artifact_id"]
    with pytest.raises(ValidationError, match="head_artifact_id"):
        ComparisonManifest.model_validate(data)


def test_unknown_status_is_refused():
    data = copy.deepcopy(COMPARISON)
    data["images"]["new.png"]["status"] = "moved"
    with pytest.raises(ValidationError):
        ComparisonManifest.model_validate(data)


def test_summary_skipped_defaults_to_zero():
    data = copy.deepcopy(COMPARISON)
    del data["summary"]["skipped"]
    assert ComparisonManifest.model_validate(data).summary.skipped == 0


def test_manifest_image_rules():
    manifest = SnapshotManifest.model_validate({
        "images": {"a.png": {"content_hash": "x", "width": 0, "height": 0, "tags": ["dark"],
                             "canvas_theme": "sepia", "custom": 1}},
        "unknown_top_level": True,
    })
    image = manifest.images["a.png"]
    assert image.tags == {"dark": "dark"}
    assert image.canvas_theme is None
    assert image.model_extra == {"custom": 1}
    assert not hasattr(manifest, "unknown_top_level")


@pytest.mark.parametrize("image", [
    {"content_hash": "x", "width": 1},                      # height missing
    {"width": 1, "height": 1},                              # content_hash missing
    {"content_hash": "x", "width": -1, "height": 1},        # negative size
    {"content_hash": "x", "width": 1, "height": 1, "diff_threshold": 1.0},  # must be < 1
])
def test_bad_image_entries_are_refused(image):
    with pytest.raises(ValidationError):
        ImageMetadata.model_validate(image)


def test_regex_variant_rules():
    with pytest.raises(ValidationError, match="mutually exclusive"):
        SnapshotManifestWithRegex.model_validate(
            {"images": {}, "all_image_file_names": ["a.png"],
             "all_image_file_names_as_regex": [r"a\.png"]})
    manifest = SnapshotManifestWithRegex.model_validate(
        {"images": {}, "all_image_file_names_as_regex": [r"login\.png"]})
    matches = manifest.head_image_name_matcher()
    assert matches("login.png") and not matches("screens/login.png")
