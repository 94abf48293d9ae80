"""Figures for the analysis, in one style and in physics notation.

Every function takes an optional Axes and returns the Axes it drew on. Without one it makes a new
``matplotlib.figure.Figure`` directly (not through pyplot), so nothing here depends on an
interactive backend or leaves global figures open: safe under Agg, in batch jobs and in tests.

Axis labels use the symbols of the physics (m, N, P(success), overlap q, eps_g, ...: ``label``),
scaled axes state the exponent they use and where it comes from, and a fit that failed or a
quantity that is not determined is marked on the figure itself (grey hatching and "not
determined: <reason>"), never drawn as a result. Every result's ``plot`` method lands here.
"""
from __future__ import annotations

import os
import textwrap

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

__all__ = ["STYLE", "SYMBOLS", "symbol", "label", "new_axes", "savefig", "observable_vs_control",
           "critical_point_plot", "collapse_plot", "sub_c", "crossing_plot", "power_law_plot",
           "phase_diagram", "transition_order_plot", "mark_not_determined"]

STYLE = {
    "figsize": (4.8, 3.6),
    "dpi": 150,
    "cmap": "viridis",
    "marker": "o",
    "markersize": 4,
    "capsize": 2,
    "linewidth": 1.2,
    "fontsize": 9,
    "failed": "0.55",          # colour of what is not a result
}

# column name -> (mathtext symbol, words); a label is "words symbol" or just the symbol
SYMBOLS = {
    "batch_size": ("m", "mini-batch size"),
    "m": ("m", "mini-batch size"),
    "N": ("N", ""),
    "L": ("L", ""),
    "d": ("d", ""),
    "K": ("K", ""),
    "P": ("P", ""),
    "T": ("T", "temperature"),
    "J": ("J", ""),
    "p": ("p", "occupation probability"),
    "alpha": (r"\alpha", ""),
    "lr": (r"\eta", "learning rate"),
    "temperature": (r"T = \eta/m", "SGD temperature"),
    "success": (r"P(\mathrm{success})", ""),
    "overlap": ("q", "overlap"),
    "eps_g": (r"\epsilon_g", "generalisation error"),
    "train_error": (r"\epsilon_t", "training error"),
    "weight_change": (r"\|w - w_0\|/\sqrt{N}", "weight change"),
    "weight_norm": (r"\|w\|/\sqrt{N}", "weight norm"),
    "diverged": (r"P(\mathrm{diverged})", ""),
    "stopped_at": (r"t_\mathrm{stop}", "stopping step"),
}


def symbol(name: str) -> str:
    """Mathtext symbol (without $) of a column, e.g. "batch_size" -> "m", "batch_size/d" -> "m/d";
    unknown names are set upright."""
    name = str(name)
    for op in ("/", "*"):
        if op in name:
            a, b = name.split(op, 1)
            return symbol(a) + ("/" if op == "/" else r"\,") + symbol(b)
    if name.endswith("_mean") and name[:-5] in SYMBOLS:
        return SYMBOLS[name[:-5]][0]
    leaf = name.rsplit(".", 1)[-1]
    if leaf in SYMBOLS:
        return SYMBOLS[leaf][0]
    return r"\mathrm{" + leaf.replace("_", r"\_") + "}"


def sub_c(name: str) -> str:
    """Mathtext (without $) of the critical value of a column: m_c, (m/d)_c."""
    sym = symbol(name)
    return f"({sym})_c" if any(op in str(name) for op in "/*") else f"{sym}_c"


def label(name: str) -> str:
    """Axis label of a column: "words $symbol$" (e.g. "overlap $q$", "$P(\\mathrm{success})$")."""
    name = str(name)
    leaf = name.rsplit(".", 1)[-1]
    words = SYMBOLS.get(leaf, ("", ""))[1] if not any(op in name for op in "/*") else ""
    sym = symbol(name)
    if sym.startswith(r"\mathrm{"):
        return leaf.replace("_", " ")
    return (f"{words} ${sym}$" if words else f"${sym}$").strip()


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


