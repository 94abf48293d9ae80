"""The network of Zhang, Feng, Chen & Lai (2021): a fully connected net with one square tanh
hidden layer and a trained softmax read-out, trained by mini-batch SGD with momentum and weight
decay in PyTorch's conventions. Plain NumPy, ``R`` independent replicas side by side (every array
has a leading replica axis), float64.

    h = tanh(W x + b)        W: N x N (square: the layer is the map x -> tanh(W x) of the
                             order-chaos analysis), b: N
    z = V h + c              V: C x N read-out, c: C
    loss = mean over the batch of -log softmax(z)[label]        (torch.nn.CrossEntropyLoss)

Initialisation: W_ij ~ N(0, J^2 / N) (the order parameter J = sqrt(N) std(W) starts at J), b = 0;
read-out V, c ~ U(-1/sqrt(N), 1/sqrt(N)) (torch.nn.Linear's default). SGD (torch.optim.SGD,
dampening 0, no Nesterov), on every parameter, weight decay included:

    g = grad + weight_decay * p;   buf = momentum * buf + g   (buf = g at the first step);
    p <- p - lr * buf

so the scale factor of the paper is s = lr / ((1 - momentum) B). Mini-batches: every epoch a
fresh random order per replica, batches of B without replacement, the last P mod B samples of
the order dropped (DataLoader(drop_last=True)), so every step has exactly B samples.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

PARAMS = ("W", "b", "V", "c")


def init_params(N: int, C: int, J: float, replicas: int, seed: int) -> dict:
    """Initial parameters of ``replicas`` networks (N inputs = N hidden units, C classes)."""
    N, C, replicas = _pos_int("N", N), _pos_int("C", C, 2), _pos_int("replicas", replicas)
    if not (np.isfinite(J) and J >= 0):
        raise ValueError(f"J={J!r} must be a finite number >= 0")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), N, C, 7]))
    lim = 1 / math.sqrt(N)
    return dict(W=(J / math.sqrt(N)) * rng.standard_normal((replicas, N, N)),
                b=np.zeros((replicas, N)),
                V=rng.uniform(-lim, lim, (replicas, C, N)),
                c=rng.uniform(-lim, lim, (replicas, C)))


def forward(p: dict, X: np.ndarray):
    """Hidden activations h (R, n, N) and logits z (R, n, C) of inputs X, (n, N) or (R, n, N)."""
    pre = np.matmul(X, np.swapaxes(p["W"], 1, 2)) + p["b"][:, None, :]
    h = np.tanh(pre)
    z = np.matmul(h, np.swapaxes(p["V"], 1, 2)) + p["c"][:, None, :]
    return h, z


def _log_softmax(z):
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def loss(p: dict, X, y) -> np.ndarray:
    """Mean cross-entropy per replica (R,); y integer labels (n,) or (R, n)."""
    _, z = forward(p, X)
    ls = _log_softmax(z)
    y = np.broadcast_to(y, ls.shape[:2])
    return -np.take_along_axis(ls, y[..., None], axis=-1)[..., 0].mean(axis=-1)


def loss_and_grads(p: dict, X, y):
    """(loss (R,), gradients dict like p) of the mean cross-entropy on the batch X (R, n, N)."""
    h, z = forward(p, X)
    ls = _log_softmax(z)
    n = z.shape[1]
    y = np.broadcast_to(y, z.shape[:2])
    L = -np.take_along_axis(ls, y[..., None], axis=-1)[..., 0].mean(axis=-1)
    dz = np.exp(ls)
    np.put_along_axis(dz, y[..., None], np.take_along_axis(dz, y[..., None], axis=-1) - 1.0, axis=-1)
    dz /= n
    g = dict(V=np.matmul(np.swapaxes(dz, 1, 2), h), c=dz.sum(axis=1))
    dpre = np.matmul(dz, p["V"]) * (1.0 - h * h)
    g["W"] = np.matmul(np.swapaxes(dpre, 1, 2), np.broadcast_to(X, dpre.shape[:2] + X.shape[-1:]))
    g["b"] = dpre.sum(axis=1)
    return L, g


def accuracy(p: dict, X, y) -> np.ndarray:
    _, z = forward(p, X)
    return (z.argmax(axis=-1) == y).mean(axis=-1)


def order_parameters(W: np.ndarray):
    """J = sqrt(N) std(W) and J0 = N mean(W) per replica of square matrices W (R, N, N)."""
    N = W.shape[-1]
    return (math.sqrt(N) * W.reshape(W.shape[0], -1).std(axis=1),
            N * W.reshape(W.shape[0], -1).mean(axis=1))


@dataclass(frozen=True)
class SGD:
    """torch.optim.SGD(lr, momentum, weight_decay) with mini-batches of batch_size."""
    lr: float
    batch_size: int = 32
    momentum: float = 0.0
    weight_decay: float = 0.0

    def __post_init__(self):
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr={self.lr!r} must be > 0")
        _pos_int("batch_size", self.batch_size)
        if not (0 <= self.momentum < 1):
            raise ValueError(f"momentum={self.momentum!r} must be in [0, 1)")
        if not (np.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay={self.weight_decay!r} must be >= 0")

    @property
    def scale(self) -> float:
        """The paper's scale factor s = lr / ((1 - momentum) B)."""
        return self.lr / ((1 - self.momentum) * self.batch_size)


