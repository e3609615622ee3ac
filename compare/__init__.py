"""snapcompare's comparison of two builds' screenshots.

Layout, lowest layer first (a module imports only from layers below it):

- `model`, `regions`: statuses, reasons, options, results, shared limits and ignore regions:
  the common vocabulary;
- `inputs`: manifests, folders of images and manifests in a store (`inputs.manifest`,
  `inputs.sources`), approved comparisons (`inputs.approved`);
- `classify`: what the manifests alone decide (Sentry's rules), and the pixel diffs left to do;
- `imaging`: decoding, the pixel-diff engines, masks and previews; pure, no I/O;
- `engine`: fetching and diffing pairs within a memory budget; plan, chunks and finalize
  (`engine.chunks`), on one machine (`engine.local`) or a Dask cluster (`engine.distributed`);
- `output`: diff masks and previews on disk, the JSON, HTML and JUnit reports, and results
  under Sentry's keys in a store;
- `builds`: `compare_builds`, one whole comparison as the CLI runs it;
- `cli` and `demo`: the ``snapcompare`` command and its demo data.
"""

from .builds import compare_builds
from .imaging.decode import ImageDecodeError, ImageError, ImageTooLarge
from .imaging.pixeldiff import DiffResult, diff_images
from .inputs.manifest import ImageEntry, Manifest, ManifestError, load_manifest, parse_manifest
from .model import CompareOptions, Comparison, ImageResult, InputError, Reason, Resources, Status
from .output.reports import write_reports

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
    "Resources",
    "Status",
    "compare_builds",
    "diff_images",
    "load_manifest",
    "parse_manifest",
    "write_reports",
]
