"""Statistical + systematic error budget shared by every estimator in ``analysis``.

A fit on the full data gives central values and statistical errors (bootstrap). Refits on
*variants* of the analysis (smallest sizes dropped, x-window narrowed or widened, a
correction-to-scaling term, another fit form) show how much the answer depends on choices the
data cannot fix; their spread beyond what statistics alone explains is the systematic error.

A parameter the data cannot determine at all (flat quality, pinned at a bound, at the data's edge,
fewer sizes than the form needs, ...) is not given an error: every result carries
``undetermined``, a dict parameter -> reason, and its ``errors`` entries are NaN.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .fitting import line_covariance, weighted_line

__all__ = ["Variant", "Drift", "systematic_errors", "total_errors", "drift", "format_estimate",
           "shift_in_noise", "describe_variant", "akaike_weight"]


@dataclass(frozen=True)
class Variant:
    """One refit of the analysis under a changed choice.

    nested: its data are a subset or a superset of the central fit's (or the same data with a
    model that contains the central one), so part of its deviation is shared noise, which
    ``systematic_errors`` subtracts. nested=False: the whole deviation counts (a model the data
    cannot test, e.g. a correction term with three sizes, or an assumed exponent).
    """
    label: str                     # e.g. "drop L<=16", "window x0.75", "corrections", "probit"
    values: dict                   # parameter -> estimate
    stat_errors: dict = field(default_factory=dict)   # parameter -> statistical error of this refit
    quality: float | None = None   # fit quality (e.g. Houdayer-Hartmann S), if any
    n_points: int | None = None
    nested: bool = True
    raw_stat_errors: dict = field(default_factory=dict)   # its own bootstrap spread (for drifts)
    L_min: float | None = None     # smallest size it uses (size-drop variants)
    at_bound: tuple = ()           # free parameters pinned at a guard: the refit is not used
    weight: float | None = None    # Akaike weight of a model extension (a correction term): see
                                   # systematic_errors


@dataclass(frozen=True)
class Drift:
    """How an estimate moves as the smallest sizes are dropped."""
    parameter: str
    L_min: np.ndarray
    values: np.ndarray
    errors: np.ndarray
    monotone: bool                 # moves one way beyond its errors as L_min grows
    extrapolated: float | None = None          # value extrapolated to L_min -> infinity, if monotone
    extrapolated_error: float | None = None
    note: str = ""                 # why there is no extrapolation, or what its error contains


def systematic_errors(values: dict, stat_errors: dict, variants: list[Variant]) -> dict:
    """Per parameter: the largest deviation of a variant from the central value that statistics
    does not explain.

    For a nested variant the expected purely statistical deviation is sqrt(|s_v^2 - s_c^2|)
    (with s_v from paired replicas: the spread of the variant-central difference), so that much
    is subtracted in quadrature; a non-nested variant keeps its whole deviation.

    A model extension (``weight`` set: the central model plus a correction term) is averaged
    with the central model (Burnham & Anderson): with the Akaike weight w of the extension, the
    mean squared error about the central value is w (dev^2 + s_v^2 - s_c^2), so the extension's
    deviation *and* its extra uncertainty count as far as the data support the correction. A
    correction the data cannot exclude still widens the error; one they reject does not.

    Variants pinned at a guard are ignored. Without variants the error is 0.
    """
    out = {}
    for p, central in values.items():
        s_c = stat_errors.get(p, 0.0) or 0.0
        worst = 0.0
        for var in variants:
            if var.at_bound or p not in var.values or not np.isfinite(var.values[p]):
                continue
            dev2 = (var.values[p] - central) ** 2
            if var.weight is not None:
                s_v = var.stat_errors.get(p, s_c) or 0.0
                extra = abs(s_v ** 2 - s_c ** 2) if np.isfinite(s_v) else 0.0
                dev2 = var.weight * (dev2 + extra)
            elif var.nested:
                s_v = var.stat_errors.get(p, s_c) or 0.0
                if np.isfinite(s_v):
                    dev2 -= abs(s_v ** 2 - s_c ** 2)
            worst = max(worst, dev2)
        out[p] = float(np.sqrt(max(worst, 0.0)))
    return out


def shift_in_noise(var: Variant, p: str, central: float, s_c: float) -> float:
    """A variant's shift of parameter p in units of the noise of that shift (the spread of the
    paired difference, sqrt(|s_v^2 - s_c^2|)); NaN for a non-nested variant (its whole shift
    counts) or when the noise is unknown. |shift| > ~2 is a systematic the budget takes in."""
    if not var.nested or var.weight is not None or p not in var.values:
        return float("nan")
    s_v = var.stat_errors.get(p, np.nan)
    noise = np.sqrt(abs(s_v ** 2 - (s_c or 0.0) ** 2)) if np.isfinite(s_v) else np.nan
    return float((var.values[p] - central) / noise) if noise > 0 else float("nan")


def describe_variant(var: Variant, values: dict, stat: dict, params=None, digits: int = 5) -> str:
    """"label: p = v (shift +1.2 x noise), ..." for a summary."""
    parts = []
    for p in (params or var.values):
        if p not in var.values or p not in values:
            continue
        z = shift_in_noise(var, p, values[p], stat.get(p, 0.0))
        how = (f" (shift {z:+.1f} x its noise)" if np.isfinite(z) else
               f" (Akaike weight {var.weight:.2f})" if var.weight is not None else
               " (whole shift counts)" if not var.nested else "")
        parts.append(f"{p} = {var.values[p]:.{digits}g}{how}")
    return f"{var.label}: " + ", ".join(parts)


def total_errors(stat: dict, sys: dict) -> dict:
    return {p: float(np.hypot(stat.get(p, 0.0), sys.get(p, 0.0))) for p in set(stat) | set(sys)}


def drift(parameter: str, L_min, values, errors, nu_hint: float | None = None) -> Drift:
    """Detect a monotone drift of ``values`` with ``L_min`` and, if present, extrapolate.

    Monotone means every consecutive difference has the same sign and the total change exceeds
    twice the combined error of its end points. The extrapolation fits v = v_inf + a L_min^-omega
    with omega = 1/nu_hint if given, else omega = 1 (the leading correction of a shift). Its error
    is honest about what the fit cannot know: the refits share data (consecutive values are
    correlated, so the fit's own error is too small), so it is never below the error of the last
    refit; it is scaled by sqrt(chi2/dof) when the line misses the points; and it includes the
    spread of the extrapolation over omega/2 .. 2 omega, an exponent three or four values cannot
    fix.
    """
    L_min = np.asarray(L_min, float)
    values = np.asarray(values, float)
    errors = np.asarray(errors, float)
    ok = np.isfinite(values) & np.isfinite(errors) & (errors > 0)
    L, v, e = L_min[ok], values[ok], errors[ok]
    monotone = False
    if len(v) >= 3:
        steps = np.diff(v)
        same_sign = np.all(steps > 0) or np.all(steps < 0)
        monotone = bool(same_sign and abs(v[-1] - v[0]) > 2 * np.hypot(e[0], e[-1]))
    if not monotone:
        note = "fewer than 3 refits with errors" if len(v) < 3 else "no monotone drift beyond errors"
        return Drift(parameter, L, v, e, False, note=note)
    omega = 1.0 / nu_hint if nu_hint else 1.0
    w = 1.0 / e ** 2

    def extrapolate(om):
        c, a, chi2 = weighted_line(L ** -om, v, w)
        return float(c), float(chi2)

    x_inf, chi2 = extrapolate(omega)
    fit_err = float(np.sqrt(line_covariance(L ** -omega, w)[0, 0]))
    dof = len(v) - 2
    scale = max(1.0, np.sqrt(chi2 / dof)) if dof > 0 else 1.0
    spread = max(abs(extrapolate(omega * f)[0] - x_inf) for f in (0.5, 2.0))
    err = float(np.hypot(max(fit_err * scale, e[-1]), spread))
    return Drift(parameter, L, v, e, True, x_inf, err,
                 note=f"v_inf + a L^-omega, omega = {omega:.3g} (error includes omega/2 .. 2 omega)")


def format_estimate(name: str, value: float, stat=None, sys=None, total=None, reason=None,
                    fixed: bool = False, digits: int = 6) -> str:
    """One line of a summary: "name = v ± s (stat) ± y (sys) = ± t (total)", "name = v (fixed)",
    or "name: not determined (reason)" -- never a number with an error the data do not support."""
    if reason:
        return f"{name}: not determined ({reason})"
    if fixed:
        return f"{name} = {value:.{digits}g} (fixed)"
    parts = f"{name} = {value:.{digits}g}"
    if stat is not None:
        parts += f" ± {stat:.2g} (stat)"
    if sys is not None:
        parts += f" ± {sys:.2g} (sys)"
    if total is not None and (stat is not None or sys is not None):
        parts += f" = ± {total:.2g} (total)"
    elif total is not None:
        parts += f" ± {total:.2g}"
    return parts


def akaike_weight(chi2_central: float, k_central: int, chi2_ext: float, k_ext: int) -> float:
    """Akaike weight of an extended model against the central one: 1 / (1 + exp(dAIC / 2)),
    AIC = chi2 + 2 k (0.27 when the extension does not lower chi2 at all)."""
    d_aic = (chi2_ext + 2 * k_ext) - (chi2_central + 2 * k_central)
    return float(1.0 / (1.0 + np.exp(np.clip(d_aic / 2.0, -50, 50))))
