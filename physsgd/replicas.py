"""Replicas in parallel: Python threads, each calling a nogil kernel on blocks of replicas.

A kernel here is ``kernel(cfg, lo, hi, *arrays)``: replicas lo..hi-1, in order, each from its own
random streams and writing only its own rows of the output arrays. So the result does not depend
on how the replicas are split among threads, nor on how many threads there are.

Why threads and not numba's ``prange``: the parallel function numba outlines for a prange loop
compiles and optimises the whole linked replica loop once more. Measured on the 2-core machine
(issue 15): a cold compile of the greedy bit-path kernel took 60.5 s with the prange wrapper and
46.9 s with a plain loop over a block. The kernels release the GIL, so the threads run on
separate cores.
"""
from __future__ import annotations

import threading

import numba

# One contiguous block per thread, as prange's default static schedule: with smaller blocks
# handed out in turn, neighbouring replicas ran at once on different threads and the rows they
# write every step shared cache lines (false sharing): 2 threads were 1.25x slower than with
# contiguous blocks (SGD, N = 1000, 8 replicas; the training streams' states are also copied per
# replica in kernels/engine.py for the same reason).
BLOCKS_PER_THREAD = 1


def default_threads() -> int:
    """numba's thread count for this thread (set_num_threads, NUMBA_NUM_THREADS, the cores)."""
    return max(1, int(numba.get_num_threads()))


def run(kernel, cfg, replicas: int, threads: int | None, *arrays) -> None:
    """Run ``kernel`` over ``replicas`` replicas on ``threads`` threads (None: default_threads).
    Re-raises the first exception a block raised, after every thread has stopped."""
    threads = min(int(threads or default_threads()), max(replicas, 1))
    if threads <= 1 or replicas <= 1:
        kernel(cfg, 0, replicas, *arrays)
        return
    size = max(1, -(-replicas // (threads * BLOCKS_PER_THREAD)))
    blocks = iter(range(0, replicas, size))
    lock = threading.Lock()
    errors = []

    def work():
        while True:
            with lock:
                if errors:
                    return
                lo = next(blocks, None)
            if lo is None:
                return
            try:
                kernel(cfg, lo, min(lo + size, replicas), *arrays)
            except BaseException as e:       # noqa: BLE001 - handed to the calling thread
                with lock:
                    errors.append(e)
                return
    # daemon: a caller interrupted while waiting (Ctrl-C) can still exit; the blocks running then
    # finish in the background or die with the process
    pool = [threading.Thread(target=work, name=f"physsgd-replicas-{i}", daemon=True)
            for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
