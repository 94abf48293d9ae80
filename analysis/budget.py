"""Statistical + systematic error budget shared by every estimator in ``analysis``.

A fit on the full data gives central values and statistical errors (bootstrap). Refits on
*variants* of the analysis (smallest sizes dropped, x-window narrowed or widened, a
correction-to-scaling term, another fit form) show how much the answer depends on choices the
data cannot fix; their spread beyond what statistics alone explains is the systematic error.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Variant:
    """One refit of the analysis under a changed choice."""
    label: str                     # e.g. "drop L<=16", "window x0.75", "corrections", "probit"
    values: dict                   # parameter -> estimate
    stat_errors: dict = field(default_factory=dict)   # parameter -> statistical error of this refit
    quality: float | None = None   # fit quality (e.g. Houdayer-Hartmann S), if any
    n_points: int | None = None
    nested: bool = True            # uses a subset of the central fit's data (so its noise is shared)


@dataclass
class Drift:
    """How an estimate moves as the smallest sizes are dropped."""
    parameter: str
    L_min: np.ndarray
    values: np.ndarray
    errors: np.ndarray
    monotone: bool                 # moves one way beyond its errors as L_min grows
    extrapolated: float | None = None          # value extrapolated to L_min -> infinity, if monotone
    extrapolated_error: float | None = None


def systematic_errors(values: dict, stat_errors: dict, variants: list[Variant]) -> dict:
    """Per parameter: the largest deviation of a variant from the central value that statistics
    does not explain.

    For a nested variant (its data a subset or a superset of the central fit's, e.g. a size
    dropped or a wider window) the expected purely statistical deviation is sqrt(|s_v^2 - s_c^2|),
    so that much is subtracted in quadrature; a non-nested variant keeps its whole deviation.
    Without variants the error is 0.
    """
    out = {}
    for p, central in values.items():
        s_c = stat_errors.get(p, 0.0) or 0.0
        worst = 0.0
        for var in variants:
            if p not in var.values or not np.isfinite(var.values[p]):
                continue
            dev2 = (var.values[p] - central) ** 2
            if var.nested:
                s_v = var.stat_errors.get(p, s_c) or 0.0
                dev2 -= abs(s_v ** 2 - s_c ** 2)
            worst = max(worst, dev2)
        out[p] = float(np.sqrt(max(worst, 0.0)))
    return out


def total_errors(stat: dict, sys: dict) -> dict:
    return {p: float(np.hypot(stat.get(p, 0.0), sys.get(p, 0.0))) for p in set(stat) | set(sys)}


def drift(parameter: str, L_min, values, errors, nu_hint: float | None = None) -> Drift:
    """Detect a monotone drift of ``values`` with ``L_min`` and, if present, extrapolate.

    Monotone means every consecutive difference has the same sign and the total change exceeds
    twice the combined error of its end points. The extrapolation fits v = v_inf + a L_min^-omega
    with omega = 1/nu_hint if given, else omega = 1 (the leading correction of a shift).
    """
    L_min = np.asarray(L_min, float)
    values = np.asarray(values, float)
    errors = np.asarray(errors, float)
    ok = np.isfinite(values)
    L, v, e = L_min[ok], values[ok], errors[ok]
    monotone = False
    extrapolated = extrapolated_error = None
    if len(v) >= 3:
        steps = np.diff(v)
        same_sign = np.all(steps > 0) or np.all(steps < 0)
        monotone = bool(same_sign and abs(v[-1] - v[0]) > 2 * np.hypot(e[0], e[-1]))
    if monotone:
        omega = 1.0 / nu_hint if nu_hint else 1.0
        A = np.column_stack([np.ones_like(L), L ** -omega])
        w = 1.0 / np.maximum(e, 1e-300)
        coef, *_ = np.linalg.lstsq(A * w[:, None], v * w, rcond=None)
        cov = np.linalg.pinv((A * w[:, None]).T @ (A * w[:, None]))
        extrapolated = float(coef[0])
        extrapolated_error = float(np.sqrt(cov[0, 0]))
    return Drift(parameter, L, v, e, monotone, extrapolated, extrapolated_error)