def train(X, y, opt: SGD, epochs: int, J: float, replicas: int = 4, seed: int = 0,
          Xtest=None, ytest=None, record_every: float = 1.0, C=None, kernel: bool = True) -> dict:
    """Train ``replicas`` networks from W ~ N(0, J^2/N) for ``epochs`` epochs.

    Records at step 0 and every ``record_every`` epochs (a fraction of an epoch allowed; rounded
    to whole steps) and at the end. Returns a dict of arrays: ``epochs`` (T,) of the records,
    ``J``, ``J0`` (R, T) of the hidden layer, ``train_loss`` (the mean batch loss since the
    previous record; at 0 the loss of the start), ``test_loss``, ``test_acc`` (R, T) (NaN without
    a test set), the final ``params`` and ``diverged`` (R,). ``kernel=False`` runs the NumPy
    reference step instead of the compiled one (same random numbers, same result up to rounding).
    """
    X = np.ascontiguousarray(X, float)
    y = np.asarray(y)
    if X.ndim != 2 or y.shape != (X.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"X must be (n, N) and y integer labels (n,); got {X.shape}, {y.shape} {y.dtype}")
    n, N = X.shape
    C = int(C or y.max() + 1)
    if y.min() < 0 or y.max() >= C:
        raise ValueError(f"labels must be in 0..{C - 1}; got {y.min()}..{y.max()}")
    B = opt.batch_size
    if B > n:
        raise ValueError(f"batch_size={B} is larger than the training set ({n})")
    epochs = _pos_int("epochs", epochs)
    if not (np.isfinite(record_every) and record_every > 0):
        raise ValueError(f"record_every={record_every!r} must be > 0 (epochs)")
    spe = n // B                                           # steps per epoch
    total = epochs * spe
    rec = np.unique(np.concatenate([[0], np.round(np.arange(1, total / (record_every * spe) + 1)
                                                  * record_every * spe), [total]]).astype(np.int64))
    rec = rec[rec <= total]
    p = init_params(N, C, J, replicas, seed)
    buf = {k: np.zeros_like(v) for k, v in p.items()}
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), N, C, 11]))
    T = len(rec)
    out = {k: np.full((replicas, T), np.nan) for k in ("J", "J0", "train_loss", "test_loss", "test_acc")}
    diverged = np.zeros(replicas, bool)
    y64 = y.astype(np.int64)

    def record(i, running):
        out["J"][:, i], out["J0"][:, i] = order_parameters(p["W"])
        out["train_loss"][:, i] = running
        if Xtest is not None:
            out["test_loss"][:, i] = loss(p, Xtest, ytest)
            out["test_acc"][:, i] = accuracy(p, Xtest, ytest)

    record(0, loss(p, X, y))
    step, i, acc, nacc = 0, 1, np.zeros(replicas), 0
    order = None
    while step < total:
        if step % spe == 0:
            order = rng.permuted(np.broadcast_to(np.arange(n), (replicas, n)), axis=1)
        e0 = step - step % spe                                        # first step of this epoch
        stop = min(rec[i], e0 + spe)
        chunk = np.ascontiguousarray(order[:, (step - e0) * B:(stop - e0) * B])
        if kernel:
            m = _steps(p["W"], p["b"], p["V"], p["c"], buf["W"], buf["b"], buf["V"], buf["c"],
                       X, y64, chunk, B, opt.lr, opt.momentum, opt.weight_decay)
        else:
            m = _steps_reference(p, buf, X, y64, chunk, opt)
        acc += m * (stop - step)
        nacc += stop - step
        step = stop
        bad = ~np.isfinite(p["W"].reshape(replicas, -1)).all(axis=1) | ~np.isfinite(m)
        if bad.any():
            diverged |= bad
            for k in PARAMS:
                p[k][bad] = np.nan
                buf[k][bad] = 0.0
        if step == rec[i]:
            record(i, acc / nacc)
            i, acc, nacc = i + 1, np.zeros(replicas), 0
    return dict(epochs=rec / spe, params=p, diverged=diverged, **out)


