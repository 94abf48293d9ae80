"""Gradient noise and curvature of the training objective, measured at the record points
(``ps.train(..., measure=[...])``).

The objective SGD descends on a training set of P samples (x_mu, y_mu):

    Phi(w) = (1/P) sum_mu L_mu(w) + (weight_decay / 2) |w|^2,   L_mu = loss(F_mu) / alpha,

F = f(w, x), or alpha (f(w, x) - f(w0, x)) with output_scale alpha (alpha = 1 otherwise). With
xhat_k = x[S_k] / sqrt(F) (so h_k = w_k . xhat_k), a_k = df/dh_k and B_kl = d^2 f / dh_k dh_l:

    grad L_mu      = l'(F) a_k xhat_k                                   (sgd_step's gradient)
    Hess L_mu . V  = [alpha l''(F) a_k (a . u) + l'(F) (B u)_k] xhat_k,   u_l = V_l . xhat_l

(forward-over-backward: u is the directional derivative of the fields). One product costs two
passes over the samples, O(P K F), and no dense Hessian is ever formed. The kinks of relu and
hinge-type losses are ignored (their second derivative is taken as 0 there: a set of measure
zero). Weights are (K, F) arrays; the flattened index of w_kj is k F + j.

Functions here are pure: arrays in, numbers or arrays out; ``measure_record`` is the one call
the engine makes at a record point, writing into the kernel's ``out`` tuple (engine.py):
out[15:19] = grad_noise, noise_scale, sharpness, hessian_trace, each (replicas, T); out[19] =
the (replicas, 4) states of the measure streams (STREAM_MEASURE), advanced in place. Those
streams feed the Lanczos start vectors and the online samples, so measuring never touches the
training stream: runs with and without ``measure`` have bit-identical trajectories.
"""
import math

import numpy as np

from .config import (ERF, LOGISTIC, MEASURE_GRAD_NOISE, MEASURE_HESSIAN_TRACE, MEASURE_NOISE_SCALE,
                     MEASURE_SHARPNESS, PARITY, SQUARE, SQUARED_HINGE, TANH)
from .jit import internal
from .network import FAST, g, g_prime, loss_grad, output_grad
from .rng import fill_normal
from .samples import make_samples
from .steps import student_output


# ------------------------------------------------------------------------------------------
# second derivatives of one sample

@internal
def g_second(act, h):
    """g''(h): erf(h/sqrt2) -> -h g'(h); tanh -> -2 tanh (1 - tanh^2); relu, linear -> 0."""
    if act == ERF:
        return -h * g_prime(act, h)
    if act == TANH:
        t = math.tanh(h)
        return -2.0 * t * (1.0 - t * t)
    return 0.0


@internal
def output_hessian(act, out, v, h, B):
    """B[k, l] = d^2 f / dh_k dh_l: diagonal v_k g''(h_k) for sums; for the parity product
    g''(h_k) prod_{i != k} g(h_i) on the diagonal, g'(h_k) g'(h_l) prod_{i != k, l} g(h_i) off it."""
    K = h.shape[0]
    for k in range(K):
        for l in range(K):
            B[k, l] = 0.0
    if out != PARITY:
        for k in range(K):
            B[k, k] = v[k] * g_second(act, h[k])
        return
    for k in range(K):
        for l in range(K):
            p = g_second(act, h[k]) if k == l else g_prime(act, h[k]) * g_prime(act, h[l])
            for i in range(K):
                if i != k and i != l:
                    p *= g(act, h[i])
            B[k, l] = p


@internal
def loss_curvature(loss, F, y, margin):
    """d^2 loss / dF^2: square 1; logistic y^2 s (1 - s) with s = sigmoid(y F); squared hinge
    y^2 where margin - y F > 0; hinge (away from its kink) and hebbian 0."""
    if loss == SQUARE:
        return 1.0
    if loss == LOGISTIC:
        e = math.exp(-abs(y * F))          # s (1 - s) = e^{-|z|} / (1 + e^{-|z|})^2, no overflow
        return y * y * e / ((1.0 + e) * (1.0 + e))
    if loss == SQUARED_HINGE:
        return y * y if margin - y * F > 0.0 else 0.0
    return 0.0


