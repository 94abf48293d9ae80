"""Running sweep tasks: one worker function, several ways to call it, resumable by construction.

``run_task`` is the only thing that touches the kernels: it rebuilds the specs from a task's
canonical parameters, calls ``ps.train`` once (all replicas), and writes ``<key>.h5`` atomically
into the output directory. The executors only decide where it runs:

- ``inline``: in this process (one worker; also the fallback for ``--workers 1``);
- ``local``:  a ``ProcessPoolExecutor`` with the 'spawn' context (fork after numba has started its
  thread pool is unsafe), workers x threads <= cores;
- ``dask``:   an existing ``dask.distributed`` scheduler (covers dask-jobqueue clusters);
- ``slurm`` / ``submitit-local``: submitit job arrays.

Resume = skip tasks whose file exists: a file only appears complete (temp name + os.replace), so
its existence means the task is finished.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field

from . import store
from .sweep import TaskOutcome, build_specs

EXECUTORS = ("local", "inline", "dask", "slurm", "submitit-local")


class SweepIOError(OSError):
    """Writing results failed (disk full, permissions, ...): the sweep stops, finished files stay."""


# --------------------------------------------------------------------------------------------
# The worker

def run_task(key: str, params: dict, out_dir: str, threads: int | None = None) -> TaskOutcome:
    """Train one task and write ``out_dir/<key>.h5``. Never raises for a task's own failure:
    training errors come back as status "failed", write errors as "io_error" (the caller stops)."""
    import numpy
    import physsgd
    host = socket.gethostname()
    if os.path.exists(store.task_path(out_dir, key)):      # finished meanwhile (another shard/run)
        return TaskOutcome(key, "skipped", host=host)
    t0 = time.perf_counter()
    try:
        teacher, student, algo, data, run = build_specs(params)
        result = physsgd.train(teacher, student, algo, data, threads=threads, **run)
    except Exception as e:     # a bug or an invalid combination only train detects: report, go on
        return TaskOutcome(key, "failed", time.perf_counter() - t0, f"{type(e).__name__}: {e}", host)
    wall = time.perf_counter() - t0
    try:
        import numba
        numba_version = numba.__version__
    except ImportError:
        numba_version = ""
    train_params = result.params
    result.params = params          # the canonical params: re-hashing the file gives its name
    result.wall_time = wall
    from .kernels import SOURCE_DIGEST
    attrs = {"key": key, "seed": int(params["run"]["seed"]), "physsgd_version": physsgd.__version__,
             "kernels_sha256": SOURCE_DIGEST,
             "numpy_version": numpy.__version__, "numba_version": numba_version, "host": host,
             "pid": os.getpid(), "threads": int(threads or 0), "wall_time": wall,
             "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if train_params and train_params != params:
        attrs["train_params_json"] = store.canonical_json(train_params)
    try:
        store.write_task(out_dir, key, result, attrs)
    except OSError as e:
        return TaskOutcome(key, "io_error", wall, f"cannot write {store.task_path(out_dir, key)}: "
                           f"{e.strerror or e}", host)
    status = "diverged" if bool(result.diverged.any()) else "done"
    return TaskOutcome(key, status, wall, "", host,
                       extra={"success_rate": float(result.success.mean()),
                              "n_diverged": int(result.diverged.sum())})


def _init_worker(threads, parent_pid=None):
    if parent_pid is not None:
        _exit_with_parent(parent_pid)
    # Each worker process gets its share of the cores for numba's parallel loops.
    if threads:
        try:
            import numba
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        except ImportError:
            pass


def _exit_with_parent(parent: int, poll_seconds: float = 1.0):
    """A worker whose parent was killed (kill -9 of `physsgd run`, a terminal closed) would
    otherwise finish its task and write a file into a directory the user may have since removed
    or reused; it exits instead, leaving nothing (task files are written atomically)."""
    import threading
    if sys.platform.startswith("linux"):      # the kernel kills us at once, even mid-kernel
        try:
            import ctypes
            PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:                # the parent died before we got here
        os._exit(1)

    def watch():
        while True:
            time.sleep(poll_seconds)
            if os.getppid() != parent:
                os._exit(1)
    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


# --------------------------------------------------------------------------------------------
# Orchestration

@dataclass
class RunReport:
    total: int                      # tasks in this (shard of the) sweep
    skipped: int                    # already finished before this run
    outcomes: list = field(default_factory=list)
    removed_temps: list = field(default_factory=list)
    wall_time: float = 0.0
    workers: int = 1
    threads: int = 1

    def count(self, status) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> list:
        return [o for o in self.outcomes if o.status in ("failed", "io_error")]

    @property
    def ok(self) -> bool:
        return not self.failed


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def plan_workers(n_tasks: int, workers: int | None = None, threads: int | None = None,
                 n_cores: int | None = None) -> tuple:
    """(workers, threads per worker) with workers x threads <= cores unless both are given.

    Many tasks: one thread each and a worker per core (task-level parallelism wastes nothing);
    fewer tasks than cores: the spare cores go to numba threads inside each task.
    """
    n_cores = n_cores or cores()
    n_tasks = max(1, n_tasks)
    if workers and threads:
        return workers, threads
    if workers:
        return workers, max(1, n_cores // workers)
    if threads:
        return max(1, min(n_tasks, n_cores // threads)), threads
    w = max(1, min(n_tasks, n_cores))
    return w, max(1, n_cores // w)


def prepare_dir(out_dir) -> list:
    """Create the output directory, check it is writable, remove stale temp files; returns those."""
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise SweepIOError(f"cannot create output directory {out_dir}: {e.strerror or e}") from None
    probe = os.path.join(out_dir, f".write-test.{socket.gethostname()}.{os.getpid()}")
    try:
        with open(probe, "wb") as f:
            f.write(b"ok")
        os.remove(probe)
    except OSError as e:
        raise SweepIOError(f"output directory {out_dir} is not writable: {e.strerror or e}") from None
    return store.clean_stale_temps(out_dir)


def run_tasks(tasks: list, out_dir: str, *, executor: str = "local", workers: int | None = None,
              threads: int | None = None, scheduler: str | None = None, slurm: dict | None = None,
              progress=None) -> RunReport:
    """Run the tasks whose file is missing in ``out_dir``; returns a RunReport.

    ``progress(task, outcome, report)`` is called after every task. Raises SweepIOError when a
    result cannot be written (the remaining tasks are cancelled; finished files are intact).
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor={executor!r} is not allowed; choose one of {', '.join(EXECUTORS)}")
    t0 = time.time()
    removed = prepare_dir(out_dir)
    done = set(store.task_files(out_dir))
    todo = [t for t in tasks if t.key not in done]
    report = RunReport(total=len(tasks), skipped=len(tasks) - len(todo), removed_temps=removed)
    if executor in ("dask", "slurm", "submitit-local"):
        workers, threads = workers or 0, threads or 1
    else:
        workers, threads = plan_workers(len(todo), workers, threads)
        if workers == 1:
            executor = "inline"
    report.workers, report.threads = workers, threads
    by_key = {t.key: t for t in todo}

    def finished(outcome):
        report.outcomes.append(outcome)
        if progress:
            progress(by_key[outcome.key], outcome, report)
        return outcome.status != "io_error"

    if todo:
        runner = {"inline": _run_inline, "local": _run_local, "dask": _run_dask,
                  "slurm": _run_submitit, "submitit-local": _run_submitit}[executor]
        kwargs = {"scheduler": scheduler} if executor == "dask" else {}
        if executor in ("slurm", "submitit-local"):
            kwargs = {"cluster": "slurm" if executor == "slurm" else "local", "params": slurm or {}}
        runner(todo, out_dir, workers, threads, finished, **kwargs)
    report.wall_time = time.time() - t0
    io = [o for o in report.outcomes if o.status == "io_error"]
    if io:
        n_ok = sum(o.status in ("done", "diverged") for o in report.outcomes) + report.skipped
        raise SweepIOError(f"{io[0].error}; stopped. {n_ok} finished task files in {out_dir} are "
                           "intact; fix the problem and re-run the same command to resume")
    return report


