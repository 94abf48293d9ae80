"""The exact first step of zero training hinge loss, from a run checked only now and then.

``stop="zero_loss"`` is checked every ``check_every`` steps (and at the record points), and each
check is a pass over the training set, O(P N). Checking every step would cost P/B times the
steps themselves, so the sweeps check every c steps and this module recovers the step exactly:

* Zero loss is absorbing for plain SGD on the hinge loss (no momentum, no weight decay): once
  every training margin y F >= margin holds, every sample's gradient is exactly 0 (``loss_grad``
  returns 0.0), so no later step moves the weights. Hence "the loss is zero after step t" is
  monotone in t, and a run whose first successful check is at step s reached zero loss at some
  t* in (s_prev, s], s_prev its previous check (or 0: the loss of the start is not zero).
* physsgd runs are bit-reproducible (replica r of seed s draws every random number from streams
  keyed by (s, r); checks and records consume none). A replay of the same task with a record
  point -- each of which is a check -- at every step of (s_prev, s] therefore stops at t*
  exactly, and its final weights must equal the original run's bit for bit (checked).

Cost: one replay of s steps plus s - s_prev checks. With c ~ P N / 512 steps between checks both
the original run's checks and the replay's cost a fraction of the steps (the SGD step of a small
perceptron is dominated by a per-step overhead of a few microseconds; a check is ~2 P N flops).
Tasks must have one replica (``replicas = 1``; independent replicas are seeds), so that the
replay does not also rerun other replicas.
"""
from __future__ import annotations

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


def exact_stop(res: ps.TrainResult, threads: int = 1) -> int:
    """The first step after which the training hinge loss is exactly zero, for a one-replica
    task result ``res`` (from ``ps.load``) that stopped on ``stop="zero_loss"``; -1 when it did
    not reach zero loss. Raises RuntimeError if the replay is not bit-identical."""
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
    s = int(res.stopped_at[0])
    total = int(res.steps[-1])
    if s >= total and res.train_error[0, -1] != 0.0:
        return -1
    lo = previous_check(s, check_cadence(params), res.steps)
    if s - lo == 1:
        return s
    teacher, student, algo_, data, runkw = sweep.build_specs(params)
    grid = np.arange(lo + 1, s + 1, dtype=np.int64)
    rep = ps.train(teacher, student, algo_, data, steps=s, replicas=1, seed=int(runkw["seed"]),
                   init_scale=float(runkw["init_scale"]), init=runkw.get("init") or "random",
                   stop="zero_loss", check_every=s, record=grid, threads=threads)
    t = int(rep.stopped_at[0])
    if not np.array_equal(rep.weights, res.weights) or not lo < t <= s:
        raise RuntimeError(f"replay of task (seed {runkw['seed']}) is not bit-identical: stopped "
                           f"at {t} (expected in ({lo}, {s}]); weights equal: "
                           f"{np.array_equal(rep.weights, res.weights)}")
    return t
