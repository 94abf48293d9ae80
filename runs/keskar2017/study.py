"""Analysis of the batch-size study (runs/keskar2017/README.md has the protocol and the claims).

Four measurements, each a function here:

- ``noise_vs_batch``: the spread of the mini-batch gradient, measured from the SGD updates
  themselves: thousands of replicas take one step from the same weights on the same training set
  (user data), each with its own batch, and g_B = (w0 - w1)/lr. Its standard deviation against m,
  with the finite-population factor, against physsgd's ``grad_noise`` estimator.
- ``speedup``: steps S and samples E = m S to a target training loss against m, at a fixed
  temperature T = lr/m (speedup_T.toml) and at a fixed lr (speedup_lr.toml); the critical batch
  size B* (the m where E doubles) against N and P, compared with 2/(T lambda_max) (full-batch
  stability of lr = T m on the small-batch path, curvature_path.toml) and with the gradient
  noise scale B_noise (McCandlish et al. 2018).
- ``minima``: final sharpness, Hessian trace, weight norm and test error against m on P < K N
  samples (minima_T.toml, minima_lr.toml), paired over replicas (replica r has the same teacher,
  data and start for every m): whether sharper minima generalise worse here.

Positive, heavy-tailed times are summarised by medians with a paired bootstrap over replicas;
test errors and curvatures by means with standard errors (``analysis.aggregate``); exponents by
``analysis.power_law`` (statistical (+) systematic errors).
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

TARGET = 1e-3          # training loss 1/2 mean (f - y)^2 that defines "trained" in speedup
CONVERGED = 1e-5       # final training loss below which a minima run counts as converged
BOOT = 400
N_TEACHER, P_NOISE = 32, 256


# ------------------------------------------------------------------------------------------
# 1. gradient noise against m, from the SGD updates themselves
# ------------------------------------------------------------------------------------------
def noise_vs_batch(path, scale="small"):
    """Run the measurement and save it (npz): for two weight points (random start; after 3000
    SGD steps) and m = 1, 2, ..., P: mean and standard error of |g_B - G|^2 over the replicas'
    first batches, and physsgd's grad_noise at the same point."""
    import physsgd as ps
    R = 2000 if scale == "small" else 20000
    N, K, P = N_TEACHER, 2, P_NOISE
    rng = np.random.default_rng(0)
    Wt = rng.standard_normal((K, N))
    X = rng.standard_normal((P + P // 4, N))
    from scipy.special import erf
    y = erf(X @ Wt.T / math.sqrt(N) / math.sqrt(2)).sum(axis=1)
    data = ps.Dataset.from_arrays(X, y, test_fraction=0.2)
    assert data.P == P
    student = ps.Committee(N=N, K=K, activation="erf")
    W_start = rng.standard_normal((K, N))
    # one seed for every call: the train/test split of user data is keyed by the seed alone, so
    # every call trains on the same 256 rows; the replicas' batches differ (streams (seed, r))
    seed = 1
    trained = ps.train(None, student, ps.SGD(lr=0.5, batch_size=1), data, steps=3000, replicas=1,
                       record=2, seed=seed, init=W_start)
    points = {"start": W_start, "trained": trained.weights[0]}
    lr = 1e-3
    ms = 2 ** np.arange(int(math.log2(P)) + 1)
    out = {"m": ms, "P": P, "R": R, "N": N, "train_loss": {}}
    for name, W in points.items():
        full = ps.train(None, student, ps.SGD(lr=lr, batch_size=P), data, steps=1, replicas=1,
                        record=np.array([0, 1]), seed=seed, init=W, measure=["grad_noise"])
        G = ((W - full.weights[0]) / lr).ravel()
        mean, se, est = [], [], []
        for m in ms:
            res = ps.train(None, student, ps.SGD(lr=lr, batch_size=int(m)), data, steps=1,
                           replicas=R, record=np.array([0, 1]), seed=seed, init=W,
                           measure=["grad_noise"])
            gB = ((W[None] - res.weights) / lr).reshape(R, -1)
            dev = ((gB - G) ** 2).sum(axis=1)
            mean.append(dev.mean())
            se.append(dev.std(ddof=1) / math.sqrt(R))
            est.append(res.grad_noise[0, 0])
        out[name] = np.array([mean, se, est])
        out["train_loss"][name] = float(full.train_error[0, 0])
    np.savez(path, m=ms, P=P, R=R, N=N, start=out["start"], trained=out["trained"],
             train_loss=json.dumps(out["train_loss"]))


def analyze_noise(path):
    import analysis as an
    z = np.load(path)
    m, P = z["m"], int(z["P"])
    out = {"m": m, "P": P, "R": int(z["R"]), "points": {}}
    for name in ("start", "trained"):
        mean, se, est = z[name]
        sigma2 = est[0]                        # grad_noise at m = 1 is sigma^2 exactly
        fpc = (P - m) / (P - 1)
        keep = m < P
        std = np.sqrt(mean[keep])
        dstd = se[keep] / (2 * std)
        small = m[keep] <= P // 16
        fit = an.power_law(m[keep][small], std[small], dstd[small], seed=1)
        fit_all = an.power_law(m[keep], std, dstd, seed=1)
        # the same fit of the exact without-replacement prediction at the same m: what the raw
        # exponent should be, (P - m)/(P - 1) included; and the exponent with that factor divided
        # out, which should be -1/2 at every m < P
        mf = m[keep][small].astype(float)
        pred = np.sqrt(sigma2 / mf * (P - mf) / (P - 1))
        expected = float(np.polyfit(np.log(mf), np.log(pred), 1)[0])
        corr = np.sqrt(fpc[keep])
        fit_corr = an.power_law(m[keep], std / corr, dstd / corr, seed=1)
        z_wo = (mean - sigma2 / m * fpc)[keep] / se[keep]     # m = P: no noise at all, below
        z_w = (mean - sigma2 / m)[keep] / se[keep]
        out["points"][name] = dict(mean=mean, se=se, est=est, sigma2=sigma2, fit=fit,
                                   fit_all=fit_all, fit_corr=fit_corr, expected=expected, z_without=z_wo, z_with=z_w,
                                   at_P=float(mean[-1]), rel_at_P=float(mean[-1] / sigma2),
                                   est_vs_formula=float(np.max(np.abs(est / (sigma2 / m * fpc) - 1)[keep])))
    out["train_loss"] = json.loads(str(z["train_loss"]))
    return out


# ------------------------------------------------------------------------------------------
# reading sweep directories
# ------------------------------------------------------------------------------------------
def _runs(folder):
    import physsgd as ps
    if not os.path.isdir(folder):
        return []
    out = []
    for key, res in sorted(ps.load(folder).items()):
        p = res.params
        out.append(dict(key=key, res=res, N=int(p["student"]["N"]), P=int(p["data"]["P"]),
                        m=int(p["algorithm"]["batch_size"]), lr=float(p["algorithm"]["lr"])))
    return out


def slot_steps(res):
    """(replicas, T) the step of every record slot (a stop between records lands in the next
    slot, at stopped_at) and which slots hold a state of the run (later ones repeat it)."""
    rec = res.steps.astype(float)
    R = res.replicas
    S = np.tile(rec, (R, 1))
    valid = np.ones((R, len(rec)), bool)
    for r in range(R):
        st = res.stopped_at[r]
        if st < rec[-1]:
            k = int(np.searchsorted(rec, st))
            S[r, k] = st
            valid[r, k + 1:] = False
    return S, valid


def crossing(res, target=TARGET):
    """Per replica: (steps to the first training loss <= target, log-interpolated between the
    bracketing records; inf if never), and the index of the first record at or below it."""
    S, valid = slot_steps(res)
    steps = np.full(res.replicas, np.inf)
    idx = np.full(res.replicas, -1)
    for r in range(res.replicas):
        y = res.train_error[r][valid[r]]
        s = S[r][valid[r]]
        hit = np.flatnonzero(y <= target)
        if len(hit) == 0:
            continue
        i = hit[0]
        idx[r] = i
        if i == 0:
            steps[r] = 0.0
            continue
        y0, y1, s0, s1 = y[i - 1], y[i], s[i - 1], s[i]
        f = (math.log(y0) - math.log(target)) / (math.log(y0) - math.log(max(y1, 1e-300)))
        steps[r] = (math.exp(math.log(s0) + f * (math.log(s1) - math.log(s0))) if s0 > 0
                    else s0 + f * (s1 - s0))
    return steps, idx


def _median(x):
    """Median that treats inf (never reached) as larger than everything."""
    return float(np.median(x)) if len(x) else math.nan


def _boot_idx(R, seed=0, n=BOOT):
    return np.random.default_rng(seed).integers(0, R, (n, R))


# ------------------------------------------------------------------------------------------
# 2. speed-up and the critical batch size
# ------------------------------------------------------------------------------------------
def _bstar_from(ms, ratio, resolved=4.0):
    """The m where the samples ratio E(m)/E_ref first reaches 2, log-interpolated; (value,
    bracket, determined). When the grid does not resolve the doubling (the first m past it has
    a censored median, never reached by half the replicas, or a ratio above ``resolved``: E
    jumps rather than grows, and interpolating the jump would invent a precision the grid does
    not have), B* is only bracketed: the geometric midpoint, and the bracket [m_prev, m] as its
    range."""
    for i in range(1, len(ms)):
        if ratio[i] >= 2.0:
            if not np.isfinite(ratio[i]) or ratio[i] > resolved:
                return math.sqrt(ms[i - 1] * ms[i]), (ms[i - 1], ms[i]), True
            a, b = math.log(max(ratio[i - 1], 1e-300)), math.log(ratio[i])
            f = (math.log(2.0) - a) / (b - a) if b > a else 1.0
            return math.exp(math.log(ms[i - 1]) + f * (math.log(ms[i]) - math.log(ms[i - 1]))), None, True
    return math.nan, None, False


def speedup_series(runs, control="T"):
    """Group runs by (N, P, T) (control "T") or (N, P, lr): per m the replicas' steps and
    samples to target; medians, paired bootstrap (replica r has the same teacher, data and start
    for every m) of the medians and of B*. B*'s range: the 16-84% bootstrap interval, widened to
    the m-grid bracket where the grid only brackets it (see ``_bstar_from``)."""
    groups = {}
    for run in runs:
        value = run["lr"] / run["m"] if control == "T" else run["lr"]
        groups.setdefault((run["N"], run["P"], round(value, 12)), []).append(run)
    out = {}
    for (N, P, value), rs in sorted(groups.items()):
        rs = sorted(rs, key=lambda r: r["m"])
        ms = np.array([r["m"] for r in rs], float)
        S = np.array([crossing(r["res"])[0] for r in rs])           # (n_m, R)
        E = S * ms[:, None]
        t = S * np.array([r["lr"] for r in rs])[:, None]
        R = S.shape[1]
        Bn0 = np.array([np.nanmedian(r["res"].noise_scale[:, 0]) if r["res"].noise_scale is not None
                        else np.nan for r in rs])
        med = lambda a: np.array([_median(row) for row in a])      # noqa: E731
        boot = _boot_idx(R, seed=N + P)
        Eb = np.array([[_median(row[b]) for row in E] for b in boot])   # (B, n_m)
        Sb = np.array([[_median(row[b]) for row in S] for b in boot])
        ratio = med(E) / med(E)[0]
        bstar, bracket, det = _bstar_from(ms, ratio)
        censored = bracket is not None
        bb = []
        for k in range(len(boot)):
            v, _, d = _bstar_from(ms, Eb[k] / Eb[k][0])
            bb.append(v if d else np.inf)
        bb = np.array(bb)
        frac_undet = float(np.mean(~np.isfinite(bb)))
        lo, hi = (np.percentile(bb[np.isfinite(bb)], [16, 84]) if np.isfinite(bb).sum() > 10
                  else (math.nan, math.nan))
        if det:
            lo, hi = min(lo, bstar), max(hi, bstar)
            if censored:
                lo, hi = min(lo, bracket[0]), max(hi, bracket[1])
        out[(N, P, value)] = dict(N=N, P=P, T=value if control == "T" else math.nan, m=ms, lr=np.array([r["lr"] for r in rs]), S=S, E=E, t=t,
                           S_med=med(S), E_med=med(E), t_med=med(t),
                           S_lo=np.percentile(Sb, 16, axis=0), S_hi=np.percentile(Sb, 84, axis=0),
                           E_lo=np.percentile(Eb, 16, axis=0), E_hi=np.percentile(Eb, 84, axis=0),
                           reached=np.isfinite(S).mean(axis=1), ratio=ratio, bstar=bstar,
                           bstar_censored=censored, bstar_determined=det, bstar_lo=lo,
                           bstar_hi=hi, bstar_undetermined_frac=frac_undet, Bnoise0=Bn0, R=R,
                           eps_final=np.array([np.nanmean(r["res"].eps_g[:, -1]) for r in rs]))
    return out


def _running_median(a, valid):
    """Median over the replicas still running at each record (NaN once fewer than half are:
    the rest stopped at success)."""
    med = np.nanmedian(np.where(valid, a, np.nan), axis=0)
    return np.where(valid.mean(axis=0) >= 0.5, med, np.nan)


def curvature_path(runs):
    """Per (N, P): along the m = 2 trajectory at T = 0.5, lambda* = the largest sharpness met
    before the target (median over replicas, bootstrap error), the noise scale at the start and
    at the target, and the curves for the figure."""
    out = {}
    for run in runs:
        res = run["res"]
        S, valid = slot_steps(res)
        steps, idx = crossing(res)
        lam_star, bn_t = [], []
        for r in range(res.replicas):
            if idx[r] < 0:
                continue
            sl = res.sharpness[r][valid[r]][: idx[r] + 1]
            lam_star.append(np.nanmax(sl))
            bn_t.append(res.noise_scale[r][valid[r]][idx[r]])
        lam_star, bn_t = np.array(lam_star), np.array(bn_t)
        boot = _boot_idx(len(lam_star), seed=run["N"])
        lam_b = np.array([np.median(lam_star[b]) for b in boot])
        T = run["lr"] / run["m"]
        lam = float(np.median(lam_star))
        out[(run["N"], run["P"], round(T, 12))] = dict(
            N=run["N"], P=run["P"], T=T, lam_star=lam, lam_err=float(lam_b.std(ddof=1)),
            B_stab=2.0 / (T * lam), B_stab_err=2.0 / (T * lam) * float(lam_b.std(ddof=1)) / lam,
            Bnoise0=float(np.median(res.noise_scale[:, 0])),
            Bnoise_target=float(np.median(bn_t)), n=len(lam_star),
            time=res.steps * run["lr"], lam_curve=_running_median(res.sharpness, valid),
            bn_curve=_running_median(res.noise_scale, valid),
            loss_curve=_running_median(res.train_error, valid),
            trace_curve=_running_median(res.hessian_trace, valid))
    return out


# ------------------------------------------------------------------------------------------
# 3. the minima SGD finds, on P < K N samples
# ------------------------------------------------------------------------------------------
def _spearman(a, b):
    from scipy import stats
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return math.nan
    return float(stats.spearmanr(a[ok], b[ok])[0])


def minima_series(runs, control):
    """Group by the fixed control (T or lr): per m the final observables (mean, sem over the
    replicas that did not diverge: the state where SGD ended after its budget; ``converged``
    counts those with training loss < CONVERGED), paired differences to the smallest m, and
    Spearman correlations of sharpness with test error: over m within each replica (the effect
    of the batch, teacher and data held fixed), and across replicas at each m."""
    groups = {}
    for run in runs:
        key = run["lr"] / run["m"] if control == "T" else run["lr"]
        groups.setdefault(round(key, 12), []).append(run)
    out = {}
    for key, rs in sorted(groups.items()):
        rs = sorted(rs, key=lambda r: r["m"])
        ms = np.array([r["m"] for r in rs], float)
        get = lambda f: np.array([f(r["res"]) for r in rs])       # noqa: E731
        lam = get(lambda res: res.sharpness[:, -1])                 # (n_m, R)
        tr = get(lambda res: res.hessian_trace[:, -1])
        eps = get(lambda res: res.eps_g[:, -1])
        wn = get(lambda res: res.weight_norm[:, -1])
        loss = get(lambda res: res.train_error[:, -1])
        div = get(lambda res: res.diverged)
        conv = (loss < CONVERGED) & ~div
        ok = ~div                      # the state where SGD ended after its budget
        R = lam.shape[1]
        mean = lambda a: np.array([np.nanmean(np.where(ok[i], a[i], np.nan)) for i in range(len(ms))])  # noqa: E731
        sem = lambda a: np.array([np.nanstd(np.where(ok[i], a[i], np.nan), ddof=1) / math.sqrt(max(ok[i].sum(), 1))  # noqa: E731
                                  for i in range(len(ms))])
        per_rep = np.array([_spearman(lam[ok[:, r], r], eps[ok[:, r], r]) for r in range(R)])
        per_rep = per_rep[np.isfinite(per_rep)]
        within_m = np.array([_spearman(lam[i][ok[i]], eps[i][ok[i]]) for i in range(len(ms))])
        d_lam = (lam - lam[0]) / lam[0]
        d_eps = eps - eps[0]

        def paired(d, i):
            both = ok[i] & ok[0]
            x = d[i][both]
            return (float(x.mean()) if len(x) else math.nan,
                    float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan)
        out[key] = dict(control=control, value=key, m=ms, lr=np.array([r["lr"] for r in rs]),
                        lam=mean(lam), lam_sem=sem(lam), trace=mean(tr), trace_sem=sem(tr),
                        eps=mean(eps), eps_sem=sem(eps), wn=mean(wn), wn_sem=sem(wn),
                        converged=conv.mean(axis=1), diverged=div.mean(axis=1), R=R,
                        d_lam=np.array([paired(d_lam, i)[0] for i in range(len(ms))]),
                        d_lam_sem=np.array([paired(d_lam, i)[1] for i in range(len(ms))]),
                        d_eps=np.array([paired(d_eps, i)[0] for i in range(len(ms))]),
                        d_eps_sem=np.array([paired(d_eps, i)[1] for i in range(len(ms))]),
                        rho_paired=float(per_rep.mean()) if len(per_rep) else math.nan,
                        rho_paired_sem=float(per_rep.std(ddof=1) / math.sqrt(len(per_rep))) if len(per_rep) > 1 else math.nan,
                        n_paired=len(per_rep), rho_within_m=within_m,
                        raw=dict(lam=lam, eps=eps, conv=conv, wn=wn))
    return out


# ------------------------------------------------------------------------------------------
# figures and the table
# ------------------------------------------------------------------------------------------
def _fmt(x, e=None, digits=2):
    if x is None or not np.isfinite(x):
        return "not determined"
    if e is None or not np.isfinite(e):
        return f"{x:.{digits}g}"
    return f"{x:.{digits + 1}g} ± {e:.{digits}g}"


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    import matplotlib.pyplot as plt
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def _top_marks(ax, xs, color, label=None):
    """Mark x positions whose median was never reached: x at the top edge of the panel."""
    import matplotlib.transforms as mtransforms
    if len(xs) == 0:
        return
    tr = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
    ax.plot(xs, np.full(len(xs), 0.96), "x", color=color, ms=6, transform=tr, clip_on=False, label=label)


def _logfmt(ax, which="both"):
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter
    axes = ("x", "y") if which == "both" else (which,)
    for a in axes:
        axis = ax.xaxis if a == "x" else ax.yaxis
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())


def plot_noise(nz, path):
    plt = _pyplot()
    m, P = nz["m"], nz["P"]
    fig, axes = plt.subplots(1, 2, figsize=(14, 5), gridspec_kw=dict(width_ratios=[1.45, 1]))
    lowest = min(np.sqrt(d["mean"][m < P]).min() for d in nz["points"].values())
    for (name, d), c in zip(nz["points"].items(), ("C0", "C3")):
        keep = m < P
        std = np.sqrt(d["mean"][keep])
        dstd = d["se"][keep] / (2 * std)
        fit = d["fit"]
        lab = ("random start" if name == "start" else "after 3000 SGD steps") + \
            f" (train loss {nz['train_loss'][name]:.2g})"
        axes[0].errorbar(m[keep], std, dstd, fmt="o", color=c, ms=4,
                         label=f"{lab}: fit $m \\leq P/16$, $\\sigma_B \\propto m^{{a}}$, "
                               f"$a = {fit.exponent:.3f} \\pm {fit.errors['exponent']:.3f}$ "
                               f"(exact formula: ${d['expected']:.3f}$)")
        mm = np.geomspace(1, P, 400)
        axes[0].plot(mm, np.sqrt(d["sigma2"] / mm * (P - mm) / (P - 1)), "-", color=c, lw=1,
                     label=r"$\sqrt{\sigma^2/m \cdot (P-m)/(P-1)}$: without replacement (exact)"
                     if name == "start" else None)
        axes[0].plot(mm, np.sqrt(d["sigma2"] / mm), ":", color=c, lw=1,
                     label=r"$\sigma/\sqrt{m}$: with replacement" if name == "start" else None)
        mf = m[keep][m[keep] <= P // 16]
        axes[0].plot(mf, fit.predict(mf), "--", color="k", lw=0.8)
        ratio = d["mean"] * m / d["sigma2"]
        fc = d["fit_corr"]
        axes[1].errorbar(m, ratio, d["se"] * m / d["sigma2"], fmt="o", color=c, ms=4,
                         label=f"{lab}; $\\sigma_B/\\sqrt{{(P-m)/(P-1)}} \\propto m^{{{fc.exponent:.3f} \\pm {fc.errors['exponent']:.3f}}}$")
    mm = np.geomspace(1, P, 400)
    axes[1].plot(mm, (P - mm) / (P - 1), "k-", lw=1, label=r"$(P-m)/(P-1)$ (without replacement)")
    axes[1].axhline(1.0, color="k", ls=":", lw=1, label="1 (with replacement)")
    axes[0].set(xscale="log", yscale="log", xlabel="mini-batch size $m$",
                ylabel=r"$\sigma_B = (\mathbb{E}\,|g_B - \nabla L|^2)^{1/2}$",
                title=f"Spread of the mini-batch gradient ($P = {P}$, {nz['R']} batches per $m$)")
    axes[1].set(xscale="log", xlabel="mini-batch size $m$", ylabel=r"$m\,\sigma_B^2/\sigma^2$",
                title=r"finite-population factor ($m = P$: exactly 0)")
    axes[0].set_ylim(lowest / 30, None)
    axes[0].legend(fontsize=7, loc="lower left")
    axes[1].legend(fontsize=7, loc="lower left")
    fig.suptitle(r"Erf soft committee $N = 32$, $K = 2$: $g_B = (w_0 - w_1)/\mathrm{lr}$ from one SGD step; "
                 r"$\sigma^2$ = per-sample variance (grad_noise at $m = 1$)", fontsize=10)
    _save(fig, path)


def plot_speedup(sT, slr, cp, path):
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    first = True
    for i, ((N, P, T), d) in enumerate(sT.items()):
        c = f"C{i}"
        lab = f"$T = {T:g}$, $N = {N}$, $P = {P}$"
        ok = np.isfinite(d["S_med"])
        fmt = "o-" if T == 0.5 else "^-"
        for ax, y, lo, hi in ((axes[0], d["S_med"], d["S_lo"], d["S_hi"]),
                              (axes[1], d["E_med"], d["E_lo"], d["E_hi"])):
            hi = np.where(np.isfinite(hi), hi, y)
            ax.errorbar(d["m"][ok], y[ok], [y[ok] - lo[ok], hi[ok] - y[ok]], fmt=fmt, color=c, ms=4, label=lab)
            _top_marks(ax, d["m"][~ok], c, label="median not reached (×)" if first and (~ok).any() else None)
        axes[2].plot(d["m"][ok] / N, d["ratio"][ok], fmt, color=c, ms=4, label=lab)
        _top_marks(axes[2], d["m"][~ok] / N, c)
        if d["bstar_determined"] and d["bstar_censored"]:
            axes[2].axvspan(d["bstar_lo"] / N, d["bstar_hi"] / N, color=c, alpha=0.15, lw=0)
        elif d["bstar_determined"]:
            axes[2].axvline(d["bstar"] / N, color=c, ls="--", lw=0.8)
        if (N, P, T) in cp:
            axes[2].plot(cp[(N, P, T)]["B_stab"] / N, 0.55, "v", color=c, ms=8)
        first = first and not (~ok).any()
    for (N, P, _), d in slr.items():
        ok = np.isfinite(d["S_med"])
        lab = f"fixed lr $= {d['lr'][0]:g}$, $N = {N}$, $P = {P}$"
        for ax, y, lo, hi in ((axes[0], d["S_med"], d["S_lo"], d["S_hi"]),
                              (axes[1], d["E_med"], d["E_lo"], d["E_hi"])):
            hi = np.where(np.isfinite(hi), hi, y)
            ax.errorbar(d["m"][ok], y[ok], [y[ok] - lo[ok], hi[ok] - y[ok]], fmt="s--", color="k", ms=4, label=lab)
            _top_marks(ax, d["m"][~ok], "k")
    if sT:
        d0 = next(iter(sT.values()))
        mm = np.geomspace(1, 1000, 10)
        axes[0].plot(mm, d0["S_med"][np.isfinite(d0["S_med"])][0] * d0["m"][np.isfinite(d0["S_med"])][0] / mm,
                     color="0.6", lw=3, alpha=0.4, zorder=0, label=r"$S \propto 1/m$ (linear speed-up)")
    axes[0].set(xscale="log", yscale="log", xlabel="mini-batch size $m$",
                ylabel=f"steps $S$ to training loss ${TARGET:g}$ (median)", title="steps to the target")
    axes[1].set(xscale="log", yscale="log", xlabel="mini-batch size $m$", ylabel="samples $E = m\\,S$ (median)",
                title="samples to the target (flat = linear speed-up)")
    axes[2].axhline(2.0, color="k", lw=0.8)
    axes[2].text(0.02, 2.1, "$E$ doubled", fontsize=8, transform=axes[2].get_yaxis_transform())
    axes[2].set(xscale="log", yscale="log", xlabel="$m / N$", ylabel=r"$E(m)\,/\,E(m_{\min})$",
                title=r"$B^*$: $E$ doubles (dashed; band: only bracketed by the $m$ grid); $2/(T\lambda^*)$ (▼)")
    axes[0].legend(fontsize=7, loc="lower left")
    axes[1].legend(fontsize=7, loc="center left")
    axes[2].legend(fontsize=7, loc="center left")
    axes[2].title.set_fontsize(9)
    fig.suptitle("Erf soft committee $K = M = 2$, square loss, $P = 8N$ (and $N = 32$, $P = 1024$), at fixed "
                 "$T = \\mathrm{lr}/m$ (colours) and fixed lr (black); medians over replicas, 68% bootstrap bars; "
                 "× = more than half the replicas never reached the target", fontsize=9)
    _save(fig, path)


def plot_bstar(sT, cp, fit, path):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 5.2))
    seen = set()

    def once(label):
        if label in seen:
            return None
        seen.add(label)
        return label
    for (N, P, T), d in sT.items():
        if P == 8 * N:
            mk, tag = ("o", "$P = 8N$") if T == 0.5 else ("^", f"$P = 8N$, $T = {T:g}$")
        else:
            mk, tag = "D", f"$P = {P}$"
        col = "C0" if T == 0.5 else "C4"
        if d["bstar_determined"]:
            yerr = [[max(d["bstar"] - d["bstar_lo"], 0)], [max(d["bstar_hi"] - d["bstar"], 0)]]
            ax.errorbar(N, d["bstar"], yerr, fmt=mk, color=col, ms=7, capsize=3,
                        label=once(f"$B^*$ ($E$ doubles), {tag}" + ("" if T == 0.5 else "")))
        else:
            ax.annotate(f"$B^*$ not determined\n(> {int(d['m'][-1])})", (N, d["m"][-1]), fontsize=7)
        if (N, P, T) in cp:
            c = cp[(N, P, T)]
            ax.errorbar(N * 1.04, c["B_stab"], c["B_stab_err"], fmt=mk, mfc="none", color="C3", ms=7,
                        label=once(f"$2/(T\\lambda^*)$: full-batch stability of lr $= Tm$, {tag}"))
            ax.plot(N * 0.96, c["Bnoise_target"], mk, color="C2", mfc="none", ms=6,
                    label=once(f"$B_{{\\rm noise}}$ at the target, {tag}"))
            ax.plot(N * 0.96, c["Bnoise0"], mk, color="C7", mfc="none", ms=5,
                    label=once(f"$B_{{\\rm noise}}$ at the start, {tag}"))
    if fit is not None:
        NN = np.array([14, 72])
        ax.plot(NN, fit.predict(NN), "k--", lw=0.8,
                label=f"fit $B^* \\propto N^{{{fit.exponent:.2f} \\pm {fit.errors['exponent']:.2f}}}$, $P = 8N$, $T = 0.5$")
    ax.set(xscale="log", yscale="log", xlabel="input dimension $N$", ylabel="batch size",
           title=r"Critical batch size $B^*$ (T = 0.5 unless marked; bars: 68% bootstrap or the $m$-grid bracket)")
    _logfmt(ax)
    ax.title.set_fontsize(9)
    ax.legend(fontsize=7, loc="best")
    _save(fig, path)


