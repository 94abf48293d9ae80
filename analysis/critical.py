"""Critical control values per size and their large-size limit or growth.

``critical_point``: per size N, the control value (e.g. the mini-batch size m) where the
observable crosses ``level`` (sigmoid fits of :mod:`analysis.sizefits`; stat: bootstrap over
replicas; sys: the other fit forms). The per-size values are then

* extrapolated, x_c(N) = x_c(inf) + a N^(-1/nu) (:class:`Extrapolation`), nu free with >= 4 sizes,
  else the given nu, else nu = 1 assumed with 1/nu = 0.5 and 2 as variants;
* fitted by a growth law x_c(N) = A N^kappa (:class:`analysis.powerlaw.PowerLawFit`: one kappa,
  one budget);
* and the two compared (AIC, and whether the convergent form runs 1/nu to the edge of its range):
  ``limit`` is "converges", "grows" or "undetermined".

The :class:`CriticalPoint` is built once from these small results; everything it reports
(``values``, ``errors``, ``xc_inf``, ``kappa``, ...) is derived from them, so nothing depends on the
order in which the pieces were computed. A parameter the data do not determine is listed in
``undetermined`` with the reason, and its errors are NaN.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from .budget import (Drift, Variant, akaike_weight, describe_variant, drift as budget_drift, format_estimate,
                     systematic_errors, total_errors)
from .controls import with_control
from ._validate import validated
from .fitting import OMEGA_GRID, robust_sd, size_extrapolation, weighted_line
from .powerlaw import PowerLawFit
from .sizefits import METHODS, _as_table, _bootstrap_data, _cells_by_size, _curve, _fit_size_all, _label

__all__ = ["CriticalPoint", "Extrapolation", "LimitForm", "critical_point", "METHODS"]

MIN_SIZES_FREE_NU = 4
MIN_SIZES_TESTED_NU = 5  # a fitted nu is reported when a refit without the smallest size also fits it
CORRECTION_STEP = 1.0    # the next-to-leading term of x_c(N): a' N^-(1/nu + CORRECTION_STEP)
BOOT_EDGE_MAX = 0.10     # more bootstrap fits with 1/nu at an edge of OMEGA_GRID: nu not determined
_AIC_DECISIVE = 4.0      # Burnham & Anderson: dAIC > 4 leaves "considerably less support" to the other form


# ------------------------------------------------------------------------------- small results
@dataclass(frozen=True)
class Extrapolation:
    """x_c(N) = x_c(inf) + a N^(-1/nu) fitted to the per-size values (weights 1/stat^2), with its
    budget (stat: bootstrap over replicas, times sqrt(chi2/dof) when the form misses the points;
    sys: other fit forms, smallest sizes dropped, the exponent free/fixed/varied)."""
    xc_inf: float
    nu: float
    nu_fixed: bool                 # nu was given or assumed, not fitted
    nu_assumed: bool               # nu = 1 assumed (too few sizes and none given)
    amplitude: float
    chi2: float
    dof: int
    values: dict                   # "xc_inf" (and "nu" when fitted)
    stat_errors: dict
    sys_errors: dict
    errors: dict                   # total; NaN for undetermined parameters
    variants: list
    undetermined: dict             # parameter -> reason
    lower_edge: bool               # fitted 1/nu at the lower edge: the form mimics a growth
    samples: np.ndarray | None = field(default=None, repr=False)   # bootstrap xc_inf
    notes: tuple = ()


@dataclass(frozen=True)
class LimitForm:
    """One candidate large-N form of xc(N), fitted to the per-size values (weights 1/xc_stat^2)."""
    name: str                      # "converges" | "power" | "linear"
    formula: str
    values: dict                   # its parameters at the best fit
    chi2: float
    dof: int
    n_params: int
    pvalue: float                  # P(chi2' >= chi2); NaN when dof = 0
    aic: float                     # chi2 + 2 n_params
    bic: float                     # chi2 + n_params ln(sizes)
    at_edge: bool = False          # a parameter at the edge of its searched range (not determined)


# ---------------------------------------------------------------------------------- the result
@dataclass(frozen=True)
class CriticalPoint:
    """Result of ``critical_point``; per-size arrays are aligned with ``sizes``."""
    control: str
    size: str
    observable: str
    level: float
    method: str
    log_control: bool
    sizes: np.ndarray
    xc: np.ndarray                 # crossing per size (control units)
    xc_stat: np.ndarray            # bootstrap error
    xc_sys: np.ndarray             # spread of the other fit forms beyond statistics
    xc_err: np.ndarray             # total
    width: np.ndarray              # interquartile transition width per size, in the fit coordinate
                                   #   (log(control) when log_control: a relative width)
    xc_by_method: dict             # method -> (k,) crossings
    extrapolation: Extrapolation | None = None
    growth: PowerLawFit | None = None      # x_c(N) = A N^kappa (kappa = growth.exponent)
    limit: str = ""                # "converges" | "grows" | "undetermined" ("" without extrapolation)
    limit_reason: str = ""
    forms: list = field(default_factory=list)        # LimitForm candidates that were compared
    drift: Drift | None = None     # monotone drift of x_c(N) with N (budget.drift)
    notes: list = field(default_factory=list)
    xc_samples: np.ndarray | None = field(default=None, repr=False)     # (B, k) bootstrap
    _cells: list = field(default=None, repr=False)
    _fits: list = field(default=None, repr=False)

    # --- what is reported, derived from the parts
    @property
    def grows(self) -> bool:
        return self.limit == "grows"

    @property
    def xc_inf(self) -> float:
        if self.grows:
            return np.inf
        return self.extrapolation.xc_inf if self.extrapolation is not None else np.nan

    @property
    def nu(self) -> float:
        return self.extrapolation.nu if self.extrapolation is not None and not self.grows else np.nan

    @property
    def nu_fixed(self) -> bool:
        return self.extrapolation.nu_fixed if self.extrapolation is not None else True

    @property
    def kappa(self) -> float:
        return self.growth.exponent if self.growth is not None else np.nan

    @property
    def growth_law(self) -> PowerLawFit | None:
        return self.growth

    @property
    def amplitude(self) -> float:
        if self.grows:
            return self.growth.amplitude
        return self.extrapolation.amplitude if self.extrapolation is not None else np.nan

    @property
    def chi2(self) -> float:
        if self.grows:
            return self.growth.chi2
        return self.extrapolation.chi2 if self.extrapolation is not None else np.nan

    @property
    def dof(self) -> int:
        if self.grows:
            return self.growth.dof
        return self.extrapolation.dof if self.extrapolation is not None else 0

    def _budget(self, which: str) -> dict:
        if self.grows:
            g = getattr(self.growth, which)
            return {"kappa": g["exponent"], "amplitude": g["amplitude"]}
        return dict(getattr(self.extrapolation, which)) if self.extrapolation is not None else {}

    @property
    def values(self) -> dict:
        """"xc_inf" (and "nu" when fitted), or "kappa" and "amplitude" when x_c grows."""
        if self.grows:
            return {"kappa": self.growth.exponent, "amplitude": self.growth.amplitude}
        return dict(self.extrapolation.values) if self.extrapolation is not None else {}

    @property
    def errors(self) -> dict:
        return self._budget("errors")

    @property
    def stat_errors(self) -> dict:
        return self._budget("stat_errors")

    @property
    def sys_errors(self) -> dict:
        return self._budget("sys_errors")

    @property
    def variants(self) -> list:
        if self.grows:
            return list(self.growth.variants)
        return list(self.extrapolation.variants) if self.extrapolation is not None else []

    @property
    def undetermined(self) -> dict:
        if self.grows:
            return {}
        return dict(self.extrapolation.undetermined) if self.extrapolation is not None else {}

    @property
    def convergent(self) -> dict:
        """When x_c grows: the rejected extrapolation (empty otherwise)."""
        e = self.extrapolation
        if not self.grows or e is None:
            return {}
        return {"xc_inf": e.xc_inf, "nu": e.nu, "errors": e.errors, "stat_errors": e.stat_errors,
                "sys_errors": e.sys_errors, "variants": e.variants}

    @property
    def xc_inf_samples(self):
        return None if self.grows or self.extrapolation is None else self.extrapolation.samples

    # --- per-size curves
    def curve(self, i: int, x):
        """The fitted observable of size ``sizes[i]`` at control values x."""
        x = np.asarray(x, float)
        return _curve(self._fits[i].params, np.log(x) if self.log_control else x)

    def data(self, i: int):
        """(x, mean, err) of size ``sizes[i]``: cell means with errors (binomial for success)."""
        c = self._cells[i]
        return c.x, c.means(), c.sems()

    # --- text
    def summary(self) -> str:
        c = _label(self.control)
        L = [f"critical {self.control} where <{self.observable}> = {self.level:g} "
             f"({self.method} fit in {'log ' if self.log_control else ''}{self.control}, "
             f"bootstrap over replicas)"]
        L.append(f"  {self.size:>8} {c + '_c':>12} {'stat':>9} {'sys':>9} {'total':>9} {'width':>8}")
        for i, N in enumerate(self.sizes):
            if not np.isfinite(self.xc[i]):
                L.append(f"  {N:>8g} {'no crossing':>12}")
                continue
            L.append(f"  {N:>8g} {self.xc[i]:>12.5g} {self.xc_stat[i]:>9.3g} {self.xc_sys[i]:>9.3g} "
                     f"{self.xc_err[i]:>9.3g} {self.width[i]:>8.3g}")
        if self.forms:
            L.append(f"  large-{self.size} form of {c}_c({self.size}) (weights 1/stat^2):")
            for f in self.forms:
                L.append(f"    {f.name:<9} {f.formula:<19} chi2/dof = {f.chi2:.3g}/{f.dof}"
                         + (f", p = {f.pvalue:.2g}" if np.isfinite(f.pvalue) else "")
                         + f", AIC = {f.aic:.3g}, BIC = {f.bic:.3g}"
                         + (" (1/nu at the edge of its range)" if f.at_edge else ""))
            L.append(f"    -> {self.limit}: {self.limit_reason}")
        e = self.extrapolation
        if self.grows:
            L += self._growth_lines(c, "no finite " + c + "_c(inf)")
            if e is not None and np.isfinite(e.xc_inf):
                L.append(f"    (rejected: {c}_c(inf) = {e.xc_inf:.5g} from x_inf + a N^(-1/nu), "
                         f"nu = {e.nu:.3g})")
        elif e is not None:
            how = "assumed" if e.nu_assumed else ("fixed" if e.nu_fixed else "fitted")
            head = f"  extrapolation {c}_c({self.size}) = {c}_c(inf) + a {self.size}^(-1/nu), "
            if e.nu_fixed:
                L.append(head + f"nu {how} = {e.nu:.4g}")
            else:
                L.append(head + format_estimate("nu fitted", e.nu, e.stat_errors.get("nu"),
                                                e.sys_errors.get("nu"), e.errors.get("nu"),
                                                reason=e.undetermined.get("nu"), digits=4))
            L.append("  " + format_estimate(f"{c}_c(inf)", e.xc_inf, e.stat_errors["xc_inf"],
                                            e.sys_errors["xc_inf"], e.errors["xc_inf"],
                                            reason=e.undetermined.get("xc_inf"), digits=5)
                     + ("" if "xc_inf" in e.undetermined else
                        f"; a = {e.amplitude:.3g}; chi2/dof = {e.chi2:.3g}/{e.dof}"))
            if "xc_inf" not in e.undetermined:
                for v in e.variants:
                    L.append("    variant " + describe_variant(v, e.values, e.stat_errors))
            L += [f"    note: {n}" for n in e.notes]
            if self.limit == "undetermined" and self.growth is not None:
                L += self._growth_lines(c, "or a finite limit: undetermined")
        limit_known = not self.grows and "xc_inf" not in self.undetermined
        if self.drift is not None and len(self.drift.values) >= 3 and not limit_known and self.drift.monotone:
            L.append(f"  drift: {c}_c({self.size}) moves monotonically with {self.size} beyond errors "
                     "(not extrapolated: the large-size limit is not determined)")
        elif self.drift is not None and len(self.drift.values) >= 3:
            if self.drift.monotone:
                L.append(f"  drift: {c}_c({self.size}) moves monotonically with {self.size} beyond errors; "
                         f"extrapolated {self.drift.extrapolated:.5g} ± {self.drift.extrapolated_error:.2g} "
                         f"({self.drift.note})")
            else:
                L.append(f"  drift: no monotone drift of {c}_c({self.size}) beyond errors")
        if self.growth is not None and self.limit in ("converges", ""):
            g = self.growth
            L.append(f"  power law in {self.size}: {c}_c ~ {self.size}^kappa, kappa = {g.exponent:.3g} "
                     f"± {g.errors['exponent']:.2g}" +
                     (f", chi2/dof = {g.chi2:.3g}/{g.dof}" if np.isfinite(g.pvalue) else ""))
        L += [f"  note: {n}" for n in self.notes if e is None or n not in e.notes]
        return "\n".join(L)

    def _growth_lines(self, c, tail):
        g = self.growth
        e, s, y = g.errors, g.stat_errors, g.sys_errors
        L = ["  " + format_estimate(f"{c}_c grows as {self.size}^kappa, kappa", g.exponent,
                                    s["exponent"], y["exponent"], e["exponent"], digits=4) + f"; {tail}",
             f"    amplitude A = {g.amplitude:.4g} ± {e['amplitude']:.2g}; chi2/dof = {g.chi2:.3g}/{g.dof}"]
        L += ["    variant " + describe_variant(v, g.values, g.stat_errors, ("exponent",), digits=4)
              .replace("exponent =", "kappa =") for v in g.variants]
        return L

    def plot(self, ax=None, kind: str = "extrapolation"):
        """kind="extrapolation": xc(N) against N^(-1/nu) with the fit; "curves": the observable
        against the control for every size with the fitted curves (analysis.plots)."""
        from .plots import critical_point_plot
        return critical_point_plot(self, ax=ax, kind=kind)


# ------------------------------------------------------------------------------ critical_point
@validated                  # arguments checked first: analysis/_validate.py
def critical_point(table_or_arrays, control: str = "batch_size", size: str = "N",
                   observable: str = "success", level: float = 0.5, method: str = "logistic",
                   bootstrap: int = 300, extrapolate: bool = True, seed: int = 0,
                   log_control: bool | None = None, nu: float | None = None, bounds=None,
                   trials: str | None = None, methods=METHODS) -> CriticalPoint:
    """Per size, the control value where ``observable`` crosses ``level``; extrapolated in size.

    control: a column, or a ratio / product of two columns such as "batch_size/d" (the critical
        value of m/d has a finite limit if m_c grows like d; see ``analysis.controls``).
    table_or_arrays: an ``analysis.Table`` (or a dict of equal-length arrays) with one row per
        replica (``observable`` boolean/0-1 for success, any float for an order parameter), or
        one row per cell with ``trials`` naming the column of trial counts (observable = fraction).
    method: "logistic" | "probit" (sigmoid in the fit coordinate; binomial maximum likelihood for
        success data, least squares on cell means otherwise, with free asymptotes unless
        ``bounds=(lo, hi)``), or "interpolate" (isotonic regression, linear interpolation).
    log_control: fit in log(control); default: when the control is positive and spans >= 10x.
    bootstrap: resamples of the replicas within every (size, control) cell.
    extrapolate: fit xc(N) = xc_inf + a N^(-1/nu): nu free with >= 4 sizes (nu=None), else the
        given nu, else nu = 1 (assumed, stated in the summary and the notes, with 1/nu = 0.5 and
        2 as variants whose whole shift counts). Here nu is the exponent of the shift of the
        level crossing: 1/nu of the transition unless ``level`` is the crossing height of the
        sizes' curves (then the leading shift is faster and nu is an effective exponent).
    Errors: per size, ``xc_stat`` (bootstrap) and ``xc_sys`` (other fit forms); for xc_inf the
    variants are the other fit forms, dropping the smallest size(s), and the extrapolation form
    (1/nu free vs fixed). Large-N form (``limit``): the convergent extrapolation is compared with
    growth, xc ~ N^kappa (and c + s N), by AIC and by whether the convergent fit runs 1/nu to the
    edge of its range. When growth wins, ``limit == "grows"``, ``xc_inf = inf`` and ``values`` /
    ``errors`` are kappa and the amplitude (stat: bootstrap; sys: other fit forms, sizes
    dropped, unweighted); ``convergent`` keeps the rejected extrapolation. ``undetermined``:
    parameters the data cannot fix (1/nu at the edge of its range, ...), with their reasons.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not allowed; choose one of {METHODS}")
    if not (0 < level < 1) and _observable_is_probability(table_or_arrays, observable, trials):
        raise ValueError(f"level={level} must lie in (0, 1) for a success probability")
    if bootstrap < 20:
        raise ValueError(f"bootstrap={bootstrap} is too few resamples (need >= 20)")
    if nu is not None and not (np.isfinite(nu) and nu > 0):
        raise ValueError(f"nu={nu} must be a positive number (or None)")
    # a derived control ("batch_size/d") becomes a column of its own
    table, control = with_control(_as_table(table_or_arrays), control)
    sizes, cells, log_control = _cells_by_size(table, control, size, observable, log_control, trials)
    if extrapolate and len(sizes) < 2:
        raise ValueError(f"a single {size} ({sizes[0]:g}) cannot be extrapolated in size; "
                         "pass extrapolate=False or add sizes")
    methods = [method] + [m for m in methods if m != method]
    rng = np.random.default_rng(seed)
    to_x = np.exp if log_control else (lambda v: v)

    k = len(sizes)
    xc = {m: np.full(k, np.nan) for m in methods}
    samples = {m: np.full((bootstrap, k), np.nan) for m in methods}
    fits, notes = [], []
    width = np.full(k, np.nan)
    for i, c in enumerate(cells):
        boot = _bootstrap_data(c, bootstrap, rng)     # shared by all methods: same resamples
        for m in methods:
            central, uc = _fit_size_all(c, m, level, bounds, boot)
            inside = c.u.min() <= central.uc <= c.u.max() if np.isfinite(central.uc) else False
            if m == method:
                fits.append(central)
                # no transition inside the data (e.g. never any success): its width is undefined,
                # not the 1e40 a flat fit's vanishing slope would give
                width[i] = central.width if inside else np.nan
            if not inside:
                if m == method:
                    notes.append(f"{size}={sizes[i]:g}: {observable} does not cross {level:g} inside the "
                                 f"{control} range [{c.x.min():g}, {c.x.max():g}] ({m})")
                continue
            xc[m][i] = to_x(central.uc)
            samples[m][:, i] = to_x(uc)
    stat = {m: robust_sd(samples[m]) for m in methods}
    xc_c, xc_stat = xc[method], stat[method]
    bad = np.mean(~np.isfinite(samples[method]), axis=0)
    for i in np.flatnonzero(bad > 0.05):
        notes.append(f"{size}={sizes[i]:g}: {100 * bad[i]:.0f}% of bootstrap resamples found no crossing")
    xc_sys = np.zeros(k)
    for i in range(k):
        if not np.isfinite(xc_c[i]):
            xc_sys[i] = np.nan
            continue
        # Other fit forms see the same data and the same resamples: the noise of their deviation
        # is the spread of the paired differences, which the budget's "nested" rule subtracts.
        var = [Variant(m, {"xc": xc[m][i]},
                       {"xc": float(np.hypot(xc_stat[i], robust_sd(samples[m][:, i] - samples[method][:, i])))},
                       nested=True) for m in methods[1:]]
        xc_sys[i] = systematic_errors({"xc": xc_c[i]}, {"xc": xc_stat[i]}, var)["xc"]
    parts = dict(control=control, size=size, observable=observable, level=level, method=method,
                 log_control=log_control, sizes=sizes, xc=xc_c, xc_stat=xc_stat, xc_sys=xc_sys,
                 xc_err=np.hypot(xc_stat, xc_sys), width=width, xc_by_method=xc,
                 xc_samples=samples[method], _cells=cells, _fits=fits)
    if not extrapolate:
        return CriticalPoint(notes=notes, **parts)

    ok = np.isfinite(xc_c) & (xc_stat > 0)
    N, X, S = sizes[ok], xc_c[ok], xc_stat[ok]
    if len(N) < 2:
        return CriticalPoint(notes=notes + ["fewer than 2 sizes with a crossing: no extrapolation"],
                             **parts)
    if len(N) < k:
        notes.append(f"extrapolation uses {size} = {', '.join(f'{v:g}' for v in N)} only")
    ext = _extrapolation(N, X, S, {m: samples[m][:, ok] for m in methods},
                         {m: xc[m][ok] for m in methods}, methods, size, nu)
    growth = _growth(N, X, S, {m: samples[m][:, ok] for m in methods},
                     {m: xc[m][ok] for m in methods}, methods, size)
    forms = _limit_forms(N, X, S, ext)
    kap = growth.exponent if growth is not None else np.nan
    kap_err = growth.errors["exponent"] if growth is not None else np.nan
    limit, reason = _choose_limit(forms, kap, kap_err)
    # with a fitted nu the drift fit would repeat the central one: use the leading 1/N shift then
    dr = budget_drift("xc", N, X, S, nu_hint=ext.nu if ext.nu_fixed else None)
    return CriticalPoint(extrapolation=ext, growth=growth, limit=limit, limit_reason=reason,
                         forms=list(forms.values()), drift=dr,
                         notes=notes + (list(ext.notes) if limit != "grows" else []), **parts)


