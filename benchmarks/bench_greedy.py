"""Greedy single-flip sweeps of a binary tree committee: physsgd vs a NumPy peer.

    python benchmarks/bench_greedy.py [--quick] [--check] [--out FILE]

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
    """NumPy sweep == physsgd kernels (batch_state + propose_flip) on the same batch and order."""
    from physsgd.kernels import engine, steps as ksteps
    tr = importlib.import_module("physsgd.train")
    teacher, student, algo, data = physsgd_specs(N, K, m)
    setup = tr._setup_replicas(teacher, student, data, R, seed, 1.0)
    cfg = tr._kernel_config(teacher, student, algo, data, setup, 0.0, None, 1)
    d = N // K
    W0, Wt = setup["W"].copy(), setup["Wt"].copy()
    peer = NumpyGreedyBatched(W0.reshape(R, K, d), Wt.reshape(R, K, d), m, seed)
    X, order = peer.draw()
    peer.sweep(X, order)
    s = np.zeros(4, np.uint64)
    for r in range(R):
        W = W0[r].copy()
        Xb = X[r].reshape(m, N).astype(float)
        yb = np.array([engine.teacher_output(cfg, Wt[r], setup["fields_t"][r], setup["vt"], Xb[mu],
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


def main(argv=None):
    p = argparse.ArgumentParser(description="greedy-sweep benchmark: physsgd vs NumPy")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--check", action="store_true")
    p.add_argument("--out")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--replicas", type=int, default=32)
    a = p.parse_args(argv)
    if a.check:
        check()
        check(N=1000, K=5, m=8, R=2)
    import physsgd as ps
    R = a.replicas
    target = 0.15 if a.quick else 0.6
    rounds = 1 if a.quick else 3
    configs = [(999, 3, 8), (999, 3, 64)] if a.quick else [
        (999, 3, 8), (999, 3, 64), (999, 3, 512), (1000, 5, 8), (1000, 5, 64), (1000, 5, 512)]
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    rows = []
    for N, K, m in configs:
        teacher, student, algo, data = physsgd_specs(N, K, m)

        def ps_run(S):
            res = ps.train(teacher, student, algo, data, steps=S, replicas=R,
                           record=np.array([0, S]), threads=a.threads)
            assert (res.stopped_at == S).all()
        ps_run(1)
        S = 1
        while (t := _timed(lambda: ps_run(S))) < target / 4:
            S *= 4
        S = max(4, math.ceil(S * target / t))
        S4 = max(1, S // 4)
        rng = np.random.default_rng(0)
        W0 = rng.choice([-1, 1], size=(R, K, N // K))
        Wt = rng.choice([-1, 1], size=(R, K, N // K))
        peers = [NumpyGreedyBatched(W0, Wt, m), NumpyGreedyLoop(W0, Wt, m)]
        steps = {}
        for peer in peers:
            tt = _timed(lambda: peer.run(1))
            steps[peer.name] = max(1, round(target / tt))
        t_ps = best_time(lambda: ps_run(S), rounds)
        t_ps4 = best_time(lambda: ps_run(S4), rounds)
        rate = {"physsgd": R * S * N / t_ps, "physsgd S/4": R * S4 * N / t_ps4}
        for peer in peers:
            n = steps[peer.name]
            rate[peer.name] = R * n * N / best_time(lambda: peer.run(n), rounds)
        rows.append((N, K, m, rate))
        print(f"  N={N} K={K} m={m}: " + ", ".join(f"{k} {v:.3g}/s" for k, v in rate.items()),
              file=sys.stderr, flush=True)
    lines = ["# Greedy sweeps (tree committee, binary weights): proposals/s", "",
             f"- load: `{load}`; R = {R} replicas, physsgd threads = {a.threads}, best of {rounds} "
             "round(s); proposals/s = R·steps·(K d)/wall; NumPy peers single-threaded.", "",
             "| N | K | m | physsgd | NumPy batched | NumPy loop | ÷ NumPy batched | ÷ NumPy loop | rate(S/4)/rate(S) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for N, K, m, r in rows:
        lines.append(f"| {N} | {K} | {m} | {r['physsgd'] / 1e6:.2f} M | "
                     f"{r['numpy-batched'] / 1e6:.3f} M | {r['numpy-loop'] / 1e6:.3f} M | "
                     f"{r['physsgd'] / r['numpy-batched']:.2f}× | {r['physsgd'] / r['numpy-loop']:.1f}× | {r['physsgd S/4'] / r['physsgd']:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
