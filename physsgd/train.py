"""The training driver: validate, allocate, hand arrays to the parallel kernel, wrap the result."""
from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass

import numba
import numpy as np

from . import _validate as v
from . import replicas as parallel
from .algorithms import SGD, Greedy
from .data import Dataset, Online
from .kernels import config as kc, engine as kengine
from .kernels.rng import seed_states
from .models import Committee
from .result import TrainResult

STOP_RULES = kc.STOP_CODES
INITS = ("random", "teacher")
ENGINES = ("direct", "overlaps")
MEASURES = tuple(kc.MEASURE_CODES)     # grad_noise, noise_scale, sharpness, hessian_trace
_HESSIAN_MEASURES = ("sharpness", "hessian_trace")
LANCZOS_ITERS, LANCZOS_TOL = 300, 1e-6   # sharpness: Hessian-vector products, relative residual
_ODD = ("sign", "erf", "tanh", "linear")
KernelConfig = kc.KernelConfig


def train(teacher, student, algo, data, steps=None, epochs=None, alpha=None, replicas=32, seed=0,
          init_scale=1.0, record=50, stop=None, success_eps=None, threads=None, init="random",
          window=None, probe_every=None, check_every=None, engine="direct",
          measure=None) -> TrainResult:
    """Train ``replicas`` independent students, in parallel over cores.

    Length: exactly one of ``steps`` (SGD updates, or Greedy sweeps), ``epochs`` (finite data) or
    ``alpha`` (samples seen / N). ``record``: number of log-spaced record points (or an
    increasing array of steps) at which R, Q, eps_g, ... are stored.

    Start (``init``): "random" (i.i.d. weights times ``init_scale``), "teacher" (a planted start:
    every replica starts on its own teacher's weights; student and teacher must have the same
    architecture and weight kind), or an array of initial student weights, shape (K, F) for all
    replicas or (replicas, K, F), F the fan-in (+-1 entries for binary students). A planted or
    explicit start consumes the same random numbers as a random one, so runs that differ only in
    ``init`` share teachers, data and batches.

    Stationary observables (recorded whatever ``stop`` is; ``TrainResult.time_at_teacher``,
    ``first_passage``, ``first_exit``, ``window_overlap``, ``window_eps_g``): the state after
    step t is "on the teacher" when the student computes the teacher's function, decided after
    every step for binary sign-unit students with the teacher's architecture and success_eps = 0:
    from the weights alone for tree machines and perceptrons (``params["run"]["teacher_rule"]
    == "weights"``: the units are the teacher's up to the architecture's symmetries, which is
    exact there), from the weights and else the test set for dense and random-field machines
    (``"weights+test"``); otherwise from eps_g <= ``success_eps`` (closed form, or the test set
    with an early exit) at the probes only (``"eps"``). ``window``: the steps over which time_at_teacher and the window
    means are taken, both ends inclusive: None = the second half of the run (steps
    total//2 + 1 ... total), a fraction f in (0, 1] = the last ceil(f * total) steps, or a pair
    (first, last) of steps. A replica stopped early (stop rule, divergence) is measured over the
    part of the window it ran (NaN if none): stationary measurements want ``stop=None``.
    ``probe_every``: steps between the probes that measure window_overlap and window_eps_g (and,
    under the "eps" rule, whether the student is on the teacher); default ``check_every``.
    window_eps_g is the mean error of the fresh batches met in the window when the data are
    online without label noise (each batch error, measured before its move, is an unbiased
    estimate of the student's eps_g), else eps_g at the probes.

    ``stop``: None | "zero_train_error" | "zero_loss" (every training margin y F >= margin,
    hinge-type losses) | "success" (the student is on the teacher), checked every
    ``check_every`` steps and at every record point; default cadence: every epoch (finite data)
    or every max(1, round(N / samples per step)) steps online (about once per N samples seen).
    ``success_eps``: the eps_g threshold of "on the teacher" under the "eps" rule and of
    ``success``; default 0 (exact recovery) for binary-weight classifiers, 0.01 for other
    classifiers, 1e-3 for regression.

    ``engine``: "direct" (simulate the weights) or "overlaps" (the exact overlap chain of online
    SGD on Gaussian inputs, cost independent of N; no weights returned).

    ``measure``: a name or list of names of observables taken at every record point, as
    ``TrainResult`` fields of shape (replicas, T) (None when not asked for); ps.SGD and the
    direct engine only. Phi(w) is the objective SGD descends: the mean training loss as SGD sees
    it (loss(F)/output_scale) plus weight_decay/2 |w|^2; g_mu is sample mu's loss gradient,
    G = grad Phi, m = batch_size. Momentum does not enter (it shapes the step, not the gradient).

    - "grad_noise": E|g_B - E g_B|^2, the total variance (trace of the covariance, summed over
      the weights, not divided by their number) of the mini-batch gradient g_B (mean of g_mu
      over a batch). Finite data: exact over the training set, sigma^2/m (P - m)/(P - 1) with
      sigma^2 = (1/P) sum_mu |g_mu - mean g|^2: the variance of the mean of m *distinct* samples,
      which is how both batch modes (epochs, independent) draw a step's batch (marginally a
      uniform m-subset); times (P - 1)/(P - m) it is the with-replacement value sigma^2/m.
      Online: s^2/m, s^2 the unbiased sample variance of test_size fresh samples (labels with
      their noise) drawn at each record point from the measure stream.
    - "noise_scale": sigma^2/|G|^2 (online: s^2 over the unbiased estimate |mean g + weight_decay
      w|^2 - s^2/test_size), the "simple noise scale" B_noise of McCandlish et al. 2018: the batch
      size at which the with-replacement noise equals the squared signal, their predictor of the
      critical batch size. inf at a stationary point with noise, NaN at 0/0 and online where
      |G|^2 is not resolved (estimate <= 0).
    - "sharpness": the largest (algebraic) eigenvalue of Hess Phi, finite data only, by Lanczos
      with full reorthogonalisation on exact Hessian-vector products (forward-over-backward,
      O(P K F) each, no dense Hessian), from a random start; stops at a relative residual of
      LANCZOS_TOL = 1e-6 (then an eigenvalue lies within it) or after LANCZOS_ITERS = 300
      products (NaN: not converged). The kinks of relu and hinge count as zero curvature.
    - "hessian_trace": tr Hess Phi, exact, finite data only.

    In physsgd's scaling (h = w.x/sqrt(fan-in)) the gradient moments and the trace are O(K) and
    generic Hessian eigenvalues O(1/fan-in): a linear perceptron with square loss has
    Hess Phi = X^T X/(N P) + weight_decay. Cost per record: one or two passes over the training
    set per gradient measure, up to LANCZOS_ITERS passes for the sharpness. Random numbers
    (Lanczos starts, online samples) come from the measure stream (seed, r, 3): trajectories are
    bit-identical with and without ``measure``.

    Replica r draws its teacher, data and moves from streams keyed by (seed, r): the arrays are
    bit-identical for any ``threads``.
    """
    plan = check_args(teacher, student, algo, data, steps=steps, epochs=epochs, alpha=alpha,
                      replicas=replicas, seed=seed, init_scale=init_scale, record=record, stop=stop,
                      success_eps=success_eps, threads=threads, init=init, window=window,
                      probe_every=probe_every, check_every=check_every, engine=engine,
                      measure=measure)
    if plan.engine == "overlaps":
        from .overlaps import train_overlaps
        return train_overlaps(teacher, student, algo, data, plan, threads=threads,
                              spec=dict(steps=steps, epochs=epochs, alpha=alpha, record=record))
    replicas, seed, init_scale = plan.replicas, plan.seed, plan.init_scale
    setup = _setup_replicas(teacher, student, data, replicas, seed, init_scale, init)
    cfg = _kernel_config(teacher, student, algo, data, setup, plan)
    K, M = student.K, setup["M"]
    T_rec = len(plan.record_steps)
    out = outputs(replicas, T_rec, K, M)
    # measure=[...] (kernels/curvature.py): always allocated (one compiled kernel), returned
    # when requested; then the measure streams' states
    for name in MEASURES:
        out[name] = np.full((replicas, T_rec), np.nan)
    out["measure_states"] = seed_states(seed, replicas, kc.STREAM_MEASURE)
    t0 = _time.perf_counter()
    parallel.run(kengine.entry_point(cfg.algo, bit_path(teacher, student, algo, data)), cfg,
                 replicas, threads, setup["W"], setup["fields_s"], setup["vs"], setup["Wt"],
                 setup["fields_t"], setup["vt"], setup["same_field"], setup["Xuser"],
                 setup["yuser"], setup["Xtest"], setup["ytest"],
                 seed_states(seed, replicas, kc.STREAM_TRAIN),
                 seed_states(seed, replicas, kc.STREAM_TEST), plan.record_steps,
                 tuple(out.values()))
    wall = _time.perf_counter() - t0
    params = _params(teacher, student, algo, data, plan, steps, epochs, alpha, record, stop, init,
                     cfg)
    return TrainResult(time=plan.record_steps * plan.samples_per_step / student.N,
                       steps=plan.record_steps.copy(), eps_g=out["eps_g"],
                       train_error=out["train_err"], R=out["R"], Q=out["Q"], T=out["T"],
                       weight_change=out["wchange"], weight_norm=out["wnorm"],
                       diverged=out["diverged"], success=out["success"], stopped_at=out["stopped"],
                       time_at_teacher=out["at_teacher"], first_passage=out["first_passage"],
                       first_exit=out["first_exit"], window_overlap=out["window_overlap"],
                       window_eps_g=out["window_eps_g"], window=np.array(plan.window, np.int64),
                       **{name: out[name] for name in plan.measure},
                       weights=setup["W"], teacher_weights=setup["Wt"],
                       student_fields=_index_fields(student, setup["fields_s"]),
                       teacher_fields=_index_fields(teacher, setup["fields_t"]) if teacher else None,
                       params=params, wall_time=wall)


