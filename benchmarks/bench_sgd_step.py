"""Online SGD step of an erf soft committee: physsgd vs NumPy and PyTorch-CPU peers.

    python benchmarks/bench_sgd_step.py [--quick] [--out benchmarks/results.md]

N = 1000, K = M in {2, 4}, batch m in {1, 8, 64, 512}, R = 32 replicas, lr = 0.5, float64.
physsgd is timed through the public driver, wall clock around the whole call (setup and the two
record points included, nothing subtracted):

    ps.train(teacher, student, ps.SGD(lr=0.5, batch_size=m), ps.Online(), steps=S,
             replicas=R, record=[0, S], threads=t)

(``record=[0, S]`` is what ``record=2`` is meant to be; see README.md: ``record=2`` currently runs
a single step.) S is chosen so a run lasts about ``--target`` seconds, and every physsgd run is
also timed at S/4: the rate ratio rate(S/4)/rate(S) ~ 1 shows that setup/recording are
negligible. The peers (benchmarks/peers.py) draw their inputs with their library's fastest
Gaussian RNG inside the timed loop; their construction is not timed.

samples/s = R * m * steps / wall time for every implementation. Each thread count runs in its
own worker process (BLAS threads are fixed when numpy loads: OPENBLAS/OMP/MKL_NUM_THREADS = t;
torch.set_num_threads(t); ps.train(threads=t)). Inside a worker the implementations are timed in
interleaved rounds and the minimum time is kept (the least load-sensitive estimate on a shared
machine); all ratios come from the same run.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
N = 1000
LR = 0.5


def _uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        l1, l5, l15 = os.getloadavg()
        return f"load average: {l1:.2f}, {l5:.2f}, {l15:.2f}"


# --------------------------------------------------------------------------- worker
def _worker(args):
    threads = args.threads
    sys.path.insert(0, HERE)
    import numpy as np
    import physsgd as ps
    import machine_limits as ml
    import peers
    if peers.torch is not None:
        peers.torch.set_num_threads(threads)

    quick = args.quick
    target = args.target
    rounds = args.rounds
    R = args.replicas
    limits = ml.measure(threads, quick=quick)
    bitgen_name, bitgen = peers.fastest_numpy_bitgen()
    out = {"threads": threads, "limits": limits, "numpy_bitgen": bitgen_name, "configs": []}

    for K in args.K:
        for m in args.m:
            teacher, student, algo, data = peers.physsgd_specs(N, K, K, m, LR)

            def ps_run(S):
                t0 = time.perf_counter()
                res = ps.train(teacher, student, algo, data, steps=S, replicas=R,
                               record=np.array([0, S]), threads=threads)
                wall = time.perf_counter() - t0
                assert (res.stopped_at == S).all() and not res.diverged.any(), "run did not finish"
                return wall

            ps_run(1)                                   # compile / warm up
            S = 1                                       # grow S until the run is long enough
            while True:                                 # that the fixed cost is small, then
                t_S = ps_run(S)                         # scale to the target time
                if t_S >= target / 4:
                    break
                S *= 4
            S = max(4, math.ceil(S * target / t_S))
            S4 = max(1, S // 4)
            W0, Wt = peers.initial_weights(N, K, K, R)
            impls = {}
            for cls in peers.available_peers():
                kw = {"bitgen": bitgen} if cls in peers.NUMPY_PEERS else {}
                obj = cls(W0, Wt, m, LR, **kw)
                obj.run(1)                              # warm up
                t0 = time.perf_counter()
                obj.run(1)
                t_step = time.perf_counter() - t0
                impls[cls.name] = (obj, max(2, math.ceil(target / max(t_step, 1e-9))))
            best = {"physsgd": math.inf, "physsgd S/4": math.inf}
            best.update({k: math.inf for k in impls})
            probe = {}
            for _ in range(rounds):
                for k, v in ml.rng_probe(threads).items():
                    probe[k] = max(probe.get(k, 0.0), v)
                best["physsgd"] = min(best["physsgd"], ps_run(S))
                best["physsgd S/4"] = min(best["physsgd S/4"], ps_run(S4))
                for name, (obj, steps) in impls.items():
                    t0 = time.perf_counter()
                    obj.run(steps)
                    best[name] = min(best[name], time.perf_counter() - t0)
            steps = {"physsgd": S, "physsgd S/4": S4}
            steps.update({k: v[1] for k, v in impls.items()})
            rate = {k: R * m * steps[k] / best[k] for k in best}
            cfg = {"K": K, "M": K, "m": m, "R": R, "steps": steps, "time": best, "rate": rate,
                   "probe": probe}
            out["configs"].append(cfg)
            print(f"  [t={threads}] K={K} m={m}: " + ", ".join(
                f"{k} {v:.3g}/s" for k, v in rate.items()), file=sys.stderr, flush=True)
    with open(args.json, "w") as f:
        json.dump(out, f)


def _run_worker(threads, ns):
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tf:
        path = tf.name
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--threads", str(threads),
           "--json", path, "--target", str(ns.target), "--rounds", str(ns.rounds),
           "--replicas", str(ns.replicas), "--K", *map(str, ns.K), "--m", *map(str, ns.m)]
    if ns.quick:
        cmd.append("--quick")
    subprocess.run(cmd, env=env, check=True)
    with open(path) as f:
        res = json.load(f)
    os.unlink(path)
    return res


# --------------------------------------------------------------------------- report
PEER_COLS = [("numpy-loop", "NumPy loop"), ("numpy-batched", "NumPy batched"),
             ("torch-autograd-loop", "torch autograd loop"),
             ("torch-autograd-batched", "torch autograd batched"),
             ("torch-manual-loop", "torch manual loop"),
             ("torch-manual-batched", "torch manual batched")]


def _fmt(x):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def flops_per_sample(K, M, m, N=N):
    """Teacher and student fields (2N(M+K)), gradient accumulation (2KN), update (2KN per step);
    nonlinearities and RNG not counted."""
    return 2 * N * (M + K) + 2 * K * N + 2 * K * N / m


def _best(rate, prefix):
    vals = [(v, k) for k, v in rate.items() if k.startswith(prefix)]
    return max(vals) if vals else (math.nan, None)


def report(results, meta):
    lines = [f"# physsgd online SGD step: speed vs NumPy / PyTorch-CPU peers and machine limits",
             "", f"- machine: {meta['machine']}",
             f"- software: {meta['software']}",
             f"- load before: `{meta['load_before']}`", f"- load after:  `{meta['load_after']}`",
             f"- N = {N}, K = M, lr = {LR}, float64, R = {meta['replicas']} replicas; "
             f"samples/s = R·m·steps / wall time; best of {meta['rounds']} interleaved rounds of "
             f"~{meta['target']} s each{' (--quick)' if meta['quick'] else ''}.",
             "- physsgd = `ps.train(..., steps=S, replicas=R, record=[0, S], threads=t)`, wall "
             "clock around the call; the peers are in `benchmarks/peers.py` (checked equal to the "
             "reference update and to physsgd to 1e-10: `python benchmarks/peers.py --check`).",
             ""]
    have_torch = any("torch-autograd-loop" in c["rate"] for r in results for c in r["configs"])
    if not have_torch:
        lines += ["> torch is not installed: the PyTorch columns are skipped "
                  "(`pip install torch==2.13.0`, or the extra `physsgd[bench]`).", ""]
    cols = [c for c in PEER_COLS if have_torch or not c[0].startswith("torch")]
    for res in results:
        t = res["threads"]
        lim = res["limits"]
        lines += [f"## {t} thread{'s' if t > 1 else ''}", "",
                  f"Samples/s (NumPy RNG: Generator({res['numpy_bitgen']}).standard_normal"
                  + ("; torch: `Tensor.normal_`, its mt19937 generator" if have_torch else "")
                  + ").", "",
                  "| K=M | m | physsgd | " + " | ".join(c[1] for c in cols) + " |",
                  "|---|---:|---:|" + "---:|" * len(cols)]
        for c in res["configs"]:
            r = c["rate"]
            lines.append(f"| {c['K']} | {c['m']} | **{_fmt(r['physsgd'])}** | "
                         + " | ".join(_fmt(r.get(k)) for k, _ in cols) + " |")
        lines += ["", "physsgd relative to the peers (× = physsgd samples/s ÷ peer samples/s; "
                  "*best* = the faster of the loop and batched forms) and to the machine:", ""]
        hdr = "| K=M | m | ÷ NumPy loop | ÷ NumPy best |"
        if have_torch:
            hdr += " ÷ autograd loop | ÷ autograd best | ÷ torch manual best |"
        hdr += (" Gaussians/s | ÷ numba limit | ÷ numpy RNG | GFLOP/s "
                "| ÷ GEMM | rate(S/4)/rate(S) |")
        lines += [hdr, "|---|---:|" + "---:|" * (hdr.count("|") - 3)]
        for c in res["configs"]:
            r = c["rate"]
            p = r["physsgd"]
            row = f"| {c['K']} | {c['m']} | {p / r['numpy-loop']:.2f} | {p / _best(r, 'numpy')[0]:.2f} |"
            if have_torch:
                row += (f" {p / r['torch-autograd-loop']:.1f} | {p / _best(r, 'torch-autograd')[0]:.1f} |"
                        f" {p / _best(r, 'torch-manual')[0]:.2f} |")
            g = p * N
            fl = p * flops_per_sample(c["K"], c["M"], c["m"])
            pr = c.get("probe") or lim          # limits re-measured in this config's rounds
            row += (f" {g / 1e6:.1f} M | {g / pr['numba_limit']:.0%} |"
                    f" {g / pr['numpy_limit']:.0%} | {fl / 1e9:.2f} | {fl / pr['gemm']:.1%} |"
                    f" {r['physsgd S/4'] / p:.2f} (S={c['steps']['physsgd']}) |")
            lines.append(row)
        lines += ["", "The ÷ columns divide by limits re-measured inside the same rounds as each "
                  "row (best of the rounds: physsgd fill_normal, the fastest numba generator, at this "
                  "thread count, numpy SFC64 one thread, 1000×1000 GEMM), so they share that row's load.",
                  "", f"Limits at {t} thread(s), measured once at the start of the worker: numba Gaussian limit = "
                  f"{lim['numba_limit'] / 1e6:.0f} M/s ({lim['numba_limit_name']}); numpy = "
                  f"{lim['numpy_limit'] / 1e6:.0f} M/s ({lim['numpy_limit_name']}, one thread "
                  f"always); GEMM = {lim['gemm'] / 1e9:.1f} GFLOP/s ({lim['blas']}).", "",
                  "<details><summary>all machine limits</summary>", "",
                  _limits_table(lim), "", "</details>", ""]
    lines += _targets(results, have_torch)
    return "\n".join(lines) + "\n"


def _limits_table(lim):
    sys.path.insert(0, HERE)
    import machine_limits as ml
    return ml.format_limits(lim)


def _targets(results, have_torch):
    out = ["## Targets", "", "| target | measured | verdict |", "|---|---|---|"]

    def verdict(ok):
        return "PASS" if ok else "**FAIL**"
    for res in results:
        t = res["threads"]
        b1 = [c for c in res["configs"] if c["m"] == 1]
        for c in b1:
            r = c["rate"]
            x = r["physsgd"] / r["numpy-loop"]
            out.append(f"| ≥ 5× NumPy (the step of one network) at m=1, K={c['K']}, {t} thr "
                       f"| {x:.2f}× | {verdict(x >= 5)} |")
            if have_torch:
                x = r["physsgd"] / r["torch-autograd-loop"]
                out.append(f"| ≥ 50× torch autograd (the step of one network) at m=1, K={c['K']}, "
                           f"{t} thr | {x:.1f}× | {verdict(x >= 50)} |")
            info = [f"NumPy {r['physsgd'] / r['numpy-batched']:.2f}×"]
            if have_torch:
                info.append(f"torch autograd {r['physsgd'] / r['torch-autograd-batched']:.1f}×")
            out.append(f"| (information) vs the peers batched over all {c['R']} replicas, m=1, "
                       f"K={c['K']}, {t} thr | {', '.join(info)} | — |")
        worst = min(((c["rate"]["physsgd"] / v, k, c["K"], c["m"]) for c in res["configs"]
                     for k, v in c["rate"].items() if not k.startswith("physsgd")),
                    default=(math.nan, None, None, None))
        out.append(f"| never slower than any peer, {t} thr | worst {worst[0]:.2f}× ({worst[1]}, "
                   f"K={worst[2]}, m={worst[3]}) | {verdict(worst[0] >= 1)} |")
    by_t = {res["threads"]: res for res in results}
    if 1 in by_t and 2 in by_t:
        ctl = (by_t[2]["limits"]["parallel_control"] / by_t[1]["limits"]["parallel_control"])
        for c1, c2 in zip(by_t[1]["configs"], by_t[2]["configs"]):
            x = c2["rate"]["physsgd"] / c1["rate"]["physsgd"]
            out.append(f"| ≥ 1.8× from 1 to 2 threads, R={c1['R']}, K={c1['K']}, m={c1['m']} "
                       f"| {x:.2f}× (control loop {ctl:.2f}×: efficiency {x / ctl:.0%}) "
                       f"| {verdict(x >= 1.8)} |")
        out += ["", f"The control is a trivially parallel numba prange loop timed in the same "
                f"workers: {ctl:.2f}× is the 1→2 thread speed-up the machine granted during this "
                "run; physsgd's speed-up divided by it is its parallel efficiency."]
    out += ["", "The targets compare the step of one network, as a user of NumPy or PyTorch "
            "writes it (`peers.NumpyLoop`, `peers.TorchAutogradLoop`). The batched peers are a "
            "different program (all replicas in one tensor) and are bound by their own Gaussian "
            "generators: no kernel beats them by much more than the ratio of the generators' "
            "rates in the limits table (the information rows)."]
    out += ["", "Shared machine: compare ratios within one run; absolute rates move with the load "
            "shown above (a 2-thread speed-up cannot exceed the idle share of the 2 cores)."]
    return out


def _meta(ns, load_before):
    import numba
    import numpy
    try:
        import torch
        tv = torch.__version__
    except ImportError:
        tv = "not installed"
    try:
        rev = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
    except OSError:
        rev = "?"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"machine": f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()}",
            "software": f"python {platform.python_version()}, numpy {numpy.__version__}, "
                        f"numba {numba.__version__}, torch {tv}, physsgd git {rev}",
            "load_before": load_before, "load_after": _uptime(), "replicas": ns.replicas,
            "rounds": ns.rounds, "target": ns.target, "quick": ns.quick}


def main(argv=None):
    p = argparse.ArgumentParser(description="physsgd SGD-step benchmark vs NumPy / PyTorch peers")
    p.add_argument("--quick", action="store_true", help="K=2, m in {1, 64}, short runs")
    p.add_argument("--out", help="also write the Markdown report to this file")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--K", type=int, nargs="+", default=None)
    p.add_argument("--m", type=int, nargs="+", default=None)
    p.add_argument("--replicas", type=int, default=32)
    p.add_argument("--target", type=float, default=None, help="seconds per timed run")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--json", help=argparse.SUPPRESS)
    ns = p.parse_args(argv)
    ns.K = ns.K or ([2] if ns.quick else [2, 4])
    ns.m = ns.m or ([1, 64] if ns.quick else [1, 8, 64, 512])
    ns.target = ns.target or (0.15 if ns.quick else 0.6)
    ns.rounds = ns.rounds or (1 if ns.quick else 3)
    if ns.worker:
        ns.threads = ns.threads[0]
        _worker(ns)
        return 0
    sys.path.insert(0, HERE)
    import peers
    if peers.torch is None:
        print("note: torch not installed; skipping the PyTorch peers "
              "(pip install torch==2.13.0)", file=sys.stderr)
    load_before = _uptime()
    print(f"load: {load_before}", file=sys.stderr)
    results = [_run_worker(t, ns) for t in ns.threads]
    text = report(results, _meta(ns, load_before))
    print(text)
    if ns.out:
        with open(ns.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
