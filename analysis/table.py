"""A light column store for result tables, HDF5 loading and per-group aggregation.

``load`` turns physsgd results (a task file, a merged file, or a directory of task files) into a
``Table`` with one row per (task, replica): the task's parameters and the replica's final
observables. It reads HDF5 with h5py alone (the layout is documented in ``physsgd/store.py``), so
the analysis never needs the simulator. Users' own data enter through ``Table.from_arrays``.
"""
from __future__ import annotations

import csv
import glob
import json
import math
import os
import warnings
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ._verify import verify_group
from ._validate import validated

__all__ = ["Table", "load", "aggregate", "wilson_interval", "OBSERVABLES", "STATIONARY"]

# Final observables per replica, as in physsgd.result.TrainResult.final().
OBSERVABLES = ("eps_g", "train_error", "overlap", "weight_change", "weight_norm", "success",
               "diverged", "stopped_at")
# Stationary observables per replica (physsgd >= 0.2; absent from older files): the fraction of
# the window's steps on the teacher, first passage / first exit (-1: never, censored at the run's
# end), window means; and the window itself (steps, both ends inclusive).
STATIONARY = ("time_at_teacher", "first_passage", "first_exit", "window_overlap", "window_eps_g")
# Per-record measurements whose final value becomes a column when the run asked for them.
_MEASURES = ("grad_noise", "sharpness")
_BOOL_OBSERVABLES = ("success", "diverged")
# When the same leaf name appears in several parameter sections with different values, the short
# name comes from the first section listed here: the student is the trained system (its N is the
# size of the problem), the algorithm and data carry the controls.
_SECTION_PRECEDENCE = ("student", "algorithm", "data", "run", "teacher")
_NO_SHORT_NAME = ("kind",)   # "student.kind" and "algorithm.kind" mean different things
_FINAL_RECORD = ("time_final", "steps_final")   # alpha and steps at the last record (run.steps is a parameter)