def mark_not_determined(ax, text: str, where: str = "center"):
    """Grey hatching over the axes and a boxed "not determined: <reason>" note: what is drawn
    underneath is not a result."""
    ax.fill_between([0, 1], 0, 1, transform=ax.transAxes, facecolor="none",
                    edgecolor=STYLE["failed"], hatch="///", linewidth=0, alpha=0.35, zorder=0)
    wrapped = "\n".join(textwrap.wrap(text, 48))
    y = {"center": 0.5, "top": 0.96, "bottom": 0.04}[where]
    va = {"center": "center", "top": "top", "bottom": "bottom"}[where]
    ax.text(0.5, y, wrapped, transform=ax.transAxes, ha="center", va=va, fontsize=STYLE["fontsize"] - 1,
            color="0.15", bbox=dict(boxstyle="round", facecolor="white", edgecolor=STYLE["failed"],
                                    alpha=0.9), zorder=10)
    return ax


def savefig(fig, path, dpi=None) -> str:
    """Save ``fig`` (a Figure, or an Axes whose figure is saved) to ``path``, creating folders."""
    fig = getattr(fig, "figure", fig) if not isinstance(fig, Figure) else fig
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=dpi or STYLE["dpi"])
    return os.fspath(path)


def _fmt(v, e=None, digits=4):
    if e is None or not np.isfinite(e):
        return f"{v:.{digits}g}"
    return f"{v:.{digits}g} ± {e:.2g}"


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
                    elinewidth=0.8, label=f"${symbol(size)} = {N:g}$")
        if fit is not None:
            i = int(np.flatnonzero(fit.sizes == N)[0]) if np.any(fit.sizes == N) else None
            if i is not None:
                xs = np.geomspace(x.min(), x.max(), 200) if fit.log_control else np.linspace(x.min(), x.max(), 200)
                ax.plot(xs, fit.curve(i, xs), color=c, lw=STYLE["linewidth"])
    if logx is None:
        logx = bool(np.all(t[control] > 0) and t[control].max() / t[control].min() >= 10)
    if logx:
        _log_axis(ax, "x")
    title = f"{label(observable)} against ${symbol(control)}$"
    if fit is not None:
        ax.axhline(fit.level, color="0.6", lw=0.8, ls=":")
        title += f", {fit.method} fits"
    return _finish(ax, label(control), label(observable), title=title)


