"""2D Ising Binder-cumulant data for the FSS tests (a test fixture, not part of ``analysis``).

Wolff cluster Monte Carlo on an L x L periodic square lattice (J = k_B = 1), measured every
n_c clusters, with n_c ~ L^2 / <cluster size> fixed after thermalisation (about one sweep).
Checked against exact enumeration of L = 4 (U = 0.61720 at T_c). The Binder cumulant
U_L = 1 - <m^4> / (3 <m^2>^2) and its error come from a jackknife over blocks of measurements,
so autocorrelation within a block is accounted for; |m| likewise from block means.
"""
from __future__ import annotations

import hashlib
import os

import numpy as np
from numba import njit

TC = 2.0 / np.log(1.0 + np.sqrt(2.0))     # 2.269185314...
NU = 1.0
BETA = 0.125


@njit(cache=True)
def _wolff(L, beta, n_therm, n_meas, seed):
    """Return per-measurement m^2 and m^4 (m = magnetisation per spin)."""
    np.random.seed(seed)
    N = L * L
    s = np.ones(N, np.int8)
    p_add = 1.0 - np.exp(-2.0 * beta)
    stack = np.empty(N, np.int64)
    m2 = np.empty(n_meas)
    m4 = np.empty(n_meas)
    M = N
    # clusters between measurements: fixed (~ one sweep) after thermalisation. Measuring "once
    # >= N spins were flipped" would stop at a state-dependent time and bias the sample.
    n_clusters = 1
    total_flipped = 0
    total_clusters = 0
    for it in range(n_therm + n_meas):
        if it == n_therm:
            n_clusters = max(1, int(round(N * total_clusters / max(total_flipped, 1))))
        c = 0
        flipped = 0
        while (it < n_therm and flipped < N) or (it >= n_therm and c < n_clusters):
            i0 = np.random.randint(N)
            s0 = s[i0]
            s[i0] = -s0
            stack[0] = i0
            top = 1
            size = 1
            while top > 0:
                top -= 1
                i = stack[top]
                x = i % L
                y = i // L
                for k in range(4):
                    if k == 0:
                        j = y * L + (x + 1) % L
                    elif k == 1:
                        j = y * L + (x - 1 + L) % L
                    elif k == 2:
                        j = ((y + 1) % L) * L + x
                    else:
                        j = ((y - 1 + L) % L) * L + x
                    if s[j] == s0 and np.random.random() < p_add:
                        s[j] = -s0
                        stack[top] = j
                        top += 1
                        size += 1
            M -= 2 * s0 * size
            flipped += size
            c += 1
            if it < n_therm:
                total_flipped += size
                total_clusters += 1
        if it >= n_therm:
            m = M / N
            m2[it - n_therm] = m * m
            m4[it - n_therm] = m * m * m * m
    return m2, m4


def binder_jackknife(m2, m4, n_blocks=40):
    """Binder cumulant and its jackknife error over ``n_blocks`` blocks of the time series."""
    n = len(m2) // n_blocks * n_blocks
    b2 = m2[:n].reshape(n_blocks, -1).mean(axis=1)
    b4 = m4[:n].reshape(n_blocks, -1).mean(axis=1)
    U = 1.0 - b4.mean() / (3.0 * b2.mean() ** 2)
    j2 = (b2.sum() - b2) / (n_blocks - 1)
    j4 = (b4.sum() - b4) / (n_blocks - 1)
    Uj = 1.0 - j4 / (3.0 * j2 ** 2)
    err = np.sqrt((n_blocks - 1) * np.mean((Uj - Uj.mean()) ** 2))
    return float(U), float(err)


def temperatures(L, x_grid):
    """Per-size temperature grid T = T_c + x / L^(1/nu) (non-rectangular across sizes)."""
    return TC + np.asarray(x_grid, float) * L ** (-1.0 / NU)


def mean_jackknife(v, n_blocks=40):
    """Mean of a time series and its jackknife (= blocked) error over ``n_blocks`` blocks."""
    n = len(v) // n_blocks * n_blocks
    b = v[:n].reshape(n_blocks, -1).mean(axis=1)
    return float(b.mean()), float(b.std(ddof=1) / np.sqrt(n_blocks))


def generate_ising(sizes=(8, 16, 32, 64), x_grid=np.linspace(-1.8, 2.2, 9), n_meas=20000,
                   n_therm=500, seed=12345):
    """Long-format arrays (size, T, U, dU, m, dm): the Binder cumulant and the mean absolute
    magnetisation per spin |m| (m L^(beta/nu) = m L^(1/8) collapses) with blocked errors."""
    out = {"size": [], "T": [], "U": [], "dU": [], "m": [], "dm": []}
    for a, L in enumerate(sizes):
        for b, T in enumerate(temperatures(L, x_grid)):
            m2, m4 = _wolff(int(L), 1.0 / T, n_therm, n_meas, seed + 1000 * a + b)
            U, dU = binder_jackknife(m2, m4)
            m, dm = mean_jackknife(np.sqrt(m2))
            for k, v in (("size", L), ("T", T), ("U", U), ("dU", dU), ("m", m), ("dm", dm)):
                out[k].append(v)
    return {k: np.array(v, float) for k, v in out.items()}


def generate_binder(sizes=(8, 16, 32, 64), x_grid=np.linspace(-1.8, 2.2, 9), n_meas=20000,
                    n_therm=500, seed=12345):
    """Long-format arrays (size, T, U, dU) for the Binder cumulant of the 2D Ising model."""
    d = generate_ising(sizes, x_grid, n_meas, n_therm, seed)
    return {k: d[k] for k in ("size", "T", "U", "dU")}


def cached_binder(cache_dir, **kwargs):
    """``generate_binder(**kwargs)`` cached as .npz in ``cache_dir`` (keyed by the arguments)."""
    return _cached(cache_dir, "binder_v2_", generate_binder, kwargs)


def cached_ising(cache_dir, **kwargs):
    """``generate_ising(**kwargs)`` cached as .npz in ``cache_dir`` (keyed by the arguments)."""
    return _cached(cache_dir, "ising_v1_", generate_ising, kwargs)


def _cached(cache_dir, prefix, fn, kwargs, digits=6, as_float=False):
    """``fn(**kwargs)`` as .npz in ``cache_dir``, named by ``prefix`` and a hash of the arguments
    (array arguments rounded to ``digits``; shared with tests/percolation_data.py)."""
    key = repr(sorted((k, np.round(np.asarray(v, float if as_float else None), digits).tolist()
                       if not np.isscalar(v) else v) for k, v in kwargs.items()))
    name = prefix + hashlib.sha1(key.encode()).hexdigest()[:16] + ".npz"
    os.makedirs(str(cache_dir), exist_ok=True)
    path = os.path.join(str(cache_dir), name)
    if os.path.exists(path):
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    data = fn(**kwargs)
    tmp = path + f".{os.getpid()}.tmp.npz"
    np.savez(tmp, **data)
    os.replace(tmp, path)
    return data
