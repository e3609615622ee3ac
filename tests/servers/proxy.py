"""Test server plugin: proxy (fixtures)."""
