"""Gradient noise and curvature (measure=[...], physsgd/kernels/curvature.py) against exact answers.

Deterministic comparisons with the dense NumPy reference (tests/reference.py, end section) use a
relative tolerance of 1e-10 (the two codes sum in different orders). Finite differences of the
gradient use a central step eps = 1e-5: truncation ~ eps^2 |f'''| ~ 1e-10 and rounding
~ 1e-16 |grad| / eps ~ 1e-11, so 1e-6 relative is a safe bound that still catches any wrong term
(those are O(1)). Statistical checks use 4 standard errors estimated from the simulated samples
themselves, and each also shows that the wrong formula would be rejected (a test that cannot
fail is a defect).
"""
import itertools
import math
import os
import sys

import numpy as np
import pytest

import physsgd as ps
from physsgd.kernels import config as kc, curvature as cv

sys.path.insert(0, os.path.dirname(__file__))
import reference as ref  # noqa: E402

ACTS = ("erf", "tanh", "relu", "linear")
LOSSES = ("square", "hinge", "logistic", "squared_hinge", "hebbian")
OUTS = ("sum", "sign", "parity")
TOPOS = ("dense", "tree")
NSE = 4.0
ALL = ["grad_noise", "noise_scale", "sharpness", "hessian_trace"]


def make_cfg(act, out, loss, dense, N, *, output_scale=0.0, weight_decay=0.0, margin=1.0,
             batch_size=1):
    """A KernelConfig with the field types of physsgd.train._kernel_config."""
    return kc.KernelConfig(
        algo=kc.SGD_ALGO, N=N, act_s=kc.ACTIVATION_CODES[act], out_s=kc.OUTPUT_CODES[out],
        act_t=0, out_t=0, dense_s=dense, dense_t=True, fan_in_t=1, loss=kc.LOSS_CODES[loss],
        margin=margin, output_scale=output_scale, lr=0.1, momentum=0.0,
        weight_decay=weight_decay, batch_size=batch_size, temperature=0.0, ties=0,
        new_batch_per_proposal=False, inputs=kc.INPUT_GAUSSIAN, chi=0.0, label_noise=0.0, P=0,
        user_data=False, independent_batches=False, test_size=1, eg_mode=kc.EG_TESTSET,
        success_eps=0.0, stop_rule=kc.STOP_NONE, check_every=1, exact_votes=False,
        teacher_rule=kc.RULE_EPS, sign_flips=False, total_steps=1, probe_every=1,
        window_start=1, window_stop=1, batch_eps=False, measure=0, lanczos_iters=300,
        lanczos_tol=1e-10, measure_samples=0)


def problem(act, out, loss, topo, seed, *, K=3, d=4, P=9, output_scale=0.0, weight_decay=0.0):
    """A random point (W, W0), a training set and the matching kernel config and reference net."""
    rng = np.random.default_rng(seed)
    dense = topo == "dense"
    N = d if dense else K * d
    F = N if dense else d
    fields = np.zeros((K, 1), np.int64) if dense else np.arange(K * d, dtype=np.int64).reshape(K, d)
    v = rng.uniform(0.5, 1.5, K) * rng.choice([-1.0, 1.0], K)
    W = rng.standard_normal((K, F))
    W0 = rng.standard_normal((K, F))
    X = rng.standard_normal((P, N))
    y = rng.choice([-1.0, 1.0], P) if loss != "square" else rng.standard_normal(P)
    cfg = make_cfg(act, out, loss, dense, N, output_scale=output_scale, weight_decay=weight_decay)
    net = ref.Net(act, out, v, fields, dense)
    kw = dict(loss=loss, margin=1.0, output_scale=output_scale, weight_decay=weight_decay)
    return cfg, net, fields, v, W, W0, X, y, kw


def kernel_coefficients(cfg, fields, v, W, W0, X, y):
    P, K = X.shape[0], W.shape[0]
    DL, D2, A, B = np.empty(P), np.empty(P), np.empty((P, K)), np.empty((P, K, K))
    cv.sample_coefficients(cfg, W, W0, fields, v, X, y, DL, D2, A, B, np.empty(K), np.empty(K))
    return DL, D2, A, B


