"""The exact overlap chain of online SGD on Gaussian inputs (SCIENCE.md 1.8): the weights are
tracked by their coordinates in a moving orthonormal frame, so a step costs O(m r + m^2) random
numbers and O(m r^2 + r^2 (r + m)) flops whatever the fan-in F.

Blocks and rows
---------------
A dense network is one block of fan-in F = N; a tree with the teacher on the same blocks is K
blocks of fan-in F = d (unit k of the student and of the teacher read block k, so the blocks
never mix). Block b holds r row vectors of R^F, in this order:
    teacher (Mb) | initial student W0 (Kb) | student W (Kb) | momentum buffer V (Kb, if momentum)
The first c = Mb + Kb rows are constant ("the constant rows"); W and V move ("the moving rows").

Coordinates
-----------
The block keeps an orthonormal frame f_1..f_n of R^F whose span contains every row, and the
coordinates y_aj = s_a . f_j / sqrt(F), so that every overlap is a dot product of coordinates:
s_a . s_b / F = y_a . y_b (Y Y^T is the Gram matrix G of SCIENCE.md 1.8). The constant rows use
only the first n_c directions, n_c = min(c, F), or min(Mb, F) when W0 lies in the teacher's span
(init="teacher": W0 = teacher; init_scale = 0: W0 = 0); the moving rows use all
n = min(n_c + moving rows, F) (a direction no row needs would only cost random numbers).

One step, exactly in law
------------------------
Fresh x ~ N(0, I_F), independent of the frame (a function of the past only):
- u_j = x . f_j are iid N(0, 1), and the pre-activations are h_a = s_a . x / sqrt(F) = y_a . u:
  jointly N(0, G), whatever the rank of G (no inverse, no threshold);
- the parts of the m samples orthogonal to the frame are independent of u, and their Gram
  matrix is Wishart(nu, I_m), nu = F - n. Bartlett: X_perp = B E with E (q x F) orthonormal rows
  g_1..g_q orthogonal to the frame, q = min(m, nu), and B (m x q) lower-trapezoidal,
  B_ii ~ chi(nu - i) (i = 0..q-1), B_ij ~ N(0, 1) for j < i, 0 above the diagonal.
So sample mu has coordinates (u_mu, B_mu) / sqrt(F) in the extended frame (f, g). The SGD step
(ps.SGD, PyTorch conventions) adds to student row k the gradient
    grad_k = sum_mu C_mu,k x_mu / (m sqrt F),   C_mu,k = loss'(F_mu) df/dh_k (sample mu),
whose coordinates are sum_mu C_mu,k (u_mu, B_mu) / (m F), and
    V <- momentum V + weight_decay W + grad;   W <- W - lr V     (momentum > 0)
    W <- (1 - lr weight_decay) W - lr grad                       (momentum = 0).
Only samples with C_mu != 0 enter, so B is drawn for those alone (their orthogonal parts are
Wishart of their own size). The moving rows now live in the frame plus q new directions; their
coordinates beyond the first n_c directions, a (rows x (n - n_c + q)) block, are re-expressed in
an orthonormal basis of that space by a Householder LQ factorisation T = L Q: L becomes the new
coordinates and Q's rows the new trailing frame directions (still orthogonal to the constant
rows' directions, which never move). Directions dropped by Q carry no row and rejoin the
orthogonal complement, where the next batch is fresh again. Hence the chain (Y up to rotations)
has exactly the law of the overlaps of the direct simulation, with no small-eigenvalue
threshold anywhere: zero initialisation, a student equal to the teacher (init="teacher"),
W = W0 at t = 0 and V = 0 are ordinary states with zero rows or equal rows. When nu = 0 (the
frame is all of R^F, tiny F) there is no orthogonal part and nothing to re-orthogonalise.

Initial state, exactly in law
-----------------------------
A Gaussian teacher's rows (N(0, 1) entries) have the coordinates of the Bartlett factor of
Wishart(F, I_Mb); the student's initial rows (init_scale N(0, 1) entries, independent) have,
given the teacher, N(0, 1) components along the teacher's directions and a Bartlett factor of
Wishart(F - Mb, I_Kb) beyond them (times init_scale): together the Bartlett factor of the stacked
rows. An "axis" teacher is the deterministic row sqrt(F) e_1 (coordinate 1). init="teacher"
copies the teacher rows; an explicit init array gives W0's coordinates (computed by the Python
layer from the array, by QR) and the Gaussian teacher is drawn given them. W = W0 and V = 0.

eps_g is the closed form of observables.py where one exists; otherwise a fixed sample of
test_size standard normal vectors zeta (drawn once, from the test stream) gives test fields
zeta L^T, L the Cholesky factor (LQ with positive diagonal) of the Gram matrix of the rows the
output reads (teacher, student, W0 for output_scale): exact in law at every time, a function of
the overlaps only, and with the teacher rows first the teacher's test labels never change.

Random numbers of replica r: the initial state from stream (seed, r, setup), the batches from
(seed, r, train), the test fields from (seed, r, test): bit-identical for any thread count.

Speed
-----
A step is O(r^2) arithmetic, so fixed costs dominate unless they are kept out of it: the plain
steps between two observation events (probe, check, record, window end) run inside one call
(``advance``), compiled with ``_nrt=False`` over inline helpers, because every call into a
compiled function that takes arrays, and every alias numba's inlining creates, increments and
decrements the arrays' reference counts atomically (perf: half of the step before). numba's
``_nrt`` option is internal; ``advance`` allocates nothing, which is what it requires.
"""
import math
from collections import namedtuple

