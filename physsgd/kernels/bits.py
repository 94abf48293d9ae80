"""The exact bit-level greedy path: +-1 weights on +-1 inputs, sign units, majority or parity.

Layout. A batch of m samples is stored input-major as bits over samples: X[i, w] holds input i of
samples 64 w ... 64 w + 63 (bit b set: x = +1), nw = ceil(m / 64) words per input; bits past m
are masked off by ``valid``. These are exactly the words the float path draws
(samples.fill_binary_batch), so both paths run the same Markov chain on the same random numbers.

State of the student on its batch (all bit masks over samples, one word per 64 samples):
- U[k]: the number of inputs of unit k that agree with its weights, u = (d + h) / 2 for the raw
  field h, as a bit-sliced counter (plane p holds bit p of u for every sample);
- V[k]: unit k's vote (h >= 0, i.e. u >= c with c = ceil(d / 2); sign(0) = +1);
- A[k] = (u == c), B[k] = (u == c - 1): the samples where flipping one weight of unit k turns its
  vote: an agreeing input (u -> u - 1) turns an A-sample's vote to -1, a disagreeing input
  (u -> u + 1) turns a B-sample's vote to +1; no other sample changes vote;
- C: the number of +1 votes (majority only), bit-sliced; D[k]: the samples unit k decides (a
  majority sample when the others split evenly, C - V_k == (K - 1) / 2; every parity sample);
- O, E: the output bit and the error bit (O != label).
A proposal of weight (k, j) then changes exactly the samples
F = (A_k & agree_j | B_k & ~agree_j) & D_k, and dE = #F - 2 #(F & E): a few word operations and
two popcounts per 64 samples, instead of a float pass over the batch. An accepted flip adds +-1
to U_k (bit-sliced), refreshes A_k, B_k, flips V_k, C, O, E where unit k's vote turned, and
refreshes D in those words.
"""
import numpy as np
from llvmlite import ir
from numba import njit

from numba.core import types
from numba.extending import intrinsic

from .config import MAJORITY, PARITY
from .jit import internal
from .rng import next_u64, shuffle, uniform
from .steps import accept_move

_U = np.uint64
_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


