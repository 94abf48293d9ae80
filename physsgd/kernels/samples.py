"""Samples: inputs from their law, the teacher's labels, label noise, and mini-batches (fresh
online samples, or slices of a finite training set)."""
import math

import numpy as np
from numba import njit

from .config import INPUT_BINARY, SUM
from .jit import internal
from .network import output, predict, sign, unit_fields
from .rng import fill_binary, fill_normal, gamma, next_u64, normal, randint, shuffle, uniform

_U = np.uint64


@internal
def draw_input(cfg, s, x):
    if cfg.inputs == INPUT_BINARY:
        fill_binary(s, x)
        return
    fill_normal(s, x)
    if cfg.chi != 0.0:   # |x_1| = sqrt(2 G), G ~ Gamma((chi+1)/2): density |x_1|^chi e^{-x_1^2/2}
        x[0] = math.sqrt(2.0 * gamma(s, 0.5 * (cfg.chi + 1.0))) * sign(uniform(s) - 0.5)


@internal
def teacher_output(cfg, Wt, fields_t, vt, x, ht):
    """The teacher's clean label (classifier) or output (regression)."""
    unit_fields(Wt, fields_t, cfg.dense_t, x, ht)
    return predict(cfg.out_t, output(cfg.act_t, cfg.out_t, vt, ht))


@internal
def noisy(cfg, s, y):
    if cfg.label_noise == 0.0:
        return y
    if cfg.out_t == SUM:
        return y + cfg.label_noise * normal(s)
    return -y if uniform(s) < cfg.label_noise else y


@internal
def make_samples(cfg, s, Wt, fields_t, vt, X, y, ht, with_noise):
    """Draw X's rows and the teacher's labels (with label noise when with_noise != 0: a 0/1
    int64, since literal True/False arguments would compile one copy per call site)."""
    for mu in range(X.shape[0]):
        draw_input(cfg, s, X[mu])
        y[mu] = teacher_output(cfg, Wt, fields_t, vt, X[mu], ht)
        if with_noise:
            y[mu] = noisy(cfg, s, y[mu])


@internal
def fill_binary_batch(s, Xb):
    """A batch (m, N) of uniform +-1 inputs, drawn input by input: input i of samples
    64 w ... 64 w + 63 are the bits of one word (bit b: sample 64 w + b, set = +1). The bit-level
    greedy path (bits.py) stores the same words as they come, so both paths see the same batch."""
    m, N = Xb.shape
    for i in range(N):
        for w in range(0, m, 64):
            bits = next_u64(s)
            for b in range(min(64, m - w)):
                Xb[w + b, i] = 1.0 if (bits >> _U(b)) & _U(1) else -1.0


@internal
def online_batch(cfg, s, Xb, yb, Wt, fields_t, vt, ht):
    """Fresh samples: binary inputs input by input (fill_binary_batch), Gaussian ones sample by
    sample; then the teacher's labels; then their noise, sample by sample."""
    if cfg.inputs == INPUT_BINARY:
        fill_binary_batch(s, Xb)
        for mu in range(Xb.shape[0]):
            yb[mu] = teacher_output(cfg, Wt, fields_t, vt, Xb[mu], ht)
        for mu in range(Xb.shape[0]):
            yb[mu] = noisy(cfg, s, yb[mu])
        return
    make_samples(cfg, s, Wt, fields_t, vt, Xb, yb, ht, np.int64(1))


@internal
def batch_start(cfg, s, order, pos, m):
    """Finite data: the batch is order[start : start + m]. The next slice of the epoch's order,
    a new epoch (fresh shuffle) starting when fewer than m unseen samples remain; or, with
    independent_batches, m distinct samples drawn afresh (a partial Fisher-Yates shuffle of the
    first m positions)."""
    if cfg.independent_batches:
        n = order.shape[0]
        for i in range(m):
            j = i + randint(s, n - i)
            order[i], order[j] = order[j], order[i]
        return 0
    if pos[0] + m > order.shape[0]:
        shuffle(s, order)
        pos[0] = 0
    start = pos[0]
    pos[0] += m
    return start


@njit(inline="always")
def next_batch(cfg, s, Xb, yb, src):
    """Fill the batch (Xb, yb) from the data source src = (Xtr, ytr, order, pos, Wt, fields_t,
    vt, ht): fresh samples when the training set is empty (online), else the rows batch_start
    picks."""
    Xtr, ytr, order, pos, Wt, fields_t, vt, ht = src
    m = Xb.shape[0]
    if Xtr.shape[0] == 0:
        online_batch(cfg, s, Xb, yb, Wt, fields_t, vt, ht)
        return
    start = batch_start(cfg, s, order, pos, m)
    for mu in range(m):
        i = order[start + mu]
        for j in range(Xb.shape[1]):     # not Xb[mu, :] = Xtr[i]: its shape check compiles
            Xb[mu, j] = Xtr[i, j]         # numba's message formatting (~3 s of a cold compile)
        yb[mu] = ytr[i]


@internal
def data_source(cfg, s_train, Xuser, yuser, Wt, fields_t, vt, N):
    """Phase 'training set': user rows (shared, read-only), a set of P samples drawn once for
    this replica, or none (online). Returns the data source tuple next_batch reads."""
    ht = np.empty(max(Wt.shape[0], 1))
    if cfg.user_data:
        Xtr, ytr = Xuser, yuser
    elif cfg.P > 0:
        Xtr = np.empty((cfg.P, N))
        ytr = np.empty(cfg.P)
        make_samples(cfg, s_train, Wt, fields_t, vt, Xtr, ytr, ht, np.int64(1))
    else:
        Xtr = np.empty((0, N))
        ytr = np.empty(0)
    order = np.arange(Xtr.shape[0])
    pos = np.array([Xtr.shape[0]])       # forces a shuffle before the first batch
    return Xtr, ytr, order, pos, Wt, fields_t, vt, ht


@internal
def test_set(cfg, s_test, Xtest_user, ytest_user, Wt, fields_t, vt, N, needed):
    """Phase 'test set': the fixed test set (clean labels, its own stream) where eps_g or the
    teacher check needs one; the held-out user rows for user data; empty otherwise."""
    if not needed:
        return np.empty((0, N)), np.empty(0)
    if cfg.user_data:
        return Xtest_user, ytest_user
    Xte = np.empty((cfg.test_size, N))
    yte = np.empty(cfg.test_size)
    make_samples(cfg, s_test, Wt, fields_t, vt, Xte, yte, np.empty(max(Wt.shape[0], 1)), np.int64(0))
    return Xte, yte
