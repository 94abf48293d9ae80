"""One-call analysis of a sweep: load, aggregate, critical points with their error budget,
transition order, optional power law of m_c against another parameter and optional collapse;
a short text report and PNG figures.

``physsgd analyze RESULTS --control batch_size --size N --observable success`` calls ``analyze``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .controls import components, with_control
from .fitting import binomial_error
from .sizefits import _label
from .table import Table, aggregate, load

__all__ = ["Report", "analyze"]

_NOT_CONFOUNDERS = ("seed", "replicas", "wall_time", "threads", "record")


@dataclass
class Report:
    text: str
    table: Table = field(repr=False)
    aggregated: Table = field(repr=False)
    critical: object = None            # CriticalPoint (vs=None) or dict vs-value -> CriticalPoint
    order: object = None               # OrderDiagnosis or None
    thresholds: object = None          # Thresholds (planted and other start) or None
    power: object = None               # PowerLawFit of xc against ``vs``, or None
    collapse: object = None            # analysis.fss CollapseResult of the main control, or None
    critical_by_control: dict = field(default_factory=dict)   # control -> CriticalPoint (vs=None)
    collapse_by_control: dict = field(default_factory=dict)   # control -> CollapseResult (vs=None)
    figures: dict = field(default_factory=dict)   # name -> path
    notes: list = field(default_factory=list)

    def __str__(self) -> str:
        return self.text


def analyze(path, control: str = "batch_size", size: str = "N", observable: str = "success",
            out_dir=None, vs: str | None = None, order_parameter: str | None = "overlap",
            method: str = "logistic", level: float = 0.5, bootstrap: int = 300, seed: int = 0,
            where: dict | None = None, nu: float | None = None, collapse: bool = True,
            figures: bool = True, controls=()) -> Report:
    """Analyse results at ``path`` (a task file, a merged file, a directory of task files, or an
    ``analysis.Table``).

    where: {column: value} selection applied first (e.g. {"lr": 0.5}).
    control: a column or a ratio / product of two columns, e.g. "batch_size/d".
    controls: further controls (same forms) whose critical points are reported after the main
        one, e.g. ("batch_size/d",) to show m_c(N) with its growth law and (m/d)_c(N) with its
        limit side by side (``Report.critical_by_control``; not with ``vs``).
    vs: a parameter (e.g. "d"): critical points per value, then a power law xc(vs).
    order_parameter: per-replica stationary snapshot tested for two modes by ``transition_order``
        (None to skip); the order is assessed only when the table has ``time_at_teacher`` from
        planted and random starts (``init``).
    Raises ValueError if a parameter other than control, size (and vs) varies inside a
    (control, size) cell: mixing, e.g., two learning rates would give a meaningless m_c.
    """
    from .critical import critical_point
    from .order import transition_order

    table = path if isinstance(path, Table) else load(path)
    if where:
        table = table.where(**where)
        if len(table) == 0:
            raise ValueError(f"no rows left after where={where}")
    controls = [c for c in ([controls] if isinstance(controls, str) else list(controls or ()))]
    if controls and vs:
        raise ValueError("controls= (extra controls) cannot be combined with vs=")
    derived = []
    for c in [control] + controls:
        table, name = with_control(table, c)
        derived.append(name)
    control, controls = derived[0], [c for c in derived[1:] if c != derived[0]]
    for name in [control, size, observable] + ([vs] if vs else []):
        table._check(name)
    # two starts (init = "teacher" and "random"): the critical points are the other start's (where
    # the student has to find the teacher); both starts give the thresholds and the window
    both, starts = table, _starts(table)
    if starts:
        table = table.where(init=starts[1])
    keys = [vs] if vs else []
    # the columns a derived control is made of are part of the cell (m and d at fixed m/d)
    _check_confounders(table, keys + [size, control] + [p for c in [control] + controls
                                                         for p in components(c)])
    notes: list[str] = []
    if starts:
        notes.append(f"critical points from the init={starts[1]!r} rows; the init={starts[0]!r} (planted) rows "
                     f"enter the thresholds, the hysteresis window and the transition order")
    agg = aggregate(table, by=keys + [size, control], observable=observable)
    rep = Report(text="", table=table, aggregated=agg, notes=notes)
    kw = dict(control=control, size=size, observable=observable, level=level, method=method,
              bootstrap=bootstrap, seed=seed, nu=nu)

    def cp_of(t):
        n_sizes = len(t.unique(size))
        return critical_point(t, extrapolate=n_sizes >= 2, **kw)

    lines = [f"physsgd analysis of {path if not isinstance(path, Table) else 'a table'}",
             f"  {len(table)} replicas; {control} x {size}" + (f" x {vs}" if vs else "") +
             f"; observable {observable}" + (f"; selection {where}" if where else ""), ""]
    if vs is None:
        rep.critical = cp_of(table)
        rep.critical_by_control[control] = rep.critical
        lines.append(rep.critical.summary())
        for c in controls:        # e.g. m/d next to m: the same sizes, another scaling hypothesis
            cp = critical_point(table, extrapolate=len(table.unique(size)) >= 2, **dict(kw, control=c))
            rep.critical_by_control[c] = cp
            lines += ["", cp.summary()]
    else:
        rep.critical = {}
        xs, ys, dys = [], [], []
        for key, sub in table.groupby(vs):
            cp = cp_of(sub)
            rep.critical[key[vs]] = cp
            lines += [f"{vs} = {key[vs]}:", cp.summary(), ""]
            if np.isfinite(cp.xc_inf) and "xc_inf" not in cp.undetermined:
                val, err = cp.xc_inf, cp.errors["xc_inf"]
            else:      # no extrapolation possible: the largest size with a crossing stands in
                ok = np.flatnonzero(np.isfinite(cp.xc))
                if not len(ok):
                    continue
                val, err = cp.xc[ok[-1]], cp.xc_err[ok[-1]]
                why = ("grows with " + size if cp.limit == "grows" else
                       "limit not determined" if "xc_inf" in cp.undetermined else "no extrapolation")
                notes.append(f"{vs}={key[vs]}: {control}_c at {size}={cp.sizes[ok[-1]]:g} used ({why})")
            if isinstance(key[vs], (int, float)) and key[vs] > 0 and val > 0 and err > 0:
                xs.append(key[vs]); ys.append(val); dys.append(err)
        if len(xs) >= 2:
            from .powerlaw import power_law
            rep.power = power_law(xs, ys, dys, seed=seed)
            lines += [f"{control}_c against {vs}:", rep.power.summary()]
        else:
            notes.append(f"power law against {vs} needs >= 2 values with a critical point")
    lines.append("")

    if starts and vs is None:
        y = np.asarray(both[observable], float)
        if np.all(np.isfinite(y)) and np.all((y >= 0) & (y <= 1)):
            from .stationary import thresholds
            try:
                rep.thresholds = thresholds(both, control=control, size=size, observable=observable,
                                            starts=starts, level=level, method=method,
                                            bootstrap=bootstrap, seed=seed, nu=nu)
                lines += ["", rep.thresholds.summary()]
            except ValueError as exc:
                notes.append(f"thresholds from both starts not determined: {exc}")
        else:
            notes.append(f"thresholds from both starts need {observable!r} in [0, 1] for every row")
    if order_parameter and order_parameter in both and vs is None:
        if "time_at_teacher" in both and starts == ("teacher", "random"):
            try:
                rep.order = transition_order(both, control=control, size=size, distribution=order_parameter,
                                             seed=seed)
                lines.append(rep.order.summary())
            except ValueError as exc:
                notes.append(f"transition order not assessed: {exc}")
        else:
            notes.append("transition order not assessed: it needs stationary observables (time_at_teacher) "
                         "from planted and random starts (init = 'teacher' and 'random')")
    if collapse and vs is None:
        # the main control, then every extra one (m/d next to m: the scaled control may collapse
        # where the raw one cannot, because its critical value does not run out of the data)
        for c, cp in rep.critical_by_control.items():
            agg_c = agg if c == control else aggregate(table, by=[size, c], observable=observable)
            col = _collapse(agg_c, cp, c, size, observable, seed, notes)
            if col is None:
                continue
            rep.collapse_by_control[c] = col
            lab = _label(c)
            lines += ["", f"data collapse of {observable} in " + (f"x = ln {lab}" if cp.log_control else lab)
                      + f", L = {size}:", col.summary()]
            if cp.log_control and "xc" in col.free and "xc" not in col.undetermined:
                e = col.errors["xc"]
                lines.append(f"  collapse {lab}_c = exp(xc) = {np.exp(col.xc):.5g} "
                             f"± {np.exp(col.xc) * e:.2g} (total)")
        rep.collapse = rep.collapse_by_control.get(control)
    lines += [""] + [f"note: {n}" for n in notes]
    rep.text = "\n".join(lines).rstrip() + "\n"
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "report.txt"), "w") as fh:
            fh.write(rep.text)
        agg.to_csv(os.path.join(out_dir, "aggregated.csv"))
        if figures:
            rep.figures = _figures(rep, table, control, size, observable, vs, out_dir)
    return rep


def _starts(table: Table):
    """(planted, other) labels of the ``init`` column when it has two starts, else None."""
    if "init" not in table:
        return None
    values = sorted(np.unique(np.asarray(table["init"]).astype(str)).tolist())
    if len(values) < 2:
        return None
    if "teacher" not in values or len(values) > 2:
        raise ValueError(f"column 'init' has the starts {values}: analyze compares the planted start "
                         f"'teacher' with one other; keep two with Table.where(mask=...) or one with "
                         f"where={{'init': 'random'}}")
    return ("teacher", next(v for v in values if v != "teacher"))


def _check_confounders(table: Table, cell_keys):
    params = table.meta.get("params")
    if not params:
        return                      # a user's table: we do not know which columns are parameters
    aliases = table.meta.get("aliases", {})
    cell_cols = set(cell_keys) | {aliases.get(k) for k in cell_keys}
    check = [p for p in params if p not in cell_cols and p in table
             and p.rsplit(".", 1)[-1] not in _NOT_CONFOUNDERS]
    bad = {}
    for _, sub in table.groupby(cell_keys):      # one pass over the cells
        for p in check:
            if p not in bad and len(np.unique(sub[p].astype(str))) > 1:
                bad[p] = np.unique(table[p].astype(str)).tolist()
    dotted = {k: v for k, v in bad.items() if k not in aliases or aliases[k] not in bad}
    if dotted:
        desc = "; ".join(f"{k} in {v[:6]}" for k, v in dotted.items())
        raise ValueError(f"parameters vary inside ({', '.join(cell_keys)}) cells: {desc}. Select one "
                         f"value with where={{...}} (e.g. --where) or analyse it as vs=...")


def _collapse(agg, cp, control, size, observable, seed, notes):
    from .fss import collapse
    x = agg[control].astype(float)
    x = np.log(x) if cp.log_control else x
    y = agg[f"{observable}_mean"]
    dy = agg[f"{observable}_sem"]
    if f"{observable}_k" in agg:   # binomial errors that stay > 0 at p = 0 or 1
        dy = binomial_error(agg[f"{observable}_k"], agg[f"{observable}_n"])
    ok = np.isfinite(y) & np.isfinite(dy) & (dy > 0)
    finite = np.isfinite(cp.xc)
    guess = (float(np.log(np.nanmedian(cp.xc)) if cp.log_control else np.nanmedian(cp.xc))
             if finite.any() else None)
    try:
        return collapse(agg[size][ok].astype(float), x[ok], y[ok], dy[ok], xc=guess, nu=1.0,
                        fixed={"zeta": 0.0}, bootstrap=100, seed=seed)
    except ValueError as exc:      # e.g. no overlap between sizes: the report goes on without it
        notes.append(f"collapse not done: {exc}")
        return None


def _file_part(control: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_." else "_" for ch in control)


def _figures(rep, table, control, size, observable, vs, out_dir):
    from . import plots
    out = {}

    def save(name, fig):
        out[name] = plots.savefig(fig, os.path.join(out_dir, f"{name}.png"))

    cps = rep.critical if isinstance(rep.critical, dict) else {None: rep.critical}
    for key, cp in cps.items():
        suffix = "" if key is None else f"_{vs}{key}"
        sub = table if key is None else table.where(**{vs: key})
        fig, axes = plots.new_axes(ncols=2)
        plots.observable_vs_control(sub, control, size, observable, ax=axes[0], fit=cp)
        if np.isfinite(cp.xc_inf) or np.isfinite(cp.xc).sum() >= 1:
            plots.critical_point_plot(cp, ax=axes[1])
        save(f"critical_point{suffix}", fig)
    for c, cp in list(rep.critical_by_control.items())[1:]:
        fig, axes = plots.new_axes(ncols=2)
        plots.observable_vs_control(table, c, size, observable, ax=axes[0], fit=cp)
        plots.critical_point_plot(cp, ax=axes[1])
        save("critical_point_" + _file_part(c), fig)
    if rep.thresholds is not None:
        fig, axes = plots.new_axes(ncols=2)
        plots.thresholds_plot(rep.thresholds, ax=axes[0], kind="curves")
        plots.thresholds_plot(rep.thresholds, ax=axes[1], kind="window")
        save("thresholds", fig)
    if rep.order is not None:
        axes = plots.order_plot(rep.order)
        save("transition_order", axes.flat[0].figure)
    if rep.power is not None:
        fig, ax = plots.new_axes()
        plots.power_law_plot(rep.power, ax=ax, xlabel=plots.label(vs),
                             ylabel=f"${plots.symbol(control)}_c$")
        save(f"{control}_c_vs_{vs}", fig)
    for c, col in rep.collapse_by_control.items():
        cp = rep.critical_by_control[c]
        fig, ax = plots.new_axes()
        plots.collapse_plot(col, ax=ax, control=c, size=size, observable=observable,
                            log_control=cp.log_control)
        save("collapse" + ("" if c == control else "_" + _file_part(c)), fig)
    fig, ax = plots.new_axes()
    plots.phase_diagram(table, control, size, observable, ax=ax)
    save("phase_diagram", fig)
    return out