def outputs(replicas, T_rec, K, M) -> dict:
    """The kernels' output arrays, in the order of the ``out`` tuple (kernels/engine.py), filled
    with what a replica that records nothing leaves: NaN, -1 for "never", False, 0."""
    return dict(eps_g=np.full((replicas, T_rec), np.nan), train_err=np.full((replicas, T_rec), np.nan),
                R=np.full((replicas, T_rec, K, M), np.nan), Q=np.full((replicas, T_rec, K, K), np.nan),
                T=np.zeros((replicas, M, M)), wchange=np.full((replicas, T_rec), np.nan),
                wnorm=np.full((replicas, T_rec), np.nan), diverged=np.zeros(replicas, bool),
                success=np.zeros(replicas, bool), stopped=np.zeros(replicas, np.int64),
                at_teacher=np.full(replicas, np.nan), first_passage=np.full(replicas, -1, np.int64),
                first_exit=np.full(replicas, -1, np.int64), window_overlap=np.full(replicas, np.nan),
                window_eps_g=np.full(replicas, np.nan))


def _params(teacher, student, algo, data, plan, steps, epochs, alpha, record, stop, init, cfg):
    """Everything needed to rerun, plus how the run was measured (teacher rule, cadences)."""
    return {"teacher": teacher.to_dict() if teacher is not None else None,
            "student": student.to_dict(), "algorithm": algo.to_dict(), "data": data.to_dict(),
            "run": {"steps": steps, "epochs": epochs, "alpha": alpha, "replicas": plan.replicas,
                    "seed": plan.seed, "init_scale": plan.init_scale,
                    "record": record if np.isscalar(record) else list(map(int, record)),
                    "stop": stop, "success_eps": plan.success_eps, "total_steps": int(plan.total_steps),
                    "init": init if isinstance(init, str) else "array",
                    "window": list(plan.window), "probe_every": plan.probe_every,
                    "check_every": plan.check_every, "engine": plan.engine,
                    "measure": list(plan.measure),
                    "teacher_rule": kc.RULE_NAMES[cfg.teacher_rule],
                    "greedy_path": ("bits" if bit_path(teacher, student, algo, data) else "float")
                                   if isinstance(algo, Greedy) else None,
                    "window_eps_g": "batches" if cfg.batch_eps else "probes"}}


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
    probe_every: int
    window: tuple               # (first, last) step of the measurement window, inclusive
    engine: str
    measure: tuple
    init: object                # "random" | "teacher" | the array, checked
    stop: object                # the stop rule's name (or None)