def plot_path(cp, path):
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    sizes = sorted({(N, P) for N, P, _ in cp})
    for (N, P, T), c in sorted(cp.items()):
        t = np.maximum(c["time"], c["time"][1] / 2)
        lab = f"$T = {T:g}$, $N = {N}$, $P = {P}$"
        style = dict(color=f"C{sizes.index((N, P))}", ls="-" if T == 0.5 else "--")
        axes[0].plot(t, c["loss_curve"], label=lab, **style)
        axes[1].plot(t, N * c["lam_curve"], label=lab, **style)
        axes[2].plot(t, c["bn_curve"] / N, label=lab, **style)
    axes[0].axhline(TARGET, color="k", ls=":", lw=0.8)
    axes[0].set(xscale="log", yscale="log", xlabel=r"$t = \mathrm{lr} \times$ steps", ylabel="training loss (median)",
                title=f"training loss (target ${TARGET:g}$ dotted)")
    axes[1].set(xscale="log", xlabel=r"$t = \mathrm{lr} \times$ steps", ylabel=r"$N\lambda_{\max}$ (median)",
                title=r"sharpness $\lambda_{\max}$ of the training loss, $\times N$")
    axes[2].set(xscale="log", yscale="log", xlabel=r"$t = \mathrm{lr} \times$ steps",
                ylabel=r"$B_{\rm noise}/N$ (median)", title=r"gradient noise scale $B_{\rm noise} = \mathrm{tr}\,\Sigma/|\nabla L|^2$, $/N$")
    _logfmt(axes[2], "y")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.suptitle("Along the small-batch path $m = 2$ (medians over the replicas still training; runs stop at "
                 r"$\varepsilon_g \leq 10^{-5}$; curves end when fewer than half are left)", fontsize=10)
    _save(fig, path)