def critical_point_plot(cp, ax=None, kind="extrapolation"):
    """``kind="extrapolation"``: x_c(N) with total errors against N^(-1/nu) (the exponent used is
    in the axis label), the fitted form and x_c(inf) at 0 -- or, when x_c grows, x_c against N on
    log-log axes with the growth law; ``kind="curves"``: the data and fitted curves of every size."""
    ax = _ax(ax)
    xs_sym, n_sym = symbol(cp.control), symbol(cp.size)
    if kind == "curves":
        for c, (i, N) in zip(_colors(len(cp.sizes)), enumerate(cp.sizes)):
            x, y, dy = cp.data(i)
            ax.errorbar(x, y, yerr=dy, color=c, marker=STYLE["marker"], ms=STYLE["markersize"],
                        lw=0, elinewidth=0.8, capsize=STYLE["capsize"], label=f"${n_sym} = {N:g}$")
            xs = np.geomspace(x.min(), x.max(), 200) if cp.log_control else np.linspace(x.min(), x.max(), 200)
            ax.plot(xs, cp.curve(i, xs), color=c, lw=STYLE["linewidth"])
        if cp.log_control:
            _log_axis(ax, "x")
        ax.axhline(cp.level, color="0.6", lw=0.8, ls=":")
        return _finish(ax, label(cp.control), label(cp.observable),
                       title=f"{label(cp.observable)}: {cp.method} fits per ${n_sym}$")
    if kind != "extrapolation":
        raise ValueError(f"kind={kind!r} is not allowed; choose 'extrapolation' or 'curves'")
    ok = np.isfinite(cp.xc)
    point_color = _colors(1)[0]
    xcs = sub_c(cp.control)
    ycs = f"${xcs}({n_sym})$"
    if getattr(cp, "limit", "") == "grows":   # no finite limit: the growth law, log-log
        g = cp.growth
        ax.errorbar(cp.sizes[ok], cp.xc[ok], yerr=cp.xc_err[ok], color=point_color, marker=STYLE["marker"],
                    lw=0, ms=STYLE["markersize"], elinewidth=0.8, capsize=STYLE["capsize"], label="per size")
        NN = np.geomspace(cp.sizes[ok].min(), cp.sizes[ok].max(), 100)
        ax.plot(NN, g.predict(NN), color="0.3", lw=STYLE["linewidth"],
                label=rf"$A\,{n_sym}^\kappa$, $\kappa = {_fmt(g.exponent, g.errors['exponent'], 3)}$")
        _log_axis(ax, "x")
        _log_axis(ax, "y")
        return _finish(ax, label(cp.size), ycs,
                       title=f"${xcs}$ grows with ${n_sym}$: no finite limit")
    ext = getattr(cp, "extrapolation", None)
    und = cp.undetermined if ext is not None else {}
    nu_ok = ext is not None and "nu" not in und and np.isfinite(cp.nu)
    nu_axis = cp.nu if nu_ok else 1.0
    if ext is None:
        how = r"$\nu = 1$ for the axis (no extrapolation)"
    elif "nu" in und:
        how = r"$\nu = 1$ for the axis (fitted $\nu$ not determined)"
    elif ext.nu_assumed:
        how = r"$\nu = 1$ assumed"
    elif ext.nu_fixed:
        how = rf"$\nu = {cp.nu:.3g}$ given"
    else:
        how = rf"$\nu = {_fmt(cp.nu, cp.errors.get('nu'), 3)}$ fitted"
    t = cp.sizes ** (-1.0 / nu_axis)
    ax.errorbar(t[ok], cp.xc[ok], yerr=cp.xc_err[ok], color=point_color, marker=STYLE["marker"], lw=0,
                ms=STYLE["markersize"], elinewidth=0.8, capsize=STYLE["capsize"], label="per size")
    title = f"${xcs}({n_sym})$ extrapolated to ${n_sym} \\to \\infty$"
    if ext is not None and np.isfinite(ext.xc_inf):
        NN = np.geomspace(cp.sizes[ok].max() * 1e4, cp.sizes[ok].min(), 200)
        tt = NN ** (-1.0 / nu_axis)
        curve = ext.xc_inf + ext.amplitude * NN ** (-1.0 / ext.nu)
        if "xc_inf" in und:
            ax.plot(tt, curve, color=STYLE["failed"], lw=STYLE["linewidth"], ls="--",
                    label=f"fit (not a result)")
            mark_not_determined(ax, f"${xcs}(\\infty)$ not determined: {und['xc_inf']}", where="top")
        else:
            ax.plot(tt, curve, color="0.3", lw=STYLE["linewidth"],
                    label=rf"${xcs}(\infty) + a\,{n_sym}^{{-1/\nu}}$")
            ax.errorbar([0], [ext.xc_inf], yerr=[cp.errors.get("xc_inf", 0)], color="C3", marker="s",
                        ms=STYLE["markersize"] + 1, capsize=STYLE["capsize"],
                        label=rf"${xcs}(\infty) = {_fmt(ext.xc_inf, cp.errors.get('xc_inf'), 4)}$")
            if "nu" in und:
                ax.text(0.02, 0.02, "\n".join(textwrap.wrap(f"ν not determined: {und['nu']}", 60)),
                        transform=ax.transAxes, fontsize=STYLE["fontsize"] - 2, color="0.3",
                        va="bottom")
        if getattr(cp, "limit", "") == "undetermined":
            title += " (or growth: undetermined)"
    else:
        mark_not_determined(ax, "no extrapolation: fewer than 2 sizes with a crossing", where="top")
    return _finish(ax, f"${n_sym}^{{-1/\\nu}}$, " + how, ycs, title=title)


