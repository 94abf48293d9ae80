"""The first run of a new user: the same quickstart command with an empty numba cache, then warm.

    python benchmarks/bench_first_run.py                 # the real quickstart (several minutes)
    python benchmarks/bench_first_run.py --workers 1     # the same, one process
    python benchmarks/bench_first_run.py --config runs/quickstart.toml --keep /tmp/fr

Cold: ``NUMBA_CACHE_DIR`` points at a fresh empty directory, so numba finds none of the kernels
it compiled before (with NUMBA_CACHE_DIR set, numba neither reads nor writes the in-tree
``__pycache__/*.nbi, *.nbc``). Warm: the same command again with that now-filled cache, into a
fresh output directory, so that it recomputes every task. Both runs are the same subprocess
command (`python -m physsgd.cli quickstart --out DIR`), timed by wall clock; the compile time is
the one the run itself reports ("kernels compiled in ..."). Target (issue 15): cold <= 2 x warm.

Timings depend on the machine and its load; compare the ratio, measured in one invocation.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_quickstart(out, cache, workers=None, config=None):
    env = {**os.environ, "NUMBA_CACHE_DIR": cache,
           "PYTHONPATH": os.pathsep.join([ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    if config:
        cmd = [sys.executable, "-m", "physsgd.cli", "run", config, "--out", out]
    else:
        cmd = [sys.executable, "-m", "physsgd.cli", "quickstart", "--out", out]
    if workers:
        cmd += ["--workers", str(workers)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    m = re.search(r"kernels compiled in (\d+):(\d+):(\d+)", r.stderr)
    compiled = int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]) if m else 0.0
    return wall, compiled, r.stderr


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=None, help="passed to the command (default: its own choice)")
    ap.add_argument("--config", default=None,
                    help="time `physsgd run CONFIG` instead of the quickstart (e.g. a smaller sweep)")
    ap.add_argument("--keep", default=None, metavar="DIR",
                    help="work in DIR and keep it, with the two runs' output in cold.log / warm.log "
                         "(default: a temporary directory, removed)")
    a = ap.parse_args(argv)
    work = a.keep or tempfile.mkdtemp(prefix="physsgd-first-run-")
    os.makedirs(work, exist_ok=True)
    cache = os.path.join(work, "numba-cache")
    shutil.rmtree(cache, ignore_errors=True)
    os.makedirs(cache)
    try:
        what = f"physsgd run {a.config}" if a.config else "physsgd quickstart"
        print(f"{what}, workers={a.workers or 'auto'}, cores={os.cpu_count()}, empty NUMBA_CACHE_DIR={cache}")
        cold, compiled, log = run_quickstart(os.path.join(work, "cold"), cache, a.workers, a.config)
        with open(os.path.join(work, "cold.log"), "w") as f:      # what the user saw
            f.write(log)
        print(f"  cold cache: {cold:7.1f} s   (of which compiling, as reported: {compiled:.0f} s)")
        warm, compiled_warm, log = run_quickstart(os.path.join(work, "warm"), cache, a.workers, a.config)
        with open(os.path.join(work, "warm.log"), "w") as f:
            f.write(log)
        print(f"  warm cache: {warm:7.1f} s   (compiling: {compiled_warm:.0f} s)")
        print(f"  cold / warm = {cold / warm:.2f}   (target <= 2)")
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