import numpy as np
from numba import njit


from . import network, rng
from .config import EG_TESTSET, STOP_NONE, STOP_SUCCESS, SUM
from .engine import (A_BATCH_ERR, A_EPS, A_OVERLAP, A_RUN_ERR, C_BATCH_N, C_PROBES, C_REC,
                     C_ON, C_PASSAGE, C_EXIT, C_RUN_N, C_SEEN, C_STOP, _counters, _track,
                     close_records)
from .jit import entry, internal
from .network import loss_grad, predict
from .observables import eps_closed_form
from .rng import _INV_2_53, _U, _ziggurat_slow, _ziggurat_word, normal
from .samples import noisy
from .steps import sample_error
from .teacher import best_overlap

# Inline copies for the step. A call to a compiled function that takes arrays (the generator's
# state, the fields) increments and decrements each array's reference count atomically: with
# O(r) arithmetic per step those calls cost more than the step itself (measured: half of the
# step's time in NRT_incref/NRT_decref). The copies are compiled from the same source.
output = njit(inline="always")(network.output.py_func)
output_grad = njit(inline="always")(network.output_grad.py_func)
_next_u64 = njit(inline="always")(rng.next_u64.py_func)


@njit(inline="always")
def _normal(s):
    """rng.normal with the state update inlined: the same numbers from the same state."""
    while True:
        x, fast, layer_sign = _ziggurat_word(_next_u64(s))
        if fast:
            return x
        x = _ziggurat_slow(s, layer_sign & 0xFF, layer_sign >= 256, x)
        if not math.isnan(x):
            return x


@njit(inline="always")
def _uniform(s):
    """rng.uniform inlined: the same numbers from the same state."""
    return float(_next_u64(s) >> _U(11)) * _INV_2_53

# how the initial student is made
INIT_RANDOM, INIT_TEACHER, INIT_ARRAY = 0, 1, 2

ChainConfig = namedtuple("ChainConfig", [
    "N", "F", "blocks", "Kb", "Mb", "rows", "n", "n_const", "nu",
    "act_s", "out_s", "act_t", "out_t", "loss", "margin", "output_scale", "lr", "momentum",
    "weight_decay", "batch_size", "label_noise", "test_size", "eg_mode", "success_eps",
    "stop_rule", "check_every", "total_steps", "probe_every", "window_start", "window_stop",
    "batch_eps", "init", "init_scale", "teacher_axis"])
ChainConfig.__doc__ = """Everything a replica's chain reads, as plain scalars (see KernelConfig in
config.py for the fields the two engines share). N: input dimension; F: fan-in of a block;
blocks: 1 (dense) or K (tree); Kb, Mb: student and teacher units per block; rows: rows per block
(Mb + 2 Kb, + Kb with momentum); n_const: directions of the constant rows (min(Mb + Kb, F),
or Mb when W0 lies in the teacher's span: init="teacher" or init_scale = 0);
n = min(n_const + moving rows, F): frame size; nu = F - n: dimension of the frame's orthogonal complement;
init: INIT_RANDOM | INIT_TEACHER | INIT_ARRAY; teacher_axis: the teacher is sqrt(F) e_1."""

_MAX_FLOAT = 1.7976931348623157e308


# ------------------------------------------------------------------------------------------
# random numbers: chi-square and Bartlett factors

