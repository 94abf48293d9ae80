"""Analysis of the Marino & Ricci-Tersenghi reproduction (called by reproduce.py --stage analyze).

Measured as a phase, not as a first passage: every run lasts its whole budget (no early stop) and
the observable is the stationary time at the teacher (the fraction of the second half of the run
at which the student computes the teacher's function), from random and from planted starts.
Everything goes through ``analysis``:

- ``thresholds``: per start and size, the m where the time at the teacher crosses 1/2 (planted:
  stability of the teacher; random: reachability), stat (bootstrap) and sys (fit forms) errors,
  and the hysteresis window between them with its trend in N;
- the same at two budgets 4x apart: a threshold that moves with the budget is not stationary;
- ``lifetimes``: Kaplan-Meier and censored exponential fits of the first exit (planted) and first
  passage (random) times at the middle of the window, and whether they grow exponentially with N;
- ``transition_order``: the verdict from those votes (hysteresis that persists, exponential
  lifetimes, bimodal stationary distributions; Binder skipped for the non-negative overlap);
- m_c(d): power law, local slopes, and a fit with a correction term (ln m = a + b ln d + c / d);
- the previous protocol (first passage within a budget) as a labelled variant.
"""
from __future__ import annotations

import math
import os
import warnings

import matplotlib
import numpy as np

import analysis as an
from analysis import plots

MODELS = {   # study -> (title, size column, control column, size label)
    "tree_committee": ("tree committee K = 3, ties accepted", "N", "batch_size", "d = N/3"),
    "tree_committee_reject": ("tree committee K = 3, ties rejected", "N", "batch_size", "d = N/3"),
    "tree_parity": ("tree parity machine K = 3", "N", "batch_size", "d = N/3"),
    "random_committee_d": ("random-field committee K = 3, N = 45", "d", "batch_size", "d"),
    "dense_committee": ("dense committee K = 3", "N", "batch_size", "d = N"),
    "finite_set": ("tree committee K = 3, training set P = 8 N", "N", "batch_size/P", "d = N/3"),
}
FP = "first_passage"
NOTES = {
    "tree_committee_reject": "With ties rejected at temperature 0 the teacher is absorbing: no single flip "
    "lowers its zero errors, so a planted start never leaves (no planted threshold: n/d) and a random "
    "start stays once it arrives. Its time at the teacher is then the probability of a first passage "
    "before the window, a budget quantity, not a stationary one; it is left out of the m(d) fits.",
    "finite_set": "Control m / P: m = P is full-batch greedy descent (no noise at all).",
}


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


def _pm(v, e, digits=3):
    if v is None or not np.isfinite(v):
        return "n/d"
    if e is None or not np.isfinite(e):
        return f"{v:.{digits}g} (error n/d)"
    return f"{v:.{digits}g} ± {e:.2g}"


def _err_at(cp, N):
    i = np.flatnonzero(np.asarray(cp.sizes) == N)
    return float(cp.xc_err[i[0]]) if len(i) else np.nan


def load(out, scale, name):
    path = os.path.join(out, scale, name)
    if not os.path.isdir(path) or not any(f.endswith(".h5") for f in os.listdir(path)):
        return None
    return an.load(path)


# --------------------------------------------------------------------------------- per model
def analyse_model(name, tab, figures, scale, fits):
    """Thresholds, lifetimes and order at every budget of one model; figures; table rows."""
    title, size, control, size_label = MODELS[name]
    out = {"title": title, "size": size, "control": control, "budgets": {}}
    for budget in sorted(set(tab["steps"].tolist())):
        tb = tab.where(steps=budget)
        th = _quiet(an.thresholds, tb, control=control, size=size)
        lt_p = _quiet(an.lifetimes, tb, control=control, size=size, start="teacher", at=th)
        lt_r = _quiet(an.lifetimes, tb, control=control, size=size, start="random", at=th)
        od = _quiet(an.transition_order, tb, control=control, size=size)
        out["budgets"][budget] = dict(th=th, lt_p=lt_p, lt_r=lt_r, od=od)
        fits.append(f"=== {title}, {budget} sweeps\n{th.summary()}\n\nlifetimes, planted start:\n"
                    f"{lt_p.summary()}\n\nlifetimes, random start:\n{lt_r.summary()}\n\n"
                    f"order:\n{od.summary()}\n")
    budget = max(out["budgets"])
    res = out["budgets"][budget]
    fig, axes = plots.new_axes(3, 1, figsize=(5.2, 4.0))
    res["th"].plot(ax=axes[0], kind="curves")
    axes[0].set_title(f"{title}: stationary time at the teacher\n({budget} sweeps, second half)",
                      fontsize=9)
    res["th"].plot(ax=axes[1], kind="window")
    axes[1].set_title("hysteresis window (planted vs random start)", fontsize=9)
    res["lt_p"].plot(ax=axes[2], kind="control")
    axes[2].set_title("lifetime of the planted teacher (first exit)", fontsize=9)
    plots.savefig(fig, os.path.join(figures, f"{name}_stationary.png"))
    drawn = res["od"].plot()
    fig = np.ravel(drawn)[0].figure if isinstance(drawn, np.ndarray) else getattr(drawn, "figure", drawn)
    fig.suptitle(f"{title}: order of the transition ({budget} sweeps) — verdict: "
                 f"{res['od'].verdict}", fontsize=10)
    plots.savefig(fig, os.path.join(figures, f"{name}_order.png"))
    return out