@intrinsic
def popcount(typingctx, x):
    """The number of set bits of a uint64 (LLVM's ctpop: one instruction where the CPU has it)."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(fn, [args[0]])
    return types.uint64(types.uint64), codegen


@internal
def planes_for(n):
    """Bit planes a counter needs to hold 0 ... n."""
    p = 1
    while (1 << p) <= n:
        p += 1
    return p


@njit(inline="always")
def _inc(planes, w, mask):
    """Add 1 to the bit-sliced counter planes[:, w] where mask is set (ripple carry)."""
    carry = mask
    for p in range(planes.shape[0]):
        if carry == _U(0):
            return
        x = planes[p, w]
        planes[p, w] = x ^ carry
        carry = x & carry


@njit(inline="always")
def _dec(planes, w, mask):
    """Subtract 1 from the bit-sliced counter planes[:, w] where mask is set (ripple borrow)."""
    borrow = mask
    for p in range(planes.shape[0]):
        if borrow == _U(0):
            return
        x = planes[p, w]
        planes[p, w] = x ^ borrow
        borrow = ~x & borrow


@njit(inline="always")
def _equals(planes, w, c):
    """Mask of the samples whose counter planes[:, w] equals the constant c."""
    eq = _ONES
    for p in range(planes.shape[0]):
        eq &= planes[p, w] if (c >> p) & 1 else ~planes[p, w]
    return eq


@njit(inline="always")
def _at_least(planes, w, c):
    """Mask of the samples whose counter planes[:, w] is >= the constant c (c >= 0)."""
    gt = _U(0)
    eq = _ONES
    for p in range(planes.shape[0] - 1, -1, -1):
        x = planes[p, w]
        if (c >> p) & 1:
            eq &= x
        else:
            gt |= eq & x
            eq &= ~x
    return gt | eq


@internal
def valid_masks(m):
    nw = (m + 63) // 64
    valid = np.full(nw, _ONES)
    if m % 64:
        valid[nw - 1] = (_U(1) << _U(m % 64)) - _U(1)
    return valid


@internal
def draw_batch(s, X, valid):
    """Fresh uniform +-1 inputs, input by input, one word per 64 samples (as the float path)."""
    N, nw = X.shape
    for i in range(N):
        for w in range(nw):
            X[i, w] = next_u64(s) & valid[w]


@internal
def _input(dense, fields, k, j):
    return j if dense else fields[k, j]


@njit(inline="always")
def _literal(W, k, j, fields, dense, X, w):
    """Input j of unit k agrees with its weight (bit set) for the 64 samples of word w."""
    x = X[_input(dense, fields, k, j), w]
    return x if W[k, j] > 0.0 else ~x


@njit(inline="always")
def _carry_from(U, w, carry, p):
    """Add the mask ``carry`` (weight 2^p) to the counter U[:, w]."""
    while carry != _U(0) and p < U.shape[0]:
        x = U[p, w]
        U[p, w] = x ^ carry
        carry = x & carry
        p += 1


@internal
def unit_counts(W, k, fields, dense, X, valid, U):
    """U[:, :] = bit-sliced counts of the inputs of unit k that agree with its weights.

    Carry-save adders (Harley-Seal): four inputs at a time go through two full adders into the
    'ones' plane and a third into the 'twos' plane, held in registers; only the carry of weight
    4 ripples into the stored planes. 25x the plain ripple counter (measured at d = 65)."""
    U[:, :] = 0
    F = W.shape[1]
    for w in range(X.shape[1]):
        v = valid[w]
        ones = _U(0)
        twos = _U(0)
        j = 0
        while j + 3 < F:
            a = _literal(W, k, j, fields, dense, X, w)
            b = _literal(W, k, j + 1, fields, dense, X, w)
            u = ones ^ a
            c1 = (ones & a) | (u & b)
            ones = u ^ b
            a = _literal(W, k, j + 2, fields, dense, X, w)
            b = _literal(W, k, j + 3, fields, dense, X, w)
            u = ones ^ a
            c2 = (ones & a) | (u & b)
            ones = u ^ b
            u = twos ^ c1
            _carry_from(U, w, ((twos & c1) | (u & c2)) & v, 2)
            twos = u ^ c2
            j += 4
        while j < F:
            a = _literal(W, k, j, fields, dense, X, w) & v
            carry = ones & a
            ones ^= a
            _carry_from(U, w, twos & carry, 2)
            twos ^= carry
            j += 1
        U[0, w] = ones & v
        if U.shape[0] > 1:
            U[1, w] = twos & v


@internal
def outputs(out, V, C, w, K):
    """Output bits (set: +1) of word w from the vote bits V (K, nw) / vote counter C."""
    if out == PARITY:
        o = _U(0)
        for k in range(K):
            o ^= V[k, w]
        return o if K % 2 else ~o       # +1 iff an even number of -1 votes
    return _at_least(C, w, (K + 1) // 2)


@internal
def labels(out_t, Wt, fields_t, dense_t, X, valid, Ut, Vt, Ct, Y):
    """The teacher's label bits Y (set: +1) for the batch X (binary sign-unit teacher)."""
    M, Ft = Wt.shape
    c = (Ft + 1) // 2
    Ct[:, :] = 0
    for n in range(M):
        unit_counts(Wt, n, fields_t, dense_t, X, valid, Ut)
        for w in range(X.shape[1]):
            Vt[n, w] = _at_least(Ut, w, c)
            if out_t == MAJORITY:
                _inc(Ct, w, Vt[n, w] & valid[w])
    for w in range(X.shape[1]):
        Y[w] = outputs(out_t, Vt, Ct, w, M) & valid[w]


@internal
def add_label_noise(s, p, Y, m):
    """Flip each label with probability p, sample by sample (as the float path)."""
    if p == 0.0:
        return
    for mu in range(m):
        if uniform(s) < p:
            Y[mu >> 6] ^= _U(1) << _U(mu & 63)


@njit(inline="always")
def _decides(out, C, V, k, w, K):
    """Samples of word w whose output turns with unit k's vote."""
    if out == PARITY:
        return _ONES
    half = (K - 1) // 2
    return (_equals(C, w, half) & ~V[k, w]) | (_equals(C, w, half + 1) & V[k, w])


@internal
def batch_state(out, W, fields, dense, X, valid, Y, U, A, B, V, C, D, O, E):
    """Counts, marginal masks, votes, decided samples, outputs and errors of the student on its
    batch; returns the number of batch errors."""
    K, F = W.shape
    c = (F + 1) // 2
    C[:, :] = 0
    errors = 0
    for k in range(K):
        unit_counts(W, k, fields, dense, X, valid, U[k])
        for w in range(X.shape[1]):
            A[k, w] = _equals(U[k], w, c) & valid[w]
            B[k, w] = _equals(U[k], w, c - 1) & valid[w]
            V[k, w] = _at_least(U[k], w, c) & valid[w]
            if out == MAJORITY:
                _inc(C, w, V[k, w])
    for w in range(X.shape[1]):
        for k in range(K):
            D[k, w] = _decides(out, C, V, k, w, K) & valid[w]
        O[w] = outputs(out, V, C, w, K) & valid[w]
        E[w] = (O[w] ^ Y[w]) & valid[w]
        errors += popcount(E[w])
    return errors