def _observable_is_probability(data, observable, trials) -> bool:
    if trials is not None:
        return True
    try:
        y = _as_table(data)[observable]
    except ValueError:
        return False
    return y.dtype == bool or (y.dtype.kind in "iuf" and np.all(np.isin(y[np.isfinite(y.astype(float))], (0, 1))))


# ------------------------------------------------------------------------------- extrapolation
def _extrapolation(N, X, S, samples, xc_by_method, methods, size, nu_user) -> Extrapolation:
    free = nu_user is None and len(N) >= MIN_SIZES_FREE_NU
    assumed = nu_user is None and not free
    omega_c = None if free else (1.0 / nu_user if nu_user else 1.0)
    method = methods[0]
    notes = []
    if assumed:
        notes.append(f"nu assumed = 1 (first-order / mean-field lore): {len(N)} sizes are too few "
                     f"to fit it (need {MIN_SIZES_FREE_NU}); 1/nu = 0.5 and 2 are variants")

    B = samples[method].shape[0]

    def boot_fit(m, cols, omega, correction=None):
        """Bootstrap extrapolations of method m on sizes cols: full-length (B,) arrays (NaN for a
        resample without a crossing at some size), so that variants pair with the central fit."""
        Xb = samples[m][:, cols]
        good = np.all(np.isfinite(Xb), axis=1)
        out = {"xinf": np.full(B, np.nan), "inv_nu": np.full(B, np.nan), "at_edge": np.zeros(B, bool)}
        if good.any():
            r = size_extrapolation(N[cols], Xb[good], S[cols], omega, correction=correction)
            out["xinf"][good], out["inv_nu"][good], out["at_edge"][good] = r["xinf"], r["omega"], r["at_edge"]
        return out, good

    allc = np.arange(len(N))
    central = size_extrapolation(N, X[None], S, omega_c)
    cb, good = boot_fit(method, allc, omega_c)
    if good.mean() < 0.95:
        notes.append(f"{100 * (1 - good.mean()):.0f}% of bootstrap resamples dropped from the "
                     "extrapolation (no crossing at some size)")
    n_par = 3 if free else 2
    dof = len(N) - n_par
    chi2 = float(central["chi2"][0])
    scale = float(np.sqrt(chi2 / dof)) if dof > 0 and chi2 > dof else 1.0
    values = {"xc_inf": float(central["xinf"][0])}
    stat_err = {"xc_inf": float(robust_sd(cb["xinf"])) * scale}
    omega_hat = float(central["omega"][0])
    if free:
        values["nu"] = 1.0 / omega_hat
        stat_err["nu"] = float(robust_sd(1.0 / cb["inv_nu"])) * scale
    if scale > 1:
        notes.append(f"the extrapolation misses its points (chi2/dof = {chi2:.3g}/{dof}): statistical "
                     f"errors scaled by {scale:.2g}")

    def variant(label, m, cols, omega, nested=True, correction=None, weight=None):
        """A refit on the same bootstrap resamples: its noise relative to the central fit is the
        spread of the paired differences (the budget's nested rule subtracts exactly that)."""
        c = size_extrapolation(N[cols], np.atleast_2d(xc_by_method[m][cols]), S[cols], omega,
                               correction=correction)
        b, _ = boot_fit(m, cols, omega, correction)
        vals = {"xc_inf": float(c["xinf"][0])}
        diffs = {"xc_inf": b["xinf"] - cb["xinf"]}
        if omega is None and free:
            vals["nu"] = float(1 / c["omega"][0])
            diffs["nu"] = 1 / b["inv_nu"] - 1 / cb["inv_nu"]
        errs = {p: float(np.hypot(stat_err[p], robust_sd(d))) for p, d in diffs.items()}
        raw = {"xc_inf": float(robust_sd(b["xinf"]))}
        if weight == "akaike":          # a model extension: weighted by the support of the data
            weight = akaike_weight(chi2, n_par, float(c["chi2"][0]), n_par + 1)
        return Variant(label, vals, errs, n_points=len(cols), nested=nested, raw_stat_errors=raw,
                       weight=weight)

    variants = []
    for m in methods[1:]:          # other fit forms, same extrapolation
        if np.all(np.isfinite(xc_by_method[m])):
            variants.append(variant(f"fit form {m}", m, allc, omega_c))
    for drop in (1, 2):            # smallest size(s) dropped
        cols = allc[drop:]
        if free and len(cols) >= MIN_SIZES_FREE_NU:
            variants.append(variant(f"drop {drop} smallest {size}", method, cols, None))
        elif free and len(cols) >= 3:
            variants.append(variant(f"drop {drop} smallest {size} (1/nu fixed at {omega_hat:.3g})",
                                    method, cols, omega_hat))
        elif not free and len(cols) >= 2:
            variants.append(variant(f"drop {drop} smallest {size}", method, cols, omega_c))
    if free:
        variants.append(variant("1/nu fixed 1", method, allc, 1.0))
    elif nu_user is not None and len(N) >= MIN_SIZES_FREE_NU:
        variants.append(variant("1/nu free", method, allc, None))
    else:                          # nu assumed: how much hangs on the assumption
        for om in (0.5, 2.0):
            variants.append(variant(f"1/nu = {om:g}", method, allc, om, nested=False))
    # the next correction, a' N^-(1/nu + 1): a model extension the budget weighs by AIC (not with
    # an assumed nu, which the variants above already vary)
    if free and len(N) >= MIN_SIZES_TESTED_NU:
        variants.append(variant("correction a' N^-(1/nu + 1)", method, allc, None,
                                correction=CORRECTION_STEP, weight="akaike"))
    elif nu_user is not None and len(N) >= 3:
        variants.append(variant("correction a' N^-(1/nu + 1)", method, allc, omega_c,
                                correction=CORRECTION_STEP, weight="akaike"))
    sys_err = systematic_errors(values, stat_err, variants)
    errors = total_errors(stat_err, sys_err)

    und = {}
    lower = bool(free and omega_hat <= OMEGA_GRID[0] * (1 + 1e-9))
    if free and central["at_edge"][0]:
        rng_txt = f"[{OMEGA_GRID[0]:g}, {OMEGA_GRID[-1]:g}]"
        und["nu"] = f"the fitted 1/nu = {omega_hat:.3g} sits at the edge of its range {rng_txt}"
        if lower:
            und["xc_inf"] = (f"the convergent fit runs 1/nu to the lower edge of {rng_txt}, where "
                             "x_inf + a N^(-1/nu) mimics a growth: no finite limit is determined")
    if free and "nu" not in und and len(N) < MIN_SIZES_TESTED_NU:
        und["nu"] = (f"{len(N)} sizes leave one degree of freedom to the three-parameter form: the "
                     f"exponent is fitted (x_inf needs it) but not checked against corrections, "
                     f"which needs refits without the smallest size ({MIN_SIZES_TESTED_NU} sizes)")
    if free and "nu" not in und:
        frac = float(np.mean(cb["at_edge"][good])) if good.any() else 1.0
        if frac > BOOT_EDGE_MAX:
            und["nu"] = (f"{100 * frac:.0f}% of the bootstrap fits put 1/nu at an edge of "
                         f"[{OMEGA_GRID[0]:g}, {OMEGA_GRID[-1]:g}]: the exponent is not fixed by "
                         f"{len(N)} sizes")
    errors = {p: (float("nan") if p in und else v) for p, v in errors.items()}
    stat_out = {p: (float("nan") if p in und else v) for p, v in stat_err.items()}
    sys_out = {p: (float("nan") if p in und else v) for p, v in sys_err.items()}
    return Extrapolation(xc_inf=values["xc_inf"], nu=1.0 / omega_hat, nu_fixed=not free,
                         nu_assumed=assumed, amplitude=float(central["a"][0]), chi2=chi2, dof=dof,
                         values=values, stat_errors=stat_out, sys_errors=sys_out, errors=errors,
                         variants=variants, undetermined=und, lower_edge=lower,
                         samples=cb["xinf"], notes=tuple(notes))


