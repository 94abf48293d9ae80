"""The HDF5 layout of one physsgd result, readable and verifiable with h5py alone.

One result (one task) is a group: the root of a task file, or ``/tasks/<key>`` of a merged file.

    attrs     params_json   canonical JSON of every parameter needed to rerun the task
              status        "done" | "diverged" (some replica diverged)
              wall_time, and (sweep task files) key, seed, physsgd_version, numpy_version,
              numba_version, kernels_sha256, host, pid, threads, finished_at
              each scalar parameter flattened as its own attribute ("teacher.N", "algorithm.lr", ...)
              sha256        checksum of the datasets and params_json (see ``checksum``), then
              complete      1, the completion marker; both are written last
    datasets  time (T,), steps (T,), eps_g (R,T), train_error (R,T), R (R,T,K,M), Q (R,T,K,K),
              T (R,M,M), weight_change (R,T), weight_norm (R,T), diverged (R,), success (R,),
              stopped_at (R,), and the optional final weights / receptive fields

``checksum(group)``: sha256 over the group's datasets in sorted name order, each contributing
``name NUL dtype NUL shape NUL`` (dtype as numpy's little-endian ``dtype.str``, e.g. ``<f8``,
``|b1``; shape as comma-separated integers) followed by its C-order little-endian bytes, then
``params_json NUL`` and the UTF-8 bytes of the ``params_json`` attribute (empty if absent, as on
the root of a merged file, whose only dataset is ``/index``). A group without
``complete`` was written before physsgd checked its files ("legacy"): readable, not verifiable.

This module imports nothing else from physsgd but ``_fileio`` (``TrainResult`` writes itself
through it, ``physsgd.store`` reads results back), so no import circle is possible.
"""
from __future__ import annotations

import hashlib
import io
import json
import os

import h5py
import numpy as np

from . import _fileio

CHECKSUM_ATTR, COMPLETE_ATTR = "sha256", "complete"
# the datasets every result has had since the first release (the sanity check of legacy files)
CORE_DATASETS = ("time", "steps", "eps_g", "train_error", "R", "Q", "T", "weight_change",
                 "weight_norm", "diverged", "success", "stopped_at")

OK, LEGACY, DAMAGED = "ok", "legacy", "damaged"


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


def text(value) -> str:
    """An attribute or index cell as str (h5py gives bytes for fixed-length strings)."""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", "replace")
    return str(value)


# --------------------------------------------------------------------------------------------
# Writing

def write_result(group, result, attrs: dict | None = None) -> None:
    """Write ``result`` (a TrainResult: any object with ARRAYS / OPTIONAL_ARRAYS names, params and
    wall_time) into an open h5py group, then seal it (checksum and completion marker last).
    Given a path instead of a group, write a new file there atomically (nothing is left at the
    path if writing fails, e.g. on a full disk)."""
    if isinstance(group, (str, os.PathLike)):
        path = os.fspath(group)
        tmp = os.path.join(os.path.dirname(os.path.abspath(path)),
                           f".{os.path.basename(path)}.{os.getpid()}.tmp")
        _fileio.write_atomic(path, result_image(result, attrs), tmp, verify=_verify_file,
                             what=os.path.basename(path))
        return
    names = tuple(getattr(result, "ARRAYS", CORE_DATASETS)) + tuple(getattr(result, "OPTIONAL_ARRAYS", ()))
    for name in names:
        value = getattr(result, name, None)
        if value is not None:
            group.create_dataset(name, data=np.asarray(value))
    group.attrs["params_json"] = canonical_json(result.params)
    group.attrs["wall_time"] = float(result.wall_time)
    group.attrs["status"] = "diverged" if np.any(result.diverged) else "done"
    for key, value in flatten(result.params).items():
        if value is not None:
            group.attrs[key] = value
    for key, value in (attrs or {}).items():
        if key not in (CHECKSUM_ATTR, COMPLETE_ATTR):
            group.attrs[key] = value
    seal(group)


def seal(group) -> None:
    """Write the checksum of the group's datasets, then the completion marker."""
    group.attrs[CHECKSUM_ATTR] = checksum(group)
    group.attrs[COMPLETE_ATTR] = 1


def image(fill) -> bytes:
    """The bytes of a new HDF5 file built in memory by ``fill(file)`` (HDF5 touches no disk)."""
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        fill(f)
    return buf.getvalue()


