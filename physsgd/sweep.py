"""Sweeps: TOML config -> validated tasks -> executed (resumably) into a directory of task files.

Config schema (a TOML file; see runs/README.md for the user-facing version)::

    [teacher]        # ps.Committee / ps.Perceptron keywords, kind = "Committee" (default) | "Perceptron"
    kind = "Committee"
    N = 30
    activation = "sign"; output = "sign"; topology = "tree"; d = 10; weights = "binary"
    [student]        # same keys as [teacher]
    ...
    [algorithm]      # kind = "SGD" | "Greedy" plus that algorithm's keywords
    kind = "Greedy"
    batch_size = 4
    [data]           # kind = "Online" | "Dataset" plus its keywords (P, inputs, chi, label_noise, test_size)
    kind = "Online"
    [run]            # ps.train keywords: exactly one of steps / epochs / alpha, and
    steps = 200      #   replicas, seed, init_scale, record, stop, success_eps
    replicas = 8
    [grid]           # one axis per key; the Cartesian product of all axes is the task list
    N = [30, 60]                 # short model keys (N, K, d, activation, ...) set teacher AND student
    "student.d" = [3, 5]         # a dotted key sets one section's value
    batch_size = [1, 2, 4]       # short keys of other sections: algorithm / data / run keys
    seed = [0, 1]                # ("seeds" is accepted as an alias of "seed")
    P = "4*N"                    # a string is a derived value: an arithmetic expression
    lr = "T*batch_size"          #   over the other parameters and helper variables
    T = [0.01, 0.1]              # a key that is no parameter but is used by an expression = variable
    [grid.zip]                   # lists advanced together: one axis (use [[grid.zip]] for several)
    N = [10, 20, 40]
    d = [3, 5, 7]

Axes are expanded in the order they appear, the last one varying fastest. Every task's specs are
constructed during validation, so a bad value anywhere is reported (with its key path, the grid
index and the TOML line) before anything runs.

A task is one ``ps.train`` call (all replicas). Its identity is the canonical parameter dict
``{"teacher", "student", "algorithm", "data", "run"[, "vars"]}`` (specs' ``to_dict`` with float
fields as floats, every ``ps.train`` keyword explicit); its key is the first 16 hex digits of the
sha256 of its canonical JSON, so changing any parameter changes the file name.
"""
from __future__ import annotations

import ast
import dataclasses
import difflib
import hashlib
import itertools
import math
import operator
import os
import re
import tomllib
from dataclasses import dataclass, field

from .algorithms import SGD, Greedy, algorithm_from_dict
from .data import Dataset, Online, data_from_dict
from .models import Committee
from .h5layout import canonical_json

SECTIONS = ("teacher", "student", "algorithm", "data", "run")
TOP_LEVEL = SECTIONS + ("grid", "meta")

# Keywords of ps.train that a task fixes: (default, type, check). Every one is written into the
# task's parameters, so the hash pins down the whole call even if ps.train's defaults change.
RUN_FIELDS = {
    "steps": (None, "int"), "epochs": (None, "int"), "alpha": (None, "float"),
    "replicas": (32, "int"), "seed": (0, "int"), "init_scale": (1.0, "float"),
    "record": (50, "int"), "stop": (None, "any"), "success_eps": (None, "float"),
    # start and stationary measurement (ps.train's docstring): init = "random" | "teacher";
    # window = a fraction of the run or [first, last] steps; probe/check cadences in steps
    "init": ("random", "any"), "window": (None, "any"), "probe_every": (None, "int"),
    "check_every": (None, "int"), "engine": ("direct", "any"), "measure": (None, "any"),
}

_MODEL_KINDS = {"Committee": Committee, "Perceptron": None}     # Perceptron: subset, see _fields
_ALGO_KINDS = {"SGD": SGD, "Greedy": Greedy}
_DATA_KINDS = {"Online": Online, "Dataset": Dataset}
_DATA_HIDDEN = ("X", "y", "test_fraction")                       # user arrays only, not from configs
_PERCEPTRON_FIELDS = ("N", "activation", "output", "weights", "topology", "d")


class ConfigError(ValueError):
    """A bad sweep config: one line naming file, line, key path and the problem."""


@dataclass(frozen=True)
class Task:
    key: str            # 16 hex digits: the file name in the output directory
    params: dict        # canonical parameters (JSON-able), enough to rerun the task
    point: dict         # grid coordinates, axis name -> value (for logs and status tables)

    def label(self) -> str:
        return ", ".join(f"{k}={_short(v)}" for k, v in self.point.items()) or "(single task)"