def _run_inline(todo, out_dir, workers, threads, finished):
    _init_worker(threads)
    for t in todo:
        if not finished(run_task(t.key, t.params, out_dir, threads)):
            return


def _warm_up(task):
    """Compile (or load) the kernels once in this process with a 1-step, 1-replica version of a
    task, so that many workers load numba's cache instead of each compiling the same code at
    once (tens of seconds and hundreds of MB each on a cold cache). Failures are left to the task."""
    import physsgd
    try:
        teacher, student, algo, data, run = build_specs(task.params)
        run.update(steps=1, epochs=None, alpha=None, replicas=1, record=2, stop=None)
        physsgd.train(teacher, student, algo, data, threads=1, **run)
    except Exception:
        pass


def _run_local(todo, out_dir, workers, threads, finished):
    if workers > 2:
        _warm_up(todo[0])
    ctx = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                  initargs=(threads, os.getpid()))
    try:
        futures = [pool.submit(run_task, t.key, t.params, out_dir, threads) for t in todo]
        for fut in cf.as_completed(futures):
            if not finished(fut.result()):
                break
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True, cancel_futures=True)


def _run_dask(todo, out_dir, workers, threads, finished, scheduler=None):
    try:
        from dask.distributed import Client, as_completed
    except ImportError:
        raise RuntimeError("--executor dask needs the optional extra: pip install 'physsgd[cluster]'") from None
    if not scheduler:
        raise ValueError("--executor dask needs --scheduler ADDRESS (tcp://host:8786) or a scheduler JSON file")
    if scheduler.endswith(".json") and os.path.exists(scheduler):
        client = Client(scheduler_file=scheduler)         # as written by dask-jobqueue / dask-scheduler
    else:
        client = Client(scheduler)
    try:
        n = len(todo)
        futures = client.map(run_task, [t.key for t in todo], [t.params for t in todo],
                             [out_dir] * n, [threads] * n, pure=False)
        for fut in as_completed(futures):
            if not finished(fut.result()):
                client.cancel(futures)
                break
    finally:
        client.close()


