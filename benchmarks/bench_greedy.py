"""Greedy single-flip sweeps of a binary tree committee: physsgd's bit-level path against its
float path, the previous release, NumPy peers and the machine's limit, in one run.

    python benchmarks/bench_greedy.py [--quick] [--check] [--previous REF] [--out FILE]

Engines (same chain, same sizes, measured in this run):
- ``bits``: physsgd's exact bit-level path (kernels/bits.py), chosen automatically for +-1
  weights on +-1 inputs with sign units;
- ``float``: physsgd's float path on the same runs (the reference; forced by patching
  physsgd.train.bit_path);
- ``previous``: the release REF (default f1fc805, before the bit path), extracted with
  ``git archive`` into a temporary directory and timed in a subprocess on the same sizes;
- NumPy peers ``loop``/``batched`` (below), at the smaller batches where they finish;
- ``limit``: a numba loop doing only the irreducible work of a proposal on the bit layout (one
  load, and/or, two popcounts per 64 samples), i.e. the machine's ceiling for this layout.
Thread scaling: the bit path at 1 and 2 threads, 32 replicas.

Tree committee, sign units, majority output, +-1 weights, teacher of the same architecture,
online binary +-1 inputs (test_size=100, see TEST_SIZE), ps.Greedy(batch_size=m) at temperature 0 with ties accepted (the
defaults). One step = one fresh batch + one sweep proposing a flip of every weight once in a
fresh random order; a proposal is accepted when it does not increase the number of misclassified
batch samples. Rate = proposals/s = R * steps * (K d) / wall time.

NumPy peers: ``loop`` (one replica at a time, every proposal vectorised over the batch) and
``batched`` (proposal t of every replica at once, vectorised over replicas and batch). The
proposals inside a sweep are sequential by nature, so no peer can vectorise over them.
``--check`` asserts that the NumPy sweep and physsgd's own kernels (batch_state + propose_flip,
given the same batch and proposal order) end with identical weights.
"""
from __future__ import annotations

import argparse
import importlib
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
# Binary inputs have no closed-form eps_g in physsgd, so every replica draws a fixed test set
# (default 10 000 x N, 80 MB at N = 1000) and evaluates it at each record point; a small one
# keeps that setup cost out of the sweep rate.
TEST_SIZE = 100


def _sgn(a):
    return np.where(a >= 0, 1, -1)      # physsgd: sign(0) = +1


class NumpyGreedyBatched:
    """R replicas; W (R, K, d) in {-1, +1}; teacher Wt (R, K, d)."""

    name = "numpy-batched"

    def __init__(self, W0, Wt, m, seed=1):
        self.W = W0.astype(np.int64).copy()
        self.Wt = Wt.astype(np.int64)
        self.R, self.K, self.d = W0.shape
        self.m = m
        self.rng = np.random.Generator(np.random.SFC64(seed))
        self.ar = np.arange(self.R)

    def draw(self):
        R, m, K, d = self.R, self.m, self.K, self.d
        X = self.rng.integers(0, 2, size=(R, m, K, d), dtype=np.int64) * 2 - 1
        order = self.rng.permuted(np.tile(np.arange(K * d), (R, 1)), axis=1)
        return X, order

    def sweep(self, X, order):
        """X (R, m, K, d) +-1 ints, order (R, K d): one sweep; returns batch errors after it."""
        ar, d = self.ar, self.d
        y = _sgn(_sgn(np.einsum("rmkd,rkd->rmk", X, self.Wt)).sum(2))
        H = np.einsum("rmkd,rkd->rmk", X, self.W)
        S = _sgn(H)
        votes = S.sum(2)
        wrong = _sgn(votes) != y
        E = wrong.sum(1)
        for t in range(order.shape[1]):
            idx = order[:, t]
            k, j = idx // d, idx % d
            w = self.W[ar, k, j]
            hnew = H[ar, :, k] - 2 * w[:, None] * X[ar, :, k, j]
            snew = _sgn(hnew)
            vnew = votes + snew - S[ar, :, k]
            wnew = _sgn(vnew) != y
            Enew = wnew.sum(1)
            acc = Enew <= E                                  # T = 0, ties accepted
            if acc.any():
                a = ar[acc]
                self.W[a, k[acc], j[acc]] = -w[acc]
                H[a, :, k[acc]] = hnew[acc]
                S[a, :, k[acc]] = snew[acc]
                votes[acc] = vnew[acc]
                wrong[acc] = wnew[acc]
                E[acc] = Enew[acc]
        return E

    def run(self, steps):
        for _ in range(steps):
            self.sweep(*self.draw())


