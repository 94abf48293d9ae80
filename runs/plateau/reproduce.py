#!/usr/bin/env python
"""Plateau escape time of online SGD and its spread versus N, with the exact overlap chain.

    python runs/plateau/reproduce.py [--scale small|extended|full] [--out DIR] [--workers W]
                                     [--threads T] [--analyze-only]

1. checks that the sweep's escape thresholds are theory.plateau(K, 0.5).eps_g / 10;
2. runs the escape sweeps with ``physsgd.sweep.run`` (resumable: finished tasks are skipped on
   a re-run): small ``runs/plateau/escape.toml`` (N = 10^2 ... 10^5) into DIR/small/escape;
   extended: the small sweep and ``runs/plateau/extend/escape.toml`` (K = 2 and 3 at N = 10^6,
   16 replicas, and 10^7, 4 replicas) into DIR/extend/escape; full ``runs/plateau/full/escape.toml``
   (N = 10^2 ... 10^7) into DIR/full/escape;
3. runs a few trajectories for the first figure (cached in DIR/<scale>/trajectories_K*.npz; the
   extended scale uses the small scale's);
4. analyses (study.py) every task of those sweeps together: escape statistics per (K, N), the
   noiseless ODE from the replicas' own initial overlaps, the weighted fit
   alpha_esc = a + b ln N, the unstable eigenvalue lambda;
5. writes the figures into runs/plateau/figures/ (small), runs/plateau/figures/extended/
   (extended) or DIR/full/figures (full), and results_<scale>.md next to them.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
import tomllib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

TRAJ_N = {"small": (100, 1000, 10000, 100000), "full": (100, 10000, 1000000)}
TRAJ_ALPHA = {2: 600, 3: 800}
ODE_REPLICAS = 64          # replicas per (K, N) whose initial overlaps feed the noiseless ODE
FIT_N_MIN = 1000           # the fit uses N >= this (the ln N law is asymptotic)


SWEEPS = {"small": ["small"], "extended": ["small", "extend"], "full": ["full"]}
CONFIGS = {"small": os.path.join(HERE, "escape.toml"),
           "extend": os.path.join(HERE, "extend", "escape.toml"),
           "full": os.path.join(HERE, "full", "escape.toml")}


def sweeps(scale):
    """(name, TOML) of the sweeps a scale analyses; each runs into DIR/<name>/escape."""
    return [(name, CONFIGS[name]) for name in SWEEPS[scale]]


def check_thresholds(scale):
    """The TOML's success_eps are eps_plateau / 10 of the ODE's fixed point, its alphas the
    study's budgets."""
    from physsgd import theory
    import study
    for _, path in sweeps(scale):
        with open(path, "rb") as f:
            grid = tomllib.load(f)["grid"]["zip"][0]
        for K, eps, alpha in zip(grid["K"], grid["success_eps"], grid["alpha"]):
            want = theory.plateau(K, study.LR).eps_g / 10
            if abs(eps / want - 1) > 1e-9 or alpha != study.ALPHA_MAX[K]:
                raise SystemExit(f"{path}: K={K} has success_eps={eps}, alpha={alpha}; "
                                 f"expected {want} and {study.ALPHA_MAX[K]}")


