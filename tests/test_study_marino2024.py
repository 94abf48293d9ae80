"""Reduced version of runs/marino2024 (Marino & Ricci-Tersenghi 2024), measured as a phase.

Greedy mini-batch flips on a binary tree committee (K = 3 sign units, majority output, d = N/3),
binary online inputs, no early stop; the stationary time at the teacher over the second half of
the run, from random and planted starts, at two budgets 4x apart (the protocol of
runs/marino2024/small/tree_committee.toml with fewer sizes, replicas and sweeps). Checks:
  * at d = 5 and 9 (no hysteresis expected: lifetimes far below the budget) the thresholds from
    the two starts agree within errors, and so do the two budgets: a property of the model;
  * the threshold grows with d about linearly (the ratio for d = 9 over d = 5 is near 9/5);
  * the previous protocol's first-passage threshold (stop at the first visit within 400 sweeps)
    lies well below the stationary one: a first visit is not the phase.
"""
import warnings

import numpy as np
import pytest

import analysis as an
import physsgd as ps

# ~6 s on the bit-level greedy path (kernels shared with the other tests): a fast test

SIZES = (15, 27)                                 # d = 5, 9
RATIOS = (2.5, 3.2, 4.0, 5.0, 6.3, 8.0, 10.0)   # m = r d around m_1/2 ~ 5 d


def _model(N):
    return ps.Committee(N=N, d=N // 3, activation="sign", output="sign", topology="tree", weights="binary")


def _rows(res, **point):
    return [dict(point, replica=r, init=res.params["run"]["init"], time_at_teacher=float(t),
                 first_passage=int(fp), first_exit=int(fe), stopped_at=int(s), overlap=float(q),
                 success=bool(ok), window_stop=int(res.window[1]))
            for r, (t, fp, fe, s, q, ok) in enumerate(zip(res.time_at_teacher, res.first_passage,
                                                          res.first_exit, res.stopped_at,
                                                          res.overlap[:, -1], res.success))]


@pytest.fixture(scope="module")
def stationary():
    rows = []
    for N in SIZES:
        for r in RATIOS:
            m = round(r * N // 3)
            for steps in (400, 1600):
                for init in ("random", "teacher"):
                    res = ps.train(_model(N), _model(N), ps.Greedy(batch_size=m),
                                   ps.Online(inputs="binary", test_size=200), steps=steps,
                                   replicas=24, seed=1000 * N + m + 7 * steps, record=4, init=init)
                    rows += _rows(res, N=N, batch_size=m, steps=steps)
    return an.Table.from_records(rows)


def _thresholds(tab, steps):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return an.thresholds(tab.where(steps=steps), control="batch_size", size="N", bootstrap=200)


def test_no_window_at_small_d_and_the_same_at_both_budgets(stationary):
    th = {s: _thresholds(stationary, s) for s in (400, 1600)}
    for s, t in th.items():
        assert np.all(np.isfinite(t.x_planted)) and np.all(np.isfinite(t.x_other))
        # the window is zero within 3 total sigma at every size
        assert np.all(np.abs(t.window) < 3 * t.window_err + 1e-9), (s, t.window, t.window_err)
    a, b = th[400], th[1600]
    for i, N in enumerate(a.sizes):
        ea = a.other.xc_err[list(a.other.sizes).index(N)]
        eb = b.other.xc_err[list(b.other.sizes).index(N)]
        assert abs(a.x_other[i] - b.x_other[i]) < 3 * np.hypot(ea, eb), (N, a.x_other, b.x_other)


def test_threshold_grows_about_linearly_with_d(stationary):
    t = _thresholds(stationary, 1600)
    ratio = t.x_other[1] / t.x_other[0]                     # d = 9 over d = 5
    assert 1.5 < ratio < 2.3, ratio                          # 9/5 = 1.8; the old protocol gave ~3.2


def test_first_passage_threshold_lies_below_the_phase(stationary):
    N = 27
    rows = []
    for m in (6, 9, 14, 20, 30, 45):
        res = ps.train(_model(N), _model(N), ps.Greedy(batch_size=m), ps.Online(inputs="binary", test_size=200),
                       steps=400, replicas=24, seed=5000 + m, record=4, stop="success")
        rows += [dict(N=N, batch_size=m, success=bool(s)) for s in res.success]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cp = an.critical_point(an.Table.from_records(rows), control="batch_size", size="N",
                               observable="success", extrapolate=False)
    phase = _thresholds(stationary, 1600).x_other[1]
    assert cp.xc[0] < 0.8 * phase, (cp.xc[0], phase)