@dataclass
class Sweep:
    tasks: list                     # list[Task] in expansion order
    axes: dict                      # axis name -> list of values (zip groups give one name per key)
    path: str | None = None
    text: str = ""


# --------------------------------------------------------------------------------------------
# Parameter tables derived from the spec classes (so a new keyword there is a config key here).

def _field_types(cls) -> dict:
    return {f.name: str(f.type) for f in dataclasses.fields(cls)}


def _fields(section: str, kind: str) -> dict:
    """name -> annotation string of the keywords allowed in ``section`` for ``kind``."""
    if section in ("teacher", "student"):
        ft = _field_types(Committee)
        if kind == "Perceptron":
            return {k: ft[k] for k in _PERCEPTRON_FIELDS}
        return ft
    if section == "algorithm":
        return _field_types(_ALGO_KINDS[kind])
    if section == "data":
        return {k: t for k, t in _field_types(_DATA_KINDS[kind]).items() if k not in _DATA_HIDDEN}
    return {k: t for k, (_, t) in RUN_FIELDS.items()}


def _kinds(section):
    return {"teacher": _MODEL_KINDS, "student": _MODEL_KINDS, "algorithm": _ALGO_KINDS,
            "data": _DATA_KINDS}.get(section)


def _all_fields(section: str) -> set:
    kinds = _kinds(section)
    if kinds is None:
        return set(RUN_FIELDS)
    return set().union(*(_fields(section, k) for k in kinds))


def _short_names() -> dict:
    """Short grid key -> the dotted paths it sets (model keys set teacher and student)."""
    out = {}
    for section in SECTIONS:
        for name in _all_fields(section):
            out.setdefault(name, []).append(f"{section}.{name}")
    out["seeds"] = ["run.seed"]
    return out


# --------------------------------------------------------------------------------------------
# Safe arithmetic for derived values: numbers, parameter names, + - * / // % **, a few functions.

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
           ast.Pow: operator.pow}
_UNOPS = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCS = {"int": int, "float": float, "round": round, "min": min, "max": max, "abs": abs,
          "sqrt": math.sqrt, "log": math.log, "log2": math.log2, "exp": math.exp,
          "floor": math.floor, "ceil": math.ceil}


class _Unresolved(Exception):
    """An expression needs a name whose value is itself still being derived."""


MAX_EXPR_CHARS, MAX_EXPR_NODES = 500, 200
MAX_MAGNITUDE = 2 ** 63        # every literal and intermediate value must be smaller


