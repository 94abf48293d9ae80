"""analysis: transitions, finite-size scaling, power laws and figures from result tables.

Works on plain arrays and on physsgd's HDF5 files (or anyone's data in the same long format);
never imports the simulator kernels.

Modules: ``table`` (load, aggregate, Table), ``sizefits`` (per-size sigmoid fits), ``critical``
(critical_point: limit or growth), ``stationary`` (thresholds from both starts), ``lifetimes``,
``order`` (transition_order), ``fss`` (collapse),
``crossings``, ``powerlaw``, ``budget`` (stat + sys errors, "not determined"), ``fitting`` (the
shared line / extrapolation / error floor / robust spread), ``plots``, ``report`` (analyze).
"""
from . import fitting, plots
from .budget import Drift, Variant
from .controls import parse_control, with_control
from .critical import CriticalPoint, critical_point
from .crossings import CrossingResult, crossings
from .fss import CollapseProblem, CollapseResult, collapse
from .powerlaw import PowerLawFit, power_law
from .report import Report, analyze
from .table import Table, aggregate, load, wilson_interval
from .stationary import Thresholds, thresholds
from .lifetimes import Lifetimes, Survival, lifetimes
from .order import OrderDiagnosis, transition_order

__all__ = ["Table", "load", "aggregate", "wilson_interval", "critical_point", "CriticalPoint",
           "transition_order", "OrderDiagnosis", "power_law", "PowerLawFit", "analyze", "Report",
           "plots", "fitting", "Variant", "Drift", "collapse", "CollapseResult", "CollapseProblem",
           "crossings", "CrossingResult", "parse_control", "with_control", "thresholds", "Thresholds",
           "lifetimes", "Lifetimes", "Survival"]
