"""analysis.plots and analysis.report: figures are written (Agg-safe, no pyplot state) and the
one-call report works on hand-made HDF5 result directories."""
import json
import os

import h5py
import numpy as np
import pytest

from analysis import plots
from analysis.powerlaw import power_law
from analysis.report import analyze
from analysis.table import Table
from analysis.critical import critical_point
from analysis.order import transition_order

from _critical_data import success_data
from curie_weiss import table as curie_weiss_table


def _png_ok(path):
    with open(path, "rb") as fh:
        return fh.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 2000


def test_all_plots_write_files(tmp_path):
    t = success_data(0, sizes=(64, 256))
    cp = critical_point(t, bootstrap=50)
    fig, axes = plots.new_axes(ncols=3, nrows=2)
    plots.observable_vs_control(t, ax=axes[0, 0], fit=cp)
    plots.critical_point_plot(cp, ax=axes[0, 1])
    cp.plot(axes[0, 2], kind="curves")
    pl = power_law([8, 16, 32, 64], [1, 1.7, 3.1, 5.5], [0.1, 0.1, 0.2, 0.3])
    pl.plot(axes[1, 0])
    plots.phase_diagram(t, "batch_size", "N", "success", ax=axes[1, 1])
    cw = curie_weiss_table([16, 32], [-0.05, 0.0, 0.05], T=0.7, replicas=8, steps=200, seed=1)
    d = transition_order(cw, control="h", starts=("teacher", "minus"), bootstrap=20)
    d.plot(axes[1, 2], kind="bimodality")
    path = plots.savefig(fig, tmp_path / "sub" / "all.png")
    assert _png_ok(path)
    axes = plots.order_plot(d)                           # no Axes given: a fresh figure
    assert _png_ok(plots.savefig(axes.flat[0], tmp_path / "order.png"))
    with pytest.raises(ValueError, match="kind="):
        cp.plot(kind="pie")


def test_collapse_and_crossing_helpers_use_duck_typing(tmp_path):
    class Scaled:
        size = np.repeat([10, 20], 5)
        x = np.tile(np.linspace(-1, 1, 5), 2)
        y = np.tanh(x)
        dy = np.full(10, 0.05)

    class Fit:
        def scaled(self):
            return Scaled()

    class Cross:
        sizes = np.array([10, 20, 40])
        xc = np.array([1.0, 1.1, 1.15])
        xc_err = np.array([0.05, 0.04, 0.03])

    fig, axes = plots.new_axes(ncols=2)
    plots.collapse_plot(Fit(), ax=axes[0])
    plots.crossing_plot(Cross(), ax=axes[1])
    assert _png_ok(plots.savefig(fig, tmp_path / "c.png"))