# -------------------------------------------------------------------------------- growth law
def _growth(N, X, S, samples, xc_by_method, methods, size) -> PowerLawFit | None:
    """x_c(N) = A N^kappa, weighted in log space (errors S/X of the central values); stat from the
    replica bootstrap, sys from the other fit forms, smallest sizes and the largest size dropped,
    and the unweighted fit (all nested)."""
    if not np.all(X > 0):
        return None
    sig_log = S / X
    lN = np.log(N)
    allc = np.arange(len(N))
    method = methods[0]

    B = samples[method].shape[0]

    def fit(m, cols, weighted=True):
        """(values, bootstrap (B, 2) of (ln A, kappa) with NaN rows, chi2) of one refit."""
        w = 1.0 / sig_log[cols] ** 2 if weighted else np.ones(len(cols))
        c, kap, chi2 = weighted_line(lN[cols], np.log(xc_by_method[m][cols]), w)
        Xb = samples[m][:, cols]
        good = np.all(np.isfinite(Xb) & (Xb > 0), axis=1)
        boot = np.full((B, 2), np.nan)
        if good.any():
            cb, kb, _ = weighted_line(lN[cols], np.log(Xb[good]), w)
            boot[good] = np.column_stack([cb, kb])
        return {"exponent": float(kap), "amplitude": float(np.exp(c))}, boot, float(chi2)

    def spread(boot):
        return {"exponent": float(robust_sd(boot[:, 1])), "amplitude": float(robust_sd(np.exp(boot[:, 0])))}

    values, boot, chi2 = fit(method, allc)
    stat_err = spread(boot)
    variants = []

    def variant(label, m, cols, weighted=True):
        vals, vb, _ = fit(m, cols, weighted)
        d_sd = {"exponent": robust_sd(vb[:, 1] - boot[:, 1]),
                "amplitude": robust_sd(np.exp(vb[:, 0]) - np.exp(boot[:, 0]))}
        errs = {p: float(np.hypot(stat_err[p], d_sd[p])) for p in vals}
        variants.append(Variant(label, vals, errs, n_points=len(cols), raw_stat_errors=spread(vb)))

    for m in methods[1:]:
        xm = xc_by_method[m]
        if np.all(np.isfinite(xm) & (xm > 0)):
            variant(f"fit form {m}", m, allc)
    for drop in (1, 2):
        if len(N) - drop >= 2:
            variant(f"drop {drop} smallest {size}", method, allc[drop:])
    if len(N) >= 3:
        variant(f"drop largest {size}", method, allc[:-1])
        variant("unweighted", method, allc, weighted=False)
    sys_err = systematic_errors(values, stat_err, variants)
    dof = len(N) - 2
    return PowerLawFit(exponent=values["exponent"], amplitude=values["amplitude"],
                       errors=total_errors(stat_err, sys_err), stat_errors=stat_err,
                       sys_errors=sys_err, variants=variants, chi2=chi2, dof=dof,
                       pvalue=float(stats.chi2.sf(chi2, dof)) if dof > 0 else np.nan,
                       x=N, y=X, dy=S, samples=boot)   # samples: (ln A, kappa) per resample