@njit(inline="always")
def chi_square(s, k):
    """chi^2 with k >= 1 degrees of freedom: Z^2 for k = 1, else 2 Gamma(k/2) by Marsaglia &
    Tsang (2000) with their squeeze (no logarithm for ~98 % of the draws). The exact test is
    written d (1 - v + ln v) = d (3 log1p(t) - t (3 + t (3 + t))), v = (1 + t)^3, which stays
    accurate for d ~ 10^9 (the plain form loses ~7 digits there)."""
    if k == 1:
        z = _normal(s)
        return z * z
    d = 0.5 * k - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = _normal(s)
        t = c * x
        if t <= -1.0:
            continue
        v = (1.0 + t) * (1.0 + t) * (1.0 + t)
        u = _uniform(s)
        x2 = x * x
        if u < 1.0 - 0.0331 * x2 * x2:
            return 2.0 * d * v
        if u > 0.0 and math.log(u) < 0.5 * x2 + d * (3.0 * math.log1p(t) - t * (3.0 + t * (3.0 + t))):
            return 2.0 * d * v


@internal
def bartlett(s, nu, p, A, r0, c0):
    """The Bartlett factor of Wishart(nu, I_p) into A[r0:r0+p, c0:c0+min(p, nu)]: the lower-
    trapezoidal L of a p x nu standard Gaussian matrix G = L Q (Q orthonormal rows). Row i < nu:
    N(0, 1) left of the diagonal, chi(nu - i) on it; row i >= nu: nu N(0, 1) entries. Entries
    right of the diagonal are left untouched (the caller keeps them zero)."""
    for i in range(p):
        row = r0 + i
        if i < nu:
            for j in range(i):
                A[row, c0 + j] = normal(s)
            A[row, c0 + i] = math.sqrt(chi_square(s, nu - i))
        else:
            for j in range(nu):
                A[row, c0 + j] = normal(s)


# ------------------------------------------------------------------------------------------
# linear algebra on coordinates

@njit(inline="always")
def lq_in_place(A, r0, r1, c0, c1):
    """Householder LQ of A[r0:r1, c0:c1] in place: afterwards A[r0:r1, c0:c1] = L (lower
    trapezoidal, zeros right of the diagonal) with A_before = L Q for some Q with orthonormal
    rows. Q is not formed. Row i's reflector maps it to (alpha, 0, ...), alpha = -sign(a_ii) |row|
    (no cancellation); a zero tail is left as it is."""
    for i in range(r1 - r0):
        row = r0 + i
        col = c0 + i
        if col >= c1:
            break
        sigma = 0.0
        for j in range(col + 1, c1):
            sigma += A[row, j] * A[row, j]
        if sigma == 0.0:
            continue
        x0 = A[row, col]
        norm = math.sqrt(x0 * x0 + sigma)
        alpha = -norm if x0 > 0.0 else norm
        v0 = x0 - alpha
        vv = v0 * v0 + sigma                 # |v|^2, v = (v0, A[row, col+1:])
        for row2 in range(row + 1, r1):
            dot = v0 * A[row2, col]
            for j in range(col + 1, c1):
                dot += A[row, j] * A[row2, j]
            f = 2.0 * dot / vv
            A[row2, col] -= f * v0
            for j in range(col + 1, c1):
                A[row2, j] -= f * A[row, j]
        A[row, col] = alpha
        for j in range(col + 1, c1):
            A[row, j] = 0.0


@internal
def cholesky_rows(Yb, rows, n, L):
    """L[:p, :p] = the lower-triangular factor with non-negative diagonal of the Gram matrix of
    the rows ``rows`` (p of them) of the block's coordinates Yb: an LQ of those rows with the
    signs of L's columns fixed. (The Cholesky factor when the Gram matrix has full rank.)"""
    p = rows.shape[0]
    A = np.zeros((p, max(n, p)))
    for i in range(p):
        for j in range(n):
            A[i, j] = Yb[rows[i], j]
    lq_in_place(A, 0, p, 0, max(n, p))
    L[:, :] = 0.0
    for j in range(p):
        sgn = -1.0 if A[j, j] < 0.0 else 1.0
        for i in range(j, p):
            L[i, j] = sgn * A[i, j]


@internal
def overlaps(cfg, Y, Rm, Qm, Tm):
    """R (K, M), Q (K, K), T (M, M) from the coordinates (zero across blocks); Tm may be None-
    sized (0, 0) to skip it."""
    Kb, Mb, n = cfg.Kb, cfg.Mb, cfg.n
    c = Mb + Kb
    Rm[:, :] = 0.0
    Qm[:, :] = 0.0
    for b in range(cfg.blocks):
        Yb = Y[b]
        for i in range(Kb):
            k = b * Kb + i
            for a in range(Mb):
                acc = 0.0
                for j in range(n):
                    acc += Yb[c + i, j] * Yb[a, j]
                Rm[k, b * Mb + a] = acc
            for i2 in range(Kb):
                acc = 0.0
                for j in range(n):
                    acc += Yb[c + i, j] * Yb[c + i2, j]
                Qm[k, b * Kb + i2] = acc
        if Tm.shape[0] > 0:
            for a in range(Mb):
                for a2 in range(Mb):
                    acc = 0.0
                    for j in range(n):
                        acc += Yb[a, j] * Yb[a2, j]
                    Tm[b * Mb + a, b * Mb + a2] = acc


