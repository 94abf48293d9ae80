"""Replicas in parallel: worker threads, each calling a nogil kernel on a block of replicas.

A kernel here is ``kernel(cfg, lo, hi, *arrays)``: replicas lo..hi-1, in order, each from its own
random streams and writing only its own rows of the output arrays. So the result does not depend
on how the replicas are split among threads, nor on how many threads there are.

Why threads and not numba's ``prange``: the parallel function numba outlines for a prange loop
compiles and optimises the whole linked replica loop once more. Measured on the 2-core machine
(issue 15): a cold compile of the greedy bit-path kernel took 60.5 s with the prange wrapper and
46.9 s with a plain loop over a block. The kernels release the GIL, so the threads run on
separate cores.

Why persistent worker threads, even for one thread: a kernel's buffers (a replica's test set, its
batches) are allocated and freed once per replica; in a thread started per call, or in the main
thread, the C allocator handed that memory back to the system and faulted it in again for every
replica (a short greedy run of 8 replicas: 265 page faults a call, ~3 in persistent threads).
numba's own prange threads are persistent, and so are these: started on first use, kept idle
between calls (daemon threads, so they never hold up the interpreter's exit). Still open: short
runs dominated by their set-up (~0.1 s) gain less from a second thread than under prange
(1.3-1.8x against 1.9x, on a shared machine); runs of a second or more scale as prange did.
"""
from __future__ import annotations

import os
import queue
import threading

import numba

from .kernels.jit import compile_for

# One contiguous block per thread, as prange's default static schedule: with smaller blocks
# handed out in turn, neighbouring replicas ran at once on different threads and the rows they
# write every step shared cache lines (false sharing): 2 threads were 1.25x slower than with
# contiguous blocks (SGD, N = 1000, 8 replicas; the training streams' states are also copied per
# replica in kernels/engine.py for the same reason).
BLOCKS_PER_THREAD = 1

_tasks: queue.SimpleQueue = queue.SimpleQueue()
_workers: list = []
_lock = threading.Lock()
_in_flight = [0]      # blocks queued or running, over all callers (e.g. tasks run in threads)


def _reset_after_fork() -> None:
    """A forked child has none of the parent's threads: start its own workers when needed
    (a user's multiprocessing with the fork method, after a ps.train in the parent)."""
    global _tasks, _lock
    _tasks = queue.SimpleQueue()
    _lock = threading.Lock()
    _workers.clear()
    _in_flight[0] = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def default_threads() -> int:
    """numba's thread count for this thread (set_num_threads, NUMBA_NUM_THREADS, the cores)."""
    return max(1, int(numba.get_num_threads()))


def _work():
    while True:
        fn, args, box, done = _tasks.get()
        try:
            fn(*args)
        except BaseException as e:       # noqa: BLE001 - handed to the calling thread
            box.append(e)
        finally:
            with _lock:
                _in_flight[0] -= 1
            done.release()


def _submit(blocks) -> None:
    """Queue the blocks, with as many workers as blocks in flight (callers never wait for each
    other's blocks: two tasks of one thread each, run from two threads, get two workers)."""
    with _lock:
        _in_flight[0] += len(blocks)
        while len(_workers) < _in_flight[0]:
            t = threading.Thread(target=_work, name=f"physsgd-replicas-{len(_workers)}",
                                 daemon=True)
            t.start()
            _workers.append(t)
    for b in blocks:
        _tasks.put(b)


def run(kernel, cfg, replicas: int, threads: int | None, *arrays) -> None:
    """Run ``kernel`` over ``replicas`` replicas on ``threads`` worker threads (None:
    default_threads). Returns when every block has finished; re-raises the first exception a
    block raised."""
    threads = max(1, min(int(threads or default_threads()), replicas))
    if replicas <= 0:
        return
    compile_for(kernel, cfg, *arrays)       # here, at the kernel's optimisation level
    size = max(1, -(-replicas // (threads * BLOCKS_PER_THREAD)))
    blocks = [(lo, min(lo + size, replicas)) for lo in range(0, replicas, size)]
    errors: list = []
    done = threading.Semaphore(0)
    _submit([(kernel, (cfg, lo, hi) + arrays, errors, done) for lo, hi in blocks])
    for _ in blocks:
        done.acquire()
    if errors:
        raise errors[0]
