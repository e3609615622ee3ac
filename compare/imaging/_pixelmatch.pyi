import numpy as np

def scan(
    a: np.ndarray,
    b: np.ndarray,
    mask: np.ndarray,
    ignore: np.ndarray | None,
    width: int,
    height: int,
    overlap_width: int,
    overlap_height: int,
    max_delta: float,
    antialiasing: bool,
    checkerboard: bool,
    /,
) -> tuple[int, int, tuple[int, int, int, int] | None]: ...
