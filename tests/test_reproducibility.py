"""Replica r's numbers depend on (seed, r) only: not on thread count, not on how many replicas run."""
import numpy as np
import pytest

import physsgd as ps

TREE = ps.Committee(N=12, activation="sign", output="sign", topology="tree", d=4, weights="binary")
SCM = ps.Committee(N=30, K=2, activation="erf")
CASES = {
    "sgd-online": (SCM, SCM, ps.SGD(lr=0.5, batch_size=3, momentum=0.5, weight_decay=1e-3), ps.Online()),
    "sgd-dataset": (ps.Perceptron(30), ps.Perceptron(30, activation="linear"),
                    ps.SGD(lr=0.2, batch_size=4, loss="hinge"), ps.Dataset(P=40)),
    "greedy-metropolis": (TREE, TREE, ps.Greedy(batch_size=5, temperature=0.5, ties="random"),
                          ps.Online(inputs="binary")),
}


@pytest.mark.parametrize("case", CASES)
def test_same_numbers_for_one_and_two_threads(case):
    teacher, student, algo, data = CASES[case]
    runs = [ps.train(teacher, student, algo, data, steps=60, replicas=5, seed=7, record=6, threads=t)
            for t in (1, 2)]
    assert runs[0] == runs[1]


@pytest.mark.parametrize("case", CASES)
def test_replica_independent_of_replica_count(case):
    teacher, student, algo, data = CASES[case]
    few = ps.train(teacher, student, algo, data, steps=40, replicas=2, seed=3, record=5)
    many = ps.train(teacher, student, algo, data, steps=40, replicas=4, seed=3, record=5)
    for name in ("eps_g", "R", "Q", "weight_change"):
        np.testing.assert_array_equal(getattr(few, name), getattr(many, name)[:2])


def test_seeds_differ():
    teacher, student, algo, data = CASES["sgd-online"]
    a = ps.train(teacher, student, algo, data, steps=20, replicas=2, seed=0, record=3)
    b = ps.train(teacher, student, algo, data, steps=20, replicas=2, seed=1, record=3)
    assert not np.array_equal(a.eps_g, b.eps_g)
    assert not np.array_equal(a.eps_g[0], a.eps_g[1])     # replicas are independent draws
