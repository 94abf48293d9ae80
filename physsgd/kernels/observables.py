"""Order parameters and generalisation errors from the weights.

Overlaps are covariances of the pre-activations under N(0, I) inputs:
R_kn = w_k . w*_n / sqrt(F_s F_t), Q_kl = w_k . w_l / F_s, T_nm = w*_n . w*_m / F_t, with each
unit's weights embedded in R^N through its receptive field. For Gaussian inputs every
closed-form eps_g below is exact at finite N given these overlaps.
"""
import math

import numpy as np


# eps_g modes: which closed form applies (chosen by the Python layer from the architectures)
from .config import EG_ARCCOS, EG_ERF, EG_LINEAR, EG_TESTSET, EG_TREE_MAJORITY, EG_TREE_PARITY  # noqa: F401
from .jit import internal


@internal
def embed(W, fields, dense, N, out):
    """out[k] = unit k's weights as a length-N vector (zeros outside its receptive field)."""
    K, F = W.shape
    out[:, :] = 0.0
    for k in range(K):
        for j in range(F):
            out[k, j if dense else fields[k, j]] = W[k, j]


@internal
def overlaps_with(W, fields, dense, other_full, norm, out):
    """out[k, n] = sum_j W[k, j] other_full[n, S_k(j)] / norm: O(K F M) for sparse W."""
    K, F = W.shape
    M = other_full.shape[0]
    for k in range(K):
        for n in range(M):
            acc = 0.0
            for j in range(F):
                acc += W[k, j] * other_full[n, j if dense else fields[k, j]]
            out[k, n] = acc / norm


@internal
def eps_erf(Q, R, T, vs, vt):
    K, M = R.shape
    acc = 0.0
    for i in range(K):
        for k in range(K):
            acc += vs[i] * vs[k] * math.asin(Q[i, k] / math.sqrt((1 + Q[i, i]) * (1 + Q[k, k])))
    for n in range(M):
        for m in range(M):
            acc += vt[n] * vt[m] * math.asin(T[n, m] / math.sqrt((1 + T[n, n]) * (1 + T[m, m])))
    for i in range(K):
        for n in range(M):
            acc -= 2 * vs[i] * vt[n] * math.asin(R[i, n] / math.sqrt((1 + Q[i, i]) * (1 + T[n, n])))
    return acc / math.pi


@internal
def eps_linear(Q, R, T, vs, vt):
    K, M = R.shape
    acc = 0.0
    for i in range(K):
        for k in range(K):
            acc += vs[i] * vs[k] * Q[i, k]
    for n in range(M):
        for m in range(M):
            acc += vt[n] * vt[m] * T[n, m]
    for i in range(K):
        for n in range(M):
            acc -= 2 * vs[i] * vt[n] * R[i, n]
    return 0.5 * acc


@internal
def flip_probability(R, Q, T):
    """P(sign h != sign h*) for jointly Gaussian fields: arccos(R / sqrt(Q T)) / pi."""
    if Q <= 0.0 or T <= 0.0:
        return 0.5
    rho = R / math.sqrt(Q * T)
    rho = min(1.0, max(-1.0, rho))
    return math.acos(rho) / math.pi


@internal
def majority_flip(p):
    """P(sign sum_k tau_k s_k != sign sum_k tau_k), tau_k uniform +-1, s_k = -1 w.p. p_k, all
    independent (tree branches see disjoint Gaussian inputs). DP over (teacher, student) vote sums."""
    K = p.shape[0]
    size = 2 * K + 1
    P = np.zeros((size, size))
    P[K, K] = 1.0
    for k in range(K):
        new = np.zeros((size, size))
        for a in range(size):
            for b in range(size):
                w = P[a, b]
                if w == 0.0:
                    continue
                q = 0.5 * (1.0 - p[k])
                r = 0.5 * p[k]
                if a + 1 < size and b + 1 < size:
                    new[a + 1, b + 1] += w * q
                if a + 1 < size and b >= 1:
                    new[a + 1, b - 1] += w * r
                if a >= 1 and b >= 1:
                    new[a - 1, b - 1] += w * q
                if a >= 1 and b + 1 < size:
                    new[a - 1, b + 1] += w * r
        P = new
    err = 0.0
    for a in range(size):
        for b in range(size):
            if (a >= K) != (b >= K):     # sign(0) = +1 convention
                err += P[a, b]
    return err


@internal
def eps_closed_form(mode, Q, R, T, vs, vt):
    if mode == EG_ERF:
        return eps_erf(Q, R, T, vs, vt)
    if mode == EG_LINEAR:
        return eps_linear(Q, R, T, vs, vt)
    if mode == EG_ARCCOS:
        return flip_probability(R[0, 0], Q[0, 0], T[0, 0])
    K = R.shape[0]
    p = np.empty(K)
    for k in range(K):
        p[k] = flip_probability(R[k, k], Q[k, k], T[k, k])
    if mode == EG_TREE_PARITY:
        prod = 1.0
        for k in range(K):
            prod *= 1.0 - 2.0 * p[k]
        return 0.5 * (1.0 - prod)
    return majority_flip(p)
