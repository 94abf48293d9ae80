"""Every bad argument raises ValueError naming the parameter, its value and what is allowed.

The hand-written cases below pin exact messages; the table-driven ones at the end throw every
kind of bad value (wrong types, bools, NaN/inf, complex numbers, numpy scalars, integers beyond
int64, values beyond the documented limits) at every public entry point of ``physsgd`` and
``analysis`` and require a one-line ValueError that names the parameter.
"""
import importlib
import math

import numpy as np
import pytest

import physsgd as ps

TREE = dict(N=12, activation="sign", output="sign", topology="tree", d=4, weights="binary")


def _args(**over):
    args = dict(teacher=ps.Committee(N=10, K=2), student=ps.Committee(N=10, K=2),
                algo=ps.SGD(lr=0.1), data=ps.Online(), steps=2, replicas=1, record=2)
    args.update(over)
    return args


def _train(**over):
    return ps.train(**_args(**over))


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
    (dict(steps=0), r"steps=0 is out of range; allowed: integer in \[1, 1000000000000\]"),
    (dict(steps=None, alpha=-1.0), r"alpha=-1.0 .*> 0"),
    (dict(record=1), r"record=1 is out of range; allowed: integer in \[2, 1000000\]"),
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


# --------------------------------------------------------------------------------------------
# Table-driven: every kind of bad value at every entry point

import analysis as an                                        # noqa: E402
from analysis import _validate as an_validate               # noqa: E402

train_module = importlib.import_module("physsgd.train")

BAD_INTEGERS = {"float": 2.5, "integral float": 3.0, "str": "3", "bool": True, "np.bool": np.True_,
                "complex": 1 + 2j, "nan": math.nan, "list": [3], "beyond int64": 2 ** 64,
                "huge": 10 ** 400, "negative": -3}
BAD_REALS = {"str": "0.5", "bool": True, "np.bool": np.True_, "complex": 1 + 2j,
             "np.complex": np.complex128(1j), "nan": math.nan, "inf": math.inf, "-inf": -math.inf,
             "np.nan": np.float64("nan"), "list": [0.5], "huge int": 10 ** 400, "None": None}
BAD_CHOICES = {"int": 3, "list": ["erf"], "array": np.array(["erf"]), "None": None, "typo": "erff",
               "bytes": b"erf"}


