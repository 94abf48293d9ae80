"""Reading results back, and one place for the storage names other code uses.

The storage is two modules: ``physsgd.h5layout`` (one result as an HDF5 group: datasets,
attributes, checksum, the ``/index`` table) and ``physsgd.taskdir`` (a sweep's directory of task
files: atomic verified writes, claims, temp files, damaged files, merge). This module adds
``load`` / ``read_result``, which build ``TrainResult`` objects, and re-exports the names that
scripts written against earlier versions use (``store.task_files``, ``store.merge``, ...).
"""
from __future__ import annotations

import json
import os
import warnings

import h5py

from . import h5layout, taskdir  # noqa: F401  (physsgd.store.taskdir, .h5layout: the two halves)
from .h5layout import (CHECKSUM_ATTR, COMPLETE_ATTR, canonical_json, flatten, group_info,  # noqa: F401
                       index_table, verify, write_result)
from .result import TrainResult
from .taskdir import (KEY_RE, STALE_FOREIGN_TMP, TMP_RE, Damaged, EmptyInputError,  # noqa: F401
                      MergeReport, clean_stale_temps, merge, read_index, scan, task_files,
                      task_info, task_path, temp_files, verify_task_file, write_task)


class DamagedFileError(ValueError):
    """A result file (or group) failed verification; the message names it and says why."""


class UnverifiedWarning(UserWarning):
    """Results read from files written without a checksum (by an earlier physsgd)."""


def read_result(group) -> TrainResult:
    """The TrainResult stored in an open h5py group (no verification: see ``load``)."""
    names = TrainResult.ARRAYS + TrainResult.OPTIONAL_ARRAYS
    arrays = {name: group[name][()] for name in names if name in group}
    params = json.loads(h5layout.text(group.attrs.get("params_json", "{}")))
    return TrainResult(**arrays, params=params, wall_time=float(group.attrs.get("wall_time", 0.0)))


def load(path):
    """Read results, verifying each one.

    A task file gives a TrainResult (a damaged one raises DamagedFileError naming it and why).
    A merged file or a sweep directory gives {key: TrainResult}; damaged entries are left out
    with a warning naming each (files are never moved or changed here: ``physsgd run`` /
    ``merge`` / ``status`` move damaged task files aside). Files written by an earlier physsgd
    without a checksum are read with an UnverifiedWarning.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        out, damaged, legacy = {}, [], []
        for key, p in task_files(path).items():
            state, reason = verify_task_file(p)
            if state == h5layout.DAMAGED:
                damaged.append(f"{p} ({reason})")
                continue
            if state == h5layout.LEGACY:
                legacy.append(p)
            with h5py.File(p, "r") as f:
                out[key] = read_result(f)
        _warn(damaged, legacy)
        return out
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file or directory")
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError):
        raise DamagedFileError(f"{path}: damaged result file: {verify_task_file(path)[1]}") from None
    with f:
        if "tasks" in f:
            out, damaged, legacy = {}, [], []
            for key in sorted(f["tasks"]):
                state, reason = verify(f["tasks"][key])
                if state == h5layout.DAMAGED:
                    damaged.append(f"{path}:/tasks/{key} ({reason})")
                    continue
                if state == h5layout.LEGACY:
                    legacy.append(f"{path}:/tasks/{key}")
                out[key] = read_result(f["tasks"][key])
            _warn(damaged, legacy)
            return out
        state, reason = verify_task_file(path)
        if state == h5layout.DAMAGED:
            raise DamagedFileError(f"{path}: damaged result file: {reason}")
        if state == h5layout.LEGACY:
            _warn([], [path])
        return read_result(f)


def _warn(damaged, legacy):
    if damaged:
        warnings.warn(f"skipped {len(damaged)} damaged result(s): " + "; ".join(damaged[:5])
                      + (" ..." if len(damaged) > 5 else ""), stacklevel=3)
    if legacy:
        warnings.warn(f"{len(legacy)} result(s) written by an earlier physsgd have no checksum and "
                      f"cannot be verified, e.g. {legacy[0]}", UnverifiedWarning, stacklevel=3)
