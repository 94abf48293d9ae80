"""analysis.transition_order on the Curie-Weiss model, whose order is known exactly
(tests/curie_weiss.py): first order in the field h below T_c, continuous in T at h = 0,
undetermined on deliberately thin data; the fixture's exactness; notes, refusals and figures."""
import os

import numpy as np
import pytest
from scipy import stats

import curie_weiss as cw
from analysis import plots
from analysis.order import transition_order

FIELD = dict(control="h", starts=("teacher", "minus"), bootstrap=100)
TEMPERATURE = dict(control="T", starts=("teacher", "random"), bootstrap=100)


@pytest.fixture(scope="module")
def field():
    return transition_order(cw.field_driven(), **FIELD)


@pytest.fixture(scope="module")
def temperature():
    return transition_order(cw.temperature_driven(), binder=("window_m2", "window_m4"), **TEMPERATURE)


@pytest.mark.parametrize("N, T, h, steps", [(10, 0.5, 0.0, 300), (12, 1.5, 0.2, 30)])
def test_curie_weiss_is_exact(N, T, h, steps):
    """The fixture samples P(M) ~ C(N, n) exp(-E/T) exactly, in both of its update regimes (rare
    flips: geometric skips, T = 0.5; frequent flips: one uniform per proposal, T = 1.5):
    chi-square of 20000 final magnetisations, p > 1e-3."""
    o = cw.simulate(N, T, h, "random", steps, 20000, seed=7)
    M, p = cw.exact_distribution(N, T, h)
    counts = np.array([np.sum(np.rint(o["magnetisation"] * N) == v) for v in M])
    expected = p * len(o["magnetisation"])
    ok = expected > 5
    chi2 = np.sum((counts[ok] - expected[ok]) ** 2 / expected[ok])
    assert stats.chi2.sf(chi2, ok.sum() - 1) > 1e-3, (chi2, ok.sum() - 1)


def test_field_driven_transition_is_first_order(field):
    assert field.verdict == "first-order", field.summary()
    assert field.votes == {"hysteresis": "first-order", "lifetimes": "first-order",
                           "bimodality": "first-order", "binder": None}, field.summary()
    # the field breaks the symmetry: no Binder cumulant, and the notes say why
    assert any("symmetric under its sign" in n for n in field.notes["binder"])
    # N = 128 remembers its start at h = 0: its distribution is left out of the bimodality test
    bm = field.bimodality
    assert not bm.stationary[bm.sizes == 128][0] and bm.bimodal[bm.stationary].all()
    assert "transition order: first-order" in field.summary()


def test_lifetime_barrier_is_the_mean_field_free_energy_barrier(field):
    """ln tau(N) at h = 0 grows as N [f(0) - f(m*)] / T (0.0897 at T = 0.7) within 3 errors, and
    exponentially rather than as a power of N, for the planted (+) and the minus start."""
    b_exact = cw.barrier(cw.FIELD_T, 0.0) / cw.FIELD_T
    for start in ("teacher", "minus"):
        lt = field.lifetimes[start]
        assert set(lt.at.values()) == {0.0}
        assert lt.growth in ("exponential", "undetermined"), lt.summary()
        assert abs(lt.barrier - b_exact) < 3 * lt.barrier_err, (start, lt.barrier, lt.barrier_err, b_exact)
    assert field.lifetimes["teacher"].growth == "exponential"


def test_temperature_driven_transition_is_continuous(temperature):
    d = temperature
    assert d.verdict == "continuous", d.summary()
    assert d.votes["binder"] == "continuous" and d.votes["bimodality"] == "continuous"
    assert "first-order" not in d.votes.values()
    assert d.thresholds.trend == "absent" and d.votes["hysteresis"] is None
    # the curves of U cross near T_c = 1 (crossings of N = 16..256, extrapolated)
    c = d.binder.crossing
    assert abs(c.x_inf - cw.TC) < 3 * c.errors["x_inf"] + 0.01, c.summary()
    assert np.all(d.binder.minimum > -2 * d.binder.minimum_err)         # no negative dip


def test_binder_needs_a_symmetric_order_parameter():
    t = cw.temperature_driven()
    d = transition_order(t, binder="overlap", **TEMPERATURE)            # |m| >= 0
    assert d.binder is None and d.votes["binder"] is None
    assert any("one sign only" in n and "negative dip" in n for n in d.notes["binder"])
    d = transition_order(t, binder="magnetisation", **TEMPERATURE)      # snapshots of signed m
    assert d.binder is not None and len(d.binder.sizes) == 3
    with pytest.raises(ValueError, match="binder="):
        transition_order(t, binder=("a", "b", "c"), **TEMPERATURE)


