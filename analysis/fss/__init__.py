"""Finite-size-scaling data collapse with the Houdayer-Hartmann quality and a stat + sys error
budget, split as ScalingCollapse.jl splits it:

* :mod:`.data` -- long-format input, validated and sorted (shared with the crossings);
* :mod:`.quality` -- the compiled Houdayer-Hartmann kernel and the guarded objective;
* :mod:`.problem` -- the problem: data, free parameters, guards, S(theta);
* :mod:`.optimise` -- global scan + multistart Nelder-Mead, the self-consistent window;
* :mod:`.errors` -- bootstrap, S+1 widths, and which parameters are not determined;
* :mod:`.systematics` -- variant refits and drifts for the systematic error;
* :mod:`.result` -- :class:`CollapseResult`;
* :mod:`.pipeline` -- :func:`collapse`, which strings them together.
"""
from .data import FSSData, validate_long_data
from .pipeline import collapse
from .problem import Bounds, CollapseProblem, ScaledData
from .result import CollapseResult

__all__ = ["collapse", "CollapseResult", "CollapseProblem", "ScaledData", "Bounds",
           "validate_long_data", "FSSData"]
