"""The collapse problem: data, which parameters are free, the guards, and S as a function of the
free parameters (ScalingCollapse.jl's ScalingProblem).

Scaling form (SCIENCE.md 5.1, DESIGN.md 5)::

    y L^(-zeta/nu) = F((x - xc) L^(1/nu)) (1 + b L^(-omega))      (b, omega only with corrections)

and, in the correction-to-scaling variants of the systematic error, the scaling variable
(x - xc) L^(1/nu) (1 + c L^-omega) + s L^-omega.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .data import FSSData
from .quality import PENALTY, Quality, grid_kernel, hh_kernel, objective_kernel

__all__ = ["BASE_PARAMS", "CORRECTION_PARAMS", "VARIANT_PARAMS", "ALL_PARAMS", "Bounds", "ScaledData", "CollapseProblem",
           "parse_parameters", "check_window", "scale_window"]

BASE_PARAMS = ("xc", "nu", "zeta")
CORRECTION_PARAMS = ("b", "omega")       # corrections=True: the amplitude factor (1 + b L^-omega)
VARIANT_PARAMS = ("c", "s")              # scale and shift of the scaling variable (variants only)
ALL_PARAMS = BASE_PARAMS + CORRECTION_PARAMS + VARIANT_PARAMS
DEFAULTS = {"b": 0.0, "omega": 1.0, "c": 0.0, "s": 0.0}


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
    c: float = 10.0                     # |c|: scale correction of the scaling variable
    s: float = 20.0                     # |s|: shift of the scaling variable, in scaled units
    min_overlap: float = 0.5            # fraction of windowed points that need a master curve: a
                                        # "collapse" of a third of the data (a tail) is no collapse
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
        self.corrections = any(n in self.names for n in ("b", "c", "s"))
        self.min_points = max(self.bounds.min_points, 2 * len(self.free))
        self._base = np.array([self.values0.get(n, DEFAULTS.get(n, 1.0)) for n in ALL_PARAMS], float)
        self._free_idx = np.array([ALL_PARAMS.index(n) for n in self.free], np.int64)
        bd = self.bounds
        # xlo, xhi, nu_lo, nu_hi, |zeta/nu|max, omega_lo, omega_hi, |b|max, log(L_min), |c|max, |s|max
        self._limits = np.array([self.xrange[0], self.xrange[1], bd.nu[0], bd.nu[1],
                                 bd.zeta_over_nu, bd.omega[0], bd.omega[1], bd.b,
                                 float(np.log(data.sizes[0])), bd.c, bd.s])
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
        full = np.array([p[n] if n in p else DEFAULTS[n] for n in ALL_PARAMS])
        total, n_terms, n_window, used = hh_kernel(
            d.x, d.y if y is None else y, d.dy, self.logL, d.starts, full[0], 1.0 / full[1],
            full[2] / full[1], full[3], full[4], full[5], full[6], self._wlo, self._whi,
            self._defined, self._Ym, self._dY2)
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
        return objective_kernel(d.x, d.y if y is None else y, d.dy, self.logL, d.starts,
                                 self._full(theta), self.corrections, self._limits,
                                 self._wlo, self._whi, self.bounds.min_overlap, self.min_points,
                                 self._defined, self._Ym, self._dY2)

    def objectives(self, thetas, y=None) -> np.ndarray:
        """objective at every row of ``thetas`` (the global scan), in one compiled call."""
        d = self.data
        grid = np.repeat(self._base[None], len(thetas), axis=0)
        grid[:, self._free_idx] = np.asarray(thetas, float)
        return grid_kernel(d.x, d.y if y is None else y, d.dy, self.logL, d.starts, grid,
                           self.corrections, self._limits, self._wlo, self._whi,
                           self.bounds.min_overlap, self.min_points, self._defined, self._Ym,
                           self._dY2)

    def scaled_x(self, p: dict) -> np.ndarray:
        """The scaling variable of every point (sorted order) at parameters ``p``."""
        L = self.data.size
        lw = L ** (-p.get("omega", 1.0))
        return (self.data.x - p["xc"]) * L ** (1.0 / p["nu"]) * (1.0 + p.get("c", 0.0) * lw) \
            + p.get("s", 0.0) * lw

    def in_window(self, p: dict) -> np.ndarray:
        """Points (sorted order) whose scaled x lies in the window at parameters ``p``."""
        X = self.scaled_x(p)
        return (X >= self._wlo) & (X <= self._whi)

    def scaled(self, p: dict) -> ScaledData:
        d = self.data
        q, defined, Ym, dY2 = self.quality(p, details=True)
        L = d.size
        corr = 1.0 + p.get("b", 0.0) * L ** (-p.get("omega", 1.0))
        sy = L ** (-p["zeta"] / p["nu"]) / corr
        X = self.scaled_x(p)
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
            elif name in ("c", "s"):
                out.append(0.3)
        return np.array(out)


def parse_parameters(data: FSSData, xc, nu, zeta, fixed, corrections, omega, b):
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


def check_window(x_window):
    if x_window is None:
        return None
    try:
        lo, hi = (float(v) for v in x_window)
    except (TypeError, ValueError):
        raise ValueError(f"x_window must be a pair (lo, hi) of numbers, got {x_window!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo >= hi:
        raise ValueError(f"x_window must satisfy lo < hi (finite), got {x_window!r}")
    return lo, hi


def scale_window(window, factor):
    """Narrow/widen a scaled-x window about x = 0 (the critical point) if inside it, else its centre."""
    lo, hi = window
    c = 0.0 if lo < 0 < hi else 0.5 * (lo + hi)
    return c + factor * (lo - c), c + factor * (hi - c)