def kernel_hvp(cfg, fields, X, coeffs, V):
    out = np.empty_like(V)
    cv.hessian_vector(cfg, fields, X, *coeffs, V, out, np.empty(V.shape[0]))
    return out


def _kinks(net, W, W0, X, y, kw):
    """The piecewise-linear switches a finite difference must not cross: relu signs, hinge
    margins."""
    H = net.H(W, X)
    Fout = ref.scaled_output(net, W, W0, X, kw["output_scale"])
    return np.concatenate([(H > 0).ravel(), (kw["margin"] - y * Fout > 0)])


CASES = list(itertools.product(ACTS, LOSSES, OUTS, TOPOS))


# ------------------------------------------------------------------------------------------
# 1. Hessian-vector products: the dense reference and finite differences of the gradient
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("act,loss,out,topo", CASES)
def test_hessian_vector_product(act, loss, out, topo):
    i = CASES.index((act, loss, out, topo))
    # every other case with the lazy-regime output scale, every third with weight decay
    cfg, net, fields, v, W, W0, X, y, kw = problem(
        act, out, loss, topo, seed=100 + i, output_scale=1.7 if i % 2 else 0.0,
        weight_decay=0.03 if i % 3 == 0 else 0.0)
    K, F = W.shape
    coeffs = kernel_coefficients(cfg, fields, v, W, W0, X, y)
    H = ref.objective_hessian(net, W, W0, X, y, **kw)
    assert np.allclose(H, H.T, atol=1e-12)
    rng = np.random.default_rng(i)
    V = rng.standard_normal((K, F))
    got = kernel_hvp(cfg, fields, X, coeffs, V)
    np.testing.assert_allclose(got.ravel(), H @ V.ravel(), rtol=1e-10, atol=1e-12)
    # finite differences of the reference gradient (independent of the Hessian formula)
    eps = 1e-5
    assert np.array_equal(_kinks(net, W + eps * V, W0, X, y, kw), _kinks(net, W - eps * V, W0, X, y, kw))
    gp = ref.objective_gradient(net, W + eps * V, W0, X, y, **kw)
    gm = ref.objective_gradient(net, W - eps * V, W0, X, y, **kw)
    fd = (gp - gm) / (2 * eps)
    scale = np.abs(got).max() + 1e-300
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-6 * scale)
    # trace: exact
    tr = cv.hessian_trace(cfg, fields, X, *coeffs, K, F)
    np.testing.assert_allclose(tr, np.trace(H), rtol=1e-10, atol=1e-12)


def test_hessian_cases_are_not_trivial():
    """Every activation/loss with a second derivative gives a Hessian that the Gauss-Newton
    term alone does not explain (the B term is exercised), and hinge-type kinks are met."""
    cfg, net, fields, v, W, W0, X, y, kw = problem("tanh", "parity", "logistic", "dense", 5)
    H = ref.objective_hessian(net, W, W0, X, y, **kw)
    assert np.linalg.eigvalsh(H).min() < 0 < np.linalg.eigvalsh(H).max()     # indefinite
    cfg, net, fields, v, W, W0, X, y, kw = problem("erf", "sum", "hinge", "tree", 6)
    Fout = ref.scaled_output(net, W, W0, X, 0.0)
    active = 1.0 - y * Fout > 0
    assert 0 < active.sum() < len(y)


def test_second_derivatives_match_finite_differences():
    h = np.linspace(-3, 3, 13) + 0.01
    eps = 1e-5
    for act in ACTS:
        fd = (ref.activation_derivative(act, h + eps) - ref.activation_derivative(act, h - eps)) / (2 * eps)
        got = [cv.g_second(kc.ACTIVATION_CODES[act], x) for x in h]
        np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8, err_msg=act)
        np.testing.assert_allclose(got, ref.activation_second_derivative(act, h), rtol=1e-12, atol=1e-14)
    F = np.linspace(-4, 4, 17) + 0.003
    for loss in LOSSES:
        for y in (-1.0, 1.0):
            fd = (ref.loss_derivative(loss, F + eps, y, 1.0) - ref.loss_derivative(loss, F - eps, y, 1.0)) / (2 * eps)
            got = [cv.loss_curvature(kc.LOSS_CODES[loss], x, y, 1.0) for x in F]
            np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8, err_msg=loss)
    # logistic far in the tails: finite, no overflow
    assert cv.loss_curvature(kc.LOSS_CODES["logistic"], 800.0, -1.0, 1.0) == 0.0


