"""The replica loop: data, moves, recording, stationary observables, stop rules; an entry point
runs a block of replicas (physsgd/replicas.py runs blocks in parallel threads).

Every random number of replica r comes from its own streams (train: data, batches, proposals;
test: the fixed test set), so its trajectory is the same whatever the thread count.

A replica's run is a sequence of named phases, each a small function:
    begin          training set, test set, buffers, the teacher's overlaps (step 0 is observed too)
    <algo>_move    one move: an SGD step, a greedy sweep, or a sweep with a batch per proposal
    observe        after every move: divergence, the teacher check, probes of the window,
                   records, stop rules
    finish         the stationary observables, the record slots after an early stop, success
There is one entry point per algorithm (train_sgd, train_greedy, train_greedy_bits) so that a
run compiles only the code its algorithm needs. Compile time: every phase is called from one call
site with variables (a literal argument, e.g. observe(..., 0, ...), would compile a second
specialisation), and the entry points are plain loops over a block of replicas (a prange wrapper
compiled the whole linked replica loop once more: 14 s of a 60 s cold compile).

The ``out`` tuple (allocated by physsgd/train.py, in this order):
    out[0:10]   eps_g, train_err, R, Q, T, wchange, wnorm, diverged, success, stopped
    out[10:15]  at_teacher, first_passage, first_exit, window_overlap, window_eps_g
    out[15:19]  grad_noise, noise_scale, sharpness, hessian_trace   (measure=[...]; curvature.py)
    out[19]     (replicas, 4) states of the measure streams, advanced in place
"""
import math

import numpy as np
from numba import njit

from .config import (EG_TESTSET, GREEDY_ALGO, RULE_EPS, RULE_WEIGHTS, RULE_WEIGHTS_OR_TEST,
                     STOP_NONE, STOP_SUCCESS, STOP_ZERO_LOSS, STOP_ZERO_TRAIN_ERROR, SUM)
from . import bits
from .curvature import measure_record, repeat_after_stop
from .jit import entry, internal
from .network import sign
from .observables import embed, eps_closed_form, overlaps_with
from .rng import shuffle
from .samples import batch_start, data_source, next_batch, test_set
from .steps import batch_state, greedy_sweep, propose_flip, sample_error, sgd_step, student_output
from .teacher import best_overlap, on_teacher

# counters (int64) and accumulators (float64) of one replica's run
C_REC, C_RUN_N, C_STOP, C_PASSAGE, C_EXIT, C_ON, C_SEEN, C_PROBES, C_WAS_ON, C_BATCH_N = range(10)
A_RUN_ERR, A_OVERLAP, A_EPS, A_BATCH_ERR = range(4)


@internal
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


@internal
def errors_at_most(cfg, W, W0, fields, v, X, y, h, h0, limit):
    """Whether a classifier misclassifies at most ``limit`` samples of (X, y); stops counting at
    the first error beyond it, so a failing check costs a few samples, not a test set."""
    errors = 0
    for mu in range(X.shape[0]):
        Fv = student_output(cfg, W, W0, fields, v, X[mu], h, h0)
        if sign(Fv) != y[mu]:
            errors += 1
            if errors > limit:
                return False
    return True


# ------------------------------------------------------------------------------------------
# phase: begin

@internal
def begin(cfg, W, fields_s, Wt, fields_t, vt, Xuser, yuser, Xtest_user, ytest_user, s_train,
          s_test, T_r):
    """Everything a replica's run reads besides the move's own buffers: (W0, data source, test
    set, the teacher embedded in R^N, scratch). Fills T_r, the teacher's overlaps."""
    K, F = W.shape
    M = Wt.shape[0]
    N = cfg.N
    src = data_source(cfg, s_train, Xuser, yuser, Wt, fields_t, vt, N)
    Xte, yte = test_set(cfg, s_test, Xtest_user, ytest_user, Wt, fields_t, vt, N,
                        cfg.eg_mode == EG_TESTSET or cfg.teacher_rule == RULE_WEIGHTS_OR_TEST)
    Wt_full = np.zeros((M, N))
    embed(Wt, fields_t, cfg.dense_t, N, Wt_full)
    if M > 0:
        overlaps_with(Wt, fields_t, cfg.dense_t, Wt_full, float(cfg.fan_in_t), T_r)
    scratch = (np.empty(K), np.empty(K), np.empty((K, N)), np.empty((K, M)), np.empty((K, K)),
               np.zeros(max(M, 1), np.bool_))     # h, h0, student embedded, R, Q, used
    return W.copy(), src, Xte, yte, Wt_full, scratch


