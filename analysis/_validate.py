"""Argument checks of the public analysis functions: every bad argument is a ValueError naming
the parameter, its value and what is allowed (wrong types, bools for numbers, NaN/inf, complex
numbers and integers beyond int64 included), before any work starts.

The rules are declared per function (``RULES``) and applied by ``validated``, which wraps the
public functions where ``analysis/__init__.py`` exports them; a parameter a function does not
have is ignored, so the rules survive refactoring of the modules behind them.
"""
from __future__ import annotations

import functools
import inspect
import math
import numbers
import os

import numpy as np

INT64_MAX = 2 ** 63 - 1
MAX_BOOTSTRAP = 100_000      # resamples: beyond this a bootstrap is minutes of work for nothing


def _show(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10 ** 20:
        return f"{str(value)[:6]}...({len(str(abs(value)))} digits)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _range(low, high, low_open=False):
    if low is None and high is None:
        return ""
    if high is None:
        return f" {'>' if low_open else '>='} {low}"
    if low is None:
        return f" <= {high}"
    return f" in {'(' if low_open else '['}{low}, {high}]"


# -------------------------------------------------------------------------------------------
# Rules: rule(name, value) -> None or raises ValueError

def integer(low=None, high=None, optional=False):
    def check(name, value):
        if value is None and optional:
            return
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise ValueError(f"{name}={_show(value)} must be an integer{_range(low, high)}")
        v = int(value)
        if (low is not None and v < low) or (high is not None and v > high) or abs(v) > INT64_MAX:
            raise ValueError(f"{name}={_show(value)} is out of range; allowed: integer{_range(low, high)}")
    return check


def real(low=None, high=None, low_open=False, optional=False, open_interval=False):
    def check(name, value):
        if value is None and optional:
            return
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            what = "a real number (not complex)" if isinstance(value, numbers.Complex) else "a real number"
            raise ValueError(f"{name}={_show(value)} must be {what}{_range(low, high, low_open)}")
        try:
            v = float(value)
        except OverflowError:
            v = math.inf
        bad = not math.isfinite(v)
        if low is not None:
            bad |= v <= low if (low_open or open_interval) else v < low
        if high is not None:
            bad |= v >= high if open_interval else v > high
        if bad:
            rng = f" in ({low}, {high})" if open_interval else _range(low, high, low_open)
            raise ValueError(f"{name}={_show(value)} is out of range; allowed: finite real{rng}")
    return check


def number(optional=True):
    """A real number, or None: the type only (the function itself judges its range)."""
    def check(name, value):
        if value is None and optional:
            return
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            what = "a real number (not complex)" if isinstance(value, numbers.Complex) else "a real number"
            raise ValueError(f"{name}={_show(value)} must be {what}")
    return check


def columns_or_pair(optional=True):
    """A column name, a pair of column names, or None."""
    def check(name, value):
        if value is None and optional or isinstance(value, str):
            return
        if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, str) for v in value):
            return
        raise ValueError(f"{name}={_show(value)} must be a column name or a pair of column names")
    return check


def boolean(optional=False):
    def check(name, value):
        if value is None and optional:
            return
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name}={_show(value)} must be True or False")
    return check


def string(optional=False):
    def check(name, value):
        if value is None and optional:
            return
        if not isinstance(value, str):
            raise ValueError(f"{name}={_show(value)} must be a string (a column name)")
    return check


def strings():
    """A column name or a list of column names."""
    def check(name, value):
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
            raise ValueError(f"{name}={_show(value)} must be a column name or a list of column names")
    return check


def path():
    def check(name, value):
        if not isinstance(value, (str, os.PathLike)):
            raise ValueError(f"{name}={_show(value)} must be a path (str or os.PathLike) to a results "
                             "file or a directory of task files")
    return check


def table(dict_ok=True):
    def check(name, value):
        from .table import Table
        if isinstance(value, Table) or (dict_ok and isinstance(value, dict)):
            return
        raise ValueError(f"{name} must be an analysis.Table{' or a dict of equal-length arrays' if dict_ok else ''}; "
                         f"got {type(value).__name__}")
    return check


def real_array(optional=False):
    """1-D data of real numbers (no complex values, no strings): what the fits accept."""
    def check(name, value):
        if value is None and optional:
            return
        if value is None or isinstance(value, (str, bytes)):
            raise ValueError(f"{name} must be an array of real numbers; got {type(value).__name__}")
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{name} must be an array of real numbers ({e})") from None
        if arr.dtype.kind == "c":
            raise ValueError(f"{name} must be real; got a complex array")
        if arr.dtype.kind == "O":
            try:
                arr = arr.astype(float)
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be an array of real numbers; got objects of type "
                                 f"{type(arr.flat[0]).__name__ if arr.size else 'object'}") from None
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{name} must be an array of real numbers; got dtype {arr.dtype}")
    return check


def pair(optional=True):
    def check(name, value):
        if value is None and optional:
            return
        try:
            lo, hi = value
        except (TypeError, ValueError):
            raise ValueError(f"{name}={_show(value)} must be a pair (lo, hi) of finite numbers with lo < hi") from None
        for v in (lo, hi):
            real()(name, v)
        if not lo < hi:
            raise ValueError(f"{name}={_show(value)} must be a pair (lo, hi) of finite numbers with lo < hi")
    return check


