"""Test server plugin: objectstore (fixtures)."""