# ------------------------------------------------------------------------------------------
# phase: one move

@internal
def sgd_buffers(cfg, K, F):
    m = cfg.batch_size
    return (np.empty((m, cfg.N)), np.empty(m), np.zeros((K, F)), np.empty((m, K)), np.empty(K),
            np.empty(K), np.empty(K))     # Xb, yb, momentum buffer, C, h, h0, dfdh


@njit(inline="always")   # one call site; its ~20 array arguments cost reference counting every step
def sgd_move(cfg, s, W, W0, fields, v, src, buf):
    """One SGD step on a fresh batch: (batch error before the update, weights finite)."""
    Xb, yb, mom, C, h, h0, dfdh = buf
    next_batch(cfg, s, Xb, yb, src)
    return sgd_step(cfg, W, W0, fields, v, mom, C, Xb, yb, h, h0, dfdh)


@njit(inline="always")
def _transpose_into(src, dst):
    """dst[:, :] = src.T, element by element (see _copy_matrix)."""
    for i in range(src.shape[0]):
        for j in range(src.shape[1]):
            dst[j, i] = src[i, j]


@internal
def greedy_buffers(cfg, K, F):
    m = cfg.batch_size
    return (np.empty((m, cfg.N)), np.empty(m), np.empty((cfg.N, m)), np.empty((K, m)),
            np.empty(m), np.zeros(m, dtype=np.int64), np.arange(K * F))
    # Xb, yb, XT (greedy moves read the batch one input row at a time), HT, f, wrong, flip order


@njit(inline="always")
def greedy_move(cfg, s, W, W0, fields, v, src, buf):
    """One greedy sweep (every weight proposed once, random order) on one batch, or with a fresh
    batch before every proposal: (fraction of batch errors before the moves, True)."""
    Xb, yb, XT, HT, fb, wrong, flip_order = buf
    m = cfg.batch_size
    if cfg.new_batch_per_proposal:
        shuffle(s, flip_order)
        errors = 0
        for idx in flip_order:
            next_batch(cfg, s, Xb, yb, src)
            _transpose_into(Xb, XT)
            errors += batch_state(cfg, W, fields, v, XT, yb, HT, fb, wrong)
            propose_flip(cfg, s, W, fields, v, XT, yb, HT, fb, wrong, idx)
        return errors / (m * flip_order.shape[0]), True
    next_batch(cfg, s, Xb, yb, src)
    _transpose_into(Xb, XT)
    return greedy_sweep(cfg, s, W, fields, v, XT, yb, HT, fb, wrong, flip_order), True


@internal
def bits_buffers(cfg, K, F, src):
    """The bit-level greedy path's batch and state (bits.py), and the packed training set."""
    Xtr, ytr, order, pos, Wt, fields_t, vt, ht = src
    m = cfg.batch_size
    nw = (m + 63) // 64
    M, Ft = Wt.shape
    st = (np.zeros((K, bits.planes_for(F), nw), np.uint64), np.zeros((K, nw), np.uint64),
          np.zeros((K, nw), np.uint64), np.zeros((K, nw), np.uint64),
          np.zeros((bits.planes_for(K), nw), np.uint64), np.zeros((K, nw), np.uint64),
          np.zeros(nw, np.uint64), np.zeros(nw, np.uint64))       # U, A, B, V, C, D, O, E
    teacher = (np.zeros((bits.planes_for(Ft), nw), np.uint64), np.zeros((max(M, 1), nw), np.uint64),
               np.zeros((bits.planes_for(M), nw), np.uint64))        # Ut, Vt, Ct
    Xset, Yset = bits.pack_set(Xtr, ytr)
    return (np.zeros((cfg.N, nw), np.uint64), np.zeros(nw, np.uint64), bits.valid_masks(m), st,
            np.arange(K * F), teacher, Xset, Yset)      # X, Y, valid, state, flip order, ...