def check_args(teacher, student, algo, data, steps=None, epochs=None, alpha=None, replicas=32,
               seed=0, init_scale=1.0, record=50, stop=None, success_eps=None, threads=None,
               init="random", window=None, probe_every=None, check_every=None, engine="direct",
               measure=None) -> RunPlan:
    """Every check ``ps.train`` makes, without training (sweeps validate all tasks up front).
    Raises ValueError naming the parameter, its value and the allowed range."""
    _check_specs(teacher, student, algo, data)
    replicas = v.integer("replicas", replicas, 1)
    seed = v.integer("seed", seed, 0)
    init_scale = v.real("init_scale", init_scale, 0)
    if student.weights == "binary" and init_scale != 1.0:
        raise ValueError(f"init_scale={init_scale} applies to gaussian weights only; binary "
                         "student weights are +-1 (leave init_scale=1)")
    if not (isinstance(stop, str) or stop is None) or stop not in STOP_RULES:
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
    init = _check_init(init, teacher, student, replicas, init_scale)

    if teacher is not None and teacher.classifier and data.label_noise > 1:
        raise ValueError(f"label_noise={data.label_noise} is the probability of flipping each label of "
                         f"a classifier teacher (output={teacher.output!r}); allowed: [0, 1] (it is "
                         "the std of additive noise only for a regression teacher, output='sum')")

    samples_per_step = algo.batch_size
    if isinstance(algo, Greedy) and algo.new_batch == "proposal":
        samples_per_step *= student.n_weights
    steps_per_epoch = data.P // algo.batch_size if finite else 0
    total = _total_steps(steps, epochs, alpha, finite, steps_per_epoch, student.N, samples_per_step)
    record_steps = _record_grid(record, total)
    if check_every is None:
        check_every = max(1, steps_per_epoch if finite else round(student.N / samples_per_step))
    check_every = v.integer("check_every", check_every, 1)
    probe_every = check_every if probe_every is None else v.integer("probe_every", probe_every, 1)
    window = _window(window, total)
    if not (isinstance(engine, str) and engine in ENGINES):
        raise ValueError(f"engine={engine!r} is not allowed; choose one of {', '.join(map(repr, ENGINES))}")
    measure = _check_measure(measure, algo, student, data, engine)
    if threads is not None:
        v.integer("threads", threads, 1, numba.config.NUMBA_NUM_THREADS)
    if engine != "overlaps":        # the overlap chain draws no inputs and stores no weights
        M = teacher.K if teacher is not None else 0
        v.check_memory(replicas=replicas, records=len(record_steps), N=student.N, K=student.K,
                       M=M, F=student.d, F_teacher=teacher.d if teacher is not None else 0,
                       batch_size=algo.batch_size, P=data.P if finite else 0,
                       test_size=data.test_size if eps_g_mode(teacher, student, algo, data) == kc.EG_TESTSET else 0,
                       threads=min(replicas, threads or numba.config.NUMBA_NUM_THREADS))
    plan = RunPlan(replicas, seed, init_scale, success_eps, samples_per_step, total, record_steps,
                   check_every, probe_every, window, engine, measure, init, stop)
    if engine == "overlaps":
        from .overlaps import check_overlaps
        check_overlaps(teacher, student, algo, data, plan)
    return plan