@internal
def weight_change(cfg, Y):
    """|W - W0| / sqrt(K F) = sqrt(sum_k |y_k - y0_k|^2 / K)."""
    Kb, Mb = cfg.Kb, cfg.Mb
    acc = 0.0
    for b in range(cfg.blocks):
        for i in range(Kb):
            for j in range(cfg.n):
                dlt = Y[b, Mb + Kb + i, j] - Y[b, Mb + i, j]
                acc += dlt * dlt
    return math.sqrt(acc / (cfg.blocks * Kb))


# ------------------------------------------------------------------------------------------
# phase: the initial state

@internal
def initial_state(cfg, s, given, Y):
    """Y (blocks, rows, n) of one replica at t = 0, drawn from the exact law of its initial
    weights (module docstring); ``given`` (blocks, c, n_const) holds the Python layer's
    coordinates for INIT_ARRAY (W0 rows, and the teacher rows too for an axis teacher). Raw
    Gaussian and Bartlett entries are components s . f_j; coordinates are those / sqrt(F)."""
    Kb, Mb, F = cfg.Kb, cfg.Mb, cfg.F
    c = Mb + Kb
    unit = 1.0 / math.sqrt(F)
    Y[:, :, :] = 0.0
    for b in range(cfg.blocks):
        Yb = Y[b]
        if cfg.init == INIT_ARRAY and cfg.teacher_axis:
            for a in range(c):
                for j in range(cfg.n_const):
                    Yb[a, j] = given[b, a, j]
        elif cfg.init == INIT_ARRAY:
            kw = min(Kb, F)
            for a in range(Mb, c):
                for j in range(kw):
                    Yb[a, j] = given[b, a, j]
            for a in range(Mb):              # the teacher, given W0
                for j in range(kw):
                    Yb[a, j] = normal(s)
            bartlett(s, F - kw, Mb, Yb, 0, kw)
            _scale_rows(Yb, 0, Mb, cfg.n_const, unit)
        else:
            if cfg.teacher_axis:
                Yb[0, 0] = 1.0
                mt = 1
            else:
                bartlett(s, F, Mb, Yb, 0, 0)
                _scale_rows(Yb, 0, Mb, cfg.n_const, unit)
                mt = min(Mb, F)
            if cfg.init == INIT_TEACHER:
                for i in range(Kb):
                    for j in range(mt):
                        Yb[Mb + i, j] = Yb[i, j]
            elif cfg.init_scale > 0.0:       # the student, given the teacher (else W0 = 0)
                for i in range(Kb):
                    for j in range(mt):
                        Yb[Mb + i, j] = normal(s)
                bartlett(s, F - mt, Kb, Yb, Mb, mt)
                _scale_rows(Yb, Mb, c, cfg.n_const, cfg.init_scale * unit)
        for i in range(Kb):                  # W = W0; V = 0
            for j in range(cfg.n_const):
                Yb[c + i, j] = Yb[Mb + i, j]


@internal
def _scale_rows(A, r0, r1, ncol, factor):
    for a in range(r0, r1):
        for j in range(ncol):
            A[a, j] *= factor


# ------------------------------------------------------------------------------------------
# phase: one move

@internal
def move_buffers(cfg):
    m, B, K, M = cfg.batch_size, cfg.blocks, cfg.blocks * cfg.Kb, cfg.blocks * cfg.Mb
    q = min(m, cfg.nu)
    moving = cfg.rows - cfg.Mb - cfg.Kb
    return (np.empty((m, B, cfg.n)), np.zeros((B, m, max(q, 1))), np.empty((m, K)),
            np.empty(m, np.int64), np.empty(K), np.empty(K), np.empty(max(M, 1)), np.empty(K),
            np.zeros((moving, cfg.n + q)), np.empty((K, cfg.n + q)))
    # U (frame components), Bt (Bartlett factors), C, active samples, h, h0, h teacher, dfdh,
    # moving rows in the extended frame, the gradients in it


