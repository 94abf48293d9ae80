"""analysis.lifetimes: Kaplan-Meier, censored maximum likelihood and the growth of lifetimes with
N, on hand-made examples and synthetic data with known laws; bad input; figures."""
import math
import os

import numpy as np
import pytest

from analysis import plots
from analysis.lifetimes import kaplan_meier, lifetimes
from analysis.table import Table


def planted_table(tau_of_N, sizes, budget, reps=200, seed=0, shape=1.0, control=1.0):
    """Planted replicas (first_passage = 0) leaving at Weibull(shape) times with mean... scale
    tau_of_N(N); right-censored at ``budget`` (first_exit = -1)."""
    rng = np.random.default_rng(seed)
    cols = {"N": [], "batch_size": [], "init": [], "first_passage": [], "first_exit": [], "steps": []}
    for N in sizes:
        t = np.ceil(tau_of_N(N) * rng.weibull(shape, reps)).astype(int)
        cols["N"] += [N] * reps
        cols["batch_size"] += [control] * reps
        cols["init"] += ["teacher"] * reps
        cols["first_passage"] += [0] * reps
        cols["first_exit"] += np.where(t <= budget, t, -1).tolist()
        cols["steps"] += [budget] * reps
    return Table({k: np.asarray(v) for k, v in cols.items()})


def test_kaplan_meier_by_hand():
    # times 2, 3+, 3, 5, 8+ (+ = censored): S(2) = 4/5, S(3) = 4/5 * (1 - 1/4), S(5) = S(3) * (1 - 1/2)
    t, S, se = kaplan_meier([2, 3, 3, 5, 8], [True, False, True, True, False])
    assert t.tolist() == [2, 3, 5]
    assert np.allclose(S, [0.8, 0.6, 0.3])
    # Greenwood: var S(2) = S^2 * 1/(5*4)
    assert math.isclose(se[0], 0.8 * math.sqrt(1 / 20))
    t, S, se = kaplan_meier([4, 6], [False, False])
    assert len(t) == 0


def test_censored_mle_recovers_the_lifetime_where_dropping_censored_runs_fails():
    """tau = 800 with a budget of 400 steps: 61 % of the replicas are censored. The censored MLE is
    within 3 errors of 800; the naive mean of the observed exits is less than 250."""
    t = planted_table(lambda N: 800.0, [50], budget=400, reps=400, seed=1)
    lt = lifetimes(t, control="batch_size", at=1.0)
    c = lt.cells[0]
    assert 0.5 < 1 - c.events / c.n < 0.7
    assert abs(c.tau - 800) < 3 * c.tau_err, c.describe()
    ex = t["first_exit"]
    assert ex[ex >= 0].mean() < 250
    assert c.censored_beyond_budget and math.isinf(c.median)     # most never leave within 400
    assert "censored beyond the budget" in c.describe()
    assert abs(c.shape - 1) < 3 * c.shape_err                    # exponential: Weibull k = 1


def test_weibull_shape_and_median():
    t = planted_table(lambda N: 100.0, [50], budget=150, reps=400, shape=2.0, seed=2)
    c = lifetimes(t, control="batch_size").cells[0]
    assert abs(c.shape - 2.0) < 3 * c.shape_err, (c.shape, c.shape_err)
    median = 100.0 * math.log(2) ** 0.5 + 0.5                     # Weibull(k = 2, scale 100), ceil'd
    half = 0.5 * (c.median_hi - c.median_lo)                      # 68 % half-width
    assert 1 < half < 6 and abs(c.median - median) < 3 * half + 1, (c.median_lo, c.median, c.median_hi)


def test_no_event_is_a_lower_bound_not_a_number():
    t = planted_table(lambda N: 1e7, [50], budget=100, reps=50)
    c = lifetimes(t, control="batch_size").cells[0]
    assert c.events == 0 and math.isnan(c.tau) and c.tau_lower == pytest.approx(50 * 100 / 3.0, rel=0.01)
    assert "tau >" in c.describe()


