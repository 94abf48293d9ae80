"""Figures for the analysis, in one style.

Every function takes an optional Axes and returns the Axes it drew on. Without one it makes a new
``matplotlib.figure.Figure`` directly (not through pyplot), so nothing here depends on an
interactive backend or leaves global figures open: safe under Agg, in batch jobs and in tests.
"""
from __future__ import annotations

import os

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

__all__ = ["STYLE", "new_axes", "savefig", "observable_vs_control", "critical_point_plot",
           "collapse_plot", "crossing_plot", "power_law_plot", "phase_diagram", "thresholds_plot",
           "lifetimes_plot", "order_plot"]

STYLE = {
    "figsize": (4.8, 3.6),
    "dpi": 150,
    "cmap": "viridis",
    "marker": "o",
    "markersize": 4,
    "capsize": 2,
    "linewidth": 1.2,
    "fontsize": 9,
}


def _colors(n):
    cmap = colormaps[STYLE["cmap"]]
    return [cmap(v) for v in (np.linspace(0.05, 0.85, n) if n > 1 else [0.3])]


def new_axes(ncols: int = 1, nrows: int = 1, figsize=None):
    """A new Figure with its Axes (a single Axes for 1x1)."""
    w, h = figsize or STYLE["figsize"]
    fig = Figure(figsize=(w * ncols, h * nrows), dpi=STYLE["dpi"], layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=True)
    return fig, axes


def _ax(ax):
    if ax is None:
        _, ax = new_axes()
    return ax