def _cases():
    out = []

    def add(label, fn, name):
        out.append(pytest.param(fn, name, id=label))

    for name in ("N", "K", "d"):
        for label, bad in BAD_INTEGERS.items():
            base = {"N": 12, "K": None if name == "d" else 2, "topology": "tree" if name == "d" else "dense"}
            add(f"Committee.{name}={label}", lambda name=name, bad=bad, base=base: ps.Committee(**{**base, name: bad}), name)
    for name in ("activation", "output", "topology", "weights"):
        for label, bad in BAD_CHOICES.items():
            add(f"Committee.{name}={label}", lambda name=name, bad=bad: ps.Committee(N=10, **{name: bad}), name)
    for label, bad in {"scalar": 2.5, "str": "12", "nan inside": [math.nan], "complex inside": [1j],
                       "wrong length": [1.0, 2.0, 3.0]}.items():
        add(f"Committee.second_layer={label}", lambda bad=bad: ps.Committee(N=10, K=2, second_layer=bad), "second_layer")
    for label, bad in BAD_INTEGERS.items():
        add(f"Perceptron.N={label}", lambda bad=bad: ps.Perceptron(bad), "N")
        add(f"SGD.batch_size={label}", lambda bad=bad: ps.SGD(lr=0.1, batch_size=bad), "batch_size")
        add(f"Greedy.batch_size={label}", lambda bad=bad: ps.Greedy(batch_size=bad), "batch_size")
        add(f"Online.test_size={label}", lambda bad=bad: ps.Online(test_size=bad), "test_size")
        add(f"Dataset.P={label}", lambda bad=bad: ps.Dataset(P=bad), "P")
        for name in ("replicas", "seed", "steps"):
            add(f"train.{name}={label}", lambda name=name, bad=bad: _train(**{name: bad}), name)
        add(f"train.record={label}", lambda bad=bad: _train(record=bad), "record")
        add(f"train.threads={label}", lambda bad=bad: _train(threads=bad), "threads")
        add(f"train.epochs={label}", lambda bad=bad: _train(steps=None, epochs=bad, data=ps.Dataset(P=10)), "epochs")
        add(f"chaos.random_layer.N={label}", lambda bad=bad: ps.chaos.random_layer(bad, 1.0), "N")
        add(f"chaos.lyapunov.steps={label}", lambda bad=bad: ps.chaos.lyapunov(np.eye(3) * 0.5, steps=bad), "steps")
    for label, bad in BAD_REALS.items():
        for name in ("lr", "momentum", "weight_decay", "margin"):
            if not (bad is None and name != "lr"):
                add(f"SGD.{name}={label}", lambda name=name, bad=bad: ps.SGD(**{"lr": 0.1, name: bad}), name)
        if bad is not None:
            add(f"SGD.output_scale={label}", lambda bad=bad: ps.SGD(lr=0.1, output_scale=bad), "output_scale")
            add(f"Greedy.temperature={label}", lambda bad=bad: ps.Greedy(temperature=bad), "temperature")
            add(f"Online.chi={label}", lambda bad=bad: ps.Online(chi=bad), "chi")
            add(f"Online.label_noise={label}", lambda bad=bad: ps.Online(label_noise=bad), "label_noise")
            add(f"Dataset.test_fraction={label}", lambda bad=bad: ps.Dataset(P=5, test_fraction=bad), "test_fraction")
            add(f"from_arrays.test_fraction={label}",
                lambda bad=bad: ps.Dataset.from_arrays(np.ones((10, 3)), np.ones(10), test_fraction=bad), "test_fraction")
            add(f"train.init_scale={label}", lambda bad=bad: _train(init_scale=bad), "init_scale")
            add(f"train.alpha={label}", lambda bad=bad: _train(steps=None, alpha=bad), "alpha")
            add(f"train.success_eps={label}", lambda bad=bad: _train(success_eps=bad), "success_eps")
            add(f"chaos.random_layer.J={label}", lambda bad=bad: ps.chaos.random_layer(10, bad), "J")
            add(f"chaos.mean_field.J={label}", lambda bad=bad: ps.chaos.mean_field_lyapunov(bad), "J")
    # user data
    X = np.random.default_rng(0).standard_normal((20, 10))
    y = np.sign(X[:, 0])
    for label, (bx, by, name) in {"complex X": (X + 1j, y, "X"), "complex y": (X, y + 0j, "y"),
                                  "str X": (np.full((20, 10), "a"), y, "X"), "None X": (None, y, "X"),
                                  "objects X": (np.full((20, 10), None), y, "X"), "X 1-D": (X[0], y, "X"),
                                  "X 3-D": (X[None], y, "X"), "y shape": (X, y[:5], "y"),
                                  "nan X": (X * np.nan, y, "X")}.items():
        add(f"from_arrays.{label}", lambda bx=bx, by=by: ps.Dataset.from_arrays(bx, by), name)
    add("chaos.lyapunov.W=complex", lambda: ps.chaos.lyapunov(np.eye(3) * 1j), "W")
    add("chaos.lyapunov.W=str", lambda: ps.chaos.lyapunov("abc"), "W")
    # combinations only train can judge
    add("train.label_noise=1.5 classifier", lambda: _train(teacher=ps.Perceptron(10), student=ps.Perceptron(
        10, activation="erf"), data=ps.Online(label_noise=1.5)), "label_noise")
    add("train.record=array beyond steps", lambda: _train(record=np.array([0, 1, 5])), "record")
    add("train.record=list beyond steps", lambda: _train(record=[0, 1, 5]), "record")
    add("train.record=float array", lambda: _train(record=np.array([0.0, 1.0])), "record")
    add("train.record=2-D", lambda: _train(record=np.array([[0, 1]])), "record")
    add("train.record=bool array", lambda: _train(record=np.array([False, True])), "record")
    return out