def _steps_reference(p, buf, X, y, order, opt):
    """SGD steps on the consecutive batches of ``order`` (R, m B) for every replica, with the
    NumPy step (the reference of ``_steps``); the mean batch loss per replica."""
    B = opt.batch_size
    steps = order.shape[1] // B
    total = np.zeros(order.shape[0])
    for s in range(steps):
        idx = order[:, s * B:(s + 1) * B]
        L, g = loss_and_grads(p, X[idx], y[idx])
        total += L
        for k in PARAMS:
            gk = g[k] + opt.weight_decay * p[k]
            buf[k] *= opt.momentum
            buf[k] += gk
            p[k] -= opt.lr * buf[k]
    return total / steps


@njit(parallel=True, cache=True, fastmath=True)
def _steps(W, b, V, c, mW, mb, mV, mc, X, y, order, B, lr, mom, wd):
    """SGD steps for every replica (in parallel): for each consecutive batch of B samples of
    ``order`` (R, m B), the gradient of the mean cross-entropy, then buf = mom buf + (g + wd p),
    p -= lr buf. Returns the mean batch loss per replica."""
    R, N = W.shape[0], W.shape[1]
    C = V.shape[1]
    steps = order.shape[1] // B
    out = np.zeros(R)
    for r in prange(R):
        gW = np.empty((N, N))
        gb = np.empty(N)
        gV = np.empty((C, N))
        gc = np.empty(C)
        h = np.empty(N)
        z = np.empty(C)
        dpre = np.empty(N)
        Wr, br, Vr, cr = W[r], b[r], V[r], c[r]
        total = 0.0
        for s in range(steps):
            gW[:] = 0.0
            gb[:] = 0.0
            gV[:] = 0.0
            gc[:] = 0.0
            for bi in range(B):
                i = order[r, s * B + bi]
                x = X[i]
                for u in range(N):
                    a = br[u]
                    for j in range(N):
                        a += Wr[u, j] * x[j]
                    h[u] = math.tanh(a)
                zmax = -np.inf
                for k in range(C):
                    a = cr[k]
                    for u in range(N):
                        a += Vr[k, u] * h[u]
                    z[k] = a
                    zmax = max(zmax, a)
                zy = z[y[i]]
                norm = 0.0
                for k in range(C):
                    z[k] = math.exp(z[k] - zmax)
                    norm += z[k]
                total += (math.log(norm) + zmax - zy) / B
                for k in range(C):
                    d = (z[k] / norm - (1.0 if k == y[i] else 0.0)) / B
                    z[k] = d
                    gc[k] += d
                    for u in range(N):
                        gV[k, u] += d * h[u]
                for u in range(N):
                    a = 0.0
                    for k in range(C):
                        a += z[k] * Vr[k, u]
                    dpre[u] = a * (1.0 - h[u] * h[u])
                    gb[u] += dpre[u]
                    for j in range(N):
                        gW[u, j] += dpre[u] * x[j]
            _update(Wr, gW, mW[r], lr, mom, wd)
            _update(br, gb, mb[r], lr, mom, wd)
            _update(Vr, gV, mV[r], lr, mom, wd)
            _update(cr, gc, mc[r], lr, mom, wd)
        out[r] = total / steps
    return out


@njit
def _update(p, g, buf, lr, mom, wd):
    pf, gf, bf = p.reshape(-1), g.reshape(-1), buf.reshape(-1)      # views: all contiguous
    for j in range(pf.shape[0]):
        bf[j] = mom * bf[j] + gf[j] + wd * pf[j]
        pf[j] -= lr * bf[j]


def _pos_int(name, x, low=1):
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < low:
        raise ValueError(f"{name}={x!r} must be an integer >= {low}")
    return int(x)