def evaluate(expr: str, names: dict, pending=()):
    """Evaluate an arithmetic expression over ``names`` (dotted names like ``teacher.N`` allowed).

    Not ``eval``: only numeric literals, names, arithmetic operators and the functions in _FUNCS.
    Bounded: at most MAX_EXPR_CHARS characters and MAX_EXPR_NODES syntax nodes, and every literal
    and intermediate value below 2**63 in magnitude (finite for floats), so no expression can run
    for long or fill the memory (``9**9**9**9`` is refused before it is computed).
    """
    if len(expr) > MAX_EXPR_CHARS:
        raise ValueError(f"expression of {len(expr)} characters is too long (allowed: at most "
                         f"{MAX_EXPR_CHARS})")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError:
        raise ValueError(f"cannot parse expression {expr!r}") from None
    except (RecursionError, MemoryError):
        raise ValueError(f"expression {expr[:40]!r}... is nested too deeply") from None
    n_nodes = sum(1 for _ in ast.walk(tree))
    if n_nodes > MAX_EXPR_NODES:
        raise ValueError(f"expression {expr[:40]!r}... has {n_nodes} terms; allowed: at most {MAX_EXPR_NODES}")

    def bounded(v):
        if isinstance(v, float) and not math.isfinite(v) or isinstance(v, (int, float)) and abs(v) >= MAX_MAGNITUDE:
            raise ValueError(f"value out of range in {expr!r}: {_short_num(v)} (allowed: finite, "
                             "|value| < 2**63)")
        return v

    def name_of(node):
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            base = name_of(node.value)
            return None if base is None else f"{base}.{node.attr}"
        return None

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
                and not isinstance(node.value, bool):
            return bounded(node.value)
        if isinstance(node, (ast.Name, ast.Attribute)):
            name = name_of(node)
            if name is None:
                raise ValueError(f"unsupported syntax in {expr!r}")
            if name in pending:
                raise _Unresolved(name)
            if name not in names:
                close = difflib.get_close_matches(name, list(names), 1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"unknown name {name!r} in expression {expr!r}{hint}")
            value = names[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name}={value!r} in expression {expr!r} is not a number")
            return value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow):
                if abs(b) > 64:
                    raise ValueError(f"exponent {_short_num(b)} too large in {expr!r} (allowed: |exponent| <= 64)")
                if abs(a) > 1 and b > 0 and b * math.log2(abs(a)) >= 63:
                    raise ValueError(f"value out of range in {expr!r}: {_short_num(a)}**{_short_num(b)} "
                                     "(allowed: finite, |value| < 2**63)")
            try:
                out = _BINOPS[type(node.op)](a, b)
            except ZeroDivisionError:
                raise ValueError(f"division by zero in {expr!r}") from None
            except OverflowError:
                raise ValueError(f"value out of range in {expr!r} (allowed: finite, |value| < 2**63)") from None
            if isinstance(out, complex):
                raise ValueError(f"{expr!r} gives a complex number (a negative number to a fractional power)")
            return bounded(out)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNOPS:
            return _UNOPS[type(node.op)](ev(node.operand))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS \
                and not node.keywords:
            try:
                return bounded(_FUNCS[node.func.id](*[ev(a) for a in node.args]))
            except (TypeError, ValueError, OverflowError) as e:
                if str(e).startswith("value out of range"):
                    raise
                raise ValueError(f"{node.func.id}(...) failed in {expr!r}: {e}") from None
        raise ValueError(f"unsupported syntax in {expr!r}; allowed: numbers, parameter names, "
                         f"+ - * / // % **, {', '.join(_FUNCS)}")

    return ev(tree)


def _short_num(v) -> str:
    from ._validate import show
    return show(v) if isinstance(v, int) else f"{v:.6g}"


def _names_in(expr: str) -> set:
    """Names an expression refers to (dotted names joined), for telling variables from typos."""
    if len(expr) > MAX_EXPR_CHARS:
        return set()
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except (SyntaxError, RecursionError, MemoryError):
        return set()
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            out.add(f"{node.value.id}.{node.attr}")
        elif isinstance(node, ast.Name):
            out.add(node.id)
    return out


# --------------------------------------------------------------------------------------------
# Loading and validation

