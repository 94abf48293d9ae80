"""physsgd/kernels/jit.py: internal kernels (no Python entry point) and the compile level."""
import importlib
import os

import numpy as np
import pytest
from numba import njit
from numba.core import config
from numba.core.registry import CPUDispatcher

from physsgd.kernels import jit

MODULES = ["bits", "curvature", "engine", "network", "observables", "overlaps", "rng", "samples",
           "steps", "teacher"]


@jit.internal
def _axpy(a, x, y):
    for i in range(x.shape[0]):
        y[i] += a * x[i]
    return y.sum()


@njit
def _calls_axpy(a, x, y):
    return _axpy(a, x, y)


def test_internal_kernel_from_compiled_code_and_from_python():
    x = np.arange(5.0)
    y1, y2 = np.ones(5), np.ones(5)
    assert _calls_axpy(2.0, x, y1) == 25.0
    assert _axpy(2.0, x, y2) == 25.0          # from Python: the python_callable copy
    np.testing.assert_array_equal(y1, y2)
    assert _axpy.targetoptions["no_cpython_wrapper"] and _axpy.targetoptions["no_cfunc_wrapper"]
    copy = jit.python_callable(_axpy)
    assert copy is jit.python_callable(_axpy) and copy is not _axpy
    assert not isinstance(copy, jit.InternalDispatcher)
    assert jit.python_callable(_calls_axpy) is _calls_axpy


def test_every_kernel_is_internal_except_the_entry_points():
    """A plain @njit in a kernel module compiles two wrappers nobody calls (seconds of a cold
    compile); only the cached entry points (called from Python) and inline helpers keep them."""
    plain = []
    for name in MODULES:
        mod = importlib.import_module(f"physsgd.kernels.{name}")
        for attr, obj in vars(mod).items():
            if (isinstance(obj, CPUDispatcher) and not isinstance(obj, jit.InternalDispatcher)
                    and obj.py_func.__module__ == mod.__name__
                    and obj.targetoptions.get("inline", "never") == "never"
                    and not obj._cache.__class__.__name__ == "FunctionCache"):
                plain.append(f"{name}.{attr}")
    assert plain == [], f"plain @njit kernels (use @internal, or cache=True for an entry point): {plain}"


def test_compiling_sets_the_level_and_restores_it(monkeypatch):
    monkeypatch.delenv("NUMBA_OPT", raising=False)
    before = int(config.OPT)
    with jit.compiling():
        assert int(config.OPT) == jit.OPT_LEVEL
    assert int(config.OPT) == before
    with pytest.raises(RuntimeError):
        with jit.compiling():
            raise RuntimeError("a failed compile")
    assert int(config.OPT) == before


def test_entry_points_levels(monkeypatch):
    """The SGD and chain kernels compile at -O3 (they ran slower at -O1), the greedy ones at
    OPT_LEVEL; compiling() applies the kernel's level."""
    from physsgd.kernels import engine, overlaps
    monkeypatch.delenv("NUMBA_OPT", raising=False)
    levels = {k: jit._LEVELS.get(k) for k in (engine.train_sgd, engine.train_greedy,
                                             engine.train_greedy_bits, overlaps.train_chain)}
    assert list(levels.values()) == [3, jit.OPT_LEVEL, jit.OPT_LEVEL, 3]
    with jit.compiling(engine.train_sgd):
        assert int(config.OPT) == 3
    with jit.compiling(engine.train_greedy_bits):
        assert int(config.OPT) == jit.OPT_LEVEL


def test_compiling_honours_numba_opt(monkeypatch):
    monkeypatch.setenv("NUMBA_OPT", "2")
    before = config.OPT
    with jit.compiling():
        assert config.OPT is before
    assert os.environ["NUMBA_OPT"] == "2"



# machine code on demand: fresh functions, compiled only by these tests

def _leaf_and_caller():
    """A fresh internal leaf and a plain @njit caller of it (each test compiles its own)."""
    @jit.internal
    def leaf(x):
        return 2.0 * x.sum()

    @njit
    def caller(x):
        return leaf(x) + 1.0
    return leaf, caller


