"""Exact results: Gaussian averages, closed-form generalisation errors, the Saad & Solla ODEs
for soft committee machines and the online perceptron learning curves (SCIENCE.md 4.1, 4.3).

Pure NumPy / SciPy, vectorised over leading ("stack") dimensions wherever it makes sense.

Time conventions
----------------
The simulator reports ``time = samples seen / N``. One SGD step on a mini-batch of size B
consumes B samples, so

    t_ode = steps / N = alpha / B,        alpha = samples / N.

Every function here that takes ``alpha`` takes it in **samples / N**, like ``ps.train``; the
differential equations themselves are written in ``t_ode`` (the alpha of Saad & Solla, which for
B = 1 is the same number). With B fresh samples averaged per step only the O(lr^2) (noise) term
of the equations is divided by B.

Weight decay (PyTorch coupled L2, as in ``ps.SGD``)
--------------------------------------------------
Per step w <- w - lr (grad + wd w) = (1 - lr wd) w + (lr / sqrt N) delta x, in the weight units
where h = w.x / sqrt(N) (so Q = w.w / N). Per step R changes by -lr wd R and Q by
-(2 lr wd - (lr wd)^2) Q on top of the SGD terms; one unit of t_ode is N steps, so in the
large-N limit with lambda = N lr wd fixed the ODEs gain

    dR/dt_ode -= lambda R,      dQ/dt_ode -= 2 lambda Q,      lambda = N * lr * weight_decay,

independently of B (the decay acts once per step, whatever the batch). The mapping depends on
N, so ``saad_solla`` needs ``N`` whenever ``weight_decay > 0``. This is the "-lambda J / N per
step" convention of SCIENCE.md 4.1. The ODE is exact for N -> infinity at fixed lambda; at finite
N the corrections are O(lr wd) = O(lambda / N) relative.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from . import _validate as v

__all__ = [
    "g_erf", "g_erf_prime", "eg_pair", "I2", "I3", "I4",
    "eps_g_erf_committee", "eps_g_linear", "eps_g_perceptron", "eps_g_tree_sign",
    "ODESolution", "saad_solla", "PlateauState", "plateau",
    "PerceptronCurve", "perceptron_curve", "perceptron_asymptote", "hebb_closed_form",
]

_2PI = 2.0 / math.pi


# ----------------------------------------------------------------------------------------------
# Activation and Gaussian averages for g(x) = erf(x / sqrt 2)
# ----------------------------------------------------------------------------------------------

def g_erf(x):
    """The activation g(x) = erf(x / sqrt 2)."""
    return erf(np.asarray(x) / math.sqrt(2.0))


def g_erf_prime(x):
    """g'(x) = sqrt(2/pi) exp(-x^2 / 2)."""
    x = np.asarray(x)
    return math.sqrt(_2PI) * np.exp(-0.5 * x * x)


def eg_pair(Caa, Cbb, Cab):
    """E[g(u_a) g(u_b)] = (2/pi) arcsin(C_ab / sqrt((1 + C_aa)(1 + C_bb))), for (u_a, u_b) jointly
    Gaussian with zero mean and covariance entries C_aa, C_bb, C_ab (arrays broadcast)."""
    Caa, Cbb, Cab = np.broadcast_arrays(*map(np.asarray, (Caa, Cbb, Cab)))
    return _2PI * np.arcsin(np.clip(Cab / np.sqrt((1.0 + Caa) * (1.0 + Cbb)), -1.0, 1.0))


def I2(Caa, Cbb, Cab):
    """I2(a,b) = E[g'(u_a) g'(u_b)] = (2/pi) / sqrt(1 + C_aa + C_bb + C_aa C_bb - C_ab^2)."""
    Caa, Cbb, Cab = map(np.asarray, (Caa, Cbb, Cab))
    return _2PI / np.sqrt((1.0 + Caa) * (1.0 + Cbb) - Cab * Cab)


def I3(Caa, Cab, Cac, Cbc, Ccc):
    """I3(a,b,c) = E[g'(u_a) u_b g(u_c)]
    = (2/pi) (C_bc (1 + C_aa) - C_ab C_ac) / ((1 + C_aa) sqrt(L3)),
    L3 = (1 + C_aa)(1 + C_cc) - C_ac^2. (C_bb does not enter.)"""
    Caa, Cab, Cac, Cbc, Ccc = map(np.asarray, (Caa, Cab, Cac, Cbc, Ccc))
    l3 = (1.0 + Caa) * (1.0 + Ccc) - Cac * Cac
    return _2PI / np.sqrt(l3) * (Cbc * (1.0 + Caa) - Cab * Cac) / (1.0 + Caa)