@njit(inline="always")
def unit_fields(cfg, Y, U, mu, h, h0, ht):
    """Pre-activations of sample mu from its frame components U[mu] (blocks, n): student h,
    initial student h0 (only with output_scale), teacher ht. (Indexed, not sliced: a view per
    call costs as much as the arithmetic here.)"""
    Kb, Mb, n, nc = cfg.Kb, cfg.Mb, cfg.n, cfg.n_const
    c = Mb + Kb
    for b in range(cfg.blocks):
        for a in range(Mb):
            acc = 0.0
            for j in range(nc):
                acc += Y[b, a, j] * U[mu, b, j]
            ht[b * Mb + a] = acc
        if cfg.output_scale > 0.0:
            for i in range(Kb):
                acc = 0.0
                for j in range(nc):
                    acc += Y[b, Mb + i, j] * U[mu, b, j]
                h0[b * Kb + i] = acc
        for i in range(Kb):
            acc = 0.0
            for j in range(n):
                acc += Y[b, c + i, j] * U[mu, b, j]
            h[b * Kb + i] = acc


@njit(inline="always")
def student_output(cfg, vs, h, h0):
    f = output(cfg.act_s, cfg.out_s, vs, h)
    if cfg.output_scale > 0.0:
        f = cfg.output_scale * (f - output(cfg.act_s, cfg.out_s, vs, h0))
    return f


@njit(cache=True)
def chain_move(cfg, s, Y, vs, vt, buf):
    """One SGD step of one replica on a fresh batch, in coordinates (module docstring), with the
    buffers of ``move_buffers``. Returns (mean batch error before the update, coordinates finite
    after it, number of active samples); U and Bt keep the step's random numbers."""
    U, Bt, C, active, h, h0, ht, dfdh, ext, grad = buf
    return _move(cfg, s, Y, vs, vt, U, Bt, C, active, h, h0, ht, dfdh, ext, grad)


@njit(inline="always")
def _move(cfg, s, Y, vs, vt, U, Bt, C, active, h, h0, ht, dfdh, ext, grad):
    """chain_move on unpacked buffers (unpacking a tuple of arrays costs a reference-count
    increment and decrement per array, as much as the arithmetic of a step). Draws, in order:
    the frame components U (sample, block, direction) of the whole batch; each sample's label
    noise; each block's Bartlett factor of the active samples' orthogonal parts."""
    m = cfg.batch_size
    K = cfg.blocks * cfg.Kb
    err = 0.0
    n_active = 0
    for mu in range(m):
        for b in range(cfg.blocks):
            for j in range(cfg.n):
                U[mu, b, j] = _normal(s)
    for mu in range(m):
        unit_fields(cfg, Y, U, mu, h, h0, ht)
        y = predict(cfg.out_t, output(cfg.act_t, cfg.out_t, vt, ht))
        if cfg.label_noise != 0.0:
            y = noisy(cfg, s, y)
        f = student_output(cfg, vs, h, h0)
        err += sample_error(cfg.out_s, f, y)
        dl = loss_grad(cfg.loss, f, y, cfg.margin)
        if dl == 0.0:        # contributes exactly nothing (as in steps.sgd_step)
            continue
        output_grad(cfg.act_s, cfg.out_s, vs, h, dfdh)
        for k in range(K):
            C[n_active, k] = dl * dfdh[k]
        active[n_active] = mu
        n_active += 1
    q = min(n_active, cfg.nu)
    finite = True
    for b in range(cfg.blocks):
        draw_orthogonal(s, cfg.nu, n_active, Bt, b)
        finite &= update_block(cfg, Y, b, U, Bt, C, active, n_active, q, ext, grad)
    return err / m, finite, n_active


@njit(inline="always")
def draw_orthogonal(s, nu, p, Bt, b):
    """Bt[b, :p, :min(p, nu)] = the Bartlett factor of Wishart(nu, I_p) (``bartlett``)."""
    for i in range(p):
        if i < nu:
            for j in range(i):
                Bt[b, i, j] = _normal(s)
            Bt[b, i, i] = math.sqrt(chi_square(s, nu - i))
        else:
            for j in range(nu):
                Bt[b, i, j] = _normal(s)


@njit(inline="always")
def update_block(cfg, Y, b, U, Bt, C, active, n_active, q, ext, grad):
    """The SGD update of block b's moving rows in the frame extended by q new directions, then
    the LQ that folds them back into n directions. Returns whether the coordinates are finite."""
    Kb, Mb, n, nc = cfg.Kb, cfg.Mb, cfg.n, cfg.n_const
    c = Mb + Kb
    moving = cfg.rows - c
    width = n + q
    scale = 1.0 / (cfg.batch_size * cfg.F)
    lr, wd, mom = cfg.lr, cfg.weight_decay, cfg.momentum
    if mom > 0.0:
        for i in range(Kb):              # the gradients' coordinates
            k = b * Kb + i
            for j in range(width):
                grad[i, j] = 0.0
            _add_samples(grad, i, scale, C, k, active, n_active, q, U, Bt, b, n)
            for j in range(n):
                w = Y[b, c + i, j]
                v = mom * Y[b, c + Kb + i, j] + wd * w + grad[i, j]
                ext[Kb + i, j] = v
                ext[i, j] = w - lr * v
            for j in range(n, width):
                v = grad[i, j]
                ext[Kb + i, j] = v
                ext[i, j] = -lr * v
    else:                                # straight into the new coordinates
        shrink = 1.0 - lr * wd
        for i in range(Kb):
            for j in range(n):
                ext[i, j] = shrink * Y[b, c + i, j]
            for j in range(n, width):
                ext[i, j] = 0.0
            _add_samples(ext, i, -lr * scale, C, b * Kb + i, active, n_active, q, U, Bt, b, n)
    if q > 0:
        lq_in_place(ext, 0, moving, nc, width)
    n_finite = 0
    for a in range(moving):
        for j in range(n):
            v = ext[a, j]
            Y[b, c + a, j] = v
            n_finite += abs(v) <= _MAX_FLOAT
    return n_finite == moving * n