@njit(inline="always")
def bits_move(cfg, s, W, W0, fields, v, src, buf):
    """One greedy sweep on the bit-level path: a fresh packed batch (online: the float path's
    words; finite data: the same rows as next_batch), then bits.sweep."""
    X, Y, valid, st, flip_order, teacher, Xset, Yset = buf
    Xtr, ytr, order, pos, Wt, fields_t, vt, ht = src
    m = cfg.batch_size
    if Xtr.shape[0] == 0:
        bits.draw_batch(s, X, valid)
        Ut, Vt, Ct = teacher
        bits.labels(cfg.out_t, Wt, fields_t, cfg.dense_t, X, valid, Ut, Vt, Ct, Y)
        bits.add_label_noise(s, cfg.label_noise, Y, m)
    else:
        bits.gather(Xset, Yset, order, batch_start(cfg, s, order, pos, m), m, X, Y)
    return bits.sweep(cfg, s, W, fields, cfg.dense_s, X, valid, Y, st, flip_order), True


# ------------------------------------------------------------------------------------------
# phase: observe (after every move, and at step 0)

@internal
def _measure(cfg, W, W0, fields_s, vs, Wt_full, vt, Xte, yte, scratch, Tm, on, full_eps):
    """Fill the R, Q scratch; return eps_g: 0 when the exact rule says the student is the
    teacher, else the closed form, else the test set (NaN when not full_eps: not needed). on and
    full_eps are 0/1 int64: literal True/False arguments would compile one copy per call site."""
    h, h0, ws_full, Rm, Qm, used = scratch
    K, F = W.shape
    if Wt_full.shape[0] > 0:
        overlaps_with(W, fields_s, cfg.dense_s, Wt_full, math.sqrt(F * cfg.fan_in_t), Rm)
    embed(W, fields_s, cfg.dense_s, cfg.N, ws_full)
    overlaps_with(W, fields_s, cfg.dense_s, ws_full, float(F), Qm)
    if cfg.teacher_rule != RULE_EPS and on:
        return 0.0
    if cfg.eg_mode != EG_TESTSET:
        return eps_closed_form(cfg.eg_mode, Qm, Rm, Tm, vs, vt)
    if not full_eps:
        return math.nan
    return set_error(cfg, W, W0, fields_s, vs, Xte, yte, h, h0)[0]


@internal
def _eps_below(cfg, W, W0, fields_s, vs, Wt_full, vt, Xte, yte, scratch, Tm):
    """RULE_EPS teacher check: eps_g <= success_eps (the test set with an early exit)."""
    h, h0, ws_full, Rm, Qm, used = scratch
    if cfg.eg_mode == EG_TESTSET and cfg.out_s != SUM:
        return errors_at_most(cfg, W, W0, fields_s, vs, Xte, yte, h, h0,
                              cfg.success_eps * Xte.shape[0])
    return _measure(cfg, W, W0, fields_s, vs, Wt_full, vt, Xte, yte, scratch, Tm, np.int64(0),
                    np.int64(1)) <= cfg.success_eps


@internal
def is_on_teacher(cfg, W, W0, fields_s, vs, Wt, same_field, Xte, yte, scratch):
    """The weights rules (every step): the student's units are the teacher's up to symmetries;
    under RULE_WEIGHTS_OR_TEST, else no error on the test set (stopping at the first error)."""
    if on_teacher(W, Wt, same_field, cfg.sign_flips, scratch[5]):
        return True
    if cfg.teacher_rule == RULE_WEIGHTS:
        return False
    return errors_at_most(cfg, W, W0, fields_s, vs, Xte, yte, scratch[0], scratch[1], 0.0)


@internal
def _track(cfg, step, on, ctr):
    """The teacher check at one step: first passage, first exit, time in the window."""
    if on and ctr[C_PASSAGE] < 0:
        ctr[C_PASSAGE] = step
    if not on and ctr[C_WAS_ON] == 1 and ctr[C_EXIT] < 0:
        ctr[C_EXIT] = step
    if on:
        ctr[C_WAS_ON] = 1
    if cfg.window_start <= step <= cfg.window_stop:
        ctr[C_SEEN] += 1
        ctr[C_ON] += 1 if on else 0


