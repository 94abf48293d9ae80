"""Compile the collapse kernels ahead of need: ``python -m analysis.fss.warm``.

numba compiles the Houdayer-Hartmann kernels (quality.py, optimise.py) on their first call and
caches them on disk (``NUMBA_CACHE_DIR`` if set); a cold compile costs ~8 s. A caller that knows
it will analyse later (physsgd's quickstart, while its training kernel compiles on the other
core) runs this module in a background process, so that the analysis finds them in the cache.
"""
from __future__ import annotations

import numpy as np

from .optimise import _nm_kernel
from .quality import grid_kernel, hh_kernel, objective_kernel

KERNELS = (hh_kernel, objective_kernel, grid_kernel, _nm_kernel)


def kernels_cached() -> bool:
    """Whether numba's cache holds every collapse kernel (False when it cannot tell)."""
    try:
        return all(bool(k._cache._cache_file._load_index()) for k in KERNELS)
    except Exception:       # numba's cache internals: an unknown layout means "compile"
        return False


def compile_kernels() -> None:
    """A small collapse (two sizes of a known scaling form, no bootstrap): every kernel is
    compiled with the argument types the pipeline passes, and cached."""
    from .pipeline import collapse
    rng = np.random.default_rng(0)
    size, x, y = [], [], []
    for L in (8.0, 16.0, 32.0):
        xs = np.linspace(-1.0, 1.0, 9)
        size += [L] * xs.size
        x += list(xs)
        y += list(np.tanh(xs * L ** 0.5) + 0.01 * rng.standard_normal(xs.size))
    dy = np.full(len(x), 0.01)
    collapse(np.array(size), np.array(x), np.array(y), dy, fixed={"zeta": 0.0}, bootstrap=0,
             systematics=False, s1=False)


if __name__ == "__main__":
    if not kernels_cached():
        compile_kernels()
