"""The training driver: validate, allocate, hand arrays to the parallel kernel, wrap the result."""
from __future__ import annotations

import math
import time as _time
from collections import namedtuple
from contextlib import contextmanager
from dataclasses import dataclass

import numba
import numpy as np

from . import _validate as v
from .algorithms import SGD, Greedy
from .data import Dataset, Online
from .kernels import engine, network, observables as obs, steps as ksteps
from .kernels.rng import seed_states
from .models import Committee
from .result import TrainResult

STOP_RULES = {None: engine.STOP_NONE, "zero_train_error": engine.STOP_ZERO_TRAIN_ERROR,
              "zero_loss": engine.STOP_ZERO_LOSS, "success": engine.STOP_SUCCESS}
_ACT = {"sign": network.SIGN, "erf": network.ERF, "tanh": network.TANH, "relu": network.RELU,
        "linear": network.LINEAR}
_OUT = {"sum": network.SUM, "sign": network.MAJORITY, "parity": network.PARITY}
_LOSS = {"square": network.SQUARE, "hinge": network.HINGE, "logistic": network.LOGISTIC,
         "squared_hinge": network.SQUARED_HINGE, "hebbian": network.HEBBIAN}
_TIES = {"accept": ksteps.TIE_ACCEPT, "reject": ksteps.TIE_REJECT, "random": ksteps.TIE_RANDOM}
_ODD = ("sign", "erf", "tanh", "linear")
_STREAM_SETUP, _STREAM_TRAIN, _STREAM_TEST = 0, 1, 2

KernelConfig = namedtuple("KernelConfig", [
    "algo", "N", "act_s", "out_s", "act_t", "out_t", "dense_s", "dense_t", "fan_in_t", "loss",
    "margin", "output_scale", "lr", "momentum", "weight_decay", "batch_size", "temperature",
    "ties", "new_batch_per_proposal", "inputs", "chi", "label_noise", "P", "user_data",
    "test_size", "eg_mode", "success_eps", "stop_rule", "check_every", "exact_votes"])


