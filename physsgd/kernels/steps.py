"""One training move on one mini-batch: an SGD step, or a greedy/Metropolis sweep of flips."""
import math

from numba import njit

from .jit import internal
from .network import (g, loss_grad, output, output_grad, predict, raw_fields, sign,
                      unit_fields, PARITY, SUM)
from .config import GREEDY_ALGO, SGD_ALGO, TIE_ACCEPT, TIE_RANDOM, TIE_REJECT  # noqa: F401
from .rng import shuffle, uniform


@internal
def student_output(cfg, W, W0, fields, v, x, h, h0):
    """The output the loss sees: f(w, x), or output_scale * (f(w, x) - f(w0, x))."""
    unit_fields(W, fields, cfg.dense_s, x, h)
    f = output(cfg.act_s, cfg.out_s, v, h)
    if cfg.output_scale > 0.0:
        unit_fields(W0, fields, cfg.dense_s, x, h0)
        f = cfg.output_scale * (f - output(cfg.act_s, cfg.out_s, v, h0))
    return f


@internal
def sample_error(out, F, y):
    """Classification: 1 if the predicted label differs; regression: 1/2 (F - y)^2."""
    if out == SUM:
        return 0.5 * (F - y) ** 2
    return 1.0 if sign(F) != y else 0.0


_MAX_FLOAT = 1.7976931348623157e308


@internal   # no fastmath here: LLVM then drops the finiteness test (tests/test_kernels_reference.py)
def sgd_step(cfg, W, W0, fields, v, buf, C, Xb, yb, h, h0, dfdh):
    """In place: w <- w - lr * (momentum buffer of grad mean-batch loss + weight_decay * w).

    C (m, K) is scratch for the coefficients d loss/d h_k of each sample. Returns (mean batch
    error before the update, all weights finite after it)."""
    K, F = W.shape
    m = Xb.shape[0]
    if C.shape[0] < m or C.shape[1] < K:     # numba checks no bounds: a short C corrupts memory
        raise ValueError("sgd_step: the scratch C must have shape (batch size, K)")
    err = 0.0
    for mu in range(m):      # every sample sees the weights before the update
        x = Xb[mu]
        Fv = student_output(cfg, W, W0, fields, v, x, h, h0)
        err += sample_error(cfg.out_s, Fv, yb[mu])
        # d loss/d f = dl (the 1/output_scale of the loss cancels the output_scale of F)
        dl = loss_grad(cfg.loss, Fv, yb[mu], cfg.margin)
        if dl == 0.0:        # contributes exactly nothing, even where df/dh overflows
            C[mu, :] = 0.0
            continue
        output_grad(cfg.act_s, cfg.out_s, v, h, dfdh)
        for k in range(K):
            C[mu, k] = dl * dfdh[k]
    # grad of w_k = sum_mu C[mu, k] x_mu[S_k] / (m sqrt F), added sample by sample straight into
    # w (or the momentum buffer): no gradient array, and at m = 1 the update is one pass over w
    scale = 1.0 / (m * math.sqrt(F))
    finite = True
    for k in range(K):
        w = W[k]
        if cfg.momentum > 0.0:
            d = buf[k]
            for j in range(F):
                d[j] = cfg.momentum * d[j] + cfg.weight_decay * w[j]
            _add_samples(cfg.dense_s, d, C, k, scale, Xb, fields[k])    # w's test decides
            finite &= _axpy_finite(True, w, -cfg.lr, d, fields[k])
        else:
            if cfg.weight_decay != 0.0:
                shrink = 1.0 - cfg.lr * cfg.weight_decay
                for j in range(F):
                    w[j] *= shrink
            finite &= _add_samples(cfg.dense_s, w, C, k, -cfg.lr * scale, Xb, fields[k])
    return err / m, finite


@internal
def _add_samples(dense, target, C, k, factor, Xb, fields_k):
    """target += factor * sum_mu C[mu, k] x_mu[S_k]; returns whether target is all finite after
    (tested during the last sample's pass, not in a pass of its own)."""
    m = Xb.shape[0]
    for mu in range(m - 1):
        c = factor * C[mu, k]
        if c == 0.0:
            continue
        x = Xb[mu]
        if dense:
            for j in range(target.shape[0]):
                target[j] += c * x[j]
        else:
            for j in range(target.shape[0]):
                target[j] += c * x[fields_k[j]]
    return _axpy_finite(dense, target, factor * C[m - 1, k], Xb[m - 1], fields_k)


@internal
def _axpy_finite(dense, target, c, x, fields_k):
    """target += c * x[S_k], and whether target is all finite after. NaN and inf both fail
    |t| <= max, and this branch-free count vectorises (an early-exit isfinite loop ran ~6x
    slower)."""
    F = target.shape[0]
    n_finite = 0
    if c == 0.0:            # nothing to add (c x would turn an inf input into NaN)
        for j in range(F):
            n_finite += abs(target[j]) <= _MAX_FLOAT
    elif dense:
        for j in range(F):
            t = target[j] + c * x[j]
            target[j] = t
            n_finite += abs(t) <= _MAX_FLOAT
    else:
        for j in range(F):
            t = target[j] + c * x[fields_k[j]]
            target[j] = t
            n_finite += abs(t) <= _MAX_FLOAT
    return n_finite == F


