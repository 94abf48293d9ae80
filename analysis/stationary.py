"""Thresholds of a transition from two starts, and the hysteresis window between them.

Input: one row per (task, replica) with a start label (column ``init``: "teacher" = planted,
"random", ...), a stationary per-replica observable in [0, 1] (``time_at_teacher``: the fraction
of the steps of the measurement window at which the student computes the teacher's function), the
control (e.g. the mini-batch size m) and the size N.

Per start and size, the threshold is the control value where the stationary observable crosses
``level`` (1/2): from planted starts it is the stability limit of the teacher state, from random
starts its reachability. Both come from ``analysis.critical_point`` (a sigmoid in the control;
the other fit forms give the systematic error; growth or extrapolation in N with its own budget).
A per-replica fraction is not a binomial count: each cell enters with the variance of its mean
measured over its replicas (an effective number of trials, see ``thresholds(errors=...)``), or
through a bootstrap of the replica values themselves.

The hysteresis window is the distance between the two thresholds, in the fit coordinate (the log
ratio x_random / x_planted when the control is fitted in log scale), signed so that > 0 means the
planted state survives where the other start does not reach it. Whether it persists, grows,
shrinks or is absent as N grows is decided from its values with total errors ("not determined"
when the data cannot tell).

A window means nothing if the runs stopped before it ended: ``require_stationary`` refuses such
rows (the stop rule, ``stopped_at`` against ``window_stop``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .controls import with_control
from .table import Table
from ._validate import validated

__all__ = ["Thresholds", "thresholds", "require_stationary", "early_stopped", "NO_STOP"]

NO_STOP = ("", "none", "nan", "null", "false")     # spellings of "no stop rule" in a table column
_SIG = 2.0                                          # "beyond errors" = 2 total sigma


# ----------------------------------------------------------------------------- stationarity
def as_table(data) -> Table:
    """A Table as is, a dict of equal-length arrays as a Table; anything else is a ValueError."""
    if isinstance(data, Table):
        return data
    if isinstance(data, dict):
        return Table.from_arrays(**data)
    raise ValueError(f"expected an analysis.Table or a dict of arrays; got {type(data).__name__}")


def _stop_set(values) -> np.ndarray:
    """True where a stop rule is set (None / NaN / "" / "none" mean no stop)."""
    v = np.asarray(values)
    if v.dtype.kind == "f":
        return np.isfinite(v) & (v != 0)
    if v.dtype.kind == "b":
        return v.copy()
    return np.array([str(s).strip().lower() not in NO_STOP for s in v], bool)


def early_stopped(table) -> np.ndarray:
    """Rows whose measurement window was cut by an early stop: ``stopped_at < window_stop``
    (or, without those columns, any row with a stop rule set: it cannot be checked)."""
    t = as_table(table)
    n = len(t)
    stop = _stop_set(t["stop"]) if "stop" in t else np.zeros(n, bool)
    if "stopped_at" in t and "window_stop" in t:
        cut = np.asarray(t["stopped_at"], float) < np.asarray(t["window_stop"], float)
        return cut & stop if "stop" in t else cut      # a divergence cuts the window too
    return stop


def require_stationary(table, what: str) -> list:
    """Raise ValueError when some row's window was cut by an early stop; return notes (e.g. a
    stop rule that was set but never fired before the window's end)."""
    t = as_table(table)
    cut = early_stopped(t)
    if cut.any():
        rules = np.unique(np.asarray(t["stop"]).astype(str)[cut]) if "stop" in t else []
        raise ValueError(
            f"{what} needs stationary observables, but {int(cut.sum())} of {len(t)} rows stopped "
            f"early (stop in {list(rules)}; stopped_at < window_stop): their window is cut and "
            "the survivors are a biased sample. Rerun without early stopping (stop=None) or select "
            "full-length rows, e.g. table.where(table['stopped_at'] >= table['window_stop'])")
    notes = []
    if "stop" in t and _stop_set(t["stop"]).any():
        notes.append(f"{what}: a stop rule is set ({sorted(set(np.asarray(t['stop']).astype(str)))}) "
                     "but no run stopped before the end of its window")
    return notes


