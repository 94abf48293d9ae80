"""Is a transition first order (coexistence, metastability) or continuous? Votes from stationary
evidence only.

Four tests, each voting "first-order", "continuous" or abstaining (None) with the reason:

- hysteresis (``analysis.stationary.thresholds``): thresholds of the stationary time at the
  planted state from planted and from competing starts. A window beyond errors that persists or
  grows with N votes first order; a window that closes with N votes continuous. No window at all
  does not vote: small systems switch between coexisting phases within any budget.
- lifetimes (``analysis.lifetimes``): the planted state's lifetime (``first_exit``) and the other
  start's first passage, right-censored, at each size's window middle (its threshold where the
  starts agree): exponential growth in N (a barrier proportional to N between coexisting phases)
  votes first order, a power of N (no barrier: critical slowing down) continuous.
- bimodality of a *stationary* per-replica distribution (a snapshot such as the final overlap of
  runs without early stopping) at the cell nearest each size's threshold: two modes whose valley
  deepens with N (Lee-Kosterlitz: two phases behind a growing barrier) vote first order, one mode
  at every size continuous. A size whose starts still
  disagree there (two-sample Kolmogorov-Smirnov p < 0.01) has start memory: its distribution is
  not stationary and is left out. Early-stopped data are refused: freezing successes at overlap 1
  manufactures a second mode.
- Binder cumulant U = 1 - <m^4>/(3<m^2>^2) of an order parameter *symmetric* under its sign (the
  signed magnetisation of an Ising model): curves of successive sizes crossing beyond errors
  without a negative dip vote continuous, a negative dip that deepens with N first order. A
  non-negative observable (an overlap, a success indicator) is skipped: its cumulant can never show
  the dip.

Verdict: "first-order" or "continuous" when at least two tests vote for it and none against;
otherwise "undetermined" (too few votes, or votes that disagree).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special, stats

from .controls import with_control
from .lifetimes import lifetimes as _lifetimes
from .stationary import as_table, early_stopped, split_starts, thresholds as _thresholds
from ._validate import validated

__all__ = ["OrderDiagnosis", "Bimodality", "Binder", "transition_order", "VERDICTS"]

VERDICTS = ("first-order", "continuous", "undetermined")
TESTS = ("hysteresis", "lifetimes", "bimodality", "binder")
_KS_P = 0.01           # start memory: the two starts' distributions differ at this level
_DBIC = 6.0            # "strong" evidence for two components (Kass & Raftery)
_DEPTH = math.log(2.0) # two modes: the lower peak at least twice the valley between them
_DEEP = 1.0            # a first-order vote needs ln(peak/valley) >= 1 at the largest size
_MIN_WEIGHT = 0.1      # a few outliers are not a phase


# --------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Bimodality:
    """Per size: the near-threshold cell and its replica distribution."""
    column: str
    sizes: np.ndarray
    x_near: np.ndarray             # control value of the cell used
    n: np.ndarray                  # replicas (both starts pooled)
    ks_p: np.ndarray               # two-sample KS p-value between the starts (NaN: one start only)
    stationary: np.ndarray         # bool: no start memory and enough replicas
    status: tuple                  # per size: "stationary", "start memory" or "too few replicas"
    delta_bic: np.ndarray          # BIC(1 Gaussian) - BIC(2 Gaussians): > 0 prefers two modes
    ashman_d: np.ndarray           # mode separation / width (> 2: separated)
    valley: np.ndarray             # ln(lower peak / valley) of the fitted density (0: one maximum)
    modes: np.ndarray              # (sizes, 2) means of the two components
    weights: np.ndarray            # (sizes, 2)
    bimodal: np.ndarray            # bool
    samples: dict = field(default_factory=dict, repr=False)    # size -> values


@dataclass(frozen=True)
class Binder:
    """Binder cumulant per size against the control (replicas of both starts pooled)."""
    column: str
    sizes: np.ndarray
    curves: dict                   # size -> (controls, U, dU)
    minimum: np.ndarray            # min over controls of U per size
    minimum_err: np.ndarray
    crossing_pairs: list           # (N1, N2, x where U_N2 - U_N1 changes sign beyond errors) per pair
    crossing: object = None        # analysis.crossings result (x_inf, nu with errors) or None


@dataclass(frozen=True)
class OrderDiagnosis:
    """Result of ``transition_order``."""
    verdict: str                   # "first-order" | "continuous" | "undetermined"
    votes: dict                    # test -> "first-order" | "continuous" | None
    notes: dict                    # test -> tuple of lines: why it voted, or why it was skipped
    control: str
    size: str
    thresholds: object = None      # analysis.stationary.Thresholds or None
    lifetimes: dict = field(default_factory=dict)   # start -> analysis.lifetimes.Lifetimes
    bimodality: Bimodality | None = None
    binder: Binder | None = None

    def summary(self) -> str:
        L = [f"transition order: {self.verdict}"]
        for test in TESTS:
            v = self.votes.get(test)
            L.append(f"  {test}: {v or 'no vote'}")
            L += [f"    - {n}" for n in self.notes.get(test, ())]
        return "\n".join(L)

    def plot(self, ax=None, kind: str = "summary"):
        """kind="summary" (one panel per test, on a new figure; ``ax`` must be None or an array
        of 4 Axes), "hysteresis", "lifetimes", "bimodality" or "binder" (one Axes)."""
        from .plots import order_plot
        return order_plot(self, ax=ax, kind=kind)


# ------------------------------------------------------------------------------ two modes
def _gmm2(v, iters=300):
    """Two-Gaussian mixture by EM from the best 2-means split.
    Returns (delta_bic, ashman_d, (mu1, mu2), (w1, w2), valley depth)."""
    v = np.sort(np.asarray(v, float))
    n = len(v)
    nan = (np.nan, np.nan, (np.nan, np.nan), (np.nan, np.nan), np.nan)
    if n < 8:
        return nan
    if np.ptp(v) == 0:
        return -np.inf, 0.0, (v[0], v[0]), (1.0, 0.0), 0.0
    floor = (1e-3 * np.ptp(v)) ** 2
    ll1 = float(np.sum(stats.norm.logpdf(v, v.mean(), math.sqrt(max(v.var(), floor)))))
    c, c2 = np.cumsum(v), np.cumsum(v ** 2)
    i = np.arange(1, n)
    ss = (c2[:-1] - c[:-1] ** 2 / i) + ((c2[-1] - c2[:-1]) - (c[-1] - c[:-1]) ** 2 / (n - i))
    j = int(np.argmin(ss)) + 1
    mu = np.array([v[:j].mean(), v[j:].mean()])
    var = np.array([max(v[:j].var(), floor), max(v[j:].var(), floor)])
    pi = np.array([j / n, 1 - j / n])
    lse = None
    for _ in range(iters):
        logp = np.log(pi) + stats.norm.logpdf(v[:, None], mu, np.sqrt(var))
        lse = special.logsumexp(logp, axis=1, keepdims=True)
        r = np.exp(logp - lse)
        nk = r.sum(0) + 1e-12
        mu_new = (r * v[:, None]).sum(0) / nk
        var = np.maximum((r * (v[:, None] - mu_new) ** 2).sum(0) / nk, floor)
        pi = np.clip(nk / n, 1e-9, 1)
        pi /= pi.sum()
        done = np.allclose(mu_new, mu, atol=1e-10 * (1 + np.abs(mu).max()))
        mu = mu_new
        if done:
            break
    ll2 = float(lse.sum())
    dbic = (-2 * ll1 + 2 * math.log(n)) - (-2 * ll2 + 5 * math.log(n))
    d = math.sqrt(2) * abs(mu[1] - mu[0]) / math.sqrt(var.sum())
    o = np.argsort(mu)
    return float(dbic), float(d), tuple(mu[o]), tuple(pi[o]), _valley(mu[o], var[o], pi[o])


def _valley(mu, var, w):
    """ln(lower peak / valley) of the fitted two-Gaussian density; 0 when it has one maximum
    (two components need not make two modes: a skewed or flat-topped peak is fitted by two)."""
    sd = np.sqrt(var)
    x = np.linspace(mu[0] - 3 * sd[0], mu[1] + 3 * sd[1], 2001)
    # in log space: between two narrow, well separated modes the density underflows to 0
    dens = special.logsumexp(np.log(w)[:, None] + stats.norm.logpdf(x[None], mu[:, None], sd[:, None]),
                             axis=0)
    inner = np.flatnonzero((dens[1:-1] > dens[:-2]) & (dens[1:-1] >= dens[2:])) + 1
    if len(inner) < 2:
        return 0.0
    top = inner[np.argsort(dens[inner])[-2:]]
    a, b = np.sort(top)
    return float(min(dens[a], dens[b]) - dens[a:b + 1].min())


def _bimodality(t, control, size, column, init, starts, targets, min_replicas, notes):
    Ns = np.asarray(t[size], float)
    xs = np.asarray(t[control], float)
    vals = np.asarray(t[column], float)
    labels = np.asarray(t[init]).astype(str)
    sizes = np.array(sorted(targets))
    k = len(sizes)
    out = {name: np.full(k, np.nan) for name in ("x_near", "n", "ks_p", "dbic", "d", "depth")}
    modes, weights = np.full((k, 2), np.nan), np.full((k, 2), np.nan)
    stationary, bimodal = np.zeros(k, bool), np.zeros(k, bool)
    status = ["stationary"] * k
    samples = {}
    for i, N in enumerate(sizes):
        grid = np.unique(xs[Ns == N])
        x = float(grid[np.argmin(np.abs(np.log(grid) - np.log(targets[N]))
                                 if np.all(grid > 0) and targets[N] > 0 else np.abs(grid - targets[N]))])
        sel = (Ns == N) & (xs == x) & np.isfinite(vals)
        v = vals[sel]
        out["x_near"][i], out["n"][i] = x, len(v)
        samples[N] = v
        a, b = (vals[sel & (labels == str(s))] for s in starts)
        if len(a) >= 5 and len(b) >= 5:
            out["ks_p"][i] = stats.ks_2samp(a, b).pvalue
        if len(v) < min_replicas:
            notes.append(f"{size}={N:g}: {len(v)} replicas at {control}={x:g} (< {min_replicas}): left out")
            status[i] = "too few replicas"
            continue
        if np.isfinite(out["ks_p"][i]) and out["ks_p"][i] < _KS_P:
            notes.append(f"{size}={N:g}, {control}={x:g}: the starts' distributions of {column} differ "
                         f"(KS p = {out['ks_p'][i]:.2g}): start memory, not a stationary distribution; left out")
            status[i] = "start memory"
            continue
        stationary[i] = True
        dbic, d, mu, w, depth = _gmm2(v)
        out["dbic"][i], out["d"][i], out["depth"][i] = dbic, d, depth
        modes[i], weights[i] = mu, w
        bimodal[i] = bool(dbic > _DBIC and depth >= _DEPTH and min(w) >= _MIN_WEIGHT)
    return Bimodality(column=column, sizes=sizes, x_near=out["x_near"], n=out["n"].astype(int),
                      ks_p=out["ks_p"], stationary=stationary, status=tuple(status), delta_bic=out["dbic"], ashman_d=out["d"],
                      valley=out["depth"], modes=modes, weights=weights, bimodal=bimodal, samples=samples)


def _bimodality_vote(bm: Bimodality, size, notes):
    S = np.flatnonzero(bm.stationary)
    def one(i):
        w = float(np.nanmin(bm.weights[i]))
        small = not bm.bimodal[i] and w < _MIN_WEIGHT      # a few outliers are not a phase
        verdict = "two modes" if bm.bimodal[i] else f"one mode ({w:.0%} outliers)" if small else "one mode"
        return (f"{size}={bm.sizes[i]:g} at {bm.x_near[i]:g}: {verdict}"
                f" (dBIC = {bm.delta_bic[i]:.3g}, ln(peak/valley) = {bm.valley[i]:.2g})")
    desc = ", ".join(one(i) for i in S)
    if len(S) < 2:
        notes.append(f"{len(S)} size(s) with a stationary distribution near the threshold: no vote"
                     + (f" ({desc})" if desc else ""))
        return None
    notes.append(desc)
    two = S[bm.bimodal[S]]
    if bm.bimodal[S[-1]] and len(two) >= max(2, (len(S) + 1) // 2):
        # Lee-Kosterlitz: between coexisting phases the valley deepens with N; a shallow or
        # shrinking valley is a finite-size shoulder (e.g. of a folded order parameter near T_c)
        deep = bm.valley[S[-1]] >= _DEEP
        if deep and bm.valley[S[-1]] >= np.min(bm.valley[two]):
            return "first-order"
        notes.append(f"two modes, but the valley at the largest {size} (ln(peak/valley) = "
                     f"{bm.valley[S[-1]]:.2g}) is " + ("shallower than at a smaller size" if deep else
                                                        f"shallower than {_DEEP:g}") + ": no vote")
        return None
    if not bm.bimodal[S].any():
        return "continuous"
    notes.append("two modes at some sizes only: no vote")
    return None


# -------------------------------------------------------------------------------- Binder
def _binder_value(m2, m4):
    """U = 1 - <m^4> / (3 <m^2>^2) from per-replica second and fourth moments (last axis)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1 - np.mean(m4, axis=-1) / (3 * np.mean(m2, axis=-1) ** 2)