@njit(inline="always")
def _sums(cfg, step, berr, ctr, acc):
    """The running sums of every step > 0: batch errors (the training error between records) and,
    under batch_eps, the window's batch errors."""
    acc[A_RUN_ERR] += berr
    ctr[C_RUN_N] += 1
    if cfg.batch_eps and cfg.window_start <= step - 1 <= cfg.window_stop:
        acc[A_BATCH_ERR] += berr      # the error of the state after step - 1
        ctr[C_BATCH_N] += 1


@njit(inline="always")
def _events(cfg, step, ctr, record_steps):
    """What step > 0 asks of observe: a record, a probe of the window, a check of the stop rule."""
    rec = ctr[C_REC]
    is_record = rec < record_steps.shape[0] and step == record_steps[rec]
    probe = step % cfg.probe_every == 0 or step == cfg.window_stop
    check = cfg.stop_rule != STOP_NONE and step > 0 and (step % cfg.check_every == 0 or is_record)
    return is_record, probe, check


@njit(inline="always")
def quiet_step(cfg, step, berr, finite, W, ctx, ctr, acc):
    """Most steps need only the running sums and, under a weights rule, the teacher check: do
    those and return True; return False (doing nothing) when the step needs ``observe`` (step 0,
    divergence, a probe, a record, a stop check). Inlined into the loops: a call of ``observe``
    passes ~40 arrays, whose reference counting alone was ~1 us per step, a quarter of an online
    SGD step at m = 1."""
    if step == 0 or not finite:
        return False
    is_record, probe, check = _events(cfg, step, ctr, ctx[11])
    if is_record or probe or check:
        return False
    _sums(cfg, step, berr, ctr, acc)
    if cfg.teacher_rule != RULE_EPS:
        W0, fields_s, vs, Wt, vt, same_field, Xte, yte, Wt_full, scratch, src, record_steps = ctx
        _track(cfg, step, is_on_teacher(cfg, W, W0, fields_s, vs, Wt, same_field, Xte, yte, scratch), ctr)
    return True


