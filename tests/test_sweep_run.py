"""Running sweeps: resume, failures, divergence, shards, SIGKILL at random moments, dask.

All tasks use the same tiny model (tree committee N=12/20, d=4, binary, greedy) as the other test
files, so numba's cache of the compiled kernel is shared.
"""
import errno
import os
import random
import re
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import physsgd
from physsgd import executors, h5layout, store, sweep, taskdir
from physsgd.executors import SweepIOError, run_tasks
from physsgd.sweep import parse_config

MODEL = """
[teacher]
activation = "sign"
output = "sign"
topology = "tree"
d = 4
weights = "binary"
[student]
activation = "sign"
output = "sign"
topology = "tree"
d = 4
weights = "binary"
[algorithm]
kind = "Greedy"
[data]
kind = "Online"
inputs = "binary"
[run]
steps = {steps}
replicas = 2
record = 5
[grid]
N = [12, 20]
batch_size = [1, 2, 3, 4, 5]
seed = {seeds}
"""

SGD_DIVERGING = """
[teacher]
N = 12
K = 2
activation = "linear"
[student]
N = 12
K = 2
activation = "linear"
[algorithm]
kind = "SGD"
[data]
kind = "Online"
[run]
steps = 50
replicas = 2
record = 5
[grid]
lr = [0.1, 1e30, 0.2]
"""


def config_text(steps=20, seeds="[0, 1]"):
    return MODEL.format(steps=steps, seeds=seeds)


