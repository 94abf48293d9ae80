"""Power-law fits y = A x^b with statistical and systematic errors.

The fit is weighted least squares in log-log coordinates (the error of log y is dy/y), so it is
linear and every bootstrap replicate and every variant is a closed-form solve. Statistical errors
come from a parametric bootstrap (robust spread: half the 16-84 % range); the systematic error (issue 6) from refits that drop the
smallest or the largest x, or drop the weights, combined by ``analysis.budget``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from .budget import Variant, systematic_errors, total_errors
from .fitting import robust_sd, weighted_line
from ._validate import validated

__all__ = ["PowerLawFit", "power_law"]


@dataclass(frozen=True)
class PowerLawFit:
    """Result of ``power_law``: y = amplitude * x**exponent."""
    exponent: float
    amplitude: float
    errors: dict                  # total (stat (+) sys) per parameter: "exponent", "amplitude"
    stat_errors: dict             # bootstrap standard deviations
    sys_errors: dict              # from the variants (analysis.budget rule)
    variants: list                # list[budget.Variant]
    chi2: float                   # weighted residual sum of squares (log space)
    dof: int
    pvalue: float                 # P(chi2' >= chi2); NaN when no dy was given
    x: np.ndarray = field(repr=False, default=None)
    y: np.ndarray = field(repr=False, default=None)
    dy: np.ndarray | None = field(repr=False, default=None)
    cov: np.ndarray | None = field(repr=False, default=None)       # analytic cov of (log A, b)
    samples: np.ndarray | None = field(repr=False, default=None)   # bootstrap (log A, b), (B, 2)
    notes: list = field(default_factory=list)
    undetermined: dict = field(default_factory=dict)   # parameter -> reason (none so far)

    @property
    def values(self) -> dict:
        return {"exponent": self.exponent, "amplitude": self.amplitude}

    @property
    def kappa(self) -> float:
        """The exponent under the name critical_point uses for x_c(N) ~ N^kappa."""
        return self.exponent

    def predict(self, x):
        return self.amplitude * np.asarray(x, float) ** self.exponent

    def summary(self) -> str:
        e, s, y = self.errors, self.stat_errors, self.sys_errors
        lines = [f"power law y = A x^b on {len(self.x)} points",
                 f"  b = {self.exponent:.5g} +- {e['exponent']:.2g} "
                 f"(stat {s['exponent']:.2g}, sys {y['exponent']:.2g})",
                 f"  A = {self.amplitude:.5g} +- {e['amplitude']:.2g} "
                 f"(stat {s['amplitude']:.2g}, sys {y['amplitude']:.2g})"]
        if np.isfinite(self.pvalue):
            lines.append(f"  chi2/dof = {self.chi2:.3g}/{self.dof}, p = {self.pvalue:.3g}")
        for v in self.variants:
            lines.append(f"  variant {v.label}: b = {v.values['exponent']:.5g} "
                         f"+- {v.stat_errors.get('exponent', np.nan):.2g}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def plot(self, ax=None, label=None, **kwargs):
        from .plots import power_law_plot
        return power_law_plot(self, ax=ax, label=label, **kwargs)


def _check_xy(x, y, dy):
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if x.ndim != 1 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"power_law: x and y must be 1-D of equal length; got shapes {x.shape}, {y.shape}")
    if dy is not None:
        dy = np.asarray(dy, float)
        if dy.shape != x.shape:
            raise ValueError(f"power_law: dy must have the shape of x {x.shape}; got {dy.shape}")
    for name, a in (("x", x), ("y", y), ("dy", dy)):
        if a is not None and not np.all(np.isfinite(a)):
            raise ValueError(f"power_law: {name} contains NaN or inf at positions "
                             f"{np.flatnonzero(~np.isfinite(a)).tolist()}")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("power_law: x and y must be > 0 (the fit is linear in log-log); got "
                         f"min x = {x.min() if len(x) else None}, min y = {y.min() if len(y) else None}")
    if dy is not None and np.any(dy <= 0):
        raise ValueError(f"power_law: dy must be > 0; got min dy = {dy.min()}")
    return x, y, dy


def _wls(lx, ly, w):
    """Weighted straight line ly = c + b lx for every row of ly (B, n) -> (B, 2)."""
    c, b, _ = weighted_line(lx, ly, w)
    return np.stack([c, b], axis=-1)


@validated                  # arguments checked first: analysis/_validate.py
def power_law(x, y, dy=None, bootstrap: int = 500, seed: int = 0, x_min=None, x_max=None) -> PowerLawFit:
    """Fit y = A x^b.

    x, y > 0; dy (optional, > 0) are the errors of y, used as weights (log-space error dy/y) and
    for chi2 and the p-value. Without dy the fit is unweighted and the scatter about the line sets
    the bootstrap noise. x_min / x_max restrict the fit range.
    Errors: ``stat_errors`` from ``bootstrap`` parametric resamples (Gaussian in log y);
    ``sys_errors`` from the variants "drop smallest x", "drop largest x" and "unweighted" (all
    on the same data, hence treated as nested: a deviation counts only beyond its expected
    statistical part, sqrt(s_variant^2 - s_central^2) -- for the unweighted fit this is the Hausman
    result for an efficient estimator against an inefficient one).
    """
    x, y, dy = _check_xy(x, y, dy)
    keep = np.ones(len(x), bool)
    if x_min is not None:
        keep &= x >= x_min
    if x_max is not None:
        keep &= x <= x_max
    x, y = x[keep], y[keep]
    dy = dy[keep] if dy is not None else None
    if len(x) < 2:
        raise ValueError(f"power_law: need at least 2 points (after x_min/x_max); got {len(x)}")
    if np.unique(x).size < 2:
        raise ValueError("power_law: x must take at least 2 distinct values")
    if bootstrap < 10:
        raise ValueError(f"power_law: bootstrap={bootstrap} is too few resamples (need >= 10)")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    dy = dy[order] if dy is not None else None
    n = len(x)
    lx, ly = np.log(x), np.log(y)
    weighted = dy is not None
    notes = []

    sig = dy / y if weighted else np.ones(n)
    w = 1.0 / sig ** 2
    c, b = _wls(lx, ly, w)
    resid = ly - (c + b * lx)
    dof = n - 2
    chi2 = float((w * resid ** 2).sum())
    if weighted:
        pvalue = float(stats.chi2.sf(chi2, dof)) if dof > 0 else np.nan
        noise = sig
        if dof > 0 and pvalue < 0.01:
            notes.append(f"poor fit (p = {pvalue:.2g}): the model or the dy may be wrong; "
                         "statistical errors assume the dy")
    else:
        pvalue = np.nan
        if dof <= 0:
            raise ValueError("power_law: without dy, need at least 3 points to estimate the scatter")
        s = np.sqrt(chi2 / dof)
        noise = np.full(n, s)
    A_design = np.column_stack([np.ones(n), lx])
    cov = np.linalg.inv(A_design.T @ (A_design / noise[:, None] ** 2))

    rng = np.random.default_rng(seed)
    fit_line = c + b * lx
    ly_star = fit_line + noise * rng.standard_normal((bootstrap, n))
    samples = _wls(lx, ly_star, w)

    def stat_of(par):   # (B, 2) -> errors of exponent and amplitude
        return {"exponent": float(robust_sd(par[:, 1])),
                "amplitude": float(robust_sd(np.exp(par[:, 0])))}

    values = {"exponent": float(b), "amplitude": float(np.exp(c))}
    stat_err = stat_of(samples)

    variants = []
    subsets = []
    if n >= 3:
        subsets += [("drop smallest x", slice(1, None)), ("drop largest x", slice(0, n - 1))]
    for label, sl in subsets:
        cv, bv = _wls(lx[sl], ly[sl], w[sl])
        par = _wls(lx[sl], ly_star[:, sl], w[sl])
        variants.append(Variant(label, {"exponent": float(bv), "amplitude": float(np.exp(cv))},
                                stat_of(par), n_points=n - 1, nested=True))
    if weighted:
        ones = np.ones(n)
        cv, bv = _wls(lx, ly, ones)
        par = _wls(lx, ly_star, ones)
        variants.append(Variant("unweighted", {"exponent": float(bv), "amplitude": float(np.exp(cv))},
                                stat_of(par), n_points=n, nested=True))
    sys_err = systematic_errors(values, stat_err, variants)
    return PowerLawFit(exponent=values["exponent"], amplitude=values["amplitude"],
                       errors=total_errors(stat_err, sys_err), stat_errors=stat_err, sys_errors=sys_err,
                       variants=variants, chi2=chi2, dof=dof, pvalue=pvalue, x=x, y=y, dy=dy, cov=cov,
                       samples=samples, notes=notes)