def _binder(t, control, size, columns, bootstrap, rng, notes):
    """columns: (snapshot,) or (mean m^2, mean m^4) per replica. Replicas are resampled whole."""
    Ns = np.asarray(t[size], float)
    xs = np.asarray(t[control], float)
    if len(columns) == 1:
        v = np.asarray(t[columns[0]], float)
        m2all, m4all = v ** 2, v ** 4
    else:
        m2all, m4all = (np.asarray(t[c], float) for c in columns)
    sizes = np.unique(Ns)
    curves, mins, mins_err = {}, [], []
    for N in sizes:
        xg = np.unique(xs[Ns == N])
        U, dU = np.full(len(xg), np.nan), np.full(len(xg), np.nan)
        for j, x in enumerate(xg):
            sel = (Ns == N) & (xs == x) & np.isfinite(m2all) & np.isfinite(m4all)
            m2, m4 = m2all[sel], m4all[sel]
            if len(m2) < 8:
                continue
            U[j] = _binder_value(m2, m4)
            idx = rng.integers(0, len(m2), (bootstrap, len(m2)))
            dU[j] = np.nanstd(_binder_value(m2[idx], m4[idx]), ddof=1)
        ok = np.isfinite(U) & np.isfinite(dU) & (dU > 0)
        curves[float(N)] = (xg[ok], U[ok], dU[ok])
        if ok.any():
            j = int(np.argmin(U[ok]))
            mins.append(U[ok][j])
            mins_err.append(dU[ok][j])
        else:
            mins.append(np.nan)
            mins_err.append(np.nan)
    pairs = []
    for N1, N2 in zip(sizes[:-1], sizes[1:]):
        x1, u1, e1 = curves[float(N1)]
        x2, u2, e2 = curves[float(N2)]
        common = np.intersect1d(x1, x2)
        if len(common) < 2:
            continue
        D = u2[np.isin(x2, common)] - u1[np.isin(x1, common)]
        sD = np.hypot(e2[np.isin(x2, common)], e1[np.isin(x1, common)])
        pos, neg = np.flatnonzero(D > 2 * sD), np.flatnonzero(D < -2 * sD)
        if len(pos) and len(neg):
            # the sign change nearest the middle of the significant points
            a, b = (pos.max(), neg.min()) if pos.min() < neg.min() else (neg.max(), pos.min())
            if a < b:
                pairs.append((float(N1), float(N2), float(0.5 * (common[a] + common[b]))))
    crossing = None
    if len(sizes) >= 2:
        from . import crossings      # the public name: robust to how the package splits modules
        size_a = np.concatenate([np.full(len(curves[float(N)][0]), N) for N in sizes])
        xa = np.concatenate([curves[float(N)][0] for N in sizes])
        ya = np.concatenate([curves[float(N)][1] for N in sizes])
        da = np.concatenate([curves[float(N)][2] for N in sizes])
        try:
            crossing = crossings(size_a, xa, ya, da, bootstrap=min(bootstrap, 200), n_local=5, seed=0)
        except ValueError as exc:
            notes.append(f"crossing points not extrapolated: {exc}")
    return Binder(column=columns[0] if len(columns) == 1 else "m", sizes=sizes, curves=curves, minimum=np.array(mins),
                  minimum_err=np.array(mins_err), crossing_pairs=pairs, crossing=crossing)


