"""Derived controls ("batch_size/d"): the parser, critical points in the scaled control, and the
report that shows m_c(N) with its growth law next to (m/d)_c(N) with its limit."""
import numpy as np
import pytest

from analysis.controls import components, parse_control, with_control
from analysis.report import analyze
from analysis.table import Table
from analysis.critical import critical_point

SIZES = (24, 48, 96, 192)


def scaled_data(seed, reps=48, c_inf=2.0, a=6.0):
    """d = N/3 and m_c = d (c_inf + a/N): m_c grows like N, (m/d)_c converges to c_inf."""
    rng = np.random.default_rng(seed)
    cols = {"N": [], "d": [], "batch_size": [], "success": []}
    for N in SIZES:
        d = N // 3
        mc = d * (c_inf + a / N)
        w = 2.0 * N ** -0.5
        for m in np.unique(np.round(np.geomspace(4, 1000, 24)).astype(int)):
            p = 1 / (1 + np.exp(-(np.log(m) - np.log(mc)) / w))
            cols["N"] += [N] * reps
            cols["d"] += [d] * reps
            cols["batch_size"] += [m] * reps
            cols["success"] += list(rng.random(reps) < p)
    return Table.from_arrays(**cols)


@pytest.mark.parametrize("expr, want", [
    ("batch_size/d", ("batch_size", "/", "d")),
    (" batch_size * student.d ", ("batch_size", "*", "student.d")),
    ("lr", None),
])
def test_parse_control(expr, want):
    dc = parse_control(expr)
    assert (dc if dc is None else (dc.left, dc.op, dc.right)) == want


@pytest.mark.parametrize("expr", ["a/b/c", "2*m", "m/(d)", "__import__('os').getcwd()", "m/", "m + d"])
def test_parse_control_refuses_anything_else(expr):
    with pytest.raises(ValueError, match="ratio / product of two"):
        parse_control(expr)


def test_with_control_adds_the_column_and_checks_names():
    t = Table.from_arrays(m=[2.0, 4.0, 6.0], d=[1.0, 2.0, 4.0])
    t2, name = with_control(t, "m / d")
    assert name == "m/d" and np.allclose(t2["m/d"], [2.0, 2.0, 1.5])
    assert np.allclose(with_control(t, "m*d")[0]["m*d"], [2.0, 8.0, 24.0])
    assert with_control(t, "m")[0] is t
    with pytest.raises(ValueError, match="unknown column 'q'"):
        with_control(t, "m/q")
    with pytest.raises(ValueError, match="is 0"):
        with_control(Table.from_arrays(m=[1.0], d=[0.0]), "m/d")
    assert components("m/d") == ("m", "d") and components("m") == ("m",)


def test_scaled_control_converges_where_the_raw_one_grows():
    t = scaled_data(0)
    raw = critical_point(t, control="batch_size", bootstrap=100)
    scaled = critical_point(t, control="batch_size/d", bootstrap=100)
    assert raw.limit == "grows" and abs(raw.kappa - 1.0) < 0.15, raw.summary()
    assert scaled.control == "batch_size/d" and scaled.limit != "grows", scaled.summary()
    d = np.array(SIZES) // 3
    np.testing.assert_allclose(scaled.xc, raw.xc / d, rtol=1e-6)    # same fits, rescaled axis
    assert np.isfinite(scaled.xc_inf) and abs(scaled.xc_inf - 2.0) < 2 * scaled.errors["xc_inf"]
    assert "(batch_size/d)_c(inf) = " in scaled.summary()


def test_report_with_extra_control(tmp_path):
    t = scaled_data(1)
    rep = analyze(t, control="batch_size", controls=("batch_size/d",), collapse=False,
                  order_parameter=None, bootstrap=60, out_dir=tmp_path)
    assert list(rep.critical_by_control) == ["batch_size", "batch_size/d"]
    m, md = rep.critical_by_control["batch_size"], rep.critical_by_control["batch_size/d"]
    assert m is rep.critical
    for cp in (m, md):
        for i, N in enumerate(cp.sizes):   # the per-size table: N, value, stat, sys, total
            row = f"{N:>8g} {cp.xc[i]:>12.5g} {cp.xc_stat[i]:>9.3g} {cp.xc_sys[i]:>9.3g} {cp.xc_err[i]:>9.3g}"
            assert row in rep.text
    assert "batch_size_c grows as N^kappa" in rep.text
    assert f"(batch_size/d)_c(inf) = {md.xc_inf:.5g} ± {md.stat_errors['xc_inf']:.2g} (stat)" in rep.text
    assert (tmp_path / "critical_point_batch_size_d.png").exists()
    with pytest.raises(ValueError, match="vs="):
        analyze(t, controls=("batch_size/d",), vs="d", collapse=False, figures=False)