class NumpyGreedyLoop(NumpyGreedyBatched):
    """The same sweep, one replica at a time (R = 1 views)."""

    name = "numpy-loop"

    def __init__(self, W0, Wt, m, seed=1):
        super().__init__(W0, Wt, m, seed)
        self.subs = [NumpyGreedyBatched(W0[r:r + 1], Wt[r:r + 1], m, seed + 1 + r)
                     for r in range(self.R)]

    def run(self, steps):
        for _ in range(steps):
            for sub in self.subs:
                sub.sweep(*sub.draw())


def physsgd_specs(N, K, m):
    import physsgd as ps
    spec = dict(N=N, K=K, activation="sign", output="sign", topology="tree", weights="binary")
    return (ps.Committee(**spec), ps.Committee(**spec), ps.Greedy(batch_size=m),
            ps.Online(inputs="binary", test_size=TEST_SIZE))


def check(N=63, K=3, m=16, R=4, seed=5):
    """NumPy sweep == physsgd's float kernels (batch_state + propose_flip) on the same batch and
    order; physsgd's bit path equals its float path on whole runs (tests/test_bits.py)."""
    from physsgd.kernels import samples, steps as ksteps
    tr = importlib.import_module("physsgd.train")
    teacher, student, algo, data = physsgd_specs(N, K, m)
    setup = tr._setup_replicas(teacher, student, data, R, seed, 1.0)
    plan = tr.check_args(teacher, student, algo, data, steps=1, replicas=R)
    cfg = tr._kernel_config(teacher, student, algo, data, setup, plan)
    d = N // K
    W0, Wt = setup["W"].copy(), setup["Wt"].copy()
    peer = NumpyGreedyBatched(W0.reshape(R, K, d), Wt.reshape(R, K, d), m, seed)
    X, order = peer.draw()
    peer.sweep(X, order)
    s = np.zeros(4, np.uint64)
    for r in range(R):
        W = W0[r].copy()
        Xb = X[r].reshape(m, N).astype(float)
        yb = np.array([samples.teacher_output(cfg, Wt[r], setup["fields_t"][r], setup["vt"], Xb[mu],
                                              np.empty(K)) for mu in range(m)])
        H, f, wrong = np.empty((K, m)), np.empty(m), np.zeros(m, np.int64)
        XT = Xb.T.copy()                 # the kernels take one sample per column
        ksteps.batch_state(cfg, W, setup["fields_s"][r], setup["vs"], XT, yb, H, f, wrong)
        for idx in order[r]:
            ksteps.propose_flip(cfg, s, W, setup["fields_s"][r], setup["vs"], XT, yb, H, f, wrong,
                                int(idx))
        assert np.array_equal(W.reshape(K, d), peer.W[r]), f"replica {r}: weights differ"
    print(f"greedy check N={N} K={K} m={m} R={R}: NumPy sweep == physsgd kernels  OK")


def best_time(fn, rounds):
    return min(_timed(fn) for _ in range(rounds))


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def physsgd_rate(N, K, m, R, threads, target, rounds, float_path=False):
    """Proposals/s of ps.train on the tree committee (steps chosen so a run takes ~target s)."""
    import physsgd as ps
    tr = importlib.import_module("physsgd.train")
    teacher, student, algo, data = physsgd_specs(N, K, m)
    saved = getattr(tr, "bit_path", None)
    if float_path and saved is not None:
        tr.bit_path = lambda *a: False
    try:
        def run(S):
            res = ps.train(teacher, student, algo, data, steps=S, replicas=R,
                           record=np.array([0, S]), threads=threads)
            assert (res.stopped_at == S).all()
        run(1)
        S = 1
        while (t := _timed(lambda: run(S))) < target / 4:
            S *= 4
        S = max(2, math.ceil(S * target / t))
        return R * S * N / best_time(lambda: run(S), rounds)
    finally:
        if saved is not None:
            tr.bit_path = saved


def _limit_kernel():
    from numba import njit
    from physsgd.kernels.bits import popcount

    @njit
    def limit(X, A, B, D, E, n_props):
        """The irreducible work of n_props proposals on the bit layout: per 64 samples one input
        load, the and/or of the marginal masks and two popcounts."""
        N, nw = X.shape
        acc = np.uint64(0)
        for t in range(n_props):
            i = t % N
            k = i % A.shape[0]
            for w in range(nw):
                a = X[i, w]
                F = ((A[k, w] & a) | (B[k, w] & ~a)) & D[k, w]
                acc += popcount(F) + popcount(F & E[w])
        return acc
    return limit


def limit_rate(N, K, m, rounds):
    limit = _limit_kernel()
    nw = (m + 63) // 64
    rng = np.random.default_rng(0)
    words = lambda *shape: rng.integers(0, 2**63, shape, dtype=np.uint64)  # noqa: E731
    X, A, B, D, E = words(N, nw), words(K, nw), words(K, nw), words(K, nw), words(nw)
    n = 20_000_000 // nw
    limit(X, A, B, D, E, 10)
    return n / best_time(lambda: limit(X, A, B, D, E, n), rounds)