def _binder_vote(b: Binder, size, control, notes):
    dip = b.minimum < -2 * b.minimum_err
    notes.append("minimum of U per size: " + ", ".join(
        f"{size}={N:g}: {m:.3g} ± {e:.2g}" for N, m, e in zip(b.sizes, b.minimum, b.minimum_err)))
    if b.crossing_pairs:
        notes.append("curves of successive sizes cross beyond errors near " + ", ".join(
            f"{control} = {x:.4g} ({size} {N1:g}/{N2:g})" for N1, N2, x in b.crossing_pairs))
    if b.crossing is not None and np.isfinite(b.crossing.x_inf):
        c = b.crossing
        nu = (f", nu = {c.nu:.3g} ± {c.errors.get('nu', np.nan):.2g} (in units of {size})"
              if np.isfinite(c.nu) else "")
        notes.append(f"crossings extrapolated: {control}_c = {c.x_inf:.4g} ± {c.errors['x_inf']:.2g}{nu}")
    if dip[-1] and len(b.sizes) >= 2 and b.minimum[-1] < b.minimum[0]:
        notes.append("a negative dip that deepens with the size")
        return "first-order"
    if b.crossing_pairs and not dip.any():
        return "continuous"
    notes.append("neither a crossing beyond errors without a dip nor a deepening negative dip: no vote")
    return None


