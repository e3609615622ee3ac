"""The ``snapcompare`` command (`run`, `main`): one module per subcommand over `common`, the
summary it prints, its progress display and its malloc settings."""

from .common import (
    EXIT_BAD_INPUT,
    EXIT_DIFFERENCES,
    EXIT_ERRORED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_RESULTS_NOT_WRITTEN,
    EXIT_SAME,
    EXIT_TERMINATED,
)
from .main import build_parser, main, run
from .summary import exit_code

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_DIFFERENCES",
    "EXIT_ERRORED",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_RESULTS_NOT_WRITTEN",
    "EXIT_SAME",
    "EXIT_TERMINATED",
    "build_parser",
    "exit_code",
    "main",
    "run",
]
