"""Curie-Weiss (mean-field Ising) data with a known transition order (a test fixture, not part of
``analysis``).

Model: N Ising spins, energy E = -M^2 / (2N) - h M with M = sum_i s_i (J = k_B = 1), Metropolis
single-spin flips at temperature T, a site drawn uniformly at random per proposal; one sweep = N
proposals. Only M matters, so the chain is a birth-death chain in the number n of up spins: one
uniform per proposal decides between a flip down, a flip up and no flip, and where flips are rare
the number of proposals until the next one is drawn from its geometric law instead. Both are exact
in law, so a proposal costs O(1) whatever N (``test_curie_weiss_is_exact`` checks P(M)).

Exact anchors (``free_energy``, ``wells``, ``barrier``, ``spinodal``, ``exact_distribution``):
f(m) = -m^2/2 - h m - T s(m), s the binary entropy, P(M) ~ C(N, n) exp(-E/T) exactly at finite N.
- Below T_c = 1 the transition in h at h = 0 is first order: the + and - phases coexist, starts
  at M = +N ("teacher", planted) and M = -N ("minus") disagree between the spinodals +-h_sp(T),
  and the planted phase's lifetime grows as exp(N [f(saddle) - f(m_+)] / T).
- At h = 0 the transition in T at T_c = 1 is continuous: the Binder cumulant of the (symmetric)
  magnetisation is a function of (T - 1) N^(1/2) (nu-bar = 2 in terms of N), with U(T_c) = 1 -
  Gamma(1/4)^4 / (24 pi^2) = 0.2705 in the large-N limit (the distribution exp(-N m^4 / 12)).

Tables (``table``) have physsgd's stationary column names, one row per (cell, replica):
``init`` ("teacher" = all +1, "minus" = all -1, "random" = i.i.d. +-1), ``time_at_teacher``
(fraction of the sweeps in the window at which the system is in the planted state),
``first_passage``, ``first_exit`` (sweeps; -1 = never within the run), ``window_overlap`` and
``window_eps_g`` (window means of q and (1 - q)/2), ``window_start``, ``window_stop``, ``steps``,
``stopped_at`` (= steps), ``stop`` (None), ``overlap`` (final q), ``magnetisation`` (final signed m),
``window_m2``, ``window_m4`` (window means of m^2 and m^4, for the Binder cumulant).
The planted state: q > m0 with q = m (``symmetric=False``: the field breaks the symmetry) or
q = |m| (``symmetric=True``: ordered up to the global spin flip, as "computes the teacher's
function up to the architecture's symmetries").
"""
from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit
from scipy.optimize import brentq
from scipy.special import gammaln

from analysis.table import Table

TC = 1.0
U_TC = 1.0 - math.gamma(0.25) ** 4 / (24 * math.pi ** 2)     # 0.2705..., large-N Binder at T_c
STARTS = ("teacher", "minus", "random")


# ---------------------------------------------------------------------------------- exact theory
def entropy(m):
    """Binary entropy per spin s(m) (nats), s(+-1) = 0."""
    m = np.asarray(m, float)
    p, q = (1 + m) / 2, (1 - m) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return -(np.where(p > 0, p * np.log(p), 0.0) + np.where(q > 0, q * np.log(q), 0.0))


def free_energy(m, T, h):
    """Mean-field free energy per spin f(m) = -m^2/2 - h m - T s(m)."""
    m = np.asarray(m, float)
    return -m ** 2 / 2 - h * m - T * entropy(m)


def _df(m, T, h):
    return -m - h + T * np.arctanh(m)


def spinodal(T):
    """(m_sp, h_sp) of the + phase: it stops being a local minimum of f at h = -h_sp (T < 1)."""
    if not 0 < T < 1:
        raise ValueError(f"T={T}: spinodals exist for 0 < T < 1")
    m = math.sqrt(1 - T)
    return m, m - T * math.atanh(m)


def wells(T, h):
    """Stationary points of f: (m_minus, m_saddle, m_plus); NaN where a well does not exist."""
    eps = 1e-12
    if T >= 1:
        m = brentq(_df, -1 + eps, 1 - eps, args=(T, h))
        return np.nan, np.nan, m
    m_sp, _ = spinodal(T)
    out = []
    for lo, hi in ((-1 + eps, -m_sp), (-m_sp, m_sp), (m_sp, 1 - eps)):
        a, b = _df(lo, T, h), _df(hi, T, h)
        out.append(brentq(_df, lo, hi, args=(T, h)) if a * b < 0 else np.nan)
    return tuple(out)


