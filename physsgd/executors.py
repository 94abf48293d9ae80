"""Running sweep tasks: one worker function, several places to run it, resumable by construction.

``run_task`` is the only thing that touches the kernels: it rebuilds the specs from a task's
canonical parameters, calls ``ps.train`` once (all replicas), and writes ``<key>.h5`` (verified,
atomically) into the output directory. The executors only decide where it runs:

- ``inline``: in this process, in a worker thread (the kernel releases the GIL), so that the main
  thread still reacts to signals; the fallback for ``--workers 1``;
- ``local``:  a ``ProcessPoolExecutor`` with the 'spawn' context (fork after numba has started its
  thread pool is unsafe), workers x threads <= cores;
- ``dask``:   an existing ``dask.distributed`` scheduler (covers dask-jobqueue clusters);
- ``slurm`` / ``submitit-local``: submitit job arrays.

``run_tasks`` orchestrates: it verifies the finished files (damaged ones are moved aside and
recomputed), compiles the kernels once up front when numba's cache is cold, then dispatches
tasks a few at a time, claiming each (``taskdir.Claims``) so that concurrent runs on one
directory share the work. A dead worker fails its task (named) and the others go on; SIGINT /
SIGTERM stop dispatching, stop the running tasks, remove their partial files and raise
``Interrupted``; a second signal exits at once.
"""
from __future__ import annotations

import collections
import concurrent.futures as cf
import errno
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field

from . import _fileio, taskdir
from .h5layout import canonical_json
from .sweep import TaskOutcome, build_specs

EXECUTORS = ("local", "inline", "dask", "slurm", "submitit-local")
# worker deaths tolerated in one run before it stops (each fails the task it was running)
MAX_WORKER_DEATHS = 3
POLL = 0.2          # seconds between checks of running tasks (and of the stop flag)


class SweepError(RuntimeError):
    """The sweep cannot go on (lost scheduler, workers that keep dying, ...); finished files stay."""


class SweepIOError(SweepError, OSError):
    """Writing results failed (disk full, permissions, ...): the sweep stops, finished files stay."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the sweep cleanly. ``exit_code`` is 128 + the signal number."""

    def __init__(self, message, signum, report=None):
        super().__init__(message)
        self.signum, self.report = signum, report
        self.exit_code = 128 + int(signum)

    def __str__(self):
        return self.args[0]


# --------------------------------------------------------------------------------------------
# The worker

_STARTED = None          # a queue in pool workers: (key, pid) when a task starts (names dead workers)


def run_task(key: str, params: dict, out_dir: str, threads: int | None = None,
             cancel: threading.Event | None = None) -> TaskOutcome:
    """Train one task and write ``out_dir/<key>.h5``. Never raises for a task's own failure:
    training errors come back as status "failed", write errors as "io_error" (the caller stops)."""
    import numpy
    import physsgd
    host = socket.gethostname()
    if _STARTED is not None:
        try:
            _STARTED.put((key, os.getpid()))
        except Exception:
            pass
    if not os.path.isdir(out_dir):           # a worker on another machine, without the shared disk
        return TaskOutcome(key, "io_error", error=f"the worker on {host} cannot see the output "
                           f"directory {out_dir} (is it on a file system shared with the workers?)",
                           host=host)
    if os.path.exists(taskdir.task_path(out_dir, key)):    # finished meanwhile (another run)
        return TaskOutcome(key, "skipped", host=host)
    t0 = time.perf_counter()
    try:
        teacher, student, algo, data, run = build_specs(params)
        result = physsgd.train(teacher, student, algo, data, threads=threads, **run)
    except Exception as e:     # a bug or an invalid combination only train detects: report, go on
        return TaskOutcome(key, "failed", time.perf_counter() - t0, f"{type(e).__name__}: {e}", host)
    wall = time.perf_counter() - t0
    if cancel is not None and cancel.is_set():
        return TaskOutcome(key, "cancelled", wall, "interrupted", host)
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
        attrs["train_params_json"] = canonical_json(train_params)
    try:
        taskdir.write_task(out_dir, key, result, attrs)
    except _fileio.DiskFullError as e:
        return TaskOutcome(key, "io_error", wall, str(e), host)
    except OSError as e:
        return TaskOutcome(key, "io_error", wall, f"cannot write {taskdir.task_path(out_dir, key)}: "
                           f"{e.strerror or e}", host)
    status = "diverged" if bool(result.diverged.any()) else "done"
    return TaskOutcome(key, status, wall, "", host,
                       extra={"success_rate": float(result.success.mean()),
                              "n_diverged": int(result.diverged.sum())})