def fixed():
    def check(name, value):
        if value is None or isinstance(value, (str, dict)):
            return
        if isinstance(value, (list, tuple, set)) and all(isinstance(v, str) for v in value):
            return
        raise ValueError(f"{name}={_show(value)} must be a dict name -> value, a parameter name, or a "
                         "list of parameter names")
    return check


def labels():
    """A pair of different labels (planted start, other start)."""
    def check(name, value):
        ok = isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, str) for v in value) \
            and value[0] != value[1]
        if not ok:
            raise ValueError(f"{name}={_show(value)} must be two different labels, e.g. ('teacher', 'random')")
    return check


def at_control():
    """A control value: None, a number, a dict size -> number, or a Thresholds result (its
    per-size window middles)."""
    def check(name, value):
        if value is None or (hasattr(value, "midpoint") and hasattr(value, "sizes")):
            return
        if isinstance(value, dict):
            for k, v in value.items():
                real()(f"{name}[{k!r}]", v)
            return
        real()(name, value)
    return check


def x_near():
    def check(name, value):
        if value is None or isinstance(value, dict) or hasattr(value, "xc"):
            return
        real_array()(name, value)
    return check


SEED = integer(0, INT64_MAX)

RULES = {
    "load": {"path": path()},
    "aggregate": {"table": table(), "by": strings(), "observable": strings(),
                  "z68": real(0, low_open=True), "z95": real(0, low_open=True)},
    "critical_point": {"table_or_arrays": table(), "control": string(), "size": string(),
                       "observable": string(), "level": real(), "method": string(),
                       "bootstrap": integer(20, MAX_BOOTSTRAP), "extrapolate": boolean(), "seed": SEED,
                       "log_control": boolean(optional=True), "nu": real(0, low_open=True, optional=True),
                       "bounds": pair(), "trials": string(optional=True)},
    "collapse": {"size": real_array(), "x": real_array(), "y": real_array(), "dy": real_array(),
                 # collapse judges the values of its guesses itself ("nu must be > 0, got ...")
                 "xc": number(), "nu": number(), "zeta": number(), "x_window": pair(), "fixed": fixed(),
                 "corrections": boolean(), "omega": number(), "b": number(),
                 "bootstrap": integer(0, MAX_BOOTSTRAP),
                 "systematics": boolean(), "seed": SEED, "s1": boolean()},
    "crossings": {"size": real_array(), "x": real_array(), "y": real_array(), "dy": real_array(),
                  "omega": real(0, low_open=True, optional=True), "nu": real(0, low_open=True, optional=True),
                  "n_local": integer(3, 10_000), "degree": integer(1, 10),
                  "bootstrap": integer(2, MAX_BOOTSTRAP), "systematics": boolean(), "seed": SEED},
    "power_law": {"x": real_array(), "y": real_array(), "dy": real_array(optional=True),
                  "bootstrap": integer(10, MAX_BOOTSTRAP), "seed": SEED,
                  "x_min": real(optional=True), "x_max": real(optional=True)},
    "transition_order": {"table": table(), "control": string(), "size": string(),
                         "order_parameter": string(), "x_near": x_near(),
                         "init": string(), "starts": labels(), "stationary": string(),
                         "distribution": string(optional=True), "binder": columns_or_pair(),
                         "exit_event": string(), "passage_event": string(),
                         "lifetime_at": at_control(), "near": at_control(), "level": real(),
                         "log_control": boolean(optional=True), "min_replicas": integer(1, INT64_MAX),
                         "min_events": integer(1, INT64_MAX),
                         "bootstrap": integer(2, MAX_BOOTSTRAP), "seed": SEED},
    "thresholds": {"table": table(), "control": string(), "size": string(), "observable": string(),
                   "init": string(), "starts": labels(), "level": real(), "method": string(),
                   "bootstrap": integer(20, MAX_BOOTSTRAP), "seed": SEED,
                   "log_control": boolean(optional=True), "extrapolate": boolean(),
                   "nu": real(0, low_open=True, optional=True), "bounds": pair(), "errors": string()},
    "lifetimes": {"table": table(), "control": string(), "size": string(), "start": string(),
                  "event": string(optional=True), "init": string(), "at": at_control(),
                  "budget": string(), "min_events": integer(1, INT64_MAX)},
}


def check(function_name: str, arguments: dict) -> None:
    """Apply the rules of ``function_name`` to its bound arguments (unknown names are skipped)."""
    for name, rule in RULES.get(function_name, {}).items():
        if name in arguments:
            rule(name, arguments[name])


def _checked(fn):
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as e:              # a missing or unknown argument: say which
            raise ValueError(f"{fn.__name__}(): {e}") from None
        bound.apply_defaults()
        check(fn.__name__, bound.arguments)
        return fn(*args, **kwargs)
    return wrapper


def validated(*functions):
    """The public functions, each checking its arguments first (same name, docstring, signature)."""
    out = [_checked(fn) for fn in functions]
    return out if len(out) != 1 else out[0]
