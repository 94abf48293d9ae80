"""Every bad argument raises ValueError naming the parameter, its value and what is allowed."""
import math

import numpy as np
import pytest

import physsgd as ps

TREE = dict(N=12, activation="sign", output="sign", topology="tree", d=4, weights="binary")


def _train(**over):
    args = dict(teacher=ps.Committee(N=10, K=2), student=ps.Committee(N=10, K=2),
                algo=ps.SGD(lr=0.1), data=ps.Online(), steps=2, replicas=1, record=2)
    args.update(over)
    return ps.train(**args)


@pytest.mark.parametrize("build, match", [
    (lambda: ps.SGD(lr=0.0), r"lr=0.0 .*> 0"),
    (lambda: ps.SGD(lr=-1), r"lr=-1.0 .*> 0"),
    (lambda: ps.SGD(lr=math.nan), r"lr=nan"),
    (lambda: ps.SGD(lr=math.inf), r"lr=inf"),
    (lambda: ps.SGD(lr=0.1, batch_size=0), r"batch_size=0 .*>= 1"),
    (lambda: ps.SGD(lr=0.1, batch_size=2.5), r"batch_size=2.5 must be an integer"),
    (lambda: ps.SGD(lr=0.1, momentum=1.0), r"momentum=1.0 .*\[0, 1\)"),
    (lambda: ps.SGD(lr=0.1, weight_decay=-1), r"weight_decay=-1.0"),
    (lambda: ps.SGD(lr=0.1, loss="l1"), r"loss='l1' is not allowed; choose one of 'square'"),
    (lambda: ps.SGD(lr=0.1, output_scale=0), r"output_scale=0.0"),
    (lambda: ps.Greedy(batch_size=0), r"batch_size=0"),
    (lambda: ps.Greedy(temperature=-0.5), r"temperature=-0.5"),
    (lambda: ps.Greedy(ties="maybe"), r"ties='maybe'"),
    (lambda: ps.Committee(N=0), r"N=0 .*>= 1"),
    (lambda: ps.Committee(N=10, K=0), r"K=0 .*>= 1"),
    (lambda: ps.Committee(N=10, activation="softplus"), r"activation='softplus' is not allowed"),
    (lambda: ps.Committee(N=10, output="max"), r"output='max' is not allowed"),
    (lambda: ps.Committee(N=10, topology="ring"), r"topology='ring' is not allowed"),
    (lambda: ps.Committee(N=10, weights="ternary"), r"weights='ternary' is not allowed"),
    (lambda: ps.Committee(N=10, topology="random", d=11), r"d=11 is out of range; allowed: integer in \[1, 10\]"),
    (lambda: ps.Committee(N=10, topology="random"), r"topology='random' needs d"),
    (lambda: ps.Committee(N=10, topology="tree", d=3), r"d=3 does not divide N=10"),
    (lambda: ps.Committee(N=12, topology="tree", d=4, K=2), r"K=2 with d=4 gives K\*d=8 != N=12"),
    (lambda: ps.Committee(N=10, topology="dense", d=5), r"d=5 is not allowed with topology='dense'"),
    (lambda: ps.Committee(N=8, K=2, activation="sign", output="sign"), r"K=2: a majority vote .* odd K"),
    (lambda: ps.Committee(N=8, K=2, second_layer=(1.0,)), r"second_layer has 1 values; it needs K=2"),
    (lambda: ps.Online(inputs="uniform"), r"inputs='uniform' is not allowed"),
    (lambda: ps.Online(inputs="binary", chi=1.0), r"chi=1.0 needs inputs='gaussian'"),
    (lambda: ps.Online(chi=-1.0), r"chi=-1.0 .*> -1"),
    (lambda: ps.Online(label_noise=-0.1), r"label_noise=-0.1"),
    (lambda: ps.Dataset(P=0), r"P=0 .*>= 1"),
    (lambda: ps.Dataset.from_arrays(np.zeros((5, 3)), np.zeros(4)), r"y must have shape \(5,\)"),
    (lambda: ps.Dataset.from_arrays(np.full((5, 3), np.nan), np.zeros(5)), r"finite"),
])
def test_spec_errors(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("over, match", [
    (dict(algo=ps.SGD(lr=0.1, batch_size=20), data=ps.Dataset(P=10)), r"batch_size=20 is larger than the training set P=10"),
    (dict(replicas=0), r"replicas=0 .*>= 1"),
    (dict(seed=-1), r"seed=-1 .*>= 0"),
    (dict(init_scale=math.nan), r"init_scale=nan"),
    (dict(steps=None), r"exactly one of steps, epochs, alpha"),
    (dict(alpha=1.0), r"exactly one of steps, epochs, alpha; got \['steps', 'alpha'\]"),
    (dict(steps=None, epochs=3), r"epochs needs a finite training set"),
    (dict(steps=0), r"steps=0 .*>= 1"),
    (dict(steps=None, alpha=-1.0), r"alpha=-1.0 .*> 0"),
    (dict(record=1), r"record=1 .*>= 2"),
    (dict(record=np.array([0, 3, 2])), r"strictly increasing"),
    (dict(stop="converged"), r"stop='converged' is not allowed"),
    (dict(stop="zero_train_error"), r"needs a finite training set"),
    (dict(threads=0), r"threads=0"),
    (dict(student=ps.Committee(N=11, K=2)), r"student.N=11 must equal teacher.N=10"),
    (dict(student=ps.Committee(N=10, K=2, weights="binary")), r"weights='binary' cannot be trained by SGD"),
    (dict(student=ps.Committee(N=10, K=2, activation="sign")), r"activation='sign' has no gradient"),
    (dict(algo=ps.SGD(lr=0.1, loss="hinge")), r"loss='hinge' needs \+-1 labels"),
    (dict(algo=ps.Greedy(batch_size=2)), r"student weights must be 'binary'"),
    (dict(teacher=ps.Committee(**TREE), student=ps.Committee(N=12, K=3, weights="binary"),
          algo=ps.Greedy()), r"student output must be 'sign' or 'parity'"),
    (dict(teacher=ps.Committee(**TREE), student=ps.Committee(**TREE), algo=ps.Greedy(), init_scale=0.5),
     r"init_scale=0.5 applies to gaussian weights only"),
    (dict(student=ps.Committee(N=10, K=3, activation="erf", output="sign")), r"needs a classifier teacher"),
    (dict(teacher=None), r"teacher=None is only allowed with user data"),
    (dict(student="perceptron"), r"student must be a ps.Committee"),
    (dict(algo="adam"), r"algo must be ps.SGD or ps.Greedy"),
    (dict(data=[1, 2]), r"data must be ps.Online or ps.Dataset"),
    (dict(teacher=ps.Perceptron(10, weights="axis"), student=ps.Perceptron(10, weights="axis")), r"student weights='axis' is not allowed"),
])
def test_train_errors(over, match):
    with pytest.raises(ValueError, match=match):
        _train(**over)


def test_user_data_errors():
    X = np.random.default_rng(0).standard_normal((20, 10))
    data = ps.Dataset.from_arrays(X, np.sign(X[:, 0]) + 0.5)
    with pytest.raises(ValueError, match=r"labels y in \{-1, \+1\}"):
        _train(teacher=None, student=ps.Committee(N=10, K=3, output="sign"), data=data)
    with pytest.raises(ValueError, match="pass teacher=None"):
        _train(data=data)
    with pytest.raises(ValueError, match=r"student.N=9 must equal the number of columns of X \(10\)"):
        _train(teacher=None, student=ps.Committee(N=9, K=2), data=data)
