"""Test-wide fixtures: each store's real server is started on demand by its plugin module."""

pytest_plugins = [
    "tests.servers.s3",
    "tests.servers.gcs",
    "tests.servers.objectstore",
    "tests.servers.proxy",
]