# ------------------------------------------------------------------------------------------
# field-restricted dot products (dense units read x[j], sparse ones x[fields_k[j]])

@internal(fastmath=FAST)
def _dot(dense, w, x, fields_k):
    acc = 0.0
    if dense:
        for j in range(w.shape[0]):
            acc += w[j] * x[j]
    else:
        for j in range(w.shape[0]):
            acc += w[j] * x[fields_k[j]]
    return acc


@internal(fastmath=FAST)
def _axpy(dense, target, c, x, fields_k):
    if dense:
        for j in range(target.shape[0]):
            target[j] += c * x[j]
    else:
        for j in range(target.shape[0]):
            target[j] += c * x[fields_k[j]]


@internal(fastmath=FAST)
def _sq_norm(dense, x, fields_k, F):
    acc = 0.0
    if dense:
        for j in range(F):
            acc += x[j] * x[j]
    else:
        for j in range(F):
            acc += x[fields_k[j]] * x[fields_k[j]]
    return acc


# ------------------------------------------------------------------------------------------
# gradient noise

@internal
def gradient_moments(cfg, W, W0, fields, v, X, y, C, G, h, h0, a):
    """Exact second moments of the per-sample gradients over the P samples of (X, y):
    (sigma2, G2) with sigma2 = (1/P) sum_mu |g_mu - Gbar|^2 (two passes, no cancellation) and
    G2 = |Gbar + weight_decay W|^2 = |grad Phi|^2; Gbar = (1/P) sum_mu g_mu is left in G.
    C (P, K) is scratch for l'(F_mu) a_k / sqrt(F)."""
    K, F = W.shape
    P = X.shape[0]
    scale = 1.0 / math.sqrt(F)
    G[:, :] = 0.0
    for mu in range(P):
        x = X[mu]
        Fv = student_output(cfg, W, W0, fields, v, x, h, h0)
        dl = loss_grad(cfg.loss, Fv, y[mu], cfg.margin)
        if dl == 0.0:          # exactly no gradient, even where df/dh overflows (sgd_step)
            C[mu, :] = 0.0
            continue
        output_grad(cfg.act_s, cfg.out_s, v, h, a)
        for k in range(K):
            C[mu, k] = dl * a[k] * scale
            _axpy(cfg.dense_s, G[k], C[mu, k] / P, x, fields[k])
    sigma2 = 0.0
    for mu in range(P):
        x = X[mu]
        for k in range(K):
            c = C[mu, k]
            gk = G[k]
            if cfg.dense_s:
                for j in range(F):
                    d = c * x[j] - gk[j]
                    sigma2 += d * d
            else:
                fk = fields[k]
                for j in range(F):
                    d = c * x[fk[j]] - gk[j]
                    sigma2 += d * d
    G2 = 0.0
    for k in range(K):
        for j in range(F):
            t = G[k, j] + cfg.weight_decay * W[k, j]
            G2 += t * t
    return sigma2 / max(P, 1), G2