def split_starts(t: Table, init: str, starts) -> dict:
    """{start: sub-table}; ValueError naming the starts present when one is missing."""
    t._check(init)
    labels = np.asarray(t[init]).astype(str)
    present = sorted(set(labels.tolist()))
    out = {}
    for s in starts:
        sel = labels == str(s)
        if not sel.any():
            raise ValueError(f"starts={tuple(starts)}: no rows with {init}={s!r}; the table has "
                             f"{init} in {present}")
        out[s] = t[sel]
    return out


# ----------------------------------------------------------------------------------- result
@dataclass(frozen=True)
class Thresholds:
    """Result of ``thresholds``; per-size arrays aligned with ``sizes``.

    ``window`` is in the fit coordinate (ln x when ``log_control``, else x): > 0 = hysteresis.
    ``trend``: "persists" | "grows" | "shrinks" | "absent" | "not determined", with
    ``trend_reason``; ``slope`` = d window / d ln N with its error (weighted fit, total errors).
    """
    control: str
    size: str
    observable: str
    level: float
    log_control: bool
    starts: tuple                  # (planted, other)
    planted: object                # CriticalPoint of the planted start: stability of the teacher
    other: object                  # CriticalPoint of the other start: reachability
    sizes: np.ndarray
    x_planted: np.ndarray          # thresholds per size (control units), NaN where none
    x_other: np.ndarray
    window: np.ndarray
    window_stat: np.ndarray
    window_sys: np.ndarray
    window_err: np.ndarray
    width: np.ndarray              # larger of the two transition widths (fit coordinate)
    direction: int                 # +1: the observable rises with the control; -1: it falls
    trend: str
    trend_reason: str
    slope: float
    slope_err: float
    notes: tuple = ()
    window_samples: np.ndarray | None = field(default=None, repr=False)   # (B, sizes)

    def midpoint(self, i: int) -> float:
        """Control value in the middle of the window of ``sizes[i]`` (geometric mean when
        ``log_control``); NaN when a threshold is missing."""
        a, b = self.x_planted[i], self.x_other[i]
        if not (np.isfinite(a) and np.isfinite(b)):
            return np.nan
        return float(np.sqrt(a * b)) if self.log_control else float(0.5 * (a + b))

    def summary(self) -> str:
        p, o = self.starts
        c = self.control
        unit = f"ln({c}_{o}/{c}_{p})" if self.log_control else f"{c}_{o} - {c}_{p}"
        L = [f"thresholds where <{self.observable}> = {self.level:g}, from {self.starts[0]!r} (planted: "
             f"stability) and {self.starts[1]!r} starts (reachability); window = {unit}",
             f"  {self.size:>7} {c + '_' + p:>14} {c + '_' + o:>14} {'window':>10} {'stat':>8} "
             f"{'sys':>8} {'total':>8}"]
        for i, N in enumerate(self.sizes):
            ep, eo = _err_at(self.planted, N), _err_at(self.other, N)
            L.append(f"  {N:>7g} {_pm(self.x_planted[i], ep):>14} {_pm(self.x_other[i], eo):>14} "
                     f"{self.window[i]:>10.4g} {self.window_stat[i]:>8.2g} {self.window_sys[i]:>8.2g} "
                     f"{self.window_err[i]:>8.2g}")
        L.append(f"  hysteresis window with {self.size}: {self.trend} ({self.trend_reason})")
        for name, cp in ((p, self.planted), (o, self.other)):
            lim = getattr(cp, "limit", "")
            if lim == "grows" and np.isfinite(getattr(cp, "kappa", np.nan)):
                L.append(f"  {name}: {c}_c grows as {self.size}^kappa, kappa = {cp.kappa:.3g} ± "
                         f"{cp.errors['kappa']:.2g} (stat ⊕ sys)")
            elif np.isfinite(getattr(cp, "xc_inf", np.nan)):
                L.append(f"  {name}: {c}_c(inf) = {cp.xc_inf:.4g} ± {cp.errors['xc_inf']:.2g} "
                         f"(stat {cp.stat_errors['xc_inf']:.2g}, sys {cp.sys_errors['xc_inf']:.2g}); "
                         f"large-{self.size} form: {lim or 'n/a'}")
            elif lim:
                L.append(f"  {name}: large-{self.size} form {lim}: {cp.limit_reason}")
        L += [f"  note: {n}" for n in self.notes]
        return "\n".join(L)

    def plot(self, ax=None, kind: str = "curves"):
        """kind="curves": the observable against the control per size and start, thresholds
        marked; "window": the hysteresis window against N."""
        from .plots import thresholds_plot
        return thresholds_plot(self, ax=ax, kind=kind)