def result_image(result, attrs: dict | None = None) -> bytes:
    return image(lambda f: write_result(f, result, attrs))


# --------------------------------------------------------------------------------------------
# Verifying

def checksum(group) -> str:
    """sha256 of the group's datasets and params_json (the recipe is in the module docstring)."""
    h = hashlib.sha256()
    for name in sorted(group):
        obj = group[name]
        if not isinstance(obj, h5py.Dataset):
            continue
        a = np.asarray(obj[()])
        if a.dtype.kind in "biufc" and a.dtype.byteorder not in ("|", "<"):
            a = a.astype(a.dtype.newbyteorder("<"))
        a = np.ascontiguousarray(a)
        h.update(f"{name}\0{a.dtype.str}\0{','.join(map(str, a.shape))}\0".encode())
        h.update(a.tobytes())
    h.update(b"params_json\0" + text(group.attrs.get("params_json", "")).encode())
    return h.hexdigest()


def verify(group) -> tuple:
    """(state, reason): ("ok", ""), ("legacy", why it cannot be verified) or ("damaged", why)."""
    try:
        if COMPLETE_ATTR not in group.attrs:
            missing = [n for n in ("eps_g", "success", "diverged") if n not in group]
            if missing:
                return DAMAGED, f"incomplete: no completion marker and no {', '.join(missing)}"
            lengths = {n: group[n].shape[0] for n in ("eps_g", "success", "diverged")
                       if group[n].ndim >= 1}
            if len(set(lengths.values())) != 1:
                return DAMAGED, f"inconsistent replica counts {lengths}"
            for n in CORE_DATASETS:
                if n in group:
                    group[n][()]
            json.loads(text(group.attrs.get("params_json", "{}")))
            return LEGACY, "written by an earlier physsgd without a checksum; cannot be verified"
        stored = text(group.attrs.get(CHECKSUM_ATTR, ""))
        if not stored:
            return DAMAGED, "completion marker without a checksum"
        actual = checksum(group)
        if actual != stored:
            return DAMAGED, "checksum mismatch: the data changed after the file was written"
        json.loads(text(group.attrs.get("params_json", "{}")))
        return OK, ""
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
        return DAMAGED, f"unreadable: {type(e).__name__}: {e}"


def _verify_file(path):
    with h5py.File(path, "r") as f:
        state, reason = verify(f)
    if state != OK:
        raise OSError(f"{path}: the file read back differs from what was written ({reason})")


def group_info(g) -> dict:
    """Status, parameters and the summary columns of a result group (without its big arrays)."""
    success = g["success"][()] if "success" in g else np.zeros(0, bool)
    diverged = g["diverged"][()] if "diverged" in g else np.zeros(0, bool)
    return {
        "status": text(g.attrs.get("status", "")),
        "params": json.loads(text(g.attrs.get("params_json", "{}"))),
        "replicas": int(len(success)),
        "success_rate": float(np.mean(success)) if len(success) else float("nan"),
        "n_diverged": int(np.sum(diverged)),
        "wall_time": float(g.attrs.get("wall_time", float("nan"))),
    }


# --------------------------------------------------------------------------------------------
# The /index table of merged files

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
        else:   # strings, mixed or all-missing columns: fixed-length UTF-8, readable everywhere
            strs = ["" if x is None else (x if isinstance(x, str) else json.dumps(x)) for x in vals]
            width = max([1] + [len(s.encode()) for s in strs])
            dt, vals, fill = f"S{width}", [s.encode() for s in strs], b""
        dtype.append((c, dt))
        cols[c] = [fill if x is None else x for x in vals]
    table = np.zeros(len(rows), dtype=dtype)
    for c in columns:
        table[c] = cols[c]
    return table


def decode_index(table: np.ndarray) -> np.ndarray:
    """The index with its byte-string columns as str columns (same names, same order)."""
    if table.dtype.names is None:
        return table
    fields = [(n, f"U{max(1, table.dtype[n].itemsize)}" if table.dtype[n].kind == "S" else table.dtype[n])
              for n in table.dtype.names]
    out = np.empty(table.shape, dtype=fields)
    for n in table.dtype.names:
        col = table[n]
        out[n] = np.char.decode(col, "utf-8") if col.dtype.kind == "S" else col
    return out
