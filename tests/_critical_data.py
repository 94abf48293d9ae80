"""Synthetic per-replica success data with a known m_c(N), shared by the critical-point, plot and
order tests."""
import numpy as np

from analysis.table import Table

SIZES = (32, 64, 128, 256, 512)
MC_INF, A, NU = 8.0, 40.0, 1.0


def true_mc(N):
    return MC_INF + A * np.asarray(N, float) ** (-1 / NU)


def success_data(seed, sizes=SIZES, reps=64, w0=2.0, mc=true_mc, m_max=32, n_m=13):
    """Bernoulli successes with p(m) = logistic((log m - log m_c(N)) / w(N)), w = w0 N^-1/2."""
    rng = np.random.default_rng(seed)
    m = np.unique(np.round(np.geomspace(2, m_max, n_m)).astype(int))
    N_col, m_col, s_col = [], [], []
    for N in sizes:
        w = w0 * N ** -0.5
        for mm in m:
            p = 1 / (1 + np.exp(-(np.log(mm) - np.log(mc(N))) / w))
            N_col += [N] * reps
            m_col += [mm] * reps
            s_col += list(rng.random(reps) < p)
    return Table.from_arrays(N=N_col, batch_size=m_col, success=np.array(s_col))
