"""Planted starts and the stationary observables of ps.train (init, window, time at teacher,
first passage, first exit, window means), their validation, and their way into HDF5 files and
analysis tables. The values themselves are compared number by number with the NumPy reference in
test_kernels_reference.py; here: their meaning, on cases where the answer is known."""
import numpy as np
import pytest

import analysis as an
import physsgd as ps

TREE = ps.Committee(N=15, activation="sign", output="sign", topology="tree", d=5, weights="binary")
ONLINE = ps.Online(inputs="binary", test_size=200)


def _greedy(m, **kw):
    run = dict(steps=60, replicas=6, seed=1, record=6)
    run.update(kw)
    return ps.train(TREE, TREE, ps.Greedy(batch_size=m), ONLINE, **run)


def test_planted_start_on_a_stable_teacher_never_leaves():
    # m = 400 >> m_c(N = 15) ~ 8: a flip off the teacher errs on >= 1 sample of the batch with
    # probability 1 - (1 - p)^400, p >= 1/16 the fraction of inputs a flipped weight changes
    res = _greedy(400, init="teacher")
    assert np.all(res.first_passage == 0)
    assert np.all(res.first_exit == -1)
    assert np.all(res.time_at_teacher == 1.0)
    assert np.all(res.window_overlap == 1.0)
    assert np.all(res.window_eps_g == 0.0)
    assert res.success.all()
    assert res.params["run"]["init"] == "teacher" and res.params["run"]["teacher_rule"] == "weights"


def test_planted_start_at_small_batches_is_left_at_once():
    # m = 1: a single sample cannot pin the teacher; the planted student leaves in its first sweeps
    res = _greedy(1, init="teacher")
    assert np.all(res.first_passage == 0)
    assert np.all((res.first_exit >= 1) & (res.first_exit <= 5))
    assert np.all(res.time_at_teacher < 0.5)


def test_random_start_passage_and_exit_are_consistent():
    res = _greedy(24, steps=200)
    fp, fe = res.first_passage, res.first_exit
    assert np.all((fp == -1) | (fp >= 1))                  # a random student is not the teacher
    assert np.all((fe == -1) | (fe > fp))                  # leaving needs arriving first
    assert np.all(fe[fp == -1] == -1)
    assert np.all(fp[res.success] >= 0)                    # ends on the teacher: it got there
    never = fp == -1
    assert np.all(res.time_at_teacher[never] == 0.0)
    assert np.all((res.time_at_teacher >= 0) & (res.time_at_teacher <= 1))


def test_random_and_planted_share_teacher_and_batches():
    a, b = _greedy(24, init="random"), _greedy(24, init="teacher")
    np.testing.assert_array_equal(a.teacher_weights, b.teacher_weights)
    np.testing.assert_array_equal(a.T, b.T)
    assert not np.array_equal(a.R[:, 0], b.R[:, 0])


def test_window_and_early_stop():
    res = _greedy(24, steps=100)
    np.testing.assert_array_equal(res.window, [51, 100])
    assert _greedy(24, steps=100, window=0.1).window.tolist() == [91, 100]
    assert _greedy(24, steps=100, window=(0, 10)).window.tolist() == [0, 10]
    # stopped at success before the window opens: nothing measured in it
    res = _greedy(400, steps=100, stop="success", check_every=1)
    assert np.all(res.stopped_at < 51)
    assert np.all(np.isnan(res.time_at_teacher)) and np.all(np.isnan(res.window_overlap))


def test_window_eps_g_from_fresh_batches_is_unbiased():
    """Online data: the window mean of the batch errors estimates the window mean of eps_g.
    With a frozen student (lr tiny) both are eps_g of the initial student, known in closed form;
    the batch estimate has standard error sqrt(eps (1 - eps) / (m * steps in window))."""
    t = ps.Perceptron(N=50)
    s = ps.Perceptron(N=50, activation="linear")
    res = ps.train(t, s, ps.SGD(lr=1e-12, batch_size=20, loss="hinge"), ps.Online(), steps=400,
                   replicas=4, record=3)
    assert res.params["run"]["window_eps_g"] == "batches"
    eps = res.eps_g[:, -1]                                  # arccos closed form
    se = np.sqrt(eps * (1 - eps) / (20 * 200))
    assert np.all(np.abs(res.window_eps_g - eps) < 4.5 * se), (res.window_eps_g, eps, se)
    noisy = ps.train(t, s, ps.SGD(lr=1e-12, batch_size=20, loss="hinge"), ps.Online(label_noise=0.1),
                     steps=40, replicas=2, record=3)
    assert noisy.params["run"]["window_eps_g"] == "probes"
    np.testing.assert_allclose(noisy.window_eps_g, noisy.eps_g[:, -1], rtol=1e-9)