# ------------------------------------------------------------------------------------------
# 2. Lanczos against a dense eigendecomposition
# ------------------------------------------------------------------------------------------
def test_top_ritz_of_a_tridiagonal():
    """Bisection on Sturm counts and inverse iteration against numpy's eigh."""
    rng = np.random.default_rng(4)
    for n in (1, 2, 3, 7, 20, 60):
        for scale in (1.0, 1e-6):
            a = rng.standard_normal(n) * scale
            b = np.abs(rng.standard_normal(n)) * scale
            T = np.diag(a) + np.diag(b[:n - 1], 1) + np.diag(b[:n - 1], -1)
            ev, evec = np.linalg.eigh(T)
            theta, last, radius = cv._top_ritz(a, b, n)
            np.testing.assert_allclose(theta, ev[-1], rtol=1e-12, atol=1e-14 * scale)
            assert theta >= ev[-1] - 1e-14 * np.abs(ev).max()      # an upper bound up to rounding
            assert radius >= np.abs(ev).max() - 1e-15 * scale
            if n == 1 or ev[-1] - ev[-2] > 1e-3 * scale:
                np.testing.assert_allclose(abs(last), abs(evec[-1, -1]), rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("act,loss,out,topo", [("erf", "square", "sum", "dense"),
                                               ("tanh", "logistic", "parity", "tree"),
                                               ("relu", "squared_hinge", "sign", "dense"),
                                               ("tanh", "hinge", "sign", "tree"),
                                               ("linear", "square", "sum", "tree")])
def test_lanczos_top_eigenvalue_small(act, loss, out, topo):
    cfg, net, fields, v, W, W0, X, y, kw = problem(act, out, loss, topo, 7, K=3, d=5, P=12,
                                                   weight_decay=0.01)
    K, F = W.shape
    coeffs = kernel_coefficients(cfg, fields, v, W, W0, X, y)
    want = np.linalg.eigvalsh(ref.objective_hessian(net, W, W0, X, y, **kw)).max()
    s = ps.kernels.rng.seed_states(1, 1, kc.STREAM_MEASURE)[0]
    lam, ok, used = cv.lanczos_top(cfg, fields, X, *coeffs, K, F, s, 300, 1e-10)
    assert ok and used <= K * F
    np.testing.assert_allclose(lam, want, rtol=1e-9, atol=1e-12)


def test_lanczos_stops_early_with_its_tolerance():
    """n = 240 weights: the default tolerance stops Lanczos well before n products, with the top
    eigenvalue correct to ~ the residual bound; a zero Hessian gives exactly 0."""
    cfg, net, fields, v, W, W0, X, y, kw = problem("erf", "sum", "square", "dense", 8, K=4, d=60, P=150)
    K, F = W.shape
    coeffs = kernel_coefficients(cfg, fields, v, W, W0, X, y)
    ev = np.linalg.eigvalsh(ref.objective_hessian(net, W, W0, X, y, **kw))
    s = ps.kernels.rng.seed_states(2, 1, kc.STREAM_MEASURE)[0]
    lam, ok, used = cv.lanczos_top(cfg, fields, X, *coeffs, K, F, s, 300, 1e-6)
    assert ok and used < K * F, used
    assert abs(lam - ev.max()) <= 1e-6 * np.abs(ev).max()
    # hinge with every margin met and no weight decay: the Hessian is exactly zero
    y_big = np.sign(ref.scaled_output(net, W, W0, X, 0.0)) * 1.0
    cfg2 = cfg._replace(loss=kc.LOSS_CODES["hinge"], margin=0.0)
    coeffs = kernel_coefficients(cfg2, fields, v, W, W0, X, y_big)
    lam, ok, used = cv.lanczos_top(cfg2, fields, X, *coeffs, K, F, s, 300, 1e-6)
    assert ok and lam == 0.0 and used == 1


# ------------------------------------------------------------------------------------------
# 3. gradient moments: exact over the training set
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("act,loss,out,topo", [("erf", "square", "sum", "dense"),
                                               ("tanh", "logistic", "sign", "tree"),
                                               ("relu", "hinge", "parity", "dense"),
                                               ("linear", "squared_hinge", "sum", "tree")])
def test_gradient_moments_vs_reference(act, loss, out, topo):
    cfg, net, fields, v, W, W0, X, y, kw = problem(act, out, loss, topo, 9, P=15,
                                                   output_scale=1.3, weight_decay=0.02)
    K, F = W.shape
    G = np.empty((K, F))
    sigma2, G2 = cv.gradient_moments(cfg, W, W0, fields, v, X, y, np.empty((15, K)), G,
                                     np.empty(K), np.empty(K), np.empty(K))
    want = ref.gradient_noise(net, W, W0, X, y, 1, **kw)
    np.testing.assert_allclose([sigma2, G2], [want["sigma2"], want["G2"]], rtol=1e-10)
    np.testing.assert_allclose(G + kw["weight_decay"] * W, ref.objective_gradient(net, W, W0, X, y, **kw),
                               rtol=1e-10, atol=1e-14)


def test_minibatch_variance_by_simulation():
    """E|g_B - G|^2 over simulated batches of m distinct samples equals sigma2/m (P-m)/(P-1),
    with replacement sigma2/m; each formula is rejected for the other sampling at m = P/2."""
    cfg, net, fields, v, W, W0, X, y, kw = problem("tanh", "sum", "square", "dense", 10, P=24)
    g = ref.per_sample_gradients(net, W, W0, X, y, loss="square", margin=1.0, output_scale=0.0)
    g = g.reshape(len(X), -1)
    G = g.mean(axis=0)
    P = len(X)
    rng = np.random.default_rng(0)
    n_sim = 20000
    for m in (1, 3, 12, 23):
        for replacement in (False, True):
            want = ref.gradient_noise(net, W, W0, X, y, m, replacement=replacement, **kw)["grad_noise"]
            idx = (rng.integers(0, P, (n_sim, m)) if replacement
                   else np.argsort(rng.random((n_sim, P)), axis=1)[:, :m])
            dev = ((g[idx].mean(axis=1) - G) ** 2).sum(axis=1)
            se = dev.std(ddof=1) / math.sqrt(n_sim)
            assert abs(dev.mean() - want) < NSE * se, (m, replacement, dev.mean(), want, se)
            if m == 12:     # the factor (P - m)/(P - 1) = 0.52 is resolved: the other formula fails
                other = ref.gradient_noise(net, W, W0, X, y, m, replacement=not replacement, **kw)["grad_noise"]
                assert abs(dev.mean() - other) > 10 * se
    # m = P: the batch is the training set, no noise at all
    assert ref.gradient_noise(net, W, W0, X, y, P, **kw)["grad_noise"] == 0.0


# ------------------------------------------------------------------------------------------
# 4. end to end: ps.train(measure=...)
# ------------------------------------------------------------------------------------------
def _ref_measures(net, W, W0, X, y, m, kw):
    H = ref.objective_hessian(net, W, W0, X, y, **kw)
    gn = ref.gradient_noise(net, W, W0, X, y, m, **kw)
    return dict(grad_noise=gn["grad_noise"], noise_scale=gn["noise_scale"],
                sharpness=np.linalg.eigvalsh(H).max(), hessian_trace=np.trace(H))


def test_linear_perceptron_square_loss_hessian_is_XtX_over_NP():
    """h = w.x/sqrt(N), loss (f - y)^2/2: Hess = X^T X / (N P) (+ weight decay), whatever w."""
    rng = np.random.default_rng(3)
    N, n = 10, 50
    X = rng.standard_normal((n, N)) * rng.uniform(0.5, 2.0, N)      # anisotropic inputs
    y = X @ rng.standard_normal(N) / math.sqrt(N) + 0.3 * rng.standard_normal(n)
    data = ps.Dataset.from_arrays(X, y, test_fraction=0.2)
    student = ps.Perceptron(N=N, activation="linear", output="sum")
    for wd in (0.0, 0.05):
        res = ps.train(None, student, ps.SGD(lr=0.05, batch_size=5, weight_decay=wd), data,
                       steps=40, replicas=2, record=3, seed=4, measure=ALL)
        perm = np.random.default_rng(np.random.SeedSequence([4, 2**31])).permutation(n)
        Xtr = X[perm[:data.P]]
        H = Xtr.T @ Xtr / (N * data.P)
        np.testing.assert_allclose(res.sharpness, np.linalg.eigvalsh(H).max() + wd, rtol=1e-8)
        np.testing.assert_allclose(res.hessian_trace, np.trace(H) + wd * N, rtol=1e-12)
        assert np.ptp(res.sharpness) < 1e-8 * res.sharpness.max()   # weight independent


E2E = {
    "erf_soft_committee": (dict(N=12, K=2, activation="erf"), dict(N=12, K=2, activation="erf"),
                           ps.SGD(lr=0.5, batch_size=4), ps.Dataset(P=20), dict(steps=30)),
    "tanh_tree_sign_logistic_scaled": (
        dict(N=12, K=3, activation="tanh", output="sign", topology="tree", d=4),
        dict(N=12, K=3, activation="sign", output="sign", topology="tree", d=4),
        ps.SGD(lr=0.3, batch_size=3, loss="logistic", output_scale=2.0, weight_decay=0.01),
        ps.Dataset(P=15, batches="independent", test_size=50), dict(epochs=4)),
    "relu_parity_squared_hinge": (
        dict(N=8, K=2, activation="relu", output="parity", topology="tree", d=4),
        dict(N=8, K=2, activation="sign", output="parity", topology="tree", d=4),
        ps.SGD(lr=0.2, batch_size=2, loss="squared_hinge", momentum=0.5), ps.Dataset(P=10, test_size=50),
        dict(epochs=5)),
    "linear_perceptron_hinge_stop": (
        dict(N=10, K=1, activation="linear", output="sign"), dict(N=10, K=1, activation="sign", output="sign"),
        ps.SGD(lr=0.5, batch_size=2, loss="hinge", margin=0.3), ps.Dataset(P=8, test_size=50),
        dict(epochs=30, stop="zero_loss")),
}


@pytest.mark.parametrize("case", list(E2E))
def test_train_measures_vs_reference(case):
    s_kw, t_kw, algo, data, run = E2E[case]
    student, teacher = ps.Committee(**s_kw), ps.Committee(**t_kw)
    R = 3
    res = ps.train(teacher, student, algo, data, replicas=R, record=4, seed=5, measure=ALL, **run)
    kw = dict(loss=algo.loss, margin=algo.margin, output_scale=algo.output_scale or 0.0,
              weight_decay=algo.weight_decay)
    for r in range(R):
        X, y, Wt, ft, W0, fs = ref.replica_training_set(teacher, student, data, 5, r, R)
        net = ref.Net(student.activation, student.output, np.ones(student.K), fs,
                      student.topology == "dense")
        want = _ref_measures(net, res.weights[r], W0, X, y, algo.batch_size, kw)
        for name in ALL:       # the last record is the final state (also after an early stop)
            np.testing.assert_allclose(getattr(res, name)[r, -1], want[name], rtol=1e-8,
                                       atol=1e-12, err_msg=f"{name} replica {r}")
        # step 0: the initial weights
        want0 = _ref_measures(net, W0, W0, X, y, algo.batch_size, kw)
        np.testing.assert_allclose(res.sharpness[r, 0], want0["sharpness"], rtol=1e-8)
        np.testing.assert_allclose(res.grad_noise[r, 0], want0["grad_noise"], rtol=1e-10)
    if "stop" in case:
        assert np.all(res.stopped_at < res.steps[-1])
        assert np.all(res.sharpness[:, -1] == 0.0)     # hinge at zero loss: no curvature left
        assert np.all(res.grad_noise[:, -1] == 0.0)


def test_measuring_does_not_change_the_trajectory_and_threads_do_not_matter():
    s_kw, t_kw, algo, data, run = E2E["tanh_tree_sign_logistic_scaled"]
    student, teacher = ps.Committee(**s_kw), ps.Committee(**t_kw)
    kw = dict(replicas=4, record=5, seed=8, **run)
    plain = ps.train(teacher, student, algo, data, **kw)
    meas = ps.train(teacher, student, algo, data, measure=ALL, **kw)
    meas1 = ps.train(teacher, student, algo, data, measure=ALL, threads=1, **kw)
    assert plain.grad_noise is None and plain.sharpness is None
    for name in ps.TrainResult.ARRAYS + ps.TrainResult.STATIONARY + ("window", "weights"):
        np.testing.assert_array_equal(getattr(plain, name), getattr(meas, name), err_msg=name)
    assert meas == meas1
    assert np.all(np.isfinite(meas.sharpness)) and np.all(np.isfinite(meas.grad_noise))
    assert meas.params["run"]["measure"] == ALL


def test_diverged_replicas_measure_nan():
    student = ps.Perceptron(N=8, activation="linear", output="sum")
    res = ps.train(student, student, ps.SGD(lr=1e150), ps.Dataset(P=6), steps=30, replicas=2,
                   record=5, measure=["sharpness", "grad_noise"])
    assert res.diverged.all()
    assert np.isfinite(res.sharpness[:, 0]).all() and np.isnan(res.sharpness[:, -1]).all()


def test_online_gradient_noise_linear_perceptron_exact():
    """Linear perceptron, square loss, linear teacher, Gaussian inputs, label noise s:
    tr Cov(g) = |e|^2 (N+1)/N^2 + s^2 with e = w - w* (Gaussian fourth moments), E g = e/N;
    grad_noise = tr Cov / m exactly (fresh samples). Checked at step 0 on test_size samples
    per replica; the tolerance is 4 standard errors of the replicas' ratios."""
    N, m, s, R = 20, 5, 0.5, 48
    model = ps.Perceptron(N=N, activation="linear", output="sum")
    res = ps.train(model, model, ps.SGD(lr=0.01, batch_size=m), ps.Online(label_noise=s, test_size=4000),
                   steps=1, replicas=R, record=np.array([0, 1]), seed=2, init_scale=2.0,
                   measure=["grad_noise", "noise_scale"])
    W0 = np.stack([ref.setup_replica(model, model, 2, r, 2.0)[2] for r in range(R)])
    e2 = ((W0 - res.teacher_weights) ** 2).sum(axis=(1, 2))
    sigma2 = e2 * (N + 1) / N**2 + s**2
    ratio = res.grad_noise[:, 0] * m / sigma2
    assert abs(ratio.mean() - 1) < NSE * ratio.std(ddof=1) / math.sqrt(R), ratio
    assert ratio.std() < 0.1               # each estimate is ~ sqrt(2/4000) relative, plus kurtosis
    # without the +1 (a wrong fourth moment) the mean ratio would be off by |e|^2/N^2 / sigma2
    wrong = res.grad_noise[:, 0] * m / (e2 * N / N**2 + s**2)
    assert abs(wrong.mean() - 1) > NSE * wrong.std(ddof=1) / math.sqrt(R)
    ns = res.noise_scale[:, 0] / (sigma2 / (e2 / N**2))
    assert abs(np.median(ns) - 1) < 0.2    # a ratio of two estimates: only the median is stable


def test_sgd_updates_realise_the_measured_noise():
    """The first SGD step of many replicas from one start on one training set (user data):
    g_B = (w0 - w1)/lr over the replicas' own first batches (epochs: a shuffled order's first
    slice; independent: a partial Fisher-Yates draw) has E|g_B - G|^2 = res.grad_noise at
    step 0, the without-replacement value; the with-replacement value is rejected at m = P/2."""
    rng = np.random.default_rng(12)
    N, n, K = 6, 40, 2
    X = rng.standard_normal((n, N))
    y = np.tanh(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2]
    student = ps.Committee(N=N, K=K, activation="erf")
    W0 = rng.standard_normal((K, N))
    lr = 1e-3
    for batches in ("epochs", "independent"):
        data = ps.Dataset.from_arrays(X, y, test_fraction=0.2, batches=batches)
        P = data.P
        for m in (1, 4, P // 2):
            R = 3000
            res = ps.train(None, student, ps.SGD(lr=lr, batch_size=m), data, steps=1, replicas=R,
                           record=np.array([0, 1]), seed=1, init=W0, measure=["grad_noise"])
            gB = ((W0[None] - res.weights) / lr).reshape(R, -1)
            full = ps.train(None, student, ps.SGD(lr=lr, batch_size=P), data, steps=1, replicas=1,
                            record=np.array([0, 1]), seed=1, init=W0)
            G = ((W0 - full.weights[0]) / lr).ravel()
            dev = ((gB - G) ** 2).sum(axis=1)
            se = dev.std(ddof=1) / math.sqrt(R)
            want = res.grad_noise[0, 0]
            assert np.all(res.grad_noise[:, 0] == want)
            assert abs(dev.mean() - want) < NSE * se, (batches, m, dev.mean(), want, se)
            if m == P // 2:
                with_repl = want * (P - 1) / (P - m)
                assert abs(dev.mean() - with_repl) > 10 * se


# ------------------------------------------------------------------------------------------
# 5. storage, table columns, bad arguments
# ------------------------------------------------------------------------------------------
def test_measures_round_trip_hdf5_and_table(tmp_path):
    import analysis as an
    s_kw, t_kw, algo, data, run = E2E["erf_soft_committee"]
    student, teacher = ps.Committee(**s_kw), ps.Committee(**t_kw)
    res = ps.train(teacher, student, algo, data, replicas=2, record=3, seed=1, measure=ALL, **run)
    path = tmp_path / "r.h5"
    res.to_hdf5(path)
    back = ps.load(path)
    assert back == res
    for name in ALL:
        np.testing.assert_array_equal(getattr(back, name), getattr(res, name))
    tab = an.load(str(path))
    for name in ("grad_noise", "sharpness"):
        np.testing.assert_array_equal(tab[name], getattr(res, name)[:, -1])


def test_bad_measure_arguments():
    t = ps.Committee(N=12, K=2, activation="erf")
    b = ps.Committee(N=12, K=3, activation="sign", output="sign", topology="tree", d=4, weights="binary")
    sgd, data = ps.SGD(lr=0.1), ps.Dataset(P=20)
    with pytest.raises(ValueError, match="measure='curvature' is not allowed"):
        ps.train(t, t, sgd, data, steps=2, measure=["curvature"])
    with pytest.raises(ValueError, match="measure=3 must be"):
        ps.train(t, t, sgd, data, steps=2, measure=3)
    with pytest.raises(ValueError, match=r"needs ps.SGD .* Greedy with binary weights"):
        ps.train(b, b, ps.Greedy(batch_size=4), data, steps=2, measure="sharpness")
    with pytest.raises(ValueError, match=r"measure=\['sharpness'\] is a property of the training loss"):
        ps.train(t, t, sgd, ps.Online(), steps=2, measure=["grad_noise", "sharpness"])
    with pytest.raises(ValueError, match="test_size=1 is too few"):
        ps.train(t, t, sgd, ps.Online(test_size=1), steps=2, measure="grad_noise")
    with pytest.raises(ValueError, match="needs engine='direct'"):
        ps.train(t, t, sgd, ps.Online(), steps=2, measure="grad_noise", engine="overlaps")