# --------------------------------------------------------------------------------------- Table
class Table:
    """Columns of equal length (numpy arrays), addressed by name.

    >>> t = Table({"N": [10, 10, 20], "success": [True, False, True]})
    >>> len(t), t["N"], t.where(N=10)["success"]
    """

    def __init__(self, columns: dict | None = None, meta: dict | None = None):
        cols = {}
        n = None
        for name, values in (columns or {}).items():
            arr = _as_column(values)
            if arr.ndim != 1:
                raise ValueError(f"column {name!r} must be 1-D; got shape {arr.shape}")
            if n is None:
                n = len(arr)
            elif len(arr) != n:
                lengths = {k: len(np.atleast_1d(np.asarray(v))) for k, v in columns.items()}
                raise ValueError(f"columns must have equal lengths; got {lengths}")
            cols[str(name)] = arr
        self._cols = cols
        self._n = 0 if n is None else n
        self.meta = dict(meta or {})

    # -- construction
    @classmethod
    def from_arrays(cls, **columns) -> "Table":
        """Columns as keyword arrays; scalars are broadcast to the common length."""
        lengths = {k: np.size(v) for k, v in columns.items() if np.ndim(v) > 0}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"columns must have equal lengths; got {lengths}")
        n = next(iter(lengths.values()), 1)
        return cls({k: (np.repeat(np.asarray(v)[None], n) if np.ndim(v) == 0 else v)
                    for k, v in columns.items()})

    @classmethod
    def from_records(cls, records, meta: dict | None = None) -> "Table":
        """Rows as dicts; a key missing from a row becomes NaN (numbers) or "" (strings)."""
        records = list(records)
        names: list[str] = []
        for rec in records:
            for k in rec:
                if k not in names:
                    names.append(k)
        cols = {}
        for name in names:
            values = [rec.get(name, None) for rec in records]
            cols[name] = _column_from_values(values)
        return cls(cols, meta=meta)

    # -- basic access
    @property
    def columns(self) -> list[str]:
        return list(self._cols)

    def __len__(self) -> int:
        return self._n

    def __contains__(self, name) -> bool:
        return name in self._cols

    def __getitem__(self, key):
        """t["col"] -> array; t[["a", "b"]] -> Table; t[mask | indices | slice] -> Table of rows."""
        if isinstance(key, str):
            self._check(key)
            return self._cols[key]
        if isinstance(key, (list, tuple)) and key and all(isinstance(k, str) for k in key):
            for k in key:
                self._check(k)
            return Table({k: self._cols[k] for k in key}, meta=self.meta)
        idx = key
        if isinstance(key, np.ndarray) and key.dtype == bool and len(key) != self._n:
            raise ValueError(f"boolean mask has length {len(key)}; the table has {self._n} rows")
        return Table({k: v[idx] for k, v in self._cols.items()}, meta=self.meta)

    def _check(self, name):
        if name not in self._cols:
            raise ValueError(f"unknown column {name!r}; columns are: {', '.join(self._cols) or '(none)'}")

    def with_column(self, name: str, values) -> "Table":
        cols = dict(self._cols)
        cols[name] = np.repeat(np.asarray(values)[None], self._n) if np.ndim(values) == 0 else values
        return Table(cols, meta=self.meta)

    def to_pandas(self):
        """The table as a ``pandas.DataFrame`` (one column per column, strings as str; ``meta`` in
        ``DataFrame.attrs``). pandas is an optional extra: ``pip install "physsgd[pandas]"``;
        xarray users continue with ``xarray.Dataset.from_dataframe(table.to_pandas())``."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError('Table.to_pandas needs pandas, an optional extra of physsgd: '
                              'pip install "physsgd[pandas]" (or pip install "pandas>=1.5")') from None
        df = pd.DataFrame({k: v for k, v in self._cols.items()})
        df.attrs.update(self.meta)
        return df

    def to_records(self) -> list[dict]:
        return [{k: _py(v[i]) for k, v in self._cols.items()} for i in range(self._n)]

    # -- selection and grouping
    def where(self, mask=None, **equal) -> "Table":
        """Rows where ``mask`` is true and every ``column=value`` holds (floats compared with a
        relative tolerance of 1e-9, so values read back from text still match)."""
        keep = np.ones(self._n, bool)
        if mask is not None:
            mask = np.asarray(mask)
            if mask.dtype != bool or mask.shape != (self._n,):
                raise ValueError(f"mask must be a boolean array of length {self._n}; "
                                 f"got dtype {mask.dtype}, shape {mask.shape}")
            keep &= mask
        for name, value in equal.items():
            keep &= _equal(self[name], value)
        return self[keep]

    def unique(self, col: str) -> np.ndarray:
        values = self[col]
        if values.dtype.kind == "f":
            values = values[~np.isnan(values)]
        return np.unique(values)

    def groupby(self, keys) -> Iterator[tuple[dict, "Table"]]:
        """Yield ({key: value, ...}, sub-table) for each distinct combination, in sorted order."""
        keys = [keys] if isinstance(keys, str) else list(keys)
        for k in keys:
            self._check(k)
        if not keys:
            yield {}, self
            return
        groups: dict[tuple, list[int]] = {}
        rows = zip(*(self._cols[k] for k in keys))
        for i, row in enumerate(rows):
            groups.setdefault(tuple(_py(v) for v in row), []).append(i)
        for key in sorted(groups, key=_sort_key):
            yield dict(zip(keys, key)), self[np.asarray(groups[key])]

    def sort(self, by) -> "Table":
        by = [by] if isinstance(by, str) else list(by)
        order = np.lexsort([self[k] for k in reversed(by)]) if by else np.arange(self._n)
        return self[order]

    @staticmethod
    def concat(tables) -> "Table":
        records = [r for t in tables for r in t.to_records()]
        return Table.from_records(records)

    # -- text I/O
    def to_csv(self, path) -> None:
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(self.columns)
            for rec in self.to_records():
                w.writerow([_fmt_csv(v) for v in rec.values()])

    @classmethod
    def from_csv(cls, path) -> "Table":
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
        if not rows:
            raise ValueError(f"{path}: empty CSV file (no header)")
        header, body = rows[0], rows[1:]
        for i, r in enumerate(body):
            if len(r) != len(header):
                raise ValueError(f"{path}: row {i + 2} has {len(r)} fields; the header has {len(header)}")
        cols = {name: _parse_csv_column([r[j] for r in body]) for j, name in enumerate(header)}
        return cls(cols)

    def __repr__(self) -> str:
        head = f"Table({self._n} rows x {len(self._cols)} columns)"
        if not self._cols:
            return head
        show = self.columns[:8]
        n_show = min(self._n, 5)
        cells = [[_fmt_cell(self._cols[c][i]) for c in show] for i in range(n_show)]
        widths = [max([len(c)] + [len(r[j]) for r in cells]) for j, c in enumerate(show)]
        lines = [head, "  ".join(c.rjust(w) for c, w in zip(show, widths))]
        lines += ["  ".join(x.rjust(w) for x, w in zip(r, widths)) for r in cells]
        if self._n > n_show:
            lines.append(f"... {self._n - n_show} more rows")
        if len(self._cols) > len(show):
            lines.append(f"... more columns: {', '.join(self.columns[len(show):])}")
        return "\n".join(lines)


def _as_column(values) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = arr[None]
    if arr.dtype.kind == "S":  # bytes (e.g. strings read from HDF5): always str in a Table
        arr = np.char.decode(arr, "utf-8")
    elif arr.dtype.kind == "O":  # lists of python objects: try a cleaner dtype
        arr = _column_from_values(list(arr))
    return arr


def _column_from_values(values: list) -> np.ndarray:
    values = [v.decode("utf-8") if isinstance(v, (bytes, np.bytes_)) else v for v in values]
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if present and all(isinstance(v, (bool, np.bool_)) for v in present):
        if len(present) == len(values):
            return np.asarray(values, bool)
        return np.asarray([np.nan if v is None else float(v) for v in values])
    if present and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                       for v in present):
        if len(present) == len(values) and all(isinstance(v, (int, np.integer)) for v in present):
            return np.asarray(values, np.int64)
        return np.asarray([np.nan if v is None else float(v) for v in values])
    if not present:
        return np.full(len(values), np.nan)
    return np.asarray(["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                       for v in values])


def _equal(col: np.ndarray, value) -> np.ndarray:
    if col.dtype.kind == "f" and isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return np.isclose(col, float(value), rtol=1e-9, atol=0.0)
    if col.dtype.kind in "US":
        return col == str(value)
    return col == value


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


def _sort_key(key: tuple):
    return tuple((0, v) if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v))
                 else (1, str(v)) for v in key)


def _fmt_cell(v) -> str:
    v = _py(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _fmt_csv(v) -> str:
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _parse_csv_column(strings: list[str]) -> np.ndarray:
    if strings and all(s in ("True", "False") for s in strings):
        return np.asarray([s == "True" for s in strings])
    try:
        return np.asarray([int(s) for s in strings], np.int64)
    except ValueError:
        pass
    try:
        return np.asarray([float(s) if s != "" else np.nan for s in strings])
    except ValueError:
        return np.asarray(strings)


# ---------------------------------------------------------------------------------------- load
@validated                  # arguments checked first: analysis/_validate.py
def load(path) -> Table:
    """One row per (task, replica) from a task file, a merged file, or a directory of task files.

    Columns: ``task`` (file stem, or key of a merged file), ``replica``, ``status``; every scalar
    parameter under its dotted name ("student.N", "algorithm.batch_size", ...) and under its short name
    ("N", "batch_size", "d", "lr", "P", "seed", ...) where that is unambiguous (or, when sections
    disagree, taken from the first of student, algorithm, data, run, teacher; ``table.meta["aliases"]``
    says which); ``temperature`` = lr / batch_size for SGD tasks that do not store one; the final
    observables (``OBSERVABLES``), ``time_final`` (alpha at the last record) and ``steps_final``.
    ``table.meta``: "params" (parameter columns), "observables", "aliases", "sources", "skipped".
    """
    import h5py  # local: the Table itself does not need HDF5

    path = os.fspath(path)
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "*.h5")) + glob.glob(os.path.join(path, "*.hdf5")))
        files = [f for f in files if not os.path.basename(f).startswith(".")]
        if not files:
            raise ValueError(f"{path}: directory holds no .h5/.hdf5 result files")
    elif os.path.isfile(path):
        files = [path]
    else:
        raise ValueError(f"{path}: no such file or directory")

    records, seen, skipped, legacy = [], set(), [], []
    param_names: list[str] = []
    for fname in files:
        try:
            f = h5py.File(fname, "r")
        except (OSError, ValueError) as exc:   # damaged results are named, never read (or fatal)
            skipped.append(f"{fname} (not a readable HDF5 file: {str(exc).splitlines()[0] if str(exc) else exc!r})")
            continue
        with f:
            for key, group in _task_groups(f, fname):
                state, why = verify_group(group)
                if state == "damaged":
                    skipped.append(f"{fname}:{key} (damaged: {why})")
                    continue
                if state == "legacy" and "physsgd_version" in group.attrs:   # foreign data has no checksum
                    legacy.append(f"{fname}:{key}")
                ident = group.attrs.get("params_json", None)
                ident = _str(ident) if ident is not None else f"{fname}:{key}"
                if ident in seen:  # the same task twice (e.g. a merged file next to its task files)
                    skipped.append(f"{fname}:{key} (duplicate task)")
                    continue
                seen.add(ident)
                try:
                    params, rows = _read_group(group)
                except KeyError as exc:
                    skipped.append(f"{fname}:{key} (missing {exc})")
                    continue
                for p in params:
                    if p not in param_names:
                        param_names.append(p)
                for r, row in enumerate(rows):
                    records.append({"task": key, "replica": r, "status": _str(group.attrs.get("status", "")),
                                    **params, **row})
    if not records:
        raise ValueError(f"{path}: no readable task groups" + (f"; skipped {skipped}" if skipped else ""))
    bad = [s for s in skipped if "damaged" in s or "not a readable" in s]
    if bad:
        warnings.warn(f"skipped {len(bad)} damaged result(s): {'; '.join(bad[:5])}"
                      + (" ..." if len(bad) > 5 else ""), stacklevel=3)
    if legacy:
        warnings.warn(f"{len(legacy)} result(s) written by an earlier physsgd have no checksum and "
                      f"cannot be verified, e.g. {legacy[0]}", stacklevel=3)
    aliases = _short_names(records, param_names)
    for rec in records:
        for short, dotted in aliases.items():
            rec[short] = rec.get(dotted, None)
        if rec.get("temperature") is None and rec.get("algorithm.kind") == "SGD" and \
                rec.get("algorithm.lr") is not None and rec.get("algorithm.batch_size"):
            rec["temperature"] = rec["algorithm.lr"] / rec["algorithm.batch_size"]
    # column order: identification, short parameters, observables, dotted parameters
    order = ["task", "replica", "status"] + list(aliases) + \
            [c for c in ("temperature",) if c not in aliases and any("temperature" in r for r in records)] + \
            list(OBSERVABLES) + [c for c in STATIONARY + ("window_start", "window_stop") + _MEASURES
                                 if any(c in r for r in records)] + \
            list(_FINAL_RECORD) + param_names
    extra = [k for r in records for k in r]
    order += [k for k in dict.fromkeys(extra) if k not in order]
    records = [{k: r.get(k, None) for k in order} for r in records]
    meta = {"params": param_names + list(aliases) + (["temperature"] if "temperature" not in aliases else []),
            "observables": list(OBSERVABLES) + [c for c in STATIONARY + _MEASURES
                                                if any(c in r for r in records)], "aliases": aliases, "sources": files, "skipped": skipped}
    return Table.from_records(records, meta=meta)


def _task_groups(f, fname):
    if "tasks" in f:
        for key in f["tasks"]:
            yield key, f["tasks"][key]
    elif "eps_g" in f:
        yield os.path.splitext(os.path.basename(fname))[0], f
    # other HDF5 files in a results directory are not ours: ignore them


def _str(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _read_group(group) -> tuple[dict, list[dict]]:
    if "params_json" in group.attrs:
        params = _flatten(json.loads(_str(group.attrs["params_json"])))
    else:  # fall back on the flattened attributes
        params = {k: _py(v) for k, v in group.attrs.items() if "." in k and np.ndim(v) == 0}
        params = {k: _str(v) if isinstance(v, bytes) else v for k, v in params.items()}
    # files written before physsgd named the section "algorithm" everywhere called it "algo"
    params = {("algorithm." + k[5:] if k.startswith("algo.") else k): v for k, v in params.items()}
    eps_g = group["eps_g"][()]
    R = eps_g.shape[0]
    final = {name: group[name][()][:, -1] for name in ("eps_g", "train_error", "weight_change", "weight_norm")
             if name in group}
    for name in ("success", "diverged"):
        if name in group:
            final[name] = group[name][()].astype(bool)
    if "stopped_at" in group:
        final["stopped_at"] = group["stopped_at"][()]
    final["overlap"] = _final_overlap(group)
    for name in STATIONARY:
        if name in group:
            final[name] = group[name][()]
    for name in _MEASURES:
        if name in group:
            final[name] = group[name][()][:, -1]
    t = group["time"][()] if "time" in group else None
    s = group["steps"][()] if "steps" in group else None
    window = group["window"][()] if "window" in group else None
    rows = []
    for r in range(R):
        row = {k: _py(v[r]) for k, v in final.items() if v is not None}
        if window is not None:
            row["window_start"], row["window_stop"] = int(window[0]), int(window[1])
        if t is not None and len(t):
            row["time_final"] = float(t[-1])
        if s is not None and len(s):
            row["steps_final"] = _py(s[-1])
        rows.append(row)
    return params, rows


def _flatten(params: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        elif value is None or isinstance(value, (bool, int, float, str)):
            out[name] = value
    return out


def _final_overlap(group):
    """max_k |R_kn| / sqrt(Q_kk T_nn), averaged over teacher units n, at the last record
    (the same definition as TrainResult.overlap)."""
    if not all(k in group for k in ("R", "Q", "T")):
        return None
    R = group["R"][()][:, -1]                 # (replicas, K, M)
    Q = group["Q"][()][:, -1]                 # (replicas, K, K)
    T = group["T"][()]                        # (replicas, M, M)
    Qd = np.sqrt(np.clip(np.einsum("rkk->rk", Q), 1e-300, None))
    Td = np.sqrt(np.clip(np.einsum("rnn->rn", T), 1e-300, None))
    with np.errstate(invalid="ignore"):
        rho = np.abs(R) / Qd[:, :, None] / Td[:, None, :]
    return rho.max(axis=1).mean(axis=1)


def _short_names(records: list[dict], dotted: list[str]) -> dict:
    """short name -> dotted column it copies."""
    by_leaf: dict[str, list[str]] = {}
    for name in dotted:
        leaf = name.rsplit(".", 1)[-1]
        if leaf in _NO_SHORT_NAME or leaf in OBSERVABLES or leaf in STATIONARY or leaf in _FINAL_RECORD or \
                leaf in ("task", "replica", "status"):
            continue
        by_leaf.setdefault(leaf, []).append(name)
    aliases = {}
    for leaf, names in by_leaf.items():
        if len(names) == 1:
            aliases[leaf] = names[0]
            continue
        values = [[r.get(n, None) for r in records] for n in names]
        if all(v == values[0] for v in values[1:]):
            aliases[leaf] = names[0]
            continue
        rank = {s: i for i, s in enumerate(_SECTION_PRECEDENCE)}
        aliases[leaf] = min(names, key=lambda n: rank.get(n.split(".", 1)[0], len(rank)))
    return aliases


# ----------------------------------------------------------------------------------- aggregate
def wilson_interval(k, n, z: float = 1.0):
    """Wilson score interval for k successes in n trials; z = 1 gives ~68%, 1.96 gives 95%.

    Unlike the Wald interval it stays inside [0, 1] and is sensible at k = 0 or k = n, where
    success probabilities near a transition live. n = 0 gives (0, 1)."""
    k = np.asarray(k, float)
    n = np.asarray(n, float)
    if np.any(~np.isfinite(k)) or np.any(~np.isfinite(n)):
        raise ValueError("wilson_interval: k and n must be finite")
    if np.any(n < 0) or np.any(k < 0) or np.any(k > n):
        raise ValueError(f"wilson_interval: need 0 <= k <= n; got k={k}, n={n}")
    if z <= 0:
        raise ValueError(f"wilson_interval: z={z} must be > 0")
    nn = np.where(n > 0, n, 1.0)
    p = k / nn
    denom = 1 + z ** 2 / nn
    centre = (p + z ** 2 / (2 * nn)) / denom
    half = z / denom * np.sqrt(p * (1 - p) / nn + z ** 2 / (4 * nn ** 2))
    lo = np.where((n > 0) & (k > 0), np.clip(centre - half, 0, 1), 0.0)   # exact ends at k = 0, n
    hi = np.where((n > 0) & (k < n), np.clip(centre + half, 0, 1), 1.0)
    return (float(lo), float(hi)) if lo.ndim == 0 else (lo, hi)


@validated                  # arguments checked first: analysis/_validate.py
def aggregate(table: Table, by, observable="success", z68: float = 1.0, z95: float = 1.959964) -> Table:
    """Per group of ``by``: n and, for each observable, ``<obs>_mean``, ``<obs>_sem`` (standard
    error, ddof=1), ``<obs>_std``; boolean observables also get ``<obs>_k`` and the Wilson 68% and
    95% intervals ``<obs>_lo68``, ``<obs>_hi68``, ``<obs>_lo95``, ``<obs>_hi95``. NaN values are
    left out (``<obs>_n`` counts the finite ones)."""
    if not isinstance(table, Table):
        table = Table(table)
    by = [by] if isinstance(by, str) else list(by)
    observables = [observable] if isinstance(observable, str) else list(observable)
    for name in by + observables:
        table._check(name)
    records = []
    for key, sub in table.groupby(by):
        rec = dict(key)
        rec["n"] = len(sub)
        for obs in observables:
            v = sub[obs]
            is_bool = v.dtype == bool
            x = v.astype(float)
            x = x[np.isfinite(x)]
            m = len(x)
            rec[f"{obs}_n"] = m
            rec[f"{obs}_mean"] = float(x.mean()) if m else np.nan
            rec[f"{obs}_std"] = float(x.std(ddof=1)) if m > 1 else np.nan
            rec[f"{obs}_sem"] = float(x.std(ddof=1) / np.sqrt(m)) if m > 1 else np.nan
            if is_bool:
                k = int(x.sum())
                rec[f"{obs}_k"] = k
                rec[f"{obs}_lo68"], rec[f"{obs}_hi68"] = wilson_interval(k, m, z68)
                rec[f"{obs}_lo95"], rec[f"{obs}_hi95"] = wilson_interval(k, m, z95)
        records.append(rec)
    return Table.from_records(records, meta={"by": by, "observables": observables})
