"""The bit-level greedy path (physsgd/kernels/bits.py) is the same Markov chain as the float path:
move by move against the NumPy reference on the same random words, and whole ps.train runs
bit-identical to the float path (which stays the reference for everything else)."""
import importlib
import os
import sys

import numba
import numpy as np
import pytest

import physsgd as ps
from physsgd.kernels import bits, config as kc, rng as krng

sys.path.insert(0, os.path.dirname(__file__))
import reference as ref  # noqa: E402
from test_kernels_reference import make_cfg  # noqa: E402

ptrain = importlib.import_module("physsgd.train")


def _unpack(Xb, m):
    """(N, nw) bit rows over samples -> (m, N) float +-1."""
    N = Xb.shape[0]
    X = np.empty((m, N))
    for mu in range(m):
        X[mu] = np.where((Xb[:, mu >> 6] >> np.uint64(mu & 63)) & np.uint64(1), 1.0, -1.0)
    return X


def _state(K, F, m):
    nw = (m + 63) // 64
    return (np.zeros((K, bits.planes_for(F), nw), np.uint64), np.zeros((K, nw), np.uint64),
            np.zeros((K, nw), np.uint64), np.zeros((K, nw), np.uint64),
            np.zeros((bits.planes_for(K), nw), np.uint64), np.zeros((K, nw), np.uint64),
            np.zeros(nw, np.uint64), np.zeros(nw, np.uint64))


@numba.njit
def _popcounts(words):
    out = np.empty(words.shape[0], np.int64)
    for i in range(words.shape[0]):
        out[i] = bits.popcount(words[i])
    return out


def test_popcount_and_counters():
    rng = np.random.default_rng(0)
    words = rng.integers(0, 2**63, 200, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, 200).astype(np.uint64)
    words[:3] = [0, 1, np.uint64(0xFFFFFFFFFFFFFFFF)]
    assert _popcounts(words).tolist() == [bin(int(w)).count("1") for w in words]
    assert bits.planes_for(1) == 1 and bits.planes_for(2) == 2 and bits.planes_for(65) == 7
    assert bits.planes_for(64) == 7 and bits.planes_for(63) == 6


@pytest.mark.parametrize("arch", ["tree_majority", "tree_parity", "dense_majority", "dense_parity",
                                  "perceptron", "random_majority", "tree_majority_d12",
                                  "dense_parity_d12", "tree_parity_K5"])
