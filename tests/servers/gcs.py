"""Test server plugin: gcs (fixtures)."""
