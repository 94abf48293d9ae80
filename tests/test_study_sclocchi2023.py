"""Sclocchi-Geiger-Wyart perceptron study (runs/sclocchi2023): its exact tools (fast) and a reduced
version of the study's claims in the noise-dominated regime (slow).

Linear perceptron student f = w.x/sqrt(N), teacher sign(x_1), x_1 density ~ |x_1|^chi e^{-x_1^2/2},
hinge loss (margin 1), plain SGD until the training hinge loss is exactly zero.
"""
import importlib.util
import math
import os
import sys

import numpy as np
import pytest

import physsgd as ps

HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = os.path.join(HERE, "..", "runs", "sclocchi2023")
sys.path.insert(0, os.path.abspath(RUNS))
import exact_stop  # noqa: E402

_spec = importlib.util.spec_from_file_location("sclocchi_study", os.path.join(RUNS, "study.py"))
study = importlib.util.module_from_spec(_spec)
sys.modules["sclocchi_study"] = study          # dataclasses look their module up while executing it
_spec.loader.exec_module(study)


def _train(N, P, lr, chi=1.0, B=1, margin=1.0, alpha=1.0, init_scale=0.0, seed=3, replicas=1,
           check_every=None, batches="independent", test_size=1, epochs=5000):
    return ps.train(ps.Perceptron(N, weights="axis"), ps.Perceptron(N, activation="linear", output="sign"),
                    ps.SGD(lr=lr, batch_size=B, loss="hinge", output_scale=alpha, margin=margin),
                    ps.Dataset(P=P, chi=chi, test_size=test_size, batches=batches), epochs=epochs,
                    stop="zero_loss", replicas=replicas, seed=seed, init_scale=init_scale, record=4,
                    check_every=check_every, threads=1)


# ------------------------------------------------------------------------------ exact tools (fast)
@pytest.mark.parametrize("batches", ["independent", "epochs"])
def test_exact_stop_equals_checking_every_step(batches):
    """The replay finds the step a run checked every step stops at, and the final weights do not
    depend on the check cadence (zero loss is absorbing)."""
    for seed, (N, P, c) in enumerate([(8, 128, 16), (16, 256, 37), (8, 64, 64)]):
        coarse = _train(N, P, 30.0, check_every=c, seed=seed, batches=batches)
        fine = _train(N, P, 30.0, check_every=1, seed=seed, batches=batches)
        assert np.array_equal(coarse.weights, fine.weights)
        t = exact_stop.exact_stop(coarse)
        assert t == fine.stopped_at[0]
        assert coarse.stopped_at[0] - c < t <= coarse.stopped_at[0]
        if coarse.stopped_at[0] > t:     # the cadence really cost steps: the replay is not a no-op
            assert exact_stop.previous_check(coarse.stopped_at[0], c, coarse.steps) < t


def test_exact_stop_refuses_what_it_cannot_replay():
    r = _train(8, 64, 10.0, replicas=2)
    with pytest.raises(ValueError, match="one-replica"):
        exact_stop.exact_stop(r)
    assert exact_stop.previous_check(100, 32, [0, 1, 50, 1000]) == 96
    assert exact_stop.previous_check(60, 32, [0, 1, 50, 1000]) == 50
    assert exact_stop.previous_check(1, 32, [0, 1, 1000]) == 0


def test_temperature_enters_only_through_margin_over_lr():
    """SGD on the hinge from w = 0 is scale-free: lr = 2^k with margin 1 gives exactly 2^k times
    the weights of lr = 1 with margin 2^-k, step for step (powers of two scale floats exactly).
    Hence |w| = T g(1/T) at B = 1, delta -> 1 as T -> infinity, and the output scale alpha only
    enters as alpha T (checked: alpha = 2^3 with lr = T equals alpha = 1 with lr = 2^3 T)."""
    a = _train(16, 256, 2.0 ** 6, seed=5)
    b = _train(16, 256, 1.0, margin=2.0 ** -6, seed=5)
    assert a.stopped_at[0] == b.stopped_at[0]
    assert np.array_equal(a.weights, 2.0 ** 6 * b.weights)
    c = _train(16, 256, 2.0, alpha=8.0, seed=5)          # alpha T = 16
    d = _train(16, 256, 16.0, alpha=1.0, seed=5)
    assert c.stopped_at[0] == d.stopped_at[0]
    assert np.array_equal(8.0 * c.weights, d.weights)


