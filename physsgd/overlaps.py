"""``ps.train(..., engine="overlaps")``: the exact overlap chain of online SGD on Gaussian inputs.

For fresh Gaussian inputs the overlaps of the student, teacher, initial-student and momentum
rows form an exact finite-N Markov chain (SCIENCE.md 1.8). The chain tracks their coordinates in
a moving orthonormal frame of at most r = M + 2K (+ K with momentum) directions per block, so one
step costs O(m r + m^2) random numbers and O(m r^2 + r^2 (r + m)) flops whatever N: N = 10^9 is
as cheap as N = 100. The derivation (fields, the Bartlett factor of the orthogonal parts, the
re-orthogonalisation, the exact initial law) is in ``physsgd/kernels/overlaps.py``.

What it supports: ``ps.SGD`` (any loss, activation, momentum, weight decay, output_scale, batch
size) on ``ps.Online(inputs="gaussian", chi=0)`` with any label noise; dense committees and
perceptrons (any K, M, second layers), or trees whose teacher reads the same blocks (one chain per
block, fan-in d); Gaussian or "axis" teachers; init "random" (any init_scale, 0 included),
"teacher", or an array of initial weights. Everything else raises a ValueError naming the
parameter: use engine="direct" there.

What it returns: a ``TrainResult`` with the direct engine's fields and meaning (R, Q, T, eps_g,
train_error, weight_change, weight_norm, diverged, success, stopped_at, the stationary
observables under the "eps" rule), distributed as the direct engine's replicas but from other
random numbers (the two engines never give the same trajectory). ``weights``,
``teacher_weights``, ``student_fields`` and ``teacher_fields`` are None: the chain has no weight
vectors. eps_g is the closed form where one exists (params["run"] shows the same eps rule as the
direct engine); otherwise it is measured on ``data.test_size`` fixed test fields drawn from
N(0, G), exact in law at every time. ``diverged``: the coordinates (or their overlaps) overflowed.
"""
from __future__ import annotations

import math
import time as _time
from types import SimpleNamespace

import numpy as np

from .algorithms import SGD
from .data import Online
from .kernels import config as kc
from .kernels import overlaps as kov
from .kernels.rng import seed_states
from .result import TrainResult

_ENGINE = "engine='overlaps'"


def check_overlaps(teacher, student, algo, data, plan) -> None:
    """Raise ValueError (naming the parameter) unless the chain is exact for this run."""
    if not isinstance(algo, SGD):
        raise ValueError(f"algo={type(algo).__name__}: {_ENGINE} simulates ps.SGD only (continuous "
                         "weights moved by gradients); use engine='direct' for ps.Greedy")
    if not isinstance(data, Online):
        kind = "user arrays (ps.Dataset.from_arrays)" if getattr(data, "user_data", False) else \
            f"a finite training set (ps.Dataset(P={data.P}))"
        raise ValueError(f"data={kind}: {_ENGINE} needs fresh samples every step (ps.Online); a "
                         "reused sample is no longer independent of the weights. Use engine='direct'")
    if data.inputs != "gaussian":
        raise ValueError(f"data.inputs={data.inputs!r}: {_ENGINE} needs inputs='gaussian' (its "
                         "exactness rests on the rotation invariance of the input law)")
    if data.chi != 0:
        raise ValueError(f"data.chi={data.chi}: {_ENGINE} needs chi=0 (isotropic Gaussian inputs)")
    if teacher.weights not in ("gaussian", "axis"):
        raise ValueError(f"teacher.weights={teacher.weights!r}: {_ENGINE} needs a 'gaussian' or "
                         "'axis' teacher (the initial law of +-1 rows is not a Wishart law)")
    if student.weights != "gaussian":
        raise ValueError(f"student.weights={student.weights!r}: {_ENGINE} needs 'gaussian' weights")
    for name, model in (("student", student), ("teacher", teacher)):
        if model.topology not in ("dense", "tree"):
            raise ValueError(f"{name}.topology={model.topology!r}: {_ENGINE} allows 'dense' or "
                             "'tree' (random receptive fields overlap, so no block has its own chain)")
    if teacher.topology != student.topology:
        raise ValueError(f"teacher.topology={teacher.topology!r} but student.topology="
                         f"{student.topology!r}: {_ENGINE} needs both dense, or both trees on the "
                         "same blocks")
    if student.topology == "tree" and teacher.d != student.d:
        raise ValueError(f"teacher.d={teacher.d} but student.d={student.d}: {_ENGINE} needs the "
                         "teacher's tree on the student's blocks (equal d)")
    if plan.stop not in (None, "success"):
        raise ValueError(f"stop={plan.stop!r}: {_ENGINE} allows stop=None or 'success' (the other "
                         "rules need a finite training set)")
    if plan.measure:
        raise ValueError(f"measure={list(plan.measure)}: not available with {_ENGINE}")