def cpu_seconds():
    """CPU time of this process and of its finished children (the sweep's workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_sweep(scale, out, workers, threads):
    """Run (or resume) the scale's sweeps; DIR/<name>/sweep_timing.json keeps each one's time
    (that of the run that did its work: a re-run that finds every task done keeps the old one)."""
    from physsgd import sweep
    total = dict(wall=0.0, cpu=0.0)
    for name, path in sweeps(scale):
        dest = os.path.join(out, name, "escape")
        t0, c0 = time.time(), cpu_seconds()
        report = sweep.run(path, dest, workers=workers, threads=threads)
        if not report.ok:
            raise SystemExit(f"the sweep had failures; re-run to resume ({dest})")
        timing = dict(wall=time.time() - t0, cpu=cpu_seconds() - c0)
        stamp = os.path.join(out, name, "sweep_timing.json")
        if report.outcomes or not os.path.exists(stamp):
            with open(stamp, "w") as f:
                json.dump(timing, f)
        total = {k: total[k] + timing[k] for k in total}
    return total


def run_trajectories(scale, out):
    import study
    scale = "small" if scale == "extended" else scale      # the same figure: N = 10^2 ... 10^5
    traj = {}
    for K in study.K_VALUES:
        path = os.path.join(out, scale, f"trajectories_K{K}.npz")
        if os.path.exists(path):
            z = np.load(path)
            traj[K] = {int(N): (z[f"alpha_{N}"], z[f"eps_{N}"]) for N in z["N"]}
            continue
        traj[K] = {}
        for N in TRAJ_N[scale]:
            traj[K][N] = study.trajectories(K, N, replicas=4, seed=1, alpha_max=TRAJ_ALPHA[K])
        np.savez(path, N=np.array(list(traj[K])),
                 **{f"alpha_{N}": a for N, (a, _) in traj[K].items()},
                 **{f"eps_{N}": e for N, (_, e) in traj[K].items()})
    return traj


def analyse(scale, out, figures):
    import analysis as an
    import study
    data = {}
    for name, _ in sweeps(scale):
        data.update(study.load_escapes(os.path.join(out, name, "escape")))
    data = dict(sorted(data.items()))
    inst = {K: study.instability(K) for K in study.K_VALUES}
    summary, fits = {}, {}
    for (K, N), d in data.items():
        row = dict(N=N, replicas=d["replicas"], wall=d["wall"], steps=d["steps"],
                   **study.escape_stats(d["alpha"], d["censored"]))
        n_ode = min(ODE_REPLICAS, d["replicas"])
        ode = study.ode_escapes(K, d["Q0"][:n_ode], d["R0"][:n_ode], d["T"][:n_ode],
                                d["success_eps"], study.ALPHA_MAX[K])
        chain = d["alpha"][:n_ode]
        both = np.isfinite(ode) & np.isfinite(chain)
        row.update(ode_n=n_ode, ode_censored=int(np.sum(~np.isfinite(ode))),
                   ode_mean=float(np.mean(ode)) if both.all() else np.nan,
                   ode_sd=float(np.std(ode, ddof=1)) if both.all() else np.nan,
                   noise_shift=float(np.mean(chain[both] - ode[both])) if both.any() else np.nan,
                   noise_shift_err=float(np.std(chain[both] - ode[both], ddof=1) / math.sqrt(both.sum()))
                   if both.sum() > 1 else np.nan,
                   corr=float(np.corrcoef(chain[both], ode[both])[0, 1]) if both.sum() > 2 else np.nan)
        summary.setdefault(K, []).append(row)
    for K, rows in summary.items():
        use = [r for r in rows if r["N"] >= FIT_N_MIN and np.isfinite(r["mean"])]
        if len(use) < 3:      # a line through 2 points has no chi2: the slope's error is untested
            fits[K] = None
            continue
        f = study.fit_line(np.log([r["N"] for r in use]), [r["mean"] for r in use], [r["sem"] for r in use])
        f["N_min"] = FIT_N_MIN
        everything = [r for r in rows if np.isfinite(r["mean"])]
        f["all_N"] = study.fit_line(np.log([r["N"] for r in everything]), [r["mean"] for r in everything],
                                    [r["sem"] for r in everything])
        # the same weighted line through analysis.power_law: e^{alpha/s} = e^{a/s} N^{b/s}
        # exactly, so its exponent is b/s; its variants (drop the smallest / largest N,
        # unweighted) give a systematic error of b
        s = 100.0
        pl = an.power_law([r["N"] for r in use], np.exp([r["mean"] / s for r in use]),
                          np.exp([r["mean"] / s for r in use]) * np.array([r["sem"] / s for r in use]))
        f["power_law"] = dict(b=pl.exponent * s, stat=pl.stat_errors["exponent"] * s,
                              sys=pl.sys_errors["exponent"] * s, total=pl.errors["exponent"] * s,
                              chi2=pl.chi2, dof=pl.dof, notes=pl.notes)
        fits[K] = f
    traj = run_trajectories(scale, out)
    os.makedirs(figures, exist_ok=True)
    paths = [study.figure_trajectories(traj, inst, os.path.join(figures, "trajectories.png")),
             study.figure_escape_vs_N(summary, fits, inst, os.path.join(figures, "escape_vs_N.png")),
             study.figure_distribution(data, inst, os.path.join(figures, "escape_law.png"))]
    plateau_check = plateau_heights(traj, inst)
    law = law_tests(data, inst)
    text = report(scale, out, summary, fits, inst, plateau_check, law)
    with open(os.path.join(figures, f"results_{scale}.md"), "w") as f:
        f.write(text)
    os.makedirs(os.path.join(out, scale), exist_ok=True)
    with open(os.path.join(out, scale, "summary.json"), "w") as f:
        json.dump(dict(summary={str(k): v for k, v in summary.items()},
                       fits={str(k): v for k, v in fits.items()},
                       instability={str(K): dict(lam=i.lam, multiplicity=i.multiplicity,
                                                 slope=i.slope, plateau=i.plateau.eps_g)
                                    for K, i in inst.items()}), f, indent=1, default=float)
    print(text)
    return paths


def plateau_heights(traj, inst):
    """Median eps_g over the trajectories at alpha = 100 (on the plateau for N >= 10^4) against
    the ODE's fixed point."""
    out = {}
    for K, by_N in traj.items():
        N = max(by_N)
        alpha, eps = by_N[N]
        j = int(np.argmin(np.abs(alpha - 100)))
        out[K] = dict(N=N, alpha=float(alpha[j]), measured=float(np.median(eps[:, j])),
                      spread=float(np.std(eps[:, j])), theory=inst[K].plateau.eps_g)
    return out


