"""Argument checks shared by the public constructors: every failure is a ValueError naming the
parameter, its value and what is allowed (wrong types, bools, NaN/inf, complex numbers and
integers beyond int64 included)."""
from __future__ import annotations

import math
import numbers

INT64_MAX = 2 ** 63 - 1


def show(value) -> str:
    """repr(value), shortened for huge integers and long containers (messages stay one line)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10 ** 20:
        digits = len(str(abs(value)))
        return f"{'-' if value < 0 else ''}{str(abs(value))[:6]}...({digits} digits)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def choice(name, value, allowed):
    ok = isinstance(value, str) or value is None
    try:
        ok = ok and value in allowed
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"{name}={show(value)} is not allowed; choose one of {', '.join(map(repr, allowed))}")
    return value


def integer(name, value, low=None, high=None, *, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}={show(value)} must be an integer{_range(low, high)}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name}={show(value)} is out of range; allowed: integer{_range(low, high)}")
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise ValueError(f"{name}={show(value)} is out of range; allowed: integer{_range(low, high)} "
                         "that fits in 64 bits (|value| < 2**63)")
    return value


def real(name, value, low=None, high=None, *, low_open=False, high_open=False, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        what = "a real number (not complex)" if isinstance(value, numbers.Complex) else "a real number"
        raise ValueError(f"{name}={show(value)} must be {what}{_range(low, high, low_open, high_open)}")
    try:
        value = float(value)
    except OverflowError:
        value = math.inf
    bad = not math.isfinite(value)
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad:
        raise ValueError(f"{name}={show(value)} is out of range; allowed: finite real"
                         f"{_range(low, high, low_open, high_open)}")
    return value


def reals(name, values, n=None):
    """A sequence of finite reals (a tuple), optionally of length n."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name}={show(values)} must be a sequence of real numbers"
                         + (f" (one per unit, {n})" if n is not None else ""))
    out = tuple(real(f"{name}[{i}]", x) for i, x in enumerate(values))
    if n is not None and len(out) != n:
        raise ValueError(f"{name} has {len(out)} values; it needs K={n}")
    return out


def _range(low, high, low_open=False, high_open=False):
    if low is None and high is None:
        return ""
    if high is None:
        return f" {'>' if low_open else '>='} {low}"
    if low is None:
        return f" {'<' if high_open else '<='} {high}"
    return f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def physical_memory() -> int | None:
    """Bytes of RAM of this machine (None when the OS does not say)."""
    import os
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(*, replicas, records, N, K, M, F, F_teacher, batch_size, P, test_size, threads):
    """ValueError when a training run's arrays would not fit in this machine's memory (instead
    of a MemoryError, or swapping to a halt). Result arrays: per replica and record point
    eps_g, train_error, weight_change, weight_norm, R (K x M) and Q (K x K); per replica the
    weights and receptive fields. Per running thread: the training set (P x N), the test set
    (test_size x N) and the mini-batch (batch_size x N, twice)."""
    word = 8
    parts = {   # the parameter to blame -> bytes it costs
        "replicas": replicas * (records * (4 + K * M + K * K) + M * M) * word,
        "P": threads * P * N * word,
        "test_size": threads * test_size * N * word,
        "batch_size": threads * 2 * batch_size * N * word,
        "N": (replicas * 3 * (K * F + M * F_teacher) + threads * (2 * K + M) * N) * word,
    }
    need, have = sum(parts.values()), physical_memory()
    if have is not None and need > have:
        name = max(parts, key=parts.get)
        if name == "N" and replicas > N:           # the weights: many replicas, not a large N
            name = "replicas"
        value = {"replicas": replicas, "P": P, "test_size": test_size, "batch_size": batch_size, "N": N}[name]
        why = {"replicas": f"results and weights of {replicas} replicas x {records} record points, N={N}",
               "N": f"weights of {replicas} replicas with N={N} inputs"}.get(
                   name, f"per-thread arrays of N={N} inputs on {threads} thread(s)")
        raise ValueError(f"{name}={show(value)}: this run needs about {need / 1e9:.3g} GB of memory "
                         f"({why}); this machine has {have / 1e9:.3g} GB: use fewer replicas or "
                         "record points, or smaller N, P, test_size or batch_size")