def _check_init(init, teacher, student, replicas, init_scale):
    """init: "random", "teacher" (same architecture and weight kind as the teacher), or an array
    (K, F) or (replicas, K, F) of initial student weights."""
    if isinstance(init, str):
        if init not in INITS:
            raise ValueError(f"init={init!r} is not allowed; choose 'random', 'teacher' or an array "
                             f"of initial student weights of shape ({student.K}, {student.d})")
        if init == "teacher":
            mismatch = _architecture_mismatch(teacher, student)
            if mismatch:
                raise ValueError(f"init='teacher' needs a student with the teacher's architecture "
                                 f"and weight kind; {mismatch}")
            if init_scale != 1.0:
                raise ValueError(f"init_scale={init_scale} applies to random starts; init='teacher' "
                                 "starts on the teacher's weights (leave init_scale=1)")
        return init
    try:
        W0 = np.asarray(init)
    except Exception:
        W0 = None
    if W0 is None or W0.dtype == object or not (np.issubdtype(W0.dtype, np.number)
                                                or W0.dtype == bool) \
            or np.iscomplexobj(W0):
        raise ValueError(f"init={init!r} must be 'random', 'teacher' or a real array of initial "
                         f"student weights")
    shape = (student.K, student.d)
    if W0.shape not in (shape, (replicas,) + shape):
        raise ValueError(f"init array has shape {W0.shape}; allowed: {shape} (every replica) or "
                         f"{(replicas,) + shape} (one per replica): (K, fan-in)")
    W0 = W0.astype(np.float64)
    if not np.all(np.isfinite(W0)):
        raise ValueError("init array must be finite (found NaN or inf)")
    if student.weights == "binary" and not np.all(np.abs(W0) == 1.0):
        raise ValueError("init array for a binary student must hold +-1 entries only")
    if init_scale != 1.0:
        raise ValueError(f"init_scale={init_scale} applies to random starts; an init array is used "
                         "as given (leave init_scale=1)")
    return W0