def train(teacher, student, algo, data, steps=None, epochs=None, alpha=None, replicas=32, seed=0,
          init_scale=1.0, record=50, stop=None, success_eps=None, threads=None) -> TrainResult:
    """Train ``replicas`` independent students, in parallel over cores.

    Exactly one of ``steps`` (SGD updates, or Greedy sweeps), ``epochs`` (finite data) or
    ``alpha`` (samples seen / N) sets the length. ``record``: number of log-spaced record points
    (or an increasing array of steps). ``stop``: None | "zero_train_error" | "zero_loss" (every
    training margin y F >= margin, hinge-type losses) | "success" (eps_g <= success_eps), checked
    at every record point and every epoch (finite data) or every alpha = 1 (online).
    ``success_eps``: threshold on the final eps_g for ``success``; default 0 (exact recovery) for
    binary-weight classifiers, 0.01 for other classifiers, 1e-3 for regression.
    Replica r draws its teacher, data and moves from streams keyed by (seed, r): the arrays are
    bit-identical for any ``threads``.
    """
    plan = check_args(teacher, student, algo, data, steps=steps, epochs=epochs, alpha=alpha,
                      replicas=replicas, seed=seed, init_scale=init_scale, record=record, stop=stop,
                      success_eps=success_eps, threads=threads)
    replicas, seed, init_scale, success_eps = plan.replicas, plan.seed, plan.init_scale, plan.success_eps
    record_steps, samples_per_step, total = plan.record_steps, plan.samples_per_step, plan.total_steps

    setup = _setup_replicas(teacher, student, data, replicas, seed, init_scale)
    cfg = _kernel_config(teacher, student, algo, data, setup, success_eps, stop, plan.check_every)
    K, M = student.K, setup["M"]
    T_rec = len(record_steps)
    out = dict(eps_g=np.full((replicas, T_rec), np.nan), train_err=np.full((replicas, T_rec), np.nan),
               R=np.full((replicas, T_rec, K, M), np.nan), Q=np.full((replicas, T_rec, K, K), np.nan),
               T=np.zeros((replicas, M, M)), wchange=np.full((replicas, T_rec), np.nan),
               wnorm=np.full((replicas, T_rec), np.nan), diverged=np.zeros(replicas, bool),
               success=np.zeros(replicas, bool), stopped=np.zeros(replicas, np.int64))
    t0 = _time.perf_counter()
    with _numba_threads(threads):
        engine.train_replicas(cfg, setup["W"], setup["fields_s"], setup["vs"], setup["Wt"],
                              setup["fields_t"], setup["vt"], setup["Xuser"], setup["yuser"],
                              setup["Xtest"], setup["ytest"],
                              seed_states(seed, replicas, _STREAM_TRAIN),
                              seed_states(seed, replicas, _STREAM_TEST), record_steps,
                              out["eps_g"], out["train_err"], out["R"], out["Q"], out["T"],
                              out["wchange"], out["wnorm"], out["diverged"], out["success"],
                              out["stopped"])
    wall = _time.perf_counter() - t0
    params = {"teacher": teacher.to_dict() if teacher is not None else None,
              "student": student.to_dict(), "algorithm": algo.to_dict(), "data": data.to_dict(),
              "run": {"steps": steps, "epochs": epochs, "alpha": alpha, "replicas": replicas,
                      "seed": seed, "init_scale": init_scale,
                      "record": record if np.isscalar(record) else list(map(int, record)),
                      "stop": stop, "success_eps": success_eps, "total_steps": int(total)}}
    return TrainResult(time=record_steps * samples_per_step / student.N, steps=record_steps.copy(),
                       eps_g=out["eps_g"], train_error=out["train_err"], R=out["R"], Q=out["Q"],
                       T=out["T"], weight_change=out["wchange"], weight_norm=out["wnorm"],
                       diverged=out["diverged"], success=out["success"], stopped_at=out["stopped"],
                       weights=setup["W"], teacher_weights=setup["Wt"],
                       student_fields=_index_fields(student, setup["fields_s"]),
                       teacher_fields=_index_fields(teacher, setup["fields_t"]) if teacher else None,
                       params=params, wall_time=wall)


def _index_fields(model, fields):
    """Receptive fields as input indices (the kernels skip the index array for dense units)."""
    if model.topology != "dense":
        return fields.astype(np.int32)
    return np.broadcast_to(np.arange(model.N, dtype=np.int32), fields.shape[:2] + (model.N,)).copy()


@dataclass(frozen=True)
class RunPlan:
    """What ``check_args`` derives from valid arguments."""
    replicas: int
    seed: int
    init_scale: float
    success_eps: float
    samples_per_step: int
    total_steps: int
    record_steps: np.ndarray
    check_every: int


def check_args(teacher, student, algo, data, steps=None, epochs=None, alpha=None, replicas=32,
               seed=0, init_scale=1.0, record=50, stop=None, success_eps=None, threads=None) -> RunPlan:
    """Every check ``ps.train`` makes, without training (sweeps validate all tasks up front).
    Raises ValueError naming the parameter, its value and the allowed range."""
    _check_specs(teacher, student, algo, data)
    replicas = v.integer("replicas", replicas, 1)
    seed = v.integer("seed", seed, 0)
    init_scale = v.real("init_scale", init_scale, 0)
    if student.weights == "binary" and init_scale != 1.0:
        raise ValueError(f"init_scale={init_scale} applies to gaussian weights only; binary "
                         "student weights are +-1 (leave init_scale=1)")
    if stop not in STOP_RULES:
        raise ValueError(f"stop={stop!r} is not allowed; choose one of {list(STOP_RULES)}")
    finite = isinstance(data, Dataset)
    if stop in ("zero_train_error", "zero_loss") and not finite:
        raise ValueError(f"stop={stop!r} needs a finite training set (ps.Dataset); got {type(data).__name__}")
    if stop == "zero_train_error" and not student.classifier:
        raise ValueError("stop='zero_train_error' needs a classifier student (output 'sign' or 'parity')")
    if stop == "zero_loss" and not (isinstance(algo, SGD) and algo.loss in ("hinge", "squared_hinge")):
        raise ValueError("stop='zero_loss' needs SGD with loss 'hinge' or 'squared_hinge'")
    if success_eps is None:
        success_eps = (0.0 if student.weights == "binary" and student.classifier
                       else 0.01 if student.classifier else 1e-3)
    success_eps = v.real("success_eps", success_eps, 0)

    samples_per_step = algo.batch_size
    if isinstance(algo, Greedy) and algo.new_batch == "proposal":
        samples_per_step *= student.n_weights
    steps_per_epoch = data.P // algo.batch_size if finite else 0
    total = _total_steps(steps, epochs, alpha, finite, steps_per_epoch, student.N, samples_per_step)
    record_steps = _record_grid(record, total)
    check_every = steps_per_epoch if finite else max(1, round(student.N / samples_per_step))
    if threads is not None:
        v.integer("threads", threads, 1, numba.config.NUMBA_NUM_THREADS)
    return RunPlan(replicas, seed, init_scale, success_eps, samples_per_step, total, record_steps,
                   int(max(1, check_every)))