def I4(Caa, Cbb, Cab, Cac, Cad, Cbc, Cbd, Ccd, Ccc, Cdd):
    """I4(a,b,c,d) = E[g'(u_a) g'(u_b) g(u_c) g(u_d)] = (4/pi^2) arcsin(L0 / sqrt(L1 L2)) / sqrt(L4)
    with the Lambdas of SCIENCE.md 4.1 (Saad & Solla 1995)."""
    Caa, Cbb, Cab, Cac, Cad, Cbc, Cbd, Ccd, Ccc, Cdd = map(
        np.asarray, (Caa, Cbb, Cab, Cac, Cad, Cbc, Cbd, Ccd, Ccc, Cdd))
    l4 = (1.0 + Caa) * (1.0 + Cbb) - Cab * Cab
    l0 = l4 * Ccd - Cbc * Cbd * (1.0 + Caa) - Cac * Cad * (1.0 + Cbb) + Cab * Cac * Cbd + Cab * Cad * Cbc
    l1 = l4 * (1.0 + Ccc) - Cbc * Cbc * (1.0 + Caa) - Cac * Cac * (1.0 + Cbb) + 2.0 * Cab * Cac * Cbc
    l2 = l4 * (1.0 + Cdd) - Cbd * Cbd * (1.0 + Caa) - Cad * Cad * (1.0 + Cbb) + 2.0 * Cab * Cad * Cbd
    return (4.0 / math.pi ** 2) / np.sqrt(l4) * np.arcsin(np.clip(l0 / np.sqrt(l1 * l2), -1.0, 1.0))


# ----------------------------------------------------------------------------------------------
# Closed-form generalisation errors
# ----------------------------------------------------------------------------------------------

def _as_overlaps(Q, R, T):
    Q, R, T = (np.asarray(a, dtype=float) for a in (Q, R, T))
    if Q.ndim < 2 or Q.shape[-1] != Q.shape[-2]:
        raise ValueError(f"Q has shape {Q.shape}; it must be (..., K, K)")
    if T.ndim < 2 or T.shape[-1] != T.shape[-2]:
        raise ValueError(f"T has shape {T.shape}; it must be (..., M, M)")
    K, M = Q.shape[-1], T.shape[-1]
    if R.ndim < 2 or R.shape[-2:] != (K, M):
        raise ValueError(f"R has shape {R.shape}; it must be (..., K, M) = (..., {K}, {M})")
    return Q, R, T, K, M


def _second_layer(name, value, n):
    if value is None:
        return np.ones(n)
    arr = np.asarray(value, dtype=float)
    if arr.shape != (n,):
        raise ValueError(f"{name} has shape {arr.shape}; it must be ({n},)")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}={value!r} must be finite")
    return arr


def eps_g_erf_committee(Q, R, T, second_layer_student=None, second_layer_teacher=None):
    """eps_g = 1/2 <(sigma - tau)^2> for soft committees sigma = sum_i v_i g(x_i),
    tau = sum_n v*_n g(y_n), g(x) = erf(x/sqrt 2), Gaussian inputs (SCIENCE.md 4.1):

        eps_g = (1/pi) [ sum_ik v_i v_k asin(Q_ik / sqrt((1+Q_ii)(1+Q_kk)))
                        + sum_nm v*_n v*_m asin(T_nm / ...) - 2 sum_in v_i v*_n asin(R_in / ...) ]

    Q (..., K, K), R (..., K, M), T (..., M, M) broadcast against each other; second-layer weights
    default to 1. Returns an array of the broadcast stack shape (a float for plain matrices).
    """
    Q, R, T, K, M = _as_overlaps(Q, R, T)
    v_s = _second_layer("second_layer_student", second_layer_student, K)
    v_t = _second_layer("second_layer_teacher", second_layer_teacher, M)
    dq = np.diagonal(Q, axis1=-2, axis2=-1)
    dt = np.diagonal(T, axis1=-2, axis2=-1)
    ss = eg_pair(dq[..., :, None], dq[..., None, :], Q)
    tt = eg_pair(dt[..., :, None], dt[..., None, :], T)
    st = eg_pair(dq[..., :, None], dt[..., None, :], R)
    eps = 0.5 * (np.einsum("...ik,i,k->...", ss, v_s, v_s)
                 + np.einsum("...nm,n,m->...", tt, v_t, v_t)
                 - 2.0 * np.einsum("...in,i,n->...", st, v_s, v_t))
    return eps[()] if eps.ndim == 0 else eps


def eps_g_linear(Q, R, T, second_layer_student=None, second_layer_teacher=None):
    """eps_g = 1/2 <(sigma - tau)^2> for linear units, sigma = sum_i v_i x_i, tau = sum_n v*_n y_n:
    1/2 (v.Q.v - 2 v.R.v* + v*.T.v*). Shapes as in ``eps_g_erf_committee``."""
    Q, R, T, K, M = _as_overlaps(Q, R, T)
    v_s = _second_layer("second_layer_student", second_layer_student, K)
    v_t = _second_layer("second_layer_teacher", second_layer_teacher, M)
    eps = 0.5 * (np.einsum("...ik,i,k->...", Q, v_s, v_s)
                 - 2.0 * np.einsum("...in,i,n->...", R, v_s, v_t)
                 + np.einsum("...nm,n,m->...", T, v_t, v_t))
    return eps[()] if eps.ndim == 0 else eps


