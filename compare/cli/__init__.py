"""The ``snapcompare`` command (`run`, `main`), its progress display and its malloc settings."""

from .main import (
    EXIT_BAD_INPUT,
    EXIT_DIFFERENCES,
    EXIT_ERRORED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_RESULTS_NOT_WRITTEN,
    EXIT_SAME,
    EXIT_TERMINATED,
    build_parser,
    exit_code,
    main,
    run,
)

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