@internal
def observe(cfg, r, step, berr, finite, W, ctx, ctr, acc, out):
    """Everything measured after the move of ``step`` (step 0: the initial state): divergence,
    the teacher check, the window's probes, records, stop rules. Returns whether the replica
    stops here (divergence or a stop rule)."""
    W0, fields_s, vs, Wt, vt, same_field, Xte, yte, Wt_full, scratch, src, record_steps = ctx
    eps_g, train_err, R, Q, T, wchange, wnorm, diverged, success, stopped = out[:10]
    if not finite:
        diverged[r] = True
        ctr[C_STOP] = step
        return True
    if step > 0:
        _sums(cfg, step, berr, ctr, acc)
    rec = ctr[C_REC]
    is_record, probe, check = _events(cfg, step, ctr, record_steps)   # quiet_step's test too
    in_window = cfg.window_start <= step <= cfg.window_stop
    # the teacher check: every step from the weights, or at the probes from eps_g
    on = False
    if cfg.teacher_rule != RULE_EPS:
        on = is_on_teacher(cfg, W, W0, fields_s, vs, Wt, same_field, Xte, yte, scratch)
        _track(cfg, step, on, ctr)
    elif probe:
        on = _eps_below(cfg, W, W0, fields_s, vs, Wt_full, vt, Xte, yte, scratch, T[r])
        _track(cfg, step, on, ctr)
    # window means at the probes
    if in_window and probe:
        eg = _measure(cfg, W, W0, fields_s, vs, Wt_full, vt, Xte, yte, scratch, T[r], np.int64(on),
                      np.int64(not cfg.batch_eps))
        acc[A_OVERLAP] += best_overlap(scratch[3], scratch[4], T[r])
        acc[A_EPS] += eg
        ctr[C_PROBES] += 1
    if not (is_record or check):
        return False
    if (not is_record and cfg.stop_rule == STOP_SUCCESS and cfg.teacher_rule == RULE_EPS
            and cfg.eg_mode == EG_TESTSET and cfg.out_s != SUM
            and not errors_at_most(cfg, W, W0, fields_s, vs, Xte, yte, scratch[0], scratch[1],
                                   cfg.success_eps * Xte.shape[0])):
        return False    # not yet a success: found out at the first few errors, not a full pass
    eg = _measure(cfg, W, W0, fields_s, vs, Wt_full, vt, Xte, yte, scratch, T[r], np.int64(on), np.int64(1))
    wn = np.sqrt(np.sum(W ** 2)) / math.sqrt(W.size)
    if not (math.isfinite(eg) and math.isfinite(wn)):
        # finite weights so large that their overlaps overflow count as diverged too
        diverged[r] = True
        ctr[C_STOP] = step
        return True
    Xtr, ytr = src[0], src[1]
    if Xtr.shape[0] > 0:
        terr, zero_loss = set_error(cfg, W, W0, fields_s, vs, Xtr, ytr, scratch[0], scratch[1])
    else:
        terr = acc[A_RUN_ERR] / ctr[C_RUN_N] if ctr[C_RUN_N] > 0 else np.nan
        zero_loss = False
    stop = False
    if check:
        if cfg.stop_rule == STOP_ZERO_TRAIN_ERROR:
            stop = terr == 0.0
        elif cfg.stop_rule == STOP_ZERO_LOSS:
            stop = zero_loss
        elif cfg.teacher_rule != RULE_EPS:
            stop = on
        else:
            stop = eg <= cfg.success_eps
    if is_record or stop:
        # a stop between records lands in this slot
        _copy_matrix(scratch[3], R[r, rec])
        _copy_matrix(scratch[4], Q[r, rec])
        eps_g[r, rec] = eg
        train_err[r, rec] = terr
        wchange[r, rec] = np.sqrt(np.sum((W - W0) ** 2)) / math.sqrt(W.size)
        wnorm[r, rec] = wn
        ctr[C_REC] = rec + 1
        acc[A_RUN_ERR] = 0.0
        ctr[C_RUN_N] = 0
    if stop:
        ctr[C_STOP] = step
    return stop


# ------------------------------------------------------------------------------------------
# phase: finish

@njit(inline="always")
def _copy_matrix(src, dst):
    """dst[:, :] = src, element by element: a slice assignment compiles numba's shape-mismatch
    message (string formatting, ~3 s of a cold compile)."""
    for i in range(src.shape[0]):
        for j in range(src.shape[1]):
            dst[i, j] = src[i, j]


@internal
def close_records(cfg, r, ctr, acc, out):
    """The stationary observables from the counters, and the record slots after an early stop
    (repeat the last record; NaN for a diverged replica). Returns the number of records taken.
    Shared by every engine's finish (overlaps.py too); success is each engine's own."""
    eps_g, train_err, R, Q, T, wchange, wnorm, diverged, success, stopped = out[:10]
    at_teacher, first_passage, first_exit, window_overlap, window_eps_g = out[10:15]
    stopped[r] = ctr[C_STOP]
    first_passage[r] = ctr[C_PASSAGE]
    first_exit[r] = ctr[C_EXIT]
    if diverged[r]:
        at_teacher[r] = np.nan
        window_overlap[r] = np.nan
        window_eps_g[r] = np.nan
    else:
        at_teacher[r] = ctr[C_ON] / ctr[C_SEEN] if ctr[C_SEEN] > 0 else np.nan
        window_overlap[r] = acc[A_OVERLAP] / ctr[C_PROBES] if ctr[C_PROBES] > 0 else np.nan
        if cfg.batch_eps:
            window_eps_g[r] = acc[A_BATCH_ERR] / ctr[C_BATCH_N] if ctr[C_BATCH_N] > 0 else np.nan
        else:
            window_eps_g[r] = acc[A_EPS] / ctr[C_PROBES] if ctr[C_PROBES] > 0 else np.nan
    rec = ctr[C_REC]
    n_rec = eps_g.shape[1]
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
            _copy_matrix(R[r, rec - 1], R[r, t])
            _copy_matrix(Q[r, rec - 1], Q[r, t])
    return rec