def test_thin_data_are_undetermined():
    d = transition_order(cw.thin(), **FIELD)
    assert d.verdict == "undetermined", d.summary()
    assert d.votes["lifetimes"] is None and d.votes["bimodality"] is None
    assert any("need >= 3" in n for n in d.notes["lifetimes"])
    assert any("< 20" in n for n in d.notes["bimodality"])


def test_bad_input():
    t = cw.thin()
    with pytest.raises(ValueError, match="unknown column 'start'"):
        transition_order(t, control="h", init="start")
    with pytest.raises(ValueError, match="no rows with init='planted'"):
        transition_order(t, control="h", starts=("planted", "minus"))
    # the other start missing: hysteresis skipped, not an error
    d = transition_order(t, control="h", starts=("teacher", "random"), bootstrap=20)
    assert d.thresholds is None and any("no replicas from the 'random' start" in n for n in d.notes["hysteresis"])


def test_figures(field, temperature, tmp_path):
    for name, d in (("field", field), ("temperature", temperature),
                    ("thin", transition_order(cw.thin(), **FIELD))):
        axes = d.plot()
        path = plots.savefig(axes.flat[0], tmp_path / f"{name}.png")
        assert os.path.getsize(path) > 10000
    fig, ax = plots.new_axes()
    field.plot(ax, kind="lifetimes")
    with pytest.raises(ValueError, match="kind="):
        field.plot(kind="pie")
    with pytest.raises(ValueError, match="4 Axes"):
        field.plot(ax=ax, kind="summary")


@pytest.mark.slow
def test_field_driven_in_depth():
    """More sizes and replicas: lifetimes at h = 0 and at h = -0.03 (the + phase metastable)
    against the exact mean-field barriers, with the ln N prefactor term free; first order at
    every seed."""
    T = cw.FIELD_T
    sizes = [16, 24, 32, 48, 64, 96]
    for seed in (11, 12):
        t = cw.table(sizes, (-0.06, -0.03, 0.0, 0.03, 0.06), control="h", T=T,
                     starts=("teacher", "minus"), replicas=96, steps=8000, seed=seed)
        d = transition_order(t, **FIELD)
        assert d.verdict == "first-order", d.summary()
        for h in (0.0, -0.03):
            from analysis.lifetimes import lifetimes
            lt = lifetimes(t, control="h", start="teacher", at=h)
            b_exact = cw.barrier(T, h) / T
            assert lt.growth == "exponential", lt.summary()
            f = lt.forms["exponential x power"]
            assert abs(f.params["b"] - b_exact) < 3 * f.errors["b"], (h, f.params, f.errors, b_exact)


@pytest.mark.slow
def test_temperature_driven_in_depth():
    """Larger sizes and a dense T grid: the Binder crossings extrapolate to T_c = 1 and the slopes
    give nu-bar = 2 (U is a function of (T - 1) N^(1/2)), each within 3 total errors."""
    Ts = np.round(np.linspace(0.9, 1.1, 11), 4)
    t = cw.table([64, 128, 256, 512, 1024], Ts, control="T", starts=("teacher", "random"),
                 replicas=150, steps=400, seed=5, symmetric=True, m0=0.25)
    d = transition_order(t, binder=("window_m2", "window_m4"), **TEMPERATURE)
    assert d.verdict == "continuous", d.summary()
    c = d.binder.crossing
    assert abs(c.x_inf - cw.TC) < 3 * c.errors["x_inf"], c.summary()
    assert abs(c.nu - 2.0) < 3 * c.errors["nu"], c.summary()


def test_package_name_and_early_stopped_data():
    """The package-level name is analysis.order's, and early-stopped data are not voted on."""
    import analysis

    assert analysis.transition_order is transition_order
    t = cw.table([16, 32], [-0.05, 0.0, 0.05], T=0.7, replicas=10, steps=200, seed=5)
    cut = t.with_column("stop", np.full(len(t), "success")).with_column("stopped_at", np.full(len(t), 50))
    d = transition_order(cut, control="h", starts=("teacher", "minus"), bootstrap=20)
    assert d.votes["hysteresis"] is None and d.votes["bimodality"] is None
    assert any("stopped before the end of their window" in n for n in d.notes["bimodality"])
    assert d.verdict == "undetermined"
