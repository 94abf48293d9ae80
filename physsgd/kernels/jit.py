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

Inside ``compiling()``, code is optimised as a whole and turned into machine code only where it
runs (``machine_code_on_demand``). numba finalises every compiled function's library at once:
module-level optimisation over the function and every callee linked into it, then machine code.
An internal function's library is only ever linked, as LLVM IR, into its callers', whose own
finalisation optimises that code again, with theirs; so its module passes and its machine code
(and its callees' in it) ran for nothing, at every level of the call tree. In the block, a
library that only links into its callers (no CPython or C wrapper) gets neither, and any other
library gets its machine code when a function it defines is asked for. The entry point's
library, which holds all of the kernel's code, is optimised and compiled once, and cached as
before. Cold compiles (benchmarks/bench_compile.py, one run): greedy bit path 25 -> 20 s, SGD
45 -> 22 s, the kernels running as fast as before or faster. The overlap chain ran ~10 % slower
with its callees' module passes left to the entry point (0.70 vs 0.61 s in interleaved runs):
it keeps them (``entry(passes_once=False)``) and gets machine code on demand only, which made
its compile no measurably shorter (58.6 vs 75.9 s in one run, 72.8 vs 70.7 s in another).
"""
import contextlib
import os

from numba import njit
from numba.core import codegen, config
from numba.core.dispatcher import Dispatcher
from numba.core.registry import CPUDispatcher

OPT_LEVEL = 1            # the entry points' default level
_LEVELS = {}


_EVERY_LEVEL = set()     # entry points whose callees keep their own module passes


def entry(level=OPT_LEVEL, passes_once=True, **options):
    """An entry point (called from Python, through compiling()): ``@njit(cache=True, nogil=True)``,
    compiled at LLVM optimisation level ``level``. ``passes_once=False``: its callees' libraries
    keep numba's module-level passes at every level of the call tree (machine_code_on_demand)."""
    def wrap(f):
        kernel = njit(cache=True, nogil=True, **options)(f)
        _LEVELS[kernel] = level
        if not passes_once:
            _EVERY_LEVEL.add(kernel)
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
    numba's own when NUMBA_OPT is set), with machine code on demand."""
    from numba.core.compiler_lock import global_compiler_lock
    level = _LEVELS.get(kernel, OPT_LEVEL)
    level_type = getattr(config, "_OptLevel", None)
    with global_compiler_lock, machine_code_on_demand(passes_once=kernel not in _EVERY_LEVEL):
        if "NUMBA_OPT" in os.environ or level_type is None:
            yield
            return
        before = config.OPT
        config.OPT = level_type(level)
        try:
            yield
        finally:
            config.OPT = before


# ------------------------------------------------------------------------------------------
# Machine code on demand (numba's JIT library and codegen, patched once at import; the patches
# change nothing outside machine_code_on_demand, except that an environment numba cannot place
# yet is set later instead of written through a null address)

_ON_DEMAND = [0]          # > 0 inside machine_code_on_demand (under numba's compiler lock)
_PASSES_ONCE = [True]     # ... and whether link-only libraries leave their module passes
_PENDING_ENVS = {}        # environment global name -> Environment, set once its code exists


@contextlib.contextmanager
def machine_code_on_demand(passes_once=True):
    """Inside the block (hold numba's compiler lock): a library that only links into its callers
    skips its module-level passes (its callers run them over its code), and a library gets its
    machine code only when a function it defines is asked for (``get_pointer_to_function``, the
    cache's ``serialize_using_object_code``), after those passes if they were skipped.
    ``passes_once=False`` keeps the module passes at every level (machine code on demand only).
    """
    _ON_DEMAND[0] += 1
    before, _PASSES_ONCE[0] = _PASSES_ONCE[0], passes_once
    try:
        yield
    finally:
        _ON_DEMAND[0] -= 1
        _PASSES_ONCE[0] = before


def has_machine_code(library) -> bool:
    """Whether numba generated ``library``'s machine code (False while it waits for a demand)."""
    return library._finalized and not getattr(library, "_machine_code_pending", False)


def _defines(module, name):
    try:
        return not module.get_function(name).is_declaration
    except NameError:
        return False


def _materialise(library):
    """Generate a waiting library's machine code now (numba's own finalisation step), then set
    the environments that had no address before."""
    if getattr(library, "_machine_code_pending", False):
        library._machine_code_pending = False
        if getattr(library, "_module_passes_pending", False):
            library._module_passes_pending = False
            _NUMBA["optimize_final_module"](library)
        _NUMBA["finalize_final_module"](library)
        _set_pending_envs(library.codegen)


def _set_pending_envs(cg):
    """Set the environments whose globals now exist (in a caller's code that linked them)."""
    for name in [n for n in _PENDING_ENVS if cg._engine.is_symbol_defined(n)]:
        _NUMBA["set_env"](cg, name, _PENDING_ENVS.pop(name))


def _links_only(library):
    """A library with neither a CPython nor a C wrapper: only compiled callers reach its code,
    by linking its IR (an internal function's, numba's own helpers')."""
    return not any(f.name.startswith(("cpython.", "cfunc.")) and not f.is_declaration
                   for f in library._final_module.functions)


def _optimize_final_module(self):
    # a library that only links into its callers: they optimise its code with theirs, once
    if (_ON_DEMAND[0] and _PASSES_ONCE[0] and isinstance(self, codegen.JITCodeLibrary)
            and _links_only(self)):
        self._module_passes_pending = True
        return
    _NUMBA["optimize_final_module"](self)


def _finalize_final_module(self):
    # a library loaded from the cache holds object code, not IR: numba's own path
    if (_ON_DEMAND[0] and isinstance(self, codegen.JITCodeLibrary)
            and any(not f.is_declaration for f in self._final_module.functions)):
        self._machine_code_pending = True
        self._finalized = True
        return
    _NUMBA["finalize_final_module"](self)
    if _PENDING_ENVS:       # a caller compiled outside the block may link a waiting library
        _set_pending_envs(self.codegen)


def _get_pointer_to_function(self, name):
    self._ensure_finalized()
    if getattr(self, "_machine_code_pending", False) and _defines(self._final_module, name):
        _materialise(self)
    return _NUMBA["get_pointer_to_function"](self, name)


def _serialize_using_object_code(self):
    self._ensure_finalized()
    _materialise(self)
    return _NUMBA["serialize_using_object_code"](self)


def _set_env(self, env_name, env):
    if not self._engine.is_symbol_defined(env_name):     # its library waits for a demand
        _PENDING_ENVS[env_name] = env
        return
    _NUMBA["set_env"](self, env_name, env)


_NUMBA = {"optimize_final_module": codegen.CPUCodeLibrary._optimize_final_module,
          "finalize_final_module": codegen.CPUCodeLibrary._finalize_final_module,
          "get_pointer_to_function": codegen.JITCodeLibrary.get_pointer_to_function,
          "serialize_using_object_code": codegen.CPUCodeLibrary.serialize_using_object_code,
          "set_env": codegen.JITCPUCodegen.set_env}
codegen.JITCodeLibrary._optimize_final_module = _optimize_final_module
codegen.JITCodeLibrary._finalize_final_module = _finalize_final_module
codegen.JITCodeLibrary.get_pointer_to_function = _get_pointer_to_function
codegen.JITCodeLibrary.serialize_using_object_code = _serialize_using_object_code
codegen.JITCPUCodegen.set_env = _set_env
