"""The result of a collapse: built once by :func:`analysis.fss.collapse`, never rewritten."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..budget import describe_variant, format_estimate
from .problem import CollapseProblem, ScaledData

__all__ = ["CollapseResult"]

SYMBOLS = {"xc": "x_c", "nu": "nu", "zeta": "zeta", "b": "b", "omega": "omega"}


@dataclass(frozen=True)
class CollapseResult:
    """Outcome of :func:`analysis.collapse`. Errors are dicts parameter -> value; fixed parameters
    have 0, parameters the data do not determine (``undetermined``) have NaN."""
    xc: float
    nu: float
    zeta: float
    b: float | None
    omega: float | None
    values: dict
    quality: float                      # Houdayer-Hartmann S at the optimum (≈ 1 for a good collapse)
    n_points: int                       # points with a master curve (terms of S)
    free: tuple
    errors: dict                        # total: stat ⊕ sys (NaN where undetermined)
    stat_errors: dict                   # bootstrap spread (times sqrt(S) when S > 1)
    sys_errors: dict                    # budget.systematic_errors over ``variants``
    s1_widths: dict                     # autoScale S+1 widths (others fixed), for comparison
    undetermined: dict = field(default_factory=dict)    # parameter -> why the data do not fix it
    variants: list = field(default_factory=list)        # budget.Variant refits behind sys_errors
    drift: dict = field(default_factory=dict)           # parameter -> budget.Drift versus L_min
    unidentified: list = field(default_factory=list)    # variant refits pinned at a guard (not in sys)
    bootstrap_values: np.ndarray | None = field(default=None, repr=False)   # (n_boot, n_free)
    n_bootstrap_failed: int = 0
    poor_collapse: bool = False         # S_min > POOR_S with >= POOR_MIN_POINTS terms
    at_bound: list = field(default_factory=list)   # free parameters of the central fit pinned at a guard
    notes: list = field(default_factory=list)
    problem: CollapseProblem | None = field(default=None, repr=False)

    @property
    def failed(self) -> bool:
        """No free parameter is determined: the fit is not a result (drawn as such)."""
        return all(p in self.undetermined for p in self.free)

    def scaled(self) -> ScaledData:
        """Scaled x, y, dy per data point (input order) at the optimum."""
        return self.problem.scaled(self.values)

    def format(self, p: str, digits: int = 6) -> str:
        """One parameter as a summary line (value and budget, or "not determined (reason)")."""
        if p not in self.free:
            return format_estimate(p, self.values[p], fixed=True, digits=digits)
        return format_estimate(p, self.values[p], self.stat_errors.get(p), self.sys_errors.get(p),
                               self.errors.get(p), reason=self.undetermined.get(p), digits=digits)

    def summary(self) -> str:
        lines = ["Finite-size-scaling collapse  y·L^(-zeta/nu) = F((x-xc)·L^(1/nu))"
                 + (" · (1 + b·L^(-omega))" if self.b is not None else ""),
                 f"  sizes: {[float(s) for s in self.problem.data.sizes]}, points with master curve: "
                 f"{self.n_points}, quality S = {self.quality:.3f}"]
        if self.failed:
            why = next(iter(self.undetermined.values()))
            lines.append(f"  FAILED, no parameter is determined: {why}")
            lines += ["  " + self.format(p) for p in self.values if p not in self.free]
            lines.append(f"  not determined: {', '.join(self.free)} (the optimiser stopped at "
                         + ", ".join(f"{p} = {self.values[p]:.4g}" for p in self.free)
                         + "; not estimates)")
            return "\n".join(lines)
        if self.poor_collapse:
            lines.append(f"  warning: S_min = {self.quality:.3g} >> 1: the data do not collapse within their "
                         "errors (wrong form, corrections, or underestimated dy); the straight-line master "
                         "curve then biases the parameters; statistical errors are scaled by sqrt(S_min)")
        for p in self.values:
            line = "  " + self.format(p)
            if p in self.free and p not in self.undetermined:
                line += f"   [S+1 width {self.s1_widths.get(p, np.nan):.2g}]"
            lines.append(line)
        for v in self.variants:
            lines.append("  variant " + describe_variant(v, self.values, self.stat_errors, self.free)
                         + (f"; S = {v.quality:.3g}" if v.quality is not None else ""))
        for v in self.unidentified:
            lines.append(f"  variant {v.label!r} not used: {', '.join(v.at_bound)} at the edge of its "
                         "allowed range (not identified by the data)")
        for p, dr in self.drift.items():
            if dr.monotone and p not in self.undetermined:
                lines.append(f"  drift: {p} moves monotonically as small sizes are dropped; extrapolated "
                             f"{dr.extrapolated:.5g} ± {dr.extrapolated_error:.2g} ({dr.note})")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def plot(self, ax=None):
        """Collapse plot (analysis.plots.collapse_plot): scaled data per size, the parameters on
        the figure, a failed fit hatched and annotated."""
        from ..plots import collapse_plot
        return collapse_plot(self, ax=ax)