@njit(inline="always")
def _add_samples(target, i, factor, C, k, active, n_active, q, U, Bt, b, n):
    """target[i] += factor * sum_a C[a, k] (U[active[a], b], Bt[b, a]): the active samples'
    coordinates in the extended frame (Bartlett rows are zero right of the diagonal)."""
    for a in range(n_active):
        coef = factor * C[a, k]
        if coef == 0.0:
            continue
        mu = active[a]
        for j in range(n):
            target[i, j] += coef * U[mu, b, j]
        for j in range(min(a + 1, q)):
            target[i, n + j] += coef * Bt[b, a, j]


# ------------------------------------------------------------------------------------------
# phase: observe (after every move, and at step 0)

@internal
def test_buffers(cfg, s_test):
    """zeta (test_size, blocks, p): the fixed standard normal test vectors, p = the rows the
    output reads (teacher, W0 with output_scale, student); empty unless eps_g needs them."""
    p = cfg.Mb + cfg.Kb + (cfg.Kb if cfg.output_scale > 0.0 else 0)
    rows = np.empty(p, np.int64)
    for a in range(cfg.Mb):
        rows[a] = a
    j = cfg.Mb
    if cfg.output_scale > 0.0:
        for i in range(cfg.Kb):
            rows[j] = cfg.Mb + i
            j += 1
    for i in range(cfg.Kb):
        rows[j] = cfg.Mb + cfg.Kb + i
        j += 1
    n_test = cfg.test_size if cfg.eg_mode == EG_TESTSET else 0
    zeta = np.empty((n_test, cfg.blocks, p))
    for t in range(n_test):
        for b in range(cfg.blocks):
            for a in range(p):
                zeta[t, b, a] = normal(s_test)
    return zeta, rows, np.zeros((cfg.blocks, p, p)), np.empty(p)


@internal
def test_error(cfg, Y, vs, vt, tb, h, h0, ht, limit):
    """eps_g on the fixed test fields zeta L^T (module docstring): the error rate or 1/2 MSE.
    With limit >= 0 (classifiers), stops at the first error beyond limit and returns inf."""
    zeta, rows, L, z = tb
    Kb, Mb = cfg.Kb, cfg.Mb
    p = rows.shape[0]
    w0 = cfg.output_scale > 0.0
    for b in range(cfg.blocks):
        cholesky_rows(Y[b], rows, cfg.n, L[b])
    err = 0.0
    errors = 0
    n_test = zeta.shape[0]
    for t in range(n_test):
        for b in range(cfg.blocks):
            Lb = L[b]
            zt = zeta[t, b]
            for a in range(p):
                acc = 0.0
                for j in range(a + 1):
                    acc += Lb[a, j] * zt[j]
                z[a] = acc
            for a in range(Mb):
                ht[b * Mb + a] = z[a]
            for i in range(Kb):
                if w0:
                    h0[b * Kb + i] = z[Mb + i]
                    h[b * Kb + i] = z[Mb + Kb + i]
                else:
                    h[b * Kb + i] = z[Mb + i]
        y = predict(cfg.out_t, output(cfg.act_t, cfg.out_t, vt, ht))
        e = sample_error(cfg.out_s, student_output(cfg, vs, h, h0), y)
        err += e
        if limit >= 0.0 and e > 0.0:
            errors += 1
            if errors > limit:
                return math.inf
    return err / max(n_test, 1)


@internal
def measure(cfg, Y, vs, vt, tb, scratch, Tm, full_eps):
    """Fill the R, Q scratch; return eps_g: the closed form, else the test fields (NaN when not
    full_eps: not needed)."""
    Rm, Qm, h, h0, ht, T_none = scratch
    overlaps(cfg, Y, Rm, Qm, T_none)
    if cfg.eg_mode != EG_TESTSET:
        return eps_closed_form(cfg.eg_mode, Qm, Rm, Tm, vs, vt)
    if not full_eps:
        return math.nan
    return test_error(cfg, Y, vs, vt, tb, h, h0, ht, -1.0)