def _check_specs(teacher, student, algo, data):
    if not isinstance(student, Committee):
        raise ValueError(f"student must be a ps.Committee or ps.Perceptron; got {type(student).__name__}")
    if not isinstance(algo, (SGD, Greedy)):
        raise ValueError(f"algo must be ps.SGD or ps.Greedy; got {type(algo).__name__}")
    if not isinstance(data, (Online, Dataset)):
        raise ValueError(f"data must be ps.Online or ps.Dataset; got {type(data).__name__}")
    user = isinstance(data, Dataset) and data.user_data
    if teacher is None and not user:
        raise ValueError("teacher=None is only allowed with user data (ps.Dataset.from_arrays)")
    if teacher is not None:
        if not isinstance(teacher, Committee):
            raise ValueError(f"teacher must be a ps.Committee, ps.Perceptron or None; got {type(teacher).__name__}")
        if user:
            raise ValueError("user data (ps.Dataset.from_arrays) has its own labels: pass teacher=None")
        if teacher.N != student.N:
            raise ValueError(f"student.N={student.N} must equal teacher.N={teacher.N}")
        if student.classifier and not teacher.classifier:
            raise ValueError(f"a classifier student (output={student.output!r}) needs a classifier "
                             f"teacher (output 'sign' or 'parity'); got teacher output={teacher.output!r}")
    if user:
        if data.X.shape[1] != student.N:
            raise ValueError(f"student.N={student.N} must equal the number of columns of X ({data.X.shape[1]})")
        if student.classifier and not np.all(np.isin(data.y, (-1.0, 1.0))):
            raise ValueError("a classifier student needs labels y in {-1, +1}")
    if student.weights == "axis":
        raise ValueError("student weights='axis' is not allowed; 'axis' is a teacher (label sign(x_1))")
    labels_pm1 = student.classifier or (teacher is not None and teacher.classifier) or user
    if isinstance(algo, SGD):
        if student.weights != "gaussian":
            raise ValueError(f"student weights={student.weights!r} cannot be trained by SGD; SGD needs "
                             "weights='gaussian' (use ps.Greedy for binary weights)")
        if student.activation == "sign":
            raise ValueError("student activation='sign' has no gradient; SGD needs 'erf', 'tanh', "
                             "'relu' or 'linear'")
        if algo.loss != "square" and not labels_pm1:
            raise ValueError(f"loss={algo.loss!r} needs +-1 labels: a classifier teacher "
                             "(output 'sign' or 'parity')")
    else:
        if student.weights != "binary":
            raise ValueError(f"ps.Greedy flips +-1 weights: student weights must be 'binary'; got {student.weights!r}")
        if not student.classifier:
            raise ValueError(f"ps.Greedy counts misclassified samples: student output must be 'sign' "
                             f"or 'parity'; got {student.output!r}")
    if isinstance(data, Dataset) and algo.batch_size > data.P:
        raise ValueError(f"batch_size={algo.batch_size} is larger than the training set P={data.P}; "
                         f"allowed: 1 <= batch_size <= P")