def collapse_plot(fit, ax=None, control="x", size="L", observable="y", log_control=False):
    """Data collapse: scaled y against scaled x per size, the parameters (or "not determined")
    on the figure; a failed collapse is drawn grey and hatched. ``control``, ``size``,
    ``observable`` name the columns for the axis labels (``log_control``: the collapse variable
    is ln(control)). Anything with ``scaled()`` returning
    size / x / y (and optionally dy) arrays works."""
    ax = _ax(ax)
    sc = fit.scaled()
    size_a, x, y = (np.asarray(getattr(sc, k)) for k in ("size", "x", "y"))
    dy = np.asarray(getattr(sc, "dy", np.zeros_like(y)))
    in_win = np.asarray(getattr(sc, "in_window", np.ones_like(x, bool)))
    failed = bool(getattr(fit, "failed", False))
    sizes = np.unique(size_a)
    xs, ls, ys = symbol(control), symbol(size), symbol(observable)
    if any(op in str(control) for op in "/*"):
        xs = f"({xs})"
    xs_c = f"{xs}_c"
    if log_control:
        xs, xs_c = r"\ln " + xs, r"\ln " + xs_c
    for c, L in zip(_colors(len(sizes)), sizes):
        m = size_a == L
        col = STYLE["failed"] if failed else c
        ax.errorbar(x[m], y[m], yerr=dy[m], color=col, marker=STYLE["marker"], ms=STYLE["markersize"],
                    lw=0, elinewidth=0.8, label=f"${ls} = {L:g}$",
                    alpha=1.0 if np.any(in_win[m]) else 0.3)
    problem = getattr(fit, "problem", None)
    if problem is not None and problem.x_window is not None:
        for xw in problem.x_window:
            ax.axvline(xw, color="0.6", ls=":", lw=1)
    values = getattr(fit, "values", None)
    title = "data collapse"
    if values is not None:
        und = getattr(fit, "undetermined", {})
        nu, zeta = values.get("nu", np.nan), values.get("zeta", 0.0)
        nu_txt = r"$\nu$ not determined" if "nu" in und else rf"$\nu = {nu:.3g}$"
        xlabel = rf"$({xs} - {xs_c})\,{ls}^{{1/\nu}}$, " + nu_txt
        if zeta != 0 or "zeta" in getattr(fit, "free", ()):
            z_txt = (r"$\zeta$ not determined" if "zeta" in und or "nu" in und
                     else rf"$\zeta/\nu = {zeta / nu:.3g}$")
            ylabel = rf"${ys}\,{ls}^{{-\zeta/\nu}}$, " + z_txt
        else:
            ylabel = label(observable) if observable != "y" else f"${ys}$"
        if getattr(fit, "quality", None) is not None:
            title += f", Houdayer-Hartmann S = {fit.quality:.3g} ({fit.n_points} terms)"
        if failed:
            reason = next(iter(fit.undetermined.values()))
            mark_not_determined(ax, "collapse failed, nothing determined: " + reason, where="bottom")
            title = "data collapse FAILED (not a result)"
        else:
            lines = [fit.format(p, digits=5) if hasattr(fit, "format") else f"{p} = {v:.5g}"
                     for p, v in values.items()]
            text = "\n".join(textwrap.shorten(l, 64, placeholder=" ...)") for l in lines)
            ax.text(0.02, 0.98, text, transform=ax.transAxes, va="top", fontsize=STYLE["fontsize"] - 2,
                    bbox=dict(boxstyle="round", facecolor="white", edgecolor="0.8", alpha=0.8))
    else:
        xlabel, ylabel = rf"$({xs} - {xs_c})\,{ls}^{{1/\nu}}$", rf"${ys}\,{ls}^{{-\zeta/\nu}}$"
    return _finish(ax, xlabel, ylabel, title=title)