def eps_g_perceptron(R, Q, T=1.0):
    """P(sign(lambda) != sign(u)) = arccos(R / sqrt(Q T)) / pi for jointly Gaussian fields with
    <lambda^2> = Q, <u^2> = T, <lambda u> = R (perceptron with Gaussian or, as N -> inf, any
    isotropic inputs). Arrays broadcast; Q = 0 (a zero student) counts as rho = 0, eps = 1/2."""
    R, Q, T = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (R, Q, T)))
    if np.any(Q < 0) or np.any(T <= 0):
        raise ValueError("eps_g_perceptron needs Q >= 0 and T > 0 "
                         f"(got min Q={np.min(Q)}, min T={np.min(T)})")
    eps = np.arccos(_rho(R, Q, T)) / math.pi
    return eps[()] if eps.ndim == 0 else eps


def _rho(R, Q, T=1.0):
    """R / sqrt(Q T), clipped to [-1, 1]; 0 where Q == 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(Q > 0, R / np.sqrt(np.where(Q > 0, Q, 1.0) * T), 0.0)
    return np.clip(rho, -1.0, 1.0)


def eps_g_tree_sign(R, Q, T, output="sign"):
    """Generalisation error of a tree machine with sign hidden units on Gaussian inputs.

    Branch k (disjoint inputs, so branches are independent) has student / teacher fields with
    overlaps R_k, Q_k, T_k; its hidden sign disagrees with the teacher's with probability
    p_k = arccos(R_k / sqrt(Q_k T_k)) / pi, independently of the teacher's hidden sign.

    R, Q, T: per-branch overlaps, arrays (..., K) broadcast against each other (for the
    simulator's matrices pass the diagonals, e.g. ``np.diagonal(res.R, axis1=-2, axis2=-1)``).
    output: "parity" -> eps = (1 - prod_k (1 - 2 p_k)) / 2;
            "sign" (majority; sign(0) = +1 as in ``ps.Committee``, so even K is allowed) ->
            eps = P(sign(sum_k tau_k s_k) != sign(sum_k tau_k)), tau_k iid uniform +-1,
            s_k = -1 with probability p_k, computed exactly by a dynamic programme over the
            (teacher, student) vote counts: O(K^3) per stack element, fine up to K ~ 50.
    """
    v.choice("output", output, ("sign", "parity"))
    R, Q, T = np.broadcast_arrays(*(np.atleast_1d(np.asarray(a, dtype=float)) for a in (R, Q, T)))
    if np.any(Q < 0) or np.any(T <= 0):
        raise ValueError("eps_g_tree_sign needs Q >= 0 and T > 0 "
                         f"(got min Q={np.min(Q)}, min T={np.min(T)})")
    p = np.arccos(_rho(R, Q, T)) / math.pi
    if output == "parity":
        eps = 0.5 * (1.0 - np.prod(1.0 - 2.0 * p, axis=-1))
    else:
        eps = _majority_flip_probability(p)
    return eps[()] if eps.ndim == 0 else eps


def _majority_flip_probability(p):
    """P(sgn(sum tau_k s_k) != sgn(sum tau_k)) with sgn(0) = +1, for p (..., K)."""
    K = p.shape[-1]
    n = 2 * K + 1                         # vote sums -K..K, index = sum + K
    P = np.zeros(p.shape[:-1] + (n, n))
    P[..., K, K] = 1.0
    for k in range(K):
        pk = p[..., k][..., None, None]
        P = (0.5 * (1.0 - pk) * (np.roll(P, (1, 1), axis=(-2, -1)) + np.roll(P, (-1, -1), axis=(-2, -1)))
             + 0.5 * pk * (np.roll(P, (1, -1), axis=(-2, -1)) + np.roll(P, (-1, 1), axis=(-2, -1))))
    sums = np.arange(-K, K + 1)
    sgn = np.where(sums >= 0, 1, -1)
    disagree = sgn[:, None] != sgn[None, :]   # [teacher sum, student sum]
    return np.sum(P * disagree, axis=(-2, -1))


# ----------------------------------------------------------------------------------------------
# Saad & Solla ODEs for the soft committee machine with erf(x/sqrt 2) units
# ----------------------------------------------------------------------------------------------

@dataclass
class ODESolution:
    """Solution of the Saad & Solla equations at the requested times.

    alpha: (n,) samples seen / N (the simulator's ``time``); t_ode: (n,) = alpha / batch_size,
    steps / N, the time variable of the equations. eps_g: (..., n); R: (..., n, K, M);
    Q: (..., n, K, K); T: (..., M, M) (constant). "..." are the stack dimensions of the initial
    conditions (e.g. replicas), so the layout matches ``TrainResult``.
    """
    alpha: np.ndarray
    eps_g: np.ndarray
    R: np.ndarray
    Q: np.ndarray
    T: np.ndarray
    t_ode: np.ndarray
    params: dict


def _committee_rhs(Q, R, T, lr, batch_size, noise2, lam, v_s, v_t):
    """Right-hand sides dQ/dt_ode, dR/dt_ode (t_ode = steps / N) for stacked overlaps."""
    K = Q.shape[-1]
    C = np.concatenate([np.concatenate([Q, R], axis=-1),
                        np.concatenate([np.swapaxes(R, -1, -2), T], axis=-1)], axis=-2)
    d = np.diagonal(C, axis1=-2, axis2=-1)            # (..., L)
    dK = d[..., :K]
    w = np.concatenate([-v_s, v_t])                    # sign / weight of each field in (tau - sigma)
    CK = C[..., :K, :]                                 # (..., K, L): rows a in students
    # I3[..., a, b, c], a student, b and c any field
    I3t = I3(dK[..., :, None, None], CK[..., :, :, None], CK[..., :, None, :],
             C[..., None, :, :], d[..., None, None, :])
    A = np.einsum("...abc,c->...ab", I3t, w)           # (..., K, L)
    dR = lr * v_s[:, None] * A[..., :, K:]
    AQ = v_s[:, None] * A[..., :, :K]
    dQ = lr * (AQ + np.swapaxes(AQ, -1, -2))
    # I4[..., a, b, c, d], a and b students, c and d any field
    CKK = C[..., :K, :K]
    I4t = I4(dK[..., :, None, None, None], dK[..., None, :, None, None],
             CKK[..., :, :, None, None],
             CK[..., :, None, :, None], CK[..., :, None, None, :],
             CK[..., None, :, :, None], CK[..., None, :, None, :],
             C[..., None, None, :, :],
             d[..., None, None, :, None], d[..., None, None, None, :])
    noise_term = np.einsum("...abcd,c,d->...ab", I4t, w, w)
    if noise2 > 0:
        noise_term = noise_term + noise2 * I2(dK[..., :, None], dK[..., None, :], CKK)
    dQ = dQ + (lr * lr / batch_size) * np.outer(v_s, v_s) * noise_term
    if lam > 0:
        dR = dR - lam * R
        dQ = dQ - 2.0 * lam * Q
    return dQ, dR


def _rk4_step(f, y, h):
    k1 = f(y)
    k2 = f(tuple(a + 0.5 * h * b for a, b in zip(y, k1)))
    k3 = f(tuple(a + 0.5 * h * b for a, b in zip(y, k2)))
    k4 = f(tuple(a + h * b for a, b in zip(y, k3)))
    return tuple(a + (h / 6.0) * (b1 + 2.0 * b2 + 2.0 * b3 + b4)
                 for a, b1, b2, b3, b4 in zip(y, k1, k2, k3, k4))


def _integrate(f, y0, t_out, dt, step_rule=None):
    """RK4 from t = 0 to each t_out (sorted, >= 0), landing exactly on every output time. The step
    is at most dt (equal sub-steps between outputs), or at most step_rule(t) when given.
    Returns the list of states at t_out."""
    y, t, out = y0, 0.0, []
    for t_next in t_out:
        if step_rule is None:
            n = int(math.ceil((t_next - t) / dt - 1e-9))
            h = (t_next - t) / n if n > 0 else 0.0
            for _ in range(n):
                y = _rk4_step(f, y, h)
        else:
            while t < t_next:
                h = step_rule(t)
                if t + h >= t_next - 1e-12 * max(1.0, t_next):
                    h = t_next - t
                y = _rk4_step(f, y, h)
                t = t_next if h == t_next - t else t + h
        t = t_next
        out.append(y)
    return out


def _integrate_adaptive(f, Q0, R0, t_out, rtol):
    """scipy DOP853 on the flattened (Q, R) state; returns stacked Q (..., n, K, K), R (..., n, K, M)."""
    from scipy.integrate import solve_ivp

    qs, rs = Q0.shape, R0.shape
    nq = Q0.size

    def fun(t, y):
        dQ, dR = f((y[:nq].reshape(qs), y[nq:].reshape(rs)))
        return np.concatenate([dQ.ravel(), dR.ravel()])

    y0 = np.concatenate([Q0.ravel(), R0.ravel()])
    t_end = float(t_out[-1])
    if t_end == 0.0:
        Y = np.repeat(y0[:, None], t_out.size, axis=1)
    else:
        sol = solve_ivp(fun, (0.0, t_end), y0, method="DOP853", t_eval=t_out, rtol=rtol, atol=rtol * 1e-3)
        if not sol.success or sol.y.shape[1] != t_out.size:
            raise RuntimeError(f"Saad-Solla ODE integration failed: {sol.message}")
        Y = sol.y
    Qs = np.moveaxis(Y[:nq].reshape(qs + (t_out.size,)), -1, -3)
    Rs = np.moveaxis(Y[nq:].reshape(rs + (t_out.size,)), -1, -3)
    return Qs, Rs


def _alpha_grid(alpha):
    if alpha is None:
        raise ValueError("alpha=None is not allowed; give the times (samples / N) at which to report")
    a = np.atleast_1d(np.asarray(alpha, dtype=float))
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)) or np.any(a < 0) or np.any(np.diff(a) < 0):
        raise ValueError(f"alpha={alpha!r} must be a non-empty 1-d array of finite, non-decreasing values >= 0")
    return a


def _get(obj, key):
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def saad_solla(K, M, lr, batch_size=1, alpha=None, init=None, T=None, noise=0.0, weight_decay=0.0,
               N=None, dt=0.01, Q0=0.2, R0=1e-3, seed=0,
               second_layer_student=None, second_layer_teacher=None,
               method="rk4", rtol=1e-10) -> ODESolution:
    """Integrate the Saad & Solla ODEs (SCIENCE.md 4.1) for online mini-batch SGD on
    1/2 (sigma - tau)^2 with K student and M teacher erf(x/sqrt 2) units, by RK4.

    lr: the learning rate eta (= ``ps.SGD.lr`` with the package's 1/sqrt(fan-in) scaling).
    batch_size: B fresh samples averaged per step; only the eta^2 (noise) bracket is divided by B.
    alpha: times at which to report, in **samples / N** (the simulator's ``time``), sorted,
        starting from alpha = 0 where the initial conditions hold. The equations run in
        t_ode = alpha / B (steps / N); ``result.t_ode`` holds it.
    init: dict or object with ``Q`` (..., K, K), ``R`` (..., K, M) and optionally ``T`` (..., M, M)
        (e.g. a simulation's measured initial overlaps; leading stack dimensions such as replicas
        are integrated together). A ``TrainResult`` (Q of shape (replicas, records, K, K)) is
        accepted too: its first record is used. Without ``init``: Q = Q0 * I (or Q0 as a (K, K)
        matrix), R = R0 as a (K, M) matrix, or, for scalar R0, R_in iid uniform on [0, R0] drawn
        with ``seed`` (the SCIENCE.md escape protocol: Q0 = 0.2, R0 = 1e-3).
    T: teacher overlaps (M, M), default identity (``init['T']`` takes precedence when given).
    noise: standard deviation s of the teacher's output noise (adds s^2 I2 to the eta^2 bracket).
    weight_decay: PyTorch-style coupled L2 (``ps.SGD.weight_decay``); enters as
        lambda = N * lr * weight_decay (dR -= lambda R, dQ -= 2 lambda Q per unit t_ode), so N is
        required when weight_decay > 0 (see the module docstring).
    method: "rk4" (fixed step, at most ``dt`` in t_ode; halve dt to bound the error) or
        "dop853" (scipy's adaptive 8th-order Runge-Kutta with relative tolerance ``rtol``; much
        faster across long plateaus).
    second_layer_student, second_layer_teacher: fixed read-out weights v (K,), v* (M,), default 1.

    Returns an ``ODESolution``.
    """
    K = v.integer("K", K, 1)
    M = v.integer("M", M, 1)
    lr = v.real("lr", lr, 0, low_open=True)
    B = v.integer("batch_size", batch_size, 1)
    noise = v.real("noise", noise, 0)
    wd = v.real("weight_decay", weight_decay, 0)
    dt = v.real("dt", dt, 0, low_open=True)
    v.choice("method", method, ("rk4", "dop853"))
    rtol = v.real("rtol", rtol, 1e-14, 1e-3)
    a_out = _alpha_grid(alpha)
    if wd > 0:
        if N is None:
            raise ValueError("weight_decay > 0 needs N (the decay rate per unit of alpha is N*lr*weight_decay)")
        N = v.integer("N", N, 1)
    lam = (N * lr * wd) if wd > 0 else 0.0
    v_s = _second_layer("second_layer_student", second_layer_student, K)
    v_t = _second_layer("second_layer_teacher", second_layer_teacher, M)

    if init is not None:
        Qi, Ri, Ti = _get(init, "Q"), _get(init, "R"), _get(init, "T")
        if Qi is None or Ri is None:
            raise ValueError("init must provide Q (..., K, K) and R (..., K, M)")
        Qi, Ri = np.asarray(Qi, dtype=float), np.asarray(Ri, dtype=float)
        if hasattr(init, "time") and Qi.ndim == 4 and Ri.ndim == 4:   # a TrainResult: first record
            Qi, Ri = Qi[:, 0], Ri[:, 0]
        if Ti is None:
            Ti = np.eye(M) if T is None else T
    else:
        Q0a = np.asarray(Q0, dtype=float)
        if Q0a.ndim == 0:
            Q0a = v.real("Q0", float(Q0a), 0, low_open=True) * np.eye(K)
        Qi = Q0a
        R0a = np.asarray(R0, dtype=float)
        if R0a.ndim == 0:
            R0s = v.real("R0", float(R0a))
            R0a = R0s * np.random.default_rng(seed).uniform(size=(K, M))
        Ri = R0a
        Ti = np.eye(M) if T is None else T
    Qi, Ri, Ti, Kq, Mq = _as_overlaps(Qi, Ri, Ti)
    if (Kq, Mq) != (K, M):
        raise ValueError(f"initial overlaps are for K={Kq}, M={Mq} but K={K}, M={M} were given")
    if not (np.all(np.isfinite(Qi)) and np.all(np.isfinite(Ri)) and np.all(np.isfinite(Ti))):
        raise ValueError("initial overlaps Q, R, T must be finite")
    stack = np.broadcast_shapes(Qi.shape[:-2], Ri.shape[:-2], Ti.shape[:-2])
    Qi = np.broadcast_to(Qi, stack + (K, K)).copy()
    Ri = np.broadcast_to(Ri, stack + (K, M)).copy()
    Ti = np.broadcast_to(Ti, stack + (M, M)).copy()

    noise2 = noise * noise
    def f(y):
        return _committee_rhs(y[0], y[1], Ti, lr, B, noise2, lam, v_s, v_t)

    t_out = a_out / B
    with np.errstate(over="ignore", invalid="ignore"):
        if method == "rk4":
            states = _integrate(f, (Qi, Ri), t_out, dt)
            Qs = np.stack([s[0] for s in states], axis=-3)
            Rs = np.stack([s[1] for s in states], axis=-3)
        else:
            Qs, Rs = _integrate_adaptive(f, Qi, Ri, t_out, rtol)
    with np.errstate(invalid="ignore"):
        eps = eps_g_erf_committee(Qs, Rs, Ti[..., None, :, :], v_s, v_t)
    params = dict(K=K, M=M, lr=lr, batch_size=B, noise=noise, weight_decay=wd, N=N,
                  decay_rate=lam, dt=dt, method=method, rtol=rtol)
    return ODESolution(alpha=a_out, eps_g=np.asarray(eps), R=Rs, Q=Qs, T=Ti, t_ode=t_out, params=params)


# ----------------------------------------------------------------------------------------------
# Symmetric plateau
# ----------------------------------------------------------------------------------------------

@dataclass
class PlateauState:
    """Stationary point of the Saad & Solla ODEs on the symmetric (unspecialised) subspace
    R_in = R, Q_ii = Q, Q_ik = C (i != k), for K = M and T = I."""
    eps_g: float
    R: float
    Q: float
    C: float
    residual: float      # max |rhs| at the returned point (t_ode units)
    converged: bool      # the root finder converged and the point is a true fixed point


def plateau(K, lr, batch_size=1, noise=0.0, alpha_relax=None, tol=1e-10) -> PlateauState:
    """Plateau of the realizable K = M soft committee (T = I): integrate the ODE from the exactly
    symmetric state Q = 0.2 I, R_in = 1e-3 (which stays symmetric) for ``alpha_relax`` (in t_ode =
    steps / N, default 200 / lr), then polish with a root finder on the 3-d symmetric system (K = 1 has no
    plateau and is refused). If the root finder fails (no stationary point, e.g. K = M = 2,
    lr = 1), the relaxed state is returned with converged=False."""
    from scipy.optimize import root

    K = v.integer("K", K, 2)
    lr = v.real("lr", lr, 0, low_open=True)
    B = v.integer("batch_size", batch_size, 1)
    noise = v.real("noise", noise, 0)
    t_relax = 200.0 / lr if alpha_relax is None else v.real("alpha_relax", alpha_relax, 0, low_open=True)
    eye = np.eye(K)
    ones = np.ones(K)

    def build(x):
        R, Q, C = x
        return Q * eye + C * (1 - eye), R * np.ones((K, K))

    def sym_rhs(x):
        Qm, Rm = build(x)
        dQ, dR = _committee_rhs(Qm, Rm, eye, lr, B, noise * noise, 0.0, ones, ones)
        return np.array([dR[0, 0], dQ[0, 0], dQ[0, 1]])

    sol = saad_solla(K, K, lr, batch_size=B, alpha=[t_relax * B], noise=noise, method="dop853", rtol=1e-9,
                     init=dict(Q=0.2 * eye, R=1e-3 * np.ones((K, K))))
    Qm, Rm = sol.Q[0], sol.R[0]
    x0 = np.array([Rm[0, 0], Qm[0, 0], Qm[0, 1]])
    res = root(sym_rhs, x0, method="hybr", tol=tol)
    x, ok = (res.x, True) if res.success and np.all(np.isfinite(res.x)) else (x0, False)
    resid = float(np.max(np.abs(sym_rhs(x))))
    ok = ok and resid < 1e-8 and x[1] > 0 and abs(x[2]) <= x[1]
    if not ok:
        x = x0
        resid = float(np.max(np.abs(sym_rhs(x))))
    Qm, Rm = build(x)
    eps = float(eps_g_erf_committee(Qm, Rm, eye))
    return PlateauState(eps_g=eps, R=float(x[0]), Q=float(x[1]), C=float(x[2]), residual=resid, converged=bool(ok))


# ----------------------------------------------------------------------------------------------
# Online perceptron learning curves (SCIENCE.md 4.3)
# ----------------------------------------------------------------------------------------------

PERCEPTRON_RULES = ("hebb", "perceptron", "adatron")


@dataclass
class PerceptronCurve:
    """Online perceptron learning curve. alpha: (n,) samples / N; t_ode = alpha / batch_size
    (steps / N); eps_g, R, Q: (n,) (teacher T = 1)."""
    alpha: np.ndarray
    eps_g: np.ndarray
    R: np.ndarray
    Q: np.ndarray
    t_ode: np.ndarray
    rule: str
    params: dict


def _perceptron_rhs(rule, lr, B):
    """(dR/dt, dQ/dt) at (R, Q), t = steps / N (used near the start, where Q may be 0)."""
    s2pi = math.sqrt(2.0 * math.pi)

    def f(y):
        R, Q = y
        Qp = max(Q, 0.0)
        rho = float(_rho(R, Qp))
        theta = math.acos(rho)
        if rule == "hebb":
            return (lr * math.sqrt(2.0 / math.pi), 2.0 * lr * math.sqrt(2.0 / math.pi) * R + lr * lr / B)
        if rule == "perceptron":
            c = (1.0 - rho) / s2pi
            return (lr * c, -2.0 * lr * math.sqrt(Qp) * c + lr * lr * theta / math.pi / B)
        sq = math.sqrt(max(1.0 - rho * rho, 0.0))
        return (lr * math.sqrt(Qp) * (sq - rho * theta) / math.pi,
                (lr * lr / B - 2.0 * lr) * Qp * (theta - rho * sq) / math.pi)
    return f


def _perceptron_rhs_angle(rule, lr, B):
    """(d theta/dt, d ln Q/dt) with rho = cos(theta) = R / sqrt(Q): the same equations written
    without the cancellation in 1 - rho that limits (R, Q) when eps_g is small."""
    s2pi = math.sqrt(2.0 * math.pi)
    c_h = math.sqrt(2.0 / math.pi)

    def f(t, y):
        th, lq = y
        Q = math.exp(lq)
        sQ = math.sqrt(Q)
        s, c = math.sin(th), math.cos(th)
        one_m_rho = 2.0 * math.sin(0.5 * th) ** 2
        if rule == "hebb":
            dR = lr * c_h
            dQ = 2.0 * lr * c_h * sQ * c + lr * lr / B
        elif rule == "perceptron":
            dR = lr * one_m_rho / s2pi
            dQ = lr * lr * th / (math.pi * B) - 2.0 * lr * sQ * one_m_rho / s2pi
        else:
            dR = lr * sQ * (s - th * c) / math.pi
            dQ = (lr * lr / B - 2.0 * lr) * Q * (th - s * c) / math.pi
        dth = (c * dQ / (2.0 * Q) - dR / sQ) / s
        return (dth, dQ / Q)
    return f


def _perceptron_integrate(rule, lr, B, R0, Q0, t_out, dt, rtol):
    """Phase 1 (t <= 1): RK4 with step dt on (R, Q), which copes with a zero student Q0 = 0.
    Phase 2 (t > 1): scipy DOP853 on (theta, ln Q) with relative tolerance rtol."""
    from scipy.integrate import solve_ivp

    t_s = min(1.0, float(t_out[-1]))
    early = t_out[t_out <= t_s]
    grid = np.concatenate([early, [t_s]])
    states = _integrate(_perceptron_rhs(rule, lr, B), (R0, Q0), grid, dt)
    R = [st[0] for st in states[:-1]]
    Q = [st[1] for st in states[:-1]]
    late = t_out[t_out > t_s]
    if late.size:
        Rs, Qs = states[-1]
        if Qs <= 0:
            raise ValueError(f"Q stayed at 0 up to t = {t_s}; give Q0 > 0 (got Q0={Q0})")
        th0 = math.acos(float(_rho(Rs, Qs)))
        if th0 == 0.0:      # perfect student: a fixed point of every rule
            R += [Rs] * late.size
            Q += [Qs] * late.size
        else:
            sol = solve_ivp(_perceptron_rhs_angle(rule, lr, B), (t_s, float(late[-1])), [th0, math.log(Qs)],
                            method="DOP853", t_eval=late, rtol=rtol, atol=[1e-15, rtol * 1e-2])
            if not sol.success:
                raise RuntimeError(f"perceptron ODE integration failed: {sol.message}")
            th, lq = sol.y
            Qe = np.exp(lq)
            R += list(np.sqrt(Qe) * np.cos(th))
            Q += list(Qe)
    return np.array(R, dtype=float), np.array(Q, dtype=float)


def hebb_closed_form(alpha, lr=1.0, batch_size=1, R0=0.0, Q0=0.0):
    """Exact online Hebb solution (f = sign(u)) with alpha in samples / N, t = alpha / B:
    R = R0 + lr sqrt(2/pi) t,  Q = Q0 + 2 lr sqrt(2/pi) R0 t + lr^2 (2/pi) t^2 + lr^2 t / B.
    Returns (R, Q, eps_g). For R0 = Q0 = 0 the error is independent of lr and B:
    eps_g = arccos(1 / sqrt(1 + pi / (2 alpha))) / pi."""
    a = np.asarray(alpha, dtype=float)
    lr = v.real("lr", lr, 0, low_open=True)
    B = v.integer("batch_size", batch_size, 1)
    t = a / B
    c = math.sqrt(2.0 / math.pi)
    R = R0 + lr * c * t
    Q = Q0 + 2.0 * lr * c * R0 * t + (lr * c * t) ** 2 + lr * lr * t / B
    return R, Q, eps_g_perceptron(R, Q, 1.0)


def perceptron_curve(rule="hebb", alpha=None, lr=1.0, batch_size=1, R0=0.0, Q0=None, dt=0.001,
                     rtol=1e-11, method="ode") -> PerceptronCurve:
    """Learning curve of online learning in the teacher-student perceptron (sign teacher,
    |B|^2 = N, Gaussian inputs), J <- J + (lr / sqrt N) mean_batch(f xi):

        dR/dt = lr E[f u],   dQ/dt = 2 lr E[f lambda] + lr^2 E[f^2] / B,    t = steps / N.

    rule: "hebb" f = sign(u) | "perceptron" f = sign(u) Theta(-lambda u) |
          "adatron" f = |lambda| sign(u) Theta(-lambda u) (all three are -grad of a loss, so lr
          is the SGD learning rate). SCIENCE.md writes the equations for B = 1 with alpha = mu / N.
    alpha: times in **samples / N** (the simulator's ``time``); t = alpha / batch_size.
    batch_size: B fresh examples averaged per step (the lr^2 term is divided by B). In samples / N
        this is exactly B = 1 with learning rate lr / B, so from J = 0 the scale-invariant Hebb and
        perceptron curves do not depend on B (nor on lr); AdaTron's does.
    R0, Q0: initial overlaps (T = 1). Default Q0: 0 for hebb and perceptron (J = 0, a zero
        student; rho is taken as 0 while Q = 0), 1 for adatron (Q = 0 is a fixed point of its
        equations; with R0 = 0 the AdaTron curve does not depend on Q0 since its equations are
        invariant under (R, Q) -> (c R, c^2 Q)).
    dt, rtol: the equations are integrated by RK4 with step dt on (R, Q) up to t = 1 (this copes
        with the zero student), then by scipy's DOP853 with relative tolerance rtol on
        (theta = arccos(R / sqrt Q), ln Q), which keeps eps_g = theta / pi accurate when it is
        small. Halve dt / tighten rtol to bound the integration error.
    method: "ode" (RK4) or "exact" (the closed form, hebb only).
    """
    v.choice("rule", rule, PERCEPTRON_RULES)
    v.choice("method", method, ("ode", "exact"))
    a_out = _alpha_grid(alpha)
    lr = v.real("lr", lr, 0, low_open=True)
    B = v.integer("batch_size", batch_size, 1)
    dt = v.real("dt", dt, 0, 1, low_open=True)
    rtol = v.real("rtol", rtol, 1e-14, 1e-3)
    R0 = v.real("R0", R0)
    if Q0 is None:
        Q0 = 1.0 if rule == "adatron" else 0.0
    Q0 = v.real("Q0", Q0, 0, low_open=(rule == "adatron"))
    if R0 * R0 > Q0 * (1 + 1e-12) and not (Q0 == 0 and R0 == 0):
        raise ValueError(f"R0={R0} and Q0={Q0} violate R0^2 <= Q0 (T = 1)")
    t_out = a_out / B
    params = dict(lr=lr, batch_size=B, R0=R0, Q0=Q0, dt=dt, rtol=rtol, method=method)
    if method == "exact":
        if rule != "hebb":
            raise ValueError(f"method='exact' is only available for rule='hebb' (got rule={rule!r})")
        R, Q, eps = hebb_closed_form(a_out, lr, B, R0, Q0)
        return PerceptronCurve(a_out, np.asarray(eps), R, Q, t_out, rule, params)
    R, Q = _perceptron_integrate(rule, lr, B, R0, Q0, t_out, dt, rtol)
    eps = np.asarray(eps_g_perceptron(R, np.maximum(Q, 0.0), 1.0))
    return PerceptronCurve(a_out, eps, R, Q, t_out, rule, params)


def perceptron_asymptote(rule, alpha, lr=1.0, batch_size=1):
    """Large-alpha generalisation error of the online rules, alpha = samples / N:
    hebb 1/sqrt(2 pi alpha) ~ 0.399 alpha^-1/2; perceptron (2/(3 pi^3))^(1/3) alpha^-1/3 ~ 0.278
    alpha^-1/3 (both lr- and B-independent from J = 0); adatron 3 / (eta (3 - eta) alpha) with
    eta = lr / batch_size in (0, 3) (best eta = 1.5: 4/(3 alpha)). In samples / N a mini-batch of
    B with learning rate lr is exactly B = 1 with lr / B (see ``perceptron_curve``)."""
    v.choice("rule", rule, PERCEPTRON_RULES)
    B = v.integer("batch_size", batch_size, 1)
    a = np.asarray(alpha, dtype=float)
    if np.any(a <= 0):
        raise ValueError(f"alpha={alpha!r} must be > 0")
    if rule == "hebb":
        out = 1.0 / np.sqrt(2.0 * math.pi * a)
    elif rule == "perceptron":
        out = (2.0 / (3.0 * math.pi ** 3)) ** (1.0 / 3.0) * a ** (-1.0 / 3.0)
    else:
        lr = v.real("lr", lr, 0, 3 * B, low_open=True, high_open=True)
        eta = lr / B
        out = 3.0 / (eta * (3.0 - eta) * a)
    return out[()] if out.ndim == 0 else out
