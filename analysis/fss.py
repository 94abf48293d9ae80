"""Finite-size-scaling data collapse with the Houdayer-Hartmann quality and a stat + sys error budget.

Scaling form (SCIENCE.md §5.1, DESIGN.md §5)::

    y · L^(-zeta/nu) = F((x - xc) · L^(1/nu)) · (1 + b · L^(-omega))      (b, omega only if corrections)

Data come in long format: one entry per point (size L, control x, observable y, error dy); any
number of sizes >= 2 and any (non-rectangular) x grid per size. The collapse quality is the
Houdayer-Hartmann S (SCIENCE.md §5.2): every point is compared with a master curve built by a
weighted straight-line fit through the bracketing points of all *other* sizes.

Pipeline of :func:`collapse`:

1. coarse grid scan over the free parameters, then Nelder-Mead from the best grid points
   (S has spurious minima, so a purely local search depends on the starting guess);
2. statistical errors from a parametric bootstrap (y -> y + dy·N(0,1), refit from the optimum),
   plus the autoScale "S+1" widths as a separate field;
3. systematic errors from refits under changed analysis choices (smallest sizes dropped, scaled-x
   window narrowed/widened, correction-to-scaling term) through :mod:`analysis.budget`, and the
   drift of the estimates with the smallest size kept.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq, minimize

from . import budget
from ._validate import validated

try:  # numba is a hard dependency of the project; the fallback only keeps the module importable
    from numba import njit
except ImportError:  # pragma: no cover
    def njit(*args, **kwargs):
        if args and callable(args[0]):
            return args[0]
        return lambda f: f

BASE_PARAMS = ("xc", "nu", "zeta")
CORRECTION_PARAMS = ("b", "omega")
PENALTY = 1.0e8          # objective value for parameter sets that violate a guard (S itself is O(1))
# The "corrections" variant adds (1 + b L^-omega) with omega FIXED (unless the caller gives one):
# with a few sizes over a decade omega is not identified. Measured on synthetic data (4 sizes,
# L = 16..128): with omega free it ran to its lower bound (0.3) in 6/20 clean data sets, where
# 1 + b L^-omega ~ (1 + b) L^(-b omega) is a shift of zeta/nu, and b ran to its bound (100) in
# 4/20 data sets with a true correction; the refits were then heavy-tailed and the sys error
# either blew up (clean data) or was subtracted away as noise (corrected data). omega = 1 is the
# generic leading analytic correction.
CORRECTION_OMEGA = 1.0
# The "window" variant narrows the scaled-x window about x = 0 by this factor. Measured (clean
# synthetic data, 4 sizes): x0.5 kept 30 of 71 points, tripled the zeta error, pushed the xc-zeta
# bootstrap correlation to 0.97 and the paired bootstrap then underestimated the variant-central
# spread by 1.3x, so noise alone gave median sys/stat = 1.9 for zeta; x0.75 keeps ~50 points,
# its paired bootstrap matches the spread over noise realisations (rms z = 0.94), sys/stat 0.9.
WINDOW_NARROW = 0.75

__all__ = ["collapse", "CollapseResult", "CollapseProblem", "ScaledData", "validate_long_data",
           "FSSData"]


# ----------------------------------------------------------------------------------------------
# input validation (shared with crossings)
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FSSData:
    """Validated long-format data, sorted by (size, x). ``order`` maps back to the input order."""
    size: np.ndarray
    x: np.ndarray
    y: np.ndarray
    dy: np.ndarray
    order: np.ndarray            # sorted position k holds input point order[k]
    sizes: np.ndarray            # distinct sizes, ascending
    starts: np.ndarray           # points of sizes[i] are [starts[i], starts[i+1])

    @property
    def n(self) -> int:
        return len(self.x)

    def subset(self, mask: np.ndarray) -> "FSSData":
        """The data restricted to ``mask`` (a boolean array in sorted order)."""
        return _build_data(self.size[mask], self.x[mask], self.y[mask], self.dy[mask],
                           self.order[mask])


def _as_1d(name: str, a) -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a 1-D array of numbers: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (long format: one entry per data point), "
                         f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN/inf value(s)")
    return arr


def _build_data(size, x, y, dy, order) -> FSSData:
    idx = np.lexsort((x, size))
    size, x, y, dy, order = size[idx], x[idx], y[idx], dy[idx], order[idx]
    sizes, starts = np.unique(size, return_index=True)
    starts = np.append(starts, len(size)).astype(np.int64)
    return FSSData(size, x, y, dy, order, sizes, starts)


def validate_long_data(size, x, y, dy, min_sizes: int = 2, min_points_per_size: int = 2) -> FSSData:
    """Check long-format FSS input and return it sorted by (size, x).

    Raises ValueError naming the offending argument for: non-1-D or non-numeric input, mismatched
    lengths, NaN/inf, size <= 0, dy <= 0, fewer than ``min_sizes`` distinct sizes, or a size with
    fewer than ``min_points_per_size`` points.
    """
    arrays = {"size": _as_1d("size", size), "x": _as_1d("x", x), "y": _as_1d("y", y),
              "dy": _as_1d("dy", dy)}
    n = len(arrays["size"])
    for name, arr in arrays.items():
        if len(arr) != n:
            raise ValueError(f"{name} has length {len(arr)} but size has length {n}; "
                             "size, x, y and dy must have one entry per data point")
    if n == 0:
        raise ValueError("size, x, y, dy are empty")
    if np.any(arrays["size"] <= 0):
        raise ValueError("size must be > 0 for every point")
    if np.any(arrays["dy"] <= 0):
        raise ValueError(f"dy must be > 0 for every point ({int(np.sum(arrays['dy'] <= 0))} "
                         "entries are <= 0); give a floor error for exact data")
    data = _build_data(arrays["size"], arrays["x"], arrays["y"], arrays["dy"], np.arange(n))
    if len(data.sizes) < min_sizes:
        raise ValueError(f"size has {len(data.sizes)} distinct value(s) {data.sizes.tolist()}; "
                         f"at least {min_sizes} sizes are needed")
    counts = np.diff(data.starts)
    if np.any(counts < min_points_per_size):
        few = data.sizes[counts < min_points_per_size].tolist()
        raise ValueError(f"size(s) {few} have fewer than {min_points_per_size} points")
    return data


# ----------------------------------------------------------------------------------------------
# Houdayer-Hartmann quality (numba kernel)
# ----------------------------------------------------------------------------------------------
@njit(cache=True)
def _hh_kernel(x, y, dy, logL, starts, xc, inv_nu, zeta_nu, b, omega, wlo, whi,
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
        sx = math.exp(inv_nu * lg)
        corr = 1.0 + b * math.exp(-omega * lg)
        sy = math.exp(-zeta_nu * lg) / corr
        first = -1
        last = -1
        for p in range(s0, starts[i + 1]):
            X[p] = (x[p] - xc) * sx
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
def _objective_kernel(x, y, dy, logL, starts, full, corrections, limits, wlo, whi,
                      min_overlap, min_points, out_defined, out_Y, out_dY2):
    """S at ``full`` = (xc, nu, zeta, b, omega), or PENALTY·(1 + distance) outside the guards:
    xc inside the x range of the data, nu and |zeta/nu| and the correction bounded, and enough
    overlap (>= 2 sizes, >= min_overlap of the windowed points and >= min_points terms)."""
    xc, nu, zeta, b, omega = full[0], full[1], full[2], full[3], full[4]
    xlo, xhi = limits[0], limits[1]
    span = xhi - xlo
    v = max(0.0, xlo - xc) / span + max(0.0, xc - xhi) / span
    if nu <= 0.0:
        return PENALTY * (2.0 + abs(nu))
    v += max(0.0, limits[2] - nu) + max(0.0, nu - limits[3])
    v += max(0.0, abs(zeta / nu) - limits[4])
    if corrections:
        v += max(0.0, limits[5] - omega) + max(0.0, omega - limits[6])
        v += max(0.0, abs(b) - limits[7])
        # the factor 1 + b L^-omega must stay clearly positive; its minimum is at L_min for b < 0
        fac = 1.0 + b * math.exp(-max(omega, 1e-3) * limits[8])
        v += max(0.0, 0.05 - fac)
    else:
        b = 0.0
    if v > 0.0:
        return PENALTY * (1.0 + v)
    total, n_terms, n_window, used = _hh_kernel(x, y, dy, logL, starts, xc, 1.0 / nu, zeta / nu,
                                                b, omega, wlo, whi, out_defined, out_Y, out_dY2)
    need = max(min_points, int(math.ceil(min_overlap * n_window)))
    if used < 2 or n_terms < need:
        return PENALTY * (1.0 + max(need - n_terms, 0) / max(need, 1))
    return total / n_terms


# ----------------------------------------------------------------------------------------------
# the problem object: data + which parameters are free + guards
# ----------------------------------------------------------------------------------------------
@dataclass
class Quality:
    S: float
    n_terms: int
    n_window: int
    sizes_used: int


@dataclass
class ScaledData:
    """Scaled data at given parameters, in input order."""
    size: np.ndarray
    x: np.ndarray
    y: np.ndarray
    dy: np.ndarray
    in_window: np.ndarray        # inside the scaled-x window used by the fit
    has_master: np.ndarray       # a master curve from the other sizes exists (counted in S)
    master: np.ndarray           # master curve value Y (nan where undefined)
    master_err: np.ndarray       # its error dY


@dataclass
class Bounds:
    """Guards against the spurious minima of S (DESIGN.md §5)."""
    nu: tuple = (0.05, 20.0)
    zeta_over_nu: float = 10.0          # |zeta/nu| limit
    omega: tuple = (0.3, 5.0)           # smaller omega mimics a shift of zeta (degenerate)
    b: float = 100.0
    min_overlap: float = 0.3            # fraction of windowed points that need a master curve
    min_points: int = 6                 # and at least this many terms


class CollapseProblem:
    """Data + parameterisation of one collapse; ``objective(theta)`` is S over the free parameters.

    ``theta`` is the vector of free parameters in the order of ``free``; fixed ones stay at
    ``values0``. S is replaced by PENALTY (+ a slope that leads back) when a guard is violated.
    """

    def __init__(self, data: FSSData, names, free, values0: dict, x_window=None,
                 bounds: Bounds | None = None):
        self.data = data
        self.names = tuple(names)
        self.free = tuple(free)
        self.values0 = {k: float(v) for k, v in values0.items()}
        self.x_window = None if x_window is None else (float(x_window[0]), float(x_window[1]))
        self.bounds = bounds or Bounds()
        self.logL = np.log(data.size)
        self.xrange = (float(data.x.min()), float(data.x.max()))
        self.corrections = "b" in self.names
        self.min_points = max(self.bounds.min_points, 2 * len(self.free))
        all_names = BASE_PARAMS + CORRECTION_PARAMS
        self._base = np.array([self.values0.get(n, 0.0 if n == "b" else 1.0)
                               for n in all_names], float)
        self._free_idx = np.array([all_names.index(n) for n in self.free], np.int64)
        bd = self.bounds
        # xlo, xhi, nu_lo, nu_hi, |zeta/nu|max, omega_lo, omega_hi, |b|max, log(L_min)
        self._limits = np.array([self.xrange[0], self.xrange[1], bd.nu[0], bd.nu[1],
                                 bd.zeta_over_nu, bd.omega[0], bd.omega[1], bd.b,
                                 float(np.log(data.sizes[0]))])
        self._wlo, self._whi = self.x_window if self.x_window is not None else (-np.inf, np.inf)
        # work buffers of the kernel (per-point master curve); reused between calls
        self._defined = np.zeros(data.n, np.bool_)
        self._Ym = np.full(data.n, np.nan)
        self._dY2 = np.full(data.n, np.nan)

    # parameter bookkeeping
    def params(self, theta) -> dict:
        p = dict(self.values0)
        for name, v in zip(self.free, theta):
            p[name] = float(v)
        return p

    def theta(self, params: dict) -> np.ndarray:
        return np.array([params[n] for n in self.free], float)

    def replace(self, data=None, x_window="same", names=None, free=None, values0=None):
        """A copy with other data / window / parameter set (the variants of the budget)."""
        return CollapseProblem(self.data if data is None else data,
                               self.names if names is None else names,
                               self.free if free is None else free,
                               self.values0 if values0 is None else values0,
                               self.x_window if x_window == "same" else x_window, self.bounds)

    # the objective: guards and S in one compiled call (NM evaluates it ~10^5 times per analysis)
    def _full(self, theta) -> np.ndarray:
        full = self._base.copy()
        full[self._free_idx] = theta
        return full

    def quality(self, p: dict, y=None, details: bool = False):
        d = self.data
        full = np.array([p["xc"], p["nu"], p["zeta"], p.get("b", 0.0), p.get("omega", 1.0)])
        total, n_terms, n_window, used = _hh_kernel(
            d.x, d.y if y is None else y, d.dy, self.logL, d.starts, full[0], 1.0 / full[1],
            full[2] / full[1], full[3], full[4], self._wlo, self._whi, self._defined, self._Ym,
            self._dY2)
        S = total / n_terms if n_terms > 0 else np.inf
        q = Quality(float(S), int(n_terms), int(n_window), int(used))
        if details:
            return q, self._defined.copy(), self._Ym.copy(), self._dY2.copy()
        return q

    def overlap_ok(self, q: Quality) -> bool:
        need = max(self.min_points, math.ceil(self.bounds.min_overlap * q.n_window))
        return q.sizes_used >= 2 and q.n_terms >= need

    def objective(self, theta, y=None) -> float:
        d = self.data
        return _objective_kernel(d.x, d.y if y is None else y, d.dy, self.logL, d.starts,
                                 self._full(theta), self.corrections, self._limits,
                                 self._wlo, self._whi, self.bounds.min_overlap, self.min_points,
                                 self._defined, self._Ym, self._dY2)

    def in_window(self, p: dict) -> np.ndarray:
        """Points (sorted order) whose scaled x lies in the window at parameters ``p``."""
        X = (self.data.x - p["xc"]) * self.data.size ** (1.0 / p["nu"])
        return (X >= self._wlo) & (X <= self._whi)

    def scaled(self, p: dict) -> ScaledData:
        d = self.data
        q, defined, Ym, dY2 = self.quality(p, details=True)
        L = d.size
        corr = 1.0 + p.get("b", 0.0) * L ** (-p.get("omega", 1.0))
        sy = L ** (-p["zeta"] / p["nu"]) / corr
        X = (d.x - p["xc"]) * L ** (1.0 / p["nu"])
        lo, hi = self.x_window if self.x_window is not None else (-np.inf, np.inf)
        # the returned arrays follow the input order of this problem's data
        back = np.argsort(d.order)
        return ScaledData(L[back], X[back], (d.y * sy)[back], (d.dy * np.abs(sy))[back],
                          ((X >= lo) & (X <= hi))[back], defined[back], Ym[back],
                          np.sqrt(dY2)[back])

    # default NM step sizes (in parameter units) and grid axes for the global scan
    def steps(self, p: dict) -> np.ndarray:
        lo, hi = self.xrange
        out = []
        for name in self.free:
            if name == "xc":
                out.append(0.02 * (hi - lo))
            elif name == "nu":
                out.append(0.1 * p["nu"])
            elif name == "zeta":
                out.append(0.1 * max(abs(p["zeta"]), 0.5 * p["nu"]))
            elif name == "b":
                out.append(0.3)
            elif name == "omega":
                out.append(0.3 * p["omega"])
        return np.array(out)


# ----------------------------------------------------------------------------------------------
# optimisation
# ----------------------------------------------------------------------------------------------
def _nelder_mead(fun, theta0, steps, maxfev=3000, restarts=1, xatol=1e-4, fatol=1e-7):
    """Nelder-Mead in units of ``steps`` (parameters of very different scales), with a restart
    from the optimum because NM can stall on a degenerate simplex."""
    theta0 = np.asarray(theta0, float)
    steps = np.where(np.asarray(steps, float) > 0, steps, 1e-3)
    m = len(theta0)
    if m == 0:
        return theta0, float(fun(theta0))

    def f(u):
        return fun(theta0 + u * steps)

    u = np.zeros(m)
    best_u, best_f = u, np.inf
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


def _scan_axes(problem: CollapseProblem, p0: dict, n_xc=21) -> dict:
    """Grid axes for the global scan; nu in log steps, zeta in steps of zeta/nu."""
    d = problem.data
    axes = {}
    if "xc" in problem.free:
        qs = np.quantile(d.x, np.linspace(0.05, 0.95, n_xc))
        axes["xc"] = np.unique(np.append(qs, p0["xc"]))
    if "nu" in problem.free:
        axes["nu"] = p0["nu"] * np.geomspace(0.25, 4.0, 13)
    if "zeta" in problem.free:
        axes["zeta_over_nu"] = p0["zeta"] / p0["nu"] + np.linspace(-2.5, 2.5, 11)
    if "b" in problem.free:
        axes["b"] = np.array([-1.0, -0.5, -0.2, 0.0, 0.2, 0.5, 1.0, 2.0])
    if "omega" in problem.free:
        axes["omega"] = np.array([0.5, 1.0, 1.5, 2.0, 3.0])
    return axes


def _grid_starts(problem: CollapseProblem, p0: dict, n_best=4, axes=None):
    """Evaluate S on the grid and return the best few parameter vectors (distinct cells)."""
    axes = _scan_axes(problem, p0) if axes is None else axes
    names = list(axes)
    results = []
    for combo in itertools.product(*(axes[n] for n in names)):
        p = dict(p0)
        for n, v in zip(names, combo):
            p[n] = v
        if "zeta_over_nu" in p:
            p["zeta"] = p.pop("zeta_over_nu") * p["nu"]
        th = problem.theta(p)
        results.append((problem.objective(th), th))
    results.sort(key=lambda r: r[0])
    return [th for S, th in results[:n_best] if S < PENALTY]


def _fit(problem: CollapseProblem, p0: dict, scan=True, axes=None, y=None, n_best=4):
    """Global scan + Nelder-Mead from the guess and the best grid points; the best optimum.

    ``axes`` restricts the scan to some parameters (others at ``p0``), e.g. only the correction
    parameters of a variant that starts from the central optimum."""
    starts = [problem.theta(p0)]
    if scan and problem.free:
        starts += _grid_starts(problem, p0, n_best=n_best, axes=axes)
    best_th, best_S = None, np.inf
    fun = (lambda th: problem.objective(th, y))
    for th0 in starts:
        th, S = _nelder_mead(fun, th0, problem.steps(problem.params(th0)))
        if S < best_S:
            best_th, best_S = th, S
    return best_th, best_S


@dataclass
class _FitOutcome:
    problem: CollapseProblem     # the problem actually minimised (a window becomes a fixed point set)
    mask: np.ndarray             # its points within the data of the problem that was given
    theta: np.ndarray
    S: float


def _fit_window(problem: CollapseProblem, p0: dict, scan=True, axes=None, n_best=4,
                max_iter=8) -> _FitOutcome | None:
    """Fit, treating a scaled-x window self-consistently.

    With a window the set of points in S changes with the parameters, so S jumps, and a moving
    window lets the optimiser lower S by pushing badly fitting points out (spurious optima with a
    handful of points). So: locate the basin without the window (global scan on all data), then
    refit with the point set frozen (a smooth problem), update the set from the new parameters,
    and repeat until the set no longer changes; the final points are exactly those inside the
    window at the final parameters, as in autoScale. Without ``scan`` the iteration starts at p0.
    """
    if problem.x_window is None:
        th, S = _fit(problem, p0, scan=scan, axes=axes, n_best=n_best)
        if th is None or S >= PENALTY:
            return None
        return _FitOutcome(problem, np.ones(problem.data.n, bool), th, S)
    p = dict(p0)
    if scan:
        base = problem.replace(x_window=None)
        th, S = _fit(base, p0, scan=True, axes=axes, n_best=n_best)
        if th is None or S >= PENALTY:
            return None
        p = base.params(th)
    mask = problem.in_window(p)
    for _ in range(max_iter):
        if mask.sum() < problem.min_points or len(np.unique(problem.data.size[mask])) < 2:
            return None
        fp = problem.replace(data=problem.data.subset(mask), x_window=None)
        th, S = _fit(fp, p, scan=False)
        if S >= PENALTY or len(np.unique(fp.data.size)) < 2:
            return None
        p = fp.params(th)
        new = problem.in_window(p)
        if np.array_equal(new, mask):
            break
        if _ == max_iter - 1:
            break   # the set cycles between near-equivalent choices: keep the last fitted one
        mask = new
    return _FitOutcome(fp, mask, th, S)


def _refit_local(problem: CollapseProblem, theta0, y, steps):
    """Refit from a nearby optimum (bootstrap replicas): one NM run, small simplex."""
    th, S = _nelder_mead(lambda t: problem.objective(t, y), theta0, steps, restarts=1,
                         xatol=2e-3, fatol=1e-5)
    return th if S < PENALTY else np.full(len(theta0), np.nan)


def _s_plus_one(problem: CollapseProblem, theta, S_min, steps) -> dict:
    """autoScale error rule: shift one parameter (others fixed) until S = S_min + 1; larger side."""
    out = {}
    for i, name in enumerate(problem.free):
        def g(delta, i=i):
            th = np.array(theta, float)
            th[i] += delta
            return problem.objective(th) - (S_min + 1.0)
        widths = []
        for sign in (+1.0, -1.0):
            d = 0.01 * steps[i]
            found = False
            for _ in range(60):
                if g(sign * d) > 0:
                    found = True
                    break
                d *= 1.6
            if not found:
                widths.append(np.inf)
                continue
            lo = d / 1.6 if d > 0.01 * steps[i] else 0.0
            try:
                widths.append(abs(brentq(lambda t: g(sign * t), lo, d, xtol=1e-6 * steps[i])))
            except ValueError:
                widths.append(d)
        out[name] = float(max(widths))
    return out


# ----------------------------------------------------------------------------------------------
# result
# ----------------------------------------------------------------------------------------------
@dataclass
class CollapseResult:
    """Outcome of :func:`collapse`. Errors are dicts parameter -> value; fixed parameters have 0."""
    xc: float
    nu: float
    zeta: float
    b: float | None
    omega: float | None
    values: dict
    quality: float                      # Houdayer-Hartmann S at the optimum (≈ 1 for a good collapse)
    n_points: int                       # points with a master curve (terms of S)
    free: tuple
    errors: dict                        # total: stat ⊕ sys
    stat_errors: dict                   # bootstrap std
    sys_errors: dict                    # budget.systematic_errors over ``variants``
    s1_widths: dict                     # autoScale S+1 widths (others fixed), for comparison
    variants: list = field(default_factory=list)        # budget.Variant refits behind sys_errors
    drift: dict = field(default_factory=dict)           # parameter -> budget.Drift versus L_min
    drift_refits: list = field(default_factory=list)    # drop-size refits with < 3 sizes (drift only)
    unidentified: list = field(default_factory=list)    # variant refits pinned at a guard (not in sys)
    bootstrap_values: np.ndarray | None = None           # (n_boot, n_free) refit values
    n_bootstrap_failed: int = 0
    poor_collapse: bool = False         # S_min > POOR_S with >= POOR_MIN_POINTS terms (see _poor_collapse)
    at_bound: list = field(default_factory=list)   # free parameters of the central fit pinned at a guard
    problem: CollapseProblem | None = field(default=None, repr=False)

    def scaled(self) -> ScaledData:
        """Scaled x, y, dy per data point (input order) at the optimum."""
        return self.problem.scaled(self.values)

    def _fmt(self, p: str) -> str:
        v = self.values[p]
        if p not in self.free:
            return f"{p} = {v:.6g} (fixed)"
        return (f"{p} = {v:.6g} ± {self.stat_errors.get(p, np.nan):.2g} (stat) "
                f"± {self.sys_errors.get(p, 0.0):.2g} (sys)")

    def summary(self) -> str:
        lines = ["Finite-size-scaling collapse  y·L^(-zeta/nu) = F((x-xc)·L^(1/nu))"
                 + (" · (1 + b·L^(-omega))" if self.b is not None else ""),
                 f"  sizes: {self.problem.data.sizes.tolist()}, points with master curve: "
                 f"{self.n_points}, quality S = {self.quality:.3f}"]
        if self.poor_collapse:
            lines.append(f"  warning: S_min = {self.quality:.3g} >> 1: the data do not collapse within their "
                         "errors (wrong form, corrections, or underestimated dy); the straight-line master "
                         "curve then biases the parameters and the errors are not reliable")
        if self.at_bound:
            lines.append(f"  warning: {', '.join(self.at_bound)} at the edge of its allowed range: not "
                         "determined by the data (for xc: no fixed critical point inside the data, e.g. "
                         "one that drifts with L; consider a scaled control variable)")
        lines += ["  " + self._fmt(p) + (f"   [total ± {self.errors[p]:.2g}, S+1 width "
                                         f"{self.s1_widths.get(p, np.nan):.2g}]"
                                         if p in self.free else "")
                  for p in self.values]
        for v in self.variants:
            vals = ", ".join(f"{p}={v.values[p]:.5g}" for p in self.free if p in v.values)
            lines.append(f"  variant {v.label!r}: {vals}, S={v.quality:.3g}")
        for v in self.unidentified:
            lines.append(f"  variant {v.label!r} not used: {', '.join(v.at_bound)} at the edge of its "
                         "allowed range (not identified by the data)")
        for p, dr in self.drift.items():
            if dr.monotone:
                lines.append(f"  drift: {p} moves monotonically with L_min; extrapolated "
                             f"{dr.extrapolated:.5g} ± {dr.extrapolated_error:.2g}")
        return "\n".join(lines)

    def plot(self, ax=None):
        """Collapse plot: scaled y versus scaled x per size, annotated with values ± stat ± sys."""
        import matplotlib.pyplot as plt
        if ax is None:
            _, ax = plt.subplots()
        s = self.scaled()
        for L in np.unique(s.size):
            m = s.size == L
            ax.errorbar(s.x[m], s.y[m], s.dy[m], fmt="o", ms=3, capsize=0, label=f"L={L:g}",
                        alpha=1.0 if np.any(s.in_window[m]) else 0.3)
        if self.problem.x_window is not None:
            for xw in self.problem.x_window:
                ax.axvline(xw, color="0.6", ls=":", lw=1)
        ax.set_xlabel(r"$(x-x_c)\,L^{1/\nu}$")
        ax.set_ylabel(r"$y\,L^{-\zeta/\nu}$")
        text = "\n".join(self._fmt(p) for p in self.values) + f"\nS = {self.quality:.3g}"
        ax.text(0.02, 0.98, text, transform=ax.transAxes, va="top", fontsize=8)
        ax.legend(fontsize=8, loc="lower right")
        return ax


# ----------------------------------------------------------------------------------------------
# main entry point
# ----------------------------------------------------------------------------------------------
def _parse_parameters(data: FSSData, xc, nu, zeta, fixed, corrections, omega, b):
    names = BASE_PARAMS + (CORRECTION_PARAMS if corrections else ())
    xs = np.unique(data.x)
    guesses = {"xc": float(np.median(xs)) if xc is None else float(xc),
               "nu": 1.0 if nu is None else float(nu),
               "zeta": 0.0 if zeta is None else float(zeta)}
    if corrections:
        guesses["b"] = 0.0 if b is None else float(b)
        guesses["omega"] = 1.0 if omega is None else float(omega)
    for name, v in guesses.items():
        if not np.isfinite(v):
            raise ValueError(f"{name} guess must be finite, got {v}")
    if guesses["nu"] <= 0:
        raise ValueError(f"nu must be > 0, got {guesses['nu']}")
    if fixed is None:
        fixed = {}
    elif isinstance(fixed, str):
        fixed = {fixed: None}
    elif not isinstance(fixed, dict):
        fixed = {name: None for name in fixed}
    for name, v in fixed.items():
        if name not in names:
            hint = " (set corrections=True to use b, omega)" if name in CORRECTION_PARAMS else ""
            raise ValueError(f"fixed names unknown parameter {name!r}; parameters are "
                             f"{list(names)}{hint}")
        if v is not None:
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"fixed[{name!r}] must be a number, got {v!r}") from None
            if not np.isfinite(v):
                raise ValueError(f"fixed[{name!r}] must be finite, got {v}")
            guesses[name] = v
    if guesses["nu"] <= 0:
        raise ValueError(f"fixed nu must be > 0, got {guesses['nu']}")
    free = tuple(n for n in names if n not in fixed)
    return names, free, guesses


def _check_window(x_window):
    if x_window is None:
        return None
    try:
        lo, hi = (float(v) for v in x_window)
    except (TypeError, ValueError):
        raise ValueError(f"x_window must be a pair (lo, hi) of numbers, got {x_window!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo >= hi:
        raise ValueError(f"x_window must satisfy lo < hi (finite), got {x_window!r}")
    return lo, hi


def _scale_window(window, factor):
    """Narrow/widen a scaled-x window about x = 0 (the critical point) if inside it, else its centre."""
    lo, hi = window
    c = 0.0 if lo < 0 < hi else 0.5 * (lo + hi)
    return c + factor * (lo - c), c + factor * (hi - c)


def _bootstrap_fits(problem: CollapseProblem, outcome: _FitOutcome, noise, steps):
    """Refit every replica y + noise[b] (noise over all points of ``problem``) from the optimum.

    With a window the point set is re-derived self-consistently for each replica, as for the
    data, because which points sit inside the window is itself a source of noise."""
    y = problem.data.y
    theta_c = outcome.theta
    out = np.full((len(noise), len(theta_c)), np.nan)
    for i, e in enumerate(noise):
        yb = y + e
        if problem.x_window is None:
            out[i] = _refit_local(problem, theta_c, yb, steps)
            continue
        mask, fp, th = outcome.mask, outcome.problem, theta_c
        for it in range(4):
            if it > 0:
                if mask.sum() < problem.min_points or \
                        len(np.unique(problem.data.size[mask])) < 2:
                    th = np.full(len(theta_c), np.nan)
                    break
                fp = problem.replace(data=problem.data.subset(mask), x_window=None)
            th = _refit_local(fp, th, yb[mask], steps)
            if not np.all(np.isfinite(th)):
                break
            new = problem.in_window(problem.params(th))
            if np.array_equal(new, mask):
                break
            mask = new
        out[i] = th
    return out


def _robust_std(samples):
    """Bootstrap std over successful refits (ddof=1)."""
    s = samples[np.all(np.isfinite(samples), axis=1)]
    if len(s) < 2:
        return np.full(samples.shape[1], np.nan)
    return np.std(s, axis=0, ddof=1)


@validated                  # arguments checked first: analysis/_validate.py
def collapse(size, x, y, dy, xc=None, nu=None, zeta=None, x_window=None, fixed=None,
             corrections=False, omega=None, b=None, bootstrap=200, systematics=True, seed=0,
             bounds: Bounds | None = None, s1=True) -> CollapseResult:
    """Finite-size-scaling data collapse ``y·L^(-zeta/nu) = F((x - xc)·L^(1/nu))``.

    Parameters
    ----------
    size, x, y, dy : 1-D arrays, one entry per data point (long format, any grids per size).
    xc, nu, zeta : initial guesses (None: middle of the x data, 1, 0). A global grid scan around
        them precedes the local search, so they need not be close.
    x_window : (lo, hi) in *scaled* x; only points inside enter S (re-evaluated per parameter set).
    fixed : dict name -> value (or a list of names, fixed at their guesses), e.g. {"zeta": 0}.
    corrections : add the factor (1 + b·L^(-omega)) with free b, omega (guesses ``b``, ``omega``;
        fix omega through ``fixed``).
    bootstrap : number of parametric bootstrap replicas (y + dy·N(0,1), refit from the optimum).
    systematics : refit the variants (sizes dropped, window x0.75/x1.5, corrections with omega = 1 unless ``omega`` is given) for sys errors; refits pinned at a guard are reported in ``unidentified``, not used.
    seed : seed of the bootstrap noise (results are reproducible).
    bounds : :class:`Bounds`, guards against spurious minima (nu range, |zeta/nu|, overlap).

    Returns
    -------
    CollapseResult with values, stat/sys/total errors, S+1 widths, variants and drift.

    Notes
    -----
    The variants reuse the bootstrap noise of the central fit (paired replicas). Each variant's
    ``stat_errors`` is sqrt(stat_central² + var(variant − central)) with the variance of the
    *difference* taken over the paired replicas, so ``budget.systematic_errors`` subtracts exactly
    the deviation that noise alone produces (works for subsets and supersets of the data alike).
    """
    data = validate_long_data(size, x, y, dy)
    window = _check_window(x_window)
    if not isinstance(bootstrap, (int, np.integer)) or bootstrap < 0 or bootstrap == 1:
        raise ValueError(f"bootstrap must be 0 or an integer >= 2, got {bootstrap!r}")
    names, free, p0 = _parse_parameters(data, xc, nu, zeta, fixed, corrections, omega, b)
    problem = CollapseProblem(data, names, free, p0, window, bounds)
    if not free:
        raise ValueError("fixed fixes every parameter; nothing to fit")

    out = _fit_window(problem, p0)
    if out is None:
        raise ValueError("no parameter set gives enough overlap between sizes (need >= 2 sizes "
                         f"and >= {problem.bounds.min_overlap:.0%} of the windowed points with a "
                         "master curve); check x_window and the data ranges")
    fit_problem, theta_c, S_c = out.problem, out.theta, out.S
    values = problem.params(theta_c)
    q = fit_problem.quality(values)
    steps = problem.steps(values)
    s1_widths = _s_plus_one(fit_problem, theta_c, S_c, steps) if s1 else {}

    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((bootstrap, data.n)) * data.dy
    # local refits: a simplex of ~ the S+1 width (capped by the default step) fits the replicas
    local_steps = np.array([min(steps[i], s1_widths.get(n, np.inf)) if s1 else steps[i]
                            for i, n in enumerate(free)])
    local_steps = np.where(np.isfinite(local_steps) & (local_steps > 0), local_steps, steps)
    boot = _bootstrap_fits(problem, out, noise, local_steps) if bootstrap else \
        np.empty((0, len(free)))
    n_failed = int(np.sum(~np.all(np.isfinite(boot), axis=1))) if bootstrap else 0
    sd = _robust_std(boot) if bootstrap else np.zeros(len(free))
    stat = {n: (float(sd[free.index(n)]) if n in free else 0.0) for n in names}

    variants, drift_refits, unidentified, drift = [], [], [], {}
    if systematics:
        variants, drift_refits, unidentified = _variants(problem, values, q, stat, noise, boot, corrections,
                                           omega, local_steps)
        drift = _drift(problem, values, stat, variants, drift_refits)
    sys_err = budget.systematic_errors(values, stat, variants)
    total = budget.total_errors(stat, sys_err)
    total = {n: total.get(n, 0.0) for n in names}

    return CollapseResult(
        xc=values["xc"], nu=values["nu"], zeta=values["zeta"], b=values.get("b"),
        omega=values.get("omega"), values=values, quality=q.S, n_points=q.n_terms, free=free,
        errors=total, stat_errors=stat, sys_errors={n: sys_err.get(n, 0.0) for n in names},
        s1_widths=s1_widths, variants=variants, drift=drift, drift_refits=drift_refits,
        unidentified=unidentified, poor_collapse=_poor_collapse(q.S, q.n_terms),
        at_bound=_at_bound(problem, values), bootstrap_values=boot, n_bootstrap_failed=n_failed,
        problem=problem)


# ----------------------------------------------------------------------------------------------
# systematics: variants and drift
# ----------------------------------------------------------------------------------------------
@dataclass
class _VariantSpec:
    label: str
    problem: CollapseProblem
    mask: np.ndarray             # which central data points it uses (for the paired noise)
    L_min: float
    for_sys: bool = True         # False: drift-only (fewer than 3 sizes remain)


def _variant_specs(problem: CollapseProblem, values, q, corrections, omega):
    d = problem.data
    specs = []
    # 1. drop the smallest sizes (sys while >= 3 sizes remain; down to 2 sizes for the drift)
    for k in range(1, len(d.sizes) - 1):
        keep = d.size >= d.sizes[k]
        specs.append(_VariantSpec(f"drop L<={d.sizes[k - 1]:g}",
                                  problem.replace(data=d.subset(keep)), keep,
                                  float(d.sizes[k]), for_sys=len(d.sizes) - k >= 3))
    # 2. scaled-x window narrowed (and widened if the user chose one)
    all_pts = np.ones(d.n, bool)
    if problem.x_window is not None:
        ref = problem.x_window
    else:
        # default window: the scaled-x range of the points that have a master curve
        s = problem.scaled(values)
        ref = (float(s.x[s.has_master].min()), float(s.x[s.has_master].max()))
    specs.append(_VariantSpec(f"window x{WINDOW_NARROW:g}",
                              problem.replace(x_window=_scale_window(ref, WINDOW_NARROW)),
                              all_pts, float(d.sizes[0])))
    if problem.x_window is not None:
        specs.append(_VariantSpec("window x1.5",
                                  problem.replace(x_window=_scale_window(ref, 1.5)),
                                  all_pts, float(d.sizes[0])))
    # 3. correction to scaling (toggled): added when >= 4 sizes, removed if the fit has it
    if corrections:
        names = BASE_PARAMS
        specs.append(_VariantSpec("no corrections", problem.replace(
            names=names, free=tuple(n for n in problem.free if n in names),
            values0={n: values[n] for n in names}), all_pts, float(d.sizes[0])))
    elif len(d.sizes) >= 4:
        names = BASE_PARAMS + CORRECTION_PARAMS
        v0 = dict(values, b=0.0, omega=CORRECTION_OMEGA if omega is None else float(omega))
        free = problem.free + ("b",)
        specs.append(_VariantSpec("corrections", problem.replace(names=names, free=free,
                                                                 values0=v0),
                                  all_pts, float(d.sizes[0])))
    return specs


def _variants(problem, values, q, stat, noise, boot, corrections, omega, local_steps):
    """Refit each variant at the data and on the paired bootstrap replicas."""
    variants, drift_refits, unidentified = [], [], []
    free = problem.free
    for spec in _variant_specs(problem, values, q, corrections, omega):
        vp = spec.problem
        p0 = {n: values.get(n, vp.values0[n]) for n in vp.names}
        # start from the central optimum; a variant with correction parameters also scans them
        new = [n for n in vp.free if n in CORRECTION_PARAMS and n not in problem.free]
        axes = {n: a for n, a in _scan_axes(vp, p0).items() if n in new}
        vout = _fit_window(vp, p0, scan=bool(axes), axes=axes, n_best=3)
        if vout is None:
            continue
        th = vout.theta
        v_values = vp.params(th)
        vq = vout.problem.quality(v_values)
        at_bound = _at_bound(vp, v_values)
        if at_bound:
            # a refit pinned at a guard has not found an optimum: its parameters are not
            # identified by the data and its shift measures the guard, not a systematic
            var = budget.Variant(spec.label, {n: v_values[n] for n in vp.names}, {}, vq.S, vq.n_terms)
            var.at_bound = at_bound
            unidentified.append(var)
            continue
        v_steps = np.array([local_steps[free.index(n)] if n in free else s
                            for n, s in zip(vp.free, vp.steps(v_values))])
        stat_v, raw_v = {}, {}
        if len(noise):
            vb = _bootstrap_fits(vp, vout, noise[:, spec.mask], v_steps)
            for n in free:
                if n not in vp.free:
                    continue        # e.g. b in the "no corrections" variant
                j = vp.free.index(n)
                diff = vb[:, j] - boot[:, free.index(n)]
                ok = np.isfinite(diff)
                d_sd = float(np.std(diff[ok], ddof=1)) if ok.sum() > 1 else np.nan
                stat_v[n] = float(np.hypot(stat[n], d_sd))
                raw_v[n] = float(np.std(vb[np.isfinite(vb[:, j]), j], ddof=1))
        var = budget.Variant(spec.label, {n: v_values[n] for n in vp.names}, stat_v, vq.S,
                             vq.n_terms, nested=True)
        var.raw_stat_errors = raw_v     # plain bootstrap std of this refit (used for the drift)
        var.L_min = spec.L_min
        (variants if spec.for_sys else drift_refits).append(var)
    return variants, drift_refits, unidentified


POOR_S = 3.0            # S_min of a good collapse is ~1; its spread for n terms is ~sqrt(2/n)
POOR_MIN_POINTS = 20    # with >= 20 terms, S > 3 is far beyond that noise


def _poor_collapse(S: float, n_terms: int) -> bool:
    """S_min >> 1 with enough terms: the residuals are not noise, so the local straight-line
    master curve (and everything fitted through it) is biased."""
    return bool(n_terms >= POOR_MIN_POINTS and S > POOR_S)


def _at_bound(problem: CollapseProblem, p: dict, rtol=0.02) -> list:
    """Free parameters of ``problem`` that sit at (within rtol of) a guard of ``Bounds``."""
    bd, out = problem.bounds, []
    for n in problem.free:
        v = p[n]
        if n == "nu" and (v <= bd.nu[0] * (1 + rtol) or v >= bd.nu[1] * (1 - rtol)):
            out.append(n)
        elif n == "zeta" and abs(v / p["nu"]) >= bd.zeta_over_nu * (1 - rtol):
            out.append(n)
        elif n == "b" and abs(v) >= bd.b * (1 - rtol):
            out.append(n)
        elif n == "omega" and (v <= bd.omega[0] * (1 + rtol) or v >= bd.omega[1] * (1 - rtol)):
            out.append(n)
        elif n == "xc":       # xc is kept inside the data's x range
            lo, hi = float(problem.data.x.min()), float(problem.data.x.max())
            if v <= lo + rtol * (hi - lo) or v >= hi - rtol * (hi - lo):
                out.append(n)
    return out


def _drift(problem, values, stat, variants, drift_refits) -> dict:
    drops = sorted((v for v in variants + drift_refits if v.label.startswith("drop")),
                   key=lambda v: v.L_min)
    out = {}
    for n in problem.free:
        L = [float(problem.data.sizes[0])] + [v.L_min for v in drops]
        vals = [values[n]] + [v.values[n] for v in drops]
        errs = [stat[n]] + [v.raw_stat_errors.get(n, np.nan) for v in drops]
        out[n] = budget.drift(n, L, vals, errs, nu_hint=values["nu"])
    return out