@internal
def finish(cfg, r, W, ctx, ctr, acc, out):
    """close_records, then success: the exact rule from the weights, or eps_g at the last record."""
    W0, fields_s, vs, Wt, vt, same_field, Xte, yte, Wt_full, scratch, src, record_steps = ctx
    eps_g, diverged, success = out[0], out[7], out[8]
    rec = close_records(cfg, r, ctr, acc, out)
    n_rec = eps_g.shape[1]
    if not diverged[r] and rec > 0:
        if cfg.teacher_rule != RULE_EPS:
            success[r] = is_on_teacher(cfg, W, W0, fields_s, vs, Wt, same_field, Xte, yte, scratch)
        else:
            success[r] = eps_g[r, n_rec - 1] <= cfg.success_eps


@internal
def _counters(cfg):
    ctr = np.zeros(10, np.int64)
    ctr[C_PASSAGE] = -1
    ctr[C_EXIT] = -1
    ctr[C_STOP] = cfg.total_steps
    return ctr, np.zeros(4)


# ------------------------------------------------------------------------------------------
# the replica loops, one per algorithm (the same phases around a different move)

@internal
def _measured(cfg, r, rec_before, W, ctx, ctr, out):
    """measure=[...] (SGD only, curvature.py): when observe has just filled a record slot, take
    the measures there, at the same weights. Called from run_sgd, not from observe, so that the
    greedy kernel never compiles them."""
    if ctr[C_REC] > rec_before:
        measure_record(cfg, r, ctr[C_REC] - 1, W, ctx[0], ctx[1], ctx[2], ctx[10], out)


@njit(inline="always")   # into its entry point: one optimisation of the loop
def run_sgd(cfg, r, W, fields_s, vs, Wt, fields_t, vt, same_field, Xuser, yuser, Xtest_user,
            ytest_user, s_train, s_test, record_steps, out):
    W0, src, Xte, yte, Wt_full, scratch = begin(cfg, W, fields_s, Wt, fields_t, vt, Xuser, yuser,
                                                Xtest_user, ytest_user, s_train, s_test, out[4][r])
    buf = sgd_buffers(cfg, W.shape[0], W.shape[1])
    ctr, acc = _counters(cfg)
    ctx = (W0, fields_s, vs, Wt, vt, same_field, Xte, yte, Wt_full, scratch, src, record_steps)
    # step 0 observes the initial state; np.int64(0), not 0: a literal would compile observe twice
    step, berr, finite = np.int64(0), 0.0, W.shape[0] > 0
    while True:
        if not quiet_step(cfg, step, berr, finite, W, ctx, ctr, acc):
            rec = ctr[C_REC]
            stop = observe(cfg, r, step, berr, finite, W, ctx, ctr, acc, out)
            if cfg.measure != 0:
                _measured(cfg, r, rec, W, ctx, ctr, out)
            if stop:
                break
        if step >= cfg.total_steps:
            break
        step += 1
        berr, finite = sgd_move(cfg, s_train, W, W0, fields_s, vs, src, buf)
    finish(cfg, r, W, ctx, ctr, acc, out)
    if cfg.measure != 0:
        repeat_after_stop(out, r, ctr[C_REC], out[7][r])


@njit(inline="always")   # into its entry point: one optimisation of the loop
def run_greedy(cfg, r, W, fields_s, vs, Wt, fields_t, vt, same_field, Xuser, yuser, Xtest_user,
               ytest_user, s_train, s_test, record_steps, out):
    W0, src, Xte, yte, Wt_full, scratch = begin(cfg, W, fields_s, Wt, fields_t, vt, Xuser, yuser,
                                                Xtest_user, ytest_user, s_train, s_test, out[4][r])
    buf = greedy_buffers(cfg, W.shape[0], W.shape[1])
    ctr, acc = _counters(cfg)
    ctx = (W0, fields_s, vs, Wt, vt, same_field, Xte, yte, Wt_full, scratch, src, record_steps)
    # step 0 observes the initial state; np.int64(0), not 0: a literal would compile observe twice
    step, berr, finite = np.int64(0), 0.0, W.shape[0] > 0
    while True:
        if not quiet_step(cfg, step, berr, finite, W, ctx, ctr, acc):
            if observe(cfg, r, step, berr, finite, W, ctx, ctr, acc, out):
                break
        if step >= cfg.total_steps:
            break
        step += 1
        berr, finite = greedy_move(cfg, s_train, W, W0, fields_s, vs, src, buf)
    finish(cfg, r, W, ctx, ctr, acc, out)