@internal
def gradient_moments_online(cfg, W, W0, fields, v, src, s, n, G, h, h0, a):
    """Online data: the same moments of the population, estimated from n fresh samples drawn
    (inputs, teacher labels, label noise) from the measure stream s, streamed one at a time
    (Welford): (s2, G2) with s2 = sum_i |g_i - gbar|^2 / (n - 1), unbiased for the population
    tr Cov(g), and G2 = |gbar + weight_decay W|^2 - s2 / n, unbiased for |grad Phi|^2 (it can
    come out <= 0 where the population gradient is small)."""
    K, F = W.shape
    N = cfg.N
    Wt, fields_t, vt, ht = src[4], src[5], src[6], src[7]
    X1 = np.empty((1, N))
    y1 = np.empty(1)
    c = np.empty(K)
    scale = 1.0 / math.sqrt(F)
    G[:, :] = 0.0
    M2 = 0.0
    for i in range(n):
        make_samples(cfg, s, Wt, fields_t, vt, X1, y1, ht, np.int64(1))
        x = X1[0]
        Fv = student_output(cfg, W, W0, fields, v, x, h, h0)
        dl = loss_grad(cfg.loss, Fv, y1[0], cfg.margin)
        if dl == 0.0:
            c[:] = 0.0
        else:
            output_grad(cfg.act_s, cfg.out_s, v, h, a)
            for k in range(K):
                c[k] = dl * a[k] * scale
        inv = 1.0 / (i + 1)
        for k in range(K):
            gk = G[k]
            for j in range(F):
                gkj = c[k] * x[j if cfg.dense_s else fields[k, j]]
                d = gkj - gk[j]
                gk[j] += d * inv
                M2 += d * (gkj - gk[j])
    s2 = M2 / (n - 1)
    G2 = 0.0
    for k in range(K):
        for j in range(F):
            t = G[k, j] + cfg.weight_decay * W[k, j]
            G2 += t * t
    return s2, G2 - s2 / n


# ------------------------------------------------------------------------------------------
# the Hessian: per-sample coefficients, products, trace, Lanczos

@internal
def sample_coefficients(cfg, W, W0, fields, v, X, y, DL, D2, A, B, h, h0):
    """For every sample: DL = l'(F), D2 = alpha l''(F), A = df/dh (K), B = d^2f/dh^2 (K, K;
    only where DL != 0, zero elsewhere). A sample with DL = D2 = 0 contributes nothing."""
    K = W.shape[0]
    alpha = cfg.output_scale if cfg.output_scale > 0.0 else 1.0
    for mu in range(X.shape[0]):
        Fv = student_output(cfg, W, W0, fields, v, X[mu], h, h0)
        dl = loss_grad(cfg.loss, Fv, y[mu], cfg.margin)
        d2 = alpha * loss_curvature(cfg.loss, Fv, y[mu], cfg.margin)
        DL[mu] = dl
        D2[mu] = d2
        if dl == 0.0 and d2 == 0.0:
            A[mu, :] = 0.0
            B[mu, :, :] = 0.0
            continue
        output_grad(cfg.act_s, cfg.out_s, v, h, A[mu])
        if dl != 0.0:
            output_hessian(cfg.act_s, cfg.out_s, v, h, B[mu])
        else:
            B[mu, :, :] = 0.0
    return K


@internal
def hessian_vector(cfg, fields, X, DL, D2, A, B, V, out, u):
    """out = (Hess Phi) V for V, out of shape (K, F), from sample_coefficients' arrays; u (K) is
    scratch. Two passes over each contributing sample: u = fields of V, then out += c_k xhat_k."""
    K, F = V.shape
    P = X.shape[0]
    scale = 1.0 / math.sqrt(F)
    for k in range(K):
        for j in range(F):
            out[k, j] = cfg.weight_decay * V[k, j]
    for mu in range(P):
        dl, d2 = DL[mu], D2[mu]
        if dl == 0.0 and d2 == 0.0:
            continue
        x = X[mu]
        au = 0.0
        for k in range(K):
            u[k] = scale * _dot(cfg.dense_s, V[k], x, fields[k])
            au += A[mu, k] * u[k]
        for k in range(K):
            c = d2 * A[mu, k] * au
            if dl != 0.0:
                bu = 0.0
                for l in range(K):
                    bu += B[mu, k, l] * u[l]
                c += dl * bu
            if c != 0.0:
                _axpy(cfg.dense_s, out[k], c * scale / P, x, fields[k])


@internal
def hessian_trace(cfg, fields, X, DL, D2, A, B, K, F):
    """tr Hess Phi, exactly: (1/P) sum_mu sum_k [D2 a_k^2 + DL B_kk] |xhat_k|^2 + weight_decay K F."""
    P = X.shape[0]
    tr = 0.0
    for mu in range(P):
        if DL[mu] == 0.0 and D2[mu] == 0.0:
            continue
        x = X[mu]
        for k in range(K):
            c = D2[mu] * A[mu, k] * A[mu, k] + DL[mu] * B[mu, k, k]
            if c != 0.0:
                tr += c * _sq_norm(cfg.dense_s, x, fields[k], F) / F
    return tr / max(P, 1) + cfg.weight_decay * K * F


