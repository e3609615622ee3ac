"""Test server plugin: s3 (fixtures)."""