# -------------------------------------------------------------------------------- helpers
def _hysteresis_vote(th, notes):
    notes.append(f"window ({'ln ratio' if th.log_control else 'difference'} of the thresholds): "
                 f"{th.trend} ({th.trend_reason})")
    last = np.flatnonzero(np.isfinite(th.window))
    if th.trend in ("persists", "grows") and len(last) and th.window[last[-1]] > 2 * th.window_err[last[-1]]:
        return "first-order"
    if th.trend == "absent":
        notes.append("the starts agree at every size: the runs are stationary within their budget. "
                     "That is no evidence of a continuous transition (small systems switch phases "
                     "quickly): no vote")
        return None
    if th.trend == "shrinks" and len(last) and th.window[last[-1]] <= 2 * th.window_err[last[-1]]:
        notes.append("the window closes with N")
        return "continuous"
    return None


def _lifetime_vote(lts: dict, notes):
    growth = {s: lt.growth for s, lt in lts.items()}
    for s, lt in lts.items():
        notes.append(f"{lt.event} from {s!r} starts: {lt.growth} ({lt.growth_reason})")
        if lt.growth == "exponential":
            notes.append(f"  ln tau grows by {lt.barrier:.3g} ± {lt.barrier_err:.2g} per unit of size")
    if "exponential" in growth.values() and "power" not in growth.values():
        return "first-order"
    if "power" in growth.values() and "exponential" not in growth.values():
        return "continuous"
    return None


