"""HDF5 layout of physsgd results (readable with h5py alone), and the sweep directory.

One result (one task) is a group -- the root of a task file, or ``/tasks/<key>`` of a merged file:

    attrs   params_json   canonical JSON of every parameter needed to rerun the task
            status        "done" | "diverged" (some replica diverged)
            physsgd_version, numpy_version, numba_version, host, threads, wall_time, seed
            plus each scalar parameter as its own attribute (flattened: "teacher.N", "algorithm.lr", ...)
    datasets  time (T,), steps (T,), eps_g (R,T), train_error (R,T), R (R,T,K,M), Q (R,T,K,K),
              T (R,M,M), weight_change (R,T), weight_norm (R,T), diverged (R,), success (R,),
              stopped_at (R,)

A sweep directory holds one such file per finished task, ``<key>.h5``, where ``key`` is the first
16 hex digits of the sha256 of the task's canonical ``params_json`` (see ``physsgd.sweep``). Files
appear only complete: they are written as ``.<key>.<host>.<pid>.tmp`` and renamed with
``os.replace``. A merged file (``physsgd merge``) holds ``/tasks/<key>`` groups (same layout as a
task file) and ``/index``, a structured table with one row per task: ``key``, ``status``, the
flattened parameters (``teacher.N``, ``algorithm.lr``, ``run.seed``, ...; missing values NaN / -1 /
empty) and summary columns ``replicas``, ``success_rate``, ``n_diverged``, ``wall_time``.
"""
from __future__ import annotations

import glob
import json
import os
import re
import socket
import time
import warnings
from contextlib import contextmanager

import h5py
import numpy as np

from .result import TrainResult


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def canonical_json(params: dict) -> str:
    return json.dumps(params, sort_keys=True, default=_json_default, separators=(",", ":"))


def flatten(params: dict, prefix: str = "") -> dict:
    """{"teacher": {"N": 10}} -> {"teacher.N": 10}; keeps scalars and strings only."""
    flat = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        elif value is None or isinstance(value, (bool, int, float, str, np.generic)):
            flat[name] = value
    return flat


def write_result(path_or_group, result: TrainResult, attrs: dict | None = None) -> None:
    """Write ``result`` into an open h5py group, or into a new file at a path."""
    if isinstance(path_or_group, (str, os.PathLike)):
        with h5py.File(path_or_group, "w") as f:
            write_result(f, result, attrs)
        return
    g = path_or_group
    for name in TrainResult.ARRAYS + TrainResult.OPTIONAL_ARRAYS:
        if getattr(result, name) is not None:
            g.create_dataset(name, data=np.asarray(getattr(result, name)))
    g.attrs["params_json"] = canonical_json(result.params)
    g.attrs["wall_time"] = float(result.wall_time)
    g.attrs["status"] = "diverged" if np.any(result.diverged) else "done"
    for key, value in flatten(result.params).items():
        if value is not None:
            g.attrs[key] = value
    for key, value in (attrs or {}).items():
        g.attrs[key] = value


def read_result(group) -> TrainResult:
    arrays = {name: group[name][()] for name in TrainResult.ARRAYS + TrainResult.OPTIONAL_ARRAYS
              if name in group}
    params = json.loads(group.attrs.get("params_json", "{}"))
    return TrainResult(**arrays, params=params, wall_time=float(group.attrs.get("wall_time", 0.0)))


def load(path):
    """Read a task file (-> TrainResult), a merged file or a sweep directory (-> dict key -> TrainResult)."""
    if os.path.isdir(path):
        return {key: load(p) for key, p in task_files(path).items()}
    with h5py.File(path, "r") as f:
        if "tasks" in f:
            return {key: read_result(f["tasks"][key]) for key in sorted(f["tasks"])}
        return read_result(f)


# --------------------------------------------------------------------------------------------
# Sweep directories: one file per finished task, written atomically.