@internal
def flip_delta(W, k, j, fields, dense, X, A, B, D, E):
    """dE of flipping weight (k, j): the change of the number of batch errors."""
    x_row = X[_input(dense, fields, k, j)]
    positive = W[k, j] > 0.0
    flipped = _U(0)          # popcount of the samples whose output turns
    to_right = _U(0)         # ... of those now wrong
    for w in range(X.shape[1]):
        agree = x_row[w] if positive else ~x_row[w]
        F = ((A[k, w] & agree) | (B[k, w] & ~agree)) & D[k, w]
        flipped += popcount(F)
        to_right += popcount(F & E[w])
    return np.int64(flipped) - 2 * np.int64(to_right)


@internal
def apply_flip(out, W, k, j, fields, dense, X, valid, U, A, B, V, C, D, O, E):
    """Flip weight (k, j) and update the batch state."""
    K, F = W.shape
    c = (F + 1) // 2
    x_row = X[_input(dense, fields, k, j)]
    positive = W[k, j] > 0.0
    W[k, j] = -W[k, j]
    Uk = U[k]
    for w in range(X.shape[1]):
        agree = (x_row[w] if positive else ~x_row[w]) & valid[w]   # agreed before the flip
        turn = (A[k, w] & agree) | (B[k, w] & ~agree)               # samples whose vote turns
        _dec(Uk, w, agree)
        _inc(Uk, w, ~agree & valid[w])
        A[k, w] = _equals(Uk, w, c) & valid[w]
        B[k, w] = _equals(Uk, w, c - 1) & valid[w]
        if turn == _U(0):
            continue
        decided = turn & D[k, w]
        if out == MAJORITY:
            _dec(C, w, turn & V[k, w])
            _inc(C, w, turn & ~V[k, w])
        V[k, w] ^= turn
        O[w] ^= decided
        E[w] ^= decided
        if out == MAJORITY:
            for l in range(K):
                D[l, w] = _decides(out, C, V, l, w, K) & valid[w]


@internal
def sweep(cfg, s, W, fields, dense, X, valid, Y, st, order):
    """Propose a flip of every weight once, in a fresh random order, on one batch (as
    steps.greedy_sweep: same draws, same accepted flips). Returns the fraction of batch errors
    before the sweep."""
    U, A, B, V, C, D, O, E = st
    errors = batch_state(cfg.out_s, W, fields, dense, X, valid, Y, U, A, B, V, C, D, O, E)
    shuffle(s, order)
    F = W.shape[1]
    for idx in order:
        k = idx // F
        j = idx - k * F
        dE = flip_delta(W, k, j, fields, dense, X, A, B, D, E)
        if accept_move(cfg, s, dE):
            apply_flip(cfg.out_s, W, k, j, fields, dense, X, valid, U, A, B, V, C, D, O, E)
    return errors / cfg.batch_size


@internal
def pack_set(Xf, yf):
    """A float +-1 sample set (n, N), labels (n,) as bits: (N, ceil(n / 64)) and (ceil(n / 64),)."""
    n, N = Xf.shape
    nw = (n + 63) // 64
    Xb = np.zeros((N, nw), np.uint64)
    Yb = np.zeros(nw, np.uint64)
    for mu in range(n):
        bit = _U(1) << _U(mu & 63)
        for i in range(N):
            if Xf[mu, i] > 0.0:
                Xb[i, mu >> 6] |= bit
        if yf[mu] > 0.0:
            Yb[mu >> 6] |= bit
    return Xb, Yb


@internal
def gather(Xset, Yset, order, start, m, X, Y):
    """The batch of the samples order[start : start + m] of a packed set (finite data)."""
    X[:, :] = 0
    Y[:] = 0
    N = X.shape[0]
    for mu in range(m):
        idx = order[start + mu]
        src_w, src_b = idx >> 6, _U(idx & 63)
        dst_w, dst_b = mu >> 6, _U(1) << _U(mu & 63)
        for i in range(N):
            if (Xset[i, src_w] >> src_b) & _U(1):
                X[i, dst_w] |= dst_b
        if (Yset[src_w] >> src_b) & _U(1):
            Y[dst_w] |= dst_b