def barrier(T, h, phase="plus"):
    """Free-energy barrier per spin [f(saddle) - f(well)] of the + (or -) phase; the lifetime of
    the phase grows as exp(N * barrier / T). NaN where the phase is not metastable."""
    m_minus, m_s, m_plus = wells(T, h)
    well = m_plus if phase == "plus" else m_minus
    return float(free_energy(m_s, T, h) - free_energy(well, T, h))


def exact_distribution(N, T, h):
    """Exact P(M) at finite N: (M values, probabilities), M = 2n - N."""
    n = np.arange(N + 1)
    M = 2 * n - N
    logw = gammaln(N + 1) - gammaln(n + 1) - gammaln(N - n + 1) + (M ** 2 / (2 * N) + h * M) / T
    p = np.exp(logw - logw.max())
    return M, p / p.sum()


def exact_binder(N, T, h=0.0):
    M, p = exact_distribution(N, T, h)
    m = M / N
    m2, m4 = np.sum(p * m ** 2), np.sum(p * m ** 4)
    return 1 - m4 / (3 * m2 ** 2)


# ------------------------------------------------------------------------------------ simulator
_SKIP_BELOW = 0.1     # acceptance below which the geometric skip beats one uniform per proposal
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 1.0 / 9007199254740992.0      # 2^-53


@njit(inline="always")
def _uniform(state):
    """splitmix64 step: (new state, uniform in [0, 1)); 20x cheaper than np.random in numba."""
    state = state + _GOLDEN
    z = state
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    return state, float(z >> np.uint64(11)) * _TO_UNIT


@njit(cache=True)
def _run(N, T, h, n0, steps, w0, w1, symmetric, m0, seed, out_f, out_i):
    """One replica. out_f: time_at, window_q, final q, final m, window m^2, window m^4;
    out_i: first_passage, first_exit.

    Per proposal the move is down with probability pd[n], up with pu[n], else none: one uniform
    decides. Where pd + pu < 0.1 the number of proposals until the next move is drawn instead
    (geometric); a draw that overshoots the sweep is discarded at the sweep's end, which is exact
    because the geometric law is memoryless."""
    rs = np.uint64(seed) * _MIX2 + _GOLDEN
    pd = np.zeros(N + 1)     # probability that one proposal flips an up spin down, at n up spins
    pu = np.zeros(N + 1)
    for n in range(N + 1):
        M = 2 * n - N
        dE_down = 2.0 * (M - 1) / N + 2.0 * h
        dE_up = -2.0 * (M + 1) / N - 2.0 * h
        pd[n] = n / N * min(1.0, math.exp(-dE_down / T))
        pu[n] = (N - n) / N * min(1.0, math.exp(-dE_up / T))
    n = n0
    in_window = 0
    sum_q = 0.0
    sum_m2 = 0.0
    sum_m4 = 0.0
    first_passage = -1
    first_exit = -1
    for s in range(steps + 1):
        if s > 0:                    # one sweep: N proposals
            k = 0
            while k < N:
                p = pd[n] + pu[n]
                if p < _SKIP_BELOW:
                    if p <= 0.0:
                        break
                    rs, u = _uniform(rs)
                    k += 1 + int(math.floor(math.log(1.0 - u) / math.log1p(-p)))   # 1 - u in (0, 1]
                    if k > N:
                        break
                    rs, u = _uniform(rs)
                    if u * p < pd[n]:
                        n -= 1
                    else:
                        n += 1
                else:
                    rs, u = _uniform(rs)
                    k += 1
                    if u < pd[n]:
                        n -= 1
                    elif u < p:
                        n += 1
        m = (2.0 * n - N) / N
        q = abs(m) if symmetric else m
        inside = q > m0
        if first_passage < 0 and inside:
            first_passage = s
        elif first_passage >= 0 and first_exit < 0 and not inside:
            first_exit = s
        if s > w0 and s <= w1:
            in_window += 1 if inside else 0
            sum_q += q
            sum_m2 += m * m
            sum_m4 += m * m * m * m
    out_f[0] = in_window / (w1 - w0)
    out_f[1] = sum_q / (w1 - w0)
    out_f[2] = q
    out_f[3] = m
    out_f[4] = sum_m2 / (w1 - w0)
    out_f[5] = sum_m4 / (w1 - w0)
    out_i[0] = first_passage
    out_i[1] = first_exit


