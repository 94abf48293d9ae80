"""Edge of chaos (Zhang, Feng, Chen & Lai 2021, SCIENCE.md section 3): experiments and analysis.

A. Chaos probe of random square layers x <- tanh(W x) (``physsgd.chaos``): lambda_1(J), the
   finite-size onset of chaos J_c(N) and its extrapolation, a lambda_1 map over (J0/J, 1/J).
B. The paper's network (``mlp.py``: square tanh hidden layer, trained softmax read-out, SGD with
   momentum and weight decay, PyTorch conventions) on scikit-learn's bundled digits (the stand-in
   for Fashion-MNIST; ``fashion_mnist.py`` loads the real files for users who have them):
   * phase sweep: the initial J across the order-chaos boundary, fixed hyper-parameters;
   * scaling relation: groups of equal scale factor s = lr / ((1 - momentum) B) whose members
     differ in lr by 16x (B = 8, 32, 128 and momentum 0.9), started in the ordered (J = 0.5) and
     in the chaotic (J = 2) phase, at s from the small-step limit to where the collapse breaks;
   * weight decay from both phases.
Exponents are fitted with ``analysis.power_law``; their statistical errors are multiplied by
sqrt(chi2/dof) when chi2/dof > 1.
"""
from __future__ import annotations

import json
import math
import os
import time

import numpy as np

import analysis as an
from analysis import plots
from physsgd import chaos

import mlp

LAMBDA_MIN = 1e-3          # lambda_1 above this counts as chaotic (regular orbits: |lambda| ~ 1/steps)
J2_EDGE = 0.81             # the ordered window ends where the reference run reaches J = 0.9
COLLAPSE_TOL = 0.05        # an equal-s group collapses if every member is within 5% of the reference
MEMBERS = ((8, 0.0), (32, 0.0), (128, 0.0), (32, 0.9))      # (B, momentum) of an equal-s group

SCALES = {
    "small": dict(sizes=(50, 100, 200, 400), samples=(16, 12, 8, 6),
                  J=np.round(np.arange(0.8, 2.01, 0.1), 3), steps=1500, burn=500,
                  map_N=100, map_grid=11, map_samples=2,
                  reps=6, sweep_J=(0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0), sweep_epochs=100,
                  s=(1 / 200, 1 / 100, 1 / 50, 1 / 12.5),
                  s_edge=(1 / 800, 1 / 400, 1 / 200, 1 / 100, 1 / 50, 1 / 25, 1 / 12.5),
                  decay=(0.0, 1e-4, 1e-3, 1e-2), decay_epochs=60, decay_reps=4),
    "full": dict(sizes=(100, 200, 400, 800), samples=(24, 16, 12, 8),
                 J=np.round(np.arange(0.8, 2.01, 0.05), 3), steps=3000, burn=1000,
                 map_N=200, map_grid=16, map_samples=2,
                 reps=12, sweep_J=(0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 2.5, 3.0),
                 sweep_epochs=150, s=(1 / 200, 1 / 100, 1 / 50, 1 / 25, 1 / 12.5),
                 s_edge=(1 / 1600, 1 / 800, 1 / 400, 1 / 200, 1 / 100, 1 / 50, 1 / 25, 1 / 12.5),
                 decay=(0.0, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2), decay_epochs=100, decay_reps=8),
}
SWEEP_OPT = mlp.SGD(lr=0.1, batch_size=32)              # s = 1/320; the paper's default B = 32
T_EDGE_COEF = 0.14        # t_edge ~ 0.14 / s epochs from J = 0.5 on digits (measured; sets run lengths)


def log(msg):
    print(msg, flush=True)