# ------------------------------------------------------------------ large-N form: converge or grow
def _form(name, formula, values, chi2, n, n_params, at_edge=False) -> LimitForm:
    dof = n - n_params
    return LimitForm(name, formula, values, float(chi2), dof, n_params,
                     float(stats.chi2.sf(chi2, dof)) if dof > 0 else np.nan,
                     float(chi2 + 2 * n_params), float(chi2 + n_params * np.log(n)), bool(at_edge))


def _limit_forms(N, X, S, ext: Extrapolation) -> dict:
    """The candidate large-N forms of xc(N) fitted to the per-size values (weights 1/S^2;
    the power law in log space with errors S/X, the same weights to first order in S/X)."""
    k = len(N)
    # only the lower edge matters here: there the convergent form wants 1/nu -> 0, i.e.
    # x_inf -> -a -> infinity, the degenerate limit in which it mimics a growth
    forms = {"converges": _form("converges", "x_inf + a N^(-1/nu)",
                                {"xc_inf": ext.xc_inf, "a": ext.amplitude, "nu": ext.nu},
                                ext.chi2, k, 2 if ext.nu_fixed else 3, at_edge=ext.lower_edge)}
    if np.all(X > 0):
        c, kap, chi2 = weighted_line(np.log(N), np.log(X), (X / S) ** 2)
        forms["power"] = _form("power", "A N^kappa", {"kappa": float(kap), "amplitude": float(np.exp(c))},
                               chi2, k, 2)
    c, s, chi2 = weighted_line(N.astype(float), X, 1.0 / S ** 2)
    forms["linear"] = _form("linear", "c + s N", {"c": float(c), "s": float(s)}, chi2, k, 2)
    return forms