def _init_worker(threads, parent_pid=None, started=None):
    global _STARTED
    # the parent decides what an interrupt means (a terminal sends SIGINT to the whole group)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _STARTED = started
    if parent_pid is not None:
        _exit_with_parent(parent_pid)
    # Each worker process gets its share of the cores for its replica threads (physsgd/
    # replicas.py reads numba's thread count)
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
# The report

@dataclass
class RunReport:
    total: int                      # tasks in this (shard of the) sweep
    skipped: int                    # already finished (verified) before this run
    outcomes: list = field(default_factory=list)       # TaskOutcome of every task run here
    removed_temps: list = field(default_factory=list)  # temp files of killed runs removed at start
    wall_time: float = 0.0
    workers: int = 1
    threads: int = 1
    out_dir: str = ""
    executor: str = "local"
    damaged: list = field(default_factory=list)        # taskdir.Damaged moved aside (recomputed)
    legacy: int = 0                 # finished files without a checksum (earlier physsgd), trusted
    elsewhere: dict = field(default_factory=dict)      # key -> holder: left to another live run
    done_elsewhere: list = field(default_factory=list)  # keys another run finished meanwhile
    compile_time: float = 0.0       # seconds spent compiling the kernels before the first task
    interrupted: str | None = None  # "SIGINT" / "SIGTERM" when a signal stopped the run
    stopped_tasks: list = field(default_factory=list)  # keys whose running task a signal stopped
    merged: object = None           # taskdir.MergeReport when sweep.run(merge=...) merged

    def count(self, status) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> list:
        return [o for o in self.outcomes if o.status in ("failed", "io_error")]

    @property
    def ok(self) -> bool:
        return not self.failed and self.interrupted is None

    @property
    def finished(self) -> int:
        """Tasks of this sweep with a finished file now (however they got there)."""
        return (self.skipped + self.count("done") + self.count("diverged") + self.count("skipped")
                + len(self.done_elsewhere))

    @property
    def complete(self) -> bool:
        return self.finished >= self.total

    def summary(self) -> str:
        ran = [o for o in self.outcomes if o.status not in ("skipped", "cancelled")]
        if not ran and not self.elsewhere and not self.done_elsewhere and self.skipped == self.total:
            return f"nothing to do: all {self.total} tasks were already done"
        how = (_plural(self.workers, "worker") + " x " + _plural(self.threads, "thread")
               if self.executor in ("local", "inline")
               else f"executor {self.executor}, {_plural(self.threads, 'thread')} per task")
        if self.compile_time >= 1:
            how += f"; {self.compile_time:.0f}s of it compiling the kernels"
        parts = [f"{len(ran)} tasks run here in {self.wall_time:.1f}s ({how}): "
                 f"{self.count('done')} done, {self.count('diverged')} diverged, "
                 f"{len(self.failed)} failed"]
        others = len(self.done_elsewhere) + self.count("skipped")
        if others:
            parts.append(f"{others} finished by another run meanwhile")
        if self.elsewhere:
            holders = sorted(set(self.elsewhere.values()))
            parts.append(f"{len(self.elsewhere)} still running in another run ({', '.join(holders[:3])})")
        parts.append(f"{self.skipped} were already done")
        if self.damaged:
            parts.append(f"{len(self.damaged)} damaged file(s) moved aside and recomputed")
        return "; ".join(parts)


