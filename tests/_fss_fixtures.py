"""Shared data for the FSS tests: synthetic scaling data and cached 2D Ising Binder data."""
from __future__ import annotations

import os
import tempfile

import numpy as np

from ising_data import cached_binder


def synthetic(seed, xc=0.5, nu=1.3, zeta=0.4, sizes=(16, 32, 64, 128), noise=0.01, b=0.0,
              omega=1.0, span=(-3.0, 3.0)):
    """y = L^(zeta/nu) (F((x-xc) L^(1/nu)) + 0.2) (1 + b L^-omega) + noise, F logistic.

    Each size gets its own jittered grid (16-21 points, non-rectangular) over ``span`` in
    scaled x; dy = noise * y."""
    rng = np.random.default_rng(seed)
    S, X, Y, DY = [], [], [], []
    for L in sizes:
        n = int(rng.integers(16, 22))
        lo, hi = span[0] + rng.uniform(-0.3, 0.3), span[1] + rng.uniform(-0.3, 0.3)
        u = np.linspace(lo, hi, n) + rng.uniform(-0.3, 0.3, n) * (hi - lo) / (n - 1)
        xs = np.sort(xc + u * L ** (-1 / nu))
        F = 1 / (1 + np.exp(-((xs - xc) * L ** (1 / nu))))
        y = L ** (zeta / nu) * (F + 0.2) * (1 + b * L ** (-omega))
        dy = noise * y
        S += [L] * n
        X += list(xs)
        Y += list(y + dy * rng.standard_normal(n))
        DY += list(dy)
    return [np.array(a, float) for a in (S, X, Y, DY)]


FAST_ISING = dict(sizes=(8, 16, 32, 64), x_grid=np.linspace(-1.8, 2.2, 8), n_meas=5000,
                  seed=2024)
SLOW_ISING = dict(sizes=(8, 16, 32, 64, 128), x_grid=np.linspace(-1.8, 2.2, 9), n_meas=10000,
                  seed=4048)


def ising_binder(request, **kwargs):
    """Ising Binder data cached in the pytest cache (or $TMPDIR without the cache plugin)."""
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        d = cache.mkdir("fss_ising")
    else:
        d = os.path.join(tempfile.gettempdir(), "physsgd_fss_ising")
        os.makedirs(d, exist_ok=True)
    return cached_binder(d, **kwargs)


import pytest  # noqa: E402  (fixtures below; the helpers above stay importable without pytest)


@pytest.fixture(scope="session")
def ising_fast(request):
    """Binder data L = 8..64 (about 40 s to generate once, then cached)."""
    return ising_binder(request, **FAST_ISING)


@pytest.fixture(scope="session")
def ising_slow(request):
    """Binder data L = 8..128 with 2x the statistics (slow tests only; minutes to generate)."""
    return ising_binder(request, **SLOW_ISING)
