"""The exact first step of zero training hinge loss, from a run checked only now and then.

``stop="zero_loss"`` is checked every ``check_every`` steps (and at the record points); each check
is a pass over the training set. The sweeps check once per epoch and this module recovers the
stopping step exactly:

* Zero loss is absorbing for plain SGD on the hinge loss (no momentum, no weight decay): once
  every training margin y F >= margin holds, every sample's gradient is exactly 0 (``loss_grad``
  returns 0.0), so no later step moves the weights. Hence "the loss is zero after step t" is
  monotone in t, and a run whose first successful check is at step s reached zero loss at some
  t* in (s_prev, s], s_prev its previous check (or 0: the loss of the start is not zero).
* physsgd runs are bit-reproducible (replica r of seed s draws every random number from streams
  keyed by (s, r); checks and records consume none). A replay of the same task with record
  points -- each of which is a check -- inside (s_prev, s] stops at the first of them at or
  after t*, and its final weights must equal the original run's bit for bit (checked); replays
  with ever finer record grids pin t* down to the step.

Cost. A check evaluates every training sample, and on this kernel a sample costs about a
quarter of an SGD step (measured: ~1.7 us per sample, ~4 us per step for a small perceptron on a
loaded machine), so checking every step would multiply the run time by ~P/4; the sweeps check once
per epoch. A replay with a check at each of the c = s - s_prev candidate steps costs c P sample
evaluations (67 s at P = 8192), so the interval is bisected instead: k replays, each with
~c^(1/k) record points, each narrowing the interval by that factor; k minimises
k (rho + c^(1/k)), rho = (cost of the s steps) / (cost of one check) ~ 4 s / P (``plan``). This
costs ~k + 1 times the run instead of P/4 times. Tasks must have one replica (``replicas = 1``;
independent replicas are seeds), so that a replay does not rerun other replicas too.
"""
from __future__ import annotations

import math

import numpy as np

import physsgd as ps
from physsgd import sweep


def previous_check(stop: int, check_every: int, record_steps) -> int:
    """The last step before ``stop`` at which the run checked its stop rule (0 if none)."""
    stop, c = int(stop), int(check_every)
    prev = ((stop - 1) // c) * c
    rec = np.asarray(record_steps, np.int64)
    rec = rec[(rec > 0) & (rec < stop)]
    return int(max(prev, rec.max() if rec.size else 0))


def check_cadence(params: dict) -> int:
    """The stop-rule cadence a task ran with (ps.train's default: one epoch)."""
    run, data, algo = params["run"], params["data"], params["algorithm"]
    c = run.get("check_every")
    return int(c) if c else max(1, int(data["P"]) // int(algo["batch_size"]))


STEP_OVER_SAMPLE = 4.0       # cost of one SGD step / one sample of a check (measured, see above)


def plan(n: int, steps: int, P: int) -> int:
    """Number of bisection replays k for an interval of n candidate steps in a run of ``steps``
    steps on P samples: argmin over k of k (rho + n^(1/k)), rho = STEP_OVER_SAMPLE steps / P."""
    if n <= 1:
        return 0
    rho = STEP_OVER_SAMPLE * steps / P
    costs = {k: k * (rho + math.ceil(n ** (1 / k))) for k in range(1, max(2, math.ceil(math.log2(n))) + 1)}
    return min(costs, key=costs.get)


def exact_stop(res: ps.TrainResult, threads: int = 1) -> int:
    """The first step after which the training hinge loss is exactly zero, for a one-replica
    task result ``res`` (from ``ps.load`` or ``ps.train``) that stopped on ``stop="zero_loss"``;
    -1 when it did not reach zero loss. Raises RuntimeError if a replay is not bit-identical."""
    params = res.params
    run = params["run"]
    if res.replicas != 1 or int(run["replicas"]) != 1:
        raise ValueError(f"exact_stop needs a one-replica task (replicas=1); got {res.replicas}")
    if run.get("stop") != "zero_loss":
        raise ValueError(f"exact_stop needs stop='zero_loss'; got stop={run.get('stop')!r}")
    algo = params["algorithm"]
    if algo.get("momentum", 0.0) != 0.0 or algo.get("weight_decay", 0.0) != 0.0 \
            or algo.get("loss") != "hinge":
        raise ValueError("exact_stop needs plain SGD on the hinge loss (zero loss is then "
                         "absorbing); got " + repr({k: algo.get(k) for k in
                                                    ("loss", "momentum", "weight_decay")}))
    hi = int(res.stopped_at[0])
    if hi >= int(res.steps[-1]) and res.train_error[0, -1] != 0.0:
        return -1
    lo = previous_check(hi, check_cadence(params), res.steps)
    teacher, student, algo_, data, runkw = sweep.build_specs(params)
    k = plan(hi - lo, hi, int(params["data"]["P"]))
    while hi - lo > 1:
        g = max(2, math.ceil((hi - lo) ** (1 / max(k, 1))))         # the interval is cut in g
        grid = np.unique(np.round(np.linspace(lo, hi, g + 1)).astype(np.int64))[1:]
        rep = ps.train(teacher, student, algo_, data, steps=hi, replicas=1,
                       seed=int(runkw["seed"]), init_scale=float(runkw["init_scale"]),
                       init=runkw.get("init") or "random", stop="zero_loss", check_every=hi,
                       record=grid, threads=threads)
        t = int(rep.stopped_at[0])
        if not np.array_equal(rep.weights, res.weights) or t not in grid:
            raise RuntimeError(f"replay of task (seed {runkw['seed']}) is not bit-identical: "
                               f"stopped at {t} (expected one of the record steps in ({lo}, {hi}]); "
                               f"weights equal: {np.array_equal(rep.weights, res.weights)}")
        i = int(np.searchsorted(grid, t))
        lo, hi = (int(grid[i - 1]) if i > 0 else lo), t
        k -= 1
    return hi