# ------------------------------------------------------------------------------------ fits
def fit_power(x, y, dy):
    """analysis.power_law with the exponent's statistical error scaled by sqrt(chi2/dof) when
    chi2/dof > 1: (exponent, total error, birge factor, PowerLawFit) or None."""
    x, y, dy = (np.asarray(v, float) for v in (x, y, dy))
    ok = np.isfinite(x) & (x > 0) & np.isfinite(y) & (y > 0) & np.isfinite(dy) & (dy > 0)
    if ok.sum() < 3:
        return None
    f = an.power_law(x[ok], y[ok], dy[ok])
    birge = math.sqrt(f.chi2 / f.dof) if f.dof > 0 and f.chi2 > f.dof else 1.0
    err = math.hypot(f.stat_errors["exponent"] * birge, f.sys_errors["exponent"])
    return dict(b=f.exponent, err=err, birge=birge, chi2=f.chi2, dof=f.dof, fit=f)


def fmt_fit(f, digits=2):
    if f is None:
        return "not determined (fewer than 3 usable points)"
    s = f"{f['b']:.{digits}f} ± {f['err']:.{digits}f}"
    if f["birge"] > 1:
        s += f" (χ²/dof = {f['chi2']:.1f}/{f['dof']}: stat. error × {f['birge']:.1f})"
    return s


def _colors(n):
    import matplotlib.pyplot as plt
    return plt.cm.viridis(np.linspace(0.0, 0.85, max(n, 1)))


def _save(fig, path, title):
    import matplotlib.pyplot as plt
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    plots.savefig(fig, path, dpi=100)
    plt.close(fig)


def _finish(ax, xlabel, ylabel, title, legend=True):
    from matplotlib.ticker import NullFormatter
    ax.set_xlabel(xlabel), ax.set_ylabel(ylabel), ax.set_title(title, fontsize=9)
    for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
        if scale == "log":
            axis.set_minor_formatter(NullFormatter())
    if legend:
        ax.legend(fontsize=6, frameon=False)


