"""The order of a transition (first-order-like or continuous) from the replica distribution of the
order parameter near the critical point.

``transition_order``: bimodality of the replica distribution of the final order parameter near
m_c, a Binder-like cumulant, and whether the jump of the order parameter stays finite with N
(SCIENCE.md 1.5 and 5.5) give a verdict "first-order-like" | "continuous" | "undetermined".

The critical points themselves live in :mod:`analysis.critical` (per-size fits in
:mod:`analysis.sizefits`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import special, stats

from .critical import CriticalPoint
from .sizefits import _cells_by_size, _crossing_monotone, _direction, _pava

__all__ = ["OrderDiagnosis", "transition_order"]


# -------------------------------------------------------------------------- transition order
@dataclass
class OrderDiagnosis:
    """Result of ``transition_order``; per-size arrays aligned with ``sizes``."""
    verdict: str                   # "first-order-like" | "continuous" | "undetermined"
    evidence: list                 # human-readable lines behind the verdict
    sizes: np.ndarray
    x_near: np.ndarray             # control value of the near-critical cell per size
    bimodality: np.ndarray         # Sarle's bimodality coefficient there (> 5/9: bimodal-ish)
    delta_bic: np.ndarray          # BIC(1 Gaussian) - BIC(2 Gaussians): > 0 prefers two modes
    ashman_d: np.ndarray           # separation of the two fitted modes (> 2: clean)
    bimodal: np.ndarray            # bool per size
    binder: dict                   # size -> (controls, U) with U = 1 - <q^4> / (3 <q^2>^2)
    binder_min: np.ndarray         # min over controls of U per size
    jump: np.ndarray               # gap between the two 1-D 2-means clusters at the near-critical cell
    jump_err: np.ndarray
    jump_exponent: float           # jump ~ N^theta
    jump_exponent_err: float
    width: np.ndarray              # interquartile width of <q>(control) per size (fit coordinate)
    width_exponent: float          # width ~ N^-(1/nu_bar)
    votes: dict                    # test -> "first-order" | "continuous" | None
    samples: dict = field(default_factory=dict, repr=False)   # size -> replica values at x_near

    def plot(self, ax=None, kind: str = "binder"):
        """kind="binder": U against the control per size; "histogram": the near-critical
        distributions of the order parameter."""
        from .plots import transition_order_plot
        return transition_order_plot(self, ax=ax, kind=kind)

    def summary(self) -> str:
        return "\n".join([f"transition order: {self.verdict}"] + [f"  - {e}" for e in self.evidence])


def _bimodality_coefficient(v):
    n = len(v)
    if n < 4 or np.ptp(v) == 0:
        return np.nan
    g = stats.skew(v, bias=False)
    kx = stats.kurtosis(v, bias=False)
    return float((g ** 2 + 1) / (kx + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))))


def _two_means(v):
    """Optimal split of sorted 1-D data into two clusters (min within SS); returns (lo, hi) means."""
    s = np.sort(v)
    n = len(s)
    if n < 2 or s[0] == s[-1]:
        return s.mean(), s.mean(), n // 2
    c = np.cumsum(s)
    c2 = np.cumsum(s ** 2)
    i = np.arange(1, n)
    left = c2[:-1] - c[:-1] ** 2 / i
    right = (c2[-1] - c2[:-1]) - (c[-1] - c[:-1]) ** 2 / (n - i)
    j = int(np.argmin(left + right)) + 1
    return s[:j].mean(), s[j:].mean(), j


def _gmm2(v, iters=200):
    """Two-Gaussian mixture by EM (started from the 2-means split). Returns (delta_bic, ashman_d)."""
    n = len(v)
    if n < 6 or np.ptp(v) == 0:
        return np.nan, np.nan
    floor = (1e-3 * np.ptp(v)) ** 2
    var1 = max(v.var(), floor)
    ll1 = np.sum(stats.norm.logpdf(v, v.mean(), np.sqrt(var1)))
    m_lo, m_hi, j = _two_means(v)
    s = np.sort(v)
    mu = np.array([m_lo, m_hi])
    var = np.array([max(s[:j].var(), floor), max(s[j:].var(), floor)])
    pi = np.array([j / n, 1 - j / n])
    for _ in range(iters):
        logp = np.log(pi) + stats.norm.logpdf(v[:, None], mu, np.sqrt(var))
        lse = special.logsumexp(logp, axis=1, keepdims=True)
        r = np.exp(logp - lse)
        nk = r.sum(0) + 1e-12
        mu_new = (r * v[:, None]).sum(0) / nk
        var = np.maximum((r * (v[:, None] - mu_new) ** 2).sum(0) / nk, floor)
        pi = np.clip(nk / n, 1e-6, 1)
        pi /= pi.sum()
        if np.allclose(mu_new, mu, atol=1e-10):
            mu = mu_new
            break
        mu = mu_new
    ll2 = float(lse.sum())
    dbic = (-2 * ll1 + 2 * np.log(n)) - (-2 * ll2 + 5 * np.log(n))
    d = np.sqrt(2) * abs(mu[1] - mu[0]) / np.sqrt(var.sum())
    if pi.min() < 0.05:   # one "mode" of a few outliers is not a second phase
        d = min(d, 2.0)
    return float(dbic), float(d)


def _binder(v):
    m2 = np.mean(v ** 2)
    return 1 - np.mean(v ** 4) / (3 * m2 ** 2) if m2 > 0 else np.nan


def transition_order(table, control: str = "batch_size", size: str = "N", order_parameter: str = "overlap",
                     x_near=None, log_control: bool | None = None, min_replicas: int = 10,
                     bootstrap: int = 200, seed: int = 0) -> OrderDiagnosis:
    """Is the transition first-order-like (coexistence) or continuous?

    Per size, the near-critical control cell is the one nearest ``x_near`` (a CriticalPoint, a
    dict size -> value, or an array aligned with the sorted sizes), by default the cell where the
    replica variance of the order parameter peaks (the susceptibility maximum). Tests:
    bimodality of the replica distribution there (Sarle's coefficient > 5/9, and a two-Gaussian
    mixture preferred by BIC with modes separated by Ashman's D > 2); the Binder-like cumulant
    U = 1 - <q^4>/(3<q^2>^2) across controls (a negative dip that deepens with N is first-order
    lore; U stays >= 0 for a unimodal distribution); and the gap between the two clusters at the
    near-critical cell, jump ~ N^theta (finite for coexisting phases, shrinking for a continuous
    transition). Each test votes; the verdict needs two votes and no contrary one.
    """
    sizes, cells, log_control = _cells_by_size(table, control, size, order_parameter, log_control)
    if cells[0].binary:
        raise ValueError(f"order_parameter={order_parameter!r} is boolean; use a continuous order "
                         "parameter such as 'overlap'")
    rng = np.random.default_rng(seed)
    k = len(sizes)
    near = np.full(k, np.nan)
    bc, dbic, dd, jump, jump_err, bmin, width = (np.full(k, np.nan) for _ in range(7))
    binder, samples = {}, {}
    targets = _targets(x_near, sizes)
    for i, c in enumerate(cells):
        nrep = np.array([len(v) for v in c.values])
        usable = np.flatnonzero(nrep >= min_replicas)
        if len(usable) == 0:
            raise ValueError(f"{size}={sizes[i]:g}: no {control} cell has >= {min_replicas} replicas")
        if targets is not None:
            t = targets[i]
            uu = np.log(t) if log_control else t
            j = usable[np.argmin(np.abs(c.u[usable] - uu))]
        else:
            j = usable[np.argmax([c.values[q].var() for q in usable])]
        v = c.values[j]
        near[i] = c.x[j]
        samples[sizes[i]] = v
        bc[i] = _bimodality_coefficient(v)
        dbic[i], dd[i] = _gmm2(v)
        lo, hi, _ = _two_means(v)
        jump[i] = hi - lo
        bj = []
        for _ in range(bootstrap):
            a, b, _ = _two_means(v[rng.integers(0, len(v), len(v))])
            bj.append(b - a)
        jump_err[i] = max(np.std(bj, ddof=1), 1e-12)
        U = np.array([_binder(c.values[q]) for q in usable])
        binder[sizes[i]] = (c.x[usable], U)
        bmin[i] = np.nanmin(U)
        means = c.means()
        sign = 1.0 if _direction(c.u, means) > 0 else -1.0
        iso = sign * _pava(sign * means, nrep.astype(float))
        lo_m, hi_m = iso.min(), iso.max()
        q25 = _crossing_monotone(c.u, sign * iso, sign * (lo_m + 0.25 * (hi_m - lo_m)))
        q75 = _crossing_monotone(c.u, sign * iso, sign * (lo_m + 0.75 * (hi_m - lo_m)))
        width[i] = abs(q75 - q25)
    bimodal = (bc > 5 / 9) & (dbic > 0) & (dd > 2)

    theta = theta_err = width_exp = np.nan
    if k >= 2 and np.all(jump > 0):
        from .powerlaw import power_law
        pl = power_law(sizes, jump, jump_err, bootstrap=200, seed=seed)
        theta, theta_err = pl.exponent, pl.errors["exponent"]
        okw = np.isfinite(width) & (width > 0)
        if okw.sum() >= 3:
            width_exp = -power_law(sizes[okw], width[okw], bootstrap=200, seed=seed).exponent
        elif okw.sum() == 2:
            width_exp = -np.diff(np.log(width[okw]))[0] / np.diff(np.log(sizes[okw]))[0]
    q_all = np.concatenate([np.concatenate(c.values) for c in cells])
    q_range = np.ptp(q_all) or 1.0

    votes, evidence = {}, []
    # 1. bimodality
    if bimodal[-1] and bimodal.sum() >= max(1, (k + 1) // 2):
        votes["bimodality"] = "first-order"
    elif not bimodal.any():
        votes["bimodality"] = "continuous"
    else:
        votes["bimodality"] = None
    evidence.append("near-critical replica distribution bimodal at " + ", ".join(
        f"{size}={N:g}: {'yes' if b else 'no'} (BC={c_:.2f}, dBIC={d_:.1f}, D={a_:.1f})"
        for N, b, c_, d_, a_ in zip(sizes, bimodal, bc, dbic, dd)))
    # 2. Binder dip
    # deeper at the largest size than at the smallest (the minimum over a few cells is noisy, so
    # strict monotonicity across every pair of sizes is not asked for)
    deepens = k >= 2 and bmin[-1] < -0.1 and bmin[-1] < bmin[0]
    if deepens or (k == 1 and bmin[0] < -0.1):
        votes["binder"] = "first-order"
    elif np.all(bmin > -0.05):
        votes["binder"] = "continuous"
    else:
        votes["binder"] = None
    evidence.append("Binder cumulant minimum " + ", ".join(f"{size}={N:g}: {b:.3g}" for N, b in zip(sizes, bmin)) +
                    (" (negative dip deepening with N)" if deepens else ""))
    # 3. jump
    if np.isfinite(theta):
        if theta - 2 * theta_err > -0.25 and theta > -0.1 and jump[-1] > 0.2 * q_range:
            votes["jump"] = "first-order"
        elif theta + 2 * theta_err < -0.1:
            votes["jump"] = "continuous"
        else:
            votes["jump"] = None
        evidence.append(f"jump of the order parameter at the transition ~ N^theta, theta = {theta:.3g} "
                        f"+- {theta_err:.2g} (largest size: {jump[-1]:.3g}; range of q {q_range:.3g})")
    else:
        votes["jump"] = None
        evidence.append("jump scaling needs >= 2 sizes")
    if np.isfinite(width_exp):
        evidence.append(f"transition width ~ N^(-{width_exp:.3g}) (first-order lore: N^-1; informational)")
    first = sum(v == "first-order" for v in votes.values())
    cont = sum(v == "continuous" for v in votes.values())
    if first >= 2 and cont == 0:
        verdict = "first-order-like"
    elif cont >= 2 and first == 0:
        verdict = "continuous"
    else:
        verdict = "undetermined"
    return OrderDiagnosis(verdict=verdict, evidence=evidence, sizes=sizes, x_near=near, bimodality=bc,
                          delta_bic=dbic, ashman_d=dd, bimodal=bimodal, binder=binder, binder_min=bmin,
                          jump=jump, jump_err=jump_err, jump_exponent=float(theta),
                          jump_exponent_err=float(theta_err), width=width, width_exponent=float(width_exp),
                          votes=votes, samples=samples)


def _targets(x_near, sizes):
    if x_near is None:
        return None
    if isinstance(x_near, CriticalPoint):
        lookup = dict(zip(x_near.sizes.tolist(), x_near.xc.tolist()))
        out = np.array([lookup.get(N, np.nan) for N in sizes.tolist()])
    elif isinstance(x_near, dict):
        out = np.array([x_near.get(N, x_near.get(int(N), np.nan)) for N in sizes.tolist()], float)
    else:
        out = np.asarray(x_near, float)
        if out.shape != sizes.shape:
            raise ValueError(f"x_near has {out.size} values; there are {len(sizes)} sizes")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"x_near has no finite value for some size: {dict(zip(sizes.tolist(), out.tolist()))}")
    return out