KEY_RE = re.compile(r"^[0-9a-f]{16}$")
TMP_RE = re.compile(r"^\.(?P<key>[0-9a-f]{16})\.(?P<host>.+)\.(?P<pid>\d+)\.tmp$")
# A temp file lives only for the seconds it takes to write a finished task; one from another
# host (whose PID we cannot check) older than this is certainly abandoned.
STALE_FOREIGN_TMP = 3600.0


def task_path(out_dir, key: str) -> str:
    return os.path.join(out_dir, f"{key}.h5")


def task_files(out_dir) -> dict:
    """key -> path of every finished task file in ``out_dir`` (sorted by key)."""
    out = {}
    for p in sorted(glob.glob(os.path.join(glob.escape(str(out_dir)), "*.h5"))):
        key = os.path.basename(p)[:-3]
        if KEY_RE.match(key):
            out[key] = p
    return out


def write_task(out_dir, key: str, result: TrainResult, attrs: dict) -> str:
    """Write one finished task as ``out_dir/<key>.h5``, atomically.

    The temp name carries host and PID so that concurrent shards (and a later cleanup) can tell
    whose it is; the file is flushed to disk before the rename so that a crash leaves either the
    complete file or none.
    """
    tmp = os.path.join(out_dir, f".{key}.{socket.gethostname()}.{os.getpid()}.tmp")
    final = task_path(out_dir, key)
    with _atomic_h5(final, tmp) as f:
        write_result(f, result, attrs=attrs)
    return final


@contextmanager
def _atomic_h5(final: str, tmp: str):
    """Write an HDF5 file under ``tmp``; when the block succeeds, flush it to disk and rename it
    to ``final`` (a crash leaves either the complete file or none); on any error remove it."""
    try:
        with h5py.File(tmp, "w") as f:
            yield f
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # exists, owned by someone else
        return True
    # a killed writer whose parent died too may linger as a zombie (a container's PID 1 need not
    # reap orphans); it writes nothing more, so its temp file is stale
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def clean_stale_temps(out_dir) -> list:
    """Remove temp files left by killed writers: same host and dead PID, or another host's and old.

    Live writers' temp files (other shards writing right now) are left alone.
    """
    removed = []
    host = socket.gethostname()
    try:
        names = os.listdir(out_dir)
    except FileNotFoundError:
        return removed
    for name in names:
        m = TMP_RE.match(name)
        if not m:
            continue
        path = os.path.join(out_dir, name)
        if m["host"] == host:
            stale = not _pid_alive(int(m["pid"]))
        else:
            try:
                stale = time.time() - os.path.getmtime(path) > STALE_FOREIGN_TMP
            except OSError:
                continue
        if stale:
            try:
                os.remove(path)
                removed.append(path)
            except FileNotFoundError:
                pass
    return removed


def temp_files(out_dir) -> list:
    try:
        return sorted(n for n in os.listdir(out_dir) if TMP_RE.match(n))
    except FileNotFoundError:
        return []


def task_info(path) -> dict:
    """Attributes of a task file without reading its arrays: key, status, params, summary."""
    with h5py.File(path, "r") as f:
        return _group_info(f)


def _group_info(g) -> dict:
    success = g["success"][()] if "success" in g else np.zeros(0, bool)
    diverged = g["diverged"][()] if "diverged" in g else np.zeros(0, bool)
    status = g.attrs.get("status", "")
    return {
        "status": status.decode() if isinstance(status, bytes) else str(status),
        "params": json.loads(g.attrs.get("params_json", "{}")),
        "replicas": int(len(success)),
        "success_rate": float(np.mean(success)) if len(success) else float("nan"),
        "n_diverged": int(np.sum(diverged)),
        "wall_time": float(g.attrs.get("wall_time", float("nan"))),
    }