def load_config(path) -> Sweep:
    """Read, validate and expand a sweep config; raises ConfigError with a one-line message."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    return parse_config(text, path=str(path))


def parse_config(text: str, path: str = "<config>") -> Sweep:
    try:
        cfg = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    ctx = _Ctx(path, text)
    return _build(cfg, ctx)


class _Ctx:
    """Formats errors as 'file:line: key.path: message' (line found by scanning the TOML text)."""

    def __init__(self, path, text):
        self.path, self.lines = path, text.splitlines()

    def line_of(self, keypath: str):
        parts = re.sub(r"\[\d+\]$", "", keypath).split(".")
        # the key may itself be dotted ("student.d" in [grid]): try every split table/key
        for cut in range(len(parts), -1, -1):     # cut = len(parts): the key is a table header
            table, key = ".".join(parts[:cut]), ".".join(parts[cut:])
            n = self._find(table, key)
            if n:
                return n
        return None

    def _find(self, table, key):
        current = ""
        key_re = re.compile(r'^\s*(?:"%s"|\'%s\'|%s)\s*=' % ((re.escape(key),) * 3))
        header_re = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?")
        for i, line in enumerate(self.lines, 1):
            h = header_re.match(line)
            if h:
                current = h.group(1).replace('"', "").replace("'", "").replace(" ", "")
                if not key and current == table:
                    return i
                continue
            if key and current == table and key_re.match(line):
                return i
        return None

    def error(self, keypath, message) -> ConfigError:
        line = self.line_of(keypath) if keypath else None
        where = f"{self.path}:{line}" if line else self.path
        return ConfigError(f"{where}: {keypath}: {message}" if keypath else f"{where}: {message}")


@dataclass
class _Axis:
    """One grid axis: parallel lists of values for one or more keys (several keys = a zip group)."""
    keys: list                       # grid keys as written
    values: list                     # list of lists, values[j][i] = value of keys[j] at index i
    source: list                     # config key path of each key (for messages)

    def __len__(self):
        return len(self.values[0])


def _build(cfg: dict, ctx: _Ctx) -> Sweep:
    for top in cfg:
        if top not in TOP_LEVEL:
            raise ctx.error(top, _unknown("section", top, TOP_LEVEL))
    for section in SECTIONS:
        if section not in cfg:
            if section == "run":
                raise ctx.error("", "missing [run] section (it needs steps, epochs or alpha)")
            raise ctx.error("", f"missing [{section}] section")
        if not isinstance(cfg[section], dict):
            raise ctx.error(section, "must be a table")
    fixed = {s: dict(cfg[s]) for s in SECTIONS}
    grid = cfg.get("grid", {})
    if not isinstance(grid, dict):
        raise ctx.error("grid", "must be a table")

    # kinds; their keys are checked against the kind's keywords below (per task, since grids may vary kind)
    for section in ("teacher", "student", "algorithm", "data"):
        default = "Committee" if section in ("teacher", "student") else None
        kind = fixed[section].setdefault("kind", default)
        if kind is None:
            if "kind" not in grid and f"{section}.kind" not in grid:
                raise ctx.error(f"{section}", f"missing kind; choose one of {', '.join(map(repr, _kinds(section)))}")
        for key in fixed[section]:
            if key != "kind" and key not in _all_fields(section):
                raise ctx.error(f"{section}.{key}", _unknown("parameter", key, _all_fields(section)))
    for key in fixed["run"]:
        if key not in RUN_FIELDS:
            raise ctx.error(f"run.{key}", _unknown("parameter", key, RUN_FIELDS))

    axes, derived = _grid_axes(grid, ctx)
    shorts = _short_names()
    # which names the expressions use: a non-parameter grid key used there is a helper variable
    used = set().union(*(_names_in(e) for e, _ in derived.values())) if derived else set()
    targets, sources = {}, {}                     # grid key -> list of dotted paths ([] = variable)
    for key, src in [(k, s) for ax in axes for k, s in zip(ax.keys, ax.source)] + \
                    [(k, src) for k, (_, src) in derived.items()]:
        if key in targets:
            raise ctx.error(src, f"{key!r} is given twice in the grid ({sources[key]} and {src})")
        targets[key], sources[key] = _resolve_key(key, src, shorts, used, ctx), src
    seen = {}
    for key, paths in targets.items():
        for p in paths:
            if p in seen:
                raise ctx.error(sources[key], f"sets {p}, which grid key {seen[p]!r} sets already")
            seen[p] = key
            section, name = p.split(".", 1)
            if name in fixed[section] and not (name == "kind" and section in ("teacher", "student")
                                               and "kind" not in cfg[section]):
                # a fixed value and a grid axis for the same parameter: almost surely a mistake
                raise ctx.error(sources[key], f"{p} is also given in [{section}] "
                                f"(line {ctx.line_of(f'{section}.{name}') or '?'}); remove one of them")

    tasks, keys_seen = [], {}
    for idx in itertools.product(*[range(len(ax)) for ax in axes]):
        task = _make_task(fixed, axes, idx, derived, targets, ctx)
        if task.key in keys_seen:
            raise ctx.error("grid", f"grid points {keys_seen[task.key]} and {task.label()} give the "
                            "same task (identical parameters); remove the duplicate value")
        keys_seen[task.key] = task.label()
        tasks.append(task)
    axes_out = {k: list(vals) for ax in axes for k, vals in zip(ax.keys, ax.values)}
    return Sweep(tasks=tasks, axes=axes_out, path=ctx.path, text="\n".join(ctx.lines))


def _grid_axes(grid: dict, ctx: _Ctx):
    axes, derived = [], {}

    def as_list(key, src, value):
        if isinstance(value, list):
            if not value:
                raise ctx.error(src, "empty list; give at least one value")
            return value
        if isinstance(value, dict):
            raise ctx.error(src, "a table is not a grid axis; give a list of values")
        return [value]                       # a single value: a one-point axis

    for key, value in grid.items():
        src = f"grid.{key}"
        if key == "zip":
            groups = value if isinstance(value, list) else [value]
            for gi, group in enumerate(groups):
                gsrc = "grid.zip" if isinstance(value, dict) else f"grid.zip[{gi}]"
                if not isinstance(group, dict) or not group:
                    raise ctx.error(gsrc, "must be a table of equal-length lists, e.g. N = [10, 20], d = [5, 10]")
                lists = {}
                for k, v in group.items():
                    if isinstance(v, str):
                        raise ctx.error(f"{gsrc}.{k}", "derived values (strings) belong in [grid], not in a zip group")
                    lists[k] = as_list(k, f"{gsrc}.{k}", v)
                lengths = {k: len(v) for k, v in lists.items()}
                if len(set(lengths.values())) > 1:
                    raise ctx.error(gsrc, "zipped lists have different lengths ("
                                    + ", ".join(f"{k}: {n}" for k, n in lengths.items()) + ")")
                axes.append(_Axis(list(lists), list(lists.values()), [f"{gsrc}.{k}" for k in lists]))
        elif isinstance(value, str):
            derived[key] = (value, src)
        else:
            axes.append(_Axis([key], [as_list(key, src, value)], [src]))
    return axes, derived


def _resolve_key(key, src, shorts, used, ctx):
    if "." in key:
        section, name = key.split(".", 1)
        if section not in SECTIONS:
            raise ctx.error(src, f"{section!r} is not a section; use one of {', '.join(SECTIONS)}")
        if name != "kind" and name not in _all_fields(section):
            raise ctx.error(src, _unknown(f"parameter of [{section}]", name, _all_fields(section)))
        if name == "kind" and section == "run":
            raise ctx.error(src, "[run] has no kind")
        return [key]
    if key in shorts:
        return shorts[key]
    if key == "kind":
        raise ctx.error(src, "ambiguous; write teacher.kind, student.kind, algorithm.kind or data.kind")
    if key in used:
        return []                           # helper variable for expressions
    raise ctx.error(src, _unknown("parameter", key, list(shorts)) +
                    " (a grid key that is no parameter must be used by a derived expression)")


def _unknown(what, name, allowed) -> str:
    allowed = sorted(allowed)
    close = difflib.get_close_matches(name, allowed, 1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown {what} {name!r}; {hint}allowed: {', '.join(allowed)}"


def _make_task(fixed, axes, idx, derived, targets, ctx) -> Task:
    values = {s: dict(fixed[s]) for s in SECTIONS}
    origin = {}                                   # dotted path -> config key path it came from
    for s in SECTIONS:
        for k in values[s]:
            origin[f"{s}.{k}"] = f"{s}.{k}"
    variables, point = {}, {}
    for ax, i in zip(axes, idx):
        for key, vals, src in zip(ax.keys, ax.values, ax.source):
            v = vals[i]
            where = f"{src}[{i}]" if len(vals) > 1 or isinstance(v, list) else src
            _assign(key, v, where, targets, point, variables, values, origin)

    # derived values, in dependency order
    pending = dict(derived)
    while pending:
        progressed = False
        for key in list(pending):
            expr, src = pending[key]
            names = _namespace(values, variables)
            try:
                v = evaluate(expr, names, pending=set(pending) - {key} | _pending_paths(pending, targets, key))
            except _Unresolved:
                continue
            except ValueError as e:
                raise ctx.error(src, str(e)) from None
            if isinstance(v, float) and v.is_integer() and _wants_int(targets[key], values):
                v = int(v)
            _assign(key, v, src, targets, point, variables, values, origin)
            del pending[key]
            progressed = True
        if not progressed:
            raise ctx.error(f"grid.{next(iter(pending))}",
                            f"derived values depend on each other in a cycle: {', '.join(pending)}")

    at = f" (grid point {', '.join(f'{k}={_short(v)}' for k, v in point.items())})" if point else ""
    params = {}
    for section in ("teacher", "student", "algorithm", "data"):
        spec = dict(values[section])
        kind = spec.get("kind")
        kinds = _kinds(section)
        if kind not in kinds:
            raise ctx.error(origin.get(f"{section}.kind", section),
                            f"kind={kind!r} is not allowed; choose one of {', '.join(map(repr, kinds))}")
        allowed = _fields(section, kind)
        for k in spec:
            if k != "kind" and k not in allowed:
                raise ctx.error(origin.get(f"{section}.{k}", f"{section}.{k}"),
                                f"{k!r} is not a parameter of {kind}; allowed: {', '.join(sorted(allowed))}")
        try:
            if section in ("teacher", "student"):
                obj = Committee.from_dict(spec)
            elif section == "algorithm":
                obj = algorithm_from_dict(spec)
            else:
                obj = data_from_dict(spec)
        except (ValueError, TypeError) as e:
            raise _spec_error(ctx, section, e, origin, spec, at) from None
        params[section] = _canonical(obj.to_dict(), allowed)
        if section in ("teacher", "student") and kind == "Perceptron":
            params[section]["kind"] = "Perceptron"
    params["run"] = _check_run(values["run"], origin, ctx, at, params)
    if variables:
        params["vars"] = {k: variables[k] for k in sorted(variables)}
    return Task(key=task_key(params), params=params, point=point)


def _assign(key, v, where, targets, point, variables, values, origin):
    """Give grid key ``key`` the value v: in the task's point, as a helper variable when it sets
    no parameter, and in every parameter it targets (remembering where the value came from)."""
    point[key] = v
    if not targets[key]:
        variables[key] = v
    for p in targets[key]:
        section, name = p.split(".", 1)
        values[section][name] = v
        origin[p] = where


def _pending_paths(pending, targets, me):
    """Dotted and short names that a still-pending derived value will set (not yet readable)."""
    out = set()
    for k in pending:
        if k == me:
            continue
        for p in targets[k]:
            out.add(p)
            out.add(p.split(".", 1)[1])
    return out


def _namespace(values, variables) -> dict:
    """Names an expression may use: section.key (with spec defaults), unambiguous short keys, variables."""
    names = {}
    for section in SECTIONS:
        kind = values[section].get("kind")
        try:
            defaults = _defaults(section, kind)
        except (KeyError, TypeError):
            defaults = {}
        for k, v in {**defaults, **values[section]}.items():
            names[f"{section}.{k}"] = v
    shorts = {}
    for section in SECTIONS:
        for k, v in values[section].items():
            shorts.setdefault(k, []).append(names[f"{section}.{k}"])
        for k, v in _defaults_safe(section, values[section].get("kind")).items():
            if k not in values[section]:
                shorts.setdefault(k, []).append(v)
    for k, vs in shorts.items():
        if k != "kind" and all(v == vs[0] for v in vs):     # teacher.N == student.N -> N
            names[k] = vs[0]
    names.update(variables)
    return names


def _defaults(section, kind) -> dict:
    if section == "run":
        return {k: d for k, (d, _) in RUN_FIELDS.items()}
    cls = Committee if section in ("teacher", "student") else _kinds(section)[kind]
    allowed = _fields(section, kind)
    return {f.name: f.default for f in dataclasses.fields(cls)
            if f.name in allowed and f.default is not dataclasses.MISSING}


def _defaults_safe(section, kind):
    try:
        return _defaults(section, kind)
    except (KeyError, TypeError):
        return {}


def _wants_int(paths, values) -> bool:
    for p in paths:
        section, name = p.split(".", 1)
        kind = values[section].get("kind")
        try:
            t = _fields(section, kind).get(name, "")
        except KeyError:
            t = ""
        if t.startswith("int"):
            return True
    return False


def _spec_error(ctx, section, err, origin, spec, at):
    """Prefix a spec's ValueError with the key path of the value it names: a grid entry if the
    message names a grid value (``d=4 does not divide N=13`` -> ``grid.N[1]``), else the fixed key."""
    msg = str(err)
    if isinstance(err, TypeError):
        msg = f"bad parameters for {spec.get('kind')}: {msg}"
    named = [n for n in re.findall(r"\b(\w+)=", msg) if f"{section}.{n}" in origin]
    from_grid = [n for n in named if origin[f"{section}.{n}"].startswith("grid")]
    name = (from_grid or named or [None])[0]
    src = origin[f"{section}.{name}"] if name else section
    value = spec.get(name) if name else None
    if isinstance(value, str) and re.search(r"[*/+()-]", value):
        msg += " (derived values, i.e. expressions, belong in [grid])"
    elif isinstance(value, str) and re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", value):
        msg += f" (a number in quotes is a string in TOML: write {name} = {value.strip()})"
    if not src.startswith("grid"):
        msg += at
    return ctx.error(src, msg)


def _canonical(d: dict, types: dict) -> dict:
    """A spec dict with float-typed fields as floats, so 1 and 1.0 give the same hash."""
    out = {}
    for k, v in d.items():
        t = types.get(k, "")
        if t.startswith("float") and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[k] = v
    return out


def _check_run(run: dict, origin, ctx, at, params) -> dict:
    from . import _validate as v
    out = {k: d for k, (d, _) in RUN_FIELDS.items()}
    out.update(run)

    def fail(name, message):
        src = origin.get(f"run.{name}", "run")
        return ctx.error(src, message + ("" if src.startswith("grid") else at))

    checks = {
        "steps": lambda x: v.integer("steps", x, 1, allow_none=True),
        "epochs": lambda x: v.integer("epochs", x, 1, allow_none=True),
        "alpha": lambda x: v.real("alpha", x, 0, low_open=True, allow_none=True),
        "replicas": lambda x: v.integer("replicas", x, 1),
        "seed": lambda x: v.integer("seed", x, 0),
        "init_scale": lambda x: v.real("init_scale", x, 0),     # 0: a zero start (Hebb curves)
        "record": lambda x: [v.integer(f"record[{i}]", y, 0) for i, y in enumerate(x)]
                            if isinstance(x, list) else v.integer("record", x, 2),
        "success_eps": lambda x: v.real("success_eps", x, 0, allow_none=True),
    }
    for name, check in checks.items():
        try:
            out[name] = check(out[name])
        except ValueError as e:
            raise fail(name, str(e)) from None
    given = [k for k in ("steps", "epochs", "alpha") if out[k] is not None]
    if len(given) != 1:
        raise fail(given[-1] if given else "steps",
                   "give exactly one of steps, epochs, alpha"
                   + (f"; got {', '.join(given)}" if given else "; got none"))
    if out["epochs"] is not None and params["data"]["kind"] != "Dataset":
        raise fail("epochs", "epochs needs a finite training set (data kind = 'Dataset'); use steps or alpha")
    stop = out["stop"]
    if stop is not None and not isinstance(stop, str):
        raise fail("stop", f"stop={stop!r} must be a string naming a stop rule")
    rules = getattr(_train_module(), "STOP_RULES", None)
    if rules is not None and stop not in rules:
        raise fail("stop", f"stop={stop!r} is not allowed; choose one of {', '.join(map(repr, rules))}")
    # ps.train's own argument checks (stop rules, init_scale with binary weights, ...), without
    # training, when the driver offers them: every task is checked before anything runs.
    check = _train_check()
    if check is not None:
        try:
            check(*build_specs({**params, "run": out})[:4], **out)
        except ValueError as e:
            m = re.match(r"^(\w+)=", str(e))
            name = m.group(1) if m else None
            if name in RUN_FIELDS:
                raise fail(name, str(e)) from None
            for section in ("algorithm", "data", "student", "teacher"):
                if name and f"{section}.{name}" in origin:      # e.g. batch_size, label_noise
                    src = origin[f"{section}.{name}"]
                    raise ctx.error(src, str(e) + ("" if src.startswith("grid") else at)) from None
            raise fail("stop" if "stop" in str(e) else "run", str(e)) from None
    return out


def _train_module():
    import importlib
    return importlib.import_module("physsgd.train")     # the module (physsgd.train is the function)


def _train_check():
    return getattr(_train_module(), "check_args", None)


def task_key(params: dict) -> str:
    """Stable task id: first 16 hex digits of the sha256 of the canonical JSON of its parameters."""
    return hashlib.sha256(canonical_json(params).encode()).hexdigest()[:16]


def shard(tasks: list, i: int, n: int) -> list:
    """The i-th (0-based) of n deterministic round-robin slices of the task list."""
    if not (isinstance(n, int) and n >= 1 and isinstance(i, int) and 0 <= i < n):
        raise ValueError(f"shard {i}/{n}: need 0 <= i < n")
    return tasks[i::n]


_round_robin = shard      # for run(), whose keyword ``shard`` hides this function


def parse_shard(text: str):
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m or not (int(m[2]) >= 1 and 0 <= int(m[1]) < int(m[2])):
        raise ValueError(f"--shard {text!r}: expected i/n with 0 <= i < n, e.g. 0/4")
    return int(m[1]), int(m[2])


def build_specs(params: dict):
    """Rebuild (teacher, student, algo, data, run keywords) from a task's canonical params."""
    teacher = Committee.from_dict(params["teacher"])
    student = Committee.from_dict(params["student"])
    algo = algorithm_from_dict(params["algorithm"])
    data = data_from_dict(params["data"])
    return teacher, student, algo, data, dict(params["run"])


