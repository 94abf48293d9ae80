"""Is the student the teacher? The rule from the weights against the truth: the student's labels
on *every* binary input equal the teacher's, for every binary student of small machines.

- tree machines and perceptrons: "same units up to the symmetries" is exactly "same function"
  (so the driver decides from the weights alone, teacher_rule "weights");
- dense and random-field machines: the symmetric match implies the same function, but at small N
  other students compute it too (e.g. majority(a, b, c) over 5 inputs), so the driver adds the
  test set (teacher_rule "weights+test"); with every input in the test set that is exact.
"""
import itertools
import os
import sys

import numpy as np
import pytest

import physsgd as ps
from physsgd.kernels.teacher import on_teacher

sys.path.insert(0, os.path.dirname(__file__))
import reference as ref  # noqa: E402


def _case(N, K, d, topology, output, seed):
    rng = np.random.default_rng(seed)
    model = ps.Committee(N=N, K=K, activation="sign", output=output, topology=topology, d=d,
                         weights="binary")
    K, F = model.K, model.d
    if topology == "tree":
        fields = np.arange(N).reshape(K, F)
    elif topology == "dense":
        fields = np.zeros((K, 1), np.int64)
    else:
        fields = np.stack([np.sort(rng.choice(N, F, replace=False)) for _ in range(K)])
    net = ref.Net("sign", output, np.ones(K), fields, topology == "dense")
    same_field = (np.ones((K, K), bool) if topology == "dense"
                  else np.all(fields[:, None, :] == fields[None, :, :], axis=-1))
    flips = output == "parity" and F % 2 == 1
    return model, net, fields, same_field, flips, rng.choice([-1.0, 1.0], (K, F))


def _all_students(K, F):
    for bits in itertools.product([-1.0, 1.0], repeat=K * F):
        yield np.array(bits).reshape(K, F)


@pytest.mark.parametrize("N,K,d,topology,output", [
    (9, 3, 3, "tree", "sign"), (9, 3, 3, "tree", "parity"), (8, 2, 4, "tree", "parity"),
    (8, 4, 2, "tree", "parity"), (6, 3, 2, "tree", "sign"), (3, 1, None, "dense", "sign"),
    (4, 1, None, "dense", "sign")])
def test_weights_rule_is_exact_for_trees_and_perceptrons(N, K, d, topology, output):
    for seed in range(2):
        model, net, fields, same_field, flips, Wt = _case(N, K, d, topology, output, seed)
        X = np.array(list(itertools.product([-1.0, 1.0], repeat=N)))
        yt = net.label(Wt, X)
        used = np.zeros(model.K, bool)
        n_on = 0
        for W in _all_students(model.K, model.d):
            rule = on_teacher(W, Wt, same_field, flips, used)
            assert rule == np.array_equal(net.label(W, X), yt), (W, Wt)
            assert rule == ref.same_function_by_symmetry(model, model, W, Wt, fields, fields, "binary")
            n_on += rule
        # the symmetry group's size: 1, or 2^(K-1) even sign flips of a parity machine (odd d)
        assert n_on == (2 ** (model.K - 1) if flips else 1)


@pytest.mark.parametrize("N,K,d,topology,output,seed", [
    (5, 3, None, "dense", "sign", 0), (5, 3, None, "dense", "parity", 0),
    (6, 3, 3, "random", "parity", 0), (6, 3, 3, "random", "sign", 7)])
def test_weights_rule_is_sufficient_for_dense_and_random_fields(N, K, d, topology, output, seed):
    """The symmetric match always computes the teacher's function; some other students do too,
    which is why these machines add the test set."""
    model, net, fields, same_field, flips, Wt = _case(N, K, d, topology, output, seed)
    X = np.array(list(itertools.product([-1.0, 1.0], repeat=N)))
    yt = net.label(Wt, X)
    used = np.zeros(model.K, bool)
    extra = 0
    for W in _all_students(model.K, model.d):
        same = np.array_equal(net.label(W, X), yt)
        rule = on_teacher(W, Wt, same_field, flips, used)
        assert same or not rule
        assert rule == ref.same_function_by_symmetry(model, model, W, Wt, fields, fields, "binary")
        extra += same and not rule
    if (topology, output) in (("dense", "sign"), ("random", "parity"), ("random", "sign")):
        assert extra > 0       # the reason for "weights+test"


