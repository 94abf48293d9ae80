"""Derived controls: a ratio or product of two columns, e.g. ``"batch_size/d"``.

A scaled control tests a scaling hypothesis directly: if m_c grows like d, the critical value of
m/d has a finite large-size limit that can be extrapolated. The expression is parsed by a tiny
grammar (``NAME op NAME`` with op ``/`` or ``*``; names are column names, dots allowed), never
evaluated as Python.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

__all__ = ["DerivedControl", "parse_control", "with_control"]

_NAME = r"[A-Za-z_][A-Za-z0-9_.]*"
_EXPR = re.compile(rf"^\s*({_NAME})\s*([*/])\s*({_NAME})\s*$")


@dataclass(frozen=True)
class DerivedControl:
    left: str
    op: str                        # "/" or "*"
    right: str

    @property
    def name(self) -> str:         # the canonical column name, e.g. "batch_size/d"
        return f"{self.left}{self.op}{self.right}"

    @property
    def columns(self) -> tuple:
        return (self.left, self.right)

    def values(self, table) -> np.ndarray:
        a = np.asarray(table[self.left], float)
        b = np.asarray(table[self.right], float)
        if self.op == "*":
            return a * b
        if np.any(b == 0):
            raise ValueError(f"control {self.name!r}: column {self.right!r} is 0 in "
                             f"{int(np.sum(b == 0))} rows")
        return a / b


def parse_control(expr: str) -> DerivedControl | None:
    """``"a/b"`` or ``"a*b"`` -> DerivedControl; a plain column name -> None.

    Raises ValueError for anything else that contains an operator (e.g. three factors, a number,
    parentheses): only a ratio or a product of two columns is supported."""
    if not isinstance(expr, str):
        raise ValueError(f"control must be a string, got {type(expr).__name__}")
    m = _EXPR.match(expr)
    if m:
        return DerivedControl(m.group(1), m.group(2), m.group(3))
    if re.fullmatch(rf"\s*{_NAME}\s*", expr):
        return None
    raise ValueError(f"control {expr!r}: expected a column name or a ratio / product of two "
                     "columns such as 'batch_size/d'")


def with_control(table, control: str):
    """``(table, name)``: the table with the derived column added when ``control`` is an
    expression whose two columns exist (a column of that exact name wins), else unchanged."""
    if control in table:
        return table, control
    dc = parse_control(control)
    if dc is None:
        return table, control      # a plain name: the caller's column check reports it if missing
    for c in dc.columns:
        table._check(c)
    return table.with_column(dc.name, dc.values(table)), dc.name


def components(control: str) -> tuple:
    """The columns a control is made of (itself when plain)."""
    try:
        dc = parse_control(control)
    except ValueError:
        return (control,)
    return dc.columns if dc is not None else (control,)