@internal
def _sturm_below(alpha, beta, n, x):
    """Number of eigenvalues of the tridiagonal (alpha[:n], beta[:n-1]) below x (Sturm count
    from the LDL^T pivots of T - x I)."""
    count = 0
    d = 1.0
    for i in range(n):
        off = beta[i - 1] * beta[i - 1] / d if i > 0 else 0.0
        d = alpha[i] - x - off
        if d == 0.0:
            d = -1e-300
        if d < 0.0:
            count += 1
    return count


@internal
def _top_ritz(alpha, beta, n):
    """Largest eigenvalue theta of the n-square Lanczos tridiagonal (bisection on Sturm counts
    inside its Gershgorin interval, to machine precision), the last component of its unit
    eigenvector (two steps of inverse iteration at sigma just above theta, where T - sigma I is
    negative definite, so the tridiagonal solve needs no pivoting), and the Gershgorin radius
    max_i |alpha_i| + |beta_{i-1}| + |beta_i| >= the spectral radius. O(n) per bisection step."""
    radius = 0.0
    lo = math.inf
    hi = -math.inf
    for i in range(n):
        r = (abs(beta[i - 1]) if i > 0 else 0.0) + (abs(beta[i]) if i + 1 < n else 0.0)
        lo = min(lo, alpha[i] - r)
        hi = max(hi, alpha[i] + r)
        radius = max(radius, abs(alpha[i]) + r)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if _sturm_below(alpha, beta, n, mid) == n:
            hi = mid                     # every eigenvalue lies below mid
        else:
            lo = mid
    theta = hi                           # an upper bound of lambda_max(T), tight to rounding
    if n == 1:
        return theta, 1.0, radius
    sigma = theta + max(1e-10 * radius, 1e-300)
    x = np.ones(n)
    c = np.empty(n)
    for _ in range(2):                   # x <- (T - sigma I)^-1 x (Thomas), normalised
        piv = alpha[0] - sigma
        c[0] = beta[0] / piv
        x[0] = x[0] / piv
        for i in range(1, n):
            piv = alpha[i] - sigma - beta[i - 1] * c[i - 1]
            if i + 1 < n:
                c[i] = beta[i] / piv
            x[i] = (x[i] - beta[i - 1] * x[i - 1]) / piv
        for i in range(n - 2, -1, -1):
            x[i] -= c[i] * x[i + 1]
        x /= math.sqrt(np.dot(x, x))
    return theta, x[n - 1], radius


@internal
def lanczos_top(cfg, fields, X, DL, D2, A, B, K, F, s, max_iter, tol):
    """The largest (algebraic) eigenvalue of Hess Phi by Lanczos with full reorthogonalisation
    (classical Gram-Schmidt, twice), from a Gaussian start vector drawn from stream s.

    Stops when the top Ritz pair's residual |H y - theta y| = beta_j |s_j| falls to tol times the
    tridiagonal's Gershgorin radius (then an eigenvalue lies within that residual of theta, and
    theta <= lambda_max up to rounding), when the Krylov space becomes invariant (beta_j ~ 0: exact),
    or after min(K F, max_iter) products. Returns (theta, converged, products used)."""
    n = K * F
    k_max = min(n, max_iter)
    Qb = np.zeros((k_max + 1, n))
    alpha = np.zeros(k_max)
    beta = np.zeros(k_max)
    w = np.empty(n)
    u = np.empty(K)
    fill_normal(s, Qb[0])
    nrm = math.sqrt(np.sum(Qb[0] ** 2))
    for i in range(n):          # not Qb[0] /= nrm (a row assignment: see samples.next_batch)
        Qb[0, i] /= nrm
    theta = 0.0
    for j in range(k_max):
        hessian_vector(cfg, fields, X, DL, D2, A, B, Qb[j].reshape((K, F)), w.reshape((K, F)), u)
        alpha[j] = np.dot(w, Qb[j])
        for _ in range(2):
            for i in range(j + 1):
                c = np.dot(w, Qb[i])
                w -= c * Qb[i]
        b = math.sqrt(np.dot(w, w))
        beta[j] = b
        theta, last, radius = _top_ritz(alpha, beta, j + 1)
        if not (math.isfinite(theta) and math.isfinite(b)):
            return math.nan, False, j + 1
        if b * abs(last) <= tol * radius or b <= 1e-13 * radius or j + 1 == n:
            return theta, True, j + 1
        for i in range(n):              # not Qb[j + 1] = w / b (the same)
            Qb[j + 1, i] = w[i] / b
    return theta, False, k_max


