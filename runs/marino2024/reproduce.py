#!/usr/bin/env python
"""Reproduce the mini-batch phase transition of Marino & Ricci-Tersenghi (2024) with physsgd,
measured as a phase: stationary observables from random and planted starts.

    python runs/marino2024/reproduce.py [--scale small|full] [--out DIR] [--stage run|analyze|all]

1. run:     every sweep runs/marino2024/<scale>/*.toml through physsgd.sweep.run into
            OUT/<scale>/<study>/, one HDF5 file per task: an interrupted run resumes where it
            stopped (re-run the same command).
2. analyze: study.py (only the ``analysis`` package): thresholds from both starts, hysteresis,
            lifetimes, the order of each transition, m_c(d); PNG figures into FIGURES (default
            runs/marino2024/figures for --scale small, runs/marino2024/figures/full otherwise),
            the Markdown numbers FIGURES/results_<scale>.md (pasted into README.md) and every
            fit's summary FIGURES/fits_<scale>.txt.

The full scale (d up to 65, 64 replicas, budgets 1000 / 4000 sweeps) is the same code path, meant
for a cluster: run it with --shard i/n on every node (or `physsgd run ... --executor dask|slurm`),
then --stage analyze once.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STUDIES = ("tree_committee", "tree_committee_reject", "tree_parity", "random_committee_d",
           "dense_committee", "finite_set", "first_passage")


def run_sweeps(scale, out, studies, workers=None, threads=None, shard=None, quiet=False):
    from physsgd import sweep

    timings = {}
    for name in studies:
        cfg = os.path.join(HERE, scale, f"{name}.toml")
        out_dir = os.path.join(out, scale, name)
        t0 = time.time()
        print(f"== {name} -> {out_dir}", flush=True)
        rep = sweep.run(cfg, out_dir, shard=shard, workers=workers, threads=threads,
                        progress=False if quiet else None)
        timings[name] = time.time() - t0
        print(f"== {name}: {rep.summary()}; {timings[name]:.0f} s", flush=True)
        if rep.failed:
            print(f"   first failure: {rep.failed[0].error}", file=sys.stderr)
    return timings


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=("small", "full"), default="small",
                    help="small (default, <= 30 min on 2 cores) or full (cluster sizes)")
    ap.add_argument("--out", default=os.path.join(HERE, "out"),
                    help="results root (default runs/marino2024/out, gitignored)")
    ap.add_argument("--figures", default=None, help="figure/table directory (default: see above)")
    ap.add_argument("--stage", choices=("run", "analyze", "all"), default="all",
                    help="run the sweeps, analyse existing results, or both (default)")
    ap.add_argument("--studies", nargs="*", default=list(STUDIES), choices=STUDIES,
                    help="which sweeps (default: all)")
    ap.add_argument("--workers", type=int, default=None, help="parallel tasks (default: from cores)")
    ap.add_argument("--threads", type=int, default=None, help="numba threads per task")
    ap.add_argument("--shard", default=None, help="i/n: run only this round-robin slice of every sweep")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    a = ap.parse_args(argv)
    figures = a.figures or (os.path.join(HERE, "figures") if a.scale == "small"
                            else os.path.join(HERE, "figures", "full"))
    t0 = time.time()
    timings = {}
    if a.stage in ("run", "all"):
        timings = run_sweeps(a.scale, a.out, a.studies, a.workers, a.threads, a.shard, a.quiet)
        print(f"sweeps finished in {time.time() - t0:.0f} s", flush=True)
    if a.stage in ("analyze", "all"):
        sys.path.insert(0, HERE)
        from study import analyze_all
        t1 = time.time()
        analyze_all(a.scale, a.out, figures, a.studies, timings=timings)
        print(f"analysis finished in {time.time() - t1:.0f} s; figures and tables in {figures}",
              flush=True)
    print(f"total {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
