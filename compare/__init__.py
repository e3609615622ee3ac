"""snapcompare's comparison: manifests, categorisation, pixel diff, pipeline, reports, CLI."""

from compare.image import ImageDecodeError, ImageError, ImageTooLarge
from compare.pixeldiff import DiffResult, diff_images

__all__ = ["DiffResult", "ImageDecodeError", "ImageError", "ImageTooLarge", "diff_images"]