# ------------------------------------------------------------------------------------ A. chaos
def chaos_probe(cfg, out):
    path = os.path.join(out, "chaos.npz")
    if os.path.exists(path):
        d = np.load(path, allow_pickle=True)
        return {k: d[k] for k in d.files}
    t0 = time.perf_counter()
    rows = []
    for N, S in zip(cfg["sizes"], cfg["samples"]):
        t1 = time.perf_counter()
        for J in cfg["J"]:
            for s in range(S):
                W = chaos.random_layer(N, J, 0.0, seed=s)
                rows.append((N, J, s, chaos.lyapunov(W, steps=cfg["steps"], burn=cfg["burn"], seed=s)))
        log(f"  chaos probe N={N}: {S} samples x {len(cfg['J'])} J in {time.perf_counter() - t1:.0f} s")
    rows = np.array(rows)
    g = cfg["map_grid"]
    ratio, invJ = np.linspace(-0.5, 2.0, g), np.linspace(0.4, 2.0, g)
    lam_map = np.zeros((g, g))
    for i, iJ in enumerate(invJ):
        for j, r in enumerate(ratio):
            J = 1.0 / iJ
            lam_map[i, j] = np.mean([chaos.lyapunov(chaos.random_layer(cfg["map_N"], J, r * J, seed=s),
                                                    steps=cfg["steps"] // 2, burn=cfg["burn"], seed=s)
                                     for s in range(cfg["map_samples"])])
    res = dict(N=rows[:, 0].astype(int), J=rows[:, 1], sample=rows[:, 2].astype(int), lam=rows[:, 3],
               map_ratio=ratio, map_invJ=invJ, map_lam=lam_map, map_N=cfg["map_N"],
               seconds=time.perf_counter() - t0)
    np.savez(path, **res)
    return res


def analyse_chaos(d, figdir, summary):
    N, J, lam = d["N"], d["J"], d["lam"]
    chaotic = lam > LAMBDA_MIN
    sizes = np.unique(N)
    out = {}
    fig, axes = plots.new_axes(2, 1)
    Jf = np.linspace(J.min(), J.max(), 200)
    axes[0].plot(Jf, [chaos.mean_field_lyapunov(x) for x in Jf], "k--", lw=1, label="mean field")
    for c, L in zip(_colors(len(sizes)), sizes):
        m = N == L
        Js = np.unique(J[m])
        mu = [lam[m & (J == x)].mean() for x in Js]
        se = [lam[m & (J == x)].std(ddof=1) / math.sqrt((m & (J == x)).sum()) for x in Js]
        axes[0].errorbar(Js, mu, se, color=c, marker="o", ms=3, lw=1, label=f"N={L}")
        axes[1].plot(Js, [chaotic[m & (J == x)].mean() for x in Js], color=c, marker="o", ms=3,
                     lw=1, label=f"N={L}")
    axes[0].axhline(0, color="0.6", lw=0.6)
    for ax in axes:
        ax.axvline(1, color="0.6", lw=0.6)
    _finish(axes[0], "$J = \\sqrt{N}\\,\\mathrm{std}(W)$", r"$\lambda_1$",
            r"largest Lyapunov exponent of $x \to \tanh(Wx)$, $J_0 = 0$")
    _finish(axes[1], "$J$", r"$P(\lambda_1 > 10^{-3})$", "fraction of chaotic layers")
    plots.savefig(fig, os.path.join(figdir, "lyapunov_vs_J.png"), dpi=110)
    table = {"J": J, "N": N.astype(float), "chaotic": chaotic}
    try:
        cp = an.critical_point(table, control="J", size="N", observable="chaotic", bootstrap=200,
                               log_control=False)
        out["cp"] = cp
        summary.append("critical point of P(chaotic) = 1/2:\n" + cp.summary())
        fig, ax = plots.new_axes()
        cp.plot(ax)
        ax.set_title("onset of chaos $J_c(N)$ where $P(\\lambda_1 > 10^{-3}) = 1/2$, extrapolated",
                     fontsize=9)
        e_inf = cp.errors.get("xc_inf", np.nan)
        if not np.isfinite(e_inf) or e_inf > 0.25:
            ax.text(0.2, 0.93, f"$J_c(\\infty)$ not determined at N ≤ {int(max(cp.sizes))} "
                    f"(± {e_inf:.2g})", transform=ax.transAxes, fontsize=8, color="C3")
        plots.savefig(fig, os.path.join(figdir, "chaos_Jc_extrapolation.png"), dpi=110)
    except Exception as e:          # noqa: BLE001 - report and go on
        summary.append(f"critical_point on P(chaotic) failed: {e}")
    x, y, dy, L = [], [], [], []
    for Lk in sizes:
        for xv in np.unique(J[N == Lk]):
            m = (N == Lk) & (J == xv)
            n, k = m.sum(), chaotic[m].sum()
            p = (k + 0.5) / (n + 1.0)            # Jeffreys-like estimate keeps dy > 0 at 0 and 1
            x.append(xv), y.append(chaotic[m].mean()), dy.append(math.sqrt(p * (1 - p) / n)), L.append(Lk)
    try:
        fit = an.collapse(np.array(L, float), np.array(x), np.array(y), np.array(dy), xc=1.1, nu=2.0,
                          fixed={"zeta": 0.0}, bootstrap=100, systematics=True)
        out["collapse"] = fit
        summary.append("collapse of P(chaotic):\n" + fit.summary())
        fig, ax = plots.new_axes()
        fit.plot(ax)
        ax.set_title("finite-size collapse of $P(\\lambda_1 > 10^{-3})$", fontsize=9)
        plots.savefig(fig, os.path.join(figdir, "chaos_collapse.png"), dpi=110)
    except Exception as e:          # noqa: BLE001
        summary.append(f"collapse of P(chaotic) failed: {e}")
    fig, ax = plots.new_axes()
    r, iJ, lm = d["map_ratio"], d["map_invJ"], d["map_lam"]
    lim = np.nanmax(np.abs(lm))
    pc = ax.pcolormesh(r, iJ, lm, cmap="RdBu_r", vmin=-min(lim, 0.3), vmax=min(lim, 0.3), shading="nearest")
    ax.contour(r, iJ, lm, levels=[LAMBDA_MIN], colors="k", linewidths=1)
    ax.figure.colorbar(pc, ax=ax, label=r"$\lambda_1$")
    _finish(ax, "$J_0/J$", "$1/J$", f"random tanh layers, N = {int(d['map_N'])}; "
            "black: $\\lambda_1 = 10^{-3}$", legend=False)
    plots.savefig(fig, os.path.join(figdir, "phase_diagram.png"), dpi=110)
    m = N == sizes.max()
    out["lam_below"] = lam[m & (J < 0.95)].max()
    out["lam_above"] = lam[m & (J > 1.25)].min()
    out["N_max"] = int(sizes.max())
    return out


# ------------------------------------------------------------------------------------ B. data
def digits_data(seed=0, test_fraction=0.2):
    """scikit-learn's bundled digits: 8x8 = 64 inputs, 10 classes; a fixed random split, every
    pixel standardised with the training split's mean and std (constant pixels -> 0). None
    without scikit-learn."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return None
    X, t = load_digits(return_X_y=True)
    return split_standardise(X.astype(float), t.astype(np.int64), seed, test_fraction)


def split_standardise(X, t, seed=0, test_fraction=0.2):
    perm = np.random.default_rng(seed).permutation(len(t))
    n_test = int(round(test_fraction * len(t)))
    te, tr = perm[:n_test], perm[n_test:]
    mu, sd = X[tr].mean(0), X[tr].std(0)
    sd = np.where(sd > 0, sd, 1.0)
    return (X[tr] - mu) / sd, t[tr], (X[te] - mu) / sd, t[te]


def run(data, opt, epochs, J, reps, seed=0, record_every=1.0):
    """One configuration, ``reps`` replicas: the curves as lists (JSON) plus the final lambda_1."""
    X, y, Xt, yt = data
    t0 = time.perf_counter()
    r = mlp.train(X, y, opt, epochs, J, replicas=reps, seed=seed, Xtest=Xt, ytest=yt,
                  record_every=record_every)
    W = r["params"]["W"]
    lam = [chaos.lyapunov(W[i], steps=600, burn=300, seed=i) if np.all(np.isfinite(W[i]))
           else np.nan for i in range(reps)]
    return dict(lr=opt.lr, B=opt.batch_size, m=opt.momentum, wd=opt.weight_decay, s=opt.scale,
                J_init=J, N=int(X.shape[1]), C=int(max(y.max(), yt.max()) + 1), epochs=r["epochs"].tolist(), J=r["J"].tolist(), J0=r["J0"].tolist(),
                train_loss=r["train_loss"].tolist(), test_loss=r["test_loss"].tolist(),
                test_acc=r["test_acc"].tolist(), diverged=r["diverged"].tolist(), lam=lam,
                seconds=time.perf_counter() - t0)


def initial_lyapunov(N, J, reps, seed=0, C=10):
    """lambda_1 of the initial hidden layers of ``run`` (same seeds): is the start ordered or chaotic
    at this finite N?"""
    W = mlp.init_params(N, C, J, reps, seed)["W"]
    return np.array([chaos.lyapunov(W[i], steps=600, burn=300, seed=i) for i in range(reps)])


def experiments(name, data, cfg, out):
    """The three experiments on one data set; cached in ``out/<name>.json`` run by run."""
    path = os.path.join(out, f"{name}.json")
    runs = json.load(open(path)) if os.path.exists(path) else {}

    def get(key, *args, **kw):
        if key not in runs:
            runs[key] = run(data, *args, **kw)
            r = runs[key]
            log(f"  {name} {key}: J {np.nanmean(np.array(r['J'])[:, 0]):.2f} -> "
                f"{np.nanmean(np.array(r['J'])[:, -1]):.3f}, test acc "
                f"{np.nanmean(np.array(r['test_acc'])[:, -1]):.3f} ({r['seconds']:.0f} s)")
            json.dump(runs, open(path + ".tmp", "w"))
            os.replace(path + ".tmp", path)
        return runs[key]

    reps = cfg["reps"]
    res = {"sweep": [], "groups": [], "decay": [], "edge": []}
    for J in cfg["sweep_J"]:
        res["sweep"].append(get(f"sweep J={J}", SWEEP_OPT, cfg["sweep_epochs"], J, reps))
    for s in cfg["s"]:
        epochs = max(2, int(math.ceil(1.5 * T_EDGE_COEF / s)))
        for J in (0.5, 2.0):
            for B, m in MEMBERS:
                opt = mlp.SGD(lr=s * (1 - m) * B, batch_size=B, momentum=m)
                res["groups"].append(get(f"group s={s:.6g} J={J} B={B} m={m}", opt, epochs, J, reps,
                                         record_every=epochs / 60))
    B, m = MEMBERS[0]
    for s in cfg["s_edge"]:              # the training time to the edge: reference members only
        epochs = max(2, int(math.ceil(1.5 * T_EDGE_COEF / s)))
        opt = mlp.SGD(lr=s * (1 - m) * B, batch_size=B, momentum=m)
        res["edge"].append(get(f"group s={s:.6g} J=0.5 B={B} m={m}", opt, epochs, 0.5, reps,
                               record_every=epochs / 60))
    for J in (0.5, 2.0):
        for wd in cfg["decay"]:
            opt = mlp.SGD(lr=SWEEP_OPT.lr, batch_size=SWEEP_OPT.batch_size, weight_decay=wd)
            res["decay"].append(get(f"decay J={J} wd={wd}", opt, cfg["decay_epochs"], J,
                                    cfg["decay_reps"]))
    return res


# ------------------------------------------------------------------------------------ B. analysis
def arr(r, k):
    return np.array(r[k], float)


def mean_sem(a, axis=0):
    a = np.asarray(a, float)
    n = np.isfinite(a).sum(axis)
    m = np.nanmean(a, axis)
    se = np.nanstd(a, axis, ddof=1) / np.sqrt(np.maximum(n, 1))
    return m, se


def at_epoch(r, t):
    """ΔJ²(t) = J²(t) - J²(0) per replica, linear interpolation between records."""
    J2 = arr(r, "J") ** 2
    ep = arr(r, "epochs")
    return np.array([np.interp(t, ep, j) for j in J2]) - J2[:, 0]


def edge_time(r, level=J2_EDGE):
    """Epoch at which the replica-mean J² first reaches ``level`` (linear interpolation); NaN if never."""
    J2 = np.nanmean(arr(r, "J") ** 2, 0)
    ep = arr(r, "epochs")
    i = np.flatnonzero(J2 >= level)
    if len(i) == 0 or i[0] == 0:
        return np.nan
    i = i[0]
    return float(np.interp(level, J2[i - 1:i + 1], ep[i - 1:i + 1]))


def group_analysis(groups):
    """Per (s, start): the reference member (B = 8, m = 0: the smallest step), the comparison epoch t_c (where the
    ordered start's reference reaches J = 0.9; the same epoch for the chaotic start), and every
    member's relative deviation D = ΔJ²(t_c)/ΔJ²_ref(t_c) - 1 with its error."""
    out = []
    svals = sorted({round(g["s"], 12) for g in groups})

    def is_ref(g):
        return (g["B"], g["m"]) == MEMBERS[0]
    for s in svals:
        gs = [g for g in groups if round(g["s"], 12) == s]
        ref_o = next(g for g in gs if g["J_init"] == 0.5 and is_ref(g))
        tc = edge_time(ref_o)
        if not np.isfinite(tc):
            tc = float(arr(ref_o, "epochs")[-1])
        for J in (0.5, 2.0):
            mem = sorted((g for g in gs if g["J_init"] == J), key=lambda g: g["lr"] / (1 - g["m"]))
            ref = next(g for g in mem if is_ref(g))
            d_ref = at_epoch(ref, tc)
            mr, er = mean_sem(d_ref)
            rows = []
            for g in mem:
                d = at_epoch(g, tc)
                m, e = mean_sem(d)
                D = m / mr - 1
                De = abs(m / mr) * math.hypot(e / m if m else 0, er / mr) if g is not ref else 0.0
                rows.append(dict(lr=g["lr"], lr_eff=g["lr"] / (1 - g["m"]), B=g["B"], m=g["m"],
                                 dJ2=m, dJ2_err=e, D=D, D_err=De,
                                 diverged=int(np.sum(g["diverged"]))))
            out.append(dict(s=s, J_init=J, t_c=tc, ref_lr=ref["lr"] / (1 - ref["m"]), members=rows,
                            Dmax=max(abs(r["D"]) for r in rows),
                            collapse=all(abs(r["D"]) <= COLLAPSE_TOL or abs(r["D"]) <= 2 * r["D_err"]
                                         for r in rows)))
    return out


def small_step_range(x, y, dy, p_min=0.05):
    """The widest range of the smallest x (at least 3 points) on which one power law fits
    (chi2 p-value >= p_min): the small-step regime, before discreteness bends the law."""
    n = len(x)
    hi = None
    for j in range(3, n + 1):
        f = an.power_law(x[:j], y[:j], dy[:j])
        if f.pvalue < p_min:
            break
        hi = j
    return hi


def scaling_fits(edge):
    """The training-time scaling of the ordered phase: t_edge (epochs from J = 0.5 to J = 0.9)
    against s for the reference member, fitted on the small-step range (``small_step_range``);
    and the growth exponent beta of ΔJ² ~ t^beta in the ordered window, per s."""
    sel = sorted(edge, key=lambda g: g["s"])
    s = np.array([g["s"] for g in sel])
    tcs = np.array([edge_time(g) for g in sel])
    errs = []
    for g in sel:       # error of t_edge from the spread of the replicas' own crossing epochs
        per = np.array([edge_time(dict(J=[j], epochs=g["epochs"])) for j in g["J"]], float)
        errs.append(np.nanstd(per, ddof=1) / math.sqrt(np.isfinite(per).sum())
                    if np.isfinite(per).sum() > 1 else np.nan)
    errs = np.array(errs)
    ok = np.isfinite(tcs) & np.isfinite(errs) & (errs > 0)
    hi = small_step_range(s[ok], tcs[ok], errs[ok]) if ok.sum() >= 3 else None
    fit = fit_power(s[ok][:hi], tcs[ok][:hi], errs[ok][:hi]) if hi else None
    out = dict(s=s, t_edge=tcs, err=errs, fit=fit, s_max=float(s[ok][hi - 1]) if hi else np.nan,
               fit_all=fit_power(s, tcs, errs))
    betas = []
    for g in sel:
        tc = edge_time(g)
        ep = arr(g, "epochs")
        d, e = mean_sem(arr(g, "J") ** 2 - (arr(g, "J") ** 2)[:, :1])
        win = (ep > 0.05 * tc) & (ep <= tc) if np.isfinite(tc) else ep > 0
        betas.append(dict(s=g["s"], fit=fit_power(ep[win], d[win], e[win])))
    out["beta"] = betas
    return out


# ------------------------------------------------------------------------------------ B. figures
def fig_groups(groups, ga, path, title):
    import matplotlib.pyplot as plt
    svals = sorted({round(g["s"], 12) for g in groups})
    fig, axes = plt.subplots(2, len(svals), figsize=(4.4 * len(svals), 7.2), squeeze=False)
    for j, s in enumerate(svals):
        for i, J in enumerate((0.5, 2.0)):
            ax = axes[i, j]
            mem = sorted((g for g in groups if round(g["s"], 12) == s and g["J_init"] == J),
                         key=lambda g: g["lr"])
            a = next(x for x in ga if x["s"] == s and x["J_init"] == J)
            for c, g in zip(_colors(len(mem)), mem):
                mu, se = mean_sem(arr(g, "J") ** 2)
                ax.plot(arr(g, "epochs"), mu, color=c, lw=1.3,
                        ls="--" if g["m"] else "-",
                        label=f"η={g['lr']:.3g}, B={g['B']}, m={g['m']:g}" +
                        (f" (diverged {sum(g['diverged'])})" if any(g["diverged"]) else ""))
                ax.fill_between(arr(g, "epochs"), mu - se, mu + se, color=c, alpha=0.2, lw=0)
            ax.axvline(a["t_c"], color="0.4", lw=0.7, ls=":")
            ax.axhline(1.0, color="0.7", lw=0.6)
            phase = "ordered start $J=0.5$" if J == 0.5 else "chaotic start $J=2$"
            verdict = ("collapses" if a["collapse"] else "does NOT collapse") + \
                f" (max |D| = {100 * a['Dmax']:.0f}% at the dotted epoch)"
            _finish(ax, "epochs", "$J^2$ (mean ± s.e. over replicas)",
                    f"$s = {s:.4g}$, {phase}:\n{verdict}")
    _save(fig, path, title)


def fig_collapse_vs_lr(ga, path, title):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    for J, col, mk in ((0.5, "C0", "o"), (2.0, "C3", "s")):
        first = True
        for a in (x for x in ga if x["J_init"] == J):
            for r in a["members"]:
                if (r["B"], r["m"]) == MEMBERS[0]:
                    continue
                lab = ("ordered start $J(0)=0.5$" if J == 0.5 else "chaotic start $J(0)=2$") if first else None
                first = False
                ax.errorbar(r["lr_eff"], abs(r["D"]), yerr=r["D_err"], color=col, marker=mk,
                            mfc="none" if r["m"] else col, ms=5, capsize=2, ls="none", label=lab)
                ax.annotate(f"s={a['s']:.3g}, B={r['B']}", (r["lr_eff"], abs(r["D"])), fontsize=5,
                            color=col, xytext=(3, 2), textcoords="offset points")
    ax.axhline(COLLAPSE_TOL, color="k", lw=0.8, ls="--", label=f"{100 * COLLAPSE_TOL:.0f}% (collapse tolerance)")
    ax.set_xscale("log"), ax.set_yscale("log")
    _finish(ax, "effective step $\\eta/(1-m)$ of the member (reference: B = 8, m = 0, smallest step)",
            r"$|D| = |\Delta J^2/\Delta J^2_{\rm ref} - 1|$ at $t_c$",
            title + "\nopen symbols: momentum 0.9")
    fig.tight_layout()
    plots.savefig(fig, path, dpi=100)
    plt.close(fig)


def fig_scaling(edge, sf, path, title):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.9))
    sel = sorted(edge, key=lambda g: g["s"])
    for c, g in zip(_colors(len(sel)), sel):
        mu, _ = mean_sem(arr(g, "J") ** 2 - (arr(g, "J") ** 2)[:, :1])
        axes[0].plot(g["s"] * arr(g, "epochs")[1:], mu[1:], color=c, label=f"s={g['s']:.4g}")
    axes[0].axhline(J2_EDGE - 0.25, color="k", lw=0.7, ls="--", label="J = 0.9")
    axes[0].set_xscale("log"), axes[0].set_yscale("log")
    _finish(axes[0], "flow time $s\\,t$ (t in epochs)", r"$\Delta J^2 = J^2(t) - J^2(0)$",
            f"from $J(0)=0.5$, B={MEMBERS[0][0]}, m=0: one curve if only $s\\,t$ matters")
    f = sf["fit"]
    axes[1].errorbar(sf["s"], sf["s"] * sf["t_edge"], yerr=sf["s"] * sf["err"], marker="o", ms=4,
                     capsize=2, lw=1, label="$s\\,t_{\\rm edge}$")
    if np.isfinite(sf["s_max"]):
        axes[1].axvspan(sf["s"].min(), sf["s_max"], color="C0", alpha=0.08,
                        label=f"fit range (one power law, p ≥ 0.05): $t_{{\\rm edge}} \\propto s^{{x}}$, "
                              f"x = {fmt_fit(f)}")
    else:
        axes[1].text(0.05, 0.9, "no small-step range: exponent not determined",
                     transform=axes[1].transAxes, fontsize=7, color="C3")
    axes[1].set_xscale("log"), axes[1].set_yscale("log")
    _finish(axes[1], "scale factor $s = \\eta/((1-m)B)$", "$s\\,t_{\\rm edge}$ (flat: $t_{\\rm edge} \\propto 1/s$)",
            "training time to the edge of chaos, $J = 0.5 \\to 0.9$")
    for b in sf["beta"]:
        fb = b["fit"]
        if fb:
            axes[2].errorbar([b["s"]], [fb["b"]], yerr=[fb["err"]], marker="o", capsize=2, color="C0")
    axes[2].axhline(1.0, color="k", ls=":", lw=1, label="linear growth (the paper)")
    axes[2].set_xscale("log")
    _finish(axes[2], "$s$", r"$\beta$ in $\Delta J^2 \propto t^{\beta}$ (ordered window)",
            "shape of the growth in the ordered phase")
    _save(fig, path, title)


