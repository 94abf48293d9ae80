"""Statistical errors of the collapse and the checks that decide whether a parameter is determined
at all (ScalingCollapse.jl's errors).

* parametric bootstrap: y -> y + dy N(0, 1), refit from the optimum; the spread of the refits (a
  robust one, half the 16-84 % range) is the statistical error, scaled by sqrt(S_min) when the
  collapse is worse than its errors (S_min > 1: the PDG scale factor);
* the autoScale "S+1" widths, kept for comparison with other tools (they are much wider than a
  standard error: S + 1 is chi^2 + N for N terms);
* ``undetermined``: parameters the data cannot fix, each with the reason.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import brentq
from scipy.stats import chi2 as chi2_dist

from ..fitting import robust_sd
from .optimise import FitOutcome, refit_local
from .problem import CollapseProblem
from .quality import PENALTY

__all__ = ["bootstrap_fits", "s_plus_one", "at_bound", "poor_collapse", "not_a_collapse", "undetermined",
           "POOR_S", "POOR_MIN_POINTS", "BOOT_FAIL_MAX"]

POOR_S = 3.0            # S_min of a good collapse is ~1; its spread for n terms is ~sqrt(2/n)
POOR_MIN_POINTS = 20    # with >= 20 terms, S > 3 is far beyond that noise
BOOT_FAIL_MAX = 0.10    # more bootstrap refits failing or pinned at a guard: not determined
MIN_SIZES = {"b": 4, "omega": 5}   # sizes a correction term needs (3 sizes: x_c, nu, zeta use them up)


def bootstrap_fits(problem: CollapseProblem, outcome: FitOutcome, noise, steps):
    """Refit every replica y + noise[b] (noise over all points of ``problem``) from the optimum.

    With a window the point set is re-derived self-consistently for each replica, as for the
    data, because which points sit inside the window is itself a source of noise."""
    y = problem.data.y
    theta_c = outcome.theta
    out = np.full((len(noise), len(theta_c)), np.nan)
    for i, e in enumerate(noise):
        yb = y + e
        if problem.x_window is None:
            out[i] = refit_local(problem, theta_c, yb, steps)
            continue
        mask, fp, th = outcome.mask, outcome.problem, theta_c
        for it in range(4):
            if it > 0:
                if mask.sum() < problem.min_points or \
                        len(np.unique(problem.data.size[mask])) < 2:
                    th = np.full(len(theta_c), np.nan)
                    break
                fp = problem.replace(data=problem.data.subset(mask), x_window=None)
            th = refit_local(fp, th, yb[mask], steps)
            if not np.all(np.isfinite(th)):
                break
            new = problem.in_window(problem.params(th))
            if np.array_equal(new, mask):
                break
            mask = new
        out[i] = th
    return out


def s_plus_one(problem: CollapseProblem, theta, S_min, steps) -> tuple[dict, dict]:
    """autoScale error rule: shift one parameter (others fixed) until S = S_min + 1; the larger
    side. Returns (widths, flat) where flat[name] is True when S stays below S_min + 1 up to the
    guards on both sides (the rise is then the guard's penalty, not the data's)."""
    widths, flat = {}, {}
    for i, name in enumerate(problem.free):
        def g(delta, i=i):
            th = np.array(theta, float)
            th[i] += delta
            return problem.objective(th) - (S_min + 1.0)
        side_w, side_guard = [], []
        for sign in (+1.0, -1.0):
            d = 0.01 * steps[i]
            found = False
            for _ in range(60):
                if g(sign * d) > 0:
                    found = True
                    break
                d *= 1.6
            if not found:
                side_w.append(np.inf)
                side_guard.append(True)
                continue
            lo = d / 1.6 if d > 0.01 * steps[i] else 0.0
            try:
                w = abs(brentq(lambda t: g(sign * t), lo, d, xtol=1e-6 * steps[i]))
            except ValueError:
                w = d
            # a jump from well below S_min + 1 to the penalty: the rise is the guard's
            jump = g(sign * w * (1 + 1e-6) + sign * 1e-9 * steps[i]) + S_min + 1.0 >= PENALTY and \
                g(sign * w * (1 - 1e-3)) < -0.5
            side_w.append(w)
            side_guard.append(bool(jump))
        widths[name] = float(max(side_w))
        flat[name] = bool(all(side_guard))
    return widths, flat


def poor_collapse(S: float, n_terms: int) -> bool:
    """S_min >> 1 with enough terms: the residuals are not noise, so the local straight-line
    master curve (and everything fitted through it) is biased."""
    return bool(n_terms >= POOR_MIN_POINTS and S > POOR_S)


def at_bound(problem: CollapseProblem, p: dict, rtol=0.02) -> list:
    """Free parameters of ``problem`` that sit at (within rtol of) a guard of ``Bounds``."""
    bd, out = problem.bounds, []
    for n in problem.free:
        v = p[n]
        if n == "nu" and (v <= bd.nu[0] * (1 + rtol) or v >= bd.nu[1] * (1 - rtol)):
            out.append(n)
        elif n == "zeta" and abs(v / p["nu"]) >= bd.zeta_over_nu * (1 - rtol):
            out.append(n)
        elif n in ("b", "c", "s") and abs(v) >= getattr(bd, n) * (1 - rtol):
            out.append(n)
        elif n == "omega" and (v <= bd.omega[0] * (1 + rtol) or v >= bd.omega[1] * (1 - rtol)):
            out.append(n)
        elif n == "xc":       # xc is kept inside the data's x range
            lo, hi = problem.xrange
            if v <= lo + rtol * (hi - lo) or v >= hi - rtol * (hi - lo):
                out.append(n)
    return out


def _guard_text(problem: CollapseProblem, name: str) -> str:
    bd = problem.bounds
    lo, hi = problem.xrange
    return {"xc": f"the data's x range [{lo:.6g}, {hi:.6g}]",
            "nu": f"[{bd.nu[0]:g}, {bd.nu[1]:g}]",
            "zeta": f"|zeta/nu| <= {bd.zeta_over_nu:g}",
            "b": f"|b| <= {bd.b:g}", "c": f"|c| <= {bd.c:g}", "s": f"|s| <= {bd.s:g}",
            "omega": f"[{bd.omega[0]:g}, {bd.omega[1]:g}]"}[name]


def not_a_collapse(S: float, n_terms: int) -> bool:
    """S_min > POOR_S and, read as chi2 = S n_terms with n_terms degrees of freedom, a
    probability below 1e-6: the residuals are far beyond the noise."""
    return bool(np.isfinite(S) and S > POOR_S and n_terms > 0 and
                chi2_dist.sf(S * n_terms, n_terms) < 1e-6)


def undetermined(problem: CollapseProblem, values: dict, boot: np.ndarray, flat: dict,
                 S_min: float | None = None, n_terms: int = 0) -> dict:
    """{parameter: reason} for the free parameters the data do not determine."""
    out = {}
    free = problem.free
    pinned = at_bound(problem, values)
    n_sizes = len(problem.data.sizes)
    if "xc" in pinned:
        lo, hi = problem.xrange
        why = (f"x_c = {values['xc']:.6g} sits at the edge of the data's x range [{lo:.6g}, {hi:.6g}]: "
               "the sizes do not collapse about a point inside the data (a critical point that "
               "drifts with L, or a range that misses it), so no collapse parameter is a result")
        return {n: why for n in free}
    if S_min is not None and not_a_collapse(S_min, n_terms):
        why = (f"the data do not collapse within their errors (S_min = {S_min:.3g} over {n_terms} "
               "terms, chi2 probability < 1e-6): the scaling form does not describe them (corrections "
               "to scaling, a window too wide, too small sizes, or underestimated dy), so the optimum "
               "is not a measurement; narrow x_window about the transition or add sizes")
        return {n: why for n in free}
    for n in pinned:
        out[n] = f"{n} = {values[n]:.4g} at the edge of its allowed range ({_guard_text(problem, n)})"
    if "nu" in out and "zeta" in free:
        out.setdefault("zeta", "zeta = (zeta/nu) nu is not determined while nu is not")
    for n in free:
        if n in MIN_SIZES and n_sizes < MIN_SIZES[n] and n not in out:
            out[n] = (f"the correction term needs >= {MIN_SIZES[n]} sizes to identify {n} "
                      f"({n_sizes} given)")
        if flat.get(n) and n not in out:
            out[n] = ("flat quality: S stays below S_min + 1 up to the edges of the allowed range "
                      f"({_guard_text(problem, n)})")
    if len(boot):
        bad = ~np.all(np.isfinite(boot), axis=1)
        for k, th in enumerate(boot):
            if not bad[k] and at_bound(problem, problem.params(th)):
                bad[k] = True
        frac = bad.mean()
        if frac > BOOT_FAIL_MAX:
            for n in free:
                out.setdefault(n, f"{100 * frac:.0f}% of the bootstrap refits fail or run to a guard "
                                  "(the minimum of S is not stable under the noise of the data)")
    return out


def stat_errors(boot: np.ndarray, free, names, S_min: float) -> dict:
    """Robust bootstrap spread per free parameter, times sqrt(S_min) when S_min > 1."""
    if len(boot) == 0:
        return {n: 0.0 for n in names}
    sd = robust_sd(boot[np.all(np.isfinite(boot), axis=1)], axis=0)
    scale = float(np.sqrt(max(S_min, 1.0))) if np.isfinite(S_min) else 1.0
    return {n: (float(sd[free.index(n)]) * scale if n in free else 0.0) for n in names}