def _write_sweep(folder, seed=0, sizes=(32, 128), ms=(2, 4, 6, 8, 12, 16, 24, 32), reps=40, lrs=(0.5,)):
    """Task files of a synthetic sweep: success ~ logistic in log m, overlap 1 or ~0.1."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    i = 0
    for lr in lrs:
        for N in sizes:
            for m in ms:
                mc = 8 + 40 / N
                p = 1 / (1 + np.exp(-(np.log(m) - np.log(mc)) / (2 * N ** -0.5)))
                s = rng.random(reps) < p
                rho = np.where(s, 1.0, np.abs(rng.normal(0.1, 0.05, reps)))
                params = {"teacher": {"kind": "Committee", "N": N, "K": 1},
                          "student": {"kind": "Committee", "N": N, "K": 1},
                          "algorithm": {"kind": "SGD", "lr": lr, "batch_size": m},
                          "data": {"kind": "Online"}, "run": {"seed": i, "replicas": reps}}
                with h5py.File(os.path.join(folder, f"t{i:04d}.h5"), "w") as g:
                    g.attrs["params_json"] = json.dumps(params, sort_keys=True)
                    g.attrs["status"] = "done"
                    g["time"] = np.array([0.0, 1.0])
                    g["steps"] = np.array([0, 10])
                    g["eps_g"] = np.zeros((reps, 2))
                    g["train_error"] = np.zeros((reps, 2))
                    R = np.zeros((reps, 2, 1, 1))
                    R[:, -1, 0, 0] = rho
                    g["R"] = R
                    g["Q"] = np.ones((reps, 2, 1, 1))
                    g["T"] = np.ones((reps, 1, 1))
                    g["weight_change"] = np.zeros((reps, 2))
                    g["weight_norm"] = np.ones((reps, 2))
                    g["diverged"] = np.zeros(reps, bool)
                    g["success"] = s
                    g["stopped_at"] = np.full(reps, 10)
                i += 1


def test_analyze_directory_writes_report_and_figures(tmp_path):
    _write_sweep(tmp_path / "res")
    rep = analyze(tmp_path / "res", out_dir=tmp_path / "out", bootstrap=60, collapse=False)
    assert "batch_size_c(inf)" in rep.text
    # final overlaps of one start only: the order is not assessed, and the report says why
    assert rep.order is None and "transition order not assessed: it needs stationary" in rep.text
    assert os.path.exists(tmp_path / "out" / "report.txt")
    assert Table.from_csv(tmp_path / "out" / "aggregated.csv")["n"][0] == 40
    for name in ("critical_point", "phase_diagram"):
        assert _png_ok(rep.figures[name])
    assert "transition_order" not in rep.figures
    assert str(rep) == rep.text


def test_analyze_refuses_confounded_cells_and_selects_with_where(tmp_path):
    _write_sweep(tmp_path / "res", lrs=(0.5, 1.0))
    with pytest.raises(ValueError, match="algorithm.lr"):
        analyze(tmp_path / "res", bootstrap=30, collapse=False)
    rep = analyze(tmp_path / "res", where={"lr": 1.0}, bootstrap=30, collapse=False, order_parameter=None)
    assert len(rep.table) == 2 * 8 * 40


def test_analyze_vs_parameter_power_law(tmp_path):
    """m_c proportional to d: the power law of m_c(inf) against d has exponent ~ 1."""
    rng = np.random.default_rng(5)
    cols = {"N": [], "batch_size": [], "success": [], "d": []}
    for d in (2, 4, 8):
        for N in (64, 256):
            mc = 2.0 * d * (1 + 4 / N)
            for m in np.unique(np.round(np.geomspace(d / 2, 8 * d, 10))):
                p = 1 / (1 + np.exp(-(np.log(m) - np.log(mc)) / (2 * N ** -0.5)))
                cols["N"] += [N] * 60
                cols["batch_size"] += [m] * 60
                cols["d"] += [d] * 60
                cols["success"] += list(rng.random(60) < p)
    rep = analyze(Table.from_arrays(**cols), vs="d", bootstrap=60, collapse=False, out_dir=tmp_path)
    assert set(rep.critical) == {2, 4, 8}
    assert abs(rep.power.exponent - 1.0) < 3 * rep.power.errors["exponent"] + 0.05
    assert _png_ok(rep.figures["batch_size_c_vs_d"])


@pytest.mark.slow
def test_analyze_with_collapse(tmp_path):
    _write_sweep(tmp_path / "res", sizes=(32, 64, 128))
    rep = analyze(tmp_path / "res", out_dir=tmp_path / "out", bootstrap=60)
    assert rep.collapse is not None or any("collapse" in n for n in rep.notes)


def test_physics_labels():
    assert plots.label("batch_size") == "mini-batch size $m$"
    assert plots.label("success") == r"$P(\mathrm{success})$"
    assert plots.label("overlap") == "overlap $q$"
    assert plots.label("eps_g") == r"generalisation error $\epsilon_g$"
    assert plots.symbol("batch_size/d") == "m/d" and plots.sub_c("batch_size/d") == "(m/d)_c"
    assert plots.label("my_column") == "my column"


def _texts(ax):
    return " ".join(t.get_text() for t in ax.texts) + " " + ax.get_title() + " " + ax.get_xlabel()


def test_failed_and_undetermined_fits_are_marked_on_the_figure(tmp_path):
    from analysis.fss import collapse
    from test_fss_honesty import _drifting
    res = collapse(*_drifting(), fixed={"zeta": 0}, bootstrap=10)
    assert res.failed
    ax = res.plot()
    assert "FAILED" in ax.get_title() and "not determined" in _texts(ax)
    assert any(getattr(p, "get_hatch", lambda: None)() for p in ax.collections + ax.patches)
    assert _png_ok(plots.savefig(ax, tmp_path / "failed.png"))
    # a determined collapse: parameters on the figure, the nu used on the scaled axis
    from _fss_fixtures import synthetic
    good = collapse(*synthetic(7), bootstrap=10, seed=1)
    ax = plots.collapse_plot(good, control="p", size="L")
    assert r"\nu = " in ax.get_xlabel() and "not determined" not in _texts(ax)
    assert "x_c" not in ax.get_title() and ax.get_legend() is not None


def test_critical_point_plot_states_the_exponent(tmp_path):
    cp = critical_point(success_data(0, sizes=(64, 256)), bootstrap=50)
    ax = plots.critical_point_plot(cp)
    assert r"$\nu = 1$ assumed" in ax.get_xlabel() and ax.get_title()
    assert ax.get_legend() is not None


def test_report_collapses_every_control_and_marks_what_is_not_determined(tmp_path):
    """m_c drifting with N: the collapse in ln m fails (reported as FAILED, no number with an
    error), the one in ln(m/d) is attempted too and drawn in its own figure."""
    rng = np.random.default_rng(2)
    cols = {"N": [], "d": [], "batch_size": [], "success": []}
    for N in (9, 15, 21, 27):
        d = N // 3
        for m in np.unique(np.round(np.geomspace(2, 80, 14))):
            p = 1 / (1 + np.exp(-(np.log(m / d) - np.log(4.5)) * 2.5 * N ** 0.25))
            cols["N"] += [N] * 40
            cols["d"] += [d] * 40
            cols["batch_size"] += [m] * 40
            cols["success"] += list(rng.random(40) < p)
    rep = analyze(Table.from_arrays(**cols), controls=("batch_size/d",), bootstrap=60, out_dir=tmp_path,
                  order_parameter=None)
    assert set(rep.collapse_by_control) == {"batch_size", "batch_size/d"}
    assert rep.collapse is rep.collapse_by_control["batch_size"]
    assert _png_ok(rep.figures["collapse"]) and _png_ok(rep.figures["collapse_batch_size_d"])
    text = rep.text
    assert "data collapse of success in x = ln (batch_size/d)" in text
    raw = rep.collapse_by_control["batch_size"]
    if raw.failed:
        block = text[text.index("data collapse of success in x = ln batch_size,"):]
        block = block[:block.index("data collapse of success in x = ln (batch_size/d)")]
        assert "FAILED" in block and "exp(xc)" not in block


def test_analyze_two_starts_reports_thresholds_and_window(tmp_path):
    """A table with planted and other starts: critical points from the other start, thresholds
    and the hysteresis window from both (Curie-Weiss in the field: a window that opens with N)."""
    import curie_weiss as cw
    rep = analyze(cw.field_driven(), control="h", size="N", observable="time_at_teacher",
                  bootstrap=40, collapse=False, out_dir=tmp_path)
    assert set(np.unique(rep.table["init"]).astype(str)) == {"minus"}
    assert rep.thresholds is not None and rep.thresholds.starts == ("teacher", "minus")
    assert "thresholds where <time_at_teacher> = 0.5" in rep.text and "hysteresis window" in rep.text
    assert "critical points from the init='minus' rows" in rep.text
    assert _png_ok(rep.figures["thresholds"])


def test_analyze_two_starts_growing_thresholds(tmp_path):
    """Thresholds that grow like N (m_1/2 = 2 N, no window): the summary states the growth law
    of both starts, and the window is not called open."""
    rng = np.random.default_rng(3)
    cols = {k: [] for k in ("N", "batch_size", "init", "time_at_teacher", "replica")}
    for N in (16, 32, 64, 128):
        for m in np.unique(np.round(2 * N * np.exp(np.linspace(-1, 1, 9)))).astype(int):
            p = 1 / (1 + np.exp(-(np.log(m) - np.log(2 * N)) / 0.15))
            for start in ("teacher", "random"):
                v = np.clip(rng.binomial(40, p, 24) / 40, 0, 1)
                cols["N"] += [N] * 24; cols["batch_size"] += [m] * 24; cols["init"] += [start] * 24
                cols["time_at_teacher"] += v.tolist(); cols["replica"] += list(range(24))
    rep = analyze(Table.from_arrays(**cols), observable="time_at_teacher", bootstrap=60,
                  collapse=False, order_parameter=None)
    assert rep.thresholds.planted.limit == "grows", rep.thresholds.summary()
    assert "teacher: batch_size_c grows as N^kappa, kappa = " in rep.text
    assert rep.thresholds.trend != "grows", rep.thresholds.trend_reason


def test_analyze_refuses_three_starts():
    t = Table.from_arrays(N=[8] * 3, batch_size=[4] * 3, init=["teacher", "random", "minus"],
                          time_at_teacher=[1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="column 'init' has the starts"):
        analyze(t, observable="time_at_teacher", collapse=False, figures=False)