def _architecture_mismatch(teacher, student) -> str:
    """'' when the student has the teacher's architecture and weight kind, else what differs."""
    if teacher is None:
        return "there is no teacher (user data)"
    for name in ("N", "K", "d", "topology", "activation", "output", "weights", "second_layer"):
        a, b = getattr(student, name), getattr(teacher, name)
        if a != b:
            return f"student.{name}={a!r} but teacher.{name}={b!r}"
    return ""


def _window(window, total):
    """(first, last) step of the measurement window, both inclusive."""
    if window is None:
        return (total // 2 + 1 if total > 1 else total, total)
    if isinstance(window, (float, np.floating)) and not isinstance(window, bool):
        f = v.real("window", window, 0, 1, low_open=True)
        return (total - max(1, math.ceil(f * total - 1e-9)) + 1, total)
    if isinstance(window, (tuple, list, np.ndarray)) and len(window) == 2:
        first = v.integer("window[0]", window[0], 0, total)
        last = v.integer("window[1]", window[1], first, total)
        return (first, last)
    raise ValueError(f"window={window!r} is not allowed; give None (the second half of the run), "
                     f"a fraction in (0, 1] (the last part of the run) or a pair (first, last) of "
                     f"steps with 0 <= first <= last <= {total}")


def _check_measure(measure, algo, student, data, engine) -> tuple:
    """measure: None, a name or a list of names from MEASURES. Gradients need ps.SGD (continuous
    weights) and the direct engine; the Hessian measures need a training set (ps.Dataset): they
    are properties of the training loss, which online data do not have."""
    if measure is None:
        return ()
    names = [measure] if isinstance(measure, str) else measure
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"measure={measure!r} must be a name or a list of names from {list(MEASURES)}")
    for n in names:
        if n not in MEASURES:
            raise ValueError(f"measure={n!r} is not allowed; choose from {', '.join(map(repr, MEASURES))}")
    names = tuple(dict.fromkeys(names))
    if names and not isinstance(algo, SGD):
        raise ValueError(f"measure={list(names)} needs ps.SGD (gradients and Hessians of continuous "
                         f"weights); got {type(algo).__name__} with {student.weights} weights")
    if names and engine != "direct":
        raise ValueError(f"measure={list(names)} needs engine='direct' (the overlap chain has no "
                         f"weights to differentiate); got engine={engine!r}")
    hess = [n for n in names if n in _HESSIAN_MEASURES]
    if hess and not isinstance(data, Dataset):
        raise ValueError(f"measure={hess} is a property of the training loss and needs a finite "
                         f"training set (ps.Dataset); got {type(data).__name__} (online data have "
                         f"no training loss; 'grad_noise' and 'noise_scale' are measured online)")
    if names and isinstance(data, Online) and data.test_size < 2:
        raise ValueError(f"measure={list(names)} online estimates the gradient moments on "
                         f"test_size fresh samples; test_size={data.test_size} is too few "
                         f"(allowed: >= 2)")
    return names


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


