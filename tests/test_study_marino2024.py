"""Reduced version of runs/marino2024 (Marino & Ricci-Tersenghi 2024): the qualitative claims.

Greedy mini-batch flips on a binary tree committee (K = 3 sign units, majority output, d = N/3),
binary inputs, online, stop at exact recovery (same protocol as runs/marino2024/small/
tree_committee.toml, fewer replicas and sweeps). Checks, SCIENCE.md 1.2-1.3 / 6.6:
  * P_succ(m) is monotone in m within binomial errors, and goes from ~0 to ~1 (a transition);
  * the transition sharpens with N (narrower in ln m for the largest size than for the smallest);
  * m_c increases with d (here d = N/3), and on a random-sparse committee at fixed N.
Runs in ~1-3 minutes on 2 cores.
"""
import numpy as np
import pytest

import analysis as an
import physsgd as ps

pytestmark = pytest.mark.slow

M_GRID = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192)


def _committee(N, d, topology):
    return ps.Committee(N=N, K=3, d=d, activation="sign", output="sign", topology=topology, weights="binary")


def _sweep(sizes, topology="tree", replicas=32, steps=300, m_grid=M_GRID):
    """Long table (one row per replica) over sizes (N, d) and the mini-batch grid."""
    cols = {"N": [], "d": [], "batch_size": [], "success": [], "overlap": []}
    for N, d in sizes:
        model = _committee(N, d, topology)
        for m in m_grid:
            res = ps.train(model, model, ps.Greedy(batch_size=m), ps.Online(inputs="binary", test_size=500),
                           steps=steps, replicas=replicas, seed=1000 * N + 10 * m + d, record=10,
                           stop="success")
            r = res.replicas
            cols["N"] += [N] * r
            cols["d"] += [d] * r
            cols["batch_size"] += [m] * r
            cols["success"] += list(res.success)
            cols["overlap"] += list(res.overlap[:, -1])
    return an.Table.from_arrays(**{k: np.asarray(v) for k, v in cols.items()})


@pytest.fixture(scope="module")
def tree():
    return _sweep([(15, 5), (27, 9), (45, 15)])


def test_success_monotone_in_m(tree):
    agg = an.aggregate(tree, by=["N", "batch_size"], observable="success")
    for N in agg.unique("N"):
        g = agg.where(N=N).sort("batch_size")
        k, n = g["success_k"].astype(float), g["success_n"].astype(float)
        p = k / n
        q = (k + 0.5) / (n + 1.0)                       # never a zero error at p = 0 or 1
        sig = np.sqrt(q * (1 - q) / n)
        drops = p[:-1] - p[1:]                           # a fall of P_succ when m grows
        tol = 2.0 * np.hypot(sig[:-1], sig[1:])
        assert np.all(drops <= tol), (N, g["batch_size"], p)
        assert p[0] <= 0.1 and p[-1] >= 0.9, (N, p)     # a full transition inside the grid
        # exact recovery is real: a successful binary student equals the teacher (overlap 1)
    ok = tree["success"]
    assert np.all(tree["overlap"][ok] > 0.999)


def test_transition_sharpens_and_mc_grows_with_d(tree):
    cp = an.critical_point(tree, control="batch_size", size="N", observable="success",
                           bootstrap=100, log_control=True, extrapolate=False)
    assert np.all(np.isfinite(cp.xc)), cp.summary()
    # m_c grows with d = N/3, beyond the errors
    assert np.all(np.diff(cp.xc) > 2 * np.hypot(cp.xc_err[1:], cp.xc_err[:-1])), cp.summary()
    # sharper in ln m for the largest size than for the smallest
    assert cp.width[-1] < cp.width[0], cp.summary()


def test_mc_grows_with_d_at_fixed_N():
    tab = _sweep([(27, 5), (27, 9), (27, 15)], topology="random", replicas=24,
                 m_grid=(4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128))
    cp = an.critical_point(tab, control="batch_size", size="d", observable="success",
                           bootstrap=100, log_control=True, extrapolate=False)
    assert np.all(np.isfinite(cp.xc)), cp.summary()
    assert np.all(np.diff(cp.xc) > 0), cp.summary()
    assert cp.xc[-1] - cp.xc[0] > 2 * np.hypot(cp.xc_err[-1], cp.xc_err[0]), cp.summary()