def previous_rates(ref, configs, R, threads, target, rounds):
    """Rates of the release ``ref`` (a git revision), timed in a subprocess on the same configs."""
    top = subprocess.run(["git", "-C", HERE, "rev-parse", "--show-toplevel"], capture_output=True,
                         text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="physsgd-previous-") as tmp:
        archive = subprocess.run(["git", "-C", top, "archive", ref], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        # this file's timing code, the old package (PYTHONPATH=tmp comes before the install)
        code = (f"import sys; sys.path.insert(0, {HERE!r}); "
                "import bench_greedy as b, json; "
                "import physsgd; assert physsgd.__file__.startswith(" + repr(tmp) + "); "
                f"print(json.dumps([b.physsgd_rate(N, K, m, {R}, {threads}, {target}, {rounds}) "
                f"for N, K, m in {configs!r}]))")
        env = dict(os.environ, PYTHONPATH=tmp, NUMBA_CACHE_DIR=os.path.join(tmp, ".numba"))
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                             cwd=tmp)
        if out.returncode:
            raise RuntimeError(f"previous release {ref} failed: {out.stderr[-2000:]}")
        import json
        return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ dE: popcounts or lists?
def _delta_variants():
    """The two ways of issue 11 to get a proposal's dE on the bit layout, compiled on demand:
    popcounts over the bit masks (physsgd's bits.flip_delta), or a per-unit list of the samples a
    flip of that unit can change (marginal and decided), each entry reading its input bit and its
    error bit."""
    from numba import njit
    from physsgd.kernels import bits
    @njit
    def build_lists(A, B, D, K, m):
        idx = np.empty((K, m), np.int64); kind = np.empty((K, m), np.int8); n = np.zeros(K, np.int64)
        for k in range(K):
            for mu in range(m):
                w, b = mu >> 6, np.uint64(mu & 63)
                if (D[k, w] >> b) & np.uint64(1):
                    if (A[k, w] >> b) & np.uint64(1):
                        idx[k, n[k]] = mu; kind[k, n[k]] = 1; n[k] += 1
                    elif (B[k, w] >> b) & np.uint64(1):
                        idx[k, n[k]] = mu; kind[k, n[k]] = 0; n[k] += 1
        return idx, kind, n

    @njit
    def delta_lists(W, fields, X, E, idx, kind, n):
        K, F = W.shape
        tot = 0
        for k in range(K):
            for j in range(F):
                row = X[fields[k, j]]
                pos = W[k, j] > 0.0
                dE = 0
                for t in range(n[k]):
                    mu = idx[k, t]
                    w, b = mu >> 6, np.uint64(mu & 63)
                    x = (row[w] >> b) & np.uint64(1)
                    agree = (x == np.uint64(1)) == pos
                    if agree == (kind[k, t] == 1):          # A & agree, or B & disagree: the vote turns
                        dE += 1 - 2 * np.int64((E[w] >> b) & np.uint64(1))
                tot += dE
        return tot

    @njit
    def delta_popcount(W, fields, X, A, B, D, E):
        K, F = W.shape
        tot = 0
        for k in range(K):
            for j in range(F):
                tot += bits.flip_delta(W, k, j, fields, False, X, A, B, D, E)
        return tot

    @njit
    def rep_pop(reps, W, fields, X, A, B, D, E):
        t = 0
        for _ in range(reps):
            t += delta_popcount(W, fields, X, A, B, D, E)
        return t

    @njit
    def rep_list(reps, W, fields, X, E, idx, kind, n):
        t = 0
        for _ in range(reps):
            t += delta_lists(W, fields, X, E, idx, kind, n)
        return t

    return build_lists, rep_pop, rep_list