# --------------------------------------------------------------------------------------------
# Planning

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
    # threads we choose never exceed what numba allows (NUMBA_NUM_THREADS, e.g. 1 on a batch node)
    cap = _numba_max_threads()
    if workers:
        return workers, max(1, min(cap, n_cores // workers))
    if threads:
        return max(1, min(n_tasks, n_cores // threads)), threads
    w = max(1, min(n_tasks, n_cores))
    return w, max(1, min(cap, n_cores // w))


def _numba_max_threads() -> int:
    import numba
    return max(1, int(numba.config.NUMBA_NUM_THREADS))


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
        try:
            os.remove(probe)
        except OSError:
            pass
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise SweepIOError(f"no space left in {out_dir}; free some space and re-run the same "
                               "command to resume") from None
        raise SweepIOError(f"output directory {out_dir} is not writable: {e.strerror or e}") from None
    return taskdir.clean_stale_temps(out_dir)


# --------------------------------------------------------------------------------------------
# Compiling once, up front

def _entry_point(task):
    """The cached numba kernel a task's training calls (None: cannot tell, e.g. another engine)."""
    import importlib
    try:
        train = importlib.import_module("physsgd.train")
        from .algorithms import Greedy
        from .kernels import config as kc, engine
        teacher, student, algo, data, run = build_specs(task.params)
        if run.get("engine", "direct") not in (None, "direct"):
            return None
        code = kc.GREEDY_ALGO if isinstance(algo, Greedy) else kc.SGD_ALGO
        return engine.entry_point(code, train.bit_path(teacher, student, algo, data))
    except Exception:
        return None


def kernel_cache_dir(tasks=()) -> str | None:
    """Where numba caches the training kernels (NUMBA_CACHE_DIR, or __pycache__ next to them)."""
    for t in list(tasks)[:1]:
        try:
            return _entry_point(t)._cache._cache_path
        except Exception:
            pass
    try:
        from .kernels import engine
        return engine.train_sgd._cache._cache_path
    except Exception:
        return None


def _cached(dispatcher) -> bool | None:
    try:
        return bool(dispatcher._cache._cache_file._load_index())
    except Exception:
        return None


def kernels_cached(tasks=()) -> bool | None:
    """Whether numba's cache holds the compiled training kernel of every kind of task in
    ``tasks`` (of the SGD kernel when none is given), for the current source; None: cannot
    tell. A cold cache costs minutes of compilation on the first run."""
    if not tasks:
        try:
            from .kernels import engine
            return _cached(engine.train_sgd)
        except Exception:
            return None
    return not _cold_families(tasks)


def _cold_families(tasks) -> list:
    """One task per kind whose kernel is not in the cache (or whose kernel cannot be told)."""
    return [t for t in _families(tasks) if not _cached(_entry_point(t))]


def _families(tasks) -> list:
    """One task per combination of what selects different compiled code (the kernel entry point
    and the engine)."""
    seen, out = set(), []
    for t in tasks:
        ep = _entry_point(t)
        fam = (getattr(ep, "__name__", None), t.params["run"].get("engine"),
               t.params["algorithm"].get("kind"), t.params["data"].get("kind"))
        if fam not in seen:
            seen.add(fam)
            out.append(t)
    return out


def _warm_up(task):
    """Compile (or load) the kernels once in this process with a 1-step, 1-replica version of a
    task, so that the workers load numba's cache instead of each compiling the same code at
    once (minutes and hundreds of MB each on a cold cache). Failures are left to the task."""
    import physsgd
    try:
        teacher, student, algo, data, run = build_specs(task.params)
        run.update(steps=1, epochs=None, alpha=None, replicas=1, record=2, stop=None)
        for key in ("window", "probe_every", "check_every"):     # relative to the full run's length
            if key in run:
                run[key] = None
        if "init" in run and not isinstance(run["init"], str):    # an array for all the replicas
            run["init"] = "random"
        physsgd.train(teacher, student, algo, data, threads=1, **run)
    except Exception:
        pass


def _compile(reps, stopper, notice) -> float:
    """Warm up one task per kind whose kernel is not cached, in a thread (the main thread keeps
    handling signals), telling the user what is happening; returns the seconds it took."""
    done = threading.Event()

    def work():
        try:
            for t in reps:
                if stopper.stopped:
                    return
                _warm_up(t)
        finally:
            done.set()
    t0 = time.time()
    where = kernel_cache_dir(reps)
    notice(f"compiling the numba kernels (first run only, under a minute per kind of task; "
           f"cached in {where or 'numba cache'}; set NUMBA_CACHE_DIR to choose)",
           kind="compile-start")
    threading.Thread(target=work, name="physsgd-compile", daemon=True).start()
    next_line, last = 30.0, -1
    while not done.wait(POLL):
        if stopper.stopped:
            return time.time() - t0
        elapsed = time.time() - t0
        if int(elapsed) != last:
            last = int(elapsed)
            notice(f"compiling ... {_hms(elapsed)}", kind="compile-tick", elapsed=elapsed,
                   line=elapsed >= next_line)
            if elapsed >= next_line:
                next_line += 30.0
    elapsed = time.time() - t0
    notice(f"kernels compiled in {_hms(elapsed)}", kind="compile-done", elapsed=elapsed)
    return elapsed


# --------------------------------------------------------------------------------------------
# Signals

def _interactive() -> bool:
    return hasattr(sys, "ps1") or "ipykernel" in sys.modules or bool(getattr(sys.flags, "interactive", 0))


def _kill_own_children():
    """SIGKILL this process's children (Linux /proc), except multiprocessing's resource tracker,
    which cleans up after us. A worker killed half-way through being spawned would otherwise
    print a traceback when its parent vanishes."""
    me = os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) != me:
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if b"resource_tracker" in f.read():
                    continue
            os.kill(int(entry), signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass


class _Stopper:
    """SIGINT / SIGTERM handling for one run: the first signal sets ``stopped`` (the dispatch loop
    then stops the running tasks and cleans up); a second one exits at once (in an interactive
    session it raises KeyboardInterrupt instead)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum = None
        self.event = threading.Event()
        self.kill_children = lambda: None
        self._old = {}

    @property
    def stopped(self) -> bool:
        return self.event.is_set()

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                try:
                    self._old[s] = signal.signal(s, self._handle)
                except (ValueError, OSError):
                    pass
        return self

    def __exit__(self, *exc):
        for s, old in self._old.items():
            try:
                signal.signal(s, old)
            except (ValueError, OSError):
                pass
        self._old = {}

    def _handle(self, signum, frame):
        if self.signum is None:
            self.signum = signum
            self.event.set()
            try:
                os.write(2, f"\nphyssgd: {signal.Signals(signum).name}: stopping (finished task "
                            "files are kept; send it again to exit at once)\n".encode())
            except OSError:
                pass
            return
        if _interactive():
            raise KeyboardInterrupt
        try:
            self.kill_children()
            _kill_own_children()       # also a worker caught half-spawned by the signal
        except Exception:
            pass
        try:
            os.write(2, f"physsgd: second {signal.Signals(signum).name}: exiting now; finished task "
                        "files are kept, re-run the same command to resume\n".encode())
        except OSError:
            pass
        os._exit(128 + signum)


# --------------------------------------------------------------------------------------------
# Backends: where tasks run. submit(tasks) -> handles; poll(timeout) -> [(handle, outcome)]
# (outcome None: the task was lost with its worker's pool and is retried); stop(); close().

class _Inline:
    def __init__(self, out_dir, threads):
        self.out_dir, self.threads = out_dir, threads
        self.capacity = 1
        self.running = {}               # handle -> (thread, box, cancel)

    def submit(self, tasks):
        handles = []
        for t in tasks:
            box, cancel = {}, threading.Event()

            def work(t=t, box=box, cancel=cancel):
                try:
                    box["out"] = run_task(t.key, t.params, self.out_dir, self.threads, cancel)
                except BaseException as e:       # run_task reports failures itself; be safe
                    box["out"] = TaskOutcome(t.key, "failed", error=f"{type(e).__name__}: {e}")
            th = threading.Thread(target=work, name=f"physsgd-task-{t.key}", daemon=True)
            th.start()
            self.running[t.key] = (th, box, cancel)
            handles.append(t.key)
        return handles

    def poll(self, timeout):
        out = []
        for h, (th, box, _) in list(self.running.items()):
            th.join(timeout)
            if not th.is_alive():
                del self.running[h]
                out.append((h, box["out"]))
        return out

    def stop(self):
        """The kernel cannot be stopped from outside: the thread is abandoned (it writes nothing
        and dies with the process)."""
        for _, _, cancel in self.running.values():
            cancel.set()
        stopped = list(self.running)
        self.running.clear()
        return stopped, [os.getpid()]

    def close(self):
        pass


def dead_workers(procs: dict, patience: float = 30.0) -> set:
    """The pids of a broken pool's workers that died of their own cause, not of the SIGTERM by
    which the pool stops the others after the break. Waits up to `patience` seconds for every
    worker to exit first: on a loaded machine a SIGKILLed worker can take seconds to be reaped,
    and reading the exit codes before that blamed a bystander the pool had just terminated.
    Only when every worker has exited, each by SIGTERM, is SIGTERM the cause (someone sent it)."""
    deadline = time.monotonic() + patience
    for p in procs.values():
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    codes = {pid: p.exitcode for pid, p in procs.items()}
    dead = {pid for pid, c in codes.items() if c not in (None, 0, -signal.SIGTERM)}
    if dead or any(c is None for c in codes.values()):
        return dead
    return {pid for pid, c in codes.items() if c != 0}


class _Local:
    def __init__(self, out_dir, workers, threads):
        self.out_dir, self.workers, self.threads = out_dir, workers, threads
        self.capacity = workers
        self.ctx = multiprocessing.get_context("spawn")
        _start_resource_tracker_quietly()
        self.started = self.ctx.Queue()
        self.pool = None
        self.procs = {}                 # pid -> Process of the current pool (kept after a break)
        self.running_on = {}            # key -> worker pid
        self.futures = {}               # future -> key
        self.deaths = 0
        self._new_pool()

    def _new_pool(self):
        self.pool = cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=self.ctx,
                                           initializer=_init_worker,
                                           initargs=(self.threads, os.getpid(), self.started))
        self.procs = {}

    def _snapshot(self):
        try:
            self.procs.update(dict(self.pool._processes or {}))
        except (AttributeError, TypeError):
            pass
        while True:
            try:
                key, pid = self.started.get_nowait()
            except Exception:
                break
            self.running_on[key] = pid

    def submit(self, tasks):
        handles = []
        for t in tasks:
            fut = self.pool.submit(run_task, t.key, t.params, self.out_dir, self.threads)
            self.futures[fut] = t.key
            handles.append(fut)
        self._snapshot()
        return handles

    def poll(self, timeout):
        if not self.futures:
            return []
        done, _ = cf.wait(list(self.futures), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        self._snapshot()
        out, lost = [], []
        for fut in done:
            key = self.futures.pop(fut)
            try:
                out.append((fut, fut.result()))
            except cf.process.BrokenProcessPool:
                lost.append((fut, key))
            except Exception as e:
                out.append((fut, TaskOutcome(key, "failed", error=f"{type(e).__name__}: {e}")))
        if lost:
            # a worker died; everything else in flight went down with the pool
            lost += [(fut, self.futures.pop(fut)) for fut in list(self.futures)]
            dead = dead_workers(self.procs)
            self.deaths += 1
            for fut, key in lost:
                out.append((fut, self._lost(key, dead)))
            self._restart()
        return out

    def _lost(self, key, dead):
        """The outcome of a task whose pool broke: failed if its own worker died, else None (an
        innocent bystander, run again)."""
        path = taskdir.task_path(self.out_dir, key)
        if os.path.exists(path) and taskdir.verify_task_file(path)[0] == "ok":
            # it finished, and died while handing back its outcome
            return TaskOutcome(key, taskdir.task_info(path)["status"], error="", host=socket.gethostname())
        pid = self.running_on.get(key)
        if pid is not None and pid in dead:
            code = self.procs[pid].exitcode
            how = (f"killed by {signal.Signals(-code).name}" if code is not None and code < 0
                   else f"exit code {code}")
            hint = ", e.g. by the out-of-memory killer" if code == -signal.SIGKILL else ""
            return TaskOutcome(key, "failed", error=f"its worker process {pid} died ({how}{hint})")
        return None

    def _restart(self):
        taskdir.remove_temps_of(self.out_dir, self.procs)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = None
        if self.deaths > MAX_WORKER_DEATHS:
            raise SweepError(f"worker processes died {self.deaths} times; stopping (finished task "
                             "files are kept; re-run the same command to resume)")
        self._new_pool()

    def kill(self):
        self._snapshot()
        for p in list(self.procs.values()):
            try:
                p.kill()
            except Exception:
                pass

    def stop(self):
        stopped = list(self.futures.values())
        self.kill()
        for p in self.procs.values():
            p.join(timeout=5.0)
        if self.pool is not None:
            manager = getattr(self.pool, "_executor_manager_thread", None)
            self.pool.shutdown(wait=False, cancel_futures=True)
            # let the pool's manager thread finish closing its wakeup pipe now: at interpreter
            # exit, concurrent.futures writes to that pipe unlocked (CPython 3.11), and a close
            # racing with it printed "Bad file descriptor" with a traceback after a full disk
            if manager is not None:
                manager.join(timeout=10.0)
            self.pool = None
        self.futures.clear()
        return stopped, list(self.procs)

    def close(self):
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
        try:
            self.started.close()
        except Exception:
            pass


def _start_resource_tracker_quietly():
    """multiprocessing's resource tracker (a process of its own) warns about "leaked semaphore
    objects" when we exit at once on a second Ctrl-C, then cleans them up anyway: start it with
    that warning filtered (the filter reaches only that module of that process)."""
    try:
        from multiprocessing import resource_tracker
    except ImportError:
        return
    old = os.environ.get("PYTHONWARNINGS")
    quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
    os.environ["PYTHONWARNINGS"] = f"{old},{quiet}" if old else quiet
    try:
        resource_tracker.ensure_running()
    except Exception:
        pass
    finally:
        if old is None:
            del os.environ["PYTHONWARNINGS"]
        else:
            os.environ["PYTHONWARNINGS"] = old


def _probe(path):
    return os.path.exists(path)


class _Dask:
    def __init__(self, out_dir, threads, scheduler, notice):
        try:
            from dask.distributed import Client
        except ImportError:
            raise SweepError("--executor dask needs the optional extra: pip install 'physsgd[cluster]'") from None
        if not scheduler:
            raise ValueError("--executor dask needs --scheduler ADDRESS (tcp://host:8786) or a scheduler JSON file")
        self.out_dir, self.threads, self.scheduler = out_dir, threads, scheduler
        # the client logs every reconnection attempt with a traceback; losing the scheduler is
        # reported here in one line instead
        self._quiet_logs()
        try:       # connect timeout: dask's distributed.comm.timeouts.connect (default 30 s)
            if scheduler.endswith(".json") and os.path.exists(scheduler):
                self.client = Client(scheduler_file=scheduler)   # dask-jobqueue / dask-scheduler
            else:
                self.client = Client(scheduler)
        except Exception as e:
            self._restore_logs()
            raise SweepError(f"cannot connect to the dask scheduler {scheduler}: {_one_line(e)}") from None
        self.futures = {}
        self.since_lost = None
        try:
            self._check_shared_dir(notice)
        except BaseException:
            self.close()
            raise

    def _quiet_logs(self):
        import logging
        names = ["distributed"] + [n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]
        self._levels = {n: logging.getLogger(n).level for n in names}
        for n in names:
            logging.getLogger(n).setLevel(logging.CRITICAL)

    def _restore_logs(self):
        import logging
        for n, level in getattr(self, "_levels", {}).items():
            logging.getLogger(n).setLevel(level)

    @property
    def capacity(self):
        try:
            n = sum(self.client.nthreads().values())
        except Exception:
            n = 0
        return max(2, 2 * n)

    def _check_shared_dir(self, notice):
        """Every worker must see the directory the client writes to (a shared file system)."""
        probe = os.path.join(self.out_dir, f".probe-{uuid.uuid4().hex}")
        with open(probe, "w") as f:
            f.write("physsgd")
        try:
            seen = self.client.run(_probe, probe)
        except Exception as e:
            raise SweepError(f"cannot reach the dask workers: {_one_line(e)}") from None
        finally:
            try:
                os.remove(probe)
            except OSError:
                pass
        if not seen:
            notice("no dask worker is connected yet: cannot check that the workers see "
                   f"{self.out_dir}; tasks will wait for workers", kind="info")
            return
        blind = sorted(w for w, ok in seen.items() if not ok)
        if blind:
            raise SweepError(f"dask worker(s) {', '.join(blind[:3])} cannot see {self.out_dir}: the "
                             "output directory must be on a file system shared by the client and "
                             "every worker")

    def _lost(self, why):
        raise SweepError(f"lost the dask scheduler {self.scheduler} ({why}); finished task files are "
                         "kept; re-run the same command to resume")

    def submit(self, tasks):
        handles = []
        try:
            for t in tasks:
                fut = self.client.submit(run_task, t.key, t.params, self.out_dir, self.threads,
                                         pure=False, key=f"physsgd-{t.key}-{uuid.uuid4().hex[:8]}")
                self.futures[fut] = t.key
                handles.append(fut)
        except Exception as e:
            self._lost(_one_line(e))
        return handles

    def poll(self, timeout):
        status = getattr(self.client, "status", "running")
        if status in ("closed", "closing", "failed"):
            self._lost(f"client {status}")
        if status == "connecting":
            self.since_lost = self.since_lost or time.time()
            if time.time() - self.since_lost > 30:
                self._lost("no connection for 30 s")
        else:
            self.since_lost = None
        time.sleep(timeout)
        out = []
        for fut, key in list(self.futures.items()):
            if not fut.done():
                continue
            del self.futures[fut]
            if fut.status == "cancelled":
                self._lost("its tasks were cancelled")
            try:
                out.append((fut, fut.result(timeout=10)))
            except Exception as e:
                if "Scheduler" in type(e).__name__ or "Comm" in type(e).__name__:
                    self._lost(_one_line(e))
                out.append((fut, TaskOutcome(key, "failed", error=f"{type(e).__name__}: {e}")))
        return out

    def stop(self):
        stopped = list(self.futures.values())
        try:
            self.client.cancel(list(self.futures))
        except Exception:
            pass
        self.futures.clear()
        return stopped, []

    def close(self):
        try:
            self.client.close(timeout=5)
        except Exception:
            pass
        self._restore_logs()


class _Submitit:
    def __init__(self, out_dir, threads, cluster, params):
        try:
            import submitit
        except ImportError:
            raise SweepError("--executor slurm needs the optional extra: pip install 'physsgd[cluster]'") from None
        self.out_dir, self.threads = out_dir, threads
        self.ex = submitit.AutoExecutor(folder=os.path.join(out_dir, ".submitit"), cluster=cluster)
        opts = {"cpus_per_task": threads, "timeout_min": 60}
        opts.update(params or {})
        self.ex.update_parameters(**opts)
        self.capacity = 10 ** 9          # a job array: the scheduler queues
        self.jobs = {}

    def submit(self, tasks):
        if not tasks:
            return []
        n = len(tasks)
        jobs = self.ex.map_array(run_task, [t.key for t in tasks], [t.params for t in tasks],
                                 [self.out_dir] * n, [self.threads] * n)
        for job, t in zip(jobs, tasks):
            self.jobs[job] = t.key
        return jobs

    def poll(self, timeout):
        time.sleep(timeout if len(self.jobs) else 0)
        out = []
        for job, key in list(self.jobs.items()):
            if job.done():
                del self.jobs[job]
                try:
                    outcome = job.result()
                except Exception as e:       # the job itself died (time limit, node failure)
                    outcome = TaskOutcome(key, "failed", 0.0, f"job {job.job_id}: {_one_line(e)}")
                out.append((job, outcome))
        return out

    def stop(self):
        stopped = list(self.jobs.values())
        for job in self.jobs:
            try:
                job.cancel(check=False)
            except Exception:
                pass
        self.jobs.clear()
        return stopped, []

    def close(self):
        pass


def _one_line(e) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


# --------------------------------------------------------------------------------------------
# Orchestration

def _silent(msg, **info):
    pass


def run_tasks(tasks: list, out_dir: str, *, executor: str = "local", workers: int | None = None,
              threads: int | None = None, scheduler: str | None = None, slurm: dict | None = None,
              progress=None, notice=None) -> RunReport:
    """Run the tasks of ``tasks`` that have no verified file in ``out_dir``; returns a RunReport.

    ``progress(task, outcome, report)`` is called after every task run here (``progress.start()``,
    if it exists, once the kernels are compiled). ``notice(message, kind=..., **info)`` receives
    status messages (compilation, damaged files, ...). A failed task does not raise (see
    ``report.failed``). Raises SweepIOError when a result cannot be written (the remaining tasks
    are cancelled), SweepError when the executor fails (lost scheduler, dying workers) and
    Interrupted on SIGINT / SIGTERM; finished files are intact in every case.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor={executor!r} is not allowed; choose one of {', '.join(EXECUTORS)}")
    notice = notice or _silent
    out_dir = os.path.abspath(os.fspath(out_dir))     # workers elsewhere need no working directory
    t0 = time.time()
    removed = prepare_dir(out_dir)
    found = taskdir.scan(out_dir, quarantine=True)
    for d in found.damaged:
        notice(f"damaged task file {d.path}: {d.reason}; "
               + (f"moved to {d.moved_to}, " if d.moved_to else "") + "it will be recomputed",
               kind="damaged")
    finished = found.finished
    todo = [t for t in tasks if t.key not in finished]
    report = RunReport(total=len(tasks), skipped=len(tasks) - len(todo), removed_temps=removed,
                       out_dir=out_dir, executor=executor, damaged=found.damaged,
                       legacy=sum(t.key in found.legacy for t in tasks))
    if executor in ("dask", "slurm", "submitit-local"):
        workers, threads = workers or 0, threads or 1
    else:
        workers, threads = plan_workers(len(todo), workers, threads)
        if workers == 1:
            executor = "inline"
    report.workers, report.threads, report.executor = workers, threads, executor
    by_key = {t.key: t for t in todo}
    how = (_plural(workers, "worker") + " x " + _plural(threads, "thread")
           if executor in ("local", "inline") else f"executor {executor}")
    notice(f"{report.skipped} already done, {len(todo)} to run ({how}) -> {out_dir}", kind="plan",
           total=len(tasks), skipped=report.skipped, todo=len(todo))

    with _Stopper() as stopper:
        cold = _cold_families(todo) if todo and executor in ("local", "inline") else []
        if cold:
            report.compile_time = _compile(cold, stopper, notice)
        if hasattr(progress, "start"):
            progress.start()
        backend = None
        try:
            if todo and not stopper.stopped:
                if executor == "inline":
                    backend = _Inline(out_dir, threads)
                elif executor == "local":
                    backend = _Local(out_dir, workers, threads)
                    stopper.kill_children = backend.kill
                elif executor == "dask":
                    backend = _Dask(out_dir, threads, scheduler, notice)
                else:
                    backend = _Submitit(out_dir, threads, "slurm" if executor == "slurm" else "local", slurm)
                _dispatch(backend, todo, by_key, out_dir, report, progress, stopper)
        finally:
            if backend is not None:
                backend.close()
        report.wall_time = time.time() - t0
        if stopper.stopped:
            report.interrupted = stopper.name
            kept = len(taskdir.task_files(out_dir))
            running = report.stopped_tasks
            what = (f"stopped {len(running)} running task(s) and removed their partial files"
                    if running else "no task was running")
            if executor == "dask" and running:
                what = (f"cancelled {len(running)} task(s) on the dask cluster (one already running "
                        "on a worker finishes and keeps its file)")
            raise Interrupted(f"interrupted by {stopper.name}: {what}; {kept} finished task files in "
                              f"{out_dir} are kept; re-run the same command to resume",
                              stopper.signum, report)
    io = [o for o in report.outcomes if o.status == "io_error"]
    if io:
        fix = "free some space" if io[0].error.startswith("no space left") else "fix the problem"
        raise SweepIOError(f"{io[0].error}; stopped. {report.finished} finished task files in "
                           f"{out_dir} are intact; {fix} and re-run the same command to resume")
    return report


def _dispatch(backend, todo, by_key, out_dir, report, progress, stopper):
    """Claim and submit tasks as capacity frees up; collect outcomes; stop on an I/O error or a
    signal. Tasks a live concurrent run holds are left to it (checked again at the end)."""
    queue = collections.deque(todo)
    held = {}                        # key -> holder
    inflight = {}                    # handle -> key
    rechecked = False
    fatal = False
    with taskdir.Claims(out_dir) as claims:
        try:
            while True:
                if stopper.stopped or fatal:
                    break
                batch = []
                while queue and len(inflight) + len(batch) < backend.capacity:
                    t = queue.popleft()
                    if os.path.exists(taskdir.task_path(out_dir, t.key)):
                        report.done_elsewhere.append(t.key)
                        continue
                    ok, holder = claims.acquire(t.key)
                    if not ok:
                        held[t.key] = holder
                        continue
                    batch.append(t)
                if batch:
                    for h, t in zip(backend.submit(batch), batch):
                        inflight[h] = t.key
                if not inflight:
                    if held and not rechecked:       # other runs may have finished or died
                        rechecked = True
                        queue.extend(by_key[k] for k in list(held))
                        held.clear()
                        continue
                    break
                for h, outcome in backend.poll(POLL):
                    key = inflight.pop(h)
                    if outcome is None:              # lost with a broken pool: run it again
                        claims.release(key)
                        queue.appendleft(by_key[key])
                        continue
                    claims.release(key)
                    report.outcomes.append(outcome)
                    if progress:
                        progress(by_key[key], outcome, report)
                    if outcome.status == "io_error":
                        fatal = True
            if stopper.stopped or fatal:
                stopped, pids = backend.stop()
                report.stopped_tasks = stopped if stopper.stopped else []
                taskdir.remove_temps_of(out_dir, pids)
                for k in stopped:
                    claims.release(k)
        except BaseException:
            try:
                stopped, pids = backend.stop()
                taskdir.remove_temps_of(out_dir, pids)
            except Exception:
                pass
            raise
    for key, holder in held.items():
        if os.path.exists(taskdir.task_path(out_dir, key)):
            report.done_elsewhere.append(key)
        else:
            report.elsewhere[key] = holder


# --------------------------------------------------------------------------------------------
# Progress: a tqdm bar on a terminal, one plain line per task otherwise (batch-job logs), or nothing

class Progress:
    """The default progress display: ``progress(task, outcome, report)`` after each task; ETA from
    the tasks run since ``start()`` (called once the kernels are compiled, so compilation does
    not inflate it); ``notice(message, kind=...)`` for status lines."""

    def __init__(self, total: int, already: int = 0, quiet: bool = False, stream=None):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.total, self.n, self.already = total, already, already
        self.t0 = time.time()
        self.bar = None
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._ticking = False

    def start(self):
        self.t0 = time.time()
        self.n0 = self.n
        if not self.quiet and self.tty and self.bar is None:
            from tqdm import tqdm
            self.bar = tqdm(total=self.total, initial=self.n, unit="task", file=self.stream,
                            dynamic_ncols=True, smoothing=0.1)

    def notice(self, message, kind="info", line=True, **info):
        if self.quiet and kind not in ("damaged",):
            return
        if kind == "compile-tick":
            if self.tty:
                print(f"\r{message}", end="", file=self.stream, flush=True)
                self._ticking = True
            elif line:
                print(message, file=self.stream, flush=True)
            return
        if self._ticking:
            print("", file=self.stream)
            self._ticking = False
        if self.bar is not None:
            self.bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def __call__(self, task, outcome, report):
        # tasks finished here, failed here, or finished meanwhile by a concurrent run
        self.n = max(self.n + 1, report.finished + len(report.failed)) if report is not None else self.n + 1
        if self.bar is not None:
            self.bar.update(self.n - self.bar.n)
            if outcome.status in ("failed", "io_error", "diverged"):
                self.bar.write(f"{outcome.status}: {task.label()}  {outcome.error}".rstrip())
            return
        if self.quiet and outcome.status not in ("failed", "io_error"):
            return
        elapsed = time.time() - self.t0
        ran = self.n - getattr(self, "n0", self.already)
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
            self.bar = None


def _plural(n, word) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"
