"""analysis.critical: critical points on synthetic success data with known m_c(N), the limit or
growth of m_c(N), the error budget and bad input."""
import numpy as np
import pytest

from analysis.critical import LimitForm, _choose_limit, critical_point
from analysis.table import Table
from _critical_data import A, MC_INF, NU, SIZES, success_data, true_mc


def test_critical_point_one_seed():
    cp = critical_point(success_data(1), bootstrap=150)
    assert cp.log_control and cp.method == "logistic" and not cp.nu_fixed
    assert list(cp.sizes) == list(SIZES)
    z = (cp.xc - true_mc(SIZES)) / cp.xc_err
    assert np.all(np.abs(z) < 3), z
    assert abs(cp.xc_inf - MC_INF) < 2 * cp.errors["xc_inf"]
    assert set(cp.errors) == {"xc_inf", "nu"} and cp.errors["xc_inf"] >= cp.stat_errors["xc_inf"]
    labels = [v.label for v in cp.variants]
    assert "fit form probit" in labels and "fit form interpolate" in labels
    assert any(l.startswith("drop 1 smallest") for l in labels) and "1/nu fixed 1" in labels
    assert np.all(np.diff(cp.width) < 0.05)          # the transition sharpens with N
    assert cp.drift is not None and cp.growth is not None
    assert cp.limit == "converges" and cp.kappa < 0          # m_c(N) decreases: nothing grows
    text = cp.summary()
    assert "batch_size_c(inf)" in text and "stat" in text and "sys" in text
    # the fitted curve passes through level at xc
    np.testing.assert_allclose(cp.curve(2, [cp.xc[2]]), 0.5, atol=1e-6)


def grow_mc(N):
    return 0.8 * np.asarray(N, float) ** 0.6


def below_mc(N):
    return 12.0 - 150.0 / np.asarray(N, float)


def test_growing_mc_reports_kappa_and_no_finite_limit():
    """m_c(N) = 0.8 N^0.6: the convergent extrapolation must give way to the growth law."""
    cp = critical_point(success_data(7, mc=grow_mc, m_max=100, n_m=19), bootstrap=150, seed=1)
    assert cp.limit == "grows", cp.summary()
    assert cp.xc_inf == np.inf and np.isnan(cp.nu) and cp.xc_inf_samples is None
    assert set(cp.errors) == {"kappa", "amplitude"}
    for p in cp.errors:                                # total = stat (+) sys
        assert np.isclose(cp.errors[p], np.hypot(cp.stat_errors[p], cp.sys_errors[p]))
    assert abs(cp.kappa - 0.6) < 2 * cp.errors["kappa"] and cp.stat_errors["kappa"] > 0
    forms = {f.name: f for f in cp.forms}
    assert set(forms) == {"converges", "power", "linear"}
    assert forms["converges"].aic - forms["power"].aic > 4 and forms["power"].pvalue > 0.01
    labels = [v.label for v in cp.variants]
    assert "fit form probit" in labels and "drop 1 smallest N" in labels
    assert np.isfinite(cp.convergent["xc_inf"])        # the rejected extrapolation is kept
    text = cp.summary()
    assert "batch_size_c grows as N^kappa, kappa = " in text and "no finite batch_size_c(inf)" in text
    assert f"{cp.kappa:.4g} ± {cp.stat_errors['kappa']:.2g} (stat) ± {cp.sys_errors['kappa']:.2g} (sys)" in text
    assert "-> grows" in text and "batch_size_c(inf) = " not in text.replace("rejected: batch_size_c(inf)", "")


def test_mc_converging_from_below_is_not_called_growth():
    """m_c(N) = 12 - 150/N rises with N but saturates: a finite limit, extrapolated."""
    cp = critical_point(success_data(3, mc=below_mc), bootstrap=150, seed=2)
    assert cp.limit == "converges", cp.summary()
    assert np.isfinite(cp.xc_inf) and abs(cp.xc_inf - 12.0) < 2 * cp.errors["xc_inf"]
    text = cp.summary()
    assert (f"batch_size_c(inf) = {cp.xc_inf:.5g} ± {cp.stat_errors['xc_inf']:.2g} (stat) "
            f"± {cp.sys_errors['xc_inf']:.2g} (sys) = ± {cp.errors['xc_inf']:.2g} (total)") in text
    assert "grows as" not in text


def _lf(name, chi2, n_params, n=5, at_edge=False, **values):
    return LimitForm(name, "", values, chi2, n - n_params, n_params, np.nan, chi2 + 2 * n_params,
                     chi2 + n_params * np.log(n), at_edge)


