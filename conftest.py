"""Test-wide fixtures: each store's real server is started on demand by its plugin module."""

pytest_plugins = [
    "testing.s3",
    "testing.gcs",
    "testing.objectstore",
    "testing.proxy",
]
