"""Long-format FSS input: validation and the sorted-by-(size, x) layout the quality kernel needs.

Shared by the collapse and the crossings: one entry per data point (size L, control x,
observable y, error dy); any number of sizes and any (non-rectangular) x grid per size.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FSSData", "validate_long_data"]


@dataclass(frozen=True)
class FSSData:
    """Validated long-format data, sorted by (size, x). ``order`` maps back to the input order."""
    size: np.ndarray
    x: np.ndarray
    y: np.ndarray
    dy: np.ndarray
    order: np.ndarray            # sorted position k holds input point order[k]
    sizes: np.ndarray            # distinct sizes, ascending
    starts: np.ndarray           # points of sizes[i] are [starts[i], starts[i+1])

    @property
    def n(self) -> int:
        return len(self.x)

    def subset(self, mask: np.ndarray) -> "FSSData":
        """The data restricted to ``mask`` (a boolean array in sorted order)."""
        return _build_data(self.size[mask], self.x[mask], self.y[mask], self.dy[mask],
                           self.order[mask])


def _as_1d(name: str, a) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a 1-D array of numbers: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (long format: one entry per data point), "
                         f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN/inf value(s)")
    return arr


def _build_data(size, x, y, dy, order) -> FSSData:
    idx = np.lexsort((x, size))
    size, x, y, dy, order = size[idx], x[idx], y[idx], dy[idx], order[idx]
    sizes, starts = np.unique(size, return_index=True)
    starts = np.append(starts, len(size)).astype(np.int64)
    return FSSData(size, x, y, dy, order, sizes, starts)


def validate_long_data(size, x, y, dy, min_sizes: int = 2, min_points_per_size: int = 2) -> FSSData:
    """Check long-format FSS input and return it sorted by (size, x).

    Raises ValueError naming the offending argument for: non-1-D or non-numeric input, mismatched
    lengths, NaN/inf, size <= 0, dy <= 0, fewer than ``min_sizes`` distinct sizes, or a size with
    fewer than ``min_points_per_size`` points.
    """
    arrays = {"size": _as_1d("size", size), "x": _as_1d("x", x), "y": _as_1d("y", y),
              "dy": _as_1d("dy", dy)}
    n = len(arrays["size"])
    for name, arr in arrays.items():
        if len(arr) != n:
            raise ValueError(f"{name} has length {len(arr)} but size has length {n}; "
                             "size, x, y and dy must have one entry per data point")
    if n == 0:
        raise ValueError("size, x, y, dy are empty")
    if np.any(arrays["size"] <= 0):
        raise ValueError("size must be > 0 for every point")
    if np.any(arrays["dy"] <= 0):
        raise ValueError(f"dy must be > 0 for every point ({int(np.sum(arrays['dy'] <= 0))} "
                         "entries are <= 0); give a floor error for exact data")
    data = _build_data(arrays["size"], arrays["x"], arrays["y"], arrays["dy"], np.arange(n))
    if len(data.sizes) < min_sizes:
        raise ValueError(f"size has {len(data.sizes)} distinct value(s) {data.sizes.tolist()}; "
                         f"at least {min_sizes} sizes are needed")
    counts = np.diff(data.starts)
    if np.any(counts < min_points_per_size):
        few = data.sizes[counts < min_points_per_size].tolist()
        raise ValueError(f"size(s) {few} have fewer than {min_points_per_size} points")
    return data
