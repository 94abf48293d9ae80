"""The compiled Houdayer-Hartmann kernel against its slow NumPy twin (tests/reference.py) on random
non-rectangular data: different sizes, grids and numbers of points per size, random parameters,
windows and corrections (amplitude, scale and shift of the scaling variable). Agreement to rounding (relative 1e-9)."""
import numpy as np
import pytest

from analysis.fss.data import validate_long_data
from analysis.fss.problem import CollapseProblem
from reference import hh_quality


def _random_data(rng):
    k = int(rng.integers(2, 6))
    sizes = np.sort(rng.choice([4, 6, 8, 12, 16, 24, 32, 48, 64], size=k, replace=False)).astype(float)
    S, X, Y, DY = [], [], [], []
    for L in sizes:
        n = int(rng.integers(3, 16))
        x = np.sort(rng.uniform(-1.0, 1.0, n) + rng.normal(0, 0.1))
        S += [L] * n
        X += list(x)
        Y += list(np.tanh(3 * x) + rng.normal(0, 0.3, n))
        DY += list(rng.uniform(0.02, 0.3, n))
    perm = rng.permutation(len(S))            # any input order
    return [np.asarray(a, float)[perm] for a in (S, X, Y, DY)]


@pytest.mark.parametrize("seed", range(40))
def test_kernel_matches_numpy_reference(seed):
    rng = np.random.default_rng(seed)
    size, x, y, dy = _random_data(rng)
    p = {"xc": float(rng.uniform(-0.3, 0.3)), "nu": float(rng.uniform(0.5, 3.0)),
         "zeta": float(rng.uniform(-1.0, 1.0)), "b": float(rng.uniform(-0.5, 1.0)) * (seed % 2),
         "omega": float(rng.uniform(0.5, 2.0)), "c": float(rng.uniform(-0.5, 1.0)) * (seed % 4 > 1),
         "s": float(rng.uniform(-1.0, 1.0)) * (seed % 5 > 2)}
    window = (-np.inf, np.inf) if seed % 3 == 0 else tuple(np.sort(rng.uniform(-3, 3, 2)))
    data = validate_long_data(size, x, y, dy)
    names = ("xc", "nu", "zeta", "b", "omega", "c", "s")
    prob = CollapseProblem(data, names, names, p, None if np.isinf(window[0]) else window)
    q, defined, Ym, dY2 = prob.quality(p, details=True)
    S_ref, n_ref, Y_ref, dY2_ref = hh_quality(data.size, data.x, data.y, data.dy, p["xc"], p["nu"],
                                              p["zeta"], p["b"], p["omega"], window, p["c"], p["s"])
    assert q.n_terms == n_ref
    np.testing.assert_array_equal(defined, np.isfinite(Y_ref))
    if n_ref:
        assert q.S == pytest.approx(S_ref, rel=1e-9)
        np.testing.assert_allclose(Ym[defined], Y_ref[defined], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(dY2[defined], dY2_ref[defined], rtol=1e-9, atol=1e-15)
    else:
        assert not np.isfinite(q.S)
