"""Minimising S: a global scan over the whole plausible range of every free parameter, Nelder-Mead
from the best local minima of the scan (multistart), and the self-consistent treatment of a
scaled-x window.

S has spurious minima (x_c at the edge of the data, huge |zeta/nu|, a handful of overlapping
points), so the result must not depend on the starting guess: the scan axes are fixed ranges
(nu from 0.1 to 10 in log steps, zeta/nu from -3 to 3, x_c over the quantiles of the data), not
intervals around the guess, and every distinct local minimum of the scan starts a local search.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import minimum_filter

from .problem import CollapseProblem
from .quality import PENALTY, njit, objective_kernel

__all__ = ["nelder_mead", "scan_axes", "scan_starts", "fit", "FitOutcome", "fit_window",
           "refit_local"]

NU_RANGE = (0.1, 10.0)      # scanned nu (clipped to Bounds.nu)
ZETA_NU_RANGE = 3.0         # scanned |zeta/nu| (clipped to Bounds.zeta_over_nu)


@njit(cache=True)
def _nm_kernel(x, y, dy, logL, starts, base, free_idx, theta0, steps, scale, corrections, limits,
               wlo, whi, min_overlap, min_points, out_defined, out_Y, out_dY2, xatol, fatol,
               maxfev):
    """Nelder-Mead (reflection 1, expansion 2, contraction 1/2, shrink 1/2, as scipy's) on the
    guarded objective, in units u of ``steps`` from theta0; the initial simplex has edges
    ``scale``. Stops when the simplex spans <= xatol in u and <= fatol in S, or after maxfev
    evaluations. Returns (u_best, S_best)."""
    m = theta0.shape[0]
    sim = np.zeros((m + 1, m))
    fs = np.empty(m + 1)
    full = base.copy()

    def f(u):
        for j in range(m):
            full[free_idx[j]] = theta0[j] + u[j] * steps[j]
        return objective_kernel(x, y, dy, logL, starts, full, corrections, limits, wlo, whi,
                                min_overlap, min_points, out_defined, out_Y, out_dY2)

    for i in range(m):
        sim[i + 1, i] = scale
    for i in range(m + 1):
        fs[i] = f(sim[i])
    nfev = m + 1
    xbar = np.empty(m)
    while True:
        order = np.argsort(fs)
        sim = sim[order]
        fs = fs[order]
        spread_x = 0.0
        spread_f = 0.0
        for i in range(1, m + 1):
            spread_f = max(spread_f, abs(fs[i] - fs[0]))
            for j in range(m):
                spread_x = max(spread_x, abs(sim[i, j] - sim[0, j]))
        if (spread_x <= xatol and spread_f <= fatol) or nfev >= maxfev:
            break
        for j in range(m):
            xbar[j] = 0.0
            for i in range(m):
                xbar[j] += sim[i, j]
            xbar[j] /= m
        xr = 2.0 * xbar - sim[m]
        fr = f(xr)
        nfev += 1
        if fr < fs[0]:
            xe = 3.0 * xbar - 2.0 * sim[m]
            fe = f(xe)
            nfev += 1
            if fe < fr:
                sim[m] = xe
                fs[m] = fe
            else:
                sim[m] = xr
                fs[m] = fr
        elif fr < fs[m - 1]:
            sim[m] = xr
            fs[m] = fr
        else:
            shrink = False
            if fr < fs[m]:
                xc = 1.5 * xbar - 0.5 * sim[m]
                fc = f(xc)
                nfev += 1
                if fc <= fr:
                    sim[m] = xc
                    fs[m] = fc
                else:
                    shrink = True
            else:
                xcc = 0.5 * xbar + 0.5 * sim[m]
                fcc = f(xcc)
                nfev += 1
                if fcc < fs[m]:
                    sim[m] = xcc
                    fs[m] = fcc
                else:
                    shrink = True
            if shrink:
                for i in range(1, m + 1):
                    sim[i] = sim[0] + 0.5 * (sim[i] - sim[0])
                    fs[i] = f(sim[i])
                    nfev += 1
    best = np.argmin(fs)
    return sim[best].copy(), fs[best]


def nelder_mead(problem: CollapseProblem, theta0, steps, y=None, maxfev=3000, restarts=1,
                xatol=1e-4, fatol=1e-7):
    """Minimise S over the free parameters from theta0, in units of ``steps`` (parameters of very
    different scales), with a restart from the optimum because NM can stall on a degenerate
    simplex. Compiled: one call runs the whole search."""
    theta0 = np.asarray(theta0, float)
    steps = np.where(np.asarray(steps, float) > 0, steps, 1e-3)
    if len(theta0) == 0:
        return theta0, float(problem.objective(theta0, y))
    d = problem.data
    yy = d.y if y is None else np.asarray(y, float)
    best_th, best_f = theta0, np.inf
    for attempt in range(restarts + 1):
        start = theta0 if attempt == 0 else best_th
        u, fval = _nm_kernel(d.x, yy, d.dy, problem.logL, d.starts, problem._base,
                             problem._free_idx, start, steps, 1.0 if attempt == 0 else 0.3,
                             problem.corrections, problem._limits, problem._wlo, problem._whi,
                             problem.bounds.min_overlap, problem.min_points, problem._defined,
                             problem._Ym, problem._dY2, xatol, fatol, maxfev)
        improved = fval < best_f - 1e-9
        if fval < best_f:
            best_th, best_f = start + u * steps, float(fval)
        if attempt > 0 and not improved:
            break
    return best_th, best_f


def scan_axes(problem: CollapseProblem, p0: dict, only=None) -> dict:
    """Grid axes of the global scan (the guess is added to each axis). ``only``: scan just these
    parameters (others stay at ``p0``), e.g. the correction terms of a variant."""
    d, bd = problem.data, problem.bounds
    free = [n for n in problem.free if only is None or n in only]
    corrections = any(n in ("b", "omega", "c", "s") for n in free)
    n_xc, n_nu, n_z = (15, 12, 17) if corrections else (22, 18, 25)
    axes = {}
    if "xc" in free:
        qs = np.quantile(np.unique(d.x), np.linspace(0.03, 0.97, n_xc))
        axes["xc"] = np.unique(np.append(qs, p0["xc"]))
    if "nu" in free:
        lo, hi = max(NU_RANGE[0], bd.nu[0]), min(NU_RANGE[1], bd.nu[1])
        axes["nu"] = np.unique(np.append(np.geomspace(lo, hi, n_nu), p0["nu"]))
    if "zeta" in free:
        z = min(ZETA_NU_RANGE, bd.zeta_over_nu)
        axes["zeta_over_nu"] = np.unique(np.append(np.linspace(-z, z, n_z), p0["zeta"] / p0["nu"]))
    if "b" in free:
        axes["b"] = np.unique(np.append([-1.0, -0.5, -0.2, 0.0, 0.2, 0.5, 1.0, 2.0], p0.get("b", 0.0)))
    if "omega" in free:
        axes["omega"] = np.unique(np.append([0.5, 1.0, 1.5, 2.0, 3.0], p0.get("omega", 1.0)))
    if "c" in free:
        axes["c"] = np.unique(np.append([-0.8, -0.5, -0.2, 0.0, 0.2, 0.5, 1.0, 2.0], p0.get("c", 0.0)))
    if "s" in free:
        axes["s"] = np.unique(np.append([-2.0, -1.0, -0.5, -0.2, 0.0, 0.2, 0.5, 1.0, 2.0],
                                        p0.get("s", 0.0)))
    return axes


def scan_starts(problem: CollapseProblem, p0: dict, n_best=5, axes=None):
    """Evaluate S on the grid; the parameter vectors of its best ``n_best`` local minima."""
    axes = scan_axes(problem, p0) if axes is None else axes
    if not axes:
        return []
    names = list(axes)
    shape = tuple(len(axes[n]) for n in names)
    thetas = []
    for combo in itertools.product(*(axes[n] for n in names)):
        p = dict(p0)
        p.update(zip(names, combo))
        if "zeta_over_nu" in p:
            p["zeta"] = p.pop("zeta_over_nu") * p["nu"]
        thetas.append(problem.theta(p))
    thetas = np.array(thetas)
    S = problem.objectives(thetas).reshape(shape)
    # local minima: no lower neighbour in the grid (a plateau of equal values counts once per cell)
    is_min = (minimum_filter(S, size=3, mode="nearest") == S) & (S < PENALTY)
    idx = np.flatnonzero(is_min.ravel())
    if len(idx) == 0:
        ok = np.flatnonzero(S.ravel() < PENALTY)
        idx = ok[np.argsort(S.ravel()[ok])[:1]]
    idx = idx[np.argsort(S.ravel()[idx])][:n_best]
    return [thetas[i] for i in idx]


def fit(problem: CollapseProblem, p0: dict, scan=True, axes=None, y=None, n_best=5):
    """Global scan + Nelder-Mead from the guess and from the best local minima of the scan; the
    best optimum (theta, S), or (None, inf)."""
    starts = [problem.theta(p0)]
    if scan and problem.free:
        starts += scan_starts(problem, p0, n_best=n_best, axes=axes)
    best_th, best_S = None, np.inf
    for th0 in starts:
        th, S = nelder_mead(problem, th0, problem.steps(problem.params(th0)), y=y)
        if S < best_S:
            best_th, best_S = th, S
    return best_th, best_S


@dataclass
class FitOutcome:
    problem: CollapseProblem     # the problem actually minimised (a window becomes a fixed point set)
    mask: np.ndarray             # its points within the data of the problem that was given
    theta: np.ndarray
    S: float


def fit_window(problem: CollapseProblem, p0: dict, scan=True, axes=None, n_best=5,
               max_iter=8) -> FitOutcome | None:
    """Fit, treating a scaled-x window self-consistently.

    With a window the set of points in S changes with the parameters, so S jumps, and a moving
    window lets the optimiser lower S by pushing badly fitting points out (spurious optima with a
    handful of points). So: locate the basin without the window (global scan on all data), then
    refit with the point set frozen (a smooth problem), update the set from the new parameters,
    and repeat until the set no longer changes; the final points are exactly those inside the
    window at the final parameters. Without ``scan`` the iteration starts at p0.
    """
    if problem.x_window is None:
        th, S = fit(problem, p0, scan=scan, axes=axes, n_best=n_best)
        if th is None or S >= PENALTY:
            return None
        return FitOutcome(problem, np.ones(problem.data.n, bool), th, S)
    p = dict(p0)
    if scan:
        base = problem.replace(x_window=None)
        th, S = fit(base, p0, scan=True, axes=axes, n_best=n_best)
        if th is None or S >= PENALTY:
            return None
        p = base.params(th)
    mask = problem.in_window(p)
    fp = th = S = None
    for it in range(max_iter):
        if mask.sum() < problem.min_points or len(np.unique(problem.data.size[mask])) < 2:
            return None
        fp = problem.replace(data=problem.data.subset(mask), x_window=None)
        th, S = fit(fp, p, scan=False)
        if S >= PENALTY or len(np.unique(fp.data.size)) < 2:
            return None
        p = fp.params(th)
        new = problem.in_window(p)
        if np.array_equal(new, mask) or it == max_iter - 1:
            break   # converged, or the set cycles between near-equivalent choices: keep the last
        mask = new
    return FitOutcome(fp, mask, th, S)


def refit_local(problem: CollapseProblem, theta0, y, steps):
    """Refit from a nearby optimum (bootstrap replicas): one NM run, small simplex."""
    th, S = nelder_mead(problem, theta0, steps, y=y, restarts=1, xatol=2e-3, fatol=1e-5)
    return th if S < PENALTY else np.full(len(theta0), np.nan)