def crossing_plot(cross, ax=None, size="L", control="x"):
    """Pairwise crossings x* against L_eff^(-omega) (the omega used is in the axis label) with the
    extrapolation to L = infinity; an undetermined x_inf is marked, not drawn. Objects with only
    ``sizes``, ``xc``, ``xc_err`` are drawn against the size."""
    ax = _ax(ax)
    ls, xs = symbol(size), symbol(control)
    pairs = getattr(cross, "pairs", None)
    if pairs is None:
        L = np.asarray(getattr(cross, "sizes", getattr(cross, "L", [])), float)
        xc = np.asarray(getattr(cross, "xc", []), float)
        dx = np.asarray(getattr(cross, "xc_err", np.zeros_like(xc)), float)
        ax.errorbar(L, xc, yerr=dx, marker=STYLE["marker"], lw=0, elinewidth=0.8, capsize=STYLE["capsize"],
                    label="crossings")
        _log_axis(ax, "x")
        return _finish(ax, f"${ls}$", f"crossing ${xs}^*$", title="crossings against size")
    om = cross.omega if np.isfinite(cross.omega) else 1.0
    how = "fitted" if cross.omega_fitted else ("assumed" if getattr(cross, "omega_assumed", False) else "given")
    t = pairs.L_eff ** -om
    ok = np.isfinite(pairs.x_star)
    ax.errorbar(t[ok], pairs.x_star[ok], pairs.x_star_err[ok], fmt="o", ms=STYLE["markersize"],
                capsize=STYLE["capsize"], color=_colors(1)[0], label="crossings of consecutive sizes")
    und = getattr(cross, "undetermined", {})
    if "x_inf" in und:
        mark_not_determined(ax, f"${xs}_\\infty$ not determined: {und['x_inf']}", where="top")
    elif np.isfinite(cross.x_inf):
        tt = np.linspace(0, t[ok].max() * 1.05, 50)
        slope = np.polyfit(t[ok], pairs.x_star[ok], 1)[0] if ok.sum() >= 2 else 0.0
        ax.plot(tt, cross.x_inf + slope * tt, color="0.3", lw=STYLE["linewidth"] * 0.8, ls="--")
        ax.errorbar([0.0], [cross.x_inf], [cross.errors["x_inf"]], fmt="s", color="C3",
                    label=rf"${xs}_\infty = {_fmt(cross.x_inf, cross.errors['x_inf'], 5)}$")
    nu_txt = ("ν not determined" if "nu" in und else
              f"ν = {_fmt(cross.nu, cross.errors.get('nu'), 3)} (slopes)")
    return _finish(ax, rf"$L_\mathrm{{eff}}^{{-\omega}}$, $\omega = {om:.3g}$ ({how})", f"${xs}^*$",
                   title=f"crossings extrapolated to ${ls} \\to \\infty$; {nu_txt}")


def power_law_plot(fit, ax=None, label=None, xlabel="x", ylabel="y", **kwargs):
    """Data with errors and the fitted power law, log-log."""
    ax = _ax(ax)
    c = kwargs.pop("color", _colors(1)[0])
    ax.errorbar(fit.x, fit.y, yerr=fit.dy, color=c, marker=STYLE["marker"], lw=0, ms=STYLE["markersize"],
                elinewidth=0.8, capsize=STYLE["capsize"], label=label or "data")
    xs = np.geomspace(fit.x.min(), fit.x.max(), 100)
    b, e = fit.exponent, fit.errors["exponent"]
    ax.plot(xs, fit.predict(xs), color="0.3", lw=STYLE["linewidth"],
            label=rf"$A\,x^b$, $b = {_fmt(b, e, 3)}$", **kwargs)
    _log_axis(ax, "x")
    _log_axis(ax, "y")
    return _finish(ax, xlabel, ylabel, title=f"power law, exponent {_fmt(b, e, 3)}")


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
    ax.figure.colorbar(mesh, ax=ax, label=label(observable))
    return _finish(ax, label(x), label(y), title=f"{label(observable)} over ${symbol(x)}$ and "
                   f"${symbol(y)}$", legend=False)


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