def delta_variants(configs, rounds):
    """Per-proposal time of both dE variants on the same batch state (rows for the results)."""
    from physsgd.kernels import bits, config as kc, rng as krng
    build_lists, rep_pop, rep_list = _delta_variants()
    rows = []
    for N, K, m in configs:
        d = N // K
        fields = np.arange(N).reshape(K, d)
        W = np.random.default_rng(1).choice([-1.0, 1.0], (K, d))
        valid = bits.valid_masks(m)
        nw = len(valid)
        X = np.zeros((N, nw), np.uint64)
        bits.draw_batch(krng.seed_states(2, 1, 1)[0], X, valid)
        st = (np.zeros((K, bits.planes_for(d), nw), np.uint64), *(np.zeros((K, nw), np.uint64) for _ in range(3)),
              np.zeros((bits.planes_for(K), nw), np.uint64), np.zeros((K, nw), np.uint64),
              np.zeros(nw, np.uint64), np.zeros(nw, np.uint64))
        U, A, B, V, C, D, O, E = st
        bits.batch_state(kc.MAJORITY, W, fields, False, X, valid, X[0] & valid, U, A, B, V, C, D, O, E)
        idx, kind, n = build_lists(A, B, D, K, m)
        assert rep_pop(1, W, fields, X, A, B, D, E) == rep_list(1, W, fields, X, E, idx, kind, n)
        reps = max(1, 200_000 // (N * nw))
        tp = best_time(lambda: rep_pop(reps, W, fields, X, A, B, D, E), rounds) / (reps * N)
        tl = best_time(lambda: rep_list(reps, W, fields, X, E, idx, kind, n), rounds) / (reps * N)
        rows.append((N, m, float(n.mean()), tp, tl))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description="greedy-sweep benchmark: bit path vs float path vs "
                                "previous release vs NumPy vs the machine's limit")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--check", action="store_true")
    p.add_argument("--out")
    p.add_argument("--replicas", type=int, default=32)
    p.add_argument("--previous", default="f1fc805", help="git revision of the previous release "
                   "(default f1fc805, the last release without the bit path); '' to skip")
    p.add_argument("--numpy-max-m", type=int, default=256, help="skip NumPy peers above this m")
    p.add_argument("--delta-variants", action="store_true",
                   help="only compare the two dE evaluations (popcounts vs marginal lists)")
    a = p.parse_args(argv)
    if a.delta_variants:
        rows = delta_variants([(45, 3, 64), (135, 3, 256), (135, 3, 512), (195, 3, 1024)], 3)
        print("| N | m | list length | popcounts (ns/proposal) | lists (ns/proposal) | lists / popcounts |")
        print("|---:|---:|---:|---:|---:|---:|")
        for N, m, L, tp, tl in rows:
            print(f"| {N} | {m} | {L:.0f} | {tp * 1e9:.0f} | {tl * 1e9:.0f} | {tl / tp:.1f} |")
        return 0
    if a.check:
        check()
        check(N=1000, K=5, m=8, R=2)
    R = a.replicas
    target = 0.15 if a.quick else 0.8
    rounds = 1 if a.quick else 3
    configs = [(45, 3, 64), (135, 3, 256)] if a.quick else [
        (45, 3, 64), (135, 3, 256), (135, 3, 512), (195, 3, 1024), (999, 3, 8), (999, 3, 64)]
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    prev = previous_rates(a.previous, configs, R, 1, target, rounds) if a.previous else [None] * len(configs)
    rows = []
    for (N, K, m), r_prev in zip(configs, prev):
        rate = {"bits": physsgd_rate(N, K, m, R, 1, target, rounds),
                "bits 2 threads": physsgd_rate(N, K, m, R, 2, target, rounds),
                "float": physsgd_rate(N, K, m, R, 1, target, rounds, float_path=True),
                "previous": r_prev, "limit": limit_rate(N, K, m, rounds)}
        if m <= a.numpy_max_m:
            rng = np.random.default_rng(0)
            W0 = rng.choice([-1, 1], size=(R, K, N // K))
            Wt = rng.choice([-1, 1], size=(R, K, N // K))
            for peer in (NumpyGreedyBatched(W0, Wt, m), NumpyGreedyLoop(W0, Wt, m)):
                n = max(1, round(target / _timed(lambda: peer.run(1))))
                rate[peer.name] = R * n * N / best_time(lambda: peer.run(n), rounds)
        rows.append((N, K, m, rate))
        print(f"  N={N} K={K} m={m}: " + ", ".join(f"{k} {v:.3g}/s" for k, v in rate.items() if v),
              file=sys.stderr, flush=True)

    def ratio(r, key):
        return f"{r['bits'] / r[key]:.1f}×" if r.get(key) else "–"

    def mps(v):
        return f"{v / 1e6:.2f} M" if v else "–"
    lines = ["# Greedy sweeps (tree committee K = 3, binary weights and inputs): proposals/s", "",
             f"- load: `{load}`; R = {R} replicas, 1 thread unless stated, best of {rounds} "
             f"round(s); proposals/s = R·steps·(K d)/wall; previous release = {a.previous or 'not run'}; "
             "NumPy peers single-threaded.", "",
             "| N | m | bits | float | previous | NumPy batched | limit | bits ÷ previous | bits ÷ float "
             "| bits ÷ NumPy batched | % of limit | 2 threads ÷ 1 |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for N, K, m, r in rows:
        lines.append(f"| {N} | {m} | {mps(r['bits'])} | {mps(r['float'])} | {mps(r['previous'])} | "
                     f"{mps(r.get('numpy-batched'))} | {mps(r['limit'])} | {ratio(r, 'previous')} | "
                     f"{ratio(r, 'float')} | {ratio(r, 'numpy-batched')} | "
                     f"{100 * r['bits'] / r['limit']:.0f} % | {r['bits 2 threads'] / r['bits']:.2f}× |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
