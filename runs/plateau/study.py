"""Plateau escape of online SGD in soft committees versus N: theory, data and figures.

The protocol, the predictions and the claims are in README.md; ``reproduce.py`` runs everything.
This module holds the pieces:

- ``instability``: the unstable eigenvalue lambda (and its multiplicity) of the symmetric plateau
  of the Saad-Solla ODE, from the Jacobian of a short RK4 flow of ``theory.saad_solla``;
- ``load_escapes``: escape times per replica from the sweep's task files;
- ``escape_stats``, ``fit_line``: means, spreads and the weighted fit alpha = a + b ln N;
- ``ode_escapes``: escape times of the noiseless ODE from each replica's own initial overlaps;
- ``trajectories``: eps_g(alpha) of a few replicas (the chain) for the first figure;
- the figures.

Predictions (README.md, "Theory"): on the plateau a perturbation of amplitude A grows as
e^{lambda alpha}; initial overlaps and the SGD noise both give A ~ N^-1/2 with a Gaussian law, so
alpha_esc = c - ln|A| / lambda: the mean grows as ln N / (2 lambda) and the spread tends to an
N-independent constant, sd(ln|Z|) / lambda = pi / (2 sqrt 2) / lambda for a one-dimensional
unstable mode (K = 2).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

import physsgd as ps
from physsgd import store, theory

LR = 0.5
Q0 = 0.2
ALPHA_MAX = {2: 800, 3: 1000}
K_VALUES = (2, 3)


# ------------------------------------------------------------------------------------------
# theory

@dataclass
class Instability:
    K: int
    lr: float
    plateau: theory.PlateauState
    lam: float                 # largest eigenvalue of the Jacobian (per unit alpha)
    multiplicity: int          # eigenvalues within 1e-6 relative of lam
    eigenvalues: np.ndarray    # all, sorted by decreasing real part

    @property
    def slope(self) -> float:
        """Predicted d alpha_esc / d ln N = 1 / (2 lambda) (A ~ N^-1/2)."""
        return 1.0 / (2.0 * self.lam)


def instability(K, lr=LR, h=1e-6, dt=1e-4) -> Instability:
    """Jacobian of the Saad-Solla flow at the symmetric fixed point (theory.plateau), in the
    coordinates (Q_ik for i <= k, R_in), by central differences of one RK4 step of length dt
    (error O(dt) relative): its largest eigenvalue is the escape rate lambda."""
    p = theory.plateau(K, lr)
    eye = np.eye(K)
    Qp, Rp = p.Q * eye + p.C * (1 - eye), p.R * np.ones((K, K))
    iu = np.triu_indices(K)
    nq = len(iu[0])
    n = nq + K * K

    def unpack(x):
        Q = np.zeros((K, K))
        Q[iu] = x[:nq]
        return Q + Q.T - np.diag(np.diag(Q)), x[nq:].reshape(K, K)

    x0 = np.concatenate([Qp[iu], Rp.ravel()])
    X = np.array([x0 + s * h * e for e in np.eye(n) for s in (1.0, -1.0)])
    QR = [unpack(x) for x in X]
    sol = theory.saad_solla(K, K, lr, alpha=[0.0, dt], dt=dt,
                            init=dict(Q=np.array([q for q, _ in QR]), R=np.array([r for _, r in QR])))
    Y = np.array([np.concatenate([sol.Q[i, -1][iu], sol.R[i, -1].ravel()]) for i in range(len(X))])
    F = (Y - X) / dt
    J = np.array([(F[2 * i] - F[2 * i + 1]) / (2 * h) for i in range(n)]).T
    ev = np.linalg.eigvals(J)
    ev = ev[np.argsort(-ev.real)]
    lam = float(ev[0].real)
    mult = int(np.sum(np.abs(ev.real - lam) <= 1e-6 * abs(lam)))
    return Instability(K, lr, p, lam, mult, ev)


def log_amplitude_sd(dim: int) -> float:
    """sd of ln|A| for an isotropic Gaussian A in ``dim`` dimensions: (1/2) sqrt(psi'(dim/2))
    (dim = 1: pi / (2 sqrt 2) = 1.1107)."""
    return 0.5 * math.sqrt(special.polygamma(1, dim / 2.0))


def escape_density(u, dim: int):
    """Density of u = lambda (alpha_esc - <alpha_esc>) if alpha_esc = c - ln|A| / lambda with A
    isotropic Gaussian in ``dim`` dimensions: u = -(v - <v>), v = ln|A| / sigma, |A|^2 / sigma^2 ~
    chi^2_dim, so f(u) = 2 e^{2v} f_chi2(e^{2v}) at v = <v> - u."""
    mean_v = 0.5 * (special.digamma(dim / 2.0) + math.log(2.0))
    v = mean_v - np.asarray(u, float)
    return 2.0 * np.exp(2 * v) * stats.chi2.pdf(np.exp(2 * v), dim)


# ------------------------------------------------------------------------------------------
# data

def load_escapes(out_dir) -> dict:
    """{(K, N): dict(alpha, censored, Q0, R0, T, replicas, wall, budget)} from a sweep's task
    files. alpha: escape time per replica (first probe with eps_g < eps_plateau / 10, in samples
    per N), NaN when the replica was still on the plateau at the budget (censored)."""
    out = {}
    for path in store.task_files(out_dir).values():
        res = ps.load(path)
        run, N = res.params["run"], res.params["student"]["N"]
        K = res.params["student"]["K"]
        m = res.params["algorithm"]["batch_size"]
        fp = res.first_passage
        censored = fp < 0
        alpha = np.where(censored, np.nan, fp * m / N)
        out[(K, N)] = dict(alpha=alpha, censored=censored, Q0=res.Q[:, 0], R0=res.R[:, 0],
                           T=res.T, replicas=res.replicas, wall=res.wall_time,
                           steps=int(res.stopped_at.sum()),
                           budget=run["alpha"], success_eps=run["success_eps"])
    return dict(sorted(out.items()))


def escape_stats(alpha, censored) -> dict:
    """Mean, spread and quantiles of the escape times. With censored replicas the mean and the
    spread are not determined (NaN; the budget was too short) and only quantiles below the
    uncensored fraction are given."""
    n = alpha.size
    c = int(censored.sum())
    a = alpha[~censored]
    res = dict(n=n, censored=c)
    if c == 0 and n >= 2:
        sd = a.std(ddof=1)
        m4 = ((a - a.mean()) ** 4).mean()
        res.update(mean=a.mean(), sem=sd / math.sqrt(n), sd=sd,
                   # se of the sd from that of the variance, sqrt((m4 - s^4) / n) / (2 s); at
                   # least the Gaussian sd / sqrt(2 (n - 1)): with a few replicas the sample
                   # moments can make the first ~0 (3 replicas gave "32.6 ± 0.0")
                   sd_err=max(math.sqrt(max(m4 - sd ** 4, 0.0) / n) / (2 * sd),
                              sd / math.sqrt(2 * (n - 1))))
    else:
        res.update(mean=np.nan, sem=np.nan, sd=np.nan, sd_err=np.nan)
    q = np.sort(np.where(censored, np.inf, alpha))
    res["median"] = float(q[n // 2]) if c < n / 2 else np.nan
    return res


def fit_line(lnN, y, dy) -> dict:
    """Weighted least squares y = a + b ln N; errors from the covariance, multiplied by
    sqrt(chi2/dof) when that exceeds 1 (the scatter then says the errors are too small)."""
    x, y, w = np.asarray(lnN, float), np.asarray(y, float), 1.0 / np.asarray(dy, float) ** 2
    A = np.column_stack([np.ones_like(x), x])
    cov = np.linalg.inv(A.T @ (A * w[:, None]))
    a, b = cov @ (A.T @ (w * y))
    chi2 = float(np.sum(w * (y - a - b * x) ** 2))
    dof = len(x) - 2
    scale = math.sqrt(chi2 / dof) if dof > 0 and chi2 > dof else 1.0
    return dict(a=float(a), b=float(b), da=math.sqrt(cov[0, 0]) * scale,
                db=math.sqrt(cov[1, 1]) * scale, chi2=chi2, dof=dof, scale=scale,
                p=float(stats.chi2.sf(chi2, dof)) if dof > 0 else np.nan, n=len(x))


def ode_escapes(K, Q0, R0, T, threshold, alpha_max, lr=LR, step=0.25) -> np.ndarray:
    """Escape time of the noiseless Saad-Solla ODE from each initial condition (the replicas'
    own initial overlaps), on a grid of ``step`` (linear interpolation of ln eps_g between grid
    points); NaN if not escaped by alpha_max."""
    grid = np.arange(0.0, alpha_max + step / 2, step)
    sol = theory.saad_solla(K, K, lr, alpha=grid, init=dict(Q=Q0, R=R0, T=T), method="dop853",
                            rtol=1e-8)
    out = np.full(len(Q0), np.nan)
    for i, eps in enumerate(sol.eps_g):
        below = np.flatnonzero(eps < threshold)
        if below.size and below[0] > 0:
            j = below[0]
            l0, l1, lt = np.log(eps[j - 1]), np.log(eps[j]), np.log(threshold)
            out[i] = grid[j - 1] + step * (l0 - lt) / (l0 - l1)
    return out


def trajectories(K, N, replicas, seed, alpha_max, points=400, lr=LR):
    """eps_g on a linear alpha grid for a few replicas of the chain (no stop)."""
    net = ps.Committee(N=N, K=K, activation="erf")
    rec = np.unique(np.round(np.linspace(0, alpha_max, points) * N).astype(np.int64))
    res = ps.train(net, net, ps.SGD(lr=lr), ps.Online(), steps=int(rec[-1]), replicas=replicas,
                   seed=seed, init_scale=math.sqrt(Q0), record=rec, engine="overlaps",
                   probe_every=int(rec[-1]))
    return res.time, res.eps_g


# ------------------------------------------------------------------------------------------
# figures

def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    _plt().close(fig)
    return path


def figure_trajectories(traj, inst, path):
    """eps_g(alpha): chain replicas at several N, the plateau and the escape threshold."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(traj), figsize=(6 * len(traj), 4.3), squeeze=False)
    for ax, K in zip(axes[0], sorted(traj)):
        cmap = plt.get_cmap("viridis")
        Ns = sorted(traj[K])
        for i, N in enumerate(Ns):
            alpha, eps = traj[K][N]
            for r, e in enumerate(eps):
                ax.semilogy(alpha, e, color=cmap(i / max(len(Ns) - 1, 1)), lw=0.8, alpha=0.8,
                            label=f"$N = 10^{{{round(math.log10(N))}}}$" if r == 0 else None)
        p = inst[K].plateau.eps_g
        ax.axhline(p, color="k", ls="--", lw=0.8, label=r"plateau $\epsilon_g^*$ (ODE fixed point)")
        ax.axhline(p / 10, color="r", ls=":", lw=0.8, label=r"escape threshold $\epsilon_g^*/10$")
        ax.set_xlabel(r"$\alpha$ = samples / $N$")
        ax.set_ylabel(r"$\epsilon_g$")
        ax.set_ylim(max(1e-6, p / 1e3), 1.0)
        ax.set_title(f"$K = M = {K}$, $\\eta = {inst[K].lr}$: exact overlap chain, "
                     f"{len(traj[K][Ns[0]][1])} replicas per $N$")
        ax.legend(fontsize=7, loc="lower left")
    return _save(fig, path)


def figure_escape_vs_N(summary, fits, inst, path):
    """Mean escape time vs N with the weighted fit and the predicted slope; spread vs N."""
    plt = _plt()
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = {2: "C0", 3: "C1"}
    for K in sorted(summary):
        rows = summary[K]
        N = np.array([r["N"] for r in rows], float)
        ok = np.array([np.isfinite(r["mean"]) for r in rows])
        mean = np.array([r["mean"] for r in rows])
        sem = np.array([r["sem"] for r in rows])
        ax.errorbar(N[ok], mean[ok], yerr=sem[ok], fmt="o", color=colors[K], capsize=3,
                    label=f"K = {K}: chain (mean $\\pm$ s.e.)")
        ode = np.array([r.get("ode_mean", np.nan) for r in rows])
        if np.any(np.isfinite(ode)):
            ax.plot(N, ode, "x", color=colors[K], ms=7,
                    label=f"K = {K}: noiseless ODE from the replicas' initial overlaps")
        f = fits.get(K)
        xs = np.geomspace(N.min(), N.max(), 50)
        if f is not None:
            ax.plot(xs, f["a"] + f["b"] * np.log(xs), "-", color=colors[K], lw=1,
                    label=f"K = {K}: fit $a + b\\,\\ln N$ ($N \\geq 10^{{{round(math.log10(f['N_min']))}}}$): "
                          f"$b = {f['b']:.1f} \\pm {f['db']:.1f}$, $\\chi^2$/dof = {f['chi2']:.1f}/{f['dof']}")
            x_mid = np.exp(np.mean(np.log(N[ok][N[ok] >= f["N_min"]])))
            y_mid = f["a"] + f["b"] * math.log(x_mid)
        else:
            x_mid = np.exp(np.mean(np.log(N[ok])))
            y_mid = float(np.interp(math.log(x_mid), np.log(N[ok]), mean[ok]))
            ax.plot([], [], " ", label=f"K = {K}: fit not determined (fewer than 3 sizes "
                                        f"with $N \\geq 10^3$ and no censored replica)")
        ax.plot(xs, y_mid + inst[K].slope * (np.log(xs) - math.log(x_mid)), "--", color=colors[K],
                lw=1, label=f"K = {K}: predicted slope $1/(2\\lambda) = {inst[K].slope:.1f}$ (no free parameter)")
        for r in rows:
            if not np.isfinite(r["mean"]):
                y = r["median"] if np.isfinite(r.get("median", np.nan)) else ALPHA_MAX[K]
                ax.plot([r["N"]], [y], "^" if np.isfinite(r.get("median", np.nan)) else "v",
                        mfc="none", color=colors[K])
                ax.annotate(f"K = {K}: mean not determined\n({r['censored']} of {r['n']} censored; "
                            + ("median shown)" if np.isfinite(r.get("median", np.nan)) else "budget shown)"),
                            (r["N"], y), fontsize=7, color=colors[K])
        sd = np.array([r["sd"] for r in rows])
        sd_err = np.array([r["sd_err"] for r in rows])
        ax2.errorbar(N[ok], sd[ok], yerr=sd_err[ok], fmt="o-", color=colors[K], capsize=3,
                     label=f"K = {K}: chain")
        ode_sd = np.array([r.get("ode_sd", np.nan) for r in rows])
        if np.any(np.isfinite(ode_sd)):
            ax2.plot(N, ode_sd, "x:", color=colors[K],
                     label=f"K = {K}: noiseless ODE from the same initial overlaps")
        dim = inst[K].multiplicity
        pred = log_amplitude_sd(dim) / inst[K].lam
        ax2.axhline(pred, color=colors[K], ls="--" if dim == 1 else ":", lw=1,
                    label=f"K = {K}: $N\\to\\infty$ prediction $\\pi/(2\\sqrt{{2}}\\,\\lambda)$ (1-dim unstable mode)"
                    if dim == 1 else
                    f"K = {K}: isotropic {dim}-dim amplitude, reference only (linear theory does not give it)")
    ax.set_xscale("log")
    ax.set_xlabel("$N$")
    ax.set_ylabel(r"escape time $\alpha_{\rm esc}$")
    ax.set_title(r"mean escape time from the plateau ($\epsilon_g < \epsilon_g^*/10$), $\eta = 0.5$")
    ax.legend(fontsize=7)
    ax2.set_xscale("log")
    ax2.set_xlabel("$N$")
    ax2.set_ylabel(r"spread sd($\alpha_{\rm esc}$)")
    ax2.set_title("replica-to-replica spread of the escape time")
    top = max(np.nanmax([r["sd"] + r["sd_err"] for rows in summary.values() for r in rows]),
              max(log_amplitude_sd(i.multiplicity) / i.lam for i in inst.values()))
    ax2.set_ylim(0, 1.75 * top)          # the legend above the data, every reference line visible
    ax2.legend(fontsize=7, loc="upper center")
    return _save(fig, path)


def law_size(data, K, n_min=1000):
    """The size whose escape times test the law of lambda (alpha_esc - mean): the law is the same
    at every N, so the N >= n_min (the ln N regime) with all replicas escaped and the most of them."""
    Ns = [N for k, N in data if k == K and not data[(k, N)]["censored"].any()]
    big = [N for N in Ns if N >= n_min] or Ns
    return max(big, key=lambda N: (data[(K, N)]["replicas"], N))


def figure_distribution(data, inst, path):
    """Histogram of lambda (alpha_esc - mean) at the largest N with all replicas escaped,
    against the Gaussian-amplitude prediction."""
    plt = _plt()
    Ks = sorted({K for K, _ in data})
    fig, axes = plt.subplots(1, len(Ks), figsize=(6 * len(Ks), 4.2), squeeze=False)
    for ax, K in zip(axes[0], Ks):
        N = law_size(data, K)
        a = data[(K, N)]["alpha"]
        u = inst[K].lam * (a - a.mean())
        ax.hist(u, bins=max(8, min(40, int(2 * a.size ** (1 / 3)))), density=True, alpha=0.6, label=f"chain, $N = 10^{{{round(math.log10(N))}}}$, "
                f"{a.size} replicas")
        us = np.linspace(u.min() - 1, u.max() + 1, 300)
        dim = inst[K].multiplicity
        ax.plot(us, escape_density(us, dim), "k-",
                label=f"$-\\ln|A|$, $A$ isotropic Gaussian in {dim} dim" + (" (reference only)" if dim > 1 else
                                                                   " (no free parameter)"))
        ax.set_xlabel(r"$\lambda\,(\alpha_{\rm esc} - \langle\alpha_{\rm esc}\rangle)$")
        ax.set_ylabel("density")
        ax.set_title(f"$K = M = {K}$: law of the escape time ($\\lambda = {inst[K].lam:.4f}$)")
        ax.legend(fontsize=7)
    return _save(fig, path)
