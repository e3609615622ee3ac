"""snapcompare's comparison of two builds' screenshots.

Layout, lowest layer first (a module imports only from layers below it):

- `model`: statuses, reasons, options, results and shared limits: the common vocabulary;
- `inputs`: manifests and folders of images (`inputs.manifest`, `inputs.sources`);
- `plan`: what the manifests alone decide, and the pixel diffs left to do;
- `imaging`: decoding, the pixel diff, masks and previews; pure, no I/O;
- `engine`: fetching and diffing pairs within a memory budget, and `run_comparison`;
- `output`: diff masks and previews on disk, and the JSON, HTML and JUnit reports;
- `run`: `compare_builds`, one whole comparison as the CLI runs it;
- `cli` and `demo`: the ``snapcompare`` command and its demo data.
"""

from .imaging.decode import ImageDecodeError, ImageError, ImageTooLarge
from .imaging.pixeldiff import DiffResult, diff_images
from .inputs.manifest import ImageEntry, Manifest, ManifestError, load_manifest, parse_manifest
from .model import CompareOptions, Comparison, ImageResult, InputError, Reason, Status
from .output.reports import write_reports
from .run import compare_builds

__all__ = [
    "CompareOptions",
    "Comparison",
    "DiffResult",
    "ImageDecodeError",
    "ImageEntry",
    "ImageError",
    "ImageResult",
    "ImageTooLarge",
    "InputError",
    "Manifest",
    "ManifestError",
    "Reason",
    "Status",
    "compare_builds",
    "diff_images",
    "load_manifest",
    "parse_manifest",
    "write_reports",
]