@pytest.mark.parametrize("conv_chi2, edge, power_chi2, kappa, want", [
    (40.0, False, 2.0, 1.0, "grows"),            # AIC 46 vs 6: growth decisively better
    (1.0, False, 2.0, 1.0, "undetermined"),      # AIC 7 vs 6: both supported
    (1.0, False, 12.0, 1.0, "converges"),        # AIC 7 vs 16: convergence decisively better
    (1.0, True, 12.0, 1.0, "undetermined"),      # ... but 1/nu at its lower edge is a growth in disguise
    (40.0, False, 2.0, 0.05, "converges"),       # kappa = 0.05 +- 0.05: nothing grows
    (40.0, False, 2.0, -0.5, "converges"),       # a decreasing power law converges (to 0)
])
def test_choose_limit_rules(conv_chi2, edge, power_chi2, kappa, want):
    forms = {"converges": _lf("converges", conv_chi2, 3, at_edge=edge),
             "power": _lf("power", power_chi2, 2, kappa=kappa),
             "linear": _lf("linear", 30.0, 2, s=1.0)}
    limit, why = _choose_limit(forms, kappa, 0.05)
    assert limit == want, why


def test_methods_agree_and_trials_input():
    t = success_data(2, sizes=(64, 256))
    cps = {m: critical_point(t, method=m, bootstrap=100) for m in ("logistic", "probit", "interpolate")}
    for m, cp in cps.items():
        assert np.all(np.abs(cp.xc - true_mc((64, 256))) < 3 * cp.xc_err + 0.3), m
        assert cp.nu_fixed and any("assumed" in n for n in cp.notes)
        assert any(v.label == "1/nu = 0.5" for v in cp.variants)
    # aggregated (fraction, trials) rows give the same central values as per-replica rows
    from analysis.table import aggregate
    a = aggregate(t, by=["N", "batch_size"], observable="success")
    cp2 = critical_point(a, observable="success_mean", trials="n", bootstrap=100)
    np.testing.assert_allclose(cp2.xc, cps["logistic"].xc, rtol=1e-6)


def test_continuous_observable_and_dict_input():
    rng = np.random.default_rng(0)
    x = np.repeat(np.linspace(0.5, 2.0, 12), 30)     # spans < 10x: fitted in lr, not log lr
    rows = {"N": [], "lr": [], "q": []}
    for N, xc in ((100, 1.0), (400, 1.2)):
        q = 0.1 + 0.8 / (1 + np.exp(-(x - xc) / 0.1)) + rng.normal(0, 0.05, len(x))
        rows["N"] += [N] * len(x)
        rows["lr"] += list(x)
        rows["q"] += list(q)
    cp = critical_point(rows, control="lr", observable="q", level=0.5, bootstrap=60)
    assert not cp.log_control
    assert np.all(np.abs(cp.xc - [1.0, 1.2]) < 4 * cp.xc_err + 0.01)


def test_no_crossing_is_reported_not_invented():
    t = success_data(3, sizes=(64, 128))
    low = t.where(t["batch_size"] <= 4)           # success stays below 1/2 everywhere
    cp = critical_point(low, bootstrap=50, extrapolate=True)
    assert np.all(np.isnan(cp.xc)) and np.isnan(cp.xc_inf)
    assert any("does not cross" in n for n in cp.notes)


