"""analysis.transition: first- vs second-order diagnostics (critical points: test_analysis_critical)."""
import numpy as np
import pytest

from analysis.table import Table
from analysis.transition import transition_order
from _critical_data import success_data  # noqa: F401  (also imported from here by other tests)


def order_data(kind, seed=0, sizes=(50, 100, 200, 400), reps=60, mc=10.0):
    """Final overlaps. "first": coexisting failed (q ~ 0.1) and learned (q ~ 1) replicas, the
    learned fraction a sharpening sigmoid. "continuous": one unimodal peak whose position rises
    like a rounded sqrt(m - m_c)."""
    rng = np.random.default_rng(seed)
    m = np.unique(np.round(np.geomspace(5, 20, 15)).astype(int))
    cols = {"N": [], "batch_size": [], "overlap": []}
    for N in sizes:
        for mm in m:
            if kind == "first":
                p = 1 / (1 + np.exp(-(np.log(mm) - np.log(mc)) / (1.5 * N ** -0.5)))
                s = rng.random(reps) < p
                q = np.where(s, 1 - np.abs(rng.normal(0, 0.02, reps)), np.abs(rng.normal(0.1, N ** -0.5, reps)))
            else:
                t = (mm - mc) / mc
                qbar = np.sqrt((t + np.sqrt(t * t + 4 / N)) / 2)
                q = np.clip(qbar + rng.normal(0, 0.15 * N ** -0.25, reps), 0, 1)
            cols["N"] += [N] * reps
            cols["batch_size"] += [mm] * reps
            cols["overlap"] += list(q)
    return Table.from_arrays(**cols)


def test_transition_order_distinguishes_first_from_continuous():
    first = transition_order(order_data("first"), bootstrap=100)
    cont = transition_order(order_data("continuous"), bootstrap=100)
    assert first.verdict == "first-order-like", first.summary()
    assert cont.verdict == "continuous", cont.summary()
    assert first.bimodal.all() and not cont.bimodal.any()
    assert first.binder_min[-1] < -0.5 and np.all(cont.binder_min > 0)
    assert abs(first.jump_exponent) < 0.1 and cont.jump_exponent < -0.1
    assert "bimodal" in first.evidence[0]
    with pytest.raises(ValueError, match="boolean"):
        transition_order(success_data(0, sizes=(32, 64)), order_parameter="success")


def test_transition_order_at_given_critical_points():
    t = order_data("first")
    d = transition_order(t, x_near={50: 10, 100: 10, 200: 10, 400: 10}, bootstrap=50)
    assert np.all(d.x_near == 10)
    with pytest.raises(ValueError, match="x_near has"):
        transition_order(t, x_near=[10, 10])