def write_config(tmp_path, text, name="sweep.toml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def content(path):
    """Everything that must be reproducible in a merged file: params and arrays per task."""
    out = {}
    with h5py.File(path, "r") as f:
        for key, g in f["tasks"].items():
            out[key] = (g.attrs["params_json"], g.attrs["status"],
                        {name: g[name][()] for name in g})
    return out


def assert_same_content(a, b):
    ca, cb = content(a), content(b)
    assert sorted(ca) == sorted(cb)
    for key in ca:
        assert ca[key][:2] == cb[key][:2]
        for name, arr in ca[key][2].items():
            assert np.array_equal(arr, cb[key][2][name], equal_nan=True), (key, name)


def cli(*args, timeout=900):          # the first call may compile a kernel (minutes, cold cache)
    return subprocess.run([sys.executable, "-m", "physsgd.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def temps(d):
    return [n for n in os.listdir(d) if n.endswith(".tmp")]


# --------------------------------------------------------------------------------------------
# In-process runs with a fake ps.train (fast; the real one is used below)

def fake_train(teacher, student, algo, data, steps=None, epochs=None, alpha=None, replicas=32, seed=0,
               init_scale=1.0, record=50, stop=None, success_eps=None, threads=None, **stationary):
    from test_store import fake_result
    if algo.batch_size == 4 and teacher.N == 20:
        raise ValueError("fake training failure")
    return fake_result(seed=seed + 10 * algo.batch_size + teacher.N, replicas=replicas,
                       K=student.K, M=teacher.K)


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(physsgd, "train", fake_train)


def test_resume_skips_finished_and_failed_tasks_leave_no_file(tmp_path, fake):
    sw = parse_config(config_text())
    out = tmp_path / "out"
    seen = []
    rep = run_tasks(sw.tasks, str(out), workers=1, progress=lambda t, o, r: seen.append(o.status))
    assert rep.total == 20 and rep.skipped == 0 and len(seen) == 20
    assert rep.count("done") == 18 and len(rep.failed) == 2          # N=20, m=4 fails (both seeds)
    assert "fake training failure" in rep.failed[0].error
    assert len(store.task_files(out)) == 18 and not temps(out)
    rep2 = run_tasks(sw.tasks, str(out), workers=1)                 # only the failed ones again
    assert rep2.skipped == 18 and len(rep2.outcomes) == 2
    # a changed parameter is a new task
    sw3 = parse_config(config_text(steps=21))
    rep3 = run_tasks(sw3.tasks[:3], str(out), workers=1)
    assert rep3.skipped == 0 and len(store.task_files(out)) == 21
    # files carry the provenance attributes
    with h5py.File(store.task_path(out, sw.tasks[0].key), "r") as f:
        for a in ("params_json", "status", "seed", "physsgd_version", "numba_version", "numpy_version",
                  "host", "wall_time", "threads", "key"):
            assert a in f.attrs, a
        assert f.attrs["key"] == sw.tasks[0].key


def test_write_error_stops_with_clear_message_and_keeps_finished_files(tmp_path, fake, monkeypatch):
    sw = parse_config(config_text())
    out = tmp_path / "out"
    real, calls = h5layout.write_result, []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) > 3:
            raise OSError(5, "Input/output error")
        return real(*a, **k)
    monkeypatch.setattr(h5layout, "write_result", flaky)
    with pytest.raises(SweepIOError, match="Input/output error.*3 finished task files.*fix the "
                                           "problem and re-run the same command to resume"):
        run_tasks(sw.tasks, str(out), workers=1)
    files = store.task_files(out)
    assert len(files) == 3 and not temps(out)
    for p in files.values():
        assert taskdir.verify_task_file(p) == ("ok", "")              # intact
    monkeypatch.setattr(h5layout, "write_result", real)
    rep = run_tasks(sw.tasks, str(out), workers=1)
    assert rep.skipped == 3 and len(store.task_files(out)) == 18


def test_full_disk_stops_in_one_line_and_resume_finishes(tmp_path, fake, monkeypatch):
    """ENOSPC from the write itself (injected into os.write: the disk fills up mid-sweep)."""
    sw = parse_config(config_text())
    out = tmp_path / "out"
    real, calls = os.write, []

    def write(fd, data):
        if len(data) > 1000:                      # task file images, not claims
            calls.append(1)
            if len(calls) > 5:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)
    monkeypatch.setattr(os, "write", write)
    with pytest.raises(SweepIOError) as e:
        run_tasks(sw.tasks, str(out), workers=1)
    msg = str(e.value)
    assert msg.startswith(f"no space left in {out}: task file ") and " needs " in msg
    assert "5 finished task files" in msg and msg.endswith("free some space and re-run the same command to resume")
    assert len(store.task_files(out)) == 5 and not temps(out) and not os.listdir(out / ".claims")
    monkeypatch.setattr(os, "write", real)                        # space is back
    rep = run_tasks(sw.tasks, str(out), workers=1)
    assert rep.skipped == 5 and rep.complete is False and len(rep.failed) == 2   # the fake's failures
    assert len(taskdir.scan(out).ok) == 18


def test_damaged_files_are_moved_aside_and_recomputed(tmp_path, fake):
    sw = parse_config(config_text())
    out = tmp_path / "out"
    run_tasks(sw.tasks, str(out), workers=1)
    files = store.task_files(out)
    zeroed, empty = files[sw.tasks[0].key], files[sw.tasks[1].key]
    with h5py.File(zeroed, "r+") as f:                  # what the full disk bug of 0.1 produced
        f["eps_g"][...] = 0.0
    open(empty, "wb").close()
    notices = []
    rep = run_tasks(sw.tasks, str(out), workers=1, notice=lambda m, **k: notices.append(m))
    assert sorted(d.path for d in rep.damaged) == sorted([zeroed, empty])
    assert [o.key for o in rep.outcomes if o.status == "done"] == [sw.tasks[0].key, sw.tasks[1].key]
    assert sum("damaged task file" in n and "recomputed" in n for n in notices) == 2
    assert len(os.listdir(out / "damaged")) == 4                 # two files, two reasons
    assert len(taskdir.scan(out).ok) == 18


def test_unwritable_output_directory(tmp_path, fake):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    sw = parse_config(config_text())
    with pytest.raises(SweepIOError, match="cannot create output directory"):
        run_tasks(sw.tasks, str(blocker / "out"), workers=1)


def test_plan_workers_respects_cores(monkeypatch):
    monkeypatch.setattr(executors, "_numba_max_threads", lambda: 64)
    assert executors.plan_workers(100, n_cores=8) == (8, 1)
    assert executors.plan_workers(2, n_cores=8) == (2, 4)
    assert executors.plan_workers(100, workers=2, n_cores=8) == (2, 4)
    assert executors.plan_workers(100, threads=4, n_cores=8) == (2, 4)
    assert executors.plan_workers(100, threads=16, n_cores=8) == (1, 16)


def test_plan_workers_never_plans_more_threads_than_numba_allows(monkeypatch):
    """NUMBA_NUM_THREADS=1 (a batch node, a shared machine) with --workers 1: one thread per task,
    not n_cores (every task failed with 'threads=2 is out of range' before)."""
    monkeypatch.setattr(executors, "_numba_max_threads", lambda: 1)
    assert executors.plan_workers(10, workers=1, n_cores=2) == (1, 1)
    assert executors.plan_workers(1, n_cores=8) == (1, 1)
    assert executors.plan_workers(10, workers=1, threads=1, n_cores=2) == (1, 1)


# --------------------------------------------------------------------------------------------
# The real ps.train

def test_diverging_point_is_stored_and_the_sweep_goes_on(tmp_path):
    sw = parse_config(SGD_DIVERGING)
    out = tmp_path / "out"
    rep = run_tasks(sw.tasks, str(out), workers=1)
    assert [o.status for o in rep.outcomes] == ["done", "diverged", "done"]
    for task, status in zip(sw.tasks, ["done", "diverged", "done"]):
        assert store.task_info(store.task_path(out, task.key))["status"] == status
    assert store.load(store.task_path(out, sw.tasks[1].key)).diverged.all()


def test_kill_at_random_moments_then_resume_is_bit_identical(tmp_path):
    cfg = write_config(tmp_path, config_text(steps=200))
    r = cli("run", cfg, "--out", tmp_path / "ref", "--workers", "1", "--merge", tmp_path / "ref.h5")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    rng = random.Random(1234)
    # kill moments: while the pool starts, then when a random number of tasks is finished (+ a
    # random delay, so that some kills land while a worker writes its file)
    targets = [0] + sorted(rng.sample(range(2, 19), 3))
    counts = []
    for target in targets:
        proc = subprocess.Popen([sys.executable, "-m", "physsgd.cli", "run", cfg, "--out", str(out),
                                 "--workers", "2", "--quiet"], start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        if target == 0:
            time.sleep(rng.uniform(0.2, 1.0))
        while target and proc.poll() is None and time.time() < deadline:
            if out.exists() and len(store.task_files(out)) >= target:
                break
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.05))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        files = store.task_files(out) if out.exists() else {}
        counts.append(len(files))
        for p in files.values():                                      # whatever exists is complete
            store.load(p)
    assert counts == sorted(counts) and 0 < counts[-1] < 20, counts   # progress kept, run interrupted
    r = cli("run", cfg, "--out", out, "--merge", tmp_path / "out.h5")
    assert r.returncode == 0, r.stderr
    assert not temps(out)
    assert_same_content(tmp_path / "ref.h5", tmp_path / "out.h5")