def _skip_early(t, what, notes) -> bool:
    cut = early_stopped(t)
    if cut.any():
        notes.append(f"skipped: {int(cut.sum())} of {len(t)} rows stopped before the end of their "
                     f"window (stop rule set): {what} of early-stopped runs are not stationary "
                     "(successes frozen at the teacher manufacture a mode); rerun with stop=None")
        return True
    return False


# ------------------------------------------------------------------------------- function
@validated                  # arguments checked first: analysis/_validate.py
def transition_order(table, control: str = "batch_size", size: str = "N", *, init: str = "init",
                     starts=("teacher", "random"), stationary: str = "time_at_teacher",
                     distribution: str | None = "overlap", binder: str | None = None,
                     exit_event: str = "first_exit", passage_event: str = "first_passage",
                     lifetime_at=None, near=None, level: float = 0.5, log_control: bool | None = None,
                     bootstrap: int = 200, min_replicas: int = 20, min_events: int = 5,
                     seed: int = 0) -> OrderDiagnosis:
    """First order, continuous or undetermined, from stationary observables of both starts.

    table: one row per replica (``analysis.load`` or ``Table``) with ``control``, ``size``,
        ``init`` and the columns below; a missing column skips its test with a note.
    starts: (planted, other): the ``init`` labels of the planted start ("teacher") and of the start
        in the competing phase ("random").
    stationary: per-replica fraction of the window spent in the planted state
        (``time_at_teacher``): thresholds and hysteresis window (``analysis.thresholds``).
    distribution: per-replica stationary snapshot whose replica distribution is tested for two
        modes near each size's threshold ("overlap": the final overlap, valid only without early
        stopping). None skips the test.
    binder: a per-replica snapshot of an order parameter symmetric under its sign (e.g. the final
        signed magnetisation; a column of one sign is skipped with a note), or a pair of columns
        (window mean of m^2, window mean of m^4) per replica of such an order parameter; None (the
        default: teacher-student overlaps are not symmetric) skips the test with a note.
    exit_event, passage_event: event columns of the lifetimes (planted state left; reached from
        the other start), right-censored at the end of each run.
    lifetime_at: control value(s) of the lifetime comparison (number or dict size -> value);
        default: per size the middle of the hysteresis window, the common threshold where the
        starts agree (see ``analysis.lifetimes``: away from it, reaching an atypical state takes a
        large deviation whatever the order).
    near: control value(s) of the bimodality test (number or dict size -> value); default: each
        size's window middle (its common threshold when there is no window).
    level, log_control, bootstrap, seed: as ``analysis.thresholds``.
    min_replicas: replicas a distribution needs for the bimodality test; min_events: events a
        lifetime cell needs to enter the growth comparison.
    """
    t, control = with_control(as_table(table), control)
    for name in (control, size, init):
        t._check(name)
    if len(starts) != 2:
        raise ValueError(f"starts={starts!r} must be (planted, other)")
    planted, other = (str(s) for s in starts)
    split_starts(t, init, (planted,))     # the planted start must exist
    labels = np.asarray(t[init]).astype(str)
    have_other = bool(np.any(labels == other))
    rng = np.random.default_rng(seed)
    votes = {k: None for k in TESTS}
    notes = {k: [] for k in TESTS}

    # 1. hysteresis
    th = None
    if stationary not in t:
        notes["hysteresis"].append(f"skipped: no column {stationary!r}")
    elif not have_other:
        notes["hysteresis"].append(f"skipped: no replicas from the {other!r} start")
    elif not _skip_early(t, "thresholds", notes["hysteresis"]):
        try:
            th = _thresholds(t, control=control, size=size, observable=stationary, init=init,
                             starts=(planted, other), level=level, bootstrap=max(bootstrap, 20),
                             seed=seed, log_control=log_control)
            votes["hysteresis"] = _hysteresis_vote(th, notes["hysteresis"])
        except ValueError as exc:
            notes["hysteresis"].append(f"not determined: {exc}")
    # per-size reference points: the window's middle, else the planted threshold
    ref = {}
    if th is not None:
        for i, N in enumerate(th.sizes):
            m = th.midpoint(i)
            if not np.isfinite(m):
                cands = [v for v in (th.x_planted[i], th.x_other[i]) if np.isfinite(v)]
                m = cands[0] if cands else np.nan
            if np.isfinite(m):
                ref[float(N)] = float(m)

    # 2. lifetimes
    lts = {}
    at = _targets(lifetime_at, t, size)
    if at is None and ref:
        at = dict(ref)
        notes["lifetimes"].append("compared per size at the middle of the window (the threshold where the "
                                  "starts agree), nearest grid value: " +
                                  ", ".join(f"{size}={N:g}: {x:.4g}" for N, x in sorted(ref.items())))
    if at is None:
        notes["lifetimes"].append("skipped: no lifetime_at given and no threshold to place it")
    else:
        for s, ev in ((planted, exit_event), (other, passage_event)):
            if ev not in t or (s == other and not have_other):
                notes["lifetimes"].append(f"{s!r} start: no column {ev!r} or no replicas: skipped")
                continue
            try:
                lts[s] = _lifetimes(t, control=control, size=size, start=s, event=ev, init=init, at=at,
                                    min_events=min_events)
            except ValueError as exc:
                notes["lifetimes"].append(f"{s!r} start: not determined: {exc}")
        if lts:
            votes["lifetimes"] = _lifetime_vote(lts, notes["lifetimes"])

    # 3. bimodality of a stationary distribution
    bm = None
    if distribution is None:
        notes["bimodality"].append("skipped: distribution=None")
    elif distribution not in t:
        notes["bimodality"].append(f"skipped: no column {distribution!r}")
    elif not _skip_early(t, f"final values of {distribution!r}", notes["bimodality"]):
        targets = _targets(near, t, size) or ref
        if not targets:
            notes["bimodality"].append("skipped: no near= given and no threshold to place the test")
        else:
            bm = _bimodality(t, control, size, distribution, init, (planted, other), targets, min_replicas,
                             notes["bimodality"])
            votes["bimodality"] = _bimodality_vote(bm, size, notes["bimodality"])

    # 4. Binder cumulant of a symmetric order parameter
    bd = None
    cols = (binder,) if isinstance(binder, str) else tuple(binder) if binder is not None else ()
    if binder is None:
        notes["binder"].append("skipped: no order parameter symmetric under its sign given (binder=None); "
                               "a non-negative overlap's cumulant can never show the negative dip")
    elif len(cols) not in (1, 2) or not all(isinstance(c, str) for c in cols):
        raise ValueError(f"binder={binder!r} must be a column name or a pair (m2 column, m4 column)")
    elif any(c not in t for c in cols):
        notes["binder"].append(f"skipped: no column {[c for c in cols if c not in t][0]!r}")
    elif not _skip_early(t, f"values of {binder!r}", notes["binder"]):
        v = np.asarray(t[cols[0]], float)
        v = v[np.isfinite(v)]
        if len(cols) == 2:
            notes["binder"].append(f"moments {cols[0]!r}, {cols[1]!r} of an order parameter declared "
                                   "symmetric under its sign by the caller")
            bd = _binder(t, control, size, cols, max(bootstrap, 50), rng, notes["binder"])
            votes["binder"] = _binder_vote(bd, size, control, notes["binder"])
        elif len(v) == 0 or v.min() >= 0 or v.max() <= 0:
            notes["binder"].append(
                f"skipped: {binder!r} takes one sign only (range [{v.min() if len(v) else np.nan:.3g}, "
                f"{v.max() if len(v) else np.nan:.3g}]): not symmetric under the order parameter's sign, so "
                "its cumulant can never show the negative dip of a first-order transition")
        else:
            bd = _binder(t, control, size, cols, max(bootstrap, 50), rng, notes["binder"])
            votes["binder"] = _binder_vote(bd, size, control, notes["binder"])

    first = sum(v == "first-order" for v in votes.values())
    cont = sum(v == "continuous" for v in votes.values())
    if first >= 2 and cont == 0:
        verdict = "first-order"
    elif cont >= 2 and first == 0:
        verdict = "continuous"
    else:
        verdict = "undetermined"
    return OrderDiagnosis(verdict=verdict, votes=votes, notes={k: tuple(v) for k, v in notes.items()},
                          control=control, size=size, thresholds=th, lifetimes=lts, bimodality=bm, binder=bd)


def _targets(spec, t, size):
    """None | number | dict size -> value  ->  None or {size: value}."""
    if spec is None:
        return None
    if isinstance(spec, dict):
        return {float(k): float(v) for k, v in spec.items()}
    try:
        x = float(spec)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number or a dict {size} -> value; got {spec!r}")
    return {float(N): x for N in np.unique(np.asarray(t[size], float))}
