"""Crossing points of curves y_L(x) for consecutive sizes, extrapolated to infinite size.

For an observable of zero scaling dimension (Binder cumulant, crossing probability) the curves of
different sizes cross near x_c; the crossing of sizes (L1, L2) drifts as x*(L) = x_inf + a·L^-omega
with L the pair's effective size sqrt(L1·L2). The slope at the crossing grows as L^(1/nu).

Errors: parametric bootstrap (y -> y + dy·N(0,1)) of the whole chain (local fits -> crossings ->
extrapolation), so correlations between pairs sharing a size are kept; the statistical error of
x_inf is scaled by sqrt(chi2/dof) when the extrapolation misses its points. Systematics: refits
with another extrapolation form (omega fixed <-> free; with two pairs, omega halved and doubled,
since two crossings cannot fix it) and without the smallest pair (or sizes, for nu), on the same
bootstrap replicas, through :mod:`analysis.budget`.

Not determined (``undetermined``, errors NaN): x_inf from a single crossing (nothing to
extrapolate), an extrapolated x_inf outside the data's x range, a free omega at the edge of its
range, nu without slopes at x_inf for >= 2 sizes, or too many bootstrap replicas without an answer.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import budget
from .fitting import robust_sd, size_extrapolation, weighted_line
from .fss.data import validate_long_data
from ._validate import validated

__all__ = ["crossings", "CrossingResult", "CrossingPairs"]

OMEGA_RANGE = (0.2, 6.0)       # a free omega is searched here
BOOT_FAIL_MAX = 0.10           # more bootstrap replicas without an answer: not determined


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
def _extrapolate(L, xs, w, omega):
    """(x_inf, omega used, chi2, omega at the edge) for one realisation; omega=None fits it
    (needs >= 3 crossings). One crossing: x_inf = x*, no extrapolation."""
    ok = np.isfinite(xs)
    L, xs, w = L[ok], xs[ok], w[ok]
    if len(xs) == 0:
        return np.nan, np.nan, np.nan, False
    if len(xs) == 1:
        return float(xs[0]), np.nan, 0.0, False
    if omega is None and len(xs) < 3:
        return np.nan, np.nan, np.nan, False
    grid = np.geomspace(*OMEGA_RANGE, 161)
    r = size_extrapolation(L, xs[None], 1.0 / np.sqrt(w), omega, grid=grid)
    return float(r["xinf"][0]), float(r["omega"][0]), float(r["chi2"][0]), bool(r["at_edge"][0])


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
    """1/nu = slope of ln|dy/dx| versus ln L (unweighted; errors come from the bootstrap);
    two sizes give the ratio of their slopes."""
    ok = np.isfinite(slopes) & (slopes != 0)
    if ok.sum() < 2:
        return np.nan
    lL, lS = np.log(sizes[ok]), np.log(np.abs(slopes[ok]))
    inv_nu = weighted_line(lL, lS, np.ones_like(lL))[1]
    return float(1.0 / inv_nu) if inv_nu > 0 else np.nan


# ----------------------------------------------------------------------------------------------
# result
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
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


@dataclass(frozen=True)
class CrossingResult:
    pairs: CrossingPairs
    x_inf: float
    nu: float                    # from the slopes at x_inf
    omega: float                 # exponent used in the extrapolation
    omega_fitted: bool
    values: dict
    errors: dict                 # total (NaN where undetermined)
    stat_errors: dict
    sys_errors: dict
    variants: list = field(default_factory=list)
    n_bootstrap_failed: int = 0
    undetermined: dict = field(default_factory=dict)    # parameter -> why the data do not fix it
    x_range: tuple = (np.nan, np.nan)                   # x range of the data
    omega_assumed: bool = False  # omega = 1 (or 1/nu) assumed: too few crossings to fit it
    chi2: float = np.nan         # of the extrapolation (weights 1/x*_err^2)
    dof: int = 0
    notes: list = field(default_factory=list)

    def summary(self) -> str:
        p = self.pairs
        lines = ["Crossings of consecutive sizes (x*, y*) and extrapolation x* = x_inf + a L^-omega"]
        for k in range(len(p.L1)):
            if not np.isfinite(p.x_star[k]):
                lines.append(f"  L={p.L1[k]:g}/{p.L2[k]:g}: no crossing inside the common x range")
                continue
            lines.append(f"  L={p.L1[k]:g}/{p.L2[k]:g}: x* = {p.x_star[k]:.6g} ± "
                         f"{p.x_star_err[k]:.2g}, y* = {p.y_star[k]:.4g} ± {p.y_star_err[k]:.2g}, "
                         f"nu = {p.nu[k]:.3g} ± {p.nu_err[k]:.2g}")
        for name in self.values:
            lines.append("  " + budget.format_estimate(
                name, self.values[name], self.stat_errors[name], self.sys_errors[name],
                self.errors[name], reason=self.undetermined.get(name)))
        if "x_inf" in self.undetermined:      # no extrapolation details for what is not a result
            lines += [f"  note: {n}" for n in self.notes if n.startswith("L=")]
            return "\n".join(lines)
        if np.isfinite(self.omega):
            fit = (f"fitted, chi2/dof = {self.chi2:.3g}/{self.dof}" if self.omega_fitted else
                   "assumed" if self.omega_assumed else "given")
            lines.append(f"  omega = {self.omega:.3g} ({fit})")
        for v in self.variants:
            lines.append("  variant " + budget.describe_variant(v, self.values, self.stat_errors))
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def plot(self, ax=None):
        """x* against L_eff^-omega with the extrapolation to L = infinity (analysis.plots)."""
        from .plots import crossing_plot
        return crossing_plot(self, ax=ax)


# ----------------------------------------------------------------------------------------------
# main entry point
# ----------------------------------------------------------------------------------------------
def _analyse(data, y, setups, degree):
    """Crossing rows (x*, y*, slope1, slope2) of every pair for one data realisation ``y``."""
    rows = np.full((len(setups), 4), np.nan)
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
        pairs cross, else 1/nu if ``nu`` is given, else 1 (and the systematic error includes
        omega halved and doubled, which the data cannot tell apart).
    nu : known or guessed nu, only used for the default omega.
    n_local, degree : points per curve and polynomial degree of the local fits at the crossing
        (cubic by default: a quadratic through points on one side of an inflection point is
        biased by the cubic term, by about the statistical error on synthetic logistic data).
    bootstrap : parametric bootstrap replicas (y + dy·N(0,1)) for all errors.
    systematics : refit with the other extrapolation form and without the smallest pair/size.

    Returns
    -------
    CrossingResult with ``pairs`` (per-pair x*, y*, nu with errors), ``x_inf``, ``nu`` (slopes),
    values/errors/stat_errors/sys_errors dicts over ("x_inf", "nu"), and ``undetermined``.
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
    x_lo, x_hi = float(data.x.min()), float(data.x.max())

    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((bootstrap, data.n)) * data.dy
    central = _analyse(data, data.y, setups, degree)
    reps = np.array([_analyse(data, data.y + e, setups, degree) for e in noise])
    # a replica in which a pair stops crossing is dropped for that pair only
    x_err = robust_sd(reps[:, :, 0])
    y_err = robust_sd(reps[:, :, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        nu_pair_b = np.log(L2 / L1) / np.log(np.abs(reps[:, :, 3] / reps[:, :, 2]))
        nu_pair_c = np.log(L2 / L1) / np.log(np.abs(central[:, 3] / central[:, 2]))
    nu_pair_err = robust_sd(nu_pair_b)

    valid = np.isfinite(central[:, 0]) & np.isfinite(x_err) & (x_err > 0)
    # a crossing of finite-size scaling has the larger size steeper; curves that only touch (equal
    # slopes within noise, e.g. two tails at P = 0) or cross the other way are not one
    steeper = np.abs(reps[:, :, 3]) - np.abs(reps[:, :, 2])
    steeper_c = np.abs(central[:, 3]) - np.abs(central[:, 2])
    transverse = steeper_c > 2 * robust_sd(steeper)
    no_scaling_crossing = not (valid & transverse).any()
    pair_notes = [f"L={L1[k]:g}/{L2[k]:g}: the curves touch or cross with the smaller size steeper "
                  f"at x* = {central[k, 0]:.4g}: not a scaling crossing"
                  + ("" if no_scaling_crossing else ", left out")
                  for k in np.flatnonzero(valid & ~transverse)]
    if not no_scaling_crossing:        # (otherwise keep them, to report what they give, undetermined)
        valid &= transverse
    n_valid = int(valid.sum())
    omega_free = omega is None and n_valid >= 4
    omega0 = None if omega_free else (omega if omega is not None else
                                      (1.0 / nu if nu is not None else 1.0))
    omega_assumed = omega is None and not omega_free
    w = np.where(valid, 1.0 / np.where(valid, x_err, 1.0) ** 2, 0.0)

    def chain(rows, y_used, omega_used, drop_pair=False, drop_size=0):
        """(x_inf, nu, omega, chi2, at_edge) for one realisation; the variants drop the smallest
        pair / sizes."""
        keep = valid.copy()
        if drop_pair:
            keep[np.argmax(keep)] = False
        xs = np.where(keep, rows[:, 0], np.nan)
        x_inf, om, chi2, edge = _extrapolate(L_eff, xs, np.where(keep, w, 1.0), omega_used)
        sl = _slopes_at(data, x_inf, y_used, n_local, degree)
        sl[:drop_size] = np.nan
        return x_inf, _nu_from_slopes(sizes, sl), om, chi2, edge

    x_inf, nu_c, om_c, chi2_c, edge_c = chain(central, data.y, omega0)
    notes = list(pair_notes)
    fell_back = False
    if omega_free and edge_c and om_c < np.sqrt(OMEGA_RANGE[0] * OMEGA_RANGE[1]):
        # a free omega at the lower edge extrapolates the noise of a slow drift far beyond the
        # data: fall back on the assumed omega, halved and doubled in the systematic error
        notes.append(f"the fitted omega runs to the lower edge {OMEGA_RANGE[0]:g} of its range (the "
                     "crossings do not fix the drift exponent): omega assumed instead")
        omega_free, omega_assumed, fell_back = False, True, True
        omega0 = 1.0 / nu if nu is not None else 1.0
        x_inf, nu_c, om_c, chi2_c, edge_c = chain(central, data.y, omega0)
    boot = np.array([chain(reps[b], data.y + noise[b], omega0)[:2] for b in range(bootstrap)])
    values = {"x_inf": x_inf, "nu": nu_c}
    n_used = int(np.sum(np.isfinite(central[:, 0]) & valid))
    dof = n_used - (3 if omega_free else 2)
    scale = float(np.sqrt(chi2_c / dof)) if dof > 0 and np.isfinite(chi2_c) and chi2_c > dof else 1.0
    stat = {"x_inf": float(robust_sd(boot[:, 0])) * scale, "nu": float(robust_sd(boot[:, 1]))}
    n_failed = int(np.sum(~np.all(np.isfinite(boot), axis=1)))

    variants = []
    if systematics:
        specs = []
        if n_valid >= 3:
            specs.append(("drop smallest pair", dict(omega_used=omega0, drop_pair=True)))
        if omega_free:
            om_fix = 1.0 / nu if nu else 1.0
            specs.append((f"omega fixed {om_fix:.3g}", dict(omega_used=om_fix)))
        elif n_valid >= 3 and omega is None and not fell_back:
            specs.append(("omega free", dict(omega_used=None)))
        if omega_assumed and n_valid >= 2:
            # two or three crossings cannot fix the exponent of the drift: the assumed omega
            # is a model choice, varied by a factor 2 either way
            for f in (0.5, 2.0):
                specs.append((f"omega = {f * omega0:.3g}", dict(omega_used=f * omega0)))
        # drop the smallest sizes for nu while >= 2 remain: corrections bias small sizes' slopes
        for n_drop in range(1, len(sizes) - 1):
            label = "drop smallest size (nu)" if n_drop == 1 else f"drop {n_drop} smallest sizes (nu)"
            specs.append((label, dict(omega_used=omega0, drop_size=n_drop)))
        for label, kw in specs:
            v_c = chain(central, data.y, **kw)[:2]
            v_b = np.array([chain(reps[b], data.y + noise[b], **kw)[:2] for b in range(bootstrap)])
            v_vals, v_stat = {}, {}
            for j, name in enumerate(("x_inf", "nu")):
                if not np.isfinite(v_c[j]) or not np.isfinite(values[name]):
                    continue
                if name == "nu" and "drop_size" not in kw and "omega = " not in label:
                    continue      # nu depends on which sizes enter the slope fit (and where)
                if name == "x_inf" and "drop_size" in kw:
                    continue
                d_sd = float(robust_sd(v_b[:, j] - boot[:, j]))
                v_vals[name] = float(v_c[j])
                # paired replicas: see analysis.fss.collapse, Notes
                v_stat[name] = float(np.hypot(stat[name], d_sd))
            if v_vals:
                variants.append(budget.Variant(label, v_vals, v_stat, nested=True))

    und = {}
    if n_used == 1:
        und["x_inf"] = ("a single pair of sizes crosses: x* of one pair is a finite-size value, "
                        "nothing can be extrapolated")
    if omega_free and edge_c:
        notes.append(f"the fitted omega sits at the upper edge of [{OMEGA_RANGE[0]:g}, "
                     f"{OMEGA_RANGE[1]:g}]: the crossings do not drift measurably, x_inf is their limit")
    if np.isfinite(x_inf) and not (x_lo <= x_inf <= x_hi):
        und["x_inf"] = (f"the extrapolated crossing x_inf = {x_inf:.6g} lies outside the data's x "
                        f"range [{x_lo:.6g}, {x_hi:.6g}]")
    if no_scaling_crossing:
        und["x_inf"] = ("no pair of consecutive sizes crosses with the larger size steeper (curves that "
                        "only touch, or a transition that drifts with L): nothing to extrapolate")
    if "x_inf" in und:
        und["nu"] = "the slopes are taken at x_inf, which is not determined"
    elif not np.isfinite(nu_c):
        und["nu"] = ("fewer than 2 sizes have data around x_inf (or their slopes do not grow "
                     "with L): no slope ratio")
    for j, name in enumerate(("x_inf", "nu")):
        frac = float(np.mean(~np.isfinite(boot[:, j])))
        if frac > BOOT_FAIL_MAX and name not in und:
            und[name] = f"{100 * frac:.0f}% of the bootstrap replicas give no value"
    if scale > 1:
        notes.append(f"the extrapolation misses its points (chi2/dof = {chi2_c:.3g}/{dof}): the "
                     f"statistical error of x_inf is scaled by {scale:.2g}")
    if omega_assumed:
        notes.append(f"omega = {omega0:.3g} assumed ({n_valid} crossings cannot fix it); "
                     "the systematic error includes omega halved and doubled")
    stat = {k: (v if np.isfinite(v) else 0.0) for k, v in stat.items()}
    sys_err = budget.systematic_errors({k: v for k, v in values.items() if np.isfinite(v)},
                                       stat, variants)
    sys_err = {k: sys_err.get(k, 0.0) for k in values}
    total = budget.total_errors(stat, sys_err)
    total = {k: total[k] for k in values}
    for name in und:
        stat[name] = sys_err[name] = total[name] = float("nan")

    pairs = CrossingPairs(L1, L2, L_eff, central[:, 0], x_err, central[:, 1], y_err, nu_pair_c,
                          nu_pair_err)
    return CrossingResult(pairs, x_inf, nu_c, om_c, omega_free, values, total, stat, sys_err,
                          variants, n_failed, und, (x_lo, x_hi), omega_assumed, chi2_c, max(dof, 0),
                          notes)