def plot_minima(mT, mlr, path):
    plt = _pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.8))
    series = ([(f"$T = {k:g}$", d, "o-", 7) for k, d in mT.items()]
              + [(f"lr $= {k:g}$", d, "s--", 4) for k, d in mlr.items()])
    lam_all = []
    for i, (lab, d, fmt, ms) in enumerate(series):
        c = f"C{i}"
        lam_all.append(d["lam"])
        axes[0].errorbar(d["m"], d["lam"], d["lam_sem"], fmt=fmt, color=c, ms=ms, mfc="none" if ms > 5 else c, label=lab)
        axes[0].plot(d["m"], 2.0 / d["lr"], ":", color=c, lw=1)
        bad = d["converged"] < 0.5
        if bad.any():
            axes[0].plot(d["m"][bad], d["lam"][bad], "x", color="k", ms=10, mew=2)
            axes[1].plot(d["m"][bad], d["eps"][bad], "x", color="k", ms=10, mew=2)
        axes[1].errorbar(d["m"], d["eps"], d["eps_sem"], fmt=fmt, color=c, ms=ms, mfc="none" if ms > 5 else c, label=lab)
        axes[2].errorbar(d["m"], d["wn"], d["wn_sem"], fmt=fmt, color=c, ms=ms, mfc="none" if ms > 5 else c, label=lab)
        axes[3].errorbar(d["d_lam"], d["d_eps"], d["d_eps_sem"], d["d_lam_sem"], fmt=fmt, color=c, ms=ms,
                         mfc="none" if ms > 5 else c,
                         label=f"{lab}: paired $\\rho_s(\\lambda_{{\\max}}, \\varepsilon_g) = {_fmt(d['rho_paired'], d['rho_paired_sem'])}$")
    lam_all = np.concatenate(lam_all) if lam_all else np.array([0.05])
    lo, hi = np.nanmin(lam_all), np.nanmax(lam_all)
    axes[0].set(xscale="log", yscale="log", ylim=(lo / 1.4, hi * 1.4), xlabel="mini-batch size $m$",
                ylabel=r"final $\lambda_{\max}$ (mean ± sem)",
                title=r"sharpness at the end (dotted: $2/\mathrm{lr}$; × = most runs not converged)")
    axes[1].set(xscale="log", xlabel="mini-batch size $m$", ylabel=r"test error $\varepsilon_g$ (mean ± sem)",
                title=r"generalisation error $\varepsilon_g$")
    axes[2].set(xscale="log", xlabel="mini-batch size $m$", ylabel=r"$|w|/\sqrt{KN}$", title="weight norm")
    axes[3].axhline(0, color="k", lw=0.5)
    axes[3].axvline(0, color="k", lw=0.5)
    axes[3].set(xlabel=r"$\Delta\lambda_{\max}/\lambda_{\max}$ from $m = 1$ (paired)",
                ylabel=r"$\Delta\varepsilon_g$ from $m = 1$ (paired)",
                title=r"sharper $\Rightarrow$ worse?  (points: $m = 1 \dots P$)")
    for ax in axes:
        ax.title.set_fontsize(9)
    for ax in axes:
        ax.legend(fontsize=7)
    fig.suptitle(r"Erf soft committee $N = 32$, $K = M = 2$, $P = 32 < KN$: the zero-loss minimum SGD reaches, "
                 r"against $m$ at fixed $T = \mathrm{lr}/m$ (circles) and fixed lr (squares); replicas paired over $m$",
                 fontsize=10)
    _save(fig, path)