@pytest.mark.parametrize("chi", [0.0, 1.0, 2.0])
def test_exact_test_error_against_sampling(chi):
    """eps_axis = E[Phi(-w_1 |x_1| / |w_perp|)] against a direct Monte-Carlo estimate on 4e5
    inputs from the x_1 law (|x_1| = sqrt(2 G), G ~ Gamma((chi+1)/2)); tolerance 4 binomial sigma."""
    rng = np.random.default_rng(int(chi) + 1)
    n = 400_000
    x1 = np.sqrt(2 * rng.gamma((chi + 1) / 2, 1.0, n)) * rng.choice([-1.0, 1.0], n)
    for w1, wperp in ((3.0, 1.0), (40.0, 1.0), (-2.0, 1.5)):
        z = rng.standard_normal(n)
        mc = np.mean(np.sign(w1 * x1 + wperp * z) != np.sign(x1))
        exact = float(study.eps_axis(w1, wperp, chi))
        assert abs(mc - exact) < 4 * math.sqrt(max(exact * (1 - exact), 1 / n) / n) + 1e-12, (w1, mc, exact)


def test_fit_scales_errors_by_the_birge_ratio():
    """Points that scatter 5x beyond their error bars: the exponent's statistical error is the
    bootstrap's (which trusts the error bars) times sqrt(chi2/dof) ~ 5; consistent data keep theirs."""
    rng = np.random.default_rng(0)
    x = np.geomspace(1, 1000, 12)
    dy = 0.01 * x ** 0.5
    f = study.fit_power(x, x ** 0.5 * np.exp(0.05 * rng.standard_normal(12)), dy)
    g = study.fit_power(x, x ** 0.5 * np.exp(0.01 * rng.standard_normal(12)), dy)
    assert 3 < f.birge < 8 and g.birge < 1.6
    assert f.stat / g.stat == pytest.approx(f.birge / g.birge, rel=0.2)
    assert f.err >= f.stat


# ------------------------------------------------------------------------------ physics (slow)
def _rows(N, chi, Ps, T, seeds, B=1):
    rows = []
    for P in Ps:
        for s in seeds:
            r = _train(N, P, T * B, chi=chi, B=B, seed=1000 * P + s, epochs=20000,
                       check_every=max(1, P * N // 512))
            rows += study.replica_rows({f"{P}-{s}": r}, {f"{P}-{s}": exact_stop.exact_stop(r)})
    return rows


@pytest.mark.slow
def test_gamma_at_N32_and_exact_stop():
    """chi = 1, N = 32, T = 1000 (noise-dominated): w_1/|w_perp| ~ P^gamma with gamma within 3 sigma
    of 1/(1+chi) = 1/2 (3 sigma: a correct simulator fails 1 run in 370); every replica converged
    and got its exact stopping step, which is never after the first successful check."""
    rows = _rows(32, 1.0, (128, 256, 512, 1024, 2048), 1000.0, range(12))
    assert all(r["converged"] for r in rows)
    assert all(r["tstar_step"] is not None and r["tstar_step"] <= r["steps"] for r in rows)
    agg = study.group(rows, ("chi", "N", "P", "T"))
    f = study.size_fits(agg)[(1.0, 32)]["ratio"]
    assert f.err < 0.12, f
    assert abs(f.exponent - 0.5) < 3 * f.err, f


@pytest.mark.slow
def test_delta_is_one_deep_in_the_noise_regime():
    """|w| ~ T^delta with delta = 1 in the noise-dominated regime (alpha T >> T_x; exact as
    T -> infinity by the rescaling above), while the crossover at small T gives a smaller
    effective exponent -- the fit-range criterion must exclude it."""
    rows = []
    for T in (1.0, 3.0, 10.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0):
        r = _train(16, 512, T, chi=1.0, replicas=24, seed=7, epochs=20000)
        rows += study.replica_rows([r])
    for r in rows:
        r["alphaT"] = r["T"]
    agg = sorted(study.group(rows, ("chi", "N", "P", "T", "alphaT")), key=lambda a: a["T"])
    T = np.array([a["T"] for a in agg])
    y, dy = study.values(agg, "dw")
    lo = study.delta_range(T, y, dy)
    assert lo is not None and lo >= 100.0, lo              # the crossover is excluded
    f = study.fit_power(T[T >= lo], y[T >= lo], dy[T >= lo])
    assert abs(f.exponent - 1.0) < max(3 * f.err, 0.02), f
    low = study.fit_power(T[:3], y[:3], dy[:3])
    assert low.exponent < 0.9                               # the crossover is really there