def test_bad_input():
    t = success_data(0, sizes=(64,))
    with pytest.raises(ValueError, match="single N"):
        critical_point(t)
    cp = critical_point(t, extrapolate=False, bootstrap=50)    # one size is fine without extrapolation
    assert np.isfinite(cp.xc[0]) and np.isnan(cp.xc_inf)
    with pytest.raises(ValueError, match="unknown column 'm'"):
        critical_point(t, control="m")
    with pytest.raises(ValueError, match="method="):
        critical_point(t, method="spline")
    with pytest.raises(ValueError, match="equal lengths"):
        critical_point({"N": [1, 2], "batch_size": [1], "success": [True, False]})
    bad = Table.from_arrays(N=[10, 10, 20, 20], batch_size=[1, 2, 1, 2], q=[0.1, np.nan, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        critical_point(bad, observable="q")
    with pytest.raises(ValueError, match="single batch_size"):
        critical_point(Table.from_arrays(N=[10, 10], batch_size=[2, 2], success=[True, False]))
    with pytest.raises(ValueError, match="level"):
        critical_point(success_data(0, sizes=(32, 64)), level=1.5)


@pytest.mark.slow
def test_critical_point_coverage_over_seeds():
    """20 seeds: m_c(inf) within 2 total sigma in >= 90%; per-size values within 2 total sigma in
    >= 85% of (seed, size) pairs; the reported statistical errors match the scatter over seeds
    within a factor 1.5."""
    res = [critical_point(success_data(1000 + s), bootstrap=300, seed=s) for s in range(20)]
    xc = np.array([r.xc for r in res])
    stat = np.array([r.xc_stat for r in res])
    err = np.array([r.xc_err for r in res])
    inf = np.array([r.xc_inf for r in res])
    inf_err = np.array([r.errors["xc_inf"] for r in res])
    inf_stat = np.array([r.stat_errors["xc_inf"] for r in res])
    truth = true_mc(SIZES)
    assert np.mean(np.abs(inf - MC_INF) < 2 * inf_err) >= 0.9
    assert np.mean(np.abs(xc - truth) < 2 * err) >= 0.85
    pull = (xc - truth) / stat
    assert 1 / 1.5 < np.std(pull) < 1.5
    assert 1 / 1.5 < np.std(inf, ddof=1) / np.mean(inf_stat) < 1.5
    # no blanket inflation: per-size systematics stay below the statistical errors typically
    assert np.median(np.array([r.xc_sys for r in res]) / stat) < 1.0


@pytest.mark.slow
def test_growth_exponent_coverage_over_seeds():
    """m_c = 0.8 N^0.6 over 20 seeds: growth found every time; kappa within 2 total sigma in
    >= 90%; the bootstrap error of kappa matches its scatter over seeds within a factor 1.5."""
    res = [critical_point(success_data(2000 + s, mc=grow_mc, m_max=100, n_m=19), bootstrap=300, seed=s)
           for s in range(20)]
    assert all(r.limit == "grows" for r in res)
    k = np.array([r.kappa for r in res])
    err = np.array([r.errors["kappa"] for r in res])
    stat = np.array([r.stat_errors["kappa"] for r in res])
    print("kappa coverage", np.mean(np.abs(k - 0.6) < 2 * err), "spread/stat", np.std(k, ddof=1) / stat.mean(),
          "median sys/stat", np.median(np.array([r.sys_errors["kappa"] for r in res]) / stat))
    assert np.mean(np.abs(k - 0.6) < 2 * err) >= 0.9
    assert 1 / 1.5 < np.std(k, ddof=1) / np.mean(stat) < 1.5


def test_width_is_nan_for_a_size_without_a_transition():
    """A size whose success never crosses the level has no transition width (was ~1e40)."""
    m = np.repeat([1, 2, 4, 8, 16, 32], 20).astype(float)
    rows = {"batch_size": [], "N": [], "success": []}
    rng = np.random.default_rng(0)
    for N, mc in ((10, 4.0), (20, 8.0), (40, None)):
        p = np.zeros_like(m) if mc is None else 1 / (1 + np.exp(-(np.log(m) - np.log(mc)) / 0.3))
        rows["batch_size"] += list(m)
        rows["N"] += [N] * len(m)
        rows["success"] += list(rng.random(len(m)) < p)
    cp = critical_point({k: np.asarray(v) for k, v in rows.items()}, bootstrap=20, extrapolate=False)
    assert np.isnan(cp.width[-1]) and np.all(np.isfinite(cp.width[:2]))


def _log_growth_data(seed=0):
    """(m/d)_c(N) rising like log N: the convergent form wants 1/nu -> 0 (the quickstart case
    that printed "(m/d)_c(inf) = 11.2 ± 6" beside per-size values 4.3-5.0)."""
    return success_data(seed, sizes=(9, 15, 21, 27, 33), mc=lambda N: 4.0 + 0.6 * np.log(np.asarray(N, float)),
                        m_max=20, n_m=17, reps=80)


def test_limit_at_the_lower_edge_of_1_over_nu_is_not_determined():
    cp = critical_point(_log_growth_data(), bootstrap=100)
    ext = cp.extrapolation
    if not ext.lower_edge:
        pytest.skip("this realisation does not run 1/nu to its edge")
    assert {"xc_inf", "nu"} <= set(cp.undetermined)
    assert np.isnan(cp.errors["xc_inf"]) and np.isnan(cp.errors["nu"])
    text = cp.summary()
    assert "batch_size_c(inf): not determined" in text and "nu fitted: not determined" in text


def test_critical_point_is_built_once():
    """The result is frozen; what it reports is derived from its parts."""
    import dataclasses
    cp = critical_point(success_data(1, sizes=(64, 128, 256, 512)), bootstrap=60)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cp.xc_inf = 3.0
    assert cp.values == cp.extrapolation.values and cp.errors == cp.extrapolation.errors
    assert cp.kappa == cp.growth.exponent and cp.growth_law is cp.growth
    for v in cp.variants:              # every variant pairs with the central bootstrap
        for p, s in v.stat_errors.items():
            if p not in cp.undetermined:
                assert s >= cp.stat_errors[p] - 1e-12