def analyze(base, figdir, scale="small"):
    with np.errstate(invalid="ignore", divide="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)     # all-NaN medians of censored runs
            return _analyze(base, figdir, scale)


def _analyze(base, figdir, scale):
    import analysis as an
    os.makedirs(figdir, exist_ok=True)
    lines = [f"# keskar2017 results ({scale} scale)", ""]
    summary = {}
    # 1. noise
    npz = os.path.join(base, "noise_vs_batch.npz")
    if os.path.exists(npz):
        nz = analyze_noise(npz)
        plot_noise(nz, os.path.join(figdir, "gradient_noise.png"))
        lines += ["## Gradient noise against m (first SGD step of "
                  f"{nz['R']} replicas, P = {nz['P']})", "",
                  "| weight point | exponent of std, m ≤ P/16 (exact formula's: with (P−m)/(P−1)) | exponent of std/√((P−m)/(P−1)), all m < P (expected −1/2) | exponent of raw std, all m < P (p-value) | max abs z, without-replacement formula | max abs z, with-replacement formula | E|g_B − ∇L|²/σ² at m = P |",
                  "|---|---|---|---|---|---|---|"]
        for name, d in nz["points"].items():
            f, fa, fc = d["fit"], d["fit_all"], d["fit_corr"]
            lines.append(f"| {name} (train loss {nz['train_loss'][name]:.3g}) | {_fmt(f.exponent, f.errors['exponent'])} ({d['expected']:.4f}) | "
                         f"{_fmt(fc.exponent, fc.errors['exponent'])} (p = {fc.pvalue:.2g}) | "
                         f"{_fmt(fa.exponent, fa.errors['exponent'])} (p = {fa.pvalue:.2g}) | "
                         f"{np.nanmax(np.abs(d['z_without'])):.2f} | {np.nanmax(np.abs(d['z_with'])):.1f} | {d['rel_at_P']:.1e} |")
            summary[f"noise_exponent_{name}"] = (f.exponent, f.errors["exponent"], d["expected"])
            summary[f"noise_exponent_corrected_{name}"] = (fc.exponent, fc.errors["exponent"])
        lines.append("")
    # 2. speed-up
    sT = speedup_series(_runs(os.path.join(base, "speedup_T")) + _runs(os.path.join(base, "speedup_T2")), "T")
    slr = speedup_series(_runs(os.path.join(base, "speedup_lr")), "lr")
    cp = curvature_path(_runs(os.path.join(base, "curvature_path")))
    fit = None
    pts = [(N, d["bstar"], d) for (N, P, T), d in sT.items()
           if P == 8 * N and T == 0.5 and d["bstar_determined"]]
    if len(pts) >= 3:
        Ns = np.array([p[0] for p in pts], float)
        bs = np.array([p[1] for p in pts])
        db = np.array([(p[2]["bstar_hi"] - p[2]["bstar_lo"]) / 2 if np.isfinite(p[2]["bstar_hi"])
                       else 0.5 * p[1] for p in pts])
        fit = an.power_law(Ns, bs, db, seed=2)
        summary["bstar_exponent_N"] = (fit.exponent, fit.errors["exponent"])
    if sT:
        plot_speedup(sT, slr, cp, os.path.join(figdir, "speedup.png"))
        plot_bstar(sT, cp, fit, os.path.join(figdir, "bstar.png"))
    if cp:
        plot_path(cp, os.path.join(figdir, "curvature_path.png"))
    for kind, ser in (("T", sT), ("lr", slr)):
        for (N, P, value), d in ser.items():
            title = f"fixed T = {value:g} (lr = T m)" if kind == "T" else f"fixed lr = {value:g}"
            lines += [f"## Steps to training loss {TARGET:g}, {title}, N = {N}, P = {P} ({d['R']} replicas)", "",
                      "| m | lr | median S (68% CI) | median E = m S | median t = lr S | reached | E / E(m_min) | final eps_g (mean) |",
                      "|---|---|---|---|---|---|---|---|"]
            for i, m in enumerate(d["m"]):
                lines.append(f"| {int(m)} | {d['lr'][i]:g} | {_fmt(d['S_med'][i])} ({_fmt(d['S_lo'][i])}–{_fmt(d['S_hi'][i])}) | "
                             f"{_fmt(d['E_med'][i])} | {_fmt(d['t_med'][i])} | {d['reached'][i]:.2f} | {_fmt(d['ratio'][i])} | {d['eps_final'][i]:.2g} |")
            if kind == "T":
                b = (f"{d['bstar']:.3g} (range {d['bstar_lo']:.3g}–{d['bstar_hi']:.3g}: "
                     f"{'the m-grid bracket: E jumps (or its median is censored) at the next m' if d['bstar_censored'] else '68% bootstrap'})" if d["bstar_determined"]
                     else f"not determined (E never doubles for m ≤ {int(d['m'][-1])})")
                lines += ["", f"B* (E doubles): {b}; {100 * d['bstar_undetermined_frac']:.0f}% of bootstrap resamples undetermined."]
                if (N, P, value) in cp:
                    c = cp[(N, P, value)]
                    lines.append(f"Along m = 2: λ* = {c['lam_star']:.4g} ± {c['lam_err']:.2g} → 2/(T λ*) = {c['B_stab']:.3g} ± {c['B_stab_err']:.2g}; "
                                 f"B_noise at the start {c['Bnoise0']:.3g}, at the target {c['Bnoise_target']:.3g} ({c['n']} replicas).")
                summary[f"bstar_N{N}_P{P}_T{value:g}"] = (d["bstar"], d["bstar_lo"], d["bstar_hi"], d["bstar_determined"])
            lines.append("")
    if fit is not None:
        lines += [f"B* against N (P = 8N): exponent {_fmt(fit.exponent, fit.errors['exponent'])} "
                  f"(3 points; stat {fit.stat_errors['exponent']:.2g}, sys {fit.sys_errors['exponent']:.2g})", ""]
    # 3. minima
    mT = minima_series(_runs(os.path.join(base, "minima_T")), "T")
    mlr = minima_series(_runs(os.path.join(base, "minima_lr")), "lr")
    if mT or mlr:
        plot_minima(mT, mlr, os.path.join(figdir, "minima.png"))
    for label, ser in (("T", mT), ("lr", mlr)):
        for key, d in ser.items():
            lines += [f"## Minima at fixed {label} = {key:g}, N = 32, P = 32 ({d['R']} replicas)", "",
                      "| m | lr | converged (loss < 1e-5) | λ_max | tr H | |w|/√(KN) | eps_g | Δλ/λ vs m=1 (paired) | Δeps_g vs m=1 (paired) | ρ_s(λ, eps_g) across replicas |",
                      "|---|---|---|---|---|---|---|---|---|---|"]
            for i, m in enumerate(d["m"]):
                lines.append(f"| {int(m)} | {d['lr'][i]:g} | {d['converged'][i]:.2f} | {_fmt(d['lam'][i], d['lam_sem'][i])} | "
                             f"{_fmt(d['trace'][i], d['trace_sem'][i])} | {_fmt(d['wn'][i], d['wn_sem'][i])} | "
                             f"{_fmt(d['eps'][i], d['eps_sem'][i])} | {_fmt(d['d_lam'][i], d['d_lam_sem'][i])} | "
                             f"{_fmt(d['d_eps'][i], d['d_eps_sem'][i])} | {_fmt(d['rho_within_m'][i])} |")
            lines += ["", f"Paired Spearman ρ(λ_max, eps_g) over m, mean over {d['n_paired']} replicas: "
                      f"{_fmt(d['rho_paired'], d['rho_paired_sem'])}", ""]
            summary[f"minima_{label}_{key:g}"] = dict(rho=(d["rho_paired"], d["rho_paired_sem"]),
                                                      lam=d["lam"].tolist(), eps=d["eps"].tolist())
    with open(os.path.join(figdir, f"results_{scale}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(figdir, f"summary_{scale}.json"), "w") as f:
        json.dump(summary, f, indent=1, default=float)
    print("\n".join(lines))
    return summary
