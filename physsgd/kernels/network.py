"""Forward pass, derivatives and losses of the committee, one sample at a time.

Activations, outputs and losses are the integer codes of config.py.
"""
import math

from numba import njit

from .config import (ERF, HEBBIAN, HINGE, LINEAR, LOGISTIC, MAJORITY, PARITY, RELU, SIGN,  # noqa: F401
                     SQUARE, SQUARED_HINGE, SUM, TANH)
from .jit import internal

# Reassociation lets LLVM vectorise the dot products (a serial add chain otherwise). Only on the
# field sums: on a function that tests math.isfinite LLVM deletes the test even without nnan/ninf.
# Deterministic for a given build, so thread-count reproducibility is unaffected.
FAST = {"reassoc", "contract", "nsz", "arcp"}

_SQRT1_2 = 1.0 / math.sqrt(2.0)
_SQRT2_PI = math.sqrt(2.0 / math.pi)


@njit(inline="always")
def sign(x):
    """sign with sign(0) = +1, the tie convention used everywhere in physsgd."""
    return 1.0 if x >= 0.0 else -1.0


@internal
def g(act, h):
    if act == ERF:
        return math.erf(h * _SQRT1_2)
    if act == TANH:
        return math.tanh(h)
    if act == RELU:
        return h if h > 0.0 else 0.0
    if act == LINEAR:
        return h
    return sign(h)


@internal
def g_prime(act, h):
    if act == ERF:
        return _SQRT2_PI * math.exp(-0.5 * h * h)
    if act == TANH:
        t = math.tanh(h)
        return 1.0 - t * t
    if act == RELU:
        return 1.0 if h > 0.0 else 0.0
    if act == LINEAR:
        return 1.0
    return 0.0


@internal(fastmath=FAST)
def raw_fields(W, fields, dense, x, h):
    """h_k = sum_j W[k, j] x[S_k(j)], unscaled: exact integers for +-1 weights and inputs."""
    K, F = W.shape
    for k in range(K):
        acc = 0.0
        if dense:
            for j in range(F):
                acc += W[k, j] * x[j]
        else:
            for j in range(F):
                acc += W[k, j] * x[fields[k, j]]
        h[k] = acc


@internal(fastmath=FAST)
def unit_fields(W, fields, dense, x, h):
    """h_k = sum_j W[k, j] x[S_k(j)] / sqrt(fan-in) for one sample x."""
    raw_fields(W, fields, dense, x, h)
    scale = 1.0 / math.sqrt(W.shape[1])
    for k in range(h.shape[0]):
        h[k] *= scale


@internal
def output(act, out, v, h):
    """Real output f: sum_k v_k g(h_k) (sum, sign) or prod_k g(h_k) (parity)."""
    if out == PARITY:
        f = 1.0
        for k in range(h.shape[0]):
            f *= g(act, h[k])
        return f
    f = 0.0
    for k in range(h.shape[0]):
        f += v[k] * g(act, h[k])
    return f


@njit(inline="always")
def predict(out, f):
    """Label: f itself for regression (sum), sign(f) for classifiers."""
    if out == SUM:
        return f
    return sign(f)


@internal
def output_grad(act, out, v, h, dfdh):
    """df/dh_k for every unit."""
    K = h.shape[0]
    if out == PARITY:
        for k in range(K):
            p = g_prime(act, h[k])
            for l in range(K):
                if l != k:
                    p *= g(act, h[l])
            dfdh[k] = p
    else:
        for k in range(K):
            dfdh[k] = v[k] * g_prime(act, h[k])


@internal
def loss_value(loss, F, y, margin):
    if loss == SQUARE:
        return 0.5 * (F - y) ** 2
    if loss == HINGE:
        return max(0.0, margin - y * F)
    if loss == LOGISTIC:
        z = -y * F
        return z + math.log1p(math.exp(-z)) if z > 0 else math.log1p(math.exp(z))
    if loss == SQUARED_HINGE:
        return 0.5 * max(0.0, margin - y * F) ** 2
    return -y * F


@internal
def loss_grad(loss, F, y, margin):
    """d loss / d F."""
    if loss == SQUARE:
        return F - y
    if loss == HINGE:
        return -y if y * F < margin else 0.0
    if loss == LOGISTIC:
        z = y * F        # -y * sigmoid(-y F), written to stay finite for large |z|
        if z >= 0:
            e = math.exp(-z)
            return -y * e / (1.0 + e)
        return -y / (1.0 + math.exp(z))
    if loss == SQUARED_HINGE:
        gap = margin - y * F
        return -y * gap if gap > 0.0 else 0.0
    return -y
