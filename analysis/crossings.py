"""Crossing points of curves y_L(x) for consecutive sizes, extrapolated to infinite size.

For an observable of zero scaling dimension (Binder cumulant, crossing probability) the curves of
different sizes cross near x_c; the crossing of sizes (L1, L2) drifts as x*(L) = x_inf + a·L^-omega
with L the pair's effective size sqrt(L1·L2). The slope at the crossing grows as L^(1/nu).

Errors: parametric bootstrap (y -> y + dy·N(0,1)) of the whole chain (local fits -> crossings ->
extrapolation), so correlations between pairs sharing a size are kept. Systematics: refits with
another extrapolation form (omega fixed <-> free) and without the smallest pair (or size), on the
same bootstrap replicas, through :mod:`analysis.budget`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize_scalar

from . import budget
from .fss import validate_long_data
from ._validate import validated

__all__ = ["crossings", "CrossingResult", "CrossingPairs"]


# ----------------------------------------------------------------------------------------------
# local polynomial fits and the crossing of one pair
# ----------------------------------------------------------------------------------------------
def _nearest(x, x0, n):
    """Indices of the n points of x nearest to x0 (sorted)."""
    return np.sort(np.argsort(np.abs(x - x0), kind="stable")[:n])


def _polyfit(x, y, dy, x0, degree):
    """Weighted polynomial in (x - x0); coefficients highest power first."""
    deg = max(1, min(degree, len(x) - 2))      # keep >= 1 degree of freedom for the noise
    return np.polyfit(x - x0, y, deg, w=1.0 / dy)


def _root_near(c1, c2, x0, lo, hi):
    """Root of p2 - p1 (polynomials in x - x0) nearest to x0 inside [lo, hi], else nan."""
    n = max(len(c1), len(c2))
    d = np.pad(c2, (n - len(c2), 0)) - np.pad(c1, (n - len(c1), 0))
    r = np.roots(d) if np.any(d[:-1] != 0) else np.array([])
    r = r[np.abs(r.imag) < 1e-12].real + x0
    r = r[(r >= lo) & (r <= hi)]
    return float(r[np.argmin(np.abs(r - x0))]) if len(r) else np.nan


@dataclass
class _PairSetup:
    """The point selections of one pair, chosen once on the data and kept for every replica."""
    i1: np.ndarray               # indices (into the sorted data) of size L1 used in the local fit
    i2: np.ndarray
    x0: float                    # expansion point (the linear-interpolation crossing)
    lo: float
    hi: float


def _setup_pair(x1, y1, x2, y2, n_local):
    """Find the crossing by linear interpolation on the overlap; None if the curves do not cross."""
    lo, hi = max(x1.min(), x2.min()), min(x1.max(), x2.max())
    if hi <= lo:
        return None
    grid = np.unique(np.concatenate([x1, x2, [lo, hi]]))
    grid = grid[(grid >= lo) & (grid <= hi)]
    d = np.interp(grid, x2, y2) - np.interp(grid, x1, y1)
    sign_change = np.nonzero(np.sign(d[:-1]) * np.sign(d[1:]) <= 0)[0]
    if len(sign_change) == 0:
        return None
    # several crossings (noise on nearly touching curves): take the steepest, the best defined
    k = sign_change[np.argmax(np.abs(d[sign_change + 1] - d[sign_change]) /
                              np.maximum(grid[sign_change + 1] - grid[sign_change], 1e-300))]
    g0, g1, d0, d1 = grid[k], grid[k + 1], d[k], d[k + 1]
    x0 = g0 if d1 == d0 else g0 - d0 * (g1 - g0) / (d1 - d0)
    i1, i2 = _nearest(x1, x0, n_local), _nearest(x2, x0, n_local)
    span_lo = max(x1[i1].min(), x2[i2].min())
    span_hi = min(x1[i1].max(), x2[i2].max())
    return _PairSetup(i1, i2, float(x0), float(span_lo), float(span_hi))


def _pair_crossing(setup, x1, y1, dy1, x2, y2, dy2, degree):
    """x*, y*, slope of curve 1 and of curve 2 at x* from the local polynomial fits."""
    c1 = _polyfit(x1[setup.i1], y1[setup.i1], dy1[setup.i1], setup.x0, degree)
    c2 = _polyfit(x2[setup.i2], y2[setup.i2], dy2[setup.i2], setup.x0, degree)
    xs = _root_near(c1, c2, setup.x0, setup.lo, setup.hi)
    if not np.isfinite(xs):
        return np.full(4, np.nan)
    t = xs - setup.x0
    return np.array([xs, np.polyval(c1, t), np.polyval(np.polyder(c1), t),
                     np.polyval(np.polyder(c2), t)])


# ----------------------------------------------------------------------------------------------
# extrapolation x*(L) = x_inf + a L^-omega and nu from the slopes
# ----------------------------------------------------------------------------------------------
def _linear_fit(L, xs, w, omega):
    A = np.column_stack([np.ones_like(L), L ** -omega])
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(A * sw[:, None], xs * sw, rcond=None)
    chi2 = float(np.sum(w * (xs - A @ coef) ** 2))
    return coef, chi2


def _extrapolate(L, xs, w, omega, omega_bounds=(0.2, 6.0)):
    """x_inf and the omega used; omega=None fits it (needs >= 3 points). One point: x_inf = x*."""
    ok = np.isfinite(xs)
    L, xs, w = L[ok], xs[ok], w[ok]
    if len(xs) == 0:
        return np.nan, np.nan
    if len(xs) == 1:
        return float(xs[0]), np.nan
    if omega is None:
        if len(xs) < 3:
            return np.nan, np.nan
        res = minimize_scalar(lambda om: _linear_fit(L, xs, w, om)[1], bounds=omega_bounds,
                              method="bounded")
        omega = float(res.x)
    coef, _ = _linear_fit(L, xs, w, omega)
    return float(coef[0]), float(omega)


def _slopes_at(data, x_at, y, n_local, degree):
    """d y_L / dx at x_at for every size from a local polynomial fit (nan if x_at outside)."""
    out = np.full(len(data.sizes), np.nan)
    if not np.isfinite(x_at):
        return out
    for k in range(len(data.sizes)):
        a, b = data.starts[k], data.starts[k + 1]
        xk = data.x[a:b]
        if x_at < xk.min() or x_at > xk.max():
            continue
        i = _nearest(xk, x_at, n_local)
        c = _polyfit(xk[i], y[a:b][i], data.dy[a:b][i], x_at, degree)
        out[k] = np.polyval(np.polyder(c), 0.0)
    return out


def _nu_from_slopes(sizes, slopes):
    """1/nu = slope of ln|dy/dx| versus ln L (unweighted; errors come from the bootstrap)."""
    ok = np.isfinite(slopes) & (slopes != 0)
    if ok.sum() < 3:
        return np.nan
    inv_nu = np.polyfit(np.log(sizes[ok]), np.log(np.abs(slopes[ok])), 1)[0]
    return float(1.0 / inv_nu) if inv_nu > 0 else np.nan


# ----------------------------------------------------------------------------------------------
# result
# ----------------------------------------------------------------------------------------------
@dataclass
class CrossingPairs:
    """One row per pair of consecutive sizes."""
    L1: np.ndarray
    L2: np.ndarray
    L_eff: np.ndarray            # sqrt(L1 L2), the size used in the extrapolation
    x_star: np.ndarray
    x_star_err: np.ndarray
    y_star: np.ndarray
    y_star_err: np.ndarray
    nu: np.ndarray               # ln(L2/L1) / ln(slope2/slope1) at the crossing
    nu_err: np.ndarray


@dataclass
class CrossingResult:
    pairs: CrossingPairs
    x_inf: float
    nu: float                    # from the slopes at x_inf (nan with < 3 sizes)
    omega: float                 # exponent used in the extrapolation
    omega_fitted: bool
    values: dict
    errors: dict
    stat_errors: dict
    sys_errors: dict
    variants: list = field(default_factory=list)
    n_bootstrap_failed: int = 0

    def summary(self) -> str:
        p = self.pairs
        lines = ["Crossings of consecutive sizes (x*, y*) and extrapolation x* = x_inf + a L^-omega"]
        for k in range(len(p.L1)):
            lines.append(f"  L={p.L1[k]:g}/{p.L2[k]:g}: x* = {p.x_star[k]:.6g} ± "
                         f"{p.x_star_err[k]:.2g}, y* = {p.y_star[k]:.4g} ± {p.y_star_err[k]:.2g}, "
                         f"nu = {p.nu[k]:.3g} ± {p.nu_err[k]:.2g}")
        for name in self.values:
            lines.append(f"  {name} = {self.values[name]:.6g} ± {self.stat_errors[name]:.2g} "
                         f"(stat) ± {self.sys_errors[name]:.2g} (sys)")
        lines.append(f"  omega = {self.omega:.3g} ({'fitted' if self.omega_fitted else 'fixed'})")
        for v in self.variants:
            lines.append(f"  variant {v.label!r}: " +
                         ", ".join(f"{k}={val:.6g}" for k, val in v.values.items()))
        return "\n".join(lines)

    def plot(self, ax=None):
        """x* versus L_eff^-omega with the extrapolation to L = infinity."""
        import matplotlib.pyplot as plt
        if ax is None:
            _, ax = plt.subplots()
        p = self.pairs
        om = self.omega if np.isfinite(self.omega) else 1.0
        ax.errorbar(p.L_eff ** -om, p.x_star, p.x_star_err, fmt="o", label="pair crossings")
        ax.errorbar([0.0], [self.x_inf], [self.errors["x_inf"]], fmt="s", color="C3",
                    label=f"x_inf = {self.x_inf:.5g} ± {self.stat_errors['x_inf']:.2g} (stat) "
                          f"± {self.sys_errors['x_inf']:.2g} (sys)")
        ax.set_xlabel(rf"$L_{{\rm eff}}^{{-{om:.3g}}}$")
        ax.set_ylabel("x*")
        ax.legend(fontsize=8)
        return ax


# ----------------------------------------------------------------------------------------------
# main entry point
# ----------------------------------------------------------------------------------------------
def _analyse(data, y, setups, degree, n_local, omega, drop_pairs=0, drop_sizes=0):
    """Crossings, x_inf and nu for one data realisation ``y`` (sorted order)."""
    n_pairs = len(setups)
    rows = np.full((n_pairs, 4), np.nan)
    for k, st in enumerate(setups):
        if st is None:
            continue
        a1, b1 = data.starts[k], data.starts[k + 1]
        a2, b2 = data.starts[k + 1], data.starts[k + 2]
        rows[k] = _pair_crossing(st, data.x[a1:b1], y[a1:b1], data.dy[a1:b1],
                                 data.x[a2:b2], y[a2:b2], data.dy[a2:b2], degree)
    return rows


@validated                  # arguments checked first: analysis/_validate.py
def crossings(size, x, y, dy, omega=None, nu=None, n_local=7, degree=3, bootstrap=400,
              systematics=True, seed=0) -> CrossingResult:
    """Pairwise crossings of y_L(x) for consecutive sizes, extrapolated to L -> infinity.

    Parameters
    ----------
    size, x, y, dy : long-format 1-D arrays (any x grid per size; >= 3 points per size).
    omega : exponent of the extrapolation x*(L) = x_inf + a L^-omega. None: fitted when >= 4
        pairs cross, else 1/nu if ``nu`` is given, else 1.
    nu : known or guessed nu, only used for the default omega.
    n_local, degree : points per curve and polynomial degree of the local fits at the crossing
        (cubic by default: a quadratic through points on one side of an inflection point is
        biased by the cubic term, by about the statistical error on synthetic logistic data).
    bootstrap : parametric bootstrap replicas (y + dy·N(0,1)) for all errors.
    systematics : refit with the other extrapolation form and without the smallest pair/size.

    Returns
    -------
    CrossingResult with ``pairs`` (per-pair x*, y*, nu with errors), ``x_inf``, ``nu`` (slopes),
    and values/errors/stat_errors/sys_errors dicts over ("x_inf", "nu").
    """
    data = validate_long_data(size, x, y, dy, min_points_per_size=3)
    if not isinstance(n_local, (int, np.integer)) or n_local < 3:
        raise ValueError(f"n_local must be an integer >= 3, got {n_local!r}")
    if not isinstance(degree, (int, np.integer)) or degree < 1:
        raise ValueError(f"degree must be an integer >= 1, got {degree!r}")
    if not isinstance(bootstrap, (int, np.integer)) or bootstrap < 2:
        raise ValueError(f"bootstrap must be an integer >= 2, got {bootstrap!r}")
    for name, v in (("omega", omega), ("nu", nu)):
        if v is not None and not (np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive number, got {v!r}")

    sizes = data.sizes
    n_pairs = len(sizes) - 1
    setups = []
    for k in range(n_pairs):
        a1, b1, a2, b2 = data.starts[k], data.starts[k + 1], data.starts[k + 1], data.starts[k + 2]
        setups.append(_setup_pair(data.x[a1:b1], data.y[a1:b1], data.x[a2:b2], data.y[a2:b2],
                                  n_local))
    if all(s is None for s in setups):
        raise ValueError("no pair of consecutive sizes crosses within their common x range")
    L1, L2 = sizes[:-1], sizes[1:]
    L_eff = np.sqrt(L1 * L2)

    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((bootstrap, data.n)) * data.dy
    central = _analyse(data, data.y, setups, degree, n_local, omega)
    reps = np.array([_analyse(data, data.y + e, setups, degree, n_local, omega) for e in noise])
    # a replica in which a pair stops crossing is dropped for that pair only
    x_err = np.nanstd(reps[:, :, 0], axis=0, ddof=1)
    y_err = np.nanstd(reps[:, :, 1], axis=0, ddof=1)
    inv_nu_pair = np.log(np.abs(reps[:, :, 3] / reps[:, :, 2])) / np.log(L2 / L1)
    nu_pair_c = np.log(L2 / L1) / np.log(np.abs(central[:, 3] / central[:, 2]))
    nu_pair_err = np.nanstd(1.0 / inv_nu_pair, axis=0, ddof=1)

    valid = np.isfinite(central[:, 0]) & np.isfinite(x_err) & (x_err > 0)
    n_valid = int(valid.sum())
    omega_free = omega is None and n_valid >= 4
    omega0 = None if omega_free else (omega if omega is not None else
                                      (1.0 / nu if nu is not None else 1.0))
    w = np.where(valid, 1.0 / np.where(valid, x_err, 1.0) ** 2, 0.0)

    def chain(rows, y_used, omega_used, drop_pair=False, drop_size=0):
        """x_inf and nu for one realisation; the variants drop the smallest pair / sizes."""
        keep = valid.copy()
        if drop_pair:
            keep[np.argmax(keep)] = False
        xs = np.where(keep, rows[:, 0], np.nan)
        x_inf, om = _extrapolate(L_eff, xs, w, omega_used)
        sl = _slopes_at(data, x_inf, y_used, n_local, degree)
        sl[:drop_size] = np.nan
        return x_inf, _nu_from_slopes(sizes, sl), om

    x_inf, nu_c, om_c = chain(central, data.y, omega0)
    boot = np.array([chain(reps[b], data.y + noise[b], omega0)[:2] for b in range(bootstrap)])
    ok = np.all(np.isfinite(boot), axis=1) if len(sizes) >= 3 else np.isfinite(boot[:, 0])
    n_failed = int(np.sum(~ok))
    values = {"x_inf": x_inf, "nu": nu_c}
    stat = {"x_inf": float(np.nanstd(boot[:, 0], ddof=1)),
            "nu": float(np.nanstd(boot[:, 1], ddof=1)) if np.isfinite(nu_c) else np.nan}

    variants = []
    if systematics:
        specs = []
        if n_valid >= 3:
            specs.append(("drop smallest pair", dict(omega_used=omega0, drop_pair=True)))
            if omega_free:
                specs.append((f"omega fixed {1.0 / nu if nu else 1.0:.3g}",
                               dict(omega_used=1.0 / nu if nu else 1.0)))
            else:
                specs.append(("omega free", dict(omega_used=None)))
        # as in collapse: drop the smallest sizes while >= 3 remain for the slope fit, since
        # corrections to scaling bias the small sizes' slopes most
        for n_drop in range(1, len(sizes) - 2):
            label = "drop smallest size (nu)" if n_drop == 1 else f"drop {n_drop} smallest sizes (nu)"
            specs.append((label, dict(omega_used=omega0, drop_size=n_drop)))
        for label, kw in specs:
            v_c = chain(central, data.y, **kw)[:2]
            v_b = np.array([chain(reps[b], data.y + noise[b], **kw)[:2]
                            for b in range(bootstrap)])
            v_vals, v_stat = {}, {}
            for j, name in enumerate(("x_inf", "nu")):
                if not np.isfinite(v_c[j]) or not np.isfinite(values[name]):
                    continue
                if name == "nu" and "drop_size" not in kw:
                    continue      # nu is only affected by which sizes enter the slope fit
                if name == "x_inf" and "drop_size" in kw:
                    continue
                diff = v_b[:, j] - boot[:, j]
                d_sd = float(np.nanstd(diff, ddof=1))
                v_vals[name] = float(v_c[j])
                # paired replicas: see analysis.fss.collapse, Notes
                v_stat[name] = float(np.hypot(stat[name], d_sd))
            if v_vals:
                variants.append(budget.Variant(label, v_vals, v_stat, nested=True))
    stat = {k: (v if np.isfinite(v) else 0.0) for k, v in stat.items()}
    sys_err = budget.systematic_errors({k: v for k, v in values.items() if np.isfinite(v)},
                                       stat, variants)
    sys_err = {k: sys_err.get(k, 0.0) for k in values}
    total = budget.total_errors(stat, sys_err)

    pairs = CrossingPairs(L1, L2, L_eff, central[:, 0], x_err, central[:, 1], y_err, nu_pair_c,
                          nu_pair_err)
    return CrossingResult(pairs, x_inf, nu_c, om_c, omega_free, values,
                          {k: total[k] for k in values}, stat, sys_err, variants, n_failed)
