"""Test-wide fixtures and rules: each store's real server is started on demand by its plugin
module, and every test has exactly one kind (``unit``, ``integration``, ``browser``,
``cluster``), set per file with ``pytestmark``, so ``pytest -m unit`` runs the fast ones."""

import pytest

pytest_plugins = [
    "testing.s3",
    "testing.gcs",
    "testing.objectstore",
    "testing.proxy",
]

KINDS = ("unit", "integration", "browser", "cluster")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse a test module that does not say which one kind its tests are."""
    wrong = sorted({str(item.path) for item in items
                    if sum(1 for kind in KINDS if item.get_closest_marker(kind)) != 1})
    if wrong:
        raise pytest.UsageError("each test module needs exactly one of the markers "
                                f"{', '.join(KINDS)} in its pytestmark: {', '.join(wrong)}")