def law_tests(data, inst):
    """KS test of lambda (alpha_esc - mean) against the isotropic-Gaussian-amplitude law
    (study.escape_density), at the N >= 10^3 with all replicas escaped and the most of them
    (study.law_size). The mean is estimated, so the p-value is slightly conservative."""
    from scipy import integrate, stats
    import study
    out = {}
    for K in study.K_VALUES:
        if not any(k == K and not d["censored"].any() for (k, _), d in data.items()):
            continue
        N = study.law_size(data, K)
        a = data[(K, N)]["alpha"]
        u = np.sort(inst[K].lam * (a - a.mean()))
        dim = inst[K].multiplicity
        grid = np.linspace(u[0] - 8, u[-1] + 8, 4001)
        cdf = integrate.cumulative_trapezoid(study.escape_density(grid, dim), grid, initial=0)
        ks = stats.kstest(u, lambda x: np.interp(x, grid, cdf / cdf[-1]))
        out[K] = dict(N=N, n=a.size, dim=dim, ks=float(ks.statistic), p=float(ks.pvalue))
    return out


def _fmt(x, err=None, digits=1):
    if not np.isfinite(x):
        return "not determined"
    return f"{x:.{digits}f}" + (f" ± {err:.{digits}f}" if err is not None and np.isfinite(err) else "")