@pytest.mark.parametrize("build, name", _cases())
def test_every_bad_physsgd_argument_is_a_one_line_value_error_naming_it(build, name):
    with pytest.raises(ValueError) as e:
        build()
    msg = str(e.value)
    assert name in msg and "\n" not in msg and len(msg) < 400, msg


# limits that keep a call from running for days or exhausting the memory; checked through
# check_args (train's own first step) so a broken check cannot hang the test suite
def _check(**over):
    return train_module.check_args(**_args(**over))


@pytest.mark.parametrize("over, match", [
    (dict(steps=2 ** 63), r"steps=9223372036854775808 is out of range; allowed: integer in \[1, 1000000000000\]"),
    (dict(steps=10 ** 13), r"steps=10000000000000 is out of range"),
    (dict(steps=None, epochs=10 ** 15, data=ps.Dataset(P=10)), r"epochs=1000000000000000 gives 1e\+16 steps .*epochs <= 100000000000"),
    (dict(steps=None, epochs=1e15, data=ps.Dataset(P=10)), r"epochs=1e\+15 must be an integer|epochs=1000000000000000.0 must be an integer"),
    (dict(steps=None, alpha=1e30), r"alpha=1e\+30 gives 1e\+31 steps .*allowed: alpha <= 1e\+11"),
    (dict(record=10 ** 9), r"record=1000000000 is out of range; allowed: integer in \[2, 1000000\]"),
    (dict(replicas=10 ** 9), r"replicas=1000000000: this run needs about .* GB of memory"),
    (dict(teacher=ps.Committee(N=10 ** 9), student=ps.Committee(N=10 ** 9)), r"N=1000000000: this run needs about"),
    (dict(algo=ps.SGD(lr=0.1, batch_size=10 ** 12)), r"batch_size=1000000000000: this run needs"),
    (dict(data=ps.Dataset(P=10 ** 12)), r"P=1000000000000: this run needs"),
])
def test_documented_upper_limits(over, match):
    with pytest.raises(ValueError, match=match):
        _check(**over)


# ---- analysis

_TAB = an.Table({"N": np.repeat([10, 20], 20), "batch_size": np.tile(np.repeat([1, 2, 4, 8], 5), 2),
                 "success": np.tile([True, False], 20), "overlap": np.linspace(0, 1, 40)})
_SZ = np.repeat([10.0, 20.0, 40.0], 5)
_X = np.tile(np.linspace(-1, 1, 5), 3)
_Y = np.tanh(_X * _SZ ** 0.5)
_DY = np.full(15, 0.05)