def test_rule_finds_permuted_and_flipped_units():
    rng = np.random.default_rng(3)
    K, F = 5, 15
    Wt = rng.choice([-1.0, 1.0], (K, F))
    G = Wt @ Wt.T
    assert np.all(np.abs(G[~np.eye(K, dtype=bool)]) < F)    # no two rows equal up to sign
    same = np.ones((K, K), bool)
    used = np.zeros(K, bool)
    for trial in range(50):
        perm = rng.permutation(K)
        signs = rng.choice([-1.0, 1.0], K)
        W = signs[:, None] * Wt[perm]
        even = np.prod(signs) > 0
        assert on_teacher(W, Wt, same, True, used) == even
        assert on_teacher(W, Wt, same, False, used) == bool(np.all(signs > 0))
        W[rng.integers(K), rng.integers(F)] *= -1      # one weight off: never the teacher
        assert not on_teacher(W, Wt, same, True, used)
    tree = np.eye(K, dtype=bool)                       # disjoint fields: no permutation allowed
    assert not on_teacher(Wt[[1, 0, 2, 3, 4]], Wt, tree, False, used)


def test_driver_picks_the_rule():
    tree = ps.Committee(N=15, activation="sign", output="sign", topology="tree", d=5, weights="binary")
    dense = ps.Committee(N=15, K=3, activation="sign", output="sign", weights="binary")
    g, data = ps.Greedy(batch_size=4), ps.Online(inputs="binary", test_size=50)
    rule = lambda t, s, **kw: ps.train(t, s, g, data, steps=2, replicas=1, **kw).params["run"]["teacher_rule"]  # noqa: E731
    assert rule(tree, tree) == "weights"
    assert rule(dense, dense) == "weights+test"
    assert rule(tree, tree, success_eps=0.01) == "eps"
    gauss_teacher = ps.Committee(N=15, activation="sign", output="sign", topology="tree", d=5)
    assert rule(gauss_teacher, tree) == "eps"


def test_stale_kernel_cache_is_cleared_in_every_cache_dir(tmp_path, monkeypatch):
    """A kernel edit changes SOURCE_DIGEST; cached machine code of the old sources must go,
    whether numba caches beside the sources or under NUMBA_CACHE_DIR."""
    import physsgd.kernels as kernels
    dirs = [tmp_path / "pycache", tmp_path / "user_cache"]
    monkeypatch.setattr(kernels, "_cache_dirs", lambda: dirs)
    for d in dirs:
        d.mkdir()
        (d / "engine.train_sgd-1.py311.nbi").write_text("old")
        (d / "engine.train_sgd-1.py311.1.nbc").write_text("old")
        (d / "kernels.sha256").write_text("an older digest")
    kernels._drop_stale_cache()
    for d in dirs:
        assert not list(d.glob("*.nb?")) and (d / "kernels.sha256").read_text() == kernels.SOURCE_DIGEST
        (d / "engine.train_sgd-1.py311.nbi").write_text("current")
    kernels._drop_stale_cache()                       # same digest: the cache is kept
    assert all((d / "engine.train_sgd-1.py311.nbi").exists() for d in dirs)


def test_cache_dirs_follow_numba_cache_dir(tmp_path, monkeypatch):
    from numba.core import config
    import physsgd.kernels as kernels
    monkeypatch.setattr(config, "CACHE_DIR", str(tmp_path))
    dirs = kernels._cache_dirs()
    assert dirs[0].name == "__pycache__" and dirs[1].parent == tmp_path
    assert dirs[1].name.startswith("kernels_")