MAX_STEPS = 10 ** 12     # per replica: days of compute even for the smallest networks
MAX_RECORDS = 10 ** 6    # record points (each one stores every observable of every replica)


def _total_steps(steps, epochs, alpha, finite, steps_per_epoch, N, samples_per_step):
    given = [name for name, val in (("steps", steps), ("epochs", epochs), ("alpha", alpha)) if val is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of steps, epochs, alpha; got {given or 'none'}")
    if steps is not None:
        return v.integer("steps", steps, 1, MAX_STEPS)
    if epochs is not None:
        if not finite:
            raise ValueError("epochs needs a finite training set (ps.Dataset); use steps or alpha online")
        epochs = v.integer("epochs", epochs, 1)
        if epochs * steps_per_epoch > MAX_STEPS:
            raise ValueError(f"epochs={v.show(epochs)} gives {epochs * steps_per_epoch:.3g} steps "
                             f"({steps_per_epoch} per epoch); allowed: epochs <= "
                             f"{MAX_STEPS // steps_per_epoch} (at most {MAX_STEPS:.0e} steps)")
        return epochs * steps_per_epoch
    alpha = v.real("alpha", alpha, 0, low_open=True)
    total = alpha * N / samples_per_step
    if not total <= MAX_STEPS:
        raise ValueError(f"alpha={alpha:g} gives {total:.3g} steps of {samples_per_step} samples at "
                         f"N={N}; allowed: alpha <= {MAX_STEPS * samples_per_step / N:.3g} (at most "
                         f"{MAX_STEPS:.0e} steps)")
    return max(1, math.ceil(total - 1e-9))


def _record_grid(record, total):
    if np.isscalar(record) or record is None:
        n = v.integer("record", record, 2, MAX_RECORDS)
        # n - 1 log-spaced points from step 1 to the last step (geomspace(1, t, 1) would be [1])
        grid = np.unique(np.round(np.geomspace(1, total, max(min(n - 1, total), 2))).astype(np.int64))
        grid = grid[-(n - 1):]
        return np.concatenate([[0], grid]).astype(np.int64)
    try:
        grid = np.asarray(record)
    except (ValueError, TypeError):
        grid = np.asarray([None])
    if grid.ndim != 1 or grid.size == 0 or grid.dtype == bool or not np.issubdtype(grid.dtype, np.integer):
        raise ValueError(f"record={v.show(record)} must be an integer in [2, {MAX_RECORDS}] (the number "
                         "of record points) or a 1-D array of integer steps")
    if grid.size > MAX_RECORDS:
        raise ValueError(f"record has {grid.size} steps; allowed: at most {MAX_RECORDS} record points")
    if np.any(np.diff(grid) <= 0) or grid[0] < 0 or grid[-1] > total:
        raise ValueError(f"record={v.show(list(map(int, grid)))}: record steps must be strictly "
                         f"increasing within [0, {total}] (the run's {total} steps)")
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


def _setup_replicas(teacher, student, data, replicas, seed, init_scale, init="random"):
    """Teacher, receptive fields and initial student of every replica, from (seed, r, setup).
    A planted or explicit start replaces the random student after it was drawn, so that the
    teacher and every later random number are those of the random start."""
    M = teacher.K if teacher is not None else 0
    Ft = teacher.d if teacher is not None else 1
    W = np.empty((replicas, student.K, student.d))
    fields_s = None
    Wt = np.empty((replicas, M, Ft))
    fields_t = None
    share_fields = (teacher is not None and student.topology == teacher.topology == "random"
                    and student.K == teacher.K and student.d == teacher.d)
    for r in range(replicas):
        rng = np.random.default_rng(np.random.SeedSequence([seed, r, kc.STREAM_SETUP]))
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
    if isinstance(init, str) and init == "teacher":
        W[:] = Wt
    elif not isinstance(init, str):
        W[:] = init
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
                same_field=_same_fields(teacher, student, fields_s, fields_t, replicas),
                Xuser=Xuser, yuser=yuser, Xtest=Xtest, ytest=ytest)


