"""The fitting toolkit every estimator shares: one weighted straight line, one size extrapolation,
one binomial error floor, one robust spread.

All functions are vectorised over the rows of their data (bootstrap replicas, variants): a row is
the last axis, everything before it is a batch.
"""
from __future__ import annotations

import warnings

import numpy as np

__all__ = ["weighted_line", "line_covariance", "size_extrapolation", "binomial_error", "robust_sd",
           "OMEGA_GRID"]

# exponents searched by size_extrapolation when omega is free: 1/nu (or 1/nu + omega) from 0.1 to 4
OMEGA_GRID = np.geomspace(0.1, 4.0, 161)


def weighted_line(t, Y, w):
    """Weighted least squares Y = c + a t for every row of Y (shape (..., k)); t, w of shape (k,).

    Returns c, a, chi2 = sum w (Y - c - a t)^2, each of the batch shape."""
    t = np.asarray(t, float)
    w = np.asarray(w, float)
    Y = np.asarray(Y, float)
    W = w.sum()
    mt = (w * t).sum() / W
    stt = (w * (t - mt) ** 2).sum()
    my = (Y * w).sum(-1) / W
    a = ((Y - my[..., None]) * (w * (t - mt))).sum(-1) / stt
    c = my - a * mt
    chi2 = (w * (Y - c[..., None] - a[..., None] * t) ** 2).sum(-1)
    return c, a, chi2


def line_covariance(t, w):
    """Covariance of (c, a) of ``weighted_line`` when the weights are 1/sigma^2 of independent data."""
    t = np.asarray(t, float)
    w = np.asarray(w, float)
    A = np.column_stack([np.ones_like(t), t])
    return np.linalg.pinv(A.T @ (A * w[:, None]))


def _linear_lsq(A, Y, w):
    """Weighted least squares Y = A coef for every row of Y (B, k); A (k, m). -> coef (B, m), chi2 (B,)."""
    Aw = A * w[:, None]
    coef = np.linalg.solve(A.T @ Aw, Aw.T @ Y.T).T
    chi2 = (w * (Y - coef @ A.T) ** 2).sum(-1)
    return coef, chi2


def _extrapolation_fit(L, X, w, om, correction):
    """(x_inf, a, chi2) per row for a fixed exponent; with ``correction`` a third term a'
    L^-(om + correction) is fitted too (its amplitude is not returned)."""
    if correction is None:
        return weighted_line(L ** -om, X, w)
    A = np.column_stack([np.ones_like(L), L ** -om, L ** -(om + correction)])
    coef, chi2 = _linear_lsq(A, X, w)
    return coef[:, 0], coef[:, 1], chi2


def size_extrapolation(L, X, sigma, omega=None, grid=OMEGA_GRID, correction=None):
    """Fit X = x_inf + a L^-omega for every row of X (shape (B, k)), weights 1/sigma^2.

    omega fixed (a number), or free: profiled over ``grid`` (chi2 minimised per row, refined by a
    parabola in log omega); needs k >= 3 (k >= 4 with a correction). ``correction``: add the
    next-to-leading term a' L^-(omega + correction). Returns a dict of (B,) arrays: ``xinf``,
    ``a``, ``omega``, ``chi2`` and ``at_edge`` (the free omega's optimum is an end of the grid:
    not determined)."""
    L = np.asarray(L, float)
    X = np.atleast_2d(np.asarray(X, float))
    w = 1.0 / np.asarray(sigma, float) ** 2
    B = X.shape[0]
    if omega is not None:
        c, a, chi2 = _extrapolation_fit(L, X, w, float(omega), correction)
        return {"xinf": c, "a": a, "omega": np.full(B, float(omega)), "chi2": chi2,
                "at_edge": np.zeros(B, bool)}
    need = 3 if correction is None else 4
    if len(L) < need:
        raise ValueError(f"a free exponent needs >= {need} sizes; got {len(L)}")
    grid = np.asarray(grid, float)
    prof = np.stack([_extrapolation_fit(L, X, w, om, correction)[2] for om in grid], -1)   # (B, G)
    j = np.argmin(prof, -1)
    at_edge = (j == 0) | (j == len(grid) - 1)
    jj = np.clip(j, 1, len(grid) - 2)
    lg = np.log(grid)
    rows = np.arange(B)
    y0, y1, y2 = prof[rows, jj - 1], prof[rows, jj], prof[rows, jj + 1]
    denom = y0 - 2 * y1 + y2
    shift = np.where(denom > 0, 0.5 * (y0 - y2) / np.where(denom > 0, denom, 1), 0.0)
    lopt = np.where(at_edge, lg[j], lg[jj] + np.clip(shift, -1, 1) * (lg[1] - lg[0]))
    om = np.exp(lopt)
    out = {k: np.empty(B) for k in ("xinf", "a", "chi2")}
    for i in range(B):                 # one closed-form solve per row at its own omega
        c, a, chi2 = _extrapolation_fit(L, X[i:i + 1], w, om[i], correction)
        out["xinf"][i], out["a"][i], out["chi2"][i] = c[0], a[0], chi2[0]
    out["omega"] = om
    out["at_edge"] = at_edge
    return out


def binomial_error(k, n):
    """Standard error of a success fraction k/n with the floor q = (k + 1/2)/(n + 1): never 0
    when every trial agrees (k = 0 or k = n), where a plain sqrt(p(1-p)/n) would give the cell an
    infinite weight."""
    k = np.asarray(k, float)
    n = np.asarray(n, float)
    q = (k + 0.5) / (n + 1.0)
    return np.sqrt(q * (1.0 - q) / n)


def robust_sd(samples, axis=0):
    """Half the 16-84 % range, ignoring NaN: the standard deviation for Gaussian samples, not
    ruined by the occasional wild bootstrap refit (free-exponent fits have heavy tails)."""
    samples = np.asarray(samples, float)
    if samples.size == 0:
        shape = list(samples.shape)
        del shape[axis]
        return np.full(shape, np.nan) if shape else np.nan
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN columns -> NaN
        q16, q84 = np.nanpercentile(samples, [16, 84], axis=axis)
    return 0.5 * (q84 - q16)