def test_continuous_weights_use_eps_at_the_probes():
    t = ps.Committee(N=40, K=2, activation="erf")
    res = ps.train(t, t, ps.SGD(lr=0.5, batch_size=4), ps.Online(), steps=200, replicas=3,
                   init="teacher", probe_every=10)
    assert res.params["run"]["teacher_rule"] == "eps" and res.params["run"]["probe_every"] == 10
    assert np.all(res.first_passage == 0)
    # noisy SGD (no label noise, realisable): the planted student stays within eps <= 1e-3
    assert np.all(res.time_at_teacher == 1.0) and np.all(res.first_exit == -1)


def test_explicit_initial_weights():
    W0 = np.ones((3, 5))
    res = _greedy(24, init=W0, steps=1, record=2)
    np.testing.assert_array_equal(res.Q[:, 0], np.ones((6, 3, 3)) * np.eye(3))
    per_replica = np.stack([W0 * (1 if r % 2 else -1) for r in range(6)])
    res = _greedy(24, init=per_replica, steps=1, record=2)
    np.testing.assert_allclose(res.R[1::2, 0], _greedy(24, init=W0, steps=1, record=2).R[1::2, 0])


@pytest.mark.parametrize("kw,word", [
    (dict(init="planted"), "init"),
    (dict(init=np.ones((2, 5))), "init"),
    (dict(init=np.full((3, 5), 0.5)), "init"),
    (dict(init=np.full((3, 5), np.nan)), "init"),
    (dict(init=np.ones((3, 5)) * 1j), "init"),
    (dict(window=(10, 5)), "window"),
    (dict(window=(0, 61)), "window"),
    (dict(window=1.5), "window"),
    (dict(window="half"), "window"),
    (dict(probe_every=0), "probe_every"),
    (dict(check_every=-1), "check_every"),
    (dict(engine="fast"), "engine"),
    (dict(measure=["hessian"]), "measure"),
])
def test_bad_arguments_name_the_parameter(kw, word):
    with pytest.raises(ValueError, match=word):
        _greedy(24, **kw)


def test_planted_start_needs_the_teachers_architecture():
    other = ps.Committee(N=15, activation="sign", output="parity", topology="tree", d=5, weights="binary")
    with pytest.raises(ValueError, match=r"init='teacher'.*output"):
        ps.train(TREE, other, ps.Greedy(batch_size=4), ONLINE, steps=2, init="teacher")
    gauss = ps.Committee(N=15, activation="erf", output="sign", topology="tree", d=5)
    with pytest.raises(ValueError, match=r"init='teacher'.*student.activation='erf'"):
        ps.train(TREE, gauss, ps.SGD(lr=0.1, loss="hinge"), ONLINE, steps=2, init="teacher")
    with pytest.raises(ValueError, match="init_scale"):
        e = ps.Committee(N=15, K=2, activation="erf")
        ps.train(e, e, ps.SGD(lr=0.1), ps.Online(), steps=2, init="teacher", init_scale=0.5)


def test_stationary_fields_reach_hdf5_and_analysis(tmp_path):
    res = _greedy(24, steps=40, init="teacher")
    path = tmp_path / "r.h5"
    res.to_hdf5(path)
    back = ps.load(path)
    assert back == res
    np.testing.assert_array_equal(back.first_exit, res.first_exit)
    tab = an.load(path)
    for col in ("time_at_teacher", "first_passage", "first_exit", "window_overlap",
                "window_eps_g", "window_start", "window_stop", "init"):
        assert col in tab.columns, col
    np.testing.assert_allclose(tab["time_at_teacher"], res.time_at_teacher)
    assert set(tab["init"]) == {"teacher"} and set(tab["window_start"]) == {21}