@internal
def batch_state(cfg, W, fields, v, XT, yb, HT, f, wrong):
    """Raw (unscaled) fields HT (K, m), outputs and errors of the batch XT (N, m, one sample per
    column); returns the number of errors.

    Raw sums keep +-1 weights on +-1 inputs exact integers, so ties h = 0 are detected exactly.
    Column layout: a proposal for weight (k, j) reads one contiguous row XT[input]."""
    K, F = W.shape
    m = XT.shape[1]
    scale = 1.0 / math.sqrt(F)
    HT[:, :] = 0.0
    for k in range(K):
        for j in range(F):
            w = W[k, j]
            x = XT[j if cfg.dense_s else fields[k, j]]
            for mu in range(m):
                HT[k, mu] += w * x[mu]
    E = 0
    for mu in range(m):
        f[mu] = _raw_output(cfg, v, HT[:, mu], -1, 0.0, scale)
        wrong[mu] = 1 if predict(cfg.out_s, f[mu]) != yb[mu] else 0
        E += wrong[mu]
    return E


@internal
def _raw_output(cfg, v, Hmu, k, hk, scale):
    """Output from raw fields, with unit k's raw field replaced by hk (k < 0: no replacement)."""
    if cfg.out_s == PARITY:
        f = 1.0
        for l in range(Hmu.shape[0]):
            f *= g(cfg.act_s, (hk if l == k else Hmu[l]) * scale)
        return f
    f = 0.0
    for l in range(Hmu.shape[0]):
        f += v[l] * g(cfg.act_s, (hk if l == k else Hmu[l]) * scale)
    return f


@njit(inline="always")
def _vote_output(cfg, v, fmu, k, new_sign):
    """Output of sign units after unit k's vote turns to new_sign (it was -new_sign): exact
    integer vote counts and +-1 products, O(1)."""
    if cfg.out_s == PARITY:
        return -fmu
    return fmu + 2.0 * v[k] * new_sign


@njit(inline="always")   # the sweep's inner loop: a call per proposal cost ~2x the sweep
def propose_flip(cfg, s, W, fields, v, XT, yb, HT, f, wrong, idx):
    """Propose flipping weight idx (= k * F + j); apply it if accepted. Returns the accepted dE.

    Sign units (exact_votes): only samples whose unit-k vote changes can change the output, so
    the rest are skipped in O(1). Other activations recompute the output from the raw fields
    (O(K)), so an exact tie f = 0 (e.g. erf(a) + erf(-a)) survives rounding."""
    K, F = W.shape
    m = XT.shape[1]
    scale = 1.0 / math.sqrt(F)
    k = idx // F
    j = idx - k * F
    x = XT[j if cfg.dense_s else fields[k, j]]
    hk = HT[k]
    step = -2.0 * W[k, j]
    dE = 0
    if cfg.exact_votes:
        for mu in range(m):
            new = hk[mu] + step * x[mu]
            if (new >= 0.0) == (hk[mu] >= 0.0):
                continue
            f_new = _vote_output(cfg, v, f[mu], k, 1.0 if new >= 0.0 else -1.0)
            dE += (1 if predict(cfg.out_s, f_new) != yb[mu] else 0) - wrong[mu]
    else:
        for mu in range(m):
            f_new = _raw_output(cfg, v, HT[:, mu], k, hk[mu] + step * x[mu], scale)
            dE += (1 if predict(cfg.out_s, f_new) != yb[mu] else 0) - wrong[mu]
    if not accept_move(cfg, s, dE):
        return 0
    W[k, j] = -W[k, j]
    for mu in range(m):
        new = hk[mu] + step * x[mu]
        if cfg.exact_votes:
            if (new >= 0.0) != (hk[mu] >= 0.0):
                f[mu] = _vote_output(cfg, v, f[mu], k, 1.0 if new >= 0.0 else -1.0)
        else:
            f[mu] = _raw_output(cfg, v, HT[:, mu], k, new, scale)
        hk[mu] = new
        wrong[mu] = 1 if predict(cfg.out_s, f[mu]) != yb[mu] else 0
    return dE


@internal
def greedy_sweep(cfg, s, W, fields, v, XT, yb, HT, f, wrong, order):
    """Propose a flip of every weight once, in a fresh random order, judged on one batch.

    Returns the fraction of batch errors *before* the sweep: on a fresh batch an unbiased
    estimate of the current student's error, as sgd_step's."""
    E_before = batch_state(cfg, W, fields, v, XT, yb, HT, f, wrong)
    shuffle(s, order)
    for idx in order:
        propose_flip(cfg, s, W, fields, v, XT, yb, HT, f, wrong, idx)
    return E_before / XT.shape[1]


@njit(inline="always")
def accept_move(cfg, s, dE):
    if dE < 0:
        return True
    if dE == 0:
        if cfg.ties == TIE_ACCEPT:
            return True
        if cfg.ties == TIE_REJECT:
            return False
        return uniform(s) < 0.5
    if cfg.temperature > 0.0:
        return uniform(s) < math.exp(-dE / cfg.temperature)
    return False


