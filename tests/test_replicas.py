"""physsgd/replicas.py: every replica runs exactly once, in blocks, on the threads asked for;
a kernel's exception reaches the caller. (Bit-identity across thread counts of the real kernels:
tests/test_reproducibility.py.)"""
import threading

import numpy as np
import pytest

from physsgd import replicas


def recording_kernel(cfg, lo, hi, counts, owners):
    """A stand-in kernel: counts the runs of each replica and which thread ran it."""
    for r in range(lo, hi):
        counts[r] += 1
        owners[r] = threading.get_ident()


@pytest.mark.parametrize("n", [1, 2, 5, 13, 64])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_every_replica_runs_once(n, threads):
    counts, owners = np.zeros(n, np.int64), np.zeros(n, np.int64)
    replicas.run(recording_kernel, None, n, threads, counts, owners)
    np.testing.assert_array_equal(counts, 1)
    used = set(owners.tolist())
    assert len(used) <= min(threads, n)
    assert threading.get_ident() not in used         # persistent workers, never the caller


def test_blocks_are_contiguous_and_spread_over_the_threads():
    seen = []
    gate = threading.Barrier(2, timeout=10)

    def kernel(cfg, lo, hi):
        gate.wait()          # both threads must be inside a block at once, or this times out
        seen.append((lo, hi))
    n_blocks = 2 * replicas.BLOCKS_PER_THREAD       # the barrier lets the calls pass in pairs
    size = 3
    replicas.run(kernel, None, size * n_blocks, 2)
    assert sorted(seen) == [(i * size, (i + 1) * size) for i in range(n_blocks)]


def test_kernel_error_reaches_the_caller():
    def kernel(cfg, lo, hi, done):
        for r in range(lo, hi):
            if r == 5:
                raise ValueError("replica 5 failed")
            done[r] = 1
    done = np.zeros(20, np.int64)
    with pytest.raises(ValueError, match="replica 5 failed"):
        replicas.run(kernel, None, 20, 2, done)
    assert done.sum() < 20


def test_concurrent_callers_do_not_wait_for_each_other():
    """Two callers of one thread each (tasks run in threads) get a worker each."""
    gate = threading.Barrier(2, timeout=10)

    def kernel(cfg, lo, hi):
        gate.wait()          # times out unless both callers' blocks run at once

    callers = [threading.Thread(target=replicas.run, args=(kernel, None, 1, 1)) for _ in range(2)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert not gate.broken


def test_a_forked_child_starts_its_own_workers():
    """After fork the parent's workers do not exist in the child: a run there must not wait
    for them forever."""
    import multiprocessing
    counts, owners = np.zeros(4, np.int64), np.zeros(4, np.int64)
    replicas.run(recording_kernel, None, 4, 2, counts, owners)     # the parent's workers exist
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=replicas.run, args=(recording_kernel, None, 4, 2, counts, owners))
    child.start()
    child.join(timeout=20)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive and child.exitcode == 0


def test_default_threads_is_numbas():
    import numba
    assert replicas.default_threads() == numba.get_num_threads()
