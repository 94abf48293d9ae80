"""ps.train features beyond the kernels: finite data and epochs, stop rules, user arrays, label
noise, the record grid and time units."""
import math

import numpy as np
import pytest

import physsgd as ps

PERC = ps.Perceptron(20)
LIN = ps.Perceptron(20, activation="linear")


def test_epochs_and_time_units():
    res = ps.train(PERC, LIN, ps.SGD(lr=0.1, batch_size=3, loss="hinge"), ps.Dataset(P=10), epochs=4,
                   replicas=2, record=3)
    assert res.steps[-1] == 4 * (10 // 3)                      # last partial batch dropped
    np.testing.assert_allclose(res.time, res.steps * 3 / 20)   # samples / N
    tree = ps.Committee(N=12, activation="sign", output="sign", topology="tree", d=4, weights="binary")
    res = ps.train(tree, tree, ps.Greedy(batch_size=2, new_batch="proposal"), ps.Online(inputs="binary"),
                   steps=3, replicas=1, record=2)
    np.testing.assert_allclose(res.time[-1], 3 * 2 * 12 / 12)  # m samples per proposal, K*d proposals


def test_record_grid_is_log_spaced_and_starts_at_zero():
    res = ps.train(PERC, LIN, ps.SGD(lr=0.1, loss="hinge"), ps.Online(), steps=1000, replicas=1, record=7)
    assert res.steps[0] == 0 and res.steps[-1] == 1000
    ratios = res.steps[2:] / res.steps[1:-1]
    np.testing.assert_allclose(ratios, ratios[0], rtol=0.05)


def test_zero_train_error_stop_on_separable_data():
    """Rosenblatt's rule on a realisable finite set stops exactly when it separates the set."""
    res = ps.train(PERC, LIN, ps.SGD(lr=1.0, loss="hinge", margin=0.0), ps.Dataset(P=40), epochs=500,
                   replicas=4, seed=1, record=5, stop="zero_train_error")
    assert np.all(res.train_error[:, -1] == 0.0)
    assert np.all(res.stopped_at < 500 * 40)
    # checked at every epoch end (P / m = 40 steps) and at the record points
    assert np.all((res.stopped_at % 40 == 0) | np.isin(res.stopped_at, res.steps))


def test_zero_loss_stop_reaches_every_margin():
    res = ps.train(PERC, LIN, ps.SGD(lr=0.5, batch_size=5, loss="hinge", margin=1.0), ps.Dataset(P=30),
                   epochs=2000, replicas=3, seed=2, record=4, stop="zero_loss")
    assert np.all(res.stopped_at < 2000 * 6)
    assert np.all(res.train_error[:, -1] == 0.0)      # every margin >= 1 implies no error


def test_success_stop_and_success_flag():
    tree = ps.Committee(N=15, activation="sign", output="sign", topology="tree", d=5, weights="binary")
    res = ps.train(tree, tree, ps.Greedy(batch_size=64), ps.Online(), steps=300, replicas=6, seed=0,
                   record=4, stop="success")
    done = res.stopped_at < 300
    assert np.array_equal(done, res.success)          # a replica stops early iff it succeeded
    assert np.all(res.eps_g[res.success, -1] == 0.0)
    assert np.all(np.abs(res.overlap[res.success, -1] - 1.0) < 1e-12)


def test_user_arrays_train_and_held_out_error():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 10))
    y = np.where(X @ np.linspace(1, -1, 10) >= 0, 1.0, -1.0)
    data = ps.Dataset.from_arrays(X, y, test_fraction=0.25)
    assert data.P == 450 and data.test_size == 150
    student = ps.Perceptron(10, activation="linear")
    res = ps.train(None, student, ps.SGD(lr=0.5, batch_size=10, loss="logistic"), data, epochs=30,
                   replicas=2, record=4)
    assert res.T.shape == (2, 0, 0) and res.R.shape[-1] == 0
    assert np.all(res.eps_g[:, -1] < 0.1) and np.all(res.eps_g[:, 0] > 0.2)
    # the held-out error is an error rate on 150 rows: a multiple of 1/150
    np.testing.assert_allclose(res.eps_g[:, -1] * 150, np.round(res.eps_g[:, -1] * 150), atol=1e-9)


def test_label_noise_sets_the_training_error_floor():
    """With labels flipped at rate p, a student equal to the teacher errs on a fraction p of them."""
    tree = ps.Committee(N=15, activation="sign", output="sign", topology="tree", d=5, weights="binary")
    p, P = 0.2, 4000
    res = ps.train(tree, tree, ps.Greedy(batch_size=1, temperature=1e-9, ties="reject"),
                   ps.Dataset(P=P, inputs="binary", label_noise=p), steps=1, replicas=8, seed=0,
                   record=np.array([0, 1]))
    initial = res.train_error[:, 0]        # measured before any move: the random student
    assert np.all(np.isfinite(initial))
    # a teacher-initialised student is not available, so test through eps_g = P(student != teacher):
    # train error of the random start = e + p - 2 e p exactly in expectation
    e = res.eps_g[:, 0]
    expected = e + p - 2 * e * p
    se = np.sqrt(expected * (1 - expected) / P)
    assert np.all(np.abs(initial - expected) <= 4 * se + 4 * np.sqrt(e * (1 - e) / 10_000))
