"""runs/plateau/study.py: the parameter-free predictions of its README and its statistics helpers.

Fast (a few seconds): closed forms checked by quadrature, the fit on exact and on noisy lines,
"not determined" for censored escapes, and the unstable eigenvalue of the symmetric plateau that
the README quotes (its multiplicity from the S_K x S_K symmetry: 1 for K = 2, 4 for K = 3).
"""
import importlib.util
import math
import os
import sys

import numpy as np
import pytest
from scipy import integrate

HERE = os.path.join(os.path.dirname(__file__), "..", "runs", "plateau")
_spec = importlib.util.spec_from_file_location("plateau_study", os.path.join(HERE, "study.py"))
study = importlib.util.module_from_spec(_spec)      # own name: every study folder has a study.py
sys.modules["plateau_study"] = study                # (dataclasses look their module up)
_spec.loader.exec_module(study)


def test_log_amplitude_sd_closed_form():
    # sd(ln|Z|) for a standard Gaussian Z: trigamma(1/2) = pi^2 / 2
    assert study.log_amplitude_sd(1) == pytest.approx(math.pi / (2 * math.sqrt(2)), rel=1e-12)


@pytest.mark.parametrize("dim", [1, 4])
def test_escape_density_is_the_law_of_minus_log_amplitude(dim):
    """Normalised, centred, with sd = log_amplitude_sd(dim) (quadrature, error << 1e-6), and
    equal to the histogram of -(ln|A| - <ln|A|>) of sampled Gaussian A (2e5 draws; bins of 0.25
    hold >= 2000 draws near the mode, so 6 sigma of the binomial error is < 0.03 there)."""
    u = np.linspace(-12, 25, 200001)
    f = study.escape_density(u, dim)
    assert integrate.trapezoid(f, u) == pytest.approx(1, abs=1e-6)
    mean = integrate.trapezoid(u * f, u)
    assert abs(mean) < 1e-6
    sd = math.sqrt(integrate.trapezoid((u - mean) ** 2 * f, u))
    assert sd == pytest.approx(study.log_amplitude_sd(dim), rel=1e-5)
    rng = np.random.default_rng(0)
    v = np.log(np.linalg.norm(rng.standard_normal((200000, dim)), axis=1))
    x = -(v - v.mean())
    edges = np.arange(-1.5, 2.01, 0.25)
    hist, _ = np.histogram(x, bins=edges)
    dens = hist / (x.size * 0.25)
    mid = 0.5 * (edges[1:] + edges[:-1])
    want = np.array([integrate.quad(lambda t: float(study.escape_density(t, dim)), a, b)[0] / 0.25
                     for a, b in zip(edges[:-1], edges[1:])])
    err = np.sqrt(np.maximum(want, 1e-3) / (x.size * 0.25))
    assert np.all(np.abs(dens - want) < 6 * err), (mid, dens, want)


def test_fit_line_exact_and_noisy():
    lnN = np.log([1e3, 1e4, 1e5, 1e6])
    f = study.fit_line(lnN, 90 + 16 * lnN, np.ones(4))
    assert f["b"] == pytest.approx(16) and f["chi2"] == pytest.approx(0, abs=1e-18)
    assert f["scale"] == 1.0 and f["dof"] == 2
    # scatter 3x the quoted errors: the errors are scaled up by sqrt(chi2/dof)
    y = 90 + 16 * lnN + 3 * np.array([1.0, -1.0, -1.0, 1.0])
    g = study.fit_line(lnN, y, np.ones(4))
    assert g["scale"] == pytest.approx(math.sqrt(g["chi2"] / 2)) and g["scale"] > 1
    assert g["db"] == pytest.approx(f["db"] * g["scale"])


def test_censored_escapes_are_not_determined():
    alpha = np.array([100.0, 120.0, np.nan, 110.0])
    s = study.escape_stats(alpha, np.isnan(alpha))
    assert s["censored"] == 1 and math.isnan(s["mean"]) and math.isnan(s["sd"])
    assert s["median"] == 120.0                  # 1 of 4 censored: the median is still known
    full = study.escape_stats(alpha[[0, 1, 3]], np.zeros(3, bool))
    assert full["mean"] == pytest.approx(110) and full["sd"] == pytest.approx(10)


@pytest.mark.parametrize("K, lam, mult", [(2, 0.03162, 1), (3, 0.02053, 4)])
def test_instability_is_the_readme_s(K, lam, mult):
    """The README's lambda (to its 4 digits) and multiplicity; all other eigenvalues below it."""
    inst = study.instability(K)
    assert inst.lam == pytest.approx(lam, abs=1e-5)
    assert inst.multiplicity == mult
    assert np.all(inst.eigenvalues[mult:].real < inst.lam * (1 - 1e-3))


def test_spread_error_is_never_zero_for_few_replicas():
    """Three escape times whose sample moments make the kurtosis estimate of the sd's error ~0
    (it gave "32.6 ± 0.0" at N = 10^7): the error is at least the Gaussian sd / sqrt(2 (n - 1))."""
    a = np.array([320.0, 350.0, 385.0])
    s = study.escape_stats(a, np.zeros(3, bool))
    assert s["sd_err"] >= s["sd"] / np.sqrt(4) - 1e-12 and s["sd_err"] > 0.3 * s["sd"]
