#!/usr/bin/env python
"""Reproduce the Sclocchi, Geiger & Wyart (ICML 2023) SGD-temperature study with physsgd.

    python runs/sclocchi2023/reproduce.py [--scale small|full] [--out DIR] [--workers W] [--analyze-only]

1. runs every sweep ``runs/sclocchi2023/*.toml`` (small) or ``runs/sclocchi2023/full/*.toml`` (full)
   through physsgd's sweep layer (``physsgd run CONFIG --out DIR/<scale>/<config>``; resumable:
   finished tasks are skipped on a re-run);
2. analyses the results (``study.py``): power-law fits with statistical and systematic errors;
3. writes PNG figures into ``runs/sclocchi2023/figures/`` (small scale) or ``DIR/<scale>/figures``
   (full scale) and a Markdown table ``results_<scale>.md`` next to them.
"""
from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def configs(scale: str) -> list[str]:
    folder = HERE if scale == "small" else os.path.join(HERE, "full")
    return sorted(glob.glob(os.path.join(folder, "*.toml")))


def run_sweeps(scale: str, out: str, workers: int | None, quiet: bool) -> dict:
    exe = os.path.join(os.path.dirname(sys.executable), "physsgd")
    cmd0 = [exe] if os.path.exists(exe) else [sys.executable, "-m", "physsgd.cli"]
    timings = {}
    for cfg in configs(scale):
        name = os.path.splitext(os.path.basename(cfg))[0]
        dest = os.path.join(out, scale, name)
        cmd = cmd0 + ["run", cfg, "--out", dest]
        if workers:
            cmd += ["--workers", str(workers)]
        if quiet:
            cmd += ["--quiet"]
        print("+", " ".join(cmd), flush=True)
        t0 = time.time()
        subprocess.run(cmd, check=True)
        timings[name] = time.time() - t0
        print(f"  {name}: {timings[name]:.0f} s", flush=True)
    return timings


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=("small", "full"), default="small")
    p.add_argument("--out", default=os.path.join(HERE, "out"), help="results directory (gitignored)")
    p.add_argument("--workers", type=int, default=None, help="physsgd run --workers")
    p.add_argument("--analyze-only", action="store_true", help="skip the sweeps, analyse what is there")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    t0 = time.time()
    if not args.analyze_only:
        timings = run_sweeps(args.scale, args.out, args.workers, args.quiet)
        print(f"sweeps: {time.time() - t0:.0f} s wall ({timings})", flush=True)
    import study
    figdir = os.path.join(HERE, "figures") if args.scale == "small" else os.path.join(args.out, args.scale, "figures")
    study.analyze(os.path.join(args.out, args.scale), figdir, scale=args.scale)
    print(f"total: {time.time() - t0:.0f} s wall", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