AN_CASES = [
    ("load", dict(path=None), "path"), ("load", dict(path=123), "path"),
    ("aggregate", dict(table=[1, 2], by="N"), "table"), ("aggregate", dict(table=_TAB, by=1), "by"),
    ("aggregate", dict(table=_TAB, by=[1]), "by"), ("aggregate", dict(table=_TAB, by="N", observable=None), "observable"),
    ("aggregate", dict(table=_TAB, by="N", z68=math.nan), "z68"), ("aggregate", dict(table=_TAB, by="N", z95=-1), "z95"),
    ("aggregate", dict(table=_TAB, by="N", z68=1j), "z68"),
    ("critical_point", dict(table_or_arrays=3), "table_or_arrays"),
    ("critical_point", dict(table_or_arrays=_TAB, level=math.nan), "level"),
    ("critical_point", dict(table_or_arrays=_TAB, level="a"), "level"),
    ("critical_point", dict(table_or_arrays=_TAB, bootstrap=20.5), "bootstrap"),
    ("critical_point", dict(table_or_arrays=_TAB, bootstrap=True), "bootstrap"),
    ("critical_point", dict(table_or_arrays=_TAB, bootstrap=None), "bootstrap"),
    ("critical_point", dict(table_or_arrays=_TAB, bootstrap=10 ** 9), "bootstrap"),
    ("critical_point", dict(table_or_arrays=_TAB, seed=-1), "seed"),
    ("critical_point", dict(table_or_arrays=_TAB, seed=1.5), "seed"),
    ("critical_point", dict(table_or_arrays=_TAB, seed=2 ** 64), "seed"),
    ("critical_point", dict(table_or_arrays=_TAB, nu=1j), "nu"),
    ("critical_point", dict(table_or_arrays=_TAB, nu="1"), "nu"),
    ("critical_point", dict(table_or_arrays=_TAB, nu=0.0), "nu"),
    ("critical_point", dict(table_or_arrays=_TAB, control=1), "control"),
    ("critical_point", dict(table_or_arrays=_TAB, size=None), "size"),
    ("critical_point", dict(table_or_arrays=_TAB, method=["logistic"]), "method"),
    ("critical_point", dict(table_or_arrays=_TAB, bounds=(1,)), "bounds"),
    ("critical_point", dict(table_or_arrays=_TAB, bounds=(1, math.nan)), "bounds"),
    ("critical_point", dict(table_or_arrays=_TAB, log_control="yes"), "log_control"),
    ("critical_point", dict(table_or_arrays=_TAB, extrapolate=1), "extrapolate"),
    ("collapse", dict(size=_SZ, x=_X, y=_Y + 1j, dy=_DY), "y"),
    ("collapse", dict(size=_SZ, x=["a"] * 15, y=_Y, dy=_DY), "x"),
    ("collapse", dict(size=None, x=_X, y=_Y, dy=_DY), "size"),
    ("collapse", dict(size=_SZ, x=_X, y=_Y, dy=_DY, xc=1j), "xc"),
    ("collapse", dict(size=_SZ, x=_X, y=_Y, dy=_DY, nu="a"), "nu"),
    ("collapse", dict(size=_SZ, x=_X, y=_Y, dy=_DY, bootstrap=10 ** 9), "bootstrap"),
    ("collapse", dict(size=_SZ, x=_X, y=_Y, dy=_DY, bootstrap=True), "bootstrap"),
    ("collapse", dict(size=_SZ, x=_X, y=_Y, dy=_DY, seed=-1), "seed"),
    ("collapse", dict(size=_SZ, x=_X, y=_Y, dy=_DY, fixed=5), "fixed"),
    ("collapse", dict(size=_SZ, x=_X, y=_Y, dy=_DY, x_window=(math.nan, 1)), "x_window"),
    ("collapse", dict(size=_SZ, x=_X, y=_Y, dy=_DY, systematics="no"), "systematics"),
    ("collapse", dict(size=_SZ, x=_X, y=_Y, dy=_DY, corrections=True, omega="1"), "omega"),
    ("collapse", dict(size=_SZ, x=_X, y=_Y, dy=_DY, zeta=True), "zeta"),
    ("crossings", dict(size=_SZ, x=_X, y=_Y, dy=_DY, nu=1j), "nu"),
    ("crossings", dict(size=_SZ, x=_X, y=_Y, dy=_DY, omega="a"), "omega"),
    ("crossings", dict(size=_SZ, x=_X, y=_Y, dy=_DY, bootstrap=10 ** 9), "bootstrap"),
    ("crossings", dict(size=_SZ, x=_X, y=_Y, dy=_DY, n_local=True), "n_local"),
    ("crossings", dict(size=_SZ, x=_X, y=_Y, dy=_DY, degree=10 ** 20), "degree"),
    ("crossings", dict(size=_SZ, x=_X, y=_Y, dy=_DY, seed=-1), "seed"),
    ("crossings", dict(size=_SZ, x=_X, y=_Y * 1j, dy=_DY), "y"),
    ("power_law", dict(x=[1, 2, 3j], y=[1, 2, 3]), "x"),
    ("power_law", dict(x=["a", "b"], y=[1, 2]), "x"),
    ("power_law", dict(x=None, y=[1, 2]), "x"),
    ("power_law", dict(x=[1, 2, 3], y=[1, 2, 3], dy=[1j, 1, 1]), "dy"),
    ("power_law", dict(x=[1, 2, 3], y=[1, 2, 3], bootstrap=10 ** 9), "bootstrap"),
    ("power_law", dict(x=[1, 2, 3], y=[1, 2, 3], bootstrap=10.5), "bootstrap"),
    ("power_law", dict(x=[1, 2, 3], y=[1, 2, 3], bootstrap=True), "bootstrap"),
    ("power_law", dict(x=[1, 2, 3], y=[1, 2, 3], seed=-1), "seed"),
    ("power_law", dict(x=[1, 2, 3], y=[1, 2, 3], x_min=math.nan), "x_min"),
    ("power_law", dict(x=[1, 2, 3], y=[1, 2, 3], x_max="a"), "x_max"),
    ("transition_order", dict(table=3), "table"),
    ("transition_order", dict(table=_TAB, min_replicas=0), "min_replicas"),
    ("transition_order", dict(table=_TAB, min_replicas=True), "min_replicas"),
    ("transition_order", dict(table=_TAB, bootstrap=10 ** 9), "bootstrap"),
    ("transition_order", dict(table=_TAB, seed=-1), "seed"),
    ("transition_order", dict(table=_TAB, starts=("teacher", "teacher")), "starts"),
    ("transition_order", dict(table=_TAB, starts="teacher"), "starts"),
    ("transition_order", dict(table=_TAB, near="a"), "near"),
    ("transition_order", dict(table=_TAB, lifetime_at={10: math.nan}), "lifetime_at"),
    ("transition_order", dict(table=_TAB, distribution=3), "distribution"),
    ("transition_order", dict(table=_TAB, binder=("a", 1)), "binder"),
    ("transition_order", dict(table=_TAB, min_events=0), "min_events"),
    ("transition_order", dict(table=_TAB, log_control=1), "log_control"),
    ("thresholds", dict(table=None), "table"),
    ("thresholds", dict(table=_TAB, starts=["teacher"]), "starts"),
    ("thresholds", dict(table=_TAB, bootstrap=5), "bootstrap"),
    ("thresholds", dict(table=_TAB, nu=-1.0), "nu"),
    ("thresholds", dict(table=_TAB, level=math.inf), "level"),
    ("thresholds", dict(table=_TAB, errors=None), "errors"),
    ("lifetimes", dict(table=_TAB, at=1j), "at"),
    ("lifetimes", dict(table=_TAB, min_events=2.5), "min_events"),
    ("lifetimes", dict(table=_TAB, start=None), "start"),
    ("lifetimes", dict(table=_TAB, event=5), "event"),
]