def _log_axis(ax, which="x"):
    """Log scale with plain numbers at 1-2-5 ticks (controls such as m are small integers)."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    fmt = ScalarFormatter()
    fmt.set_scientific(False)
    axis.set_major_formatter(fmt)
    axis.set_minor_formatter(NullFormatter())


def _finish(ax, xlabel=None, ylabel=None, title=None, legend=True):
    fs = STYLE["fontsize"]
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=fs)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=fs)
    if title:
        ax.set_title(title, fontsize=fs)
    ax.tick_params(labelsize=fs - 1)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=fs - 1, frameon=False)
    return ax


def savefig(fig, path, dpi=None) -> str:
    """Save ``fig`` (a Figure, or an Axes whose figure is saved) to ``path``, creating folders."""
    fig = getattr(fig, "figure", fig) if not isinstance(fig, Figure) else fig
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=dpi or STYLE["dpi"])
    return os.fspath(path)


# ----------------------------------------------------------------------------- observables
def observable_vs_control(table, control="batch_size", size="N", observable="success", ax=None,
                          logx=None, fit=None):
    """Mean observable (Wilson 68% intervals for booleans, standard errors otherwise) against the
    control, one curve per size; ``fit`` (a CriticalPoint on the same data) adds its curves."""
    from .table import Table, aggregate
    t = table if isinstance(table, Table) else Table(table)
    ax = _ax(ax)
    agg = aggregate(t, by=[size, control], observable=observable)
    sizes = agg.unique(size)
    is_bool = f"{observable}_lo68" in agg
    for c, N in zip(_colors(len(sizes)), sizes):
        g = agg.where(**{size: N}).sort(control)
        x, y = g[control].astype(float), g[f"{observable}_mean"]
        if is_bool:
            err = np.vstack([y - g[f"{observable}_lo68"], g[f"{observable}_hi68"] - y])
        else:
            err = np.nan_to_num(g[f"{observable}_sem"])
        ax.errorbar(x, y, yerr=err, color=c, marker=STYLE["marker"], ms=STYLE["markersize"],
                    capsize=STYLE["capsize"], lw=0 if fit is not None else STYLE["linewidth"] * 0.7,
                    elinewidth=0.8, label=f"{size}={N:g}")
        if fit is not None:
            i = int(np.flatnonzero(fit.sizes == N)[0]) if np.any(fit.sizes == N) else None
            if i is not None:
                xs = np.geomspace(x.min(), x.max(), 200) if fit.log_control else np.linspace(x.min(), x.max(), 200)
                ax.plot(xs, fit.curve(i, xs), color=c, lw=STYLE["linewidth"])
    if logx is None:
        logx = bool(np.all(t[control] > 0) and t[control].max() / t[control].min() >= 10)
    if logx:
        _log_axis(ax, "x")
    if fit is not None:
        ax.axhline(fit.level, color="0.6", lw=0.8, ls=":")
    return _finish(ax, control, observable)


def critical_point_plot(cp, ax=None, kind="extrapolation"):
    """``kind="extrapolation"``: xc(N) with total errors against N^(-1/nu), the fitted line and
    xc(inf) at 0; ``kind="curves"``: the data and fitted curves of every size."""
    ax = _ax(ax)
    if kind == "curves":
        for c, (i, N) in zip(_colors(len(cp.sizes)), enumerate(cp.sizes)):
            x, y, dy = cp.data(i)
            ax.errorbar(x, y, yerr=dy, color=c, marker=STYLE["marker"], ms=STYLE["markersize"],
                        lw=0, elinewidth=0.8, capsize=STYLE["capsize"], label=f"{cp.size}={N:g}")
            xs = np.geomspace(x.min(), x.max(), 200) if cp.log_control else np.linspace(x.min(), x.max(), 200)
            ax.plot(xs, cp.curve(i, xs), color=c, lw=STYLE["linewidth"])
        if cp.log_control:
            _log_axis(ax, "x")
        ax.axhline(cp.level, color="0.6", lw=0.8, ls=":")
        return _finish(ax, cp.control, cp.observable)
    if kind != "extrapolation":
        raise ValueError(f"kind={kind!r} is not allowed; choose 'extrapolation' or 'curves'")
    nu = cp.nu if np.isfinite(cp.nu) else 1.0
    t = cp.sizes ** (-1.0 / nu)
    ax.errorbar(t, cp.xc, yerr=cp.xc_err, color=_colors(1)[0], marker=STYLE["marker"], lw=0,
                ms=STYLE["markersize"], elinewidth=0.8, capsize=STYLE["capsize"], label="per size")
    if np.isfinite(cp.xc_inf):
        tt = np.linspace(0, t.max() * 1.05, 100)
        ax.plot(tt, cp.xc_inf + cp.amplitude * tt, color="0.3", lw=STYLE["linewidth"],
                label=f"fit, nu={'%.3g' % nu}{' (fixed)' if cp.nu_fixed else ''}")
        ax.errorbar([0], [cp.xc_inf], yerr=[cp.errors.get("xc_inf", 0)], color="C3", marker="s",
                    ms=STYLE["markersize"] + 1, capsize=STYLE["capsize"], label=f"{cp.control}_c(inf)")
    elif getattr(cp, "limit", "") == "grows":      # no finite limit: draw the growth law instead
        tt = np.geomspace(t.min(), t.max(), 100)
        ax.plot(tt, cp.amplitude * tt ** (-nu * cp.kappa), color="0.3", lw=STYLE["linewidth"],
                label=f"{cp.size}^kappa, kappa={cp.kappa:.3g} (no finite limit)")
    return _finish(ax, f"{cp.size}^(-1/nu)", f"{cp.control}_c")


def collapse_plot(fit, ax=None):
    """Data collapse: uses the result's own ``plot(ax)`` when it has one, else its ``scaled()``
    data (anything with size / x / y arrays, and optionally dy)."""
    ax = _ax(ax)
    if hasattr(fit, "plot"):
        out = fit.plot(ax)
        return out if out is not None else ax
    sc = fit.scaled()
    size, x, y = (np.asarray(getattr(sc, k)) for k in ("size", "x", "y"))
    dy = np.asarray(getattr(sc, "dy", np.zeros_like(y)))
    sizes = np.unique(size)
    for c, L in zip(_colors(len(sizes)), sizes):
        m = size == L
        ax.errorbar(x[m], y[m], yerr=dy[m], color=c, marker=STYLE["marker"], ms=STYLE["markersize"],
                    lw=0, elinewidth=0.8, label=f"L={L:g}")
    return _finish(ax, "(x - xc) L^(1/nu)", "y L^(-zeta/nu)")


def crossing_plot(cross, ax=None):
    """Pairwise crossing points against the size (the result's own ``plot`` if it has one)."""
    ax = _ax(ax)
    if hasattr(cross, "plot"):
        out = cross.plot(ax)
        return out if out is not None else ax
    L = np.asarray(getattr(cross, "sizes", getattr(cross, "L", [])), float)
    xc = np.asarray(getattr(cross, "xc", []), float)
    dx = np.asarray(getattr(cross, "xc_err", np.zeros_like(xc)), float)
    ax.errorbar(L, xc, yerr=dx, marker=STYLE["marker"], lw=0, elinewidth=0.8, capsize=STYLE["capsize"])
    _log_axis(ax, "x")
    return _finish(ax, "size", "crossing")


def power_law_plot(fit, ax=None, label=None, **kwargs):
    """Data with errors and the fitted power law, log-log."""
    ax = _ax(ax)
    c = kwargs.pop("color", _colors(1)[0])
    ax.errorbar(fit.x, fit.y, yerr=fit.dy, color=c, marker=STYLE["marker"], lw=0, ms=STYLE["markersize"],
                elinewidth=0.8, capsize=STYLE["capsize"], label=label or "data")
    xs = np.geomspace(fit.x.min(), fit.x.max(), 100)
    b, e = fit.exponent, fit.errors["exponent"]
    ax.plot(xs, fit.predict(xs), color="0.3", lw=STYLE["linewidth"], label=f"slope {b:.3g} +- {e:.2g}", **kwargs)
    _log_axis(ax, "x")
    _log_axis(ax, "y")
    return _finish(ax, "x", "y")


def phase_diagram(table, x, y, observable="success", ax=None, logx=None, logy=None, cmap=None,
                  vmin=None, vmax=None):
    """Heat map of the mean ``observable`` over two controls (any grid; missing cells blank)."""
    from .table import Table, aggregate
    t = table if isinstance(table, Table) else Table(table)
    ax = _ax(ax)
    agg = aggregate(t, by=[x, y], observable=observable)
    xv, yv = agg.unique(x).astype(float), agg.unique(y).astype(float)
    Z = np.full((len(yv), len(xv)), np.nan)
    for xi, yi, z in zip(agg[x].astype(float), agg[y].astype(float), agg[f"{observable}_mean"]):
        Z[np.searchsorted(yv, yi), np.searchsorted(xv, xi)] = z
    logx = _auto_log(xv) if logx is None else logx
    logy = _auto_log(yv) if logy is None else logy
    mesh = ax.pcolormesh(_edges(xv, logx), _edges(yv, logy), np.ma.masked_invalid(Z),
                         cmap=cmap or STYLE["cmap"], norm=Normalize(vmin, vmax), shading="flat")
    if logx:
        _log_axis(ax, "x")
    if logy:
        _log_axis(ax, "y")
    ax.figure.colorbar(mesh, ax=ax, label=observable)
    return _finish(ax, x, y, legend=False)


def _auto_log(v):
    return bool(len(v) > 1 and np.all(v > 0) and v.max() / v.min() >= 10)


def _edges(v, log):
    """Cell edges halfway between grid values (geometrically on a log axis)."""
    if len(v) == 1:
        return np.array([v[0] * 0.9, v[0] * 1.1]) if log else np.array([v[0] - 0.5, v[0] + 0.5])
    w = np.log(v) if log else v
    mid = 0.5 * (w[1:] + w[:-1])
    e = np.concatenate([[w[0] - (mid[0] - w[0])], mid, [w[-1] + (w[-1] - mid[-1])]])
    return np.exp(e) if log else e


# ---------------------------------------------------------------- stationary evidence (issue 10)
_SYMBOL = {"batch_size": "m", "N": "N", "d": "d", "P": "P", "h": "h", "T": "T", "temperature": "T",
           "lr": r"\eta", "overlap": "q", "window_overlap": r"\bar q", "time_at_teacher": "time at teacher",
           "magnetisation": "m", "first_exit": "first exit", "first_passage": "first passage"}


def _sym(name: str) -> str:
    """Physics notation for a column name (derived controls such as "batch_size/P" -> m/P)."""
    for op in "/*":
        if op in name:
            a, b = name.split(op, 1)
            return f"{_sym(a)}{'/' if op == '/' else ' '}{_sym(b)}"
    s = _SYMBOL.get(name, name)
    return f"${s}$" if len(s) <= 8 and " " not in s else s


def _not_determined(ax, text="not determined", detail=None):
    """Write the verdict on the axes, where a reader cannot miss it."""
    msg = text if not detail else f"{text}\n{_wrap(detail, 52)}"
    ax.text(0.5, 0.5, msg, transform=ax.transAxes, ha="center", va="center", color="C3",
            fontsize=STYLE["fontsize"], bbox=dict(facecolor="white", edgecolor="C3", alpha=0.85))


def _wrap(text, width):
    import textwrap
    return "\n".join(textwrap.wrap(str(text), width)[:6])


def _start_handles(ax, starts):
    from matplotlib.lines import Line2D
    return [Line2D([], [], color="0.3", marker="o", ls="-", ms=STYLE["markersize"], label=f"{starts[0]} start"),
            Line2D([], [], color="0.3", marker="s", mfc="white", ls="--", ms=STYLE["markersize"],
                   label=f"{starts[1]} start")]


def thresholds_plot(th, ax=None, kind="curves"):
    """``kind="curves"``: the stationary observable against the control, per size (colour) and
    start (filled/solid: planted; open/dashed: other), fitted curves and thresholds;
    ``kind="window"``: the hysteresis window against N with total errors and its trend."""
    ax = _ax(ax)
    c, n = _sym(th.control), _sym(th.size)
    if kind == "curves":
        colors = _colors(len(th.sizes))
        for cp, mk, ls, fill in ((th.planted, "o", "-", True), (th.other, "s", "--", False)):
            for col, N in zip(colors, th.sizes):
                i = int(np.flatnonzero(cp.sizes == N)[0])
                x, y, dy = cp.data(i)
                ax.errorbar(x, y, yerr=dy, color=col, marker=mk, mfc=col if fill else "white", lw=0,
                            ms=STYLE["markersize"], elinewidth=0.8, capsize=STYLE["capsize"])
                xs = np.geomspace(x.min(), x.max(), 200) if th.log_control else np.linspace(x.min(), x.max(), 200)
                ax.plot(xs, cp.curve(i, xs), color=col, ls=ls, lw=STYLE["linewidth"])
                if np.isfinite(cp.xc[i]):
                    ax.axvline(cp.xc[i], color=col, ls=ls, lw=0.6, alpha=0.6)
        ax.axhline(th.level, color="0.6", lw=0.8, ls=":")
        if th.log_control:
            _log_axis(ax, "x")
        from matplotlib.lines import Line2D
        handles = [Line2D([], [], color=col, lw=STYLE["linewidth"], label=f"{n} = {N:g}")
                   for col, N in zip(colors, th.sizes)] + _start_handles(ax, th.starts)
        ax.legend(handles=handles, fontsize=STYLE["fontsize"] - 2, frameon=False)
        return _finish(ax, c, f"{_sym(th.observable)} (window mean)",
                       title=f"thresholds from both starts; hysteresis: {th.trend}", legend=False)
    if kind != "window":
        raise ValueError(f"kind={kind!r} is not allowed; choose 'curves' or 'window'")
    ok = np.isfinite(th.window)
    ax.errorbar(th.sizes[ok], th.window[ok], yerr=th.window_err[ok], color=_colors(1)[0],
                marker=STYLE["marker"], lw=STYLE["linewidth"] * 0.7, ms=STYLE["markersize"], elinewidth=0.8,
                capsize=STYLE["capsize"], label="window (stat ⊕ sys)")
    ax.axhline(0, color="0.6", lw=0.8, ls=":")
    if ok.sum() >= 1 and np.all(th.sizes[ok] > 0):
        _log_axis(ax, "x")
        ax.set_xticks(th.sizes[ok])
        ax.set_xticklabels([f"{v:g}" for v in th.sizes[ok]])
    if th.trend == "not determined" or not ok.any():
        _not_determined(ax, "window: not determined", th.trend_reason)
    unit = (f"ln({c}$_{{{th.starts[1]}}}$ / {c}$_{{{th.starts[0]}}}$)" if th.log_control
            else f"{c}$_{{{th.starts[1]}}}$ - {c}$_{{{th.starts[0]}}}$")
    return _finish(ax, n, f"hysteresis window {unit}", title=f"hysteresis window vs {n}: {th.trend}")


def lifetimes_plot(lt, ax=None, kind="growth"):
    """``kind="growth"``: ln tau (exponential MLE with censoring, error 1/sqrt(events)) against N
    at the compared control, with the exponential and power-law fits; cells censored beyond the
    budget as lower bounds. ``kind="survival"``: Kaplan-Meier curves of the compared cells.
    ``kind="control"``: tau of every cell against the control, one curve per size."""
    ax = _ax(ax)
    n, c = _sym(lt.size), _sym(lt.control)
    cells = lt.compared()
    where = ", ".join(sorted({f"{x:g}" for x in lt.at.values()}))
    if kind == "control":
        sizes = sorted({cl.size for cl in lt.cells})
        for col, N in zip(_colors(len(sizes)), sizes):
            row = sorted((cl for cl in lt.cells if cl.size == N), key=lambda cl: cl.control)
            ok = [cl for cl in row if cl.events > 0]
            if ok:
                tau = np.array([cl.tau for cl in ok])
                f = np.exp(1 / np.sqrt([cl.events for cl in ok]))     # ln tau +- 1/sqrt(events)
                ax.errorbar([cl.control for cl in ok], tau, yerr=[tau - tau / f, tau * f - tau],
                            color=col, marker=STYLE["marker"], ms=STYLE["markersize"], lw=STYLE["linewidth"] * 0.7,
                            elinewidth=0.8, capsize=STYLE["capsize"], label=f"{n} = {N:g}")
            none = [cl for cl in row if cl.events == 0]
            if none:
                ax.plot([cl.control for cl in none], [cl.tau_lower for cl in none], ls="none", marker="^",
                        color=col, ms=STYLE["markersize"] + 1)
        ax.set_yscale("log")
        xs = np.array([cl.control for cl in lt.cells])
        if _auto_log(np.unique(xs)):
            _log_axis(ax, "x")
        ax.plot([], [], ls="none", marker="^", color="0.4", label="no event: 95 % lower bound")
        return _finish(ax, c, r"$\tau$ (steps; MLE with censoring)",
                       title=f"lifetime ({_sym(lt.event)}, {lt.start} start) against {c}")
    if kind == "survival":
        colors = _colors(len(cells))
        for col, cell in zip(colors, cells):
            if len(cell.times):
                tt = np.concatenate([[0], cell.times, [cell.horizon]])
                S = np.concatenate([[1], cell.survival, [cell.survival[-1]]])
                ax.step(tt, S, where="post", color=col, lw=STYLE["linewidth"],
                        label=f"{n} = {cell.size:g} ({cell.events}/{cell.n} events)")
            else:
                ax.plot([0, cell.horizon], [1, 1], color=col, lw=STYLE["linewidth"],
                        label=f"{n} = {cell.size:g} (no event)")
            ax.plot([cell.horizon], [cell.survival[-1] if len(cell.survival) else 1], marker="|",
                    color=col, ms=8)
        ax.set_yscale("log")
        ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
        if not cells:
            _not_determined(ax, "no cells", lt.growth_reason)
        return _finish(ax, "steps t", "survival S(t) (Kaplan-Meier)",
                       title=f"{_sym(lt.event)} from {lt.start} starts at {c} = {where}")
    if kind != "growth":
        raise ValueError(f"kind={kind!r} is not allowed; choose 'growth', 'survival' or 'control'")
    if len(lt.sizes):
        ax.errorbar(lt.sizes, lt.log_tau, yerr=lt.log_tau_err, color=_colors(1)[0], marker=STYLE["marker"],
                    lw=0, ms=STYLE["markersize"], elinewidth=0.8, capsize=STYLE["capsize"],
                    label=r"$\ln\tau$ (MLE, censored)")
    lower = [cl for cl in cells if cl.size not in set(lt.sizes.tolist())]
    if lower:
        lb = [np.log(cl.tau_lower if np.isfinite(cl.tau_lower) else max(cl.tau, 1.0)) for cl in lower]
        ax.plot([cl.size for cl in lower], lb, ls="none", marker="^", color="C3", ms=STYLE["markersize"] + 1,
                label="too few events: lower bound")
    if len(lt.sizes) >= 2:
        Ns = np.linspace(lt.sizes.min(), lt.sizes.max(), 100)
        styles = {"exponential": "-", "power": "--", "exponential x power": ":"}
        for name, f in lt.forms.items():
            p = f.params
            y = p["a"] + p.get("b", 0.0) * Ns + (p.get("z", 0.0) + p.get("c", 0.0)) * np.log(Ns)
            ax.plot(Ns, y, color="0.3", ls=styles[name], lw=STYLE["linewidth"],
                    label=f"{name}: $\\chi^2$/dof = {f.chi2:.3g}/{f.dof}, AIC = {f.aic:.3g}")
    if lt.growth == "undetermined":
        _not_determined(ax, "growth: not determined", lt.growth_reason)
    return _finish(ax, n, r"$\ln \tau$ (steps)",
                   title=f"lifetime ({_sym(lt.event)}, {lt.start} start) at {c} = {where}: {lt.growth}")


def _lifetime_points(lt, ax, color, label):
    """ln tau with errors, the preferred form's line, and censored cells as lower bounds."""
    if len(lt.sizes):
        ax.errorbar(lt.sizes, lt.log_tau, yerr=lt.log_tau_err, color=color, marker=STYLE["marker"], lw=0,
                    ms=STYLE["markersize"], elinewidth=0.8, capsize=STYLE["capsize"], label=label)
    best = {"exponential": "exponential", "power": "power"}.get(lt.growth)
    if best and best in lt.forms and len(lt.sizes) >= 2:
        p = lt.forms[best].params
        Ns = np.linspace(lt.sizes.min(), lt.sizes.max(), 100)
        ax.plot(Ns, p["a"] + p.get("b", 0.0) * Ns + p.get("z", 0.0) * np.log(Ns), color=color,
                lw=STYLE["linewidth"] * 0.8)
    lower = [cl for cl in lt.compared() if cl.size not in set(lt.sizes.tolist())]
    if lower:
        lb = [np.log(cl.tau_lower if np.isfinite(cl.tau_lower) else max(cl.tau, 1.0)) for cl in lower]
        ax.plot([cl.size for cl in lower], lb, ls="none", marker="^", color=color, ms=STYLE["markersize"] + 1,
                label=f"{lt.start}: too few events (lower bound)")


def _skipped_panel(ax, title, notes):
    ax.set_xticks([])
    ax.set_yticks([])
    why = notes[0] if notes else ""
    head = "skipped" if why.startswith("skipped") else "not determined"
    _not_determined(ax, head, why.split(": ", 1)[1] if why.startswith("skipped: ") else why)
    ax.set_title(title, fontsize=STYLE["fontsize"])
    return ax


def _bimodality_panel(bm, ax, size, control, title):
    colors = _colors(len(bm.sizes))
    vals = np.concatenate([v for v in bm.samples.values() if len(v)]) if bm.samples else np.array([])
    bins = np.linspace(vals.min(), vals.max(), 31) if len(vals) and np.ptp(vals) > 0 else 10
    for col, i in zip(colors, range(len(bm.sizes))):
        N = bm.sizes[i]
        v = bm.samples.get(N, np.array([]))
        if not len(v):
            continue
        tag = ("two modes" if bm.bimodal[i] else "one mode") if bm.stationary[i] else f"left out ({bm.status[i]})"
        ax.hist(v, bins=bins, histtype="step", density=True, color=col, lw=STYLE["linewidth"],
                ls="-" if bm.stationary[i] else ":",
                label=f"{_sym(size)} = {N:g} at {_sym(control)} = {bm.x_near[i]:.3g}: {tag}")
    return _finish(ax, f"{_sym(bm.column)} (per replica)", "density", title=title)


def _binder_panel(bd, ax, size, control, title):
    colors = _colors(len(bd.sizes))
    for col, N in zip(colors, bd.sizes):
        x, U, dU = bd.curves[float(N)]
        ax.errorbar(x, U, yerr=dU, color=col, marker=STYLE["marker"], ms=STYLE["markersize"],
                    lw=STYLE["linewidth"] * 0.8, elinewidth=0.8, capsize=STYLE["capsize"],
                    label=f"{_sym(size)} = {N:g}")
    ax.axhline(0, color="0.6", lw=0.8, ls=":")
    ax.axhline(2 / 3, color="0.8", lw=0.8, ls=":")
    if bd.crossing is not None and np.isfinite(bd.crossing.x_inf):
        ax.axvline(bd.crossing.x_inf, color="C3", lw=0.8, ls="--",
                   label=f"crossing {bd.crossing.x_inf:.3g} ± {bd.crossing.errors['x_inf']:.2g}")
    return _finish(ax, _sym(control), f"Binder $U$ of {_sym(bd.column)}", title=title)


def order_plot(diag, ax=None, kind="summary"):
    """The evidence behind an ``OrderDiagnosis``. ``kind="summary"``: four panels (hysteresis
    window, lifetime growth, stationary distributions, Binder cumulant) on a new figure, or on the
    4 Axes given; a test that was skipped or could not vote says so on its panel. One panel:
    ``kind`` = "hysteresis" | "lifetimes" | "bimodality" | "binder"."""
    kinds = ("hysteresis", "lifetimes", "bimodality", "binder")
    if kind == "summary":
        if ax is None:
            fig, axes = new_axes(ncols=2, nrows=2, figsize=(5.4, 4.0))
        else:
            axes = np.asarray(ax)
            if axes.size != 4:
                raise ValueError(f"kind='summary' needs 4 Axes; got {axes.size}")
            fig = axes.flat[0].figure
        for a, k in zip(np.asarray(axes).flat, kinds):
            order_plot(diag, ax=a, kind=k)
        fig.suptitle(f"transition order: {diag.verdict}  (votes: " + ", ".join(
            f"{k} {diag.votes.get(k) or 'none'}" for k in kinds) + ")", fontsize=STYLE["fontsize"],
            color="C3" if diag.verdict == "undetermined" else "black")
        return axes
    if kind not in kinds:
        raise ValueError(f"kind={kind!r} is not allowed; choose 'summary' or one of {kinds}")
    ax = _ax(ax)
    vote = diag.votes.get(kind)
    title = f"{kind}: {vote or 'no vote'}"
    notes = diag.notes.get(kind, ())
    if kind == "hysteresis":
        if diag.thresholds is None:
            return _skipped_panel(ax, title, notes)
        thresholds_plot(diag.thresholds, ax=ax, kind="window")
        ax.set_title(title + f" (window {diag.thresholds.trend})", fontsize=STYLE["fontsize"])
        return ax
    if kind == "lifetimes":
        lts = [lt for lt in diag.lifetimes.values() if len(lt.compared())]
        if not lts:
            return _skipped_panel(ax, title, notes)
        for col, lt in zip(("C0", "C1"), lts):
            _lifetime_points(lt, ax, col, f"{_sym(lt.event)} ({lt.start} start): {lt.growth}")
        if vote is None:
            why = [f"{lt.start}: {lt.growth}" for lt in lts]
            _not_determined(ax, "no vote", "; ".join(why))
        return _finish(ax, _sym(diag.size), r"$\ln\tau$ (steps)", title=title)
    if kind == "bimodality":
        if diag.bimodality is None:
            return _skipped_panel(ax, title, notes)
        _bimodality_panel(diag.bimodality, ax, diag.size, diag.control, title)
        if vote is None:
            _not_determined(ax, "no vote", notes[0] if notes else "")
        return ax
    if diag.binder is None:
        return _skipped_panel(ax, title, notes)
    _binder_panel(diag.binder, ax, diag.size, diag.control, title)
    if vote is None:
        _not_determined(ax, "no vote", notes[-1] if notes else "")
    return ax
