"""Edge-of-chaos probe of a square layer, the iterated map x <- tanh(W x) (Zhang et al. 2021,
SCIENCE.md section 3.4).

Conventions. ``W`` here is the *effective* N x N matrix of the map, entries of order 1/sqrt(N):
W_ij ~ N(J0/N, J^2/N) for the random ensemble, so the order parameters are

    J = sqrt(N) * std(W),    J0 = N * mean(W)     (SK convention, SCIENCE.md 3.3 / 3.4).

physsgd's hidden layer computes h = W_ps x / sqrt(N) with O(1) weights W_ps, so the effective
matrix of a trained square layer is ``W_ps / sqrt(N)`` and J = std(W_ps) (the rms of the weights
when J0 = O(1)): pass ``res.weights[r] / sqrt(N)`` to the functions below.

Mean field (J0 = 0, tanh): the origin is stable iff J < 1 (ordered phase, lambda_1 = ln J); for
J > 1 the map is chaotic with lambda_1 = 1/2 ln(J^2 <tanh'(sqrt(q) z)^2>), q the fixed point of
q = J^2 <tanh(sqrt(q) z)^2> (annealed approximation, exact as N -> infinity; discrete-time
analogue of Sompolinsky-Crisanti-Sommers). ``mean_field_lyapunov`` evaluates it.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import _validate as v

__all__ = ["lyapunov", "random_layer", "order_parameters", "mean_field_lyapunov"]

MAX_ITERATIONS = 10 ** 9     # steps / burn / iters: beyond this a call runs for hours


def random_layer(N, J, J0=0.0, seed=0) -> np.ndarray:
    """Effective N x N matrix with i.i.d. entries N(J0/N, J^2/N) (seeded, reproducible)."""
    N = v.integer("N", N, 2)
    have = v.physical_memory()
    if have is not None and 8 * N * N > have:
        raise ValueError(f"N={v.show(N)}: an N x N matrix needs {8 * N * N / 1e9:.3g} GB; this machine "
                         f"has {have / 1e9:.3g} GB")
    J = v.real("J", J, 0)
    J0 = v.real("J0", J0)
    seed = v.integer("seed", seed, 0)
    rng = np.random.default_rng(np.random.SeedSequence([seed, N]))
    return J0 / N + (J / math.sqrt(N)) * rng.standard_normal((N, N))


def order_parameters(W) -> tuple[float, float]:
    """(J, J0) = (sqrt(N) std(W), N mean(W)) of an effective square matrix W."""
    W = _square(W)
    N = W.shape[0]
    return float(math.sqrt(N) * W.std()), float(N * W.mean())


def lyapunov(W, steps=1000, burn=200, x0=None, seed=0) -> float:
    """Largest Lyapunov exponent of x <- tanh(W x), by Benettin's method.

    The state is iterated ``burn`` steps from ``x0`` (default: uniform in [-1, 1]^N drawn from
    ``seed``), then a perturbation u (random unit vector) is propagated ``steps`` more steps with
    the tangent map u <- diag(1 - x'^2) W u (the eps -> 0 limit of two trajectories at distance
    eps), renormalised every step; lambda_1 = mean of ln |u| growth per step (natural log, per
    iteration). lambda_1 < 0: ordered (converges to a fixed point or stable cycle), > 0: chaotic.
    Error of the estimate ~ 1/sqrt(steps) on chaotic orbits, ~ 1/steps on regular ones.
    """
    W = _square(W)
    N = W.shape[0]
    steps = v.integer("steps", steps, 1, MAX_ITERATIONS)
    burn = v.integer("burn", burn, 0, MAX_ITERATIONS)
    seed = v.integer("seed", seed, 0)
    rng = np.random.default_rng(np.random.SeedSequence([seed, N, 1]))
    if x0 is None:
        x = rng.uniform(-1.0, 1.0, N)
    else:
        x = np.array(x0, dtype=np.float64)
        if x.shape != (N,) or not np.all(np.isfinite(x)):
            raise ValueError(f"x0 must be a finite vector of shape ({N},); got shape {x.shape}")
    u = rng.standard_normal(N)
    u /= np.linalg.norm(u)
    return float(_benettin(np.ascontiguousarray(W), x, u, steps, burn))


def mean_field_lyapunov(J, J0=0.0, n_quad=201, iters=2000) -> float:
    """Mean-field lambda_1 of the random tanh map (N -> infinity): 1/2 ln(J^2 <tanh'(h)^2>),
    h ~ N(J0 m, J^2 q) at the fixed point of m = <tanh h>, q = <tanh(h)^2> (m from m0 = 1 when
    J0 > 0). In the ordered paramagnetic phase (q = 0) this is ln J. Bulk exponent only: the
    rank-one mean part adds an outlier that matters only past the ferromagnetic line."""
    J = v.real("J", J, 0, low_open=True)
    J0 = v.real("J0", J0)
    z, w = np.polynomial.hermite_e.hermegauss(v.integer("n_quad", n_quad, 3, 10_000))
    w = w / w.sum()
    m, q = (1.0 if J0 > 0 else 0.0), 1.0
    for _ in range(v.integer("iters", iters, 1, MAX_ITERATIONS)):
        t = np.tanh(J0 * m + J * math.sqrt(q) * z)
        m_new, q_new = float(w @ t), float(w @ t ** 2)
        if abs(m_new - m) < 1e-14 and abs(q_new - q) < 1e-14:
            break
        m, q = m_new, q_new
    if q < 1e-12:                        # x = 0 (paramagnet): tanh'(0) = 1
        return float(math.log(J))
    d = 1.0 - np.tanh(J0 * m + J * math.sqrt(q) * z) ** 2
    return float(0.5 * math.log(J * J * float(w @ d ** 2)))


def _square(W) -> np.ndarray:
    if np.iscomplexobj(W):
        raise ValueError("W must be a real matrix; got complex values")
    try:
        W = np.asarray(W, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"W must be a square N x N matrix of real numbers; got {type(W).__name__}") from None
    if W.ndim != 2 or W.shape[0] != W.shape[1] or W.shape[0] < 2:
        raise ValueError(f"W must be a square N x N matrix with N >= 2; got shape {W.shape}")
    if not np.all(np.isfinite(W)):
        raise ValueError("W must be finite (found NaN or inf)")
    return W


@njit(cache=True)
def _benettin(W, x, u, steps, burn):
    for _ in range(burn):
        x = np.tanh(W @ x)
    acc = 0.0
    for _ in range(steps):
        x = np.tanh(W @ x)
        u = (1.0 - x * x) * (W @ u)
        nrm = math.sqrt(np.sum(u * u))
        if nrm == 0.0:                  # tangent vector annihilated: superstable
            return -np.inf
        acc += math.log(nrm)
        u = u / nrm
    return acc / steps
