"""snapcompare's comparison: manifests, categorisation, pixel diff, pipeline, reports, CLI."""