def _pm(v, e):
    if not np.isfinite(v):
        return "none"
    return f"{v:.4g}±{e:.2g}" if np.isfinite(e) else f"{v:.4g}"


def _err_at(cp, N):
    j = np.flatnonzero(cp.sizes == N)
    return float(cp.xc_err[j[0]]) if len(j) else np.nan


def _robust_sd(samples, axis=0):
    """Half the 16-84 % range (the sd for Gaussian samples; not ruined by rare wild refits)."""
    s = np.asarray(samples, float)
    ok = np.isfinite(s)
    if s.ndim == 1:
        return float(0.5 * np.subtract(*np.percentile(s[ok], [84, 16]))) if ok.sum() > 2 else np.nan
    out = np.full(s.shape[1], np.nan)
    for j in range(s.shape[1]):
        col = s[ok[:, j], j]
        if len(col) > 2:
            out[j] = 0.5 * (np.percentile(col, 84) - np.percentile(col, 16))
    return out


# --------------------------------------------------------------------------------- function
@validated                  # arguments checked first: analysis/_validate.py
def thresholds(table, control: str = "batch_size", size: str = "N", observable: str = "time_at_teacher",
               *, init: str = "init", starts=("teacher", "random"), level: float = 0.5,
               method: str = "logistic", bootstrap: int = 300, seed: int = 0,
               log_control: bool | None = None, extrapolate: bool = True, nu: float | None = None,
               bounds=None, errors: str = "cells") -> Thresholds:
    """Thresholds from planted and other starts, and the hysteresis window between them.

    table: an ``analysis.Table`` (or dict of arrays), one row per replica, with columns
        ``control`` (a column or a ratio/product such as "batch_size/P"), ``size``, ``init`` and
        ``observable`` (a stationary per-replica value in [0, 1]).
    starts: (planted, other) labels of ``init``: the planted start (the ordered state, e.g.
        "teacher") and the start in the competing phase (e.g. "random").
    level: the crossing level of the observable (1/2: half the window spent at the teacher).
    method, bootstrap, seed, log_control, extrapolate, nu, bounds: as ``analysis.critical_point``
        (the same fit coordinate is used for both starts; errors: bootstrap over replicas within
        every cell (stat), other fit forms (sys); the large-N form of each threshold -- a finite
        limit or growth N^kappa -- with the issue-6 budget).
    errors: "cells" (default): each cell's replica values enter through their mean and measured
        variance, as n_eff = n ybar (1 - ybar) / s^2 binomial trials, so the binomial fit weights
        every cell by the inverse variance of its mean and its parametric bootstrap reproduces the
        replica-to-replica scatter (fast, vectorised); "replicas": a nonparametric bootstrap of
        the replica values with least-squares sigmoid fits (no Gaussian step; ~100x slower).
    The window's systematic error combines the two starts' fit-form errors in quadrature.
    Raises ValueError when a run stopped before the end of its window (``require_stationary``).
    """
    from . import critical_point     # the public name: robust to how the package splits modules

    if not 0 < level < 1:
        raise ValueError(f"level={level} must lie in (0, 1)")
    if len(starts) != 2 or starts[0] == starts[1]:
        raise ValueError(f"starts={starts!r} must be two different labels (planted, other)")
    t, control = with_control(as_table(table), control)
    for name in (control, size, observable):
        t._check(name)
    notes = require_stationary(t, "thresholds")
    y = np.asarray(t[observable], float)
    if np.any(~np.isfinite(y)) or np.any((y < 0) | (y > 1)):
        raise ValueError(f"column {observable!r} must be a fraction in [0, 1] (finite) for every row; "
                         f"got range [{np.nanmin(y):g}, {np.nanmax(y):g}] with "
                         f"{int(np.sum(~np.isfinite(y)))} non-finite values")
    _check_one_window(t, [init, size, control])
    parts = split_starts(t, init, starts)
    x_all = np.asarray(t[control], float)
    if log_control is None:
        log_control = bool(np.all(x_all > 0) and x_all.max() / x_all.min() >= 10)
    sizes_p = np.unique(np.asarray(parts[starts[0]][size], float))
    sizes_o = np.unique(np.asarray(parts[starts[1]][size], float))
    sizes = np.intersect1d(sizes_p, sizes_o)
    if len(sizes) == 0:
        raise ValueError(f"no {size} has rows from both starts {starts}: planted sizes "
                         f"{sizes_p.tolist()}, other sizes {sizes_o.tolist()}")
    if len(sizes) < max(len(sizes_p), len(sizes_o)):
        notes.append(f"only {size} = {', '.join(f'{v:g}' for v in sizes)} have both starts")
    if errors not in ("cells", "replicas"):
        raise ValueError(f"errors={errors!r} is not allowed; choose 'cells' or 'replicas'")
    cps = []
    for k, s in enumerate(starts):
        sub = parts[s]
        sub = sub[np.isin(np.asarray(sub[size], float), sizes)]
        trials = None
        if errors == "cells":
            sub, observable_used, trials = _effective_trials(sub, control, size, observable), observable, "trials"
        else:
            observable_used = observable
        cps.append(critical_point(sub, control=control, size=size, observable=observable_used, level=level,
                                  method=method, bootstrap=bootstrap, seed=seed + k, log_control=log_control,
                                  extrapolate=extrapolate and len(sizes) >= 2, nu=nu, bounds=bounds,
                                  trials=trials))
    cp_p, cp_o = cps
    for s, cp in zip(starts, cps):
        notes += [f"{s}: {n}" for n in cp.notes]

    to_u = np.log if log_control else (lambda v: np.asarray(v, float))
    with np.errstate(invalid="ignore", divide="ignore"):
        up, uo = to_u(cp_p.xc), to_u(cp_o.xc)
        # the rise of the planted curve fixes which way a hysteresis points
        direction = _direction(cp_p, to_u)
        window = direction * (uo - up)
        wb = direction * (to_u(cp_o.xc_samples) - to_u(cp_p.xc_samples))
        stat = _robust_sd(wb)
        sys_p = cp_p.xc_sys / cp_p.xc if log_control else cp_p.xc_sys
        sys_o = cp_o.xc_sys / cp_o.xc if log_control else cp_o.xc_sys
    sys = np.hypot(np.nan_to_num(sys_p), np.nan_to_num(sys_o))
    sys[~np.isfinite(window)] = np.nan
    err = np.hypot(stat, sys)
    width = np.fmax(cp_p.width, cp_o.width)
    for i, N in enumerate(sizes):
        if np.isfinite(window[i]) and window[i] < -_SIG * err[i]:
            notes.append(f"{size}={N:g}: the {starts[1]!r} start reaches the planted state before the "
                         f"planted start loses it (window {window[i]:.3g} ± {err[i]:.2g} < 0): not a "
                         "stationary hysteresis; check the windows and the budget")
    trend, reason, slope, slope_err = _trend(sizes, window, err, width, size)
    return Thresholds(control=control, size=size, observable=observable, level=level,
                      log_control=bool(log_control), starts=tuple(starts), planted=cp_p, other=cp_o,
                      sizes=sizes, x_planted=cp_p.xc.copy(), x_other=cp_o.xc.copy(), window=window,
                      window_stat=stat, window_sys=sys, window_err=err, width=width,
                      direction=direction, trend=trend, trend_reason=reason, slope=slope,
                      slope_err=slope_err, notes=tuple(notes), window_samples=wb)