def stationarity_rows(model):
    """Thresholds per size at the two budgets and their difference in total sigma."""
    budgets = sorted(model["budgets"])
    if len(budgets) < 2:
        return []
    a, b = (model["budgets"][x]["th"] for x in budgets[:2])
    rows = []
    for which, xa, xb, cpa, cpb in (("planted", a.x_planted, b.x_planted, a.planted, b.planted),
                                    ("random", a.x_other, b.x_other, a.other, b.other)):
        for i, N in enumerate(a.sizes):
            j = np.flatnonzero(b.sizes == N)
            if not len(j):
                continue
            ea, eb = _err_at(cpa, N), _err_at(cpb, N)
            z = (xb[j[0]] - xa[i]) / math.hypot(ea, eb) if np.isfinite(ea + eb) and ea + eb > 0 else np.nan
            rows.append((which, N, _pm(xa[i], ea), _pm(xb[j[0]], eb),
                         f"{z:+.1f}" if np.isfinite(z) else "n/d"))
    return rows


# ------------------------------------------------------------------------------- m_c versus d
def correction_fit(d, m, dm):
    """ln m = a + b ln d + c / d, weighted; errors scaled by sqrt(chi2/dof) when it exceeds 1.
    Returns (b, b_err, c, c_err, chi2, dof) or None with fewer than 4 points."""
    ok = np.isfinite(m) & np.isfinite(dm) & (m > 0) & (dm > 0)
    d, m, dm = d[ok], m[ok], dm[ok]
    if len(d) < 4:
        return None
    X = np.column_stack([np.ones_like(d), np.log(d), 1.0 / d])
    w = (m / dm) ** 2
    A = X.T @ (X * w[:, None])
    cov = np.linalg.inv(A)
    beta = cov @ (X.T @ (w * np.log(m)))
    chi2 = float(np.sum(w * (np.log(m) - X @ beta) ** 2))
    dof = len(d) - 3
    if dof > 0 and chi2 / dof > 1:
        cov = cov * chi2 / dof
    return beta[1], math.sqrt(cov[1, 1]), beta[2], math.sqrt(cov[2, 2]), chi2, dof


def mc_vs_d(models):
    """Per model and start: the thresholds against d, power law, local slopes, correction fit."""
    rows, curves = [], []
    for name, model in models.items():
        budget = max(model["budgets"])
        th = model["budgets"][budget]["th"]
        if model["size"] == "N":
            div = 1.0 if name == "dense_committee" else 3.0
            dvals = th.sizes / div
        else:
            dvals = th.sizes.astype(float)
        if name == "finite_set":
            continue                             # control m / P: not a batch size
        if name == "tree_committee_reject":      # absorbing teacher: a first passage, not a phase
            continue
        for start, x, cp in (("planted", th.x_planted, th.planted), ("random", th.x_other, th.other)):
            err = np.array([_err_at(cp, N) for N in th.sizes])
            ok = np.isfinite(x) & np.isfinite(err) & (err > 0)
            if ok.sum() < 3:
                rows.append((model["title"], start, "too few thresholds", "", "", ""))
                continue
            pl = _quiet(an.power_law, dvals[ok], x[ok], err[ok])
            slopes = np.diff(np.log(x[ok])) / np.diff(np.log(dvals[ok]))
            cf = correction_fit(dvals[ok], x[ok], err[ok])
            cf_text = ("n/d (fewer than 4 d values)" if cf is None else
                       f"b = {_pm(cf[0], cf[1])}, c = {_pm(cf[2], cf[3])} (chi2/dof = {cf[4]:.1f}/{cf[5]})")
            rows.append((model["title"], start,
                         ", ".join(f"{v:g}" for v in dvals[ok]),
                         f"{_pm(pl.exponent, pl.errors['exponent'])} (chi2/dof = {pl.chi2:.1f}/{pl.dof})",
                         ", ".join(f"{s:.2f}" for s in slopes), cf_text))
            curves.append((model["title"], start, dvals[ok], x[ok], err[ok], pl))
    return rows, curves