@njit(inline="always")   # into its entry point: one optimisation of the loop
def run_greedy_bits(cfg, r, W, fields_s, vs, Wt, fields_t, vt, same_field, Xuser, yuser,
                    Xtest_user, ytest_user, s_train, s_test, record_steps, out):
    W0, src, Xte, yte, Wt_full, scratch = begin(cfg, W, fields_s, Wt, fields_t, vt, Xuser, yuser,
                                                Xtest_user, ytest_user, s_train, s_test, out[4][r])
    buf = bits_buffers(cfg, W.shape[0], W.shape[1], src)
    ctr, acc = _counters(cfg)
    ctx = (W0, fields_s, vs, Wt, vt, same_field, Xte, yte, Wt_full, scratch, src, record_steps)
    # step 0 observes the initial state; np.int64(0), not 0: a literal would compile observe twice
    step, berr, finite = np.int64(0), 0.0, W.shape[0] > 0
    while True:
        if not quiet_step(cfg, step, berr, finite, W, ctx, ctr, acc):
            if observe(cfg, r, step, berr, finite, W, ctx, ctr, acc, out):
                break
        if step >= cfg.total_steps:
            break
        step += 1
        berr, finite = bits_move(cfg, s_train, W, W0, fields_s, vs, src, buf)
    finish(cfg, r, W, ctx, ctr, acc, out)


# The entry points: replicas lo..hi-1 of a run, one after the other. physsgd/replicas.py calls
# them on blocks of replicas from several threads (nogil); cached on disk (cache=True).
# A replica draws from a copy of its training stream's state: the 32-byte states of neighbouring
# replicas share a cache line, and two threads drawing from them (every step) slowed each other
# down by ~30 % (false sharing). The advanced states are not needed after the run.
@entry(level=3)     # -O1 made the curvature measures 8 % slower (kernels/jit.py)
def train_sgd(cfg, lo, hi, W, fields_s, vs, Wt, fields_t, vt, same_field, Xuser, yuser,
              Xtest_user, ytest_user, s_train, s_test, record_steps, out):
    for r in range(lo, hi):
        run_sgd(cfg, r, W[r], fields_s[r], vs, Wt[r], fields_t[r], vt, same_field[r], Xuser, yuser,
                Xtest_user, ytest_user, s_train[r].copy(), s_test[r], record_steps, out)


@entry()
def train_greedy(cfg, lo, hi, W, fields_s, vs, Wt, fields_t, vt, same_field, Xuser, yuser,
                 Xtest_user, ytest_user, s_train, s_test, record_steps, out):
    for r in range(lo, hi):
        run_greedy(cfg, r, W[r], fields_s[r], vs, Wt[r], fields_t[r], vt, same_field[r], Xuser,
                   yuser, Xtest_user, ytest_user, s_train[r].copy(), s_test[r], record_steps, out)


@entry()
def train_greedy_bits(cfg, lo, hi, W, fields_s, vs, Wt, fields_t, vt, same_field, Xuser, yuser,
                      Xtest_user, ytest_user, s_train, s_test, record_steps, out):
    for r in range(lo, hi):
        run_greedy_bits(cfg, r, W[r], fields_s[r], vs, Wt[r], fields_t[r], vt, same_field[r],
                        Xuser, yuser, Xtest_user, ytest_user, s_train[r].copy(), s_test[r],
                        record_steps, out)


def entry_point(algo, bit_path=False):
    """The block kernel of an algorithm code (and of the bit-level greedy path):
    ``kernel(cfg, lo, hi, ...)`` trains replicas lo..hi-1."""
    if algo == GREEDY_ALGO:
        return train_greedy_bits if bit_path else train_greedy
    return train_sgd