def report(scale, out, summary, fits, inst, plateau_check, law):
    import study
    L = [f"# Plateau escape vs N: results ({scale} scale)", "",
         "erf soft committee K = M, lr = 0.5, batch 1, Q(0) = 0.2, exact overlap chain "
         "(`engine=\"overlaps\"`); escape = first probe (every N/20 steps) with "
         "eps_g < eps_g*/10, eps_g* the ODE plateau (theory.plateau).", "",
         "## Theory (Saad-Solla ODE, symmetric fixed point)", "",
         "| K | eps_g* | lambda (per alpha) | multiplicity | predicted slope 1/(2 lambda) | "
         "predicted N→∞ sd(alpha_esc) |", "|---:|---:|---:|---:|---:|---:|"]
    for K, i in inst.items():
        sd = study.log_amplitude_sd(i.multiplicity) / i.lam
        L.append(f"| {K} | {i.plateau.eps_g:.5f} | {i.lam:.5f} | {i.multiplicity} | {i.slope:.2f} | "
                 f"{sd:.1f}{' (isotropic amplitude assumed)' if i.multiplicity > 1 else ''} |")
    L += ["", "## Escape statistics per N", "",
          "| K | N | replicas | censored | mean alpha_esc ± s.e. | sd ± s.e. | median | "
          "noiseless ODE: mean (sd), n | chain − ODE (same replicas) | corr(chain, ODE) | "
          "chain steps | wall (s) |",
          "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for K, rows in summary.items():
        for r in rows:
            L.append(f"| {K} | 10^{round(math.log10(r['N']))} | {r['n']} | {r['censored']} | "
                     f"{_fmt(r['mean'], r['sem'])} | {_fmt(r['sd'], r['sd_err'])} | {_fmt(r['median'])} | "
                     f"{_fmt(r['ode_mean'])} ({_fmt(r['ode_sd'])}), {r['ode_n']} | "
                     f"{_fmt(r['noise_shift'], r['noise_shift_err'])} | {r['corr']:.2f} | "
                     f"{r['steps']:.3g} | {r['wall']:.0f} |")
    L += ["", "## Fit alpha_esc = a + b ln N (weighted by the s.e. of the means)", "",
          "| K | N range | a | b | chi2/dof | p | b predicted | b via analysis.power_law (stat, sys) |",
          "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for K, f in fits.items():
        if f is None:
            L.append(f"| {K} | fewer than 3 sizes with N ≥ 10^{round(math.log10(FIT_N_MIN))} "
                     "and every replica escaped | not determined | not determined | — | — | "
                     f"{inst[K].slope:.2f} | — |")
            continue
        pl = f["power_law"]
        for label, g in ((f"N ≥ 10^{round(math.log10(f['N_min']))}", f), ("all N", f["all_N"])):
            if g is not f:
                extra = "—"
            elif f["n"] < 4:    # its variants drop a size: a line through 2 points tests nothing
                extra = (f"{pl['b']:.2f} ± {pl['stat']:.2f} (stat); sys not determined "
                         f"({f['n']} sizes)")
            else:
                extra = f"{pl['b']:.2f} ± {pl['total']:.2f} ({pl['stat']:.2f}, {pl['sys']:.2f})"
            scaled = " (errors × sqrt(chi2/dof))" if g["scale"] > 1 else ""
            L.append(f"| {K} | {label} ({g['n']} points) | {g['a']:.1f} ± {g['da']:.1f} | "
                     f"{g['b']:.2f} ± {g['db']:.2f}{scaled} | {g['chi2']:.2f}/{g['dof']} | "
                     f"{g['p']:.2g} | {inst[K].slope:.2f} | {extra} |")
    L += ["", "## Plateau height and law of the escape time", "",
          "| K | check | measured | theory |", "|---:|---|---:|---:|"]
    for K, p in plateau_check.items():
        L.append(f"| {K} | median eps_g at alpha = {p['alpha']:.0f}, N = 10^{round(math.log10(p['N']))} "
                 f"(4 replicas) | {p['measured']:.5f} | {p['theory']:.5f} |")
    for K, t in law.items():
        L.append(f"| {K} | KS test of lambda (alpha_esc − mean), N = 10^{round(math.log10(t['N']))}, "
                 f"n = {t['n']}, vs −ln|A|, A Gaussian in {t['dim']} dim | D = {t['ks']:.3f}, "
                 f"p = {t['p']:.2g} | — |")
    for name, _ in sweeps(scale):
        timing = os.path.join(out, name, "sweep_timing.json")
        if os.path.exists(timing):
            with open(timing) as f:
                t = json.load(f)
            L += ["", f"Sweep {name}: {t['wall']:.0f} s wall, {t['cpu']:.0f} s CPU (workers "
                  f"included, as recorded by the run that did its tasks)."]
    L += ["", f"{sum(r['steps'] for rows in summary.values() for r in rows):.3g} chain steps in all."]
    return "\n".join(L) + "\n"



def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=tuple(SWEEPS), default="small")
    p.add_argument("--out", default=os.path.join(HERE, "out"), help="results directory (gitignored)")
    p.add_argument("--workers", type=int, default=None, help="sweep workers (default: automatic)")
    p.add_argument("--threads", type=int, default=None,
                   help="numba threads per task (default: the cores left per worker; the results "
                        "do not depend on it). Pass it when NUMBA_NUM_THREADS caps the threads.")
    p.add_argument("--analyze-only", action="store_true", help="skip the sweep, analyse what is there")
    args = p.parse_args(argv)
    t0 = time.time()
    check_thresholds(args.scale)
    if not args.analyze_only:
        timing = run_sweep(args.scale, args.out, args.workers, args.threads)
        print(f"escape sweep: {timing['wall']:.0f} s wall, {timing['cpu']:.0f} s CPU", flush=True)
    figures = {"small": os.path.join(HERE, "figures"),
               "extended": os.path.join(HERE, "figures", "extended"),
               "full": os.path.join(args.out, "full", "figures")}[args.scale]
    for path in analyse(args.scale, args.out, figures):
        print("wrote", path)
    print(f"total {time.time() - t0:.0f} s wall, {cpu_seconds():.0f} s CPU (this process and its workers)")


if __name__ == "__main__":
    main()