def _same_fields(teacher, student, fields_s, fields_t, replicas):
    """(replicas, K, M) bool: student unit k and teacher unit n read the same inputs."""
    K, M = student.K, (teacher.K if teacher is not None else 0)
    out = np.zeros((replicas, K, M), bool)
    if teacher is None or _architecture_mismatch(teacher, student):
        return out
    if student.topology == "dense":
        out[:] = True
    else:
        out[:] = np.all(fields_s[:, :, None, :] == fields_t[:, None, :, :], axis=-1)
    return out


def teacher_rule(teacher, student, success_eps) -> int:
    """How "the student computes the teacher's function" is decided (kernels/config.py):
    binary sign-unit classifiers with the teacher's architecture and a plain read-out, asked for
    exact recovery (success_eps = 0), use the weights: alone for tree machines and perceptrons
    (the symmetries are then the only way to compute the teacher's function), then the test set
    for dense and random-field machines (where, at small N, other students compute it too:
    tests/test_teacher_rule.py enumerates them). Everything else compares eps_g with success_eps."""
    if teacher is None or _architecture_mismatch(teacher, student) or success_eps != 0.0:
        return kc.RULE_EPS
    if not (student.weights == "binary" and student.activation == "sign" and student.classifier
            and student.second_layer is None):
        return kc.RULE_EPS
    if student.topology == "tree" or student.K == 1:
        return kc.RULE_WEIGHTS
    return kc.RULE_WEIGHTS_OR_TEST


def bit_path(teacher, student, algo, data) -> bool:
    """Whether the greedy run takes the exact bit-level path (kernels/bits.py): +-1 weights on
    +-1 inputs, sign units with a majority or parity read-out for student and teacher, a batch
    per sweep, teacher-generated data. Same chain, same random numbers as the float path."""
    def binary_sign(model):
        return (model is not None and model.weights == "binary" and model.activation == "sign"
                and model.classifier and model.second_layer is None)
    return (isinstance(algo, Greedy) and algo.new_batch == "sweep" and data.inputs == "binary"
            and not (isinstance(data, Dataset) and data.user_data)
            and binary_sign(student) and binary_sign(teacher))


def _sign_flips(student, data) -> bool:
    """Parity machines are invariant under flipping an even number of units when no field can
    be exactly 0: Gaussian inputs, or +-1 inputs with an odd fan-in."""
    return student.output == "parity" and (data.inputs == "gaussian" or student.d % 2 == 1)