@pytest.mark.parametrize("law, expected", [
    (lambda N: 5.0 * math.exp(0.08 * N), "exponential"),
    (lambda N: 2.0 * N ** 1.5, "power"),
    (lambda N: 300.0, "none"),
])
def test_growth_with_N(law, expected):
    sizes = [16, 32, 64, 128] if expected != "exponential" else [20, 40, 60, 80]
    t = planted_table(law, sizes, budget=10 ** 9, reps=100, seed=3)
    lt = lifetimes(t, control="batch_size", at=1.0)
    assert lt.growth == expected, lt.summary()
    if expected == "exponential":
        assert abs(lt.barrier - 0.08) < 3 * lt.barrier_err
    if expected == "power":
        assert abs(lt.z - 1.5) < 3 * lt.z_err


def test_thin_growth_is_undetermined_and_censored_sizes_are_left_out():
    t = planted_table(lambda N: 5.0 * math.exp(0.08 * N), [20, 40], budget=10 ** 9, reps=50)
    assert lifetimes(t, control="batch_size", at=1.0).growth == "undetermined"
    t = planted_table(lambda N: 5.0 * math.exp(0.08 * N), [20, 40, 60, 80, 200], budget=10 ** 4, reps=100)
    lt = lifetimes(t, control="batch_size", at=1.0)
    assert 200 not in lt.sizes and any("censored beyond the budget" in n for n in lt.notes)
    assert lt.growth == "exponential", lt.summary()


def test_first_exit_clock_starts_at_first_passage():
    t = Table.from_arrays(N=[10, 10, 10, 10], batch_size=[1, 1, 1, 1], init=["random"] * 4,
                          first_passage=[100, 200, -1, 50], first_exit=[150, -1, -1, 90],
                          steps=[1000, 1000, 1000, 1000])
    lt = lifetimes(t, control="batch_size", start="random", event="first_exit")
    c = lt.cells[0]
    assert c.n == 3 and c.events == 2                    # the replica that never arrived is not at risk
    assert c.tau == pytest.approx((50 + 800 + 40) / 2)
    assert any("never reached" in n for n in lt.notes)


def test_bad_input():
    t = planted_table(lambda N: 10.0, [10], budget=100, reps=10)
    with pytest.raises(ValueError, match="integer steps >= 0 or -1"):
        lifetimes(t.with_column("first_exit", np.full(len(t), -2)), control="batch_size")
    with pytest.raises(ValueError, match="exceeds"):
        lifetimes(t.with_column("first_exit", np.full(len(t), 500)), control="batch_size")
    with pytest.raises(ValueError, match="min_events"):
        lifetimes(t, control="batch_size", min_events=1)
    with pytest.raises(ValueError, match="no rows with init='random'"):
        lifetimes(t, control="batch_size", start="random")
    with pytest.raises(ValueError, match="at="):
        lifetimes(t, control="batch_size", at="middle")


def test_figures(tmp_path):
    t = planted_table(lambda N: 5.0 * math.exp(0.08 * N), [20, 40, 60, 120], budget=2000, reps=50)
    lt = lifetimes(t, control="batch_size", at=1.0)
    fig, ax = plots.new_axes(ncols=3)
    lt.plot(ax[0])
    lt.plot(ax[1], kind="survival")
    lt.plot(ax[2], kind="control")
    assert os.path.getsize(plots.savefig(fig, tmp_path / "lifetimes.png")) > 5000
    with pytest.raises(ValueError, match="kind="):
        lt.plot(kind="pie")


def test_at_accepts_a_thresholds_result():
    """at=Thresholds (the documented way: compare the lifetimes at each size's window middle)
    passes the argument checks and picks each size's midpoint."""
    import curie_weiss as cw
    from analysis.stationary import thresholds

    t = cw.field_driven()
    th = thresholds(t, control="h", starts=("teacher", "minus"), bootstrap=20)
    lt = lifetimes(t, control="h", start="teacher", at=th)
    assert any("window middle" in n for n in lt.notes), lt.notes
    assert set(lt.at) <= set(float(N) for N in th.sizes) and lt.at
