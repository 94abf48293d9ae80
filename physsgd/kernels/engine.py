"""The replica loop: data, moves, recording, stop rules; replicas in parallel with prange.

Every random number of replica r comes from its own streams (train: data, batches, proposals;
test: the fixed test set), so its trajectory is the same whatever the thread count.
"""
import math

import numpy as np
from numba import njit, prange

from .network import output, predict, sign, unit_fields, SUM
from .observables import EG_TESTSET, embed, eps_closed_form, overlaps_with
from .rng import fill_binary, fill_normal, gamma, normal, shuffle, uniform
from .steps import (GREEDY_ALGO, batch_state, greedy_sweep, propose_flip, sample_error,
                    sgd_step, student_output)

STOP_NONE, STOP_ZERO_TRAIN_ERROR, STOP_ZERO_LOSS, STOP_SUCCESS = 0, 1, 2, 3
INPUT_GAUSSIAN, INPUT_BINARY = 0, 1


@njit
def draw_input(cfg, s, x):
    if cfg.inputs == INPUT_BINARY:
        fill_binary(s, x)
        return
    fill_normal(s, x)
    if cfg.chi != 0.0:   # |x_1| = sqrt(2 G), G ~ Gamma((chi+1)/2): density |x_1|^chi e^{-x_1^2/2}
        x[0] = math.sqrt(2.0 * gamma(s, 0.5 * (cfg.chi + 1.0))) * sign(uniform(s) - 0.5)


@njit
def teacher_output(cfg, Wt, fields_t, vt, x, ht):
    """The teacher's clean label (classifier) or output (regression)."""
    unit_fields(Wt, fields_t, cfg.dense_t, x, ht)
    return predict(cfg.out_t, output(cfg.act_t, cfg.out_t, vt, ht))


@njit
def noisy(cfg, s, y):
    if cfg.label_noise == 0.0:
        return y
    if cfg.out_t == SUM:
        return y + cfg.label_noise * normal(s)
    return -y if uniform(s) < cfg.label_noise else y


@njit
def make_samples(cfg, s, Wt, fields_t, vt, X, y, ht, with_noise):
    for mu in range(X.shape[0]):
        draw_input(cfg, s, X[mu])
        y[mu] = teacher_output(cfg, Wt, fields_t, vt, X[mu], ht)
        if with_noise:
            y[mu] = noisy(cfg, s, y[mu])


@njit
def next_batch(cfg, s, Xb, yb, Xtr, ytr, order, pos, Wt, fields_t, vt, ht):
    """Fill the batch: fresh samples (online) or the next slice of the epoch's order; a new
    epoch (fresh shuffle) starts when fewer than batch_size unseen samples remain."""
    m = Xb.shape[0]
    if Xtr.shape[0] == 0:
        make_samples(cfg, s, Wt, fields_t, vt, Xb, yb, ht, True)
        return
    if pos[0] + m > order.shape[0]:
        shuffle(s, order)
        pos[0] = 0
    for mu in range(m):
        i = order[pos[0] + mu]
        Xb[mu, :] = Xtr[i]
        yb[mu] = ytr[i]
    pos[0] += m


@njit
def set_error(cfg, W, W0, fields, v, X, y, h, h0):
    """Mean error on a sample set (error rate or 1/2 MSE), and whether every hinge-type loss is
    zero (y F >= margin)."""
    err = 0.0
    all_margins = True
    for mu in range(X.shape[0]):
        Fv = student_output(cfg, W, W0, fields, v, X[mu], h, h0)
        err += sample_error(cfg.out_s, Fv, y[mu])
        if y[mu] * Fv < cfg.margin:
            all_margins = False
    return err / max(X.shape[0], 1), all_margins


@njit
def errors_at_most(cfg, W, W0, fields, v, X, y, h, h0, limit):
    """Whether a classifier misclassifies at most ``limit`` samples of (X, y); stops counting at
    the first error beyond it, so a failing success check costs a few samples, not a test set."""
    errors = 0
    for mu in range(X.shape[0]):
        Fv = student_output(cfg, W, W0, fields, v, X[mu], h, h0)
        if sign(Fv) != y[mu]:
            errors += 1
            if errors > limit:
                return False
    return True