def _growing(forms: dict) -> list:
    """The growth forms whose fit actually grows (a power law with kappa < 0 converges to 0)."""
    return [f for f in (forms.get("power"), forms.get("linear"))
            if f is not None and (f.values.get("kappa", 0) > 0 or f.values.get("s", 0) > 0)]


def _choose_limit(forms: dict, kappa: float, kappa_err: float) -> tuple[str, str]:
    """("converges" | "grows" | "undetermined", why).

    Growth needs kappa > 0 by two total errors; without it xc(N) converges (a power law with
    kappa < 0 converges to 0). Then the AIC difference between the convergent form and the best
    growth form decides when it exceeds 4 either way. AIC rather than BIC: with 3-6 sizes ln k < 2
    would barely charge the convergent form for its extra exponent. A convergent fit whose 1/nu
    sits at the lower edge of its range is a growth in disguise (1/nu -> 0 with a < 0 is a
    logarithmic growth), so it never establishes a finite limit on its own.
    """
    conv = forms["converges"]
    if not (np.isfinite(kappa) and np.isfinite(kappa_err) and kappa - 2 * kappa_err > 0):
        return "converges", (f"xc(N) does not grow significantly (kappa = {kappa:.3g} ± {kappa_err:.2g})"
                             if np.isfinite(kappa) else "no power law (xc <= 0 at some size)")
    growing = _growing(forms)
    if not growing:
        return "converges", "no growth form fits with a positive slope"
    best = min(growing, key=lambda f: f.aic)
    d_aic = conv.aic - best.aic
    edge = " (its 1/nu at the lower edge of the range: x_inf not determined)" if conv.at_edge else ""
    if d_aic > _AIC_DECISIVE:
        return "grows", f"AIC prefers {best.name} growth over convergence{edge} by {d_aic:.3g}"
    if d_aic < -_AIC_DECISIVE and not conv.at_edge:
        return "converges", f"AIC prefers convergence over {best.name} growth by {-d_aic:.3g}"
    return "undetermined", (f"the data do not decide between a finite limit and growth "
                            f"(AIC of convergence{edge} - {best.name} growth = {d_aic:.3g}, "
                            f"decisive beyond ±{_AIC_DECISIVE:g})")