def fig_sweep(sweep, path, title):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.9))
    cols = _colors(len(sweep))
    for c, r in zip(cols, sweep):
        mu, _ = mean_sem(arr(r, "J"))
        axes[0].plot(arr(r, "epochs"), mu, color=c, label=f"$J(0)$={r['J_init']:g}")
    axes[0].axhline(1.0, color="k", lw=0.7, ls="--", label="edge of chaos $J=1$")
    axes[0].set_xscale("symlog", linthresh=1.0)
    axes[0].set_xlim(0, max(arr(r, "epochs")[-1] for r in sweep))
    _finish(axes[0], "epochs", "$J = \\sqrt{N}\\,\\mathrm{std}(W)$", "hidden-layer order parameter")
    Ji = np.array([r["J_init"] for r in sweep])
    err = [mean_sem(1 - arr(r, "test_acc")[:, -1]) for r in sweep]
    Jf = [mean_sem(arr(r, "J")[:, -1]) for r in sweep]
    lam = [mean_sem(r["lam"]) for r in sweep]
    axes[1].errorbar(Ji, [e[0] for e in err], yerr=[e[1] for e in err], marker="o", capsize=2,
                     label="vs initial J")
    axes[1].errorbar([j[0] for j in Jf], [e[0] for e in err], xerr=[j[1] for j in Jf],
                     yerr=[e[1] for e in err], marker="s", capsize=2, label="vs final J")
    axes[1].axvline(1.0, color="k", lw=0.7, ls="--")
    axes[1].set_xscale("log")
    _finish(axes[1], "$J$", "test error (final)", "generalisation across the boundary")
    axes[2].errorbar([j[0] for j in Jf], [l[0] for l in lam], xerr=[j[1] for j in Jf],
                     yerr=[l[1] for l in lam], marker="o", capsize=2, ls="none")
    for j, l, r in zip(Jf, lam, sweep):
        axes[2].annotate(f"J(0)={r['J_init']:g}", (j[0], l[0]), fontsize=6, xytext=(3, 2),
                         textcoords="offset points")
    axes[2].axhline(0, color="k", lw=0.7)
    Jg = np.linspace(0.85 * min(j[0] for j in Jf), 1.1 * max(j[0] for j in Jf), 100)
    axes[2].plot(Jg, [chaos.mean_field_lyapunov(x) for x in Jg], "k--", lw=0.8,
                 label="random layer, mean field")
    axes[2].set_xscale("log")
    _finish(axes[2], "final $J$", r"$\lambda_1$ of the trained $x \to \tanh(Wx)$",
            "trained layers: ordered or chaotic?")
    _save(fig, path, title)


def fig_decay(decay, path, title):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, J in zip(axes, (0.5, 2.0)):
        sel = sorted((r for r in decay if r["J_init"] == J), key=lambda r: r["wd"])
        for c, r in zip(_colors(len(sel)), sel):
            mu, _ = mean_sem(arr(r, "J"))
            ax.plot(arr(r, "epochs"), mu, color=c,
                    label=f"wd={r['wd']:g}: test acc {np.nanmean(arr(r, 'test_acc')[:, -1]):.3f}")
        ax.axhline(1.0, color="k", lw=0.7, ls="--")
        _finish(ax, "epochs", "$J$", f"$J(0)$ = {J:g}, lr={SWEEP_OPT.lr:g}, B={SWEEP_OPT.batch_size}")
    _save(fig, path, title)
