"""The numba kernels against the slow NumPy reference in tests/reference.py (STUMPY style).

Deterministic comparisons use a relative tolerance of ~1e-12 (the two codes sum in different
orders); statistical ones (Monte Carlo eps_g, RNG moments) use 4 standard errors computed from the
samples, or a chi^2 p-value > 1e-4, with fixed seeds.
"""
import importlib
import itertools
import math
import os
import sys

import numpy as np
import pytest
from scipy import stats

import physsgd as ps
from physsgd.kernels import config as kc, network, observables as obs, rng as krng, samples, steps

sys.path.insert(0, os.path.dirname(__file__))
import reference as ref  # noqa: E402

ptrain = importlib.import_module("physsgd.train")   # the module (ps.train is the function)

ACT = {name: i for i, name in enumerate(ref.ACTIVATIONS)}
OUT = {name: i for i, name in enumerate(ref.OUTPUTS)}
LOSS = {name: i for i, name in enumerate(ref.LOSSES)}
TIES = {"accept": steps.TIE_ACCEPT, "reject": steps.TIE_REJECT, "random": steps.TIE_RANDOM}
RTOL, ATOL = 1e-12, 1e-12
NSE = 4.0     # statistical tolerance in standard errors


def close(a, b, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


def make_cfg(**kw):
    """A KernelConfig with the same field types as physsgd.train._kernel_config produces."""
    base = dict(algo=steps.SGD_ALGO, N=12, act_s=ACT["erf"], out_s=OUT["sum"], act_t=0, out_t=0,
                dense_s=True, dense_t=True, fan_in_t=1, loss=LOSS["square"], margin=1.0,
                output_scale=0.0, lr=0.1, momentum=0.0, weight_decay=0.0, batch_size=1,
                temperature=0.0, ties=TIES["accept"], new_batch_per_proposal=False,
                inputs=kc.INPUT_GAUSSIAN, chi=0.0, label_noise=0.0, P=0, user_data=False,
                independent_batches=False, test_size=1, eg_mode=obs.EG_TESTSET, success_eps=0.0,
                stop_rule=kc.STOP_NONE, check_every=1, exact_votes=None, teacher_rule=kc.RULE_EPS,
                sign_flips=False, total_steps=1, probe_every=1, window_start=1, window_stop=1,
                batch_eps=False)
    base.update(kw)
    if base["exact_votes"] is None:      # as _kernel_config: sign units with the default read-out
        base["exact_votes"] = base["act_s"] == ACT["sign"]
    return kc.KernelConfig(**base)


def make_fields(topology, K, N, d, rng):
    """(fields, dense, F) in the kernels' layout."""
    if topology == "dense":
        return np.zeros((K, 1), np.int64), True, N
    if topology == "tree":
        return np.arange(K * d, dtype=np.int64).reshape(K, d), False, d
    return np.stack([np.sort(rng.choice(N, d, replace=False)) for _ in range(K)]).astype(np.int64), False, d


def test_codes_match_the_driver():
    assert {n: kc.ACTIVATION_CODES[n] for n in ref.ACTIVATIONS} == ACT
    assert {n: kc.OUTPUT_CODES[n] for n in ref.OUTPUTS} == OUT
    assert {n: kc.LOSS_CODES[n] for n in ref.LOSSES} == LOSS
    assert {n: kc.TIE_CODES[n] for n in TIES} == TIES


# ------------------------------------------------------------------------------------------
# 1. network: fields, outputs, derivatives, losses
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("topology", ["dense", "tree", "random"])
def test_fields_output_and_gradient(topology):
    rng = np.random.default_rng(11)
    N, K, d = 12, 3, 4
    fields, dense, F = make_fields(topology, K, N, d, rng)
    v = rng.standard_normal(K)
    h = np.empty(K)
    dfdh = np.empty(K)
    for trial in range(20):
        W = rng.standard_normal((K, F))
        x = rng.standard_normal(N) * (3.0 if trial % 2 else 1.0)
        network.unit_fields(W, fields, dense, x, h)
        H = ref.preactivations(W, fields, dense, x)[0]
        close(h, H)
        for act, out in itertools.product(ref.ACTIVATIONS, ref.OUTPUTS):
            f = network.output(ACT[act], OUT[out], v, h)
            close(f, ref.network_output(act, out, v, H[None])[0])
            assert network.predict(OUT[out], f) == ref.predict(out, f)
            network.output_grad(ACT[act], OUT[out], v, h, dfdh)
            close(dfdh, ref.output_gradient(act, out, v, H[None])[0])
            if act == "sign" or (act == "relu" and np.min(np.abs(h)) < 1e-4):
                continue
            # central finite differences of the kernel's own output
            eps = 1e-6
            fd = np.empty(K)
            for k in range(K):
                hp, hm = h.copy(), h.copy()
                hp[k] += eps
                hm[k] -= eps
                fd[k] = (network.output(ACT[act], OUT[out], v, hp)
                         - network.output(ACT[act], OUT[out], v, hm)) / (2 * eps)
            close(dfdh, fd, rtol=1e-6, atol=1e-7)


def test_sign_activation_and_ties():
    v = np.ones(3)
    for out in ("sign", "parity"):
        assert network.output(ACT["sign"], OUT[out], v, np.zeros(3)) == ref.network_output(
            "sign", out, v, np.zeros((1, 3)))[0]
    assert network.sign(0.0) == 1.0 == ref.sign(0.0)
    assert network.predict(OUT["sign"], 0.0) == 1.0
    assert network.g(ACT["relu"], 0.0) == 0.0 and network.g_prime(ACT["relu"], 0.0) == 0.0


@pytest.mark.parametrize("loss", ref.LOSSES)
def test_loss_value_and_gradient(loss):
    rng = np.random.default_rng(3)
    for margin in (0.0, 0.5, 1.0):
        Fs = np.concatenate([rng.standard_normal(40) * 3, [-700.0, -40.0, 40.0, 700.0]])
        ys = [-1.0, 1.0] + ([0.3, -2.1] if loss == "square" else [])
        for F, y in itertools.product(Fs, ys):
            val = network.loss_value(LOSS[loss], F, y, margin)
            grad = network.loss_grad(LOSS[loss], F, y, margin)
            assert np.isfinite(val) and np.isfinite(grad)
            close(val, ref.loss_value(loss, F, y, margin))
            close(grad, ref.loss_derivative(loss, F, y, margin))
            if abs(margin - y * F) > 1e-3 and abs(F) < 50:
                eps = 1e-6
                fd = (network.loss_value(LOSS[loss], F + eps, y, margin)
                      - network.loss_value(LOSS[loss], F - eps, y, margin)) / (2 * eps)
                close(grad, fd, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------------------------------
# 2. SGD step
# ------------------------------------------------------------------------------------------
OPTIMIZERS = [dict(momentum=0.0, weight_decay=0.0, output_scale=None),
              dict(momentum=0.9, weight_decay=0.0, output_scale=None),
              dict(momentum=0.0, weight_decay=0.05, output_scale=2.5),
              dict(momentum=0.5, weight_decay=0.01, output_scale=0.3)]


@pytest.mark.parametrize("topology", ["dense", "tree", "random"])
@pytest.mark.parametrize("loss", ref.LOSSES)
def test_sgd_step(topology, loss):
    rng = np.random.default_rng(hash((topology, loss)) % 2**32)
    N, K, d, m, n_steps = 12, 3, 4, 5, 4
    fields, dense, F = make_fields(topology, K, N, d, rng)
    h, h0, dfdh, C = np.empty(K), np.empty(K), np.empty(K), np.empty((m, K))
    for act, out, opt in itertools.product(("erf", "tanh", "relu", "linear"), ref.OUTPUTS, OPTIMIZERS):
        v = rng.uniform(0.5, 1.5, K)
        net = ref.Net(act, out, v, fields, dense)
        cfg = make_cfg(act_s=ACT[act], out_s=OUT[out], dense_s=dense, N=N, loss=LOSS[loss], margin=0.7,
                       output_scale=float(opt["output_scale"] or 0.0), lr=0.3,
                       momentum=opt["momentum"], weight_decay=opt["weight_decay"], batch_size=m)
        W = rng.standard_normal((K, F))
        W0 = W.copy()
        Wr, bufr = W.copy(), np.zeros((K, F))
        buf = np.zeros((K, F))
        for _ in range(n_steps):
            X = rng.standard_normal((m, N))
            y = (rng.standard_normal(m) if (out == "sum" and loss == "square")
                 else rng.choice([-1.0, 1.0], m))
            err, finite = steps.sgd_step(cfg, W, W0, fields, v, buf, C, X, y, h, h0, dfdh)
            Wr, bufr, errr, finiter = ref.sgd_step(
                net, Wr, W0, bufr, X, y, loss=loss, margin=0.7, output_scale=opt["output_scale"],
                lr=0.3, momentum=opt["momentum"], weight_decay=opt["weight_decay"])
            close(W, Wr, rtol=1e-11)
            if opt["momentum"] > 0:
                close(buf, bufr, rtol=1e-11)
            close(err, errr)
            assert finite == finiter
        assert np.max(np.abs(W - W0)) > 0 or act == "relu"


def test_sgd_step_reports_divergence():
    K, N = 1, 4
    fields = np.zeros((1, 1), np.int64)
    cfg = make_cfg(act_s=ACT["linear"], N=N, lr=1e308)
    W = np.ones((K, N))
    X = np.full((1, N), 1e10)
    err, finite = steps.sgd_step(cfg, W, W.copy(), fields, np.ones(K), np.zeros((K, N)),
                                 np.empty((1, K)), X, np.array([-1e10]), np.empty(K), np.empty(K),
                                 np.empty(K))
    assert not finite and not np.all(np.isfinite(W))


# ------------------------------------------------------------------------------------------
# 3. Greedy / Metropolis sweeps
# ------------------------------------------------------------------------------------------
def _greedy_case(arch, rng):
    """(net, cfg pieces) for a small binary-weight classifier on +-1 inputs."""
    table = {  # name: (K, d, topology, activation, output)
        "tree_majority": (3, 5, "tree", "sign", "sign"),
        "tree_parity": (3, 4, "tree", "sign", "parity"),
        "dense_majority": (3, 9, "dense", "sign", "sign"),
        "dense_parity": (2, 8, "dense", "sign", "parity"),
        "perceptron": (1, 11, "dense", "sign", "sign"),
        "random_majority": (3, 5, "random", "sign", "sign"),
        # fan-ins whose raw field sums do not survive (a / sqrt(F)) * sqrt(F) exactly
        "tree_majority_d12": (3, 12, "tree", "sign", "sign"),
        "dense_parity_d12": (2, 12, "dense", "sign", "parity"),
        # non-sign activations: f = 0 ties (erf(a) + erf(-a), all relu units off)
        "tree_erf_K2": (2, 3, "tree", "erf", "sign"),
        "tree_relu_K2": (2, 6, "tree", "relu", "sign"),
    }
    K, d, topology, act, out = table[arch]
    N = K * d if topology == "tree" else (d if topology == "dense" else 2 * d + 1)
    fields, dense, F = make_fields(topology, K, N, d, rng)
    return K, N, F, fields, dense, act, out


SIGN_ARCHS = ["tree_majority", "tree_parity", "dense_majority", "dense_parity", "perceptron",
              "random_majority"]
RULES = [(0.0, "accept"), (0.0, "reject"), (0.0, "random"), (0.8, "accept"), (0.8, "reject"),
         (0.8, "random")]


def _compare_greedy(arch, temperature, ties, n_sweeps=4, m=9, seed=0):
    rng = np.random.default_rng(seed)
    K, N, F, fields, dense, act, out = _greedy_case(arch, rng)
    v = np.ones(K)
    net = ref.Net(act, out, v, fields, dense)
    teacher = ref.Net(act, out, v, fields, dense)
    Wt = rng.choice([-1.0, 1.0], (K, F))
    cfg = make_cfg(algo=steps.GREEDY_ALGO, N=N, act_s=ACT[act], out_s=OUT[out], dense_s=dense,
                   temperature=temperature, ties=TIES[ties], batch_size=m, inputs=kc.INPUT_BINARY)
    W = rng.choice([-1.0, 1.0], (K, F))
    Wr = W.copy()
    s = krng.seed_states(seed, 1, 7)[0]
    sr = s.copy()
    order, order_r = np.arange(K * F), np.arange(K * F)
    H, f, wrong = np.empty((K, m)), np.empty(m), np.zeros(m, np.int64)
    n_accepted = 0
    for _ in range(n_sweeps):
        X = rng.choice([-1.0, 1.0], (m, N))
        y = teacher.label(Wt, X)
        if rng.uniform() < 0.3:
            y[0] = -y[0]                   # an unrealisable sample now and then
        err = steps.greedy_sweep(cfg, s, W, fields, v, X.T.copy(), y, H, f, wrong, order)
        Wr, err_r, accepted = ref.greedy_sweep(net, sr, Wr, X, y, order_r, temperature, ties)
        n_accepted += len(accepted)
        np.testing.assert_array_equal(order, order_r)     # same random order
        np.testing.assert_array_equal(W, Wr)              # same accepted flips
        assert err == err_r
        np.testing.assert_array_equal(s, sr)              # same number of draws consumed
    return n_accepted


@pytest.mark.parametrize("temperature,ties", RULES)
@pytest.mark.parametrize("arch", SIGN_ARCHS)
def test_greedy_sweep(arch, temperature, ties):
    for seed in range(3):
        _compare_greedy(arch, temperature, ties, seed=seed)


@pytest.mark.parametrize("arch", SIGN_ARCHS[:2])
def test_propose_flip_one_by_one(arch):
    """Every single proposal's accepted dE equals the reference's energy difference."""
    rng = np.random.default_rng(5)
    K, N, F, fields, dense, act, out = _greedy_case(arch, rng)
    v, m = np.ones(K), 11
    net = ref.Net(act, out, v, fields, dense)
    cfg = make_cfg(algo=steps.GREEDY_ALGO, N=N, act_s=ACT[act], out_s=OUT[out], dense_s=dense,
                   temperature=0.5, ties=TIES["random"], batch_size=m)
    W = rng.choice([-1.0, 1.0], (K, F))
    X = rng.choice([-1.0, 1.0], (m, N))
    y = rng.choice([-1.0, 1.0], m)
    H, f, wrong = np.empty((K, m)), np.empty(m), np.zeros(m, np.int64)
    XT = X.T.copy()                    # the kernels take the batch one sample per column
    E = steps.batch_state(cfg, W, fields, v, XT, y, H, f, wrong)
    assert E == ref.energy(net, W, X, y)
    s = krng.seed_states(1, 1, 3)[0]
    sr = s.copy()
    Wr = W.copy()
    for idx in rng.integers(0, K * F, 60):
        dE = steps.propose_flip(cfg, s, W, fields, v, XT, y, H, f, wrong, idx)
        Wr, dEr = ref.propose(net, sr, Wr, X, y, idx, 0.5, "random")
        assert dE == dEr
        np.testing.assert_array_equal(W, Wr)
        np.testing.assert_array_equal(wrong, net.label(Wr, X) != y)


def test_batch_state_raw_fields_are_exact_integers():
    N, m = 12, 1
    cfg = make_cfg(algo=steps.GREEDY_ALGO, N=N, act_s=ACT["sign"], out_s=OUT["sign"])
    W = np.array([[-1.0] * 9 + [1.0] * 3])        # raw field -6 on x = 1
    X, y = np.ones((m, N)), np.ones(m)
    H, f, wrong = np.empty((1, m)), np.empty(m), np.zeros(m, np.int64)
    steps.batch_state(cfg, W, np.zeros((1, 1), np.int64), np.ones(1), X.T.copy(), y, H, f, wrong)
    assert H[0, 0] == ref.raw_fields(W, None, True, X)[0, 0] == -6.0


def test_propose_flip_reaches_exact_tie():
    N, m = 12, 1
    cfg = make_cfg(algo=steps.GREEDY_ALGO, N=N, act_s=ACT["sign"], out_s=OUT["sign"],
                   ties=TIES["accept"])
    net = ref.Net("sign", "sign", np.ones(1), None, True)
    W = np.array([[-1.0] * 9 + [1.0] * 3])        # raw field -6: label -1, teacher says +1
    X, y = np.ones((m, N)), np.ones(m)
    fields = np.zeros((1, 1), np.int64)
    H, f, wrong = np.empty((1, m)), np.empty(m), np.zeros(m, np.int64)
    XT = X.T.copy()
    steps.batch_state(cfg, W, fields, np.ones(1), XT, y, H, f, wrong)
    s = krng.seed_states(0, 1, 0)[0]
    Wr, dE_ref, dE_kernel = W.copy(), [], []
    for idx in (0, 1, 2):                          # -6 -> -4 -> -2 -> 0: the last flip fixes it
        dE_kernel.append(steps.propose_flip(cfg, s, W, fields, np.ones(1), XT, y, H, f, wrong, idx))
        Wr, dE = ref.propose(net, s, Wr, X, y, idx, 0.0, "accept")
        dE_ref.append(dE)
    assert dE_ref == [0, 0, -1]
    assert dE_kernel == dE_ref


@pytest.mark.parametrize("arch", ["tree_majority_d12", "dense_parity_d12"])
def test_greedy_sweep_even_fan_in(arch):
    for seed in range(10):
        _compare_greedy(arch, 0.0, "accept", n_sweeps=6, m=16, seed=seed)


@pytest.mark.parametrize("arch", ["tree_erf_K2", "tree_relu_K2"])
def test_greedy_sweep_non_sign_activation(arch):
    for seed in range(10):
        _compare_greedy(arch, 0.0, "accept", n_sweeps=6, m=16, seed=seed)


# ------------------------------------------------------------------------------------------
# 4. observables
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("topo_s,topo_t", [("dense", "dense"), ("tree", "tree"), ("random", "dense"),
                                           ("dense", "random"), ("random", "tree")])
def test_overlaps(topo_s, topo_t):
    rng = np.random.default_rng(2)
    N = 12
    fs, dense_s, Fs = make_fields(topo_s, 3, N, 4, rng)
    ft, dense_t, Ft = make_fields(topo_t, 2, N, 6, rng)
    Ws = rng.standard_normal((3 if not dense_s else 2, Fs))
    fs = fs[:Ws.shape[0]]
    Wt = rng.standard_normal((2, Ft))
    R_ref, Q_ref, T_ref = ref.overlaps(Ws, fs, dense_s, Wt, ft, dense_t, N)
    Wt_full, Ws_full = np.empty((2, N)), np.empty((Ws.shape[0], N))
    obs.embed(Wt, ft, dense_t, N, Wt_full)
    obs.embed(Ws, fs, dense_s, N, Ws_full)
    close(Wt_full, ref.embed(Wt, ft, dense_t, N))
    R, Q, T = np.empty_like(R_ref), np.empty_like(Q_ref), np.empty_like(T_ref)
    obs.overlaps_with(Ws, fs, dense_s, Wt_full, math.sqrt(Fs * Ft), R)
    obs.overlaps_with(Ws, fs, dense_s, Ws_full, Fs, Q)
    obs.overlaps_with(Wt, ft, dense_t, Wt_full, Ft, T)
    close(R, R_ref)
    close(Q, Q_ref)
    close(T, T_ref)
    # overlaps are the covariances of the pre-activations under N(0, I) inputs (exact identity)
    Hs = ref.preactivations(Ws, fs, dense_s, np.eye(N))
    Ht = ref.preactivations(Wt, ft, dense_t, np.eye(N))
    close(R, Hs.T @ Ht)
    close(Q, Hs.T @ Hs)


# (student, teacher, closed-form mode): tiny networks where each formula is exact
EPS_CASES = {
    "erf": (dict(N=12, K=3, activation="erf", output="sum", topology="random", d=5,
                 second_layer=(1.0, 0.5, -0.7)),
            dict(N=12, K=2, activation="erf", output="sum", second_layer=(1.2, 0.8)), obs.EG_ERF),
    "linear": (dict(N=12, K=2, activation="linear", output="sum", topology="tree", d=6,
                    second_layer=(0.6, -1.1)),
               dict(N=12, K=3, activation="linear", output="sum"), obs.EG_LINEAR),
    "arccos": (dict(N=12, K=1, activation="tanh", output="sign", topology="random", d=7),
               dict(N=12, K=1, activation="sign", output="sign"), obs.EG_ARCCOS),
    "tree_majority": (dict(N=15, K=5, activation="sign", output="sign", topology="tree", d=3),
                      dict(N=15, K=5, activation="sign", output="sign", topology="tree", d=3),
                      obs.EG_TREE_MAJORITY),
    "tree_parity": (dict(N=12, K=3, activation="erf", output="parity", topology="tree", d=4),
                    dict(N=12, K=3, activation="sign", output="parity", topology="tree", d=4),
                    obs.EG_TREE_PARITY),
}


def _eps_setup(mode, rng):
    s_kw, t_kw, code = EPS_CASES[mode]
    nets, Ws = [], []
    for kw in (s_kw, t_kw):
        K, N = kw["K"], kw["N"]
        d = kw.get("d", N)
        fields, dense, F = make_fields(kw.get("topology", "dense"), K, N, d, rng)
        v = np.asarray(kw.get("second_layer", np.ones(K)), float)
        nets.append(ref.Net(kw["activation"], kw["output"], v, fields, dense))
        Ws.append(rng.standard_normal((K, F)))
    (snet, tnet), (W, Wt) = nets, Ws
    if mode in ("tree_majority", "tree_parity"):   # a student correlated with the teacher
        W = np.where(rng.uniform(size=W.shape) < 0.7, Wt, W)
    if mode == "arccos":                           # the teacher's weights on the student's field
        W = ref.embed(Wt, tnet.fields, tnet.dense, s_kw["N"])[:, snet.fields[0]] + 0.4 * W
    R, Q, T = ref.overlaps(W, snet.fields, snet.dense, Wt, tnet.fields, tnet.dense, s_kw["N"])
    return snet, tnet, W, Wt, R, Q, T, code


def _student_teacher_specs(mode):
    s_kw, t_kw, _ = EPS_CASES[mode]
    return ps.Committee(**s_kw), ps.Committee(**t_kw)


@pytest.mark.parametrize("mode", list(EPS_CASES))
def test_eps_closed_form_vs_reference(mode):
    rng = np.random.default_rng(21)
    # the driver picks this closed form for this pair of architectures
    st, te = _student_teacher_specs(mode)
    algo = ps.SGD(lr=0.1) if st.weights == "gaussian" else ps.Greedy()
    assert ptrain.eps_g_mode(te, st, algo, ps.Online()) == EPS_CASES[mode][2]
    assert ref.closed_form_mode(te, st, algo, ps.Online()) == mode
    for _ in range(5):
        snet, tnet, W, Wt, R, Q, T, code = _eps_setup(mode, rng)
        kernel = obs.eps_closed_form(code, Q, R, T, snet.v, tnet.v)
        close(kernel, ref.eps_closed_form(mode, Q, R, T, snet.v, tnet.v))


@pytest.mark.parametrize("mode", list(EPS_CASES))
def test_eps_closed_form_vs_monte_carlo(mode):
    rng = np.random.default_rng(100 + list(EPS_CASES).index(mode))
    snet, tnet, W, Wt, R, Q, T, code = _eps_setup(mode, rng)
    kernel = obs.eps_closed_form(code, Q, R, T, snet.v, tnet.v)
    mean, se = ref.eps_monte_carlo(snet, W, tnet, Wt, EPS_CASES[mode][0]["N"], 400_000, rng)
    assert abs(kernel - mean) < NSE * se, (kernel, mean, se)


@pytest.mark.parametrize("K", [1, 3, 5, 7])
def test_majority_flip_vs_enumeration(K):
    rng = np.random.default_rng(K)
    for _ in range(5):
        p = rng.uniform(0, 0.5, K)
        close(obs.majority_flip(p), ref.eps_tree_majority(p))
    close(obs.majority_flip(np.zeros(K)), 0.0)


def test_flip_probability_edges():
    for R, Q, T in [(1.0, 1.0, 1.0), (-1.0, 1.0, 1.0), (0.0, 2.0, 3.0), (1.0 + 1e-15, 1.0, 1.0),
                    (0.3, 0.0, 1.0), (0.4, 0.5, 0.9)]:
        close(obs.flip_probability(R, Q, T), ref.flip_probability(R, Q, T))


# ------------------------------------------------------------------------------------------
# 5. end to end: ps.train against the pure-NumPy driver
# ------------------------------------------------------------------------------------------
_USER_X = np.random.default_rng(77).standard_normal((40, 6))
E2E = {
    "sgd_erf_online_momentum": (
        dict(N=12, K=2, activation="erf"), dict(N=12, K=2, activation="erf"),
        ps.SGD(lr=0.7, batch_size=3, momentum=0.5, weight_decay=0.01), ps.Online(),
        dict(steps=20, record=5, replicas=3)),
    "sgd_linear_random_shared_noise_alpha": (
        dict(N=12, K=2, activation="linear", topology="random", d=5),
        dict(N=12, K=2, activation="linear", topology="random", d=5),
        ps.SGD(lr=0.2, batch_size=2), ps.Online(label_noise=0.3),
        dict(alpha=3.0, record=np.array([0, 2, 5, 11, 18]), replicas=2)),
    "sgd_tanh_tree_hinge_dataset_stop": (
        dict(N=12, K=3, activation="tanh", output="sign", topology="tree", d=4),
        dict(N=12, K=3, activation="sign", output="sign", topology="tree", d=4, weights="binary"),
        ps.SGD(lr=0.5, batch_size=4, loss="hinge", margin=0.5), ps.Dataset(P=14, inputs="binary", test_size=40),
        dict(epochs=40, record=6, replicas=3, stop="zero_train_error")),
    "sgd_relu_parity_logistic_output_scale": (
        dict(N=8, K=2, activation="relu", output="parity", topology="tree", d=4),
        dict(N=8, K=2, activation="sign", output="parity", topology="tree", d=4),
        ps.SGD(lr=0.3, batch_size=2, loss="logistic", output_scale=2.0, momentum=0.9),
        ps.Dataset(P=9, label_noise=0.2, test_size=30),
        dict(epochs=6, record=4, replicas=2, init_scale=0.5)),
    # (squared hinge approaches y F = margin only asymptotically: plain hinge stops in finite time)
    "sgd_zero_loss_hinge": (
        dict(N=10, K=1, activation="linear", output="sign"), dict(N=10, K=1, activation="sign", output="sign"),
        ps.SGD(lr=0.5, batch_size=2, loss="hinge", margin=0.3), ps.Dataset(P=8),
        dict(epochs=30, record=5, replicas=3, stop="zero_loss")),
    "sgd_axis_teacher_chi": (
        dict(N=8, K=1, activation="erf", output="sign"), dict(N=8, K=1, weights="axis", activation="sign", output="sign"),
        ps.SGD(lr=0.4, batch_size=3, loss="hebbian"), ps.Online(chi=1.5, test_size=30),
        dict(steps=12, record=2, replicas=2)),
    "sgd_divergence": (
        dict(N=8, K=1, activation="linear"), dict(N=8, K=1, activation="linear"),
        ps.SGD(lr=1e150, batch_size=1), ps.Online(),
        dict(steps=30, record=5, replicas=2)),
    "greedy_tree_parity_dataset_success": (
        dict(N=12, K=3, activation="sign", output="parity", topology="tree", d=4, weights="binary"),
        dict(N=12, K=3, activation="sign", output="parity", topology="tree", d=4, weights="binary"),
        ps.Greedy(batch_size=8), ps.Dataset(P=24),
        dict(epochs=30, record=5, replicas=3, stop="success")),
    "greedy_tree_majority_online_metropolis": (
        dict(N=15, K=3, activation="sign", output="sign", topology="tree", d=5, weights="binary"),
        dict(N=15, K=3, activation="sign", output="sign", topology="tree", d=5, weights="binary"),
        ps.Greedy(batch_size=5, temperature=0.7, ties="random"), ps.Online(),
        dict(steps=6, record=4, replicas=2)),
    "greedy_perceptron_proposal_binary_inputs": (
        dict(N=9, K=1, activation="sign", output="sign", weights="binary"),
        dict(N=9, K=1, activation="sign", output="sign", weights="binary"),
        ps.Greedy(batch_size=3, ties="reject", new_batch="proposal"), ps.Dataset(P=10, inputs="binary", test_size=25),
        dict(steps=5, record=4, replicas=2)),
    # planted starts, explicit starts, windows, probes, independent batches (stationary observables)
    "greedy_tree_majority_planted_metropolis": (
        dict(N=15, K=3, activation="sign", output="sign", topology="tree", d=5, weights="binary"),
        dict(N=15, K=3, activation="sign", output="sign", topology="tree", d=5, weights="binary"),
        ps.Greedy(batch_size=6, temperature=0.3), ps.Online(inputs="binary", test_size=30),
        dict(steps=40, record=5, replicas=3, init="teacher")),
    "greedy_dense_parity_planted_flips_gaussian": (
        dict(N=7, K=2, activation="sign", output="parity", weights="binary"),
        dict(N=7, K=2, activation="sign", output="parity", weights="binary"),
        ps.Greedy(batch_size=5, temperature=0.5), ps.Online(test_size=30),
        dict(steps=30, record=4, replicas=3, init="teacher", window=0.75, probe_every=3)),
    "greedy_random_parity_even_fan_in_window_pair": (
        dict(N=9, K=3, activation="sign", output="parity", topology="random", d=4, weights="binary"),
        dict(N=9, K=3, activation="sign", output="parity", topology="random", d=4, weights="binary"),
        ps.Greedy(batch_size=12, ties="random"), ps.Online(inputs="binary", label_noise=0.05, test_size=30),
        dict(steps=25, record=4, replicas=3, window=(5, 20), probe_every=4)),
    "greedy_tree_committee_independent_batches_array_init": (
        dict(N=9, K=3, activation="sign", output="sign", topology="tree", d=3, weights="binary"),
        dict(N=9, K=3, activation="sign", output="sign", topology="tree", d=3, weights="binary"),
        ps.Greedy(batch_size=4), ps.Dataset(P=20, inputs="binary", test_size=30, batches="independent"),
        dict(steps=30, record=5, replicas=2, init=np.ones((3, 3)), stop="success", check_every=1)),
    "sgd_erf_planted_dataset_independent": (
        dict(N=10, K=2, activation="erf"), dict(N=10, K=2, activation="erf"),
        ps.SGD(lr=0.5, batch_size=3), ps.Dataset(P=12, batches="independent"),
        dict(epochs=8, record=4, replicas=2, init="teacher", probe_every=2)),
    "sgd_tanh_sign_probes_testset": (
        dict(N=8, K=1, activation="tanh", output="sign"), dict(N=8, K=1, activation="sign", output="sign"),
        ps.SGD(lr=0.5, batch_size=2, loss="hinge"), ps.Dataset(P=10, inputs="binary", test_size=30),
        dict(epochs=10, record=4, replicas=2, probe_every=2, success_eps=0.2)),
    "sgd_user_data_tanh_committee": (
        dict(N=6, K=2, activation="tanh", output="sign"), None,
        ps.SGD(lr=0.3, batch_size=4, loss="logistic", weight_decay=0.02),
        ps.Dataset.from_arrays(_USER_X, np.where(_USER_X[:, 0] * _USER_X[:, 1] + 0.3 * _USER_X[:, 2] >= 0,
                                                 1.0, -1.0), test_fraction=0.25),
        dict(epochs=5, record=4, replicas=2)),
}


@pytest.mark.parametrize("case", list(E2E))
def test_train_end_to_end(case):
    s_kw, t_kw, algo, data, run = E2E[case]
    student, teacher = ps.Committee(**s_kw), (ps.Committee(**t_kw) if t_kw else None)
    run = dict(run, seed=3)
    res = ps.train(teacher, student, algo, data, **run)
    want = ref.train_reference(teacher, student, algo, data, **run)
    for name in ps.TrainResult.ARRAYS + ps.TrainResult.STATIONARY + ("window",):
        got = getattr(res, name)
        assert got.shape == want[name].shape, name
        if got.dtype == bool or np.issubdtype(got.dtype, np.integer):
            np.testing.assert_array_equal(got, want[name], err_msg=name)
        else:
            np.testing.assert_allclose(got, want[name], rtol=1e-10, atol=1e-12, equal_nan=True,
                                       err_msg=name)
    # the case exercises what its name says
    if "divergence" in case:
        assert res.diverged.all()
    if "stop" in case or "success" in case or "zero_loss" in case:
        assert np.any(res.stopped_at < res.steps[-1]), res.stopped_at
    if "planted" in case:
        assert np.all(res.first_passage == 0)


def _compare_train(case_spec):
    s_kw, t_kw, algo, data, run = case_spec
    student, teacher = ps.Committee(**s_kw), ps.Committee(**t_kw)
    run = dict(run, seed=3)
    res = ps.train(teacher, student, algo, data, **run)
    want = ref.train_reference(teacher, student, algo, data, **run)
    for name in ps.TrainResult.ARRAYS + ps.TrainResult.STATIONARY + ("window",):
        np.testing.assert_allclose(getattr(res, name), want[name], rtol=1e-10, atol=1e-12,
                                   equal_nan=True, err_msg=name)


def test_train_end_to_end_greedy_fan_in_12():
    c = dict(N=36, K=3, activation="sign", output="parity", topology="tree", d=12, weights="binary")
    _compare_train((c, c, ps.Greedy(batch_size=6), ps.Dataset(P=30, inputs="binary", test_size=40),
                    dict(epochs=4, record=4, replicas=3)))


def test_train_threads_do_not_matter():
    s_kw, t_kw, algo, data, run = E2E["greedy_tree_majority_online_metropolis"]
    student, teacher = ps.Committee(**s_kw), ps.Committee(**t_kw)
    a = ps.train(teacher, student, algo, data, threads=1, **run)
    b = ps.train(teacher, student, algo, data, **run)
    assert a == b


# ------------------------------------------------------------------------------------------
# 6. random streams
# ------------------------------------------------------------------------------------------
_MASK = (1 << 64) - 1


def _xoshiro_python(state, n):
    """xoshiro256** from Blackman & Vigna's reference C code, on Python ints."""
    s = [int(w) for w in state]
    rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & _MASK  # noqa: E731
    out = []
    for _ in range(n):
        out.append(rotl((s[1] * 5) & _MASK, 7) * 9 & _MASK)
        t = (s[1] << 17) & _MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
    return out, s


def test_xoshiro_matches_python_reference():
    st = krng.seed_states(123, 1, 0)[0]
    want, final = _xoshiro_python(st, 500)
    got = [int(krng.next_u64(st)) for _ in range(500)]
    assert got == want
    assert [int(w) for w in st] == final


def test_uniform_randint_and_ziggurat_are_the_documented_transforms():
    s = krng.seed_states(5, 1, 0)[0]
    words, _ = _xoshiro_python(s, 40)
    u = [krng.uniform(s.copy()) for _ in range(1)]
    assert u[0] == (words[0] >> 11) / 2.0**53
    # ziggurat fast path: bits 0-7 pick the layer, bit 8 the sign, bits 12-63 the abscissa;
    # one word per normal
    s2 = krng.seed_states(5, 1, 0)[0]
    x = np.empty(7)
    krng.fill_normal(s2, x)
    want = []
    for w in words[:7]:
        idx, negative, rabs = w & 0xFF, (w >> 8) & 1, w >> 12
        assert rabs < int(krng._ZIG_KI[idx])          # these 7 words all take the fast path
        want.append((-1.0 if negative else 1.0) * float(rabs) * krng._ZIG_WI[idx])
    close(x, want, rtol=0, atol=0)
    s3 = krng.seed_states(5, 1, 0)[0]
    b = np.empty(70)
    krng.fill_binary(s3, b)
    bits = [(words[0] >> i) & 1 for i in range(64)] + [(words[1] >> i) & 1 for i in range(6)]
    np.testing.assert_array_equal(b, np.where(np.array(bits) == 1, 1.0, -1.0))
    s4 = krng.seed_states(5, 1, 0)[0]
    assert [krng.randint(s4, 7) for _ in range(10)] == [int(w / 2.0**53 * 7) for w in [w >> 11 for w in words[:10]]]


def test_normal_and_binary_moments():
    s = krng.seed_states(9, 1, 0)[0]
    n = 400_001
    x = np.empty(n)
    krng.fill_normal(s, x)
    assert abs(x.mean()) < NSE / math.sqrt(n)
    assert abs(x.var() - 1.0) < NSE * math.sqrt(2.0 / n)
    assert abs(np.mean(x**4) - 3.0) < NSE * math.sqrt(96.0 / n)       # Var(x^4) = 105 - 9
    assert abs(np.mean(x[:-1] * x[1:])) < NSE / math.sqrt(n)           # consecutive draws uncorrelated
    b = np.empty(n)
    krng.fill_binary(s, b)
    assert set(np.unique(b)) == {-1.0, 1.0}
    assert abs(b.mean()) < NSE / math.sqrt(n)
    assert abs(np.mean(b[:-1] * b[1:])) < NSE / math.sqrt(n)


@pytest.mark.parametrize("a", [0.3, 1.0, 1.25, 6.0])
def test_gamma_moments(a):
    s = krng.seed_states(17, 1, 0)[0]
    n = 20_000
    g = np.array([krng.gamma(s, a) for _ in range(n)])
    assert np.all(g > 0)
    assert abs(g.mean() - a) < NSE * math.sqrt(a / n)
    # Var of the sample variance: (mu4 - sigma^4) / n with mu4 = 3 a^2 + 6 a for Gamma(a)
    assert abs(g.var() - a) < NSE * math.sqrt((2 * a * a + 6 * a) / n)
    assert stats.kstest(g, stats.gamma(a).cdf).pvalue > 1e-4


def test_shuffle_is_uniform():
    s = krng.seed_states(4, 1, 0)[0]
    n_perm, n = 24, 24_000
    counts = {}
    for _ in range(n):
        a = np.arange(4)
        krng.shuffle(s, a)
        counts[tuple(a)] = counts.get(tuple(a), 0) + 1
    assert len(counts) == n_perm
    assert stats.chisquare(list(counts.values())).pvalue > 1e-4


def test_shuffle_matches_reference_fisher_yates():
    s = krng.seed_states(8, 1, 0)[0]
    sr = s.copy()
    a, b = np.arange(30), np.arange(30)
    krng.shuffle(s, a)
    ref.fisher_yates(sr, b)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(s, sr)


def test_seed_states_distinct_and_reproducible():
    A = krng.seed_states(0, 50, 1)
    assert len({tuple(r) for r in A}) == 50
    B = krng.seed_states(0, 50, 2)
    C = krng.seed_states(1, 50, 1)
    assert not set(map(tuple, A)) & set(map(tuple, B))
    assert not set(map(tuple, A)) & set(map(tuple, C))
    np.testing.assert_array_equal(A, krng.seed_states(0, 50, 1))
    # streams are uncorrelated: first 2000 uniforms of replica 0 and 1
    u = np.array([[krng.uniform(A[r]) for _ in range(2000)] for r in (0, 1)])
    assert abs(np.corrcoef(u)[0, 1]) < NSE / math.sqrt(2000)
    assert not np.array_equal(u[0], u[1])


@pytest.mark.parametrize("chi", [-0.5, 1.5])
def test_input_law_with_chi(chi):
    """x_1 has density ~ |x_1|^chi exp(-x_1^2/2) (so x_1^2/2 ~ Gamma((chi+1)/2)), symmetric;
    the other coordinates stay N(0, 1)."""
    cfg = make_cfg(N=3, chi=chi)
    s = krng.seed_states(2, 1, 0)[0]
    X = np.empty((20_000, 3))
    for mu in range(X.shape[0]):
        samples.draw_input(cfg, s, X[mu])
    n = X.shape[0]
    assert stats.kstest(X[:, 0] ** 2 / 2, stats.gamma(0.5 * (chi + 1)).cdf).pvalue > 1e-4
    assert abs(np.mean(np.sign(X[:, 0]))) < NSE / math.sqrt(n)
    assert stats.kstest(X[:, 1:].ravel(), stats.norm.cdf).pvalue > 1e-4


# ------------------------------------------------------------------------------------------
# slow: random configurations of ps.train against the reference
# ------------------------------------------------------------------------------------------
def _random_config(r):
    """A random small valid run. Greedy runs include the fan-ins (10, 12) and the non-sign
    activations whose exact ties the kernel once got wrong.

    Excluded on purpose, because there the label of an exact real tie f = 0 depends on the order of
    floating-point operations in *both* codes (neither is wrong): output_scale on binary inputs
    (f(w) - f(w0) = 0 for inputs orthogonal to the update), and non-sign greedy units on binary
    inputs with K >= 3 (e.g. 1.5 erf(a) + erf(b) + 1.5 erf(-a) = erf(b) only up to rounding)."""
    def pick(x):
        return x[r.integers(len(x))]
    greedy = r.uniform() < 0.4
    inputs = pick(["gaussian", "binary"])
    N = int(pick([6, 8, 9, 10, 12, 15] if greedy else [6, 8, 9, 12]))
    topo = pick(["dense", "tree", "random"])
    if topo == "tree":
        d = int(pick([d for d in (2, 3, 4, 5, 6) if N % d == 0]))
        K = N // d
    else:
        d = int(pick([2, 3, 5])) if topo == "random" else None
        K = int(pick([1, 2, 3]))
    if greedy:
        out = pick(["sign", "parity"]) if K % 2 else "parity"
        act = pick(["sign", "sign", "sign", "erf", "tanh", "relu", "linear"])
        if act != "sign" and K % 2 == 0:
            out = pick(["sign", "parity"])
        if act != "sign" and K >= 3:
            inputs = "gaussian"
        sl = tuple(r.choice([0.5, 1.0, 1.5], K)) if (out == "sign" and r.uniform() < 0.3) else None
        sw = dict(N=N, K=K, activation=act, output=out, topology=topo, d=d, weights="binary",
                  second_layer=sl)
        tw = dict(sw, weights=pick(["binary", "gaussian"]), activation="sign", second_layer=None)
        if out == "sign" and K % 2 == 0:
            tw["output"] = "parity"
        algo = ps.Greedy(batch_size=int(pick([1, 3, 5])), temperature=float(pick([0, 0, 0.5])),
                         ties=pick(["accept", "reject", "random"]),
                         new_batch=pick(["sweep", "sweep", "proposal"]))
    else:
        out = pick(["sum", "sign", "parity"])
        sl = tuple(r.uniform(0.5, 1.5, K)) if (out != "parity" and r.uniform() < 0.3) else None
        sw = dict(N=N, K=K, activation=pick(["erf", "tanh", "relu", "linear"]), output=out,
                  topology=topo, d=d, second_layer=sl)
        tact, tout = pick(["erf", "sign", "linear", "tanh"]), (out if out != "sum" else pick(["sum", "sign"]))
        if tact == "sign" and tout == "sign" and K % 2 == 0:
            tact = "erf"
        tw = dict(N=N, K=K, activation=tact, output=tout, topology=topo, d=d)
        loss = (pick(["square", "hinge", "logistic", "squared_hinge", "hebbian"])
                if (out != "sum" or tout != "sum") else "square")
        algo = ps.SGD(lr=float(pick([0.1, 0.5, 1.0])), batch_size=int(pick([1, 2, 4])),
                      momentum=float(pick([0, 0.5])), weight_decay=float(pick([0, 0.01])), loss=loss,
                      output_scale=pick([None, None, 2.0]) if inputs == "gaussian" else None,
                      margin=float(pick([0, 0.5, 1.0])))
    if r.uniform() < 0.5:
        data = ps.Online(inputs=inputs, label_noise=float(pick([0, 0.1])), test_size=20)
        run = dict(steps=int(pick([3, 8])), stop=pick([None, "success"]))
    else:
        data = ps.Dataset(P=int(pick([6, 10])), inputs=inputs, label_noise=float(pick([0, 0.1])),
                          test_size=20)
        run = dict(epochs=int(pick([2, 5])), stop=pick([None, "success", "zero_train_error", "zero_loss"]))
    run.update(replicas=2, seed=int(r.integers(100)), record=int(pick([2, 3, 5])))
    return sw, tw, algo, data, run


@pytest.mark.slow
def test_train_random_configurations():
    r = np.random.default_rng(2024)
    n = 0
    while n < 600:
        sw, tw, algo, data, run = _random_config(r)
        try:
            student, teacher = ps.Committee(**sw), ps.Committee(**tw)
            res = ps.train(teacher, student, algo, data, **run)
        except ValueError:
            continue                       # an invalid combination: the driver refuses it
        n += 1
        with np.errstate(all="ignore"):
            want = ref.train_reference(teacher, student, algo, data, **run)
        for name in ps.TrainResult.ARRAYS + ps.TrainResult.STATIONARY + ("window",):
            np.testing.assert_allclose(getattr(res, name), want[name], rtol=1e-9, atol=1e-11,
                                       equal_nan=True, err_msg=f"{name}: {sw} {tw} {algo} {data} {run}")