def _check_one_window(t: Table, keys):
    """A cell mixing budgets or windows (e.g. two sweep lengths) would average different
    observables: refuse it, naming the column."""
    cols = [c for c in ("steps", "window_start", "window_stop") if c in t]
    if not cols:
        return
    for key, cell in t.groupby(keys):
        for c in cols:
            vals = np.unique(np.asarray(cell[c]).astype(str))
            if len(vals) > 1:
                raise ValueError(f"column {c!r} takes several values {vals.tolist()[:4]} in the cell {key}: "
                                 f"select one budget/window first, e.g. table.where({c}={vals[0]})")


def _effective_trials(t: Table, control, size, observable) -> Table:
    """One row per (size, control) cell: the mean fraction and the number of Bernoulli trials
    whose binomial variance equals the measured variance of the cell mean,
    n_eff = n ybar (1 - ybar) / s^2 (>= n - 1 for values in [0, 1]; = n for 0/1 values)."""
    rows = []
    for key, cell in t.groupby([size, control]):
        y = np.asarray(cell[observable], float)
        n, ybar = len(y), float(y.mean())
        var = float(y.var(ddof=1)) if n > 1 else 0.0
        if ybar <= 0 or ybar >= 1 or var <= 0:
            n_eff = float(n) if (ybar <= 0 or ybar >= 1) else 50.0 * n   # no spread: as sure as it gets
        else:
            n_eff = min(n * ybar * (1 - ybar) / var, 50.0 * n)
        rows.append({size: key[size], control: key[control], observable: ybar, "trials": max(n_eff, 1.0),
                     "replicas": n})
    return Table.from_records(rows)


