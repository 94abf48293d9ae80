"""HDF5 layout of physsgd results (readable with h5py alone).

One result (one task) is a group -- the root of a task file, or ``/tasks/<key>`` of a merged file:

    attrs   params_json   canonical JSON of every parameter needed to rerun the task
            status        "done" | "diverged" (some replica diverged)
            physsgd_version, numpy_version, numba_version, host, threads, wall_time, seed
            plus each scalar parameter as its own attribute (flattened: "teacher.N", "algo.lr", ...)
    datasets  time (T,), steps (T,), eps_g (R,T), train_error (R,T), R (R,T,K,M), Q (R,T,K,K),
              T (R,M,M), weight_change (R,T), weight_norm (R,T), diverged (R,), success (R,),
              stopped_at (R,)
"""
from __future__ import annotations

import json
import os

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
    for name in TrainResult.ARRAYS:
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
    arrays = {name: group[name][()] for name in TrainResult.ARRAYS}
    params = json.loads(group.attrs.get("params_json", "{}"))
    return TrainResult(**arrays, params=params, wall_time=float(group.attrs.get("wall_time", 0.0)))


def load(path):
    """Read a task file (-> TrainResult) or a merged file (-> dict key -> TrainResult)."""
    with h5py.File(path, "r") as f:
        if "tasks" in f:
            return {key: read_result(f["tasks"][key]) for key in f["tasks"]}
        return read_result(f)
