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
           "phase_diagram", "mark_not_determined", "thresholds_plot", "lifetimes_plot", "order_plot"]

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