def eps_g_mode(teacher, student, algo, data) -> int:
    """Which closed form gives eps_g exactly (Gaussian inputs), or the test set."""
    if (teacher is None or data.inputs != "gaussian" or data.chi != 0
            or (isinstance(algo, SGD) and algo.output_scale is not None)):
        return kc.EG_TESTSET
    s, t = student, teacher
    if s.output == t.output == "sum":
        if s.activation == t.activation == "erf":
            return kc.EG_ERF
        if s.activation == t.activation == "linear":
            return kc.EG_LINEAR
        return kc.EG_TESTSET
    plain = s.second_layer is None and t.second_layer is None
    if not (s.classifier and t.classifier and plain and s.activation in _ODD and t.activation in _ODD):
        return kc.EG_TESTSET
    if s.K == t.K == 1:
        return kc.EG_ARCCOS
    if s.topology == t.topology == "tree" and s.d == t.d:
        if s.output == t.output == "parity":
            return kc.EG_TREE_PARITY
        if s.output == t.output == "sign" and s.activation == t.activation == "sign":
            return kc.EG_TREE_MAJORITY
    return kc.EG_TESTSET


def _kernel_config(teacher, student, algo, data, setup, plan):
    sgd = isinstance(algo, SGD)
    user = isinstance(data, Dataset) and data.user_data
    online = isinstance(data, Online)
    return KernelConfig(
        algo=kc.SGD_ALGO if sgd else kc.GREEDY_ALGO, N=int(student.N),
        act_s=kc.ACTIVATION_CODES[student.activation], out_s=kc.OUTPUT_CODES[student.output],
        act_t=kc.ACTIVATION_CODES[teacher.activation] if teacher else 0,
        out_t=kc.OUTPUT_CODES[teacher.output] if teacher else 0,
        dense_s=student.topology == "dense", dense_t=teacher is not None and teacher.topology == "dense",
        fan_in_t=int(teacher.d) if teacher else 1,
        loss=kc.LOSS_CODES[algo.loss] if sgd else 0, margin=float(algo.margin) if sgd else 0.0,
        output_scale=float(algo.output_scale or 0.0) if sgd else 0.0,
        lr=float(algo.lr) if sgd else 0.0, momentum=float(algo.momentum) if sgd else 0.0,
        weight_decay=float(algo.weight_decay) if sgd else 0.0, batch_size=int(algo.batch_size),
        temperature=0.0 if sgd else float(algo.temperature),
        ties=0 if sgd else kc.TIE_CODES[algo.ties],
        new_batch_per_proposal=(not sgd) and algo.new_batch == "proposal",
        inputs=kc.INPUT_CODES[data.inputs], chi=float(data.chi), label_noise=float(data.label_noise),
        P=int(data.P) if isinstance(data, Dataset) else 0, user_data=bool(user),
        independent_batches=isinstance(data, Dataset) and data.batches == "independent",
        test_size=int(data.test_size), eg_mode=int(eps_g_mode(teacher, student, algo, data)),
        success_eps=float(plan.success_eps), stop_rule=STOP_RULES[plan.stop],
        check_every=int(plan.check_every),
        exact_votes=student.activation == "sign" and bool(np.all(np.mod(setup["vs"], 1.0) == 0.0)),
        teacher_rule=int(teacher_rule(teacher, student, plan.success_eps)),
        sign_flips=bool(_sign_flips(student, data)), total_steps=int(plan.total_steps),
        probe_every=int(plan.probe_every), window_start=int(plan.window[0]),
        window_stop=int(plan.window[1]),
        batch_eps=bool(online and teacher is not None and data.label_noise == 0.0),
        measure=int(sum(kc.MEASURE_CODES[n] for n in plan.measure)),
        lanczos_iters=LANCZOS_ITERS, lanczos_tol=LANCZOS_TOL,
        measure_samples=int(data.test_size))
