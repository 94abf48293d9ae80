"""How the kernels are compiled: internal functions without a Python entry point, and each entry
point at its own LLVM optimisation level.

Measured on the quickstart's kernel (greedy bit path, cold cache, one process: benchmarks/
bench_compile.py; the whole command: benchmarks/bench_first_run.py):
- every ``@njit`` function gets a CPython wrapper (unboxing its arguments: the config
  namedtuple's ~50 fields, tuples of arrays) and a C-callable wrapper, each lowered and optimised
  by LLVM, although the kernels' internal functions are only ever called from compiled code. An
  ``internal`` function has neither: 43 -> 34 s of compile at numba's default -O3;
- LLVM at -O1 instead of -O3 for the greedy kernels: they run as fast or faster, and compile in
  34 -> 23.5 s (benchmarks/results.md, "Compile time"). The SGD kernel stays at -O3: its
  curvature measures (measure=["sharpness"], finite data) ran 8 % slower at -O1 (and slower
  still at -O2); so does the overlap chain, which compiled no faster at -O1 and ran up to 14 %
  slower.

An ``internal`` function has no entry point numba could call from Python (calling it would
crash): called from Python (tests, benchmarks), it runs ``python_callable(f)`` instead, a copy
compiled from the same source with the wrappers, on first use. Compiled code calls the lean
original.

``compiling(kernel)`` sets the entry point's optimisation level (``entry(level=...)``) while it
compiles: physsgd/replicas.py compiles every kernel in the calling thread (``compile_for``)
before its worker threads start. It holds numba's compiler lock, so no other compilation in the
process sees the changed level. NUMBA_OPT, when set, is honoured: the level is then the user's.
"""
import contextlib
import os

from numba import njit
from numba.core import config
from numba.core.dispatcher import Dispatcher
from numba.core.registry import CPUDispatcher

OPT_LEVEL = 1            # the entry points' default level
_LEVELS = {}


def entry(level=OPT_LEVEL, **options):
    """An entry point (called from Python, through compiling()): ``@njit(cache=True, nogil=True)``,
    compiled at LLVM optimisation level ``level``."""
    def wrap(f):
        kernel = njit(cache=True, nogil=True, **options)(f)
        _LEVELS[kernel] = level
        return kernel
    return wrap


class InternalDispatcher(CPUDispatcher):
    """A compiled function with no Python entry point (see the module docstring). Called from
    Python, it runs its python_callable copy."""

    def __call__(self, *args, **kwargs):
        return python_callable(self)(*args, **kwargs)


def internal(func=None, **options):
    """``@internal`` or ``@internal(fastmath=...)``: like ``@njit``, without the CPython and
    C-callable wrappers."""
    def wrap(f):
        if config.DISABLE_JIT:
            return f
        opts = {"nopython": True, "no_cpython_wrapper": True, "no_cfunc_wrapper": True, **options}
        return InternalDispatcher(py_func=f, locals={}, targetoptions=opts)
    return wrap(func) if func is not None else wrap


_CALLABLE = {}


def python_callable(kernel):
    """A copy of an internal kernel that Python can call (same source, same callees, compiled
    separately, with the wrappers); any other dispatcher is returned as it is."""
    if not isinstance(kernel, InternalDispatcher):
        return kernel
    if kernel not in _CALLABLE:
        opts = {k: v for k, v in kernel.targetoptions.items()
                if k not in ("no_cpython_wrapper", "no_cfunc_wrapper", "nopython")}
        _CALLABLE[kernel] = njit(**opts)(kernel.py_func)
    return _CALLABLE[kernel]


def compile_for(kernel, cfg, *arrays):
    """Compile (or load from the cache) a block kernel ``kernel(cfg, lo, hi, *arrays)`` for these
    arguments, at its level, by calling it on no replica (lo = hi = 0). Anything that is not a
    numba dispatcher (a plain Python kernel, in tests) is left alone."""
    if isinstance(kernel, Dispatcher):
        with compiling(kernel):
            kernel(cfg, 0, 0, *arrays)


@contextlib.contextmanager
def compiling(kernel=None):
    """Compile at the entry point's level inside the block (OPT_LEVEL for any other kernel;
    numba's own when NUMBA_OPT is set)."""
    level = _LEVELS.get(kernel, OPT_LEVEL)
    level_type = getattr(config, "_OptLevel", None)
    if "NUMBA_OPT" in os.environ or level_type is None:
        yield
        return
    from numba.core.compiler_lock import global_compiler_lock
    with global_compiler_lock:
        before = config.OPT
        config.OPT = level_type(level)
        try:
            yield
        finally:
            config.OPT = before
