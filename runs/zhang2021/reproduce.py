"""Edge of chaos (Zhang, Feng, Chen, Lai 2021; SCIENCE.md section 3) with physsgd.

    python runs/zhang2021/reproduce.py [--scale small|full] [--out DIR] [--fashion-mnist PATH]

Part A: the chaos probe of random square layers x <- tanh(W x) (physsgd.chaos).
Part B: the paper's network (mlp.py: square tanh hidden layer with a trained softmax read-out,
  SGD with momentum and weight decay, PyTorch conventions) on scikit-learn's bundled digits
  (8x8 = 64 inputs, 10 classes; skipped with a message when scikit-learn is missing): the initial
  J swept across the order-chaos boundary, equal-scale-factor groups from both phases at learning
  rates up to where the collapse breaks, weight decay.
Part C (only with --fashion-mnist PATH, the folder of the IDX files): part B on Fashion-MNIST,
  2x2-pooled (196 inputs; --no-pool for the paper's 784).

Results (chaos.npz, <data>.json, table.md, summary.txt) go to --out (default
runs/zhang2021/out/<scale>; finished pieces are reused); figures to runs/zhang2021/figures/
(small scale) or <out>/figures (full scale).
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import study  # noqa: E402


def cpu_seconds():
    return sum(getattr(resource.getrusage(w), a) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for a in ("ru_utime", "ru_stime"))


def data_section(name, res, figdir, table, summary, label, N, C):
    """Figures and table rows of part B on one data set."""
    sweep, groups, decay, edge = res["sweep"], res["groups"], res["decay"], res["edge"]
    ga = study.group_analysis(groups)
    sf = study.scaling_fits(edge)
    study.fig_groups(groups, ga, os.path.join(figdir, f"{name}_groups.png"),
                     f"{label}: $J^2(t)$ of equal-$s$ groups (lr spans 16×: B = 8, 32, 128 and "
                     "momentum 0.9)")
    study.fig_collapse_vs_lr(ga, os.path.join(figdir, f"{name}_collapse_vs_lr.png"),
                             f"{label}: deviation from the equal-$s$ reference vs learning rate")
    study.fig_scaling(edge, sf, os.path.join(figdir, f"{name}_scaling.png"),
                      f"{label}: the scaling relation in the ordered phase")
    study.fig_sweep(sweep, os.path.join(figdir, f"{name}_phase_sweep.png"),
                    f"{label}: initial J across the boundary (lr={study.SWEEP_OPT.lr:g}, "
                    f"B={study.SWEEP_OPT.batch_size}, m=0)")
    study.fig_decay(decay, os.path.join(figdir, f"{name}_weight_decay.png"),
                    f"{label}: weight decay (PyTorch weight_decay = 2λ of the paper)")
    for a in ga:
        summary.append(f"{name} s={a['s']:.4g} J(0)={a['J_init']:g} t_c={a['t_c']:.3g} epochs: " +
                       "; ".join(f"lr={r['lr']:.3g} B={r['B']} m={r['m']:g}: ΔJ²={r['dJ2']:.4f}±{r['dJ2_err']:.4f}"
                                 f" D={100 * r['D']:+.1f}±{100 * r['D_err']:.1f}%" for r in a["members"]))
    reps = len(res["sweep"][0]["J"])
    for J in (0.5, 2.0):
        lam = study.initial_lyapunov(N, J, reps, C=C)
        table.append((f"{label}: λ₁ of the starting layers, J(0)={J:g}, N={N}",
                      f"{lam.mean():+.3f} ± {lam.std(ddof=1) / math.sqrt(len(lam)):.3f}; "
                      f"{int((lam > study.LAMBDA_MIN).sum())}/{len(lam)} chaotic",
                      "ordered (J < 1) / chaotic (J > 1) start"))
    for J, phase in ((0.5, "ordered"), (2.0, "chaotic")):
        rows = [a for a in ga if a["J_init"] == J]
        desc = "; ".join(f"s={a['s']:.3g} (lr ≤ {max(r['lr'] for r in a['members']):.3g}): "
                         f"{'yes' if a['collapse'] else 'NO'}, max|D| = {100 * a['Dmax']:.0f}%"
                         for a in rows)
        claim = ("equal-s curves coincide (ordered phase, §3.1 [P], §3.3 [S])" if J == 0.5
                 else "they do not in the chaotic phase (§3.1 [P])")
        table.append((f"{label}: equal-s collapse of ΔJ², start J(0)={J:g} ({phase})", desc, claim))
    # the contrast the paper claims: an s where ordered collapses and chaotic does not
    contrast = [a["s"] for a in ga if a["J_init"] == 0.5 and a["collapse"]
                and not next(b for b in ga if b["s"] == a["s"] and b["J_init"] == 2.0)["collapse"]]
    both_fail = [a["s"] for a in ga if a["J_init"] == 0.5 and not a["collapse"]
                 and not next(b for b in ga if b["s"] == a["s"] and b["J_init"] == 2.0)["collapse"]]
    verdict = (f"reproduced at s = {', '.join(f'{s:.3g}' for s in contrast)}" if contrast else
               "not reproduced: at every s the two phases agree (both collapse" +
               (f"; both fail at s = {', '.join(f'{s:.3g}' for s in both_fail)})" if both_fail else ")"))
    table.append((f"{label}: phase contrast (ordered collapses, chaotic does not)", verdict,
                  "§3.1 [P]"))
    B, m = study.MEMBERS[0]
    table.append((f"{label}: training time to the edge t_edge ∝ s^x (epochs J = 0.5 → 0.9, B={B}, m={m:g})",
                  f"x = {study.fmt_fit(sf['fit'])} on the small-step range s ≤ {sf['s_max']:.3g} "
                  f"(one power law, p ≥ 0.05); all s: {study.fmt_fit(sf['fit_all'])}",
                  "x = −1: the time scale is 1/s (§3.3 [S])"))
    betas = ", ".join(f"s={b['s']:.3g}: {study.fmt_fit(b['fit'])}" for b in sf["beta"])
    table.append((f"{label}: ΔJ² ∝ t^β in the ordered window (B={study.MEMBERS[0][0]}, m=0)", betas,
                  "β = 1, linear in epochs (§3.3 [S])"))
    fin = sorted(((r["J_init"], r["wd"], np.nanmean(study.arr(r, "J")[:, -1])) for r in decay))
    for J in (0.5, 2.0):
        vals = ", ".join(f"{wd:g}: {j:.2f}" for J0, wd, j in fin if J0 == J)
        table.append((f"{label}: final J against weight decay, J(0)={J:g}", vals,
                      "weight decay pushes towards order (§3.1 [P])"))
    errs = [(r["J_init"], *study.mean_sem(1 - study.arr(r, "test_acc")[:, -1]),
             *study.mean_sem(study.arr(r, "J")[:, -1]), *study.mean_sem(r["lam"])) for r in sweep]
    best = min(errs, key=lambda e: e[1])
    within = [e for e in errs if e[1] - best[1] <= 2 * math.hypot(e[2], best[2])]
    table.append((f"{label}: test error against J(0) (final J, λ₁ of the trained layer)",
                  "; ".join(f"J(0)={e[0]:g}: {e[1]:.4f}±{e[2]:.4f} (J={e[3]:.2f}, λ₁={e[5]:+.3f})"
                            for e in errs),
                  "optimal generalisation at the edge of chaos (§3.1 [P])"))
    table.append((f"{label}: best test error and the runs within 2σ of it",
                  f"best at J(0)={best[0]:g} ({best[1]:.4f}); within 2σ: J(0) ∈ "
                  f"{{{', '.join(f'{e[0]:g}' for e in within)}}}, final J {min(e[3] for e in within):.2f}"
                  f"–{max(e[3] for e in within):.2f}",
                  "edge of chaos J ≈ 1"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", choices=sorted(study.SCALES), default="small")
    ap.add_argument("--out", default=None)
    ap.add_argument("--fashion-mnist", default=None, help="folder with the Fashion-MNIST IDX files")
    ap.add_argument("--no-pool", action="store_true", help="Fashion-MNIST at 784 inputs (slow)")
    args = ap.parse_args(argv)
    cfg = study.SCALES[args.scale]
    out = args.out or os.path.join(HERE, "out", args.scale)
    figdir = os.path.join(HERE, "figures") if args.scale == "small" else os.path.join(out, "figures")
    os.makedirs(out, exist_ok=True)
    os.makedirs(figdir, exist_ok=True)
    t0, c0 = time.perf_counter(), cpu_seconds()
    summary, table, timings = [], [], {}

    study.log("A. chaos probe of random tanh layers")
    t1 = time.perf_counter()
    d = study.chaos_probe(cfg, out)
    ch = study.analyse_chaos(d, figdir, summary)
    timings["chaos probe"] = time.perf_counter() - t1
    cp = ch.get("cp")
    if cp is not None:
        jc = ", ".join(f"{int(L)}: {x:.3f}±{e:.3f}" for L, x, e in zip(cp.sizes, cp.xc, cp.xc_err))
        table.append(("random layers: J_c(N) where P(λ₁>10⁻³)=½", jc, "— (finite-size onset)"))
        # analysis.critical_point already scales the statistical error of xc_inf by sqrt(chi2/dof)
        # when the extrapolation misses its points (its summary says so): scaling here again
        # would count it twice
        e_inf = cp.errors.get("xc_inf", np.nan)
        val = f"{cp.xc_inf:.3f} ± {e_inf:.3f} (ν = {cp.nu:.2g}, χ²/dof = {cp.chi2:.1f}/{cp.dof})"
        if not np.isfinite(e_inf) or e_inf > 0.25:
            val = f"not determined at N ≤ {int(max(cp.sizes))} ({val})"
        table.append(("random layers: J_c(∞), extrapolated", val,
                      "J = 1 (edge of chaos, §3.3 [S]; mean field §3.4)"))
    fit = ch.get("collapse")
    if fit is not None:
        table.append(("random layers: collapse of P(chaotic): J_c, ν",
                      f"{fit.xc:.3f} ± {fit.errors['xc']:.3f}, ν = {fit.nu:.2f} ± {fit.errors['nu']:.2f}"
                      f" (S = {fit.quality:.2f})", "J = 1; ν not in the paper"))
    table.append((f"random layers: λ₁ at N={ch['N_max']}: max for J<0.95 / min for J>1.25",
                  f"{ch['lam_below']:.4f} / {ch['lam_above']:.4f}", "λ₁<0 ordered, >0 chaotic (§3.4)"))
    study.log(f"  ({timings['chaos probe']:.0f} s)")

    study.log("B. the network on digits")
    dig = study.digits_data()
    if dig is None:
        msg = "scikit-learn is not installed: the digits study is skipped (pip install scikit-learn)"
        study.log("  " + msg)
        summary.append(msg)
    else:
        t1 = time.perf_counter()
        res = study.experiments("digits", dig, cfg, out)
        timings["digits"] = time.perf_counter() - t1
        data_section("digits", res, figdir, table, summary, "digits", dig[0].shape[1],
                     int(dig[1].max() + 1))
    if args.fashion_mnist:
        import fashion_mnist as fm
        X, lab = fm.load_fashion_mnist(args.fashion_mnist, "train")
        Xt, labt = fm.load_fashion_mnist(args.fashion_mnist, "test")
        Z, Zt = fm.features(X, Xt, pool=not args.no_pool)
        t1 = time.perf_counter()
        res = study.experiments("fashion_mnist", (Z, lab, Zt, labt), cfg, out)
        timings["fashion_mnist"] = time.perf_counter() - t1
        data_section("fashion_mnist", res, figdir, table, summary, "Fashion-MNIST", Z.shape[1], 10)

    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    md = ["| claim / quantity | ours | paper / theory |", "| --- | --- | --- |"]
    md += [f"| {a} | {b} | {c} |" for a, b, c in table]
    load = os.getloadavg()
    md.append(f"\nscale: {args.scale}; this invocation: wall {wall:.0f} s, CPU {cpu:.0f} s "
              f"(pieces already in --out are reused); " +
              ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) +
              f"; load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
              f"on {os.cpu_count()} cores")
    open(os.path.join(out, "table.md"), "w").write("\n".join(md) + "\n")
    open(os.path.join(out, "summary.txt"), "w").write("\n\n".join(summary) + "\n")
    study.log("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
