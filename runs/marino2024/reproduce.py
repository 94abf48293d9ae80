#!/usr/bin/env python
"""Reproduce the mini-batch phase transition of Marino & Ricci-Tersenghi (2024) with physsgd.

    python runs/marino2024/reproduce.py [--scale small|full] [--out DIR] [--stage run|analyze|all]

1. run:     every sweep runs/marino2024/<scale>/*.toml through physsgd's sweep layer
            (physsgd.sweep.load_config + physsgd.executors.run_tasks) into OUT/<scale>/<study>/,
            one HDF5 file per task: an interrupted run resumes where it stopped.
2. analyze: analysis.load / aggregate / critical_point / fss.collapse / crossings /
            transition_order / power_law on those files; PNG figures into FIGURES (default
            runs/marino2024/figures for --scale small, runs/marino2024/figures/full otherwise) and
            the Markdown numbers table FIGURES/results_<scale>.md (pasted into README.md).

The full scale (larger N, 4x the replicas, 2x the sweep budget) is the same code path, meant for a
cluster: run it with --shard i/n on every node (or --executor dask/slurm through `physsgd run`),
then --stage analyze once.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STUDIES = ("tree_committee", "tree_parity", "random_committee", "random_committee_d", "random_committee_d_reject",
           "sgd_committee", "sgd_parity", "protocol")


def run_sweeps(scale, out, studies, workers=None, threads=None, shard=None, quiet=False):
    from physsgd import executors, sweep

    timings = {}
    for name in studies:
        cfg = os.path.join(HERE, scale, f"{name}.toml")
        sw = sweep.load_config(cfg)
        tasks = sw.tasks
        if shard is not None:
            i, n = sweep.parse_shard(shard)
            tasks = sweep.shard(tasks, i, n)
        out_dir = os.path.join(out, scale, name)
        os.makedirs(out_dir, exist_ok=True)
        t0 = time.time()

        def progress(task, outcome, report, _name=name):
            if quiet:
                return
            done = report.skipped + len(report.outcomes)
            print(f"  [{_name}] {done}/{report.total} {outcome.status} "
                  f"{getattr(outcome, 'wall_time', 0.0) or 0.0:.1f}s", flush=True)

        print(f"== {name}: {len(tasks)} tasks -> {out_dir}", flush=True)
        rep = executors.run_tasks(tasks, out_dir, workers=workers, threads=threads, progress=progress)
        timings[name] = time.time() - t0
        failed = [o for o in rep.outcomes if o.status not in ("done", "diverged")]
        print(f"== {name}: {len(rep.outcomes)} run, {rep.skipped} already done, "
              f"{len(failed)} failed, {timings[name]:.0f} s", flush=True)
        if failed:
            print(f"   first failure: {failed[0].error}", file=sys.stderr)
    return timings


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", choices=("small", "full"), default="small")
    ap.add_argument("--out", default=os.path.join(HERE, "out"), help="results root (default runs/marino2024/out)")
    ap.add_argument("--figures", default=None, help="figure/table directory")
    ap.add_argument("--stage", choices=("run", "analyze", "all"), default="all")
    ap.add_argument("--studies", nargs="*", default=list(STUDIES), choices=STUDIES)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--shard", default=None, help="i/n: run only this round-robin slice of every sweep")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    figures = a.figures or (os.path.join(HERE, "figures") if a.scale == "small"
                            else os.path.join(HERE, "figures", "full"))
    t0 = time.time()
    if a.stage in ("run", "all"):
        run_sweeps(a.scale, a.out, a.studies, a.workers, a.threads, a.shard, a.quiet)
        print(f"sweeps finished in {time.time() - t0:.0f} s", flush=True)
    if a.stage in ("analyze", "all"):
        sys.path.insert(0, HERE)
        from study import analyze_all
        t1 = time.time()
        analyze_all(a.scale, a.out, figures, a.studies)
        print(f"analysis finished in {time.time() - t1:.0f} s", flush=True)
    print(f"total {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