def _children(pid):
    """pids whose parent is pid (Linux /proc)."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return kids


def _state(pid):
    """R if any thread of the process is running (the replicas run on worker threads, the main
    thread waits for them), else the state of its main thread; "?" once it is gone."""
    def state(path):
        with open(path) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    try:
        main = state(f"/proc/{pid}/stat")
        threads = []
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                threads.append(state(f"/proc/{pid}/task/{tid}/stat"))
            except OSError:
                pass
    except OSError:
        return "?"
    return "R" if "R" in threads else main


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux /proc")
def test_workers_exit_when_only_the_parent_is_killed(tmp_path):
    """kill -9 of `physsgd run` alone (not its process group) must not leave workers running on."""
    cfg = write_config(tmp_path, config_text(steps=2000))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "physsgd.cli", "run", cfg, "--out", str(out),
                             "--workers", "2", "--quiet"], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    workers = []
    while time.time() < deadline and len(workers) < 2:
        workers = [p for p in _children(proc.pid) if _alive(p)]
        time.sleep(0.1)
    assert workers, "no worker processes appeared"
    proc.kill()
    proc.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.2)
    survivors = [p for p in workers if _alive(p)]
    for p in survivors:
        os.kill(p, signal.SIGKILL)
    assert not survivors


def test_two_concurrent_shards_then_merge_equal_a_single_run(tmp_path):
    cfg = write_config(tmp_path, config_text())
    out = tmp_path / "out"
    procs = [subprocess.Popen([sys.executable, "-m", "physsgd.cli", "run", cfg, "--out", str(out),
                               "--shard", f"{i}/2", "--workers", "1", "--quiet"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert len(store.task_files(out)) == 20 and not temps(out)
    assert cli("merge", out, "-o", tmp_path / "shards.h5").returncode == 0
    single = tmp_path / "single"
    assert cli("run", cfg, "--out", single, "--workers", "1", "--quiet").returncode == 0
    assert cli("merge", single, "-o", tmp_path / "single.h5").returncode == 0
    assert_same_content(tmp_path / "shards.h5", tmp_path / "single.h5")


def test_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    sw = parse_config(config_text(seeds="[0]"))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        rep = run_tasks(sw.tasks, str(tmp_path / "dask"), executor="dask", scheduler=cluster.scheduler_address)
    assert rep.count("done") == 10 and not rep.failed
    hosts = {o.host for o in rep.outcomes}
    assert hosts
    ref = run_tasks(sw.tasks, str(tmp_path / "inline"), workers=1)
    assert ref.count("done") == 10
    store.merge([str(tmp_path / "dask")], str(tmp_path / "dask.h5"))
    store.merge([str(tmp_path / "inline")], str(tmp_path / "inline.h5"))
    assert_same_content(tmp_path / "dask.h5", tmp_path / "inline.h5")


def test_submitit_local_executor(tmp_path):
    pytest.importorskip("submitit")
    sw = parse_config(config_text(seeds="[0]"))
    tasks = sw.tasks[:2]
    rep = run_tasks(tasks, str(tmp_path / "sub"), executor="submitit-local")
    assert [o.status for o in rep.outcomes] == ["done", "done"]
    assert sorted(store.task_files(tmp_path / "sub")) == sorted(t.key for t in tasks)


def test_warm_up_compiles_with_a_one_step_version_of_the_task(monkeypatch):
    calls = []
    monkeypatch.setattr(physsgd, "train", lambda *a, **kw: calls.append(kw))
    sw = parse_config(config_text())
    executors._warm_up(sw.tasks[0])
    assert calls and calls[0]["steps"] == 1 and calls[0]["replicas"] == 1 and calls[0]["threads"] == 1
    monkeypatch.setattr(physsgd, "train", fake_train)                # failures are left to the task
    executors._warm_up(sw.tasks[-4])                                  # N=20, m=4: fake_train raises


# --------------------------------------------------------------------------------------------
# Signals, dead workers, concurrent runs (subprocesses running the real CLI)

# two quick tasks, then two that each take far longer than the test allows for stopping
SIGNAL_CONFIG = MODEL.replace("steps = {steps}\n", "").replace(
    "N = [12, 20]\nbatch_size = [1, 2, 3, 4, 5]\nseed = {seeds}", "N = [12]\nbatch_size = [1]\n"
    "steps = [100, 20000000]\nseed = [0, 1]")


def start(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "physsgd.cli", *map(str, args)], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def wait_for(cond, timeout=120, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def claims(d):
    try:
        return os.listdir(d / ".claims")
    except FileNotFoundError:
        return []


@pytest.mark.parametrize("workers, sig, code", [(1, signal.SIGINT, 130), (2, signal.SIGTERM, 143)])
def test_a_signal_stops_running_tasks_within_seconds_and_keeps_finished_ones(tmp_path, workers, sig, code):
    cfg = write_config(tmp_path, SIGNAL_CONFIG)
    out = tmp_path / "out"
    proc = start("run", cfg, "--out", out, "--workers", workers)
    try:
        # workers=1: both quick tasks are done and a long one runs; workers=2: two tasks run
        wait_for(lambda: out.exists() and (len(store.task_files(out)) >= 2 if workers == 1
                                           else len(claims(out)) >= 2), what="tasks to start")
        time.sleep(0.5)
        kept = len(store.task_files(out))
        t0 = time.time()
        proc.send_signal(sig)                  # to the parent only, as a batch system does
        _, err = proc.communicate(timeout=30)
        stopped_in = time.time() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == code, err
    assert stopped_in < 10, stopped_in          # a long task alone takes minutes
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"physsgd: interrupted by {sig.name}: stopped ") and \
        f"{kept} finished task files in {out} are kept; re-run the same command to resume" in last
    assert "Traceback" not in err
    assert not temps(out) and not claims(out)   # partial files and claims removed
    assert len(store.task_files(out)) == kept
    for p in store.task_files(out).values():
        assert taskdir.verify_task_file(p) == ("ok", "")


def test_a_second_signal_exits_at_once(tmp_path):
    cfg = write_config(tmp_path, SIGNAL_CONFIG)
    out = tmp_path / "out"
    proc = start("run", cfg, "--out", out, "--workers", 2)
    try:
        wait_for(lambda: len(claims(out)) >= 2, what="tasks to start")
        t0 = time.time()
        proc.send_signal(signal.SIGINT)
        time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and time.time() - t0 < 5
    assert "second SIGINT: exiting now" in err and "Traceback" not in err and "leaked" not in err
    # what it could not clean up, the next run does: claims of a dead process are stale
    with taskdir.Claims(out) as c:
        assert all(c.acquire(k)[0] for k in claims(out))


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux /proc")
def test_a_dead_worker_fails_its_task_by_name_and_the_rest_goes_on(tmp_path):
    text = MODEL.replace("N = [12, 20]\nbatch_size = [1, 2, 3, 4, 5]", "N = [12]\nbatch_size = [1, 2, 3]")
    cfg = write_config(tmp_path, text.format(steps=100000, seeds="[0, 1]"))
    out = tmp_path / "out"
    proc = start("run", cfg, "--out", out, "--workers", 2)
    try:
        # once a task is finished both workers are busy (the pool may break before any task
        # starts, too: then every task is simply run again)
        wait_for(lambda: out.exists() and len(store.task_files(out)) >= 1, what="a finished task")
        victim = None
        while victim is None:       # a worker that is computing (state R twice, no file meanwhile)
            n = len(store.task_files(out))
            busy = [p for p in _children(proc.pid) if _state(p) == "R" and
                    "spawn_main" in open(f"/proc/{p}/cmdline").read()]
            time.sleep(0.2)
            busy = [p for p in busy if _state(p) == "R"]
            victim = busy[0] if busy and len(store.task_files(out)) == n else None
        os.kill(victim, signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 1, err
    assert f"its worker process {victim} died (killed by SIGKILL" in err, err
    assert "1 task(s) failed, e.g. " in err and "re-run the same command to resume" in err
    assert "Traceback" not in err and "BrokenProcessPool" not in err
    assert len(store.task_files(out)) == 5 and not temps(out) and not claims(out)


class _Worker:
    """A pool worker as executors.dead_workers sees it: exits with `code` once `reaped_after`
    seconds of joins have passed."""
    def __init__(self, code, reaped_after=0.0):
        self.code, self.left, self.exitcode = code, reaped_after, None

    def join(self, timeout=None):
        waited = min(self.left, timeout if timeout is not None else self.left)
        self.left -= waited
        time.sleep(min(waited, 0.01))
        if self.left <= 0:
            self.exitcode = self.code


def test_a_slowly_reaped_killed_worker_is_blamed_not_the_terminated_bystander():
    # stop 23's CI on a loaded machine: the SIGKILLed worker took longer than the old 2 s join
    # to be reaped, and its task's failure was pinned on the worker the pool had SIGTERMed
    procs = {11: _Worker(-signal.SIGTERM), 12: _Worker(-signal.SIGKILL, reaped_after=5.0)}
    assert executors.dead_workers(procs, patience=30.0) == {12}
    # never reaped within the patience: nobody is blamed (its task is simply run again)
    procs = {11: _Worker(-signal.SIGTERM), 12: _Worker(-signal.SIGKILL, reaped_after=60.0)}
    assert executors.dead_workers(procs, patience=1.0) == set()
    # every worker exited by SIGTERM: somebody sent it, so it is the cause
    procs = {11: _Worker(-signal.SIGTERM), 12: _Worker(-signal.SIGTERM)}
    assert executors.dead_workers(procs) == {11, 12}
    assert executors.dead_workers({11: _Worker(0), 12: _Worker(1)}) == {12}


def test_two_runs_on_one_directory_share_the_work(tmp_path):
    cfg = write_config(tmp_path, config_text(steps=20000))
    out = tmp_path / "out"
    procs = [start("run", cfg, "--out", out, "--workers", 1) for _ in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    ran = [int(re.search(r"^(\d+) tasks run here", e, re.M).group(1)) for e in errs]
    assert sum(ran) == 20 and min(ran) > 0, errs                   # every task computed once
    assert all(re.search(r"finished by another run meanwhile|still running in another run", e) for e in errs)
    assert len(taskdir.scan(out).ok) == 20 and not claims(out) and not temps(out)
    with h5py.File(next(iter(store.task_files(out).values()))) as f:
        assert f.attrs["pid"] > 0


# --------------------------------------------------------------------------------------------
# dask: paths resolved on the client, checked from the workers; a lost scheduler

def test_dask_resolves_a_relative_out_on_the_client_and_checks_the_workers_see_it(tmp_path, fake, monkeypatch):
    distributed = pytest.importorskip("dask.distributed")
    sw = parse_config(config_text(seeds="[0]"))
    monkeypatch.chdir(tmp_path)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        rep = run_tasks(sw.tasks[:3], "rel/out", executor="dask", scheduler=cluster.scheduler_address)
        assert rep.out_dir == str(tmp_path / "rel" / "out")
        assert sorted(store.task_files(tmp_path / "rel" / "out")) == sorted(t.key for t in sw.tasks[:3])
        # a worker that does not see the directory (no shared file system): one clear error
        monkeypatch.setattr(executors, "_probe", lambda path: False)
        with pytest.raises(executors.SweepError, match=r"dask worker\(s\) .* cannot see "
                           f"{re.escape(str(tmp_path / 'other'))}: the output directory must be on a "
                           "file system shared"):
            run_tasks(sw.tasks, "other", executor="dask", scheduler=cluster.scheduler_address)
    assert not store.task_files(tmp_path / "other")


def test_dask_unreachable_scheduler_is_one_line(tmp_path, fake):
    pytest.importorskip("dask.distributed")
    import dask
    sw = parse_config(config_text(seeds="[0]"))
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), pytest.raises(executors.SweepError, match="cannot connect to the dask scheduler tcp://127.0.0.1:9"):
        run_tasks(sw.tasks, str(tmp_path), executor="dask", scheduler="tcp://127.0.0.1:9")


def test_dask_lost_scheduler_is_one_line_and_says_re_run(tmp_path):
    pytest.importorskip("dask.distributed")
    sched_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    try:
        wait_for(sched_file.exists, 60, "the scheduler")
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker",
                                       "--scheduler-file", str(sched_file), "--nthreads", "1",
                                       "--no-dashboard"], cwd="/", env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        cfg = write_config(tmp_path, SIGNAL_CONFIG)
        out = tmp_path / "out"
        run = start("run", cfg, "--out", out, "--executor", "dask", "--scheduler", sched_file)
        procs.append(run)
        wait_for(lambda: out.exists() and len(store.task_files(out)) >= 2, 120, "the quick tasks")
        procs[0].kill()                                              # the scheduler dies
        _, err = run.communicate(timeout=120)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert run.returncode == 1, err
    assert err.strip().splitlines()[-1].startswith("physsgd: error: lost the dask scheduler ")
    assert "finished task files are kept; re-run the same command to resume" in err
    assert "Traceback" not in err and "ERROR" not in err
    assert len(store.task_files(out)) >= 2 and not temps(out) and not claims(out)


# --------------------------------------------------------------------------------------------
# A real full disk (a tiny tmpfs; needs root, as in this project's CI container)

@pytest.fixture
def tiny_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.parametrize("workers", [1, 2])
def test_real_full_disk_one_line_no_partial_file_no_crash_then_resume(tmp_path, tiny_disk, workers):
    cfg = write_config(tmp_path, config_text())
    out = tiny_disk / "out"
    filler = tiny_disk / "filler"
    filler.write_bytes(b"\0" * (2 * 1024 ** 2 - 8 * 19_000))    # room for about 7 task files
    r = cli("run", cfg, "--out", out, "--workers", workers)
    assert r.returncode == 1, r.stderr                        # not a segfault (-11), not 0
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("physsgd: error:")]
    assert len(errors) == 1 and errors[0].startswith(f"physsgd: error: no space left in {out}: task file ")
    assert "needs" in errors[0] and "free" in errors[0] and "re-run the same command to resume" in errors[0]
    for bad in ("Traceback", "HDF5-DIAG", "Exception ignored", "Segmentation"):
        assert bad not in r.stderr
    done = store.task_files(out)
    assert 0 < len(done) < 20 and not temps(out)
    assert all(taskdir.verify_task_file(p) == ("ok", "") for p in done.values())
    filler.unlink()                                           # space is back
    r = cli("run", cfg, "--out", out, "--workers", workers, "--merge", tiny_disk / "r.h5")
    assert r.returncode == 0, r.stderr
    assert len(taskdir.scan(out).ok) == 20 and store.merge([str(out)], str(tiny_disk / "r2.h5")).ok


# --------------------------------------------------------------------------------------------
# physsgd.sweep.run: the library entry point

def ok_train(teacher, student, algo, data, steps=None, epochs=None, alpha=None, replicas=32, seed=0,
             init_scale=1.0, record=50, stop=None, success_eps=None, threads=None, **stationary):
    from test_store import fake_result
    return fake_result(seed=seed + 10 * algo.batch_size + teacher.N, replicas=replicas,
                       K=student.K, M=teacher.K)


def test_sweep_run_runs_resumes_merges_and_reports(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(physsgd, "train", ok_train)
    cfg = write_config(tmp_path, config_text(seeds="[0]"))
    seen = []
    rep = sweep.run(cfg, tmp_path / "out", workers=1, progress=lambda t, o, r: seen.append((t.key, o.status)),
                    merge=tmp_path / "r.h5")
    assert rep.ok and rep.complete and rep.total == 10 and [s for _, s in seen] == ["done"] * 10
    assert rep.merged.n_tasks == 10 and rep.merged.ok and (tmp_path / "r.h5").exists()
    err = capsys.readouterr().err
    assert "physsgd run: 10 tasks, 0 already done, 10 to run (1 worker x " in err
    assert "10 tasks run here" in err and f"merged 10 tasks into {tmp_path / 'r.h5'}" in err
    # a loaded Sweep, a shard as text or as a pair, silence
    sw = sweep.load_config(cfg)
    a = sweep.run(sw, tmp_path / "a", shard="1/3", workers=1, progress=False)
    b = sweep.run(sw, tmp_path / "b", shard=(1, 3), workers=1, progress=False)
    assert a.total == b.total == 3 and sorted(store.task_files(tmp_path / "a")) == sorted(store.task_files(tmp_path / "b"))
    assert capsys.readouterr().err == ""
    again = sweep.run(cfg, tmp_path / "out", workers=1, quiet=True)     # resume: nothing to do
    assert again.skipped == 10 and not again.outcomes and capsys.readouterr().err == ""
    assert again.summary() == "nothing to do: all 10 tasks were already done"


def test_sweep_run_merges_only_a_complete_sweep(tmp_path, fake, capsys):
    cfg = write_config(tmp_path, config_text(seeds="[0]"))
    rep = sweep.run(cfg, tmp_path / "out", workers=1, merge=tmp_path / "r.h5")
    assert not rep.ok and len(rep.failed) == 1 and rep.merged is None and not (tmp_path / "r.h5").exists()
    err = capsys.readouterr().err
    assert "1 task(s) failed, e.g. " in err and "(N=20, batch_size=4, seed=0): ValueError: fake training failure" in err
    assert "not merged: 1 task(s) are not finished" in err


def test_cold_cache_compiles_once_up_front_announced_and_outside_the_eta(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(physsgd, "train", ok_train)
    monkeypatch.setattr(executors, "_cached", lambda dispatcher: False)
    warmed = []
    monkeypatch.setattr(executors, "_warm_up", lambda t: warmed.append(t.key) or time.sleep(1.5))
    cfg = write_config(tmp_path, config_text(seeds="[0]"))
    sweep.run(cfg, tmp_path / "out", workers=1)
    err = capsys.readouterr().err
    assert len(warmed) == 1                                   # one task family: one warm-up
    assert "compiling the numba kernels (first run only" in err and "set NUMBA_CACHE_DIR" in err
    assert re.search(r"kernels compiled in 0:00:0[12]", err)
    h, m, sec = map(int, re.search(r"\[1/10\] .* ETA (\d+):(\d+):(\d+)", err).groups())
    # with the 1.5 s of compiling counted, 9 tasks left would give an ETA of >= 13 s
    assert 3600 * h + 60 * m + sec < 5, err
    monkeypatch.setattr(executors, "_cached", lambda dispatcher: True)
    sweep.run(cfg, tmp_path / "out2", workers=1)
    assert "compiling" not in capsys.readouterr().err and len(warmed) == 1


def test_kernels_cached_reads_numbas_index():
    ps_train_once = physsgd.train(physsgd.Committee(N=12, activation="sign", output="sign", topology="tree",
                                                    d=4, weights="binary"),
                                  physsgd.Committee(N=12, activation="sign", output="sign", topology="tree",
                                                    d=4, weights="binary"),
                                  physsgd.Greedy(batch_size=2), physsgd.Online(inputs="binary"),
                                  steps=2, replicas=1, record=2)
    assert ps_train_once.replicas == 1
    sw = parse_config(config_text(seeds="[0]"))              # the same kind of task
    assert executors.kernels_cached(sw.tasks) is True        # compiled (or loaded) just now
    assert executors._cold_families(sw.tasks) == []
    assert os.path.isdir(executors.kernel_cache_dir(sw.tasks))
    # the SGD task of SGD_DIVERGING needs another kernel than the greedy ones
    assert {executors._entry_point(t).__name__ for t in sw.tasks + parse_config(SGD_DIVERGING).tasks} \
        >= {"train_sgd"}