@internal
def eps_below(cfg, Y, vs, vt, tb, scratch, Tm):
    """The "eps" teacher check: eps_g <= success_eps (classifiers on test fields: early exit)."""
    if cfg.eg_mode == EG_TESTSET and cfg.out_s != SUM:
        Rm, Qm, h, h0, ht, T_none = scratch
        return test_error(cfg, Y, vs, vt, tb, h, h0, ht,
                          cfg.success_eps * tb[0].shape[0]) <= cfg.success_eps
    return measure(cfg, Y, vs, vt, tb, scratch, Tm, True) <= cfg.success_eps


@internal
def observe(cfg, r, step, berr, finite, Y, ctx, ctr, acc, out):
    """Everything measured after the move of ``step`` (step 0: the initial state), as
    engine.observe does for the weights: divergence, the teacher check and the window's probes,
    records, the stop rule. Returns whether the replica stops here."""
    vs, vt, tb, scratch, record_steps, nxt = ctx
    eps_g, train_err, R, Q, T, wchange, wnorm, diverged, success, stopped = out[:10]
    if not finite:
        diverged[r] = True
        ctr[C_STOP] = step
        return True
    if step > 0:
        acc[A_RUN_ERR] += berr
        ctr[C_RUN_N] += 1
        if cfg.batch_eps and cfg.window_start <= step - 1 <= cfg.window_stop:
            acc[A_BATCH_ERR] += berr      # the error of the state after step - 1
            ctr[C_BATCH_N] += 1
    rec = ctr[C_REC]
    is_record = rec < record_steps.shape[0] and step == record_steps[rec]
    in_window = cfg.window_start <= step <= cfg.window_stop
    # step % probe_every == 0 and step % check_every == 0, by counters (observe runs every step)
    probe = step == nxt[0] or step == cfg.window_stop
    if step == nxt[0]:
        nxt[0] += cfg.probe_every
    check = cfg.stop_rule != STOP_NONE and step > 0 and (step == nxt[1] or is_record)
    if step == nxt[1]:
        nxt[1] += cfg.check_every
    on = False
    if probe:
        on = eps_below(cfg, Y, vs, vt, tb, scratch, T[r])
        _track(cfg, step, on, ctr)
        if in_window:
            eg = measure(cfg, Y, vs, vt, tb, scratch, T[r], not cfg.batch_eps)
            acc[A_OVERLAP] += best_overlap(scratch[0], scratch[1], T[r])
            acc[A_EPS] += eg
            ctr[C_PROBES] += 1
    if not (is_record or check):
        return False
    if (not is_record and cfg.stop_rule == STOP_SUCCESS and cfg.eg_mode == EG_TESTSET
            and cfg.out_s != SUM and not eps_below(cfg, Y, vs, vt, tb, scratch, T[r])):
        return False    # not yet a success: found out at the first few errors
    eg = measure(cfg, Y, vs, vt, tb, scratch, T[r], True)
    Qm = scratch[1]
    qsum = 0.0
    for k in range(Qm.shape[0]):
        qsum += Qm[k, k]
    wn = math.sqrt(qsum / Qm.shape[0])
    if not (math.isfinite(eg) and math.isfinite(wn)):
        diverged[r] = True              # finite coordinates whose overlaps overflow
        ctr[C_STOP] = step
        return True
    terr = acc[A_RUN_ERR] / ctr[C_RUN_N] if ctr[C_RUN_N] > 0 else np.nan
    stop = check and cfg.stop_rule == STOP_SUCCESS and eg <= cfg.success_eps
    if is_record or stop:
        R[r, rec] = scratch[0]
        Q[r, rec] = Qm
        eps_g[r, rec] = eg
        train_err[r, rec] = terr
        wchange[r, rec] = weight_change(cfg, Y)
        wnorm[r, rec] = wn
        ctr[C_REC] = rec + 1
        acc[A_RUN_ERR] = 0.0
        ctr[C_RUN_N] = 0
    if stop:
        ctr[C_STOP] = step
    return stop


# ------------------------------------------------------------------------------------------
# phase: finish

@internal
def finish(cfg, r, ctr, acc, out):
    """engine.close_records, then success as engine.finish under the "eps" rule."""
    eps_g, diverged, success = out[0], out[7], out[8]
    rec = close_records(cfg, r, ctr, acc, out)
    n_rec = eps_g.shape[1]
    if not diverged[r] and rec > 0:
        success[r] = eps_g[r, n_rec - 1] <= cfg.success_eps


