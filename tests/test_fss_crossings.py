"""Crossings of consecutive sizes: synthetic zero-dimension data and the 2D Ising Binder cumulant."""
import numpy as np
import pytest

from analysis.crossings import crossings
from _fss_fixtures import synthetic, ising_fast, ising_slow  # noqa: F401  (fixtures)
from ising_data import TC


def _binder_like(seed, xc=0.5, nu=1.3, b=0.5, omega=1.5, noise=0.005):
    """zeta = 0 data whose crossings drift: F((x-xc)L^(1/nu)) + b L^-omega."""
    S, X, Y, DY = synthetic(seed, xc=xc, nu=nu, zeta=0.0, noise=noise)
    Y = Y + b * S ** -omega * (1 + 0 * Y)
    return S, X, Y, DY


def test_synthetic_crossings_extrapolate_to_xc():
    S, X, Y, DY = _binder_like(3)
    res = crossings(S, X, Y, DY, omega=1.5 + 1 / 1.3, bootstrap=200)
    print(res.summary())
    p = res.pairs
    assert len(p.L1) == 3 and np.all(p.L2 == 2 * p.L1) and np.allclose(p.L_eff, np.sqrt(p.L1 * p.L2))
    assert np.all(np.isfinite(p.x_star)) and np.all(p.x_star_err > 0)
    # the finite-size crossings are shifted (b > 0), the extrapolation removes the shift
    assert abs(res.x_inf - 0.5) <= 2 * res.errors["x_inf"]
    assert abs(res.nu - 1.3) <= 2 * res.errors["nu"]
    assert set(res.errors) == {"x_inf", "nu"}
    import matplotlib
    matplotlib.use("Agg")
    res.plot()


def test_omega_fitted_with_four_pairs():
    S, X, Y, DY = synthetic(4, zeta=0.0, sizes=(8, 16, 32, 64, 128), noise=0.003)
    res = crossings(S, X, Y, DY, bootstrap=100)
    assert res.omega_fitted and len(res.pairs.L1) == 4
    assert abs(res.x_inf - 0.5) <= 2 * res.errors["x_inf"], res.summary()


def test_ising_crossings(ising_fast):
    d = ising_fast
    res = crossings(d["size"], d["T"], d["U"], d["dU"], bootstrap=400)
    print(res.summary())
    for name, t in (("x_inf", TC), ("nu", 1.0)):
        print(f"{name}: {res.values[name]:.5f} ± {res.stat_errors[name]:.5f} (stat) ± "
              f"{res.sys_errors[name]:.5f} (sys); truth {t}; total pull "
              f"{(res.values[name] - t) / res.errors[name]:+.2f}")
        assert abs(res.values[name] - t) <= 2 * res.errors[name]
    # U* of the 2D Ising model is 0.6107 (SCIENCE.md 5.5): the crossing heights agree
    assert np.all(np.abs(res.pairs.y_star - 0.6107) <= 3 * res.pairs.y_star_err + 0.01)


@pytest.mark.slow
def test_ising_crossings_large(ising_slow):
    d = ising_slow
    res = crossings(d["size"], d["T"], d["U"], d["dU"], bootstrap=400)
    print(res.summary())
    for name, t in (("x_inf", TC), ("nu", 1.0)):
        assert abs(res.values[name] - t) <= 2 * res.errors[name]


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_local=2), "n_local"), (dict(degree=0), "degree"), (dict(bootstrap=1), "bootstrap"),
    (dict(omega=-1.0), "omega"), (dict(nu=np.nan), "nu"),
])
def test_bad_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        crossings(*_binder_like(1), **kwargs)


def test_bad_arrays_and_non_crossing_raise():
    S, X, Y, DY = _binder_like(1)
    with pytest.raises(ValueError, match="dy must be > 0"):
        crossings(S, X, Y, np.zeros_like(DY))
    with pytest.raises(ValueError, match="at least 2 sizes"):
        crossings(np.full_like(S, 8.0), X, Y, DY)
    with pytest.raises(ValueError, match="y has length"):
        crossings(S, X, Y[:-2], DY)
    with pytest.raises(ValueError, match="does not cross|no pair"):
        crossings(S, X, Y + 10 * S, DY)      # curves shifted apart never cross
