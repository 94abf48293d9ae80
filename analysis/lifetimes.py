"""Metastable lifetimes from right-censored first-exit / first-passage times.

Per replica the table holds the first step at which a planted student leaves the teacher
(``first_exit``) or a random one first reaches it (``first_passage``); -1 means "not within the
run": the time is right-censored at the end of the run (``stopped_at``, else the budget
``steps``). Dropping those replicas, or counting them at the budget, biases every lifetime
downwards exactly where it is long. Here, per (size, control) cell:

- the Kaplan-Meier survival curve S(t) with Greenwood errors, and the median lifetime with its
  68 % interval (Brookmeyer-Crowley: the times where |S - 1/2| <= one standard error); when
  S(end of run) > 1/2 most replicas never leave and the median is "censored beyond the budget"
  (a lower bound, never a number with an error);
- the exponential maximum-likelihood lifetime with censoring, tau = (total time at risk) /
  (number of events), error tau / sqrt(events) (a one-sided 95 % lower bound, total time / 3,
  when no replica leaves);
- the Weibull maximum-likelihood shape k with censoring (k = 1: a constant escape rate, the
  signature of activated escape over a barrier; k > 1: ageing or a deterministic lag).

Growth with N at a fixed control (a fixed distance from the threshold, e.g. inside the hysteresis
window): ln tau = a + b N (exponential: coexistence behind a barrier proportional to N, first
order) against ln tau = a + z ln N (a power of N: critical slowing down), with >= 4 sizes also
ln tau = a + b N + c ln N. Weighted least squares with the per-cell errors, chi2 and AIC; the
decision needs an AIC difference > 4 and must hold with the median lifetimes too, else
"undetermined". Cells with fewer than ``min_events`` events do not enter (noted).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from scipy.optimize import minimize_scalar

from .controls import with_control
from .stationary import as_table
from ._validate import validated

__all__ = ["Survival", "GrowthForm", "Lifetimes", "lifetimes", "kaplan_meier", "AIC_DECISIVE"]

AIC_DECISIVE = 4.0      # Burnham & Anderson: dAIC > 4 leaves "considerably less support" to the other
_LOWER95 = -math.log(0.05)   # no event in total time S: rate < 3.0 / S at 95 % (Poisson)


# ------------------------------------------------------------------------------ one cell
def kaplan_meier(times, observed):
    """Kaplan-Meier estimate. Returns (event times, S just after each, Greenwood se).
    Censoring at an event time counts the censored replica as still at risk."""
    t = np.asarray(times, float)
    e = np.asarray(observed, bool)
    if t.shape != e.shape or t.ndim != 1:
        raise ValueError(f"times and observed must be 1-D of equal length; got {t.shape}, {e.shape}")
    ut = np.unique(t[e])
    if len(ut) == 0:
        return ut, np.ones(0), np.zeros(0)
    d = np.array([np.sum((t == u) & e) for u in ut], float)
    n_risk = np.array([np.sum(t >= u) for u in ut], float)
    S = np.cumprod(1 - d / n_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.cumsum(np.where(n_risk > d, d / (n_risk * (n_risk - d)), np.inf))
        se = np.where(np.isfinite(g), S * np.sqrt(g), 0.0)
    return ut, S, se


@dataclass(frozen=True)
class Survival:
    """Lifetime statistics of one (size, control) cell of one start."""
    size: float
    control: float
    start: str
    event: str
    n: int                          # replicas at risk
    events: int                     # replicas that left (reached) within their run
    horizon: float                  # longest follow-up (steps)
    times: np.ndarray = field(repr=False)        # distinct event times
    survival: np.ndarray = field(repr=False)     # KM S(t) just after each
    survival_se: np.ndarray = field(repr=False)  # Greenwood
    median: float                   # KM median; inf when censored beyond the budget
    median_lo: float                # 68 % interval (Brookmeyer-Crowley); hi may be inf
    median_hi: float
    censored_beyond_budget: bool    # S(end of run) > 1/2: most replicas never leave
    tau: float                      # exponential MLE with censoring (NaN without events)
    tau_err: float
    tau_lower: float                # 95 % lower bound when events == 0 (else NaN)
    shape: float                    # Weibull MLE shape k (NaN with < 3 events)
    shape_err: float
    scale: float

    def describe(self) -> str:
        if self.events == 0:
            return (f"no event among {self.n} replicas within {self.horizon:g} steps: "
                    f"tau > {self.tau_lower:.3g} (95 %), censored beyond the budget")
        med = (f"median censored beyond the budget (> {self.horizon:g} steps)"
               if self.censored_beyond_budget else
               f"median {self.median:.4g} [{self.median_lo:.4g}, {self.median_hi:.4g}]")
        k = f", Weibull k = {self.shape:.3g} ± {self.shape_err:.2g}" if np.isfinite(self.shape) else ""
        return f"{self.events}/{self.n} events; tau = {self.tau:.4g} ± {self.tau_err:.2g}; {med}{k}"


def _weibull(t, e):
    """Weibull MLE with right-censoring: (shape, shape_err, scale); NaN with < 3 events."""
    d = int(e.sum())
    if d < 3 or np.any(t <= 0):
        return np.nan, np.nan, np.nan
    lt = np.log(t)
    sl_ev = float(lt[e].sum())
    lmax = lt.max()

    def negll(lk):
        k = math.exp(lk)
        s = np.exp(k * (lt - lmax)).sum()        # sum t^k, scaled by t_max^k for stability
        return -(d * lk + (k - 1) * sl_ev - d * (math.log(s / d) + k * lmax) - d)

    res = minimize_scalar(negll, bounds=(math.log(0.05), math.log(20.0)), method="bounded",
                          options={"xatol": 1e-6})
    lk = float(res.x)
    h = 1e-3
    curv = (negll(lk + h) - 2 * negll(lk) + negll(lk - h)) / h ** 2
    k = math.exp(lk)
    k_err = k / math.sqrt(curv) if curv > 0 else np.nan
    scale = float(np.exp(lmax + math.log(np.exp(k * (lt - lmax)).sum() / d) / k))
    return k, k_err, scale


def _cell(size, control, start, event, t, e) -> Survival:
    n, d = len(t), int(e.sum())
    horizon = float(t.max()) if n else 0.0
    ut, S, se = kaplan_meier(t, e)
    s_end = float(S[-1]) if len(S) else 1.0
    beyond = s_end > 0.5
    if beyond or len(S) == 0:
        median = np.inf
    else:
        median = float(ut[np.argmax(S <= 0.5)])
    lo_ok = S - se <= 0.5                       # S within one se of 1/2, or below
    hi_ok = S + se < 0.5
    median_lo = float(ut[np.argmax(lo_ok)]) if lo_ok.any() else np.inf
    median_hi = float(ut[np.argmax(hi_ok)]) if hi_ok.any() else np.inf
    at_risk = float(t.sum())
    if d > 0:
        tau, tau_err, tau_lower = at_risk / d, at_risk / d / math.sqrt(d), np.nan
    else:
        tau, tau_err, tau_lower = np.nan, np.nan, at_risk / _LOWER95
    k, k_err, scale = _weibull(t, e)
    return Survival(size=float(size), control=float(control), start=str(start), event=event, n=n,
                    events=d, horizon=horizon, times=ut, survival=S, survival_se=se, median=median,
                    median_lo=median_lo, median_hi=median_hi, censored_beyond_budget=bool(beyond),
                    tau=tau, tau_err=tau_err, tau_lower=tau_lower, shape=k, shape_err=k_err, scale=scale)


# ----------------------------------------------------------------------------- growth forms
@dataclass(frozen=True)
class GrowthForm:
    """ln tau(N) fitted by one form (weighted least squares)."""
    name: str                       # "exponential" | "power" | "exponential x power"
    formula: str
    params: dict
    errors: dict
    chi2: float
    dof: int
    pvalue: float                   # NaN when dof = 0
    aic: float                      # chi2 + 2 (number of parameters)


_FORMS = {"exponential": ("ln tau = a + b N", ("a", "b"), lambda N: [np.ones_like(N), N]),
          "power": ("ln tau = a + z ln N", ("a", "z"), lambda N: [np.ones_like(N), np.log(N)]),
          "exponential x power": ("ln tau = a + b N + c ln N", ("a", "b", "c"),
                                  lambda N: [np.ones_like(N), N, np.log(N)])}


def _fit_form(name, N, y, s) -> GrowthForm:
    formula, names, cols = _FORMS[name]
    A = np.column_stack(cols(N))
    w = 1 / s ** 2
    cov = np.linalg.inv(A.T @ (A * w[:, None]))
    coef = cov @ (A.T @ (w * y))
    chi2 = float(np.sum(w * (y - A @ coef) ** 2))
    dof = len(N) - len(names)
    p = float(stats.chi2.sf(chi2, dof)) if dof > 0 else np.nan
    return GrowthForm(name, formula, dict(zip(names, map(float, coef))),
                      dict(zip(names, map(float, np.sqrt(np.diag(cov))))), chi2, dof, p,
                      chi2 + 2 * len(names))


def _decide(N, y, s, size):
    """(growth, reason, forms)."""
    forms = {"exponential": _fit_form("exponential", N, y, s), "power": _fit_form("power", N, y, s)}
    if len(N) >= 4:
        forms["exponential x power"] = _fit_form("exponential x power", N, y, s)
    if len(N) < 3:
        return "undetermined", (f"{len(N)} size(s) with enough events: two-parameter forms fit any "
                                "2 points, need >= 3"), forms
    ex, pw = forms["exponential"], forms["power"]
    b, be = ex.params["b"], ex.errors["b"]
    z, ze = pw.params["z"], pw.errors["z"]
    if b < 2 * be and z < 2 * ze:
        return "none", (f"tau does not grow with {size} beyond errors (b = {b:.3g} ± {be:.2g}, "
                        f"z = {z:.3g} ± {ze:.2g})"), forms
    # an exponential-type form counts only with a growing exponential: "exponential x power" with
    # b <= 0 is a power law with a correction, not evidence of a barrier
    exp_forms = [ex] + [f for k, f in forms.items() if k == "exponential x power"
                        and f.params["b"] > 2 * f.errors["b"]]
    exp_best = min(exp_forms, key=lambda f: f.aic)
    d_aic = pw.aic - exp_best.aic
    detail = (f"AIC(power) - AIC({exp_best.name}) = {d_aic:.3g}; b = {b:.3g} ± {be:.2g} per unit "
              f"{size}, z = {z:.3g} ± {ze:.2g}; chi2/dof: exponential {ex.chi2:.3g}/{ex.dof}, "
              f"power {pw.chi2:.3g}/{pw.dof}")
    if d_aic > AIC_DECISIVE:
        best = exp_best
        verdict = "exponential"
    elif d_aic < -AIC_DECISIVE:
        best = pw
        verdict = "power"
    else:
        return "undetermined", f"neither form decisively better ({detail})", forms
    if best.dof > 0 and best.pvalue < 1e-3:
        return "undetermined", f"{verdict} preferred but it fits poorly too (p = {best.pvalue:.2g}; {detail})", forms
    if verdict == "exponential" and not b > 2 * be:
        return "undetermined", f"exponential preferred but its growth rate is not significant ({detail})", forms
    return verdict, detail, forms


# ----------------------------------------------------------------------------------- result
@dataclass(frozen=True)
class Lifetimes:
    """Result of ``lifetimes``: every cell's survival statistics and the growth of the lifetime
    with the size at a fixed control."""
    control: str
    size: str
    start: str
    event: str
    cells: tuple                    # Survival per (size, control), sorted
    at: dict                        # size -> control value of the growth comparison
    sizes: np.ndarray               # sizes in the comparison (>= min_events events)
    log_tau: np.ndarray             # ln tau (exponential MLE) there
    log_tau_err: np.ndarray
    forms: dict                     # name -> GrowthForm
    growth: str                     # "exponential" | "power" | "none" | "undetermined"
    growth_reason: str
    barrier: float                  # b of ln tau = a + b N (per unit of size): N times a barrier
    barrier_err: float
    z: float                        # z of ln tau = a + z ln N
    z_err: float
    median_growth: str              # the same decision on the KM medians ("" if not available)
    notes: tuple = ()

    def cell(self, size, control) -> Survival:
        for c in self.cells:
            if math.isclose(c.size, float(size)) and math.isclose(c.control, float(control), rel_tol=1e-9):
                return c
        raise ValueError(f"no cell {self.size}={size}, {self.control}={control}")

    def compared(self) -> list:
        """The Survival cells of the growth comparison, by size."""
        return [self.cell(N, x) for N, x in sorted(self.at.items())]

    def summary(self) -> str:
        L = [f"lifetimes: {self.event} from {self.start!r} starts (right-censored at the end of each run)"]
        for c in self.cells:
            L.append(f"  {self.size}={c.size:g}, {self.control}={c.control:g}: {c.describe()}")
        if self.at:
            L.append(f"  growth with {self.size} at " + ", ".join(f"{self.size}={N:g}: {self.control}={x:g}"
                                                            for N, x in sorted(self.at.items())))
        for f in self.forms.values():
            par = ", ".join(f"{k} = {v:.4g} ± {self.forms[f.name].errors[k]:.2g}" for k, v in f.params.items())
            L.append(f"    {f.name:<20} {f.formula:<26} {par}; chi2/dof = {f.chi2:.3g}/{f.dof}, AIC = {f.aic:.3g}")
        L.append(f"  -> {self.growth}: {self.growth_reason}")
        if self.median_growth:
            L.append(f"  (with the Kaplan-Meier medians instead: {self.median_growth})")
        L += [f"  note: {n}" for n in self.notes]
        return "\n".join(L)

    def plot(self, ax=None, kind: str = "growth"):
        """kind="growth": ln tau against N with both forms; "survival": the Kaplan-Meier curves
        of the compared cells; "control": tau of every cell against the control, per size."""
        from .plots import lifetimes_plot
        return lifetimes_plot(self, ax=ax, kind=kind)


# --------------------------------------------------------------------------------- function
@validated                  # arguments checked first: analysis/_validate.py
def lifetimes(table, control: str = "batch_size", size: str = "N", *, start: str = "teacher",
              event: str | None = None, init: str = "init", at=None, budget: str = "steps",
              min_events: int = 5) -> Lifetimes:
    """Survival statistics of ``event`` per (size, control) cell for one start, and the growth of
    the lifetime with the size at the control ``at``.

    start: the ``init`` label of the replicas analysed.
    event: the column of event steps (-1 = not within the run). Default "first_exit" for
        start="teacher" (the lifetime of the planted state), else "first_passage". For
        "first_exit" the clock starts at ``first_passage`` (0 for a planted start; replicas that
        never reached the state are not at risk and are dropped, with a note).
    at: the control value of the growth comparison: a number (the nearest grid value at every
        size), a dict size -> value, or a ``Thresholds`` result: per size the middle of its window
        (the common threshold when the starts agree), a fixed -- zero -- distance from the
        threshold. There a first-order transition has two phases behind a barrier; a continuous one
        needs no rare fluctuation to leave or reach the planted state. Beware fixed controls away
        from the threshold: reaching a fixed ordered state where it is atypical takes a large
        deviation (exponential in N) whatever the order. None: cells only.
    budget: the run length column; the follow-up ends at ``stopped_at`` when the table has it.
    min_events: a cell enters the growth comparison with at least this many events.
    """
    if not isinstance(min_events, (int, np.integer)) or min_events < 2:
        raise ValueError(f"min_events={min_events!r} must be an integer >= 2")
    t, control = with_control(as_table(table), control)
    event = event or ("first_exit" if start == "teacher" else "first_passage")
    for name in (control, size, init, event):
        t._check(name)
    end_col = "stopped_at" if "stopped_at" in t else budget
    t._check(end_col)
    t = t.where(np.asarray(t[init]).astype(str) == str(start))
    if len(t) == 0:
        raise ValueError(f"start={start!r}: no rows with {init}={start!r}")
    notes = []
    ev = np.asarray(t[event], float)
    end = np.asarray(t[end_col], float)
    if np.any(~np.isfinite(ev)) or np.any(ev < -1) or np.any(ev != np.round(ev)):
        raise ValueError(f"column {event!r} must hold integer steps >= 0 or -1 (never); got values in "
                         f"[{np.nanmin(ev):g}, {np.nanmax(ev):g}]")
    if np.any(ev > end):
        raise ValueError(f"column {event!r} exceeds {end_col!r} in {int(np.sum(ev > end))} rows")
    origin = np.zeros(len(t))
    keep = np.ones(len(t), bool)
    if event == "first_exit":
        t._check("first_passage")
        origin = np.asarray(t["first_passage"], float)
        never = origin < 0
        if never.any():
            notes.append(f"{int(never.sum())} replicas never reached the planted state: not at risk of "
                         "leaving it, dropped")
        keep &= ~never
    observed = ev >= 0
    dur = np.where(observed, ev, end) - origin
    if event == "first_passage":
        started = observed & (ev == 0)
        if started.any():
            notes.append(f"{int(started.sum())} replicas started in the planted state (first_passage = 0): "
                         "dropped from the first-passage times")
        keep &= ~started
    keep &= dur > 0
    xs, Ns = np.asarray(t[control], float), np.asarray(t[size], float)
    cells = []
    for N in np.unique(Ns[keep]):
        for x in np.unique(xs[keep & (Ns == N)]):
            sel = keep & (Ns == N) & (xs == x)
            cells.append(_cell(N, x, start, event, dur[sel], observed[sel]))

    at_map = _resolve_at(at, cells, size, control, notes)
    use = [c for c in (_find(cells, N, x) for N, x in sorted(at_map.items())) if c is not None]
    few = [c for c in use if c.events < min_events]
    for c in few:
        notes.append(f"{size}={c.size:g}: {c.events} of {c.n} replicas had the event within "
                     f"{c.horizon:g} steps (< min_events={min_events}): "
                     + ("lifetime censored beyond the budget, " if c.censored_beyond_budget else "")
                     + "left out of the growth comparison")
    use = [c for c in use if c.events >= min_events]
    Nu = np.array([c.size for c in use])
    y = np.array([math.log(c.tau) for c in use])
    s = np.array([1 / math.sqrt(c.events) for c in use])
    forms, growth, reason, med_growth = {}, "undetermined", "no control value given (at=None)", ""
    if at_map:
        if len(use) >= 2:
            growth, reason, forms = _decide(Nu, y, s, size)
            med = [c for c in use if np.isfinite(c.median) and np.isfinite(c.median_lo)]
            if len(med) == len(use) and len(use) >= 3:
                ym = np.log([c.median for c in med])
                hi = np.array([c.median_hi if np.isfinite(c.median_hi) else 2 * c.median - c.median_lo
                               for c in med])
                sm = np.maximum(0.5 * (np.log(hi) - np.log([c.median_lo for c in med])), 0.05)
                med_growth = _decide(Nu, ym, sm, size)[0]
                opposite = {"exponential": "power", "power": "exponential"}.get(growth)
                if med_growth == opposite:
                    reason = (f"the mean lifetimes say {growth} but the medians say {med_growth}: "
                              f"the lifetime's definition decides ({reason})")
                    growth = "undetermined"
            elif growth in ("exponential", "power"):
                notes.append("median lifetimes not determined at every size: the decision rests on the "
                             "exponential-MLE lifetimes alone")
        else:
            reason = f"{len(use)} size(s) with >= {min_events} events: no growth comparison"
    ex, pw = forms.get("exponential"), forms.get("power")
    return Lifetimes(control=control, size=size, start=str(start), event=event, cells=tuple(cells),
                     at=at_map, sizes=Nu, log_tau=y, log_tau_err=s, forms=forms, growth=growth,
                     growth_reason=reason,
                     barrier=ex.params["b"] if ex else np.nan, barrier_err=ex.errors["b"] if ex else np.nan,
                     z=pw.params["z"] if pw else np.nan, z_err=pw.errors["z"] if pw else np.nan,
                     median_growth=med_growth, notes=tuple(notes))


def _find(cells, N, x):
    for c in cells:
        if math.isclose(c.size, N) and math.isclose(c.control, x, rel_tol=1e-9, abs_tol=1e-12):
            return c
    return None


def _resolve_at(at, cells, size, control, notes) -> dict:
    """size -> grid control value of the growth comparison."""
    if at is None:
        return {}
    by_size: dict = {}
    for c in cells:
        by_size.setdefault(c.size, []).append(c.control)
    if hasattr(at, "midpoint") and hasattr(at, "sizes"):     # a Thresholds result
        targets = {}
        for i, N in enumerate(at.sizes):
            m = at.midpoint(i)
            if not np.isfinite(m):          # one threshold only: that one
                m = next((v for v in (at.x_planted[i], at.x_other[i]) if np.isfinite(v)), np.nan)
            if np.isfinite(m):
                targets[float(N)] = float(m)
        if not targets:
            notes.append("at=thresholds: no size has a threshold; no growth comparison")
            return {}
        notes.append(f"growth compared at each size's window middle (its threshold when the starts "
                     f"agree), nearest grid value: " + ", ".join(f"{size}={N:g}: {m:.4g}"
                                                               for N, m in sorted(targets.items())))
    elif isinstance(at, dict):
        targets = {float(k): float(v) for k, v in at.items()}
    else:
        try:
            target = float(at)
        except (TypeError, ValueError):
            raise ValueError(f"at={at!r} must be a number, a dict size -> value or a Thresholds result")
        targets = {N: target for N in by_size}
    out, moved = {}, []
    for N, target in targets.items():
        grid = np.asarray(by_size.get(N, []), float)
        if not len(grid):
            notes.append(f"at: {size}={N:g} has no cells")
            continue
        x = float(grid[np.argmin(np.abs(grid - target))])
        if not math.isclose(x, target, rel_tol=1e-6, abs_tol=1e-12):
            moved.append(f"{size}={N:g}: {x:g}")
        out[N] = x
    if moved:
        notes.append(f"nearest grid values of {control} used for the requested value(s) "
                     f"{', '.join(sorted({f'{v:.4g}' for v in targets.values()}))}: " + ", ".join(moved))
    if len(set(out.values())) > 1:
        notes.append(f"the compared {control} differs between sizes: " +
                     ", ".join(f"{size}={N:g}: {x:g}" for N, x in sorted(out.items())))
    return out