def _short(v):
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


@dataclass
class TaskOutcome:
    """What a worker reports back (small and picklable; the arrays stay in the file)."""
    key: str
    status: str                    # "done" | "diverged" | "failed" | "skipped"
    wall_time: float = 0.0
    error: str = ""
    host: str = ""
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# The one entry point that runs a sweep (used by `physsgd run`, `physsgd quickstart`, the studies)

def run(config, out, *, shard=None, executor="local", workers=None, threads=None, scheduler=None,
        slurm=None, progress=None, quiet=False, merge=None):
    """Run a sweep into the task directory ``out``, computing only what is missing; returns a
    ``physsgd.executors.RunReport``.

    config: a TOML path, or a Sweep (``load_config`` / ``parse_config``).
    shard: None, "i/n" or (i, n): only the i-th (0-based) of n round-robin slices of the tasks.
    executor: "local" (processes; ``workers=1`` runs in this process), "inline", "dask" (needs
        ``scheduler``: an address or a scheduler JSON file), "slurm" / "submitit-local" (``slurm``:
        dict of submitit parameters, e.g. {"slurm_partition": "short", "timeout_min": 30}).
    workers, threads: tasks in parallel and numba threads per task (default: from the cores).
    progress: None: a progress bar on a terminal, one line per task otherwise, plus status lines
        (all on stderr); False: print nothing; a callable ``progress(task, outcome, report)``
        called after every task instead of the default display (status lines still printed).
    quiet: print only failures, damaged files and errors.
    merge: a file path: once every task of the sweep is finished, merge ``out`` into it
        (``report.merged`` is then the ``taskdir.MergeReport``); ignored for a shard.

    A task that fails does not raise: see ``report.failed`` / ``report.ok``. Raises ConfigError
    (bad config, nothing run), ``executors.SweepIOError`` (a result cannot be written, e.g. a full
    disk), ``executors.SweepError`` (lost scheduler, dying workers) and ``executors.Interrupted``
    (SIGINT / SIGTERM; ``exit_code`` 130 / 143); finished task files are kept in every case, and
    calling ``run`` again resumes.
    """
    import os
    import sys

    from . import executors, taskdir
    sw = config if isinstance(config, Sweep) else load_config(config)
    tasks, label = sw.tasks, ""
    if shard is not None:
        i, n = parse_shard(shard) if isinstance(shard, str) else tuple(shard)
        tasks = _round_robin(sw.tasks, i, n)
        label = f" (shard {i}/{n} of {len(sw.tasks)})"
    silent = progress is False
    say_all = not silent and not quiet

    def say(msg):
        if say_all:
            print(msg, file=sys.stderr, flush=True)

    display = None
    if progress is None:
        display = executors.Progress(len(tasks), quiet=quiet or silent)
        callback = display
    elif callable(progress):
        callback = progress
    else:
        callback = None

    def notice(message, kind="info", **info):
        if silent:
            return
        if kind == "plan":
            if display is not None:
                display.n = display.already = info["skipped"]
            message = f"physsgd run: {info['total']} tasks{label}, {message}"
        if display is not None:
            display.notice(message, kind=kind, **{k: v for k, v in info.items() if k == "line"})
        elif kind == "damaged" or (not quiet and kind != "compile-tick"):
            print(message, file=sys.stderr, flush=True)

    try:
        report = executors.run_tasks(tasks, out, executor=executor, workers=workers, threads=threads,
                                     scheduler=scheduler, slurm=slurm, progress=callback, notice=notice)
    finally:
        if display is not None:
            display.close()
    if report.removed_temps:
        say(f"removed {len(report.removed_temps)} temp file(s) left by killed runs")
    say(report.summary())
    if report.failed and not silent:
        first = report.failed[0]
        task = next((t for t in tasks if t.key == first.key), None)
        print(f"physsgd: {len(report.failed)} task(s) failed, e.g. {first.key} "
              f"({task.label() if task else ''}): {first.error}; their files were not written; "
              "re-run the same command to resume (it retries them)", file=sys.stderr, flush=True)
    if merge is not None:
        if shard is not None:
            say("merge skipped for a shard: merge once every shard is done "
                f"(physsgd merge {report.out_dir} -o {merge})")
        elif not report.complete:
            missing = report.total - report.finished
            say(f"not merged: {missing} task(s) are not finished (failed, or running in another "
                f"run); merge once all are done (physsgd merge {report.out_dir} -o {merge})")
        else:
            report.merged = taskdir.merge([report.out_dir], os.fspath(merge))
            for d in report.merged.damaged:
                print(f"physsgd: damaged, not merged: {d}", file=sys.stderr, flush=True)
            say(f"merged {report.merged.n_tasks} tasks into {merge}")
    return report

