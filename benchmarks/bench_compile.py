"""Cold compile time and run time of each training kernel: this tree, this tree at numba's default
LLVM level (-O3), and a previous revision, in one run.

    python benchmarks/bench_compile.py                    # previous = HEAD~ of this checkout
    python benchmarks/bench_compile.py --previous 94460f4 --kernels greedy_bits,sgd

Every (kernel, variant) pair runs in a fresh subprocess with an empty NUMBA_CACHE_DIR: the first
``ps.train`` call compiles the kernel (its wall time is the compile: the call itself trains 2
replicas for 2 steps), then the same workload runs 3 times (best CPU time, one thread). Variants:
- ``this``: the working tree (entry points at their own level, kernels/jit.py);
- ``this -O3``: the same with NUMBA_OPT=3 (numba's default level for every kernel);
- ``previous``: the revision REF, extracted with ``git archive``.
Kernels: ``greedy_bits`` (the quickstart's: tree committee, +-1 weights and inputs), ``sgd``
(erf committee, finite data, measure=["sharpness"]: the curvature code), ``sgd_online`` (the
same kernel, online), ``chain`` (engine="overlaps").

The machine is shared: compare within a row; the run times move by ~10 % between rounds.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r'''
import sys, time
import physsgd as ps
kind = sys.argv[1]
if kind == "greedy_bits":
    t = ps.Committee(N=27, activation="sign", output="sign", topology="tree", d=9, weights="binary")
    run = lambda R, steps, i: ps.train(t, t, ps.Greedy(batch_size=40), ps.Online(inputs="binary"),
                                       steps=steps, replicas=R, seed=i, threads=1)
    work = (32, 400)
elif kind in ("sgd", "sgd_online"):
    t = ps.Committee(N=1000, K=2, activation="erf")
    if kind == "sgd":
        run = lambda R, steps, i: ps.train(t, t, ps.SGD(lr=0.5, batch_size=8), ps.Dataset(P=500),
                                           steps=steps, replicas=R, seed=i, threads=1,
                                           measure=["sharpness"])
        work = (8, 60)
    else:
        run = lambda R, steps, i: ps.train(t, t, ps.SGD(lr=0.5, batch_size=1), ps.Online(),
                                           steps=steps, replicas=R, seed=i, threads=1)
        work = (8, 20000)
elif kind == "chain":
    t = ps.Committee(N=1000, K=2, activation="erf")
    run = lambda R, steps, i: ps.train(t, t, ps.SGD(lr=0.5, batch_size=1), ps.Online(),
                                       steps=steps, replicas=R, seed=i, threads=1, engine="overlaps")
    work = (8, 300000)
t0 = time.perf_counter()
run(2, 2, 0)
compile_s = time.perf_counter() - t0
best = float("inf")
for i in range(3):
    c0 = time.process_time()
    run(*work, i + 1)
    best = min(best, time.process_time() - c0)
print(f"RESULT {compile_s:.2f} {best:.4f}")
'''

KERNELS = ("greedy_bits", "sgd", "sgd_online", "chain")


def measure(tree, kind, env_extra):
    with tempfile.TemporaryDirectory(prefix="physsgd-compile-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_OPT"}    # the variant's own
        env.update(NUMBA_CACHE_DIR=cache, PYTHONPATH=tree, **env_extra)
        r = subprocess.run([sys.executable, "-c", CHILD, kind], env=env, cwd=tree,
                           capture_output=True, text=True)
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT")]
    if r.returncode != 0 or not line:
        raise RuntimeError(f"{kind} in {tree} failed:\n{r.stderr[-2000:]}")
    _, c, t = line[0].split()
    return float(c), float(t)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--previous", default="HEAD~", help="git revision to compare with (default HEAD~)")
    ap.add_argument("--kernels", default=",".join(KERNELS), help=f"comma-separated, of {KERNELS}")
    a = ap.parse_args(argv)
    kinds = a.kernels.split(",")
    with tempfile.TemporaryDirectory(prefix="physsgd-previous-") as prev:
        archive = subprocess.run(["git", "archive", a.previous], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", prev], input=archive.stdout, check=True)
        variants = [("this", ROOT, {}), ("this -O3", ROOT, {"NUMBA_OPT": "3"}),
                    (f"previous ({a.previous})", prev, {})]
        print(f"cold compile (s, wall) / run (s, CPU, best of 3), one thread; {os.cpu_count()} cores")
        print("| kernel | " + " | ".join(f"{v} compile | {v} run" for v, _, _ in variants) + " |")
        print("|---|" + "---:|---:|" * len(variants))
        for kind in kinds:
            cells = []
            for _, tree, env in variants:
                c, t = measure(tree, kind, env)
                cells += [f"{c:.1f}", f"{t:.3f}"]
            print(f"| {kind} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
