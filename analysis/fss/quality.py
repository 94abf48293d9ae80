"""The Houdayer-Hartmann collapse quality S (SCIENCE.md 5.2) as a compiled kernel.

Every point (L_i, x_ij) is compared with a master curve built from the *other* sizes only: for
each size i' != i, the two points that bracket the scaled x_ij (skipped if none do); a weighted
straight line (weights 1/dy^2) through all of them gives Y_ij and its variance dY_ij^2, and

    S = (1/N) sum_{i,j} (y_ij - Y_ij)^2 / (dy_ij^2 + dY_ij^2)

over the N points that have a master curve. Only points whose scaled x lies inside the window
[wlo, whi] take part, both as terms and as bracketing points (see README, Analysis: window
conventions). ``tests/reference.py`` holds a slow NumPy twin written from the formula.

Corrections to scaling (used by the systematic variants, and b, omega by ``corrections=True``):
the observable's amplitude y / (1 + b L^-omega), the scaling variable's scale and shift,
X = (x - xc) L^(1/nu) (1 + c L^-omega) + s L^-omega.

``objective_kernel`` adds the guards against spurious minima (x_c inside the data, bounded nu,
|zeta/nu| and corrections, enough overlap between sizes); ``grid_kernel`` evaluates it on many
parameter sets in one call (the global scan).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

try:  # numba is a hard dependency of the project; the fallback only keeps the module importable
    from numba import njit
except ImportError:  # pragma: no cover
    def njit(*args, **kwargs):
        if args and callable(args[0]):
            return args[0]
        return lambda f: f

__all__ = ["PENALTY", "Quality", "hh_kernel", "objective_kernel", "grid_kernel"]

PENALTY = 1.0e8          # objective value for parameter sets that violate a guard (S itself is O(1))


@dataclass(frozen=True)
class Quality:
    S: float
    n_terms: int           # points with a master curve (terms of S)
    n_window: int          # points inside the window
    sizes_used: int        # sizes with at least one term


@njit(cache=True)
def hh_kernel(x, y, dy, logL, starts, xc, inv_nu, zeta_nu, b, omega, c, s, wlo, whi,
               out_defined, out_Y, out_dY2):
    """Scale the data and evaluate the Houdayer-Hartmann S terms.

    Returns (sum of terms, number of terms, points in window, sizes with >= 1 term); per point
    fills out_defined (master curve exists), out_Y, out_dY2.
    """
    n = x.shape[0]
    k = starts.shape[0] - 1
    X = np.empty(n)
    Y = np.empty(n)
    DY = np.empty(n)
    lo = np.empty(k, np.int64)
    hi = np.empty(k, np.int64)
    n_window = 0
    for i in range(k):
        s0 = starts[i]
        lg = logL[s0]
        lw = math.exp(-omega * lg)
        sx = math.exp(inv_nu * lg) * (1.0 + c * lw)
        shift = s * lw
        corr = 1.0 + b * lw
        sy = math.exp(-zeta_nu * lg) / corr
        first = -1
        last = -1
        for p in range(s0, starts[i + 1]):
            X[p] = (x[p] - xc) * sx + shift
            Y[p] = y[p] * sy
            DY[p] = dy[p] * abs(sy)
            out_defined[p] = False
            if X[p] >= wlo and X[p] <= whi:
                if first < 0:
                    first = p
                last = p
        # scaled x is monotone in x within a size, so the window is a contiguous block
        if first < 0:
            lo[i] = s0
            hi[i] = s0
        else:
            lo[i] = first
            hi[i] = last + 1
        n_window += hi[i] - lo[i]
    total = 0.0
    n_terms = 0
    sizes_used = 0
    for i in range(k):
        used = False
        for p in range(lo[i], hi[i]):
            xp = X[p]
            K = 0.0
            Kx = 0.0
            Kxx = 0.0
            Ky = 0.0
            Kxy = 0.0
            for q in range(k):
                a = lo[q]
                e = hi[q]
                if q == i or e - a < 2:
                    continue
                if xp < X[a] or xp > X[e - 1]:
                    continue
                # bisection: largest j in [a, e-2] with X[j] <= xp
                left = a
                right = e - 1
                while right - left > 1:
                    mid = (left + right) // 2
                    if X[mid] <= xp:
                        left = mid
                    else:
                        right = mid
                for r in (left, left + 1):
                    w = 1.0 / (DY[r] * DY[r])
                    K += w
                    Kx += w * X[r]
                    Kxx += w * X[r] * X[r]
                    Ky += w * Y[r]
                    Kxy += w * X[r] * Y[r]
            if K == 0.0:
                continue
            D = K * Kxx - Kx * Kx
            if D <= 1e-12 * K * Kxx:
                continue  # all bracketing points at one x: no line through them
            bhat = (Kxx * Ky - Kx * Kxy) / D
            mhat = (K * Kxy - Kx * Ky) / D
            Yp = mhat * xp + bhat
            dY2 = (K * xp * xp - 2.0 * Kx * xp + Kxx) / D
            out_defined[p] = True
            out_Y[p] = Yp
            out_dY2[p] = dY2
            total += (Y[p] - Yp) ** 2 / (DY[p] * DY[p] + dY2)
            n_terms += 1
            used = True
        if used:
            sizes_used += 1
    return total, n_terms, n_window, sizes_used


@njit(cache=True)
def objective_kernel(x, y, dy, logL, starts, full, corrections, limits, wlo, whi,
                      min_overlap, min_points, out_defined, out_Y, out_dY2):
    """S at ``full`` = (xc, nu, zeta, b, omega, c, s), or PENALTY·(1 + distance) outside the
    guards: xc inside the x range of the data, nu and |zeta/nu| and the corrections bounded, and
    enough overlap (>= 2 sizes, >= min_overlap of the windowed points and >= min_points terms)."""
    xc, nu, zeta, b, omega, c, s = full[0], full[1], full[2], full[3], full[4], full[5], full[6]
    xlo, xhi = limits[0], limits[1]
    span = xhi - xlo
    v = max(0.0, xlo - xc) / span + max(0.0, xc - xhi) / span
    if nu <= 0.0:
        return PENALTY * (2.0 + abs(nu))
    v += max(0.0, limits[2] - nu) + max(0.0, nu - limits[3])
    v += max(0.0, abs(zeta / nu) - limits[4])
    if corrections:
        v += max(0.0, limits[5] - omega) + max(0.0, omega - limits[6])
        v += max(0.0, abs(b) - limits[7]) + max(0.0, abs(c) - limits[9])
        v += max(0.0, abs(s) - limits[10])
        # the factors 1 + b L^-omega, 1 + c L^-omega must stay clearly positive; their minimum
        # is at L_min for b, c < 0
        lw = math.exp(-max(omega, 1e-3) * limits[8])
        v += max(0.0, 0.05 - (1.0 + b * lw)) + max(0.0, 0.05 - (1.0 + c * lw))
    else:
        b = 0.0
        c = 0.0
        s = 0.0
    if v > 0.0:
        return PENALTY * (1.0 + v)
    total, n_terms, n_window, used = hh_kernel(x, y, dy, logL, starts, xc, 1.0 / nu, zeta / nu,
                                                b, omega, c, s, wlo, whi, out_defined, out_Y,
                                                out_dY2)
    need = max(min_points, int(math.ceil(min_overlap * n_window)))
    if used < 2 or n_terms < need:
        return PENALTY * (1.0 + max(need - n_terms, 0) / max(need, 1))
    return total / n_terms


@njit(cache=True)
def grid_kernel(x, y, dy, logL, starts, grid, corrections, limits, wlo, whi, min_overlap,
                min_points, out_defined, out_Y, out_dY2):
    """objective_kernel at every row (xc, nu, zeta, b, omega, c, s) of ``grid``."""
    out = np.empty(grid.shape[0])
    for g in range(grid.shape[0]):
        out[g] = objective_kernel(x, y, dy, logL, starts, grid[g], corrections, limits, wlo, whi,
                                  min_overlap, min_points, out_defined, out_Y, out_dY2)
    return out