# ------------------------------------------------------------------------------------------
# the replica loop and its block entry point

@internal
def run_chain(cfg, r, given, vs, vt, s_setup, s_train, s_test, record_steps, out):
    K, M = cfg.blocks * cfg.Kb, cfg.blocks * cfg.Mb
    Y = np.empty((cfg.blocks, cfg.rows, cfg.n))
    initial_state(cfg, s_setup, given, Y)
    T = out[4]
    scratch = (np.empty((K, M)), np.empty((K, K)), np.empty(K), np.empty(K), np.empty(max(M, 1)),
               np.zeros((0, 0)))      # R, Q, h, h0, h teacher, no T
    overlaps(cfg, Y, scratch[0], scratch[1], T[r])
    tb = test_buffers(cfg, s_test)
    buf = move_buffers(cfg)
    ctr, acc = _counters(cfg)
    nxt = np.zeros(2, np.int64)       # next probe, next check
    ctx = (vs, vt, tb, scratch, record_steps, nxt)
    stop = observe(cfg, r, 0, 0.0, True, Y, ctx, ctr, acc, out)
    step = 0
    while not stop and step < cfg.total_steps:
        event = next_event(cfg, step, ctr, nxt, record_steps)
        bad, berr = advance(cfg, s_train, Y, vs, vt, buf, step + 1, event - 1, ctr, acc)
        if bad > 0:
            stop = observe(cfg, r, bad, berr, False, Y, ctx, ctr, acc, out)
            break
        step = event
        berr, finite, _ = chain_move(cfg, s_train, Y, vs, vt, buf)
        stop = observe(cfg, r, step, berr, finite, Y, ctx, ctr, acc, out)
    finish(cfg, r, ctr, acc, out)


@internal
def next_event(cfg, step, ctr, nxt, record_steps):
    """The first step after ``step`` at which observe does more than add the batch error: a
    probe, a check of the stop rule, a record, the window's last step, or the run's end."""
    event = min(cfg.total_steps, nxt[0])
    if cfg.window_stop > step:
        event = min(event, cfg.window_stop)
    if cfg.stop_rule != STOP_NONE:
        event = min(event, nxt[1])
    if ctr[C_REC] < record_steps.shape[0]:
        event = min(event, record_steps[ctr[C_REC]])
    return event


@internal(_nrt=False)
def advance(cfg, s, Y, vs, vt, buf, first, last, ctr, acc):
    """Steps first..last, none of them an event (next_event): each adds its batch error as
    observe would (to the running train error, and to the window's batch mean). One call runs
    them all, so the step's fixed costs are paid once. Returns (the step whose coordinates
    became non-finite, its batch error), or (0, 0) when every step was finite."""
    U, Bt, C, active, h, h0, ht, dfdh, ext, grad = buf
    for step in range(first, last + 1):
        berr, finite, _ = _move(cfg, s, Y, vs, vt, U, Bt, C, active, h, h0, ht, dfdh, ext, grad)
        if not finite:
            return step, berr
        acc[A_RUN_ERR] += berr
        ctr[C_RUN_N] += 1
        if cfg.batch_eps and cfg.window_start <= step - 1 <= cfg.window_stop:
            acc[A_BATCH_ERR] += berr
            ctr[C_BATCH_N] += 1
    return 0, 0.0


# -O1 compiled no faster here, and ran up to 14 % slower; with its callees' module passes left
# to it, ~10 % slower (kernels/jit.py)
@entry(level=3, passes_once=False)
def train_chain(cfg, lo, hi, given, vs, vt, s_setup, s_train, s_test, record_steps, out):
    """Replicas lo..hi-1 of the chain (physsgd/replicas.py runs blocks of them in threads, as the
    direct engine's). given: (G, blocks, c, n_const) coordinates of an explicit initial student
    (G = 1: shared by all replicas, or one per replica). Each replica draws from copies of its
    streams' states (neighbouring 32-byte states share a cache line: see engine.py)."""
    per_replica = given.shape[0] > 1
    for r in range(lo, hi):
        g = r if per_replica else 0
        run_chain(cfg, r, given[g], vs, vt, s_setup[r].copy(), s_train[r].copy(),
                  s_test[r].copy(), record_steps, out)


@njit(cache=True)
def initial_coordinates(cfg, given, s_setup):
    """Y at t = 0 for every replica (tests and diagnostics)."""
    G = given.shape[0]
    n_rep = s_setup.shape[0]
    Ys = np.empty((n_rep, cfg.blocks, cfg.rows, cfg.n))
    for r in range(n_rep):
        initial_state(cfg, s_setup[r], given[min(r, G - 1)], Ys[r])
    return Ys
