"""analysis.powerlaw: exponent recovery, honest errors, no blanket systematic inflation, bad input."""
import numpy as np
import pytest

from analysis.powerlaw import power_law

X = np.array([8, 16, 32, 64, 128, 256.0])


def _noisy(seed, A=2.0, b=0.75, rel=0.05, x=X):
    rng = np.random.default_rng(seed)
    y0 = A * x ** b
    dy = rel * y0
    return x, y0 + dy * rng.standard_normal(len(x)), dy


def test_exact_power_law():
    fit = power_law(X, 3.0 * X ** -0.5, 0.01 * X ** -0.5)
    assert fit.exponent == pytest.approx(-0.5, abs=1e-12)
    assert fit.amplitude == pytest.approx(3.0, rel=1e-12)
    assert fit.chi2 == pytest.approx(0, abs=1e-18) and fit.dof == 4
    np.testing.assert_allclose(fit.predict([4.0]), 1.5)
    assert all(v < 1e-9 for v in fit.sys_errors.values())
    assert "b = -0.5" in fit.summary()


def test_recovers_exponent_over_seeds():
    """Within 2 total sigma in >= 90% of 40 seeds; the reported statistical error matches the
    seed-to-seed scatter; systematic errors do not blanket-inflate clean data."""
    fits = [power_law(*_noisy(s), bootstrap=300, seed=s) for s in range(40)]
    b = np.array([f.exponent for f in fits])
    err = np.array([f.errors["exponent"] for f in fits])
    stat = np.array([f.stat_errors["exponent"] for f in fits])
    sys = np.array([f.sys_errors["exponent"] for f in fits])
    assert np.mean(np.abs(b - 0.75) < 2 * err) >= 0.9
    assert 1 / 1.5 < np.std(b, ddof=1) / np.mean(stat) < 1.5
    assert np.median(err / stat) < 1.25         # clean data: no blanket inflation by systematics
    pvals = np.array([f.pvalue for f in fits])
    assert np.mean(pvals < 0.05) < 0.2


def test_unweighted_and_ranges():
    x, y, _ = _noisy(3)
    fit = power_law(x, y)                        # scatter estimated from residuals
    assert abs(fit.exponent - 0.75) < 3 * fit.errors["exponent"] and np.isnan(fit.pvalue)
    assert not any(v.label == "unweighted" for v in fit.variants)
    fit2 = power_law(x, y, x_min=16, x_max=128)
    assert len(fit2.x) == 4


def test_model_violation_is_flagged():
    """A curved log-log relation: a bad p-value and a drop-point variant that moves."""
    x = X
    y = 1.0 * x ** 0.5 * (1 + 3.0 / x)
    fit = power_law(x, y, 0.01 * y)
    assert fit.pvalue < 1e-6 and fit.notes
    assert fit.sys_errors["exponent"] > 3 * fit.stat_errors["exponent"]


@pytest.mark.parametrize("args, match", [
    (([1, 2, 3], [1, 2]), "equal length"),
    (([1, 2, 3], [1, 2, 3], [0.1, 0.0, 0.1]), "dy must be > 0"),
    (([1, 2, 3], [1, np.nan, 3]), "NaN"),
    (([1, -2, 3], [1, 2, 3]), "must be > 0"),
    (([1, 1, 1], [1, 2, 3]), "distinct"),
    (([1.0], [1.0]), "at least 2"),
    (([1, 2, 3], [1, 2, 3], [0.1, 0.1]), "shape"),
])
def test_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        power_law(*args)
