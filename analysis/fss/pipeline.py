"""``collapse``: the pipeline from long-format data to a :class:`CollapseResult`."""
from __future__ import annotations

import numpy as np

from .. import budget
from .._validate import validated
from .data import validate_long_data
from .errors import (at_bound, bootstrap_fits, not_a_collapse, poor_collapse, s_plus_one, stat_errors,
                     undetermined)
from .optimise import fit_window
from .problem import Bounds, CollapseProblem, check_window, parse_parameters
from .result import CollapseResult
from .systematics import drift, variants

__all__ = ["collapse"]


@validated                  # arguments checked first: analysis/_validate.py
def collapse(size, x, y, dy, xc=None, nu=None, zeta=None, x_window=None, fixed=None,
             corrections=False, omega=None, b=None, bootstrap=200, systematics=True, seed=0,
             bounds: Bounds | None = None, s1=True) -> CollapseResult:
    """Finite-size-scaling data collapse ``y·L^(-zeta/nu) = F((x - xc)·L^(1/nu))``.

    Parameters
    ----------
    size, x, y, dy : 1-D arrays, one entry per data point (long format, any grids per size).
    xc, nu, zeta : initial guesses (None: middle of the x data, 1, 0). They need not be close:
        a global scan over the whole plausible range (x_c over the data, nu in [0.1, 10],
        zeta/nu in [-3, 3]) starts a local search from each of its best local minima.
    x_window : (lo, hi) in *scaled* x, (x - xc) L^(1/nu); only points inside enter S, as terms and
        as points of the master curve (re-derived self-consistently at the optimum). Same
        numbers as autoScale's ``-xr`` and pyfssa's ``x_bounds``; see README, Analysis.
    fixed : dict name -> value (or a list of names, fixed at their guesses), e.g. {"zeta": 0}.
    corrections : add the factor (1 + b·L^(-omega)) with free b, omega (guesses ``b``, ``omega``;
        fix omega through ``fixed``). b needs >= 4 sizes, a free omega >= 5.
    bootstrap : number of parametric bootstrap replicas (y + dy·N(0,1), refit from the optimum).
    systematics : refit the variants (sizes dropped, window x0.75/x1.5, corrections with omega = 1
        unless ``omega`` is given) for sys errors; refits pinned at a guard are reported in
        ``unidentified``, not used.
    seed : seed of the bootstrap noise (results are reproducible).
    bounds : :class:`Bounds`, guards against spurious minima (nu range, |zeta/nu|, overlap).

    Returns
    -------
    CollapseResult with values, stat/sys/total errors, S+1 widths, variants, drift and
    ``undetermined`` (parameter -> reason; their errors are NaN): x_c at the edge of the data
    (then nothing is determined: ``failed``), a parameter pinned at a guard, a flat S, a
    correction term with too few sizes, or bootstrap refits that fail or run to a guard.

    Notes
    -----
    The variants reuse the bootstrap noise of the central fit (paired replicas). Each variant's
    ``stat_errors`` is sqrt(stat_central² + var(variant − central)) with the variance of the
    *difference* taken over the paired replicas, so ``budget.systematic_errors`` subtracts exactly
    the deviation that noise alone produces (works for subsets and supersets of the data alike).
    """
    data = validate_long_data(size, x, y, dy)
    window = check_window(x_window)
    if not isinstance(bootstrap, (int, np.integer)) or bootstrap < 0 or bootstrap == 1:
        raise ValueError(f"bootstrap must be 0 or an integer >= 2, got {bootstrap!r}")
    names, free, p0 = parse_parameters(data, xc, nu, zeta, fixed, corrections, omega, b)
    if not free:
        raise ValueError("fixed fixes every parameter; nothing to fit")
    problem = CollapseProblem(data, names, free, p0, window, bounds)

    out = fit_window(problem, p0)
    if out is None:
        raise ValueError("no parameter set gives enough overlap between sizes (need >= 2 sizes "
                         f"and >= {problem.bounds.min_overlap:.0%} of the windowed points with a "
                         "master curve); check x_window and the data ranges")
    fit_problem, theta_c, S_c = out.problem, out.theta, out.S
    values = problem.params(theta_c)
    q = fit_problem.quality(values)
    steps = problem.steps(values)
    if s1:
        s1_widths, flat = s_plus_one(fit_problem, theta_c, S_c, steps)
    else:
        s1_widths, flat = {}, {}

    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((bootstrap, data.n)) * data.dy
    # local refits: a simplex of ~ the S+1 width (capped by the default step) fits the replicas
    local_steps = np.array([min(steps[i], s1_widths.get(n, np.inf)) for i, n in enumerate(free)])
    local_steps = np.where(np.isfinite(local_steps) & (local_steps > 0), local_steps, steps)
    boot = bootstrap_fits(problem, out, noise, local_steps) if bootstrap else \
        np.empty((0, len(free)))
    n_failed = int(np.sum(~np.all(np.isfinite(boot), axis=1))) if bootstrap else 0
    stat = stat_errors(boot, free, names, q.S)

    used, unidentified, drifts = [], [], {}
    if systematics:
        used, unidentified = variants(problem, values, stat, noise, boot, corrections, omega,
                                      local_steps, q)
        drifts = drift(problem, values, stat, used)
        # a monotone drift as the small sizes go says the central value still carries their
        # corrections: its extrapolation is a variant whose whole shift counts
        for n, dr in drifts.items():
            if dr.monotone and dr.extrapolated is not None and np.isfinite(dr.extrapolated):
                used.append(budget.Variant(f"drift of {n}, L_min -> inf", {n: dr.extrapolated},
                                           nested=False))
    sys_err = budget.systematic_errors(values, stat, used)
    sys_err = {n: sys_err.get(n, 0.0) for n in names}
    total = budget.total_errors(stat, sys_err)
    total = {n: total.get(n, 0.0) for n in names}

    notes = []
    S_judged = q.S
    if not_a_collapse(q.S, q.n_terms):
        # the plain form misses the data; if a correction term collapses them, the central
        # values stand, with that correction's shift (Akaike weight ~ 1) in the systematic error
        rescue = [v for v in used if v.weight is not None and v.weight > 0.5
                  and not not_a_collapse(v.quality, v.n_points)]
        if rescue:
            best = min(rescue, key=lambda v: v.quality)
            S_judged = None
            notes.append(f"the plain scaling form does not collapse the data (S_min = {q.S:.3g}), the "
                         f"{best.label} does (S = {best.quality:.3g}): its shift is in the systematic "
                         "error")
    und = undetermined(problem, values, boot, flat, S_judged, q.n_terms)
    for v in unidentified:
        if v.label.startswith("corrections"):
            notes.append(f"the refit with {v.label} ran to a guard: that correction is not identified "
                         "by these data and is not in the systematic error")
    for n in und:                       # no number for what the data do not determine
        stat[n] = sys_err[n] = total[n] = float("nan")
    return CollapseResult(
        xc=values["xc"], nu=values["nu"], zeta=values["zeta"], b=values.get("b"),
        omega=values.get("omega"), values=values, quality=q.S, n_points=q.n_terms, free=free,
        errors=total, stat_errors=stat, sys_errors=sys_err, s1_widths=s1_widths, undetermined=und,
        variants=used, drift=drifts, unidentified=unidentified, bootstrap_values=boot,
        n_bootstrap_failed=n_failed, poor_collapse=poor_collapse(q.S, q.n_terms),
        at_bound=at_bound(problem, values), notes=notes, problem=problem)
