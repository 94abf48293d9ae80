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
           "collapse_plot", "crossing_plot", "power_law_plot", "phase_diagram", "transition_order_plot"]

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


def transition_order_plot(diag, ax=None, kind="binder"):
    """``kind="binder"``: U = 1 - <q^4>/(3<q^2>^2) against the control per size;
    ``kind="histogram"``: the near-critical replica distributions of the order parameter."""
    ax = _ax(ax)
    colors = _colors(len(diag.sizes))
    if kind == "binder":
        for c, N in zip(colors, diag.sizes):
            xs, U = diag.binder[N]
            ax.plot(xs, U, color=c, marker=STYLE["marker"], ms=STYLE["markersize"], lw=STYLE["linewidth"],
                    label=f"N={N:g}")
        ax.axhline(0, color="0.6", lw=0.8, ls=":")
        xs_all = np.concatenate([diag.binder[N][0] for N in diag.sizes])
        if _auto_log(np.unique(xs_all)):
            _log_axis(ax, "x")
        return _finish(ax, "control", "Binder cumulant U", title=f"transition: {diag.verdict}")
    if kind == "histogram":
        vals = np.concatenate(list(diag.samples.values()))
        bins = np.linspace(vals.min(), vals.max(), 31) if np.ptp(vals) > 0 else 10
        for c, N, x in zip(colors, diag.sizes, diag.x_near):
            ax.hist(diag.samples[N], bins=bins, histtype="step", color=c, density=True,
                    lw=STYLE["linewidth"], label=f"N={N:g} at {x:g}")
        return _finish(ax, "order parameter", "density", title=f"transition: {diag.verdict}")
    raise ValueError(f"kind={kind!r} is not allowed; choose 'binder' or 'histogram'")