def _plain_log_axes(ax, xticks=None):
    """Log axes with plain-number tick labels (no overlapping 2x10^1 3x10^1 ...)."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())
    if xticks is not None:
        ax.set_xticks(xticks)


def plot_mc_vs_d(curves, path):
    fig, ax = plots.new_axes(1, 1, figsize=(6.4, 4.8))
    names = list(dict.fromkeys(c[0] for c in curves))
    colours = [matplotlib.colormaps["tab10"](i % 10) for i in range(len(names))]
    for title, start, d, x, e, pl in curves:
        col = colours[names.index(title)]
        ax.errorbar(d, x, yerr=e, fmt="o-" if start == "random" else "s--", color=col,
                    mfc=col if start == "random" else "white", capsize=2, ms=4,
                    label=f"{title}, {start}: b = {pl.exponent:.2f} (χ²/dof = {pl.chi2:.0f}/{pl.dof})")
    dd = np.geomspace(4, 70, 20)
    ax.plot(dd, 5 * dd, ":", color="grey", label=r"$m = 5d$ (reference: linear in $d$)")
    _plain_log_axes(ax, [5, 9, 15, 21, 33, 45])
    ax.set_xlabel(r"receptive field $d$")
    ax.set_ylabel(r"threshold $m_{1/2}$ (time at teacher = 1/2)")
    ax.set_title(r"stationary thresholds against $d$ (ties accepted): $m_{1/2} \propto d^{\,b}$" "\n"
                 "filled: random start (reachability); open: planted start (stability)\n"
                 "the two part where a hysteresis window opens", fontsize=8)
    ax.legend(fontsize=6, loc="upper left")
    plots.savefig(fig, path)


# ------------------------------------------------------------------------ first passage (old)
def first_passage(tab, figures, fits, stationary_tree):
    """The previous protocol: P(stopped at a visit to the teacher within the budget)."""
    rows, curves = [], []
    for budget in sorted(set(tab["steps"].tolist())):
        tb = tab.where(steps=budget)
        cp = _quiet(an.critical_point, tb, control="batch_size", size="N", observable="success")
        fits.append(f"=== first passage within {budget} sweeps\n{cp.summary()}\n")
        d = cp.sizes / 3.0
        ok = np.isfinite(cp.xc) & np.isfinite(cp.xc_err) & (cp.xc_err > 0)
        pl = _quiet(an.power_law, d[ok], cp.xc[ok], cp.xc_err[ok]) if ok.sum() >= 3 else None
        rows.append((budget, ", ".join(_pm(x, e) for x, e in zip(cp.xc, cp.xc_err)),
                     _pm(pl.exponent, pl.errors["exponent"]) if pl else "n/d"))
        curves.append((budget, d, cp.xc, cp.xc_err))
    fig, ax = plots.new_axes(1, 1, figsize=(5.6, 4.2))
    for budget, d, x, e in curves:
        ax.errorbar(d, x, yerr=e, fmt="s--", capsize=2, ms=4, mfc="white",
                    label=f"first passage within {budget} sweeps (stop at success)")
    if stationary_tree is not None:
        th = stationary_tree
        for x, cp, lab, fmt in ((th.x_other, th.other, "random start", "o-"),
                                (th.x_planted, th.planted, "planted start", "^-")):
            e = np.array([_err_at(cp, N) for N in th.sizes])
            ax.errorbar(th.sizes / 3.0, x, yerr=e, fmt=fmt, capsize=2, ms=4,
                        label=f"stationary time at teacher = 1/2, {lab}")
    _plain_log_axes(ax, [5, 9, 15, 21, 33, 45])
    ax.set_xlabel(r"receptive field $d$")
    ax.set_ylabel(r"$m_c$ (first passage) or $m_{1/2}$ (stationary)")
    ax.set_title("tree committee: first passage within a budget is not the phase", fontsize=9)
    ax.legend(fontsize=7)
    plots.savefig(fig, os.path.join(figures, "protocol.png"))
    return rows


# --------------------------------------------------------------------------------- the report
def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def threshold_rows(model):
    rows = []
    for budget, res in sorted(model["budgets"].items()):
        th = res["th"]
        for i, N in enumerate(th.sizes):
            rows.append((budget, f"{N:g}", _pm(th.x_planted[i], _err_at(th.planted, N)),
                         _pm(th.x_other[i], _err_at(th.other, N)),
                         _pm(th.window[i], th.window_err[i], 2)))
    return rows


def order_rows(models):
    rows = []
    for model in models.values():
        budget = max(model["budgets"])
        res = model["budgets"][budget]
        th, od, lt_p = res["th"], res["od"], res["lt_p"]
        votes = "; ".join(f"{k}: {v}" for k, v in od.votes.items()) if isinstance(od.votes, dict) else str(od.votes)
        if lt_p.growth == "exponential":
            life = f"exponential (ln tau grows by {_pm(lt_p.barrier, lt_p.barrier_err, 2)} per unit of {model['size']})"
        elif lt_p.growth == "power":
            life = f"power law (tau ~ {model['size']}^z, z = {_pm(lt_p.z, lt_p.z_err, 2)})"
        else:
            life = f"{lt_p.growth}: {lt_p.growth_reason}"
        rows.append((model["title"], budget, f"{th.trend} ({th.trend_reason})", life,
                     f"**{od.verdict}**", votes))
    return rows


def analyze_all(scale, out, figures, studies=None, timings=None):
    os.makedirs(figures, exist_ok=True)
    studies = list(studies or list(MODELS) + [FP])
    fits, models = [], {}
    for name in studies:
        if name not in MODELS:
            continue
        tab = load(out, scale, name)
        if tab is None:
            print(f"  {name}: no results under {out}/{scale}/{name}; skipped")
            continue
        models[name] = analyse_model(name, tab, figures, scale, fits)
        print(f"  {name}: analysed", flush=True)
    parts = [f"# Results ({scale} scale)", ""]
    if timings:
        parts += ["Sweep wall times: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()), ""]
    for name, model in models.items():
        parts += [f"## {model['title']}", ""] + ([NOTES[name], ""] if name in NOTES else []) + [
                  f"Thresholds where the stationary time at the teacher crosses 1/2 (control "
                  f"{model['control']}, ± total = stat ⊕ sys); window = ln(m_random / m_planted) "
                  "(> 0: hysteresis).", "",
                  _table(["budget (sweeps)", model["size"], "planted (stability)",
                          "random (reachability)", "window"], threshold_rows(model)), ""]
        st = stationarity_rows(model)
        if st:
            parts += ["Stationarity: the same thresholds at the two budgets (z = difference / "
                      "combined total error).", "",
                      _table(["start", model["size"], "short budget", "long budget", "z"], st), ""]
    if models:
        parts += ["## Order of the transitions", "",
                  _table(["model", "budget", "hysteresis window with size", "lifetime of the "
                          "planted teacher at the window's middle", "verdict", "votes"],
                         order_rows(models)), ""]
        rows, curves = mc_vs_d(models)
        parts += ["## Thresholds against d", "",
                  "Power law m_1/2 = A d^b (analysis.power_law, ± total), local slopes between "
                  "consecutive d, and ln m = a + b ln d + c/d (weighted; errors scaled by "
                  "sqrt(chi2/dof) when > 1). The paper's claim: m_c roughly linear in d (b = 1).", "",
                  _table(["model", "start", "d", "b (power law)", "local slopes", "with c/d correction"], rows), ""]
        if curves:
            plot_mc_vs_d(curves, os.path.join(figures, "mc_vs_d.png"))
    if FP in studies:
        tab = load(out, scale, FP)
        if tab is not None:
            tree = models.get("tree_committee")
            th = tree["budgets"][max(tree["budgets"])]["th"] if tree else None
            rows = first_passage(tab, figures, fits, th)
            parts += ["## The previous protocol: first passage within a budget", "",
                      "P(the student visited the teacher at a success check, every round(N/m) "
                      "sweeps, within the budget) = 1/2 (analysis.critical_point on `success`).", "",
                      _table(["budget (sweeps)", "m_c per N = 15, 27, 45, 63", "b (m_c ~ d^b)"], rows), ""]
    with open(os.path.join(figures, f"results_{scale}.md"), "w") as f:
        f.write("\n".join(parts) + "\n")
    with open(os.path.join(figures, f"fits_{scale}.txt"), "w") as f:
        f.write("\n".join(fits))
    return models