@pytest.mark.parametrize("m", [9, 64, 150])
@pytest.mark.parametrize("temperature,ties", [(0.0, "accept"), (0.0, "reject"), (0.8, "random")])
def test_sweep_matches_reference_move_by_move(arch, m, temperature, ties):
    """Same batch words, same random order, same acceptance draws: the same accepted flips."""
    rng = np.random.default_rng(hash((arch, m)) % 2**32)
    table = {"tree_majority": (3, 5, "tree", "sign"), "tree_parity": (3, 4, "tree", "parity"),
             "dense_majority": (3, 7, "dense", "sign"), "dense_parity": (2, 8, "dense", "parity"),
             "perceptron": (1, 11, "dense", "sign"), "random_majority": (3, 5, "random", "sign"),
             "tree_majority_d12": (3, 12, "tree", "sign"), "dense_parity_d12": (2, 12, "dense", "parity"),
             "tree_parity_K5": (5, 3, "tree", "parity")}
    K, d, topology, out = table[arch]
    N = K * d if topology == "tree" else (d if topology == "dense" else 2 * d + 1)
    if topology == "tree":
        fields, dense, F = np.arange(N).reshape(K, d), False, d
    elif topology == "dense":
        fields, dense, F = np.zeros((K, 1), np.int64), True, N
    else:
        fields = np.stack([np.sort(rng.choice(N, d, replace=False)) for _ in range(K)]).astype(np.int64)
        dense, F = False, d
    cfg = make_cfg(algo=kc.GREEDY_ALGO, N=N, act_s=kc.SIGN, out_s=kc.OUTPUT_CODES[out], dense_s=dense,
                   temperature=temperature, ties=kc.TIE_CODES[ties], batch_size=m,
                   inputs=kc.INPUT_BINARY)
    net = ref.Net("sign", out, np.ones(K), fields, dense)
    Wt = rng.choice([-1.0, 1.0], (K, F))
    W = rng.choice([-1.0, 1.0], (K, F))
    Wr = W.copy()
    s = krng.seed_states(7, 1, 3)[0]
    sr = s.copy()
    valid = bits.valid_masks(m)
    Xb = np.zeros((N, len(valid)), np.uint64)
    st = _state(K, F, m)
    order, order_r = np.arange(K * F), np.arange(K * F)
    accepted = 0
    for sweep in range(5):
        bits.draw_batch(s, Xb, valid)
        X = ref.binary_batch_input_major(sr, m, N)           # the same words, decoded
        np.testing.assert_array_equal(_unpack(Xb, m), X)
        y = net.label(Wt, X)
        if sweep % 2:
            y[: m // 3] *= -1                                 # unrealisable labels now and then
        Yb, _ = np.zeros(len(valid), np.uint64), None
        for mu in range(m):
            if y[mu] > 0:
                Yb[mu >> 6] |= np.uint64(1) << np.uint64(mu & 63)
        err = bits.sweep(cfg, s, W, fields, dense, Xb, valid, Yb, st, order)
        Wr, err_r, acc = ref.greedy_sweep(net, sr, Wr, X, y, order_r, temperature, ties)
        accepted += len(acc)
        np.testing.assert_array_equal(order, order_r)
        np.testing.assert_array_equal(W, Wr)
        assert err == err_r
        np.testing.assert_array_equal(s, sr)
        # the incrementally updated state equals the state rebuilt from scratch
        fresh = _state(K, F, m)
        e = bits.batch_state(cfg.out_s, W, fields, dense, Xb, valid, Yb, *fresh)
        for a, b in zip(st, fresh):
            np.testing.assert_array_equal(a, b)
        assert e == np.sum(net.label(W, X) != y)
    assert accepted > 0


def _both_paths(monkeypatch, teacher, student, algo, data, **run):
    fast = ps.train(teacher, student, algo, data, **run)
    assert fast.params["run"]["greedy_path"] == "bits"
    monkeypatch.setattr(ptrain, "bit_path", lambda *a: False)
    slow = ps.train(teacher, student, algo, data, **run)
    monkeypatch.undo()
    assert slow.params["run"]["greedy_path"] == "float"
    return fast, slow


CASES = {
    "tree_committee_online": (dict(N=27, activation="sign", output="sign", topology="tree", d=9),
                              ps.Greedy(batch_size=70), ps.Online(inputs="binary", test_size=100),
                              dict(steps=60, init="random")),
    "tree_parity_noise_metropolis": (dict(N=15, activation="sign", output="parity", topology="tree", d=5),
                                     ps.Greedy(batch_size=130, temperature=0.5, ties="random"),
                                     ps.Online(inputs="binary", label_noise=0.05, test_size=100),
                                     dict(steps=40, init="teacher")),
    "dense_committee_finite": (dict(N=11, K=3, activation="sign", output="sign"),
                               ps.Greedy(batch_size=20, ties="reject"),
                               ps.Dataset(P=50, inputs="binary", test_size=100), dict(epochs=30)),
    "random_committee_independent": (dict(N=20, K=3, activation="sign", output="sign", topology="random", d=7),
                                     ps.Greedy(batch_size=33),
                                     ps.Dataset(P=90, inputs="binary", test_size=100, batches="independent"),
                                     dict(steps=50, stop="success")),
    "tree_even_fan_in": (dict(N=24, activation="sign", output="sign", topology="tree", d=8),
                         ps.Greedy(batch_size=65), ps.Online(inputs="binary", test_size=100),
                         dict(steps=40)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_train_bit_path_equals_float_path(case, monkeypatch):
    model, algo, data, run = CASES[case]
    t = ps.Committee(weights="binary", **model)
    fast, slow = _both_paths(monkeypatch, t, t, algo, data, replicas=3, seed=5, record=6, **run)
    assert fast == slow
    np.testing.assert_array_equal(fast.weights, slow.weights)


@pytest.mark.slow
def test_medium_case_time_at_teacher_curve_identical(monkeypatch):
    """A medium case (N = 45, d = 15, m across the transition, 16 replicas, 400 sweeps): the
    whole stationary curve is identical, not merely statistically equal."""
    t = ps.Committee(N=45, activation="sign", output="sign", topology="tree", d=15, weights="binary")
    for m in (32, 64, 96, 160):
        fast, slow = _both_paths(monkeypatch, t, t, ps.Greedy(batch_size=m), ps.Online(inputs="binary"),
                                 steps=400, replicas=16, seed=m, stop=None)
        assert fast == slow