def _compiled(dispatcher):
    (cres,) = dispatcher.overloads.values()
    return cres


def _library(dispatcher):
    return _compiled(dispatcher).library


def test_internal_libraries_get_no_machine_code_inside_compiling():
    """Compiled inside compiling(), the internal leaf lives on as IR linked into its caller's
    library and never gets machine code of its own; the caller, asked for its wrapper, does and
    runs. Outside, numba's own path: both get machine code."""
    x = np.arange(4.0)
    leaf, caller = _leaf_and_caller()
    with jit.compiling():
        assert caller(x) == 13.0
    assert not jit.has_machine_code(_library(leaf))
    assert jit.has_machine_code(_library(caller))
    assert caller(x) == 13.0 and leaf(x) == 12.0
    leaf, caller = _leaf_and_caller()
    assert caller(x) == 13.0
    assert jit.has_machine_code(_library(leaf)) and jit.has_machine_code(_library(caller))


def test_a_library_with_a_wrapper_is_optimised_and_compiled_in_the_window():
    """The caller (a plain @njit: a CPython wrapper) ran, so it has its machine code; its
    module passes ran at finalisation, the leaf's were left to it."""
    leaf, caller = _leaf_and_caller()
    with jit.compiling():
        caller(np.arange(4.0))
    lib = _library(caller)
    assert jit.has_machine_code(lib) and not getattr(lib, "_module_passes_pending", False)
    assert _library(leaf)._module_passes_pending
    assert jit._links_only(_library(leaf)) and not jit._links_only(lib)


@jit.internal
def _leaf_prints(k):
    print("leaf", k)       # reads the function's environment (numba raises when it is unset)
    return k + 1


@njit
def _caller_prints(k):
    return _leaf_prints(k)


def test_an_internal_function_that_reads_its_environment(capfd):
    """The leaf's environment has no address until its caller's machine code exists: it is set
    then, so the linked copy finds it."""
    with jit.compiling():
        assert _caller_prints(41) == 42
    assert not jit.has_machine_code(_library(_leaf_prints))
    assert _caller_prints(1) == 2
    assert capfd.readouterr().out.split("\n")[:2] == ["leaf 41", "leaf 1"]


@jit.internal
def _leaf_asked(x):
    return x * 3.0


def test_a_waiting_library_asked_for_its_function_gets_machine_code():
    with jit.compiling():
        _leaf_asked.compile("float64(float64)")
    lib = _library(_leaf_asked)
    assert not jit.has_machine_code(lib)
    assert lib._module_passes_pending       # left to its callers; run before its machine code
    assert lib.get_pointer_to_function(_compiled(_leaf_asked).fndesc.llvm_func_name) != 0
    assert jit.has_machine_code(lib) and not lib._module_passes_pending


@jit.internal
def _leaf_every_level(x):
    return x * 5.0


def test_passes_once_false_keeps_the_module_passes():
    """The chain's entry keeps its callees' module passes (it ran slower without them); its
    libraries still wait for machine code."""
    from physsgd.kernels import overlaps
    assert overlaps.train_chain in jit._EVERY_LEVEL
    with jit.compiling(overlaps.train_chain):
        _leaf_every_level.compile("float64(float64)")
    lib = _library(_leaf_every_level)
    assert not jit.has_machine_code(lib) and not getattr(lib, "_module_passes_pending", False)
    assert jit._PASSES_ONCE[0] is True


@jit.internal
def _leaf_prints_later(k):
    print("later", k)
    return k + 2


@njit
def _caller_outside(k):
    return _leaf_prints_later(k)


def test_a_waiting_environment_is_set_for_a_caller_compiled_outside(capfd):
    """The leaf is compiled inside the block (its environment waits); its caller outside it,
    by numba's own path: the environment is set then too."""
    with jit.compiling():
        _leaf_prints_later.compile("int64(int64)")
    assert _caller_outside(5) == 7
    assert "later 5" in capfd.readouterr().out