@njit
def measure(cfg, W, W0, fields_s, vs, Wt_full, vt, Xte, yte, h, h0, ws_full, Rm, Qm, Tm):
    """Fill Rm, Qm (Tm is fixed) and return eps_g (closed form or test set)."""
    K, F = W.shape
    M = Wt_full.shape[0]
    Ft = cfg.fan_in_t
    if M > 0:
        overlaps_with(W, fields_s, cfg.dense_s, Wt_full, math.sqrt(F * Ft), Rm)
    embed(W, fields_s, cfg.dense_s, cfg.N, ws_full)
    overlaps_with(W, fields_s, cfg.dense_s, ws_full, F, Qm)
    if cfg.eg_mode == EG_TESTSET:
        return set_error(cfg, W, W0, fields_s, vs, Xte, yte, h, h0)[0]
    return eps_closed_form(cfg.eg_mode, Qm, Rm, Tm, vs, vt)


@njit
def run_replica(cfg, r, W, fields_s, vs, Wt, fields_t, vt, Xuser, yuser, Xtest_user, ytest_user,
                s_train, s_test, record_steps, eps_g, train_err, R, Q, T, wchange, wnorm,
                diverged, success, stopped):
    K, F = W.shape
    M = Wt.shape[0]
    N = cfg.N
    m = cfg.batch_size
    W0 = W.copy()
    h = np.empty(K)
    h0 = np.empty(K)
    ht = np.empty(max(M, 1))
    # training set: user rows (shared, read-only), drawn once per replica, or none (online)
    if cfg.user_data:
        Xtr, ytr = Xuser, yuser
    elif cfg.P > 0:
        Xtr = np.empty((cfg.P, N))
        ytr = np.empty(cfg.P)
        make_samples(cfg, s_train, Wt, fields_t, vt, Xtr, ytr, ht, True)
    else:
        Xtr = np.empty((0, N))
        ytr = np.empty(0)
    order = np.arange(Xtr.shape[0])
    pos = np.array([Xtr.shape[0]])       # forces a shuffle before the first batch
    # fixed test set, clean labels, from its own stream
    if cfg.eg_mode != EG_TESTSET:
        Xte, yte = np.empty((0, N)), np.empty(0)
    elif cfg.user_data:
        Xte, yte = Xtest_user, ytest_user
    else:
        Xte = np.empty((cfg.test_size, N))
        yte = np.empty(cfg.test_size)
        make_samples(cfg, s_test, Wt, fields_t, vt, Xte, yte, ht, False)
    Wt_full = np.zeros((M, N))
    embed(Wt, fields_t, cfg.dense_t, N, Wt_full)
    ws_full = np.empty((K, N))
    if M > 0:
        overlaps_with(Wt, fields_t, cfg.dense_t, Wt_full, cfg.fan_in_t, T[r])
    # work buffers
    Xb = np.empty((m, N))
    yb = np.empty(m)
    buf = np.zeros((K, F))
    C = np.empty((m, K))
    dfdh = np.empty(K)
    XT = np.empty((N, m))       # greedy moves read the batch one input (row) at a time
    HT = np.empty((K, m))
    fb = np.empty(m)
    wrong = np.zeros(m, dtype=np.int64)
    flip_order = np.arange(K * F)
    norm = 1.0 / math.sqrt(K * F)

    n_rec = record_steps.shape[0]
    total = record_steps[n_rec - 1]
    rec = 0
    run_err = 0.0
    run_n = 0
    stop_at = total
    eg = np.nan
    for step in range(0, total + 1):
        if step > 0:
            if cfg.algo == GREEDY_ALGO and cfg.new_batch_per_proposal:
                shuffle(s_train, flip_order)
                errors = 0
                for idx in flip_order:
                    next_batch(cfg, s_train, Xb, yb, Xtr, ytr, order, pos, Wt, fields_t, vt, ht)
                    XT[:, :] = Xb.T
                    errors += batch_state(cfg, W, fields_s, vs, XT, yb, HT, fb, wrong)
                    propose_flip(cfg, s_train, W, fields_s, vs, XT, yb, HT, fb, wrong, idx)
                berr = errors / (m * flip_order.shape[0])
                finite = True
            else:
                next_batch(cfg, s_train, Xb, yb, Xtr, ytr, order, pos, Wt, fields_t, vt, ht)
                if cfg.algo == GREEDY_ALGO:
                    XT[:, :] = Xb.T
                    berr = greedy_sweep(cfg, s_train, W, fields_s, vs, XT, yb, HT, fb, wrong, flip_order)
                    finite = True
                else:
                    berr, finite = sgd_step(cfg, W, W0, fields_s, vs, buf, C, Xb, yb, h, h0, dfdh)
            run_err += berr
            run_n += 1
            if not finite:
                diverged[r] = True
                stop_at = step
                break
        is_record = step == record_steps[rec]
        check = cfg.stop_rule != STOP_NONE and step > 0 and (step % cfg.check_every == 0 or is_record)
        if not (is_record or check):
            continue
        if (not is_record and cfg.stop_rule == STOP_SUCCESS and cfg.eg_mode == EG_TESTSET
                and cfg.out_s != SUM and not errors_at_most(cfg, W, W0, fields_s, vs, Xte, yte, h, h0,
                                                            cfg.success_eps * Xte.shape[0])):
            continue    # not yet a success: found out at the first few errors, not a full pass
        # observables at this step
        eg = measure(cfg, W, W0, fields_s, vs, Wt_full, vt, Xte, yte, h, h0, ws_full,
                     R[r, rec], Q[r, rec], T[r])
        wn = np.sqrt(np.sum(W ** 2)) * norm
        if not (math.isfinite(eg) and math.isfinite(wn)):
            # finite weights so large that their overlaps overflow count as diverged too
            diverged[r] = True
            stop_at = step
            break
        if Xtr.shape[0] > 0:
            terr, zero_loss = set_error(cfg, W, W0, fields_s, vs, Xtr, ytr, h, h0)
        else:
            terr, zero_loss = (run_err / run_n if run_n > 0 else np.nan), False
        stop = False
        if check:
            if cfg.stop_rule == STOP_ZERO_TRAIN_ERROR:
                stop = terr == 0.0
            elif cfg.stop_rule == STOP_ZERO_LOSS:
                stop = zero_loss
            else:
                stop = eg <= cfg.success_eps
        if is_record or stop:
            # measure() filled R[r, rec], Q[r, rec]; a stop between records lands in this slot
            eps_g[r, rec] = eg
            train_err[r, rec] = terr
            wchange[r, rec] = np.sqrt(np.sum((W - W0) ** 2)) * norm
            wnorm[r, rec] = wn
            rec += 1
            run_err = 0.0
            run_n = 0
        if stop:
            stop_at = step
            break
        if rec == n_rec:
            break
    stopped[r] = stop_at
    # a replica that stopped early repeats its last record (diverged ones: NaN) to the end
    for t in range(rec, n_rec):
        if diverged[r]:
            eps_g[r, t] = np.nan
            train_err[r, t] = np.nan
            wchange[r, t] = np.nan
            wnorm[r, t] = np.nan
            R[r, t] = np.nan
            Q[r, t] = np.nan
        elif rec > 0:
            eps_g[r, t] = eps_g[r, rec - 1]
            train_err[r, t] = train_err[r, rec - 1]
            wchange[r, t] = wchange[r, rec - 1]
            wnorm[r, t] = wnorm[r, rec - 1]
            R[r, t] = R[r, rec - 1]
            Q[r, t] = Q[r, rec - 1]
    if not diverged[r] and rec > 0:
        success[r] = eps_g[r, n_rec - 1] <= cfg.success_eps


@njit(parallel=True, cache=True, nogil=True)   # nogil: callers' threads (watchdogs, dask) keep running
def train_replicas(cfg, W, fields_s, vs, Wt, fields_t, vt, Xuser, yuser, Xtest_user, ytest_user,
                   s_train, s_test, record_steps, eps_g, train_err, R, Q, T, wchange, wnorm,
                   diverged, success, stopped):
    for r in prange(W.shape[0]):
        run_replica(cfg, r, W[r], fields_s[r], vs, Wt[r], fields_t[r], vt, Xuser, yuser,
                    Xtest_user, ytest_user, s_train[r], s_test[r], record_steps, eps_g, train_err,
                    R, Q, T, wchange, wnorm, diverged, success, stopped)