def simulate(N, T, h, init, steps, replicas, seed=0, window=None, symmetric=False, m0=0.0):
    """Per-replica observables of one (N, T, h, init) cell as a dict of arrays."""
    if init not in STARTS:
        raise ValueError(f"init={init!r} is not allowed; choose one of {STARTS}")
    w0, w1 = window if window is not None else (steps // 2, steps)
    if not 0 <= w0 < w1 <= steps:
        raise ValueError(f"window={window} must satisfy 0 <= start < stop <= steps={steps}")
    rng = np.random.default_rng([seed, N, replicas])
    f = np.empty((replicas, 6))
    i = np.empty((replicas, 2), np.int64)
    for r in range(replicas):
        n0 = N if init == "teacher" else 0 if init == "minus" else int(rng.binomial(N, 0.5))
        _run(N, float(T), float(h), n0, int(steps), int(w0), int(w1), bool(symmetric), float(m0),
             int(rng.integers(2 ** 31)), f[r], i[r])
    return {"time_at_teacher": f[:, 0], "window_overlap": f[:, 1], "window_eps_g": (1 - f[:, 1]) / 2,
            "overlap": f[:, 2], "magnetisation": f[:, 3], "eps_g": (1 - f[:, 2]) / 2,
            "window_m2": f[:, 4], "window_m4": f[:, 5],
            "first_passage": i[:, 0], "first_exit": i[:, 1], "window_start": np.full(replicas, w0),
            "window_stop": np.full(replicas, w1)}


def table(sizes, controls, control="h", T=0.8, h=0.0, starts=("teacher", "minus"), replicas=32,
          steps=2000, seed=0, symmetric=False, m0=0.0) -> Table:
    """Long-format table over sizes x control values x starts. ``steps``: an int or a dict
    size -> steps (budgets may grow with N)."""
    if control not in ("h", "T"):
        raise ValueError(f"control={control!r}: choose 'h' or 'T'")
    cols: dict[str, list] = {}
    cell = 0
    for N in sizes:
        S = steps[N] if isinstance(steps, dict) else steps
        for x in controls:
            TT, hh = (T, x) if control == "h" else (x, h)
            for start in starts:
                cell += 1
                obs = simulate(N, TT, hh, start, S, replicas, seed=seed * 100_003 + cell,
                               symmetric=symmetric, m0=m0)
                fixed = {"N": N, "T": float(TT), "h": float(hh), "init": start, "steps": S,
                         "stopped_at": S, "task": f"N{N}_{control}{x:g}_{start}"}
                for k, v in fixed.items():
                    cols.setdefault(k, []).extend([v] * replicas)
                cols.setdefault("replica", []).extend(range(replicas))
                for k, v in obs.items():
                    cols.setdefault(k, []).extend(v.tolist())
    t = Table({k: np.asarray(v) for k, v in cols.items()})
    return t.with_column("stop", np.full(len(t), np.nan))   # as analysis.load gives stop=None


# ------------------------------------------------------------------ the test suite's data sets
# Built once per test session (lru_cache): several test modules share them. Never modify them.
H_GRID = tuple(np.round(np.linspace(-0.1, 0.1, 9), 4))
T_GRID = tuple(np.round(np.linspace(0.85, 1.3, 10), 4))
FIELD_T = 0.7          # below T_c: barrier/T = 0.0897 per spin at h = 0, spinodal h_sp = 0.117


@functools.lru_cache(maxsize=None)
def field_driven(seed: int = 1) -> Table:
    """First order: h in [-0.1, 0.1] at T = 0.7, N = 16..128, starts all +1 ("teacher") and all -1
    ("minus"), 2000 sweeps (window: the second half). Lifetimes at h = 0 grow from ~30 sweeps
    (N = 16) beyond the budget (N = 128), where the hysteresis window opens."""
    return table([16, 32, 64, 128], H_GRID, control="h", T=FIELD_T, starts=("teacher", "minus"),
                 replicas=32, steps=2000, seed=seed)


@functools.lru_cache(maxsize=None)
def temperature_driven(seed: int = 0) -> Table:
    """Continuous: T in [0.85, 1.3] at h = 0, N = 16, 64, 256, planted (+1) and random starts, the
    planted state |m| > 0.25 (ordered up to the spin flip), 300 sweeps (>> the relaxation time
    ~ N^(1/2) at T_c)."""
    return table([16, 64, 256], T_GRID, control="T", h=0.0, starts=("teacher", "random"),
                 replicas=100, steps=300, seed=seed, symmetric=True, m0=0.25)


@functools.lru_cache(maxsize=None)
def thin(seed: int = 3) -> Table:
    """Deliberately too little: two small sizes, three fields, six replicas per start."""
    return table([16, 32], (-0.05, 0.0, 0.05), control="h", T=FIELD_T, starts=("teacher", "minus"),
                 replicas=6, steps=200, seed=seed)
