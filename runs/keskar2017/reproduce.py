#!/usr/bin/env python
"""Reproduce the batch-size study (after Keskar et al., ICLR 2017) with physsgd.

    python runs/keskar2017/reproduce.py [--scale small|full] [--out DIR] [--workers W] [--analyze-only]

1. the gradient-noise measurement (``study.noise_vs_batch``: the first SGD step of thousands of
   replicas from one start on one training set, ps.train directly; a few seconds);
2. every sweep ``runs/keskar2017/*.toml`` (small) or ``runs/keskar2017/full/*.toml`` (full)
   through ``physsgd.sweep.run`` into ``DIR/<scale>/<config>`` (resumable: finished tasks are
   skipped on a re-run);
3. the analysis (``study.analyze``): times to target, B*, sharpness and test error against m,
   with bootstrap errors over replicas; PNG figures into ``runs/keskar2017/figures/`` (small) or
   ``DIR/<scale>/figures`` (full) and the table ``results_<scale>.md`` next to them.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def configs(scale: str) -> list[str]:
    folder = HERE if scale == "small" else os.path.join(HERE, "full")
    return sorted(glob.glob(os.path.join(folder, "*.toml")))


def run_sweeps(scale, out, workers, quiet) -> dict:
    from physsgd import sweep
    timings = {}
    for cfg in configs(scale):
        name = os.path.splitext(os.path.basename(cfg))[0]
        t0 = time.time()
        print(f"+ sweep {name} -> {os.path.join(out, scale, name)}", flush=True)
        sweep.run(cfg, os.path.join(out, scale, name), workers=workers, threads=1, quiet=quiet)
        timings[name] = round(time.time() - t0, 1)
        print(f"  {name}: {timings[name]:.0f} s", flush=True)
    return timings


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=("small", "full"), default="small")
    p.add_argument("--out", default=os.path.join(HERE, "out"), help="results directory (gitignored)")
    p.add_argument("--workers", type=int, default=None, help="sweep worker processes (default: cores)")
    p.add_argument("--analyze-only", action="store_true", help="skip the simulations, analyse what is there")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    import study
    t0 = time.time()
    base = os.path.join(args.out, args.scale)
    os.makedirs(base, exist_ok=True)
    timings = {}
    if not args.analyze_only:
        t = time.time()
        study.noise_vs_batch(os.path.join(base, "noise_vs_batch.npz"), scale=args.scale)
        timings["noise_vs_batch"] = round(time.time() - t, 1)
        timings.update(run_sweeps(args.scale, args.out, args.workers, args.quiet))
        with open(os.path.join(base, "timings.json"), "w") as f:
            json.dump(timings, f, indent=1)
        print(f"simulations: {time.time() - t0:.0f} s wall ({timings})", flush=True)
    figdir = os.path.join(HERE, "figures") if args.scale == "small" else os.path.join(base, "figures")
    study.analyze(base, figdir, scale=args.scale)
    print(f"total: {time.time() - t0:.0f} s wall", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