@pytest.mark.parametrize("fn, kwargs, name", AN_CASES,
                         ids=[f"{f}.{n}={kw[n]!r}"[:60] for f, kw, n in AN_CASES])
def test_every_bad_analysis_argument_is_a_value_error_naming_it(fn, kwargs, name):
    with pytest.raises(ValueError) as e:
        an_validate.check(fn, kwargs)                  # the rules alone: nothing heavy can start
    msg = str(e.value)
    assert name in msg and "\n" not in msg and len(msg) < 300, msg


def _cheap(kwargs):        # cases that would run long if the rule were missing are left to the rules test
    return not any(isinstance(v, int) and not isinstance(v, bool) and v >= 10 ** 9 for v in kwargs.values())


@pytest.mark.parametrize("fn, kwargs, name", [c for c in AN_CASES if _cheap(c[1])][::3])
def test_the_public_analysis_functions_apply_the_rules(fn, kwargs, name):
    with pytest.raises(ValueError, match=name):
        getattr(an, fn)(**kwargs)


def test_wrapped_analysis_functions_keep_name_doc_and_signature():
    import inspect
    from analysis import order, table
    assert an.load is table.load and an.transition_order is order.transition_order   # decorated in place
    assert an.load.__name__ == "load" and an.load.__doc__ == an.load.__wrapped__.__doc__
    assert an.load.__doc__.startswith("One row per (task, replica)")
    assert list(inspect.signature(an.critical_point).parameters)[:3] == ["table_or_arrays", "control", "size"]
    with pytest.raises(ValueError, match=r"power_law\(\): missing a required argument: 'y'"):
        an.power_law([1, 2])
