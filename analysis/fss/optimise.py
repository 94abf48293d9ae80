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
from scipy.optimize import minimize

from .problem import CollapseProblem
from .quality import PENALTY

__all__ = ["nelder_mead", "scan_axes", "scan_starts", "fit", "FitOutcome", "fit_window",
           "refit_local"]

NU_RANGE = (0.1, 10.0)      # scanned nu (clipped to Bounds.nu)
ZETA_NU_RANGE = 3.0         # scanned |zeta/nu| (clipped to Bounds.zeta_over_nu)


def nelder_mead(fun, theta0, steps, maxfev=3000, restarts=1, xatol=1e-4, fatol=1e-7):
    """Nelder-Mead in units of ``steps`` (parameters of very different scales), with a restart
    from the optimum because NM can stall on a degenerate simplex."""
    theta0 = np.asarray(theta0, float)
    steps = np.where(np.asarray(steps, float) > 0, steps, 1e-3)
    m = len(theta0)
    if m == 0:
        return theta0, float(fun(theta0))

    def f(u):
        return fun(theta0 + u * steps)

    best_u, best_f = np.zeros(m), np.inf
    for attempt in range(restarts + 1):
        scale = 1.0 if attempt == 0 else 0.3
        simplex = np.vstack([best_u] + [best_u + scale * np.eye(m)[i] for i in range(m)])
        res = minimize(f, best_u, method="Nelder-Mead",
                       options=dict(initial_simplex=simplex, xatol=xatol, fatol=fatol,
                                    maxfev=maxfev))
        improved = res.fun < best_f - 1e-9
        if res.fun < best_f:
            best_u, best_f = res.x, float(res.fun)
        if attempt > 0 and not improved:
            break
    return theta0 + best_u * steps, best_f


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
    fun = (lambda th: problem.objective(th, y))
    for th0 in starts:
        th, S = nelder_mead(fun, th0, problem.steps(problem.params(th0)))
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
    th, S = nelder_mead(lambda t: problem.objective(t, y), theta0, steps, restarts=1,
                        xatol=2e-3, fatol=1e-5)
    return th if S < PENALTY else np.full(len(theta0), np.nan)