def chain_config(teacher, student, algo, data, plan) -> kov.ChainConfig:
    """The kernel's record of a valid run."""
    from .train import eps_g_mode

    tree = student.topology == "tree"
    blocks = student.K if tree else 1
    Kb, Mb = (1, 1) if tree else (student.K, teacher.K)
    F = student.d
    moving = Kb * (2 if algo.momentum > 0 else 1)
    rows = Mb + Kb + moving
    init = plan.init
    init_code = (kov.INIT_RANDOM if isinstance(init, str) and init == "random" else
                 kov.INIT_TEACHER if isinstance(init, str) else kov.INIT_ARRAY)
    # W0 in the teacher's span (a copy of it, or zero) needs no directions of its own
    w0_in_span = init_code == kov.INIT_TEACHER or (init_code == kov.INIT_RANDOM
                                                    and plan.init_scale == 0.0)
    n_const = min(Mb if w0_in_span else Mb + Kb, F)
    n = min(n_const + moving, F)
    return kov.ChainConfig(
        N=int(student.N), F=int(F), blocks=int(blocks), Kb=int(Kb), Mb=int(Mb), rows=int(rows),
        n=int(n), n_const=int(n_const), nu=int(F - n),
        act_s=kc.ACTIVATION_CODES[student.activation], out_s=kc.OUTPUT_CODES[student.output],
        act_t=kc.ACTIVATION_CODES[teacher.activation], out_t=kc.OUTPUT_CODES[teacher.output],
        loss=kc.LOSS_CODES[algo.loss], margin=float(algo.margin),
        output_scale=float(algo.output_scale or 0.0), lr=float(algo.lr),
        momentum=float(algo.momentum), weight_decay=float(algo.weight_decay),
        batch_size=int(algo.batch_size), label_noise=float(data.label_noise),
        test_size=int(data.test_size), eg_mode=int(eps_g_mode(teacher, student, algo, data)),
        success_eps=float(plan.success_eps), stop_rule=kc.STOP_CODES[plan.stop],
        check_every=int(plan.check_every), total_steps=int(plan.total_steps),
        probe_every=int(plan.probe_every), window_start=int(plan.window[0]),
        window_stop=int(plan.window[1]), batch_eps=bool(data.label_noise == 0.0),
        init=int(init_code), init_scale=float(plan.init_scale),
        teacher_axis=teacher.weights == "axis")


def given_coordinates(cfg, W0) -> np.ndarray:
    """(G, blocks, c, n_const) coordinates of an explicit initial student W0 ((K, F) or
    (replicas, K, F)): QR of each block's rows, y = R^T / sqrt(F) (kernel docstring). With an
    axis teacher the teacher row sqrt(F) e_1 is stacked first, so both are given."""
    c = cfg.Mb + cfg.Kb
    if W0 is None:
        return np.zeros((1, cfg.blocks, c, max(cfg.n_const, 1)))
    W0 = np.asarray(W0, float)
    W0 = W0[None] if W0.ndim == 2 else W0
    out = np.zeros((W0.shape[0], cfg.blocks, c, max(cfg.n_const, 1)))
    F = cfg.F
    for g in range(W0.shape[0]):
        for b in range(cfg.blocks):
            rows = W0[g, b * cfg.Kb:(b + 1) * cfg.Kb]
            first = cfg.Mb
            if cfg.teacher_axis:
                axis = np.zeros((1, F))
                axis[0, 0] = math.sqrt(F)
                rows, first = np.vstack([axis, rows]), 0
            R = np.linalg.qr(rows.T / math.sqrt(F), mode="r")       # (min(p, F), p)
            out[g, b, first:c, :R.shape[0]] = R.T
    return out


def train_overlaps(teacher, student, algo, data, plan, threads=None, spec=None) -> TrainResult:
    """Run the chain for a checked plan (``physsgd.train.check_args``) and wrap the result.
    ``spec``: the length and record arguments as the caller gave them (steps, epochs, alpha,
    record), recorded in params; default: steps=plan.total_steps and the record grid."""
    from . import replicas as parallel
    from .train import _params, outputs

    cfg = chain_config(teacher, student, algo, data, plan)
    replicas, seed = plan.replicas, plan.seed
    given = given_coordinates(cfg, None if isinstance(plan.init, str) else plan.init)
    K, M = student.K, teacher.K
    vs = np.asarray(student.second_layer if student.second_layer else np.ones(K), float)
    vt = np.asarray(teacher.second_layer if teacher.second_layer else np.ones(M), float)
    T_rec = len(plan.record_steps)
    out = outputs(replicas, T_rec, K, M)
    t0 = _time.perf_counter()
    parallel.run(kov.train_chain, cfg, replicas, threads, given, vs, vt,
                 seed_states(seed, replicas, kc.STREAM_SETUP),
                 seed_states(seed, replicas, kc.STREAM_TRAIN),
                 seed_states(seed, replicas, kc.STREAM_TEST), plan.record_steps,
                 tuple(out.values()))
    wall = _time.perf_counter() - t0
    spec = spec or dict(steps=int(plan.total_steps), epochs=None, alpha=None,
                        record=[int(s) for s in plan.record_steps])
    rule = SimpleNamespace(teacher_rule=kc.RULE_EPS, batch_eps=cfg.batch_eps)
    params = _params(teacher, student, algo, data, plan, spec["steps"], spec["epochs"],
                     spec["alpha"], spec["record"], plan.stop, plan.init, rule)
    return TrainResult(time=plan.record_steps * plan.samples_per_step / student.N,
                       steps=plan.record_steps.copy(), eps_g=out["eps_g"],
                       train_error=out["train_err"], R=out["R"], Q=out["Q"], T=out["T"],
                       weight_change=out["wchange"], weight_norm=out["wnorm"],
                       diverged=out["diverged"], success=out["success"], stopped_at=out["stopped"],
                       time_at_teacher=out["at_teacher"], first_passage=out["first_passage"],
                       first_exit=out["first_exit"], window_overlap=out["window_overlap"],
                       window_eps_g=out["window_eps_g"], window=np.array(plan.window, np.int64),
                       weights=None, teacher_weights=None, student_fields=None,
                       teacher_fields=None, params=params, wall_time=wall)
