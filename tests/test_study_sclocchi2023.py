"""Reduced Sclocchi-Geiger-Wyart perceptron study (runs/sclocchi2023): the noise-dominated regime.

Linear perceptron student, teacher sign(x_1), x_1 density ~ |x_1|^chi e^{-x_1^2/2}, hinge loss on the
alpha-scaled centred output (alpha = 1, margin 1), SGD at B = 1 until the training hinge loss is zero.
Checks (SCIENCE.md 2.4 and checklist item 7):
  * w_1/|w_perp| ~ P^gamma with gamma within 3 sigma of 1/(1+chi), chi = 1 (and chi = 2);
  * |w|/T independent of T at small B in the noise-dominated regime (delta = 1).
"""
import importlib.util
import os

import numpy as np
import pytest

import physsgd as ps

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "sclocchi_study", os.path.join(HERE, "..", "runs", "sclocchi2023", "study.py"))
study = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(study)

N = 8


def _run(P, T, chi, B=1, replicas=24, seed=11):
    return ps.train(ps.Perceptron(N, weights="axis"), ps.Perceptron(N, activation="linear", output="sign"),
                    ps.SGD(lr=T * B, batch_size=B, loss="hinge", output_scale=1.0, margin=1.0),
                    ps.Dataset(P=P, chi=chi, test_size=2000), epochs=5000, stop="zero_loss",
                    replicas=replicas, seed=seed, init_scale=1e-9, record=2)


@pytest.mark.slow
@pytest.mark.parametrize("chi", [1.0, 2.0])
def test_gamma_matches_one_over_one_plus_chi(chi):
    rows = []
    for P in (128, 256, 512, 1024, 2048, 4096):
        rows += study.replica_rows([_run(P, 100.0, chi, seed=11 + P)])
    assert np.mean([r["converged"] for r in rows]) > 0.95
    agg = study.group(rows, ("chi", "P", "T"))
    fit = study.gamma_fits(agg, 100.0)[chi]["ratio"]
    target = 1.0 / (1.0 + chi)
    sigma = fit.errors["exponent"]
    assert sigma < 0.15, fit.summary()
    # 3 sigma: a correct simulator fails a 2-sigma test in 1 run of 22, i.e. whenever the random
    # streams change (the generator's change gave 2.2 sigma at chi = 2); 3 sigma fails 1 in 370
    assert abs(fit.exponent - target) < 3 * sigma, fit.summary()


@pytest.mark.slow
def test_weight_norm_linear_in_T_at_small_batch():
    chi, P = 1.0, 512
    rows = []
    for T in (10.0, 30.0, 100.0, 300.0):
        rows += study.replica_rows([_run(P, T, chi, replicas=32, seed=7)])
    agg = sorted(study.group(rows, ("chi", "P", "T")), key=lambda a: a["T"])
    w_over_T = np.array([a["wnorm"] / a["T"] for a in agg])
    err = np.array([a["wnorm_err"] / a["T"] for a in agg])
    # roughly independent of T: within 25% of the mean, and delta = 1 within 2 sigma (+-0.1)
    assert np.all(np.abs(w_over_T / w_over_T.mean() - 1) < 0.25), (w_over_T, err)
    d = study.delta_fits(agg, 10.0)[chi]
    assert abs(d["delta"] - 1.0) < max(2 * d["delta_err"], 0.1), d