# ------------------------------------------------------------------------------------------
# the engine's entry: one record point

@internal
def measure_record(cfg, r, rec, W, W0, fields, v, src, out):
    """Write the requested measures of replica r at record slot rec into out[15:19], at the
    current weights W. Finite data (src[0] has rows): exact moments over the training set and
    the Hessian of Phi; online: the moments estimated on cfg.measure_samples fresh samples
    (the Python layer refuses Hessian measures online)."""
    grad_noise, noise_scale, sharpness, trace = out[15], out[16], out[17], out[18]
    s = out[19][r]
    Xtr, ytr = src[0], src[1]
    K, F = W.shape
    P = Xtr.shape[0]
    m = cfg.batch_size
    h = np.empty(K)
    h0 = np.empty(K)
    a = np.empty(K)
    if cfg.measure & (MEASURE_GRAD_NOISE | MEASURE_NOISE_SCALE):
        G = np.empty((K, F))
        if P > 0:
            sigma2, G2 = gradient_moments(cfg, W, W0, fields, v, Xtr, ytr, np.empty((P, K)), G,
                                          h, h0, a)
            # m distinct samples (both batch modes of finite data): the finite-population factor
            fpc = (P - m) / (P - 1) if P > 1 else 0.0
            noise = sigma2 / m * fpc
            ratio = sigma2 / G2 if G2 > 0.0 else (math.inf if sigma2 > 0.0 else math.nan)
        else:
            sigma2, G2 = gradient_moments_online(cfg, W, W0, fields, v, src, s,
                                                 cfg.measure_samples, G, h, h0, a)
            noise = sigma2 / m                       # m fresh i.i.d. samples
            ratio = sigma2 / G2 if G2 > 0.0 else math.nan   # |grad|^2 not resolved
        if cfg.measure & MEASURE_GRAD_NOISE:
            grad_noise[r, rec] = noise
        if cfg.measure & MEASURE_NOISE_SCALE:
            noise_scale[r, rec] = ratio
    if cfg.measure & (MEASURE_SHARPNESS | MEASURE_HESSIAN_TRACE) and P > 0:
        DL = np.empty(P)
        D2 = np.empty(P)
        A = np.empty((P, K))
        B = np.empty((P, K, K))
        sample_coefficients(cfg, W, W0, fields, v, Xtr, ytr, DL, D2, A, B, h, h0)
        if cfg.measure & MEASURE_HESSIAN_TRACE:
            trace[r, rec] = hessian_trace(cfg, fields, Xtr, DL, D2, A, B, K, F)
        if cfg.measure & MEASURE_SHARPNESS:
            lam, ok, _ = lanczos_top(cfg, fields, Xtr, DL, D2, A, B, K, F, s, cfg.lanczos_iters,
                                     cfg.lanczos_tol)
            sharpness[r, rec] = lam if ok else math.nan


@internal
def repeat_after_stop(out, r, rec, diverged):
    """Record slots after an early stop: NaN for a diverged replica, else the last record."""
    for arr in (out[15], out[16], out[17], out[18]):
        for t in range(rec, arr.shape[1]):
            if diverged:
                arr[r, t] = math.nan
            elif rec > 0:
                arr[r, t] = arr[r, rec - 1]
