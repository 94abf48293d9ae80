#!/usr/bin/env python
"""Reproduce the Sclocchi, Geiger & Wyart (ICML 2023) SGD-temperature study with physsgd.

    python runs/sclocchi2023/reproduce.py [--scale small|full] [--out DIR] [--workers W] [--analyze-only]

1. runs every sweep ``runs/sclocchi2023/*.toml`` (small) or ``runs/sclocchi2023/full/*.toml``
   (full) with ``physsgd.sweep.run`` into ``DIR/<scale>/<config>/`` (resumable: finished tasks
   are skipped on a re-run);
2. finds the exact stopping step of every one-replica task of the size and protocol sweeps by a
   bit-identical replay (``exact_stop.py``; cached in ``exact_stop.json`` next to the tasks);
3. analyses the results (``study.py``) and writes the figures and ``results_<scale>.md`` into
   ``runs/sclocchi2023/figures/`` (small) or ``runs/sclocchi2023/figures/full/`` (full).
"""
from __future__ import annotations

import argparse
import glob
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from study import EXACT_STOP  # noqa: E402  (the one-replica sweeps whose stop is replayed)
# most informative first (a long full-scale run yields the finite-size evidence early)
ORDER = ("perceptron_size", "perceptron_temperature", "perceptron_batch", "perceptron_protocol",
         "perceptron_size_chi0", "committee_phase")


def configs(scale: str) -> list[str]:
    folder = HERE if scale == "small" else os.path.join(HERE, "full")
    found = glob.glob(os.path.join(folder, "*.toml"))
    rank = {n: i for i, n in enumerate(ORDER)}
    return sorted(found, key=lambda f: (rank.get(os.path.splitext(os.path.basename(f))[0], 99), f))


def reuse_small(cfg: str, small_dir: str, d: str) -> int:
    """Hard-link (or copy) into ``d`` the task files of ``small_dir`` that the sweep ``cfg`` also
    has (a task's key is the hash of its parameters, so equal keys are equal runs), with their
    exact stopping steps; returns how many."""
    from physsgd import store, sweep
    if not os.path.isdir(small_dir):
        return 0
    keys = {t.key for t in sweep.load_config(cfg).tasks}
    have = store.task_files(small_dir)
    os.makedirs(d, exist_ok=True)
    n = 0
    for k in keys & set(have):
        dest = store.task_path(d, k)
        if not os.path.exists(dest):
            try:
                os.link(have[k], dest)
            except OSError:
                import shutil
                shutil.copyfile(have[k], dest)
            n += 1
    src, dst = os.path.join(small_dir, "exact_stop.json"), os.path.join(d, "exact_stop.json")
    if os.path.exists(src):
        known = json.load(open(dst)) if os.path.exists(dst) else {}
        known.update({k: v for k, v in json.load(open(src)).items() if k in keys})
        json.dump(known, open(dst, "w"), indent=0, sort_keys=True)
    return n


def run_sweeps(scale: str, out: str, workers: int, quiet: bool) -> dict:
    """Every sweep, then (for the one-replica ones) the exact stopping steps; wall times. The
    full scale first reuses the small scale's identical tasks."""
    from physsgd import sweep
    timings = {}
    for cfg in configs(scale):
        name = os.path.splitext(os.path.basename(cfg))[0]
        t0 = time.time()
        d = os.path.join(out, scale, name)
        if scale != "small":
            n = reuse_small(cfg, os.path.join(out, "small", name), d)
            if n:
                print(f"  {name}: {n} tasks reused from the small scale", flush=True)
        report = sweep.run(cfg, d, workers=workers, threads=1, quiet=quiet,
                           progress=False if quiet else None)
        timings[name] = time.time() - t0
        bad = [o for o in report.outcomes if o.status == "failed"]
        if bad:
            raise RuntimeError(f"{name}: {len(bad)} tasks failed, first: {bad[0].error}")
        print(f"  {name}: {report.total} tasks, {timings[name]:.0f} s", flush=True)
        if name in EXACT_STOP:
            t0 = time.time()
            exact_stops(d, workers)
            timings[name + " (exact stop)"] = time.time() - t0
            print(f"  {name}: exact stopping steps, {timings[name + ' (exact stop)']:.0f} s", flush=True)
    return timings


def _exact(path):
    import physsgd as ps
    import exact_stop
    return os.path.basename(path)[:-3], exact_stop.exact_stop(ps.load(path))


def exact_stops(directory: str, workers: int) -> dict:
    """key -> exact stopping step of every task file in ``directory`` (cached)."""
    from physsgd import store
    cache = os.path.join(directory, "exact_stop.json")
    known = json.load(open(cache)) if os.path.exists(cache) else {}
    todo = [p for k, p in store.task_files(directory).items() if k not in known]
    if todo:
        ctx = multiprocessing.get_context("spawn")       # no fork of a process with numba threads
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            for key, t in pool.map(_exact, todo, chunksize=8):
                known[key] = t
        tmp = cache + ".tmp"
        json.dump(known, open(tmp, "w"), indent=0, sort_keys=True)
        os.replace(tmp, cache)
    return known


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=("small", "full"), default="small")
    p.add_argument("--out", default=os.path.join(HERE, "out"), help="results directory (gitignored)")
    p.add_argument("--workers", type=int, default=2, help="processes (each runs one task on one thread)")
    p.add_argument("--analyze-only", action="store_true", help="skip the sweeps, analyse what is there")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    t0 = time.time()
    root = os.path.join(args.out, args.scale)
    timings = {}
    tfile = os.path.join(root, "timings.json")
    if not args.analyze_only:
        timings = run_sweeps(args.scale, args.out, args.workers, args.quiet)
        load = os.getloadavg()
        timings["load average at the end (1/5/15 min)"] = f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}"
        json.dump(timings, open(tfile, "w"), indent=0)
    elif os.path.exists(tfile):
        timings = json.load(open(tfile))
    import study
    figdir = os.path.join(HERE, "figures") if args.scale == "small" else os.path.join(HERE, "figures", "full")
    study.analyze(root, figdir, scale=args.scale, timings=timings)
    print(f"total: {time.time() - t0:.0f} s wall", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