def _total_steps(steps, epochs, alpha, finite, steps_per_epoch, N, samples_per_step):
    given = [name for name, val in (("steps", steps), ("epochs", epochs), ("alpha", alpha)) if val is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of steps, epochs, alpha; got {given or 'none'}")
    if steps is not None:
        return v.integer("steps", steps, 1)
    if epochs is not None:
        if not finite:
            raise ValueError("epochs needs a finite training set (ps.Dataset); use steps or alpha online")
        return v.integer("epochs", epochs, 1) * steps_per_epoch
    alpha = v.real("alpha", alpha, 0, low_open=True)
    return max(1, math.ceil(alpha * N / samples_per_step - 1e-9))


def _record_grid(record, total):
    if np.isscalar(record):
        n = v.integer("record", record, 2)
        # n - 1 log-spaced points from step 1 to the last step (geomspace(1, t, 1) would be [1])
        grid = np.unique(np.round(np.geomspace(1, total, max(n - 1, 2))).astype(np.int64))
        grid = grid[-(n - 1):]
        return np.concatenate([[0], grid]).astype(np.int64)
    grid = np.asarray(record)
    if grid.ndim != 1 or grid.size == 0 or not np.issubdtype(grid.dtype, np.integer):
        raise ValueError("record must be an integer >= 2 or a 1-D array of integer steps")
    if np.any(np.diff(grid) <= 0) or grid[0] < 0 or grid[-1] > total:
        raise ValueError(f"record steps must be strictly increasing within [0, {total}]")
    return grid.astype(np.int64)


def _fields(model, rng):
    K, d, N = model.K, model.d, model.N
    if model.topology == "tree":
        return np.arange(N, dtype=np.int64).reshape(K, d)
    if model.topology == "random":
        return np.stack([np.sort(rng.choice(N, d, replace=False)) for _ in range(K)]).astype(np.int64)
    return np.zeros((K, 1), np.int64)      # dense: unused


def _weights(model, rng, scale):
    K, F = model.K, model.d
    if model.weights == "binary":
        return rng.choice(np.array([-1.0, 1.0]), size=(K, F))
    if model.weights == "axis":
        w = np.zeros((1, F))
        w[0, 0] = math.sqrt(F)
        return w
    return scale * rng.standard_normal((K, F))


def _setup_replicas(teacher, student, data, replicas, seed, init_scale):
    """Teacher, receptive fields and initial student of every replica, from (seed, r, setup)."""
    M = teacher.K if teacher is not None else 0
    Ft = teacher.d if teacher is not None else 1
    W = np.empty((replicas, student.K, student.d))
    fields_s = None
    Wt = np.empty((replicas, M, Ft))
    fields_t = None
    share_fields = (teacher is not None and student.topology == teacher.topology == "random"
                    and student.K == teacher.K and student.d == teacher.d)
    for r in range(replicas):
        rng = np.random.default_rng(np.random.SeedSequence([seed, r, _STREAM_SETUP]))
        if teacher is not None:
            ft = _fields(teacher, rng)
            Wt[r] = _weights(teacher, rng, 1.0)
        else:
            ft = np.zeros((0, 1), np.int64)
        fs = ft.copy() if share_fields else _fields(student, rng)
        W[r] = _weights(student, rng, init_scale)
        if fields_s is None:
            fields_s = np.empty((replicas,) + fs.shape, np.int64)
            fields_t = np.empty((replicas,) + ft.shape, np.int64)
        fields_s[r], fields_t[r] = fs, ft
    vs = np.asarray(student.second_layer if student.second_layer else np.ones(student.K), float)
    vt = (np.asarray(teacher.second_layer if teacher.second_layer else np.ones(M), float)
          if teacher is not None else np.zeros(0))
    N = student.N
    Xuser, Xtest = np.zeros((0, N)), np.zeros((0, N))
    yuser, ytest = np.zeros(0), np.zeros(0)
    if isinstance(data, Dataset) and data.user_data:
        perm = np.random.default_rng(np.random.SeedSequence([seed, 2**31])).permutation(len(data.y))
        train_idx, test_idx = perm[:data.P], perm[data.P:]
        Xuser, yuser = np.ascontiguousarray(data.X[train_idx]), np.ascontiguousarray(data.y[train_idx])
        Xtest, ytest = np.ascontiguousarray(data.X[test_idx]), np.ascontiguousarray(data.y[test_idx])
    return dict(M=M, W=W, fields_s=fields_s, Wt=Wt, fields_t=fields_t, vs=vs, vt=vt,
                Xuser=Xuser, yuser=yuser, Xtest=Xtest, ytest=ytest)


def eps_g_mode(teacher, student, algo, data) -> int:
    """Which closed form gives eps_g exactly (Gaussian inputs), or the test set."""
    if (teacher is None or data.inputs != "gaussian" or data.chi != 0
            or (isinstance(algo, SGD) and algo.output_scale is not None)):
        return obs.EG_TESTSET
    s, t = student, teacher
    if s.output == t.output == "sum":
        if s.activation == t.activation == "erf":
            return obs.EG_ERF
        if s.activation == t.activation == "linear":
            return obs.EG_LINEAR
        return obs.EG_TESTSET
    plain = s.second_layer is None and t.second_layer is None
    if not (s.classifier and t.classifier and plain and s.activation in _ODD and t.activation in _ODD):
        return obs.EG_TESTSET
    if s.K == t.K == 1:
        return obs.EG_ARCCOS
    if s.topology == t.topology == "tree" and s.d == t.d:
        if s.output == t.output == "parity":
            return obs.EG_TREE_PARITY
        if s.output == t.output == "sign" and s.activation == t.activation == "sign":
            return obs.EG_TREE_MAJORITY
    return obs.EG_TESTSET


def _kernel_config(teacher, student, algo, data, setup, success_eps, stop, check_every):
    sgd = isinstance(algo, SGD)
    user = isinstance(data, Dataset) and data.user_data
    return KernelConfig(
        algo=ksteps.SGD_ALGO if sgd else ksteps.GREEDY_ALGO, N=int(student.N),
        act_s=_ACT[student.activation], out_s=_OUT[student.output],
        act_t=_ACT[teacher.activation] if teacher else 0, out_t=_OUT[teacher.output] if teacher else 0,
        dense_s=student.topology == "dense", dense_t=teacher is not None and teacher.topology == "dense",
        fan_in_t=int(teacher.d) if teacher else 1,
        loss=_LOSS[algo.loss] if sgd else 0, margin=float(algo.margin) if sgd else 0.0,
        output_scale=float(algo.output_scale or 0.0) if sgd else 0.0,
        lr=float(algo.lr) if sgd else 0.0, momentum=float(algo.momentum) if sgd else 0.0,
        weight_decay=float(algo.weight_decay) if sgd else 0.0, batch_size=int(algo.batch_size),
        temperature=0.0 if sgd else float(algo.temperature),
        ties=0 if sgd else _TIES[algo.ties],
        new_batch_per_proposal=(not sgd) and algo.new_batch == "proposal",
        inputs=engine.INPUT_BINARY if data.inputs == "binary" else engine.INPUT_GAUSSIAN,
        chi=float(data.chi), label_noise=float(data.label_noise),
        P=int(data.P) if isinstance(data, Dataset) else 0, user_data=bool(user),
        test_size=int(data.test_size), eg_mode=int(eps_g_mode(teacher, student, algo, data)),
        success_eps=float(success_eps), stop_rule=STOP_RULES[stop], check_every=int(max(1, check_every)),
        exact_votes=student.activation == "sign" and bool(np.all(np.mod(setup["vs"], 1.0) == 0.0)))


@contextmanager
def _numba_threads(threads):
    if threads is None:
        yield
        return
    threads = v.integer("threads", threads, 1, numba.config.NUMBA_NUM_THREADS)
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        yield
    finally:
        numba.set_num_threads(before)