def merge(sources, out_path) -> int:
    """Merge task files (from sweep directories, task files or merged files) into one file.

    Output: ``/tasks/<key>`` groups (a byte-for-byte copy of each task's datasets and attributes)
    and ``/index`` (see the module docstring). Written under a temp name and renamed. A key met
    twice (re-runs, overlapping inputs) is taken once. Returns the number of tasks.
    """
    groups = {}          # key -> (file path, group path), first seen wins
    for src in sources:
        if os.path.isdir(src):
            for key, p in task_files(src).items():
                groups.setdefault(key, (p, "/"))
        else:
            with h5py.File(src, "r") as f:
                if "tasks" in f:
                    for key in f["tasks"]:
                        groups.setdefault(key, (src, f"/tasks/{key}"))
                else:
                    key = os.path.basename(src)[:-3] if src.endswith(".h5") else src
                    groups.setdefault(key, (src, "/"))
    out_dir = os.path.dirname(os.path.abspath(out_path))
    tmp = os.path.join(out_dir, f".{os.path.basename(out_path)}.{socket.gethostname()}.{os.getpid()}.tmp")
    infos = {}
    with _atomic_h5(out_path, tmp) as out:
        tasks = out.create_group("tasks")
        for key in sorted(groups):
            path, gpath = groups[key]
            with h5py.File(path, "r") as f:
                src = f[gpath]
                dst = tasks.create_group(key)
                for name in src:
                    src.copy(src[name], dst, name=name)
                for a, val in src.attrs.items():
                    dst.attrs[a] = val
                infos[key] = _group_info(src)
        out.create_dataset("index", data=index_table(infos))
        # task keys hash the parameters, not the code: a sweep resumed across a kernel change
        # mixes results of two simulators, which is worth a loud warning
        digests = sorted({str(_attr(tasks[k], "kernels_sha256")) for k in infos} - {"None"})
        if len(digests) > 1:
            warnings.warn(f"merging tasks simulated by {len(digests)} different kernel versions "
                          f"(attribute kernels_sha256); re-run into a fresh directory for "
                          f"results from one code version", stacklevel=2)
            out.attrs["mixed_kernel_versions"] = True
        from ._version import __version__
        out.attrs["physsgd_version"] = __version__
        out.attrs["n_tasks"] = len(infos)
        out.attrs["layout"] = "physsgd merged results: /tasks/<key> task groups + /index table"
    return len(infos)


def index_table(infos: dict) -> np.ndarray:
    """One row per task: key, status, flattened params, summary columns (a numpy structured array)."""
    keys = sorted(infos)
    rows = [{"key": k, "status": infos[k]["status"], **flatten(infos[k]["params"]),
             "replicas": infos[k]["replicas"], "success_rate": infos[k]["success_rate"],
             "n_diverged": infos[k]["n_diverged"], "wall_time": infos[k]["wall_time"]} for k in keys]
    columns = []
    for row in rows:
        for c in row:
            if c not in columns:
                columns.append(c)
    dtype, cols = [], {}
    for c in columns:
        vals = [row.get(c) for row in rows]
        present = [x for x in vals if x is not None]
        if present and all(isinstance(x, (bool, np.bool_)) for x in present) and len(present) == len(vals):
            dt, fill = np.bool_, False
        elif present and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in present) \
                and len(present) == len(vals):
            dt, fill = np.int64, -1
        elif present and all(isinstance(x, (int, float, np.number)) and not isinstance(x, bool) for x in present):
            dt, fill = np.float64, np.nan
        else:   # strings, mixed or all-missing columns: fixed-length ASCII, readable everywhere
            strs = ["" if x is None else (x if isinstance(x, str) else json.dumps(x)) for x in vals]
            width = max([1] + [len(s.encode()) for s in strs])
            dt, vals, fill = f"S{width}", [s.encode() for s in strs], b""
        dtype.append((c, dt))
        cols[c] = [fill if x is None else x for x in vals]
    table = np.zeros(len(rows), dtype=dtype)
    for c in columns:
        table[c] = cols[c]
    return table


def read_index(path) -> np.ndarray:
    """The ``/index`` table of a merged file, string columns decoded to str (numpy structured array)."""
    with h5py.File(path, "r") as f:
        return f["index"][()]


def _attr(group, name):
    value = group.attrs.get(name)
    return value.decode() if isinstance(value, bytes) else value