def _direction(cp, to_u) -> int:
    """+1 when the planted start's observable rises with the control (pooled over sizes)."""
    us, ys = [], []
    for i in range(len(cp.sizes)):
        x, y, _ = cp.data(i)
        us.append(to_u(x) - np.mean(to_u(x)))
        ys.append(y - np.mean(y))
    c = float(np.sum(np.concatenate(us) * np.concatenate(ys)))
    return 1 if c >= 0 else -1


def _trend(sizes, w, err, width, size):
    """(trend, reason, slope, slope_err) of the window with N."""
    ok = np.isfinite(w) & np.isfinite(err) & (err > 0)
    if not ok.any():
        return "not determined", "no size has thresholds from both starts", np.nan, np.nan
    N, W, E, Wd = sizes[ok], w[ok], err[ok], width[ok]
    sig = W > _SIG * E
    desc = ", ".join(f"{n:g}: {x:.3g} ± {e:.2g}" for n, x, e in zip(N, W, E))
    if not sig.any():
        resolved = np.isfinite(Wd) & (E < 0.5 * Wd)
        if len(N) >= 2 and resolved.all():
            return ("absent", f"window consistent with 0 at every {size} ({desc}), errors below half "
                              "the transition width", np.nan, np.nan)
        return ("not determined", f"no window beyond {_SIG:g} sigma ({desc}) but the errors are too "
                                  "large (or too few sizes) to exclude one", np.nan, np.nan)
    if len(N) < 2:
        return "not determined", f"a window at a single {size} ({desc}): no trend", np.nan, np.nan
    wts = 1 / E ** 2
    lx = np.log(N)
    A = np.column_stack([np.ones_like(lx), lx])
    cov = np.linalg.inv(A.T @ (A * wts[:, None]))
    coef = cov @ (A.T @ (wts * W))
    s, se = float(coef[1]), float(math.sqrt(cov[1, 1]))
    chi2 = float(np.sum(wts * (W - A @ coef) ** 2))
    if len(N) > 2 and chi2 / (len(N) - 2) > 1:      # scatter beyond errors inflates the slope error
        se *= math.sqrt(chi2 / (len(N) - 2))
    tail = f"d window/d ln {size} = {s:.3g} ± {se:.2g}; {desc}"
    if s > _SIG * se:
        return "grows", tail, s, se
    if s < -_SIG * se:
        if not sig[-1]:
            return "shrinks", tail + f"; consistent with 0 at the largest {size}", s, se
        return "shrinks", tail, s, se
    if sig[-1]:
        return "persists", tail, s, se
    return "not determined", tail + f"; not beyond errors at the largest {size}", s, se