def _run_submitit(todo, out_dir, workers, threads, finished, cluster="slurm", params=None):
    try:
        import submitit
    except ImportError:
        raise RuntimeError("--executor slurm needs the optional extra: pip install 'physsgd[cluster]'") from None
    ex = submitit.AutoExecutor(folder=os.path.join(out_dir, ".submitit"), cluster=cluster)
    opts = {"cpus_per_task": threads, "timeout_min": 60}
    opts.update(params or {})
    ex.update_parameters(**opts)
    n = len(todo)
    jobs = ex.map_array(run_task, [t.key for t in todo], [t.params for t in todo], [out_dir] * n, [threads] * n)
    pending = list(jobs)
    while pending:
        still = []
        for job in pending:
            if job.done():
                try:
                    outcome = job.result()
                except Exception as e:       # the job itself died (time limit, node failure)
                    outcome = TaskOutcome(todo[jobs.index(job)].key, "failed", 0.0, f"job {job.job_id}: {e}")
                if not finished(outcome):
                    for j in pending:
                        j.cancel(check=False)
                    return
            else:
                still.append(job)
        pending = still
        if pending:
            time.sleep(1.0)


# --------------------------------------------------------------------------------------------
# Progress: a tqdm bar on a terminal, one plain line per task otherwise (batch-job logs), or nothing

class Progress:
    def __init__(self, total: int, already: int = 0, quiet: bool = False, stream=None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.total, self.n, self.already = total, already, already
        self.t0 = time.time()
        self.bar = None
        if not quiet and hasattr(self.stream, "isatty") and self.stream.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=already, unit="task", file=self.stream,
                            dynamic_ncols=True, smoothing=0.1)

    def __call__(self, task, outcome, report):
        self.n += 1
        if self.bar is not None:
            self.bar.update(1)
            if outcome.status in ("failed", "io_error", "diverged"):
                self.bar.write(f"{outcome.status}: {task.label()}  {outcome.error}".rstrip())
            return
        if self.quiet and outcome.status not in ("failed", "io_error"):
            return
        elapsed = time.time() - self.t0
        ran = self.n - self.already
        left = self.total - self.n
        eta = elapsed / ran * left if ran else 0.0
        msg = (f"[{self.n}/{self.total}] {outcome.status:8s} {task.key} {task.label()} "
               f"({outcome.wall_time:.1f}s) ETA {_hms(eta)}")
        if outcome.error:
            msg += f"  {outcome.error}"
        print(msg, file=self.stream, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"
