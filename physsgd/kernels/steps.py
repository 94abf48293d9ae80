"""One training move on one mini-batch: an SGD step, or a greedy/Metropolis sweep of flips."""
import math

from numba import njit

from .network import (g, loss_grad, output, output_grad, predict, raw_fields, sign,
                      unit_fields, PARITY, SUM)
from .rng import shuffle, uniform

SGD_ALGO, GREEDY_ALGO = 0, 1
TIE_ACCEPT, TIE_REJECT, TIE_RANDOM = 0, 1, 2


@njit
def student_output(cfg, W, W0, fields, v, x, h, h0):
    """The output the loss sees: f(w, x), or output_scale * (f(w, x) - f(w0, x))."""
    unit_fields(W, fields, cfg.dense_s, x, h)
    f = output(cfg.act_s, cfg.out_s, v, h)
    if cfg.output_scale > 0.0:
        unit_fields(W0, fields, cfg.dense_s, x, h0)
        f = cfg.output_scale * (f - output(cfg.act_s, cfg.out_s, v, h0))
    return f


@njit
def sample_error(out, F, y):
    """Classification: 1 if the predicted label differs; regression: 1/2 (F - y)^2."""
    if out == SUM:
        return 0.5 * (F - y) ** 2
    return 1.0 if sign(F) != y else 0.0


@njit
def sgd_step(cfg, W, W0, fields, v, buf, G, Xb, yb, h, h0, dfdh):
    """In place: w <- w - lr * (momentum buffer of grad mean-batch loss + weight_decay * w).

    Returns (mean batch error before the update, all weights finite after it)."""
    K, F = W.shape
    m = Xb.shape[0]
    G[:, :] = 0.0
    err = 0.0
    for mu in range(m):
        x = Xb[mu]
        Fv = student_output(cfg, W, W0, fields, v, x, h, h0)
        err += sample_error(cfg.out_s, Fv, yb[mu])
        dl = loss_grad(cfg.loss, Fv, yb[mu], cfg.margin)
        if dl == 0.0:
            continue
        # d loss/d f = dl (the 1/output_scale of the loss cancels the output_scale of F)
        output_grad(cfg.act_s, cfg.out_s, v, h, dfdh)
        for k in range(K):
            c = dl * dfdh[k]
            if c == 0.0:
                continue
            if cfg.dense_s:
                for j in range(F):
                    G[k, j] += c * x[j]
            else:
                for j in range(F):
                    G[k, j] += c * x[fields[k, j]]
    scale = 1.0 / (m * math.sqrt(F))
    finite = True
    for k in range(K):
        for j in range(F):
            grad = G[k, j] * scale + cfg.weight_decay * W[k, j]
            if cfg.momentum > 0.0:
                buf[k, j] = cfg.momentum * buf[k, j] + grad
                grad = buf[k, j]
            W[k, j] -= cfg.lr * grad
            if not math.isfinite(W[k, j]):
                finite = False
    return err / m, finite


@njit
def batch_state(cfg, W, fields, v, Xb, yb, H, f, wrong):
    """Raw (unscaled) fields, outputs and errors of the batch; returns the number of errors.

    Raw sums keep +-1 weights on +-1 inputs exact integers, so ties h = 0 are detected exactly."""
    scale = 1.0 / math.sqrt(W.shape[1])
    E = 0
    for mu in range(Xb.shape[0]):
        raw_fields(W, fields, cfg.dense_s, Xb[mu], H[mu])
        f[mu] = _raw_output(cfg, v, H[mu], -1, 0.0, scale)
        wrong[mu] = 1 if predict(cfg.out_s, f[mu]) != yb[mu] else 0
        E += wrong[mu]
    return E


@njit
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


@njit
def _output_after_flip(cfg, v, Hmu, fmu, k, hk_new, scale):
    """Student output after unit k's raw field becomes hk_new (others unchanged).

    Incremental (O(1)) only where it is exact: sign units with an integer read-out give integer
    vote counts and +-1 products. Otherwise recompute (O(K)), so that an exact tie f = 0 (e.g.
    erf(a) + erf(-a)) is not turned into +-1e-16 by rounding and sign(0) = +1 is kept."""
    if not cfg.exact_votes:
        return _raw_output(cfg, v, Hmu, k, hk_new, scale)
    g_old = g(cfg.act_s, Hmu[k] * scale)
    g_new = g(cfg.act_s, hk_new * scale)
    if cfg.out_s == PARITY:
        return fmu * g_old * g_new
    return fmu + v[k] * (g_new - g_old)


@njit
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


@njit
def propose_flip(cfg, s, W, fields, v, Xb, yb, H, f, wrong, idx):
    """Propose flipping weight idx (= k * F + j); apply it if accepted. Returns the accepted dE."""
    K, F = W.shape
    scale = 1.0 / math.sqrt(F)
    k = idx // F
    j = idx - k * F
    col = j if cfg.dense_s else fields[k, j]
    step = -2.0 * W[k, j]
    dE = 0
    for mu in range(Xb.shape[0]):
        f_new = _output_after_flip(cfg, v, H[mu], f[mu], k, H[mu, k] + step * Xb[mu, col], scale)
        dE += (1 if predict(cfg.out_s, f_new) != yb[mu] else 0) - wrong[mu]
    if not accept_move(cfg, s, dE):
        return 0
    W[k, j] = -W[k, j]
    for mu in range(Xb.shape[0]):
        hk_new = H[mu, k] + step * Xb[mu, col]
        f[mu] = _output_after_flip(cfg, v, H[mu], f[mu], k, hk_new, scale)
        H[mu, k] = hk_new
        wrong[mu] = 1 if predict(cfg.out_s, f[mu]) != yb[mu] else 0
    return dE


@njit
def greedy_sweep(cfg, s, W, fields, v, Xb, yb, H, f, wrong, order):
    """Propose a flip of every weight once, in a fresh random order, judged on one batch.

    Returns the fraction of batch errors *before* the sweep: on a fresh batch an unbiased
    estimate of the current student's error, as sgd_step's."""
    E_before = batch_state(cfg, W, fields, v, Xb, yb, H, f, wrong)
    shuffle(s, order)
    for idx in order:
        propose_flip(cfg, s, W, fields, v, Xb, yb, H, f, wrong, idx)
    return E_before / Xb.shape[0]
