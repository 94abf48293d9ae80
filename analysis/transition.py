"""Critical control values of a transition and their finite-size extrapolation.

``critical_point``: per size N, the control value (e.g. the mini-batch size m) where the
success probability (or a mean order parameter) crosses ``level``. Success data are fitted by
binomial maximum likelihood with a logistic or probit curve in log(control) (or control); the
isotonic-interpolation estimate is the model-free alternative. Errors come from a bootstrap over
replicas; the spread between fit forms is a systematic error. The per-size values are then
extrapolated, m_c(N) = m_c(inf) + a N^(-1/nu), with the issue-6 error budget (``analysis.budget``).

The order of the transition (first order or continuous) is ``analysis.order.transition_order``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import special, stats
from scipy.optimize import least_squares

from .controls import with_control
from .budget import Drift, Variant, drift as budget_drift, systematic_errors, total_errors
from .table import Table
from ._validate import validated

__all__ = ["CriticalPoint", "LimitForm", "critical_point", "METHODS"]

METHODS = ("logistic", "probit", "interpolate")
_RIDGE = 1.0 / 50.0 ** 2          # weak prior on the standardised slope: keeps perfectly separated
                                  # data (a step between two controls) finite, negligible otherwise
_OMEGA_GRID = np.geomspace(0.1, 4.0, 161)   # 1/nu range searched when nu is free
_MIN_SIZES_FREE_NU = 4


# ------------------------------------------------------------------------------------ input
@dataclass
class _Cells:
    """Data of one size, by control value (sorted)."""
    x: np.ndarray                  # control values (C,)
    u: np.ndarray                  # fit coordinate: log(x) or x
    binary: bool
    k: np.ndarray | None = None    # successes (C,)       binary
    n: np.ndarray | None = None    # trials (C,)
    values: list | None = None     # per-cell replica values     continuous

    def means(self):
        if self.binary:
            return self.k / self.n
        return np.array([v.mean() for v in self.values])

    def sems(self):
        if self.binary:
            p = (self.k + 0.5) / (self.n + 1.0)      # never exactly 0 at p = 0 or 1
            return np.sqrt(p * (1 - p) / self.n)
        return np.array([v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else np.nan for v in self.values])


def _as_table(data) -> Table:
    if isinstance(data, Table):
        return data
    if isinstance(data, dict):
        return Table.from_arrays(**data)
    raise ValueError(f"expected an analysis.Table or a dict of arrays; got {type(data).__name__}")


def _cells_by_size(table, control, size, observable, log_control, trials=None):
    """Validate and split the data into per-size cells; returns (sizes, [cells], log_control)."""
    t = _as_table(table)
    for name in (control, size, observable) + ((trials,) if trials else ()):
        t._check(name)
    xs = t[control].astype(float)
    Ns = t[size].astype(float)
    ys = t[observable]
    if len(t) == 0:
        raise ValueError("no data rows")
    for name, a in ((control, xs), (size, Ns)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"column {name!r} contains NaN or inf")
    binary = ys.dtype == bool or trials is not None or (
        ys.dtype.kind in "iuf" and np.all(np.isin(ys[np.isfinite(ys.astype(float))], (0, 1))))
    yf = ys.astype(float)
    if not np.all(np.isfinite(yf)):
        raise ValueError(f"column {observable!r} contains NaN or inf in {int(np.sum(~np.isfinite(yf)))} "
                         "rows; drop them first (e.g. table.where(np.isfinite(table[...])))")
    nt = None
    if trials is not None:
        nt = t[trials].astype(float)
        if np.any(nt <= 0) or np.any(yf < 0) or np.any(yf > 1):
            raise ValueError(f"with trials={trials!r}, {observable!r} must be a fraction in [0, 1] "
                             "and the trials > 0")
    if log_control is None:   # positive controls spanning a decade or more (like m) -> log scale
        log_control = bool(np.all(xs > 0) and xs.max() / xs.min() >= 10)
    if log_control and np.any(xs <= 0):
        raise ValueError(f"log_control=True needs {control!r} > 0; got min {xs.min()}")
    sizes = np.unique(Ns)
    out = []
    for N in sizes:
        sel = Ns == N
        x_here = xs[sel]
        xv = np.unique(x_here)
        if len(xv) < 2:
            raise ValueError(f"{size}={N:g} has a single {control} value ({xv[0]:g}); "
                             "need at least 2 to locate a transition")
        u = np.log(xv) if log_control else xv.copy()
        if binary:
            if nt is None:
                k = np.array([yf[sel][x_here == v].sum() for v in xv])
                n = np.array([np.sum(x_here == v) for v in xv], float)
            else:
                k = np.array([(yf[sel] * nt[sel])[x_here == v].sum() for v in xv])
                n = np.array([nt[sel][x_here == v].sum() for v in xv])
            out.append(_Cells(xv, u, True, k=np.round(k), n=n))
        else:
            out.append(_Cells(xv, u, False, values=[yf[sel][x_here == v] for v in xv]))
    return sizes, out, bool(log_control)


# -------------------------------------------------------------------------- per-size fitters
def _inv_link(link, p):
    return special.logit(p) if link == "logistic" else special.ndtri(p)


def _link(link, eta):
    return special.expit(eta) if link == "logistic" else special.ndtr(eta)


def _glm(z, k, n, link, iters=80):
    """Binomial maximum likelihood of p = F(a + b z) for every row of k (B, C); Fisher scoring,
    vectorised over rows. Returns (B, 2)."""
    k = np.atleast_2d(k)
    B = k.shape[0]
    beta = np.zeros((B, 2))
    for _ in range(iters):
        eta = np.clip(beta[:, :1] + beta[:, 1:] * z, -35, 35)
        if link == "logistic":
            p = special.expit(eta)
            ratio = np.ones_like(eta)                  # f / (p (1-p)) = 1 for the logit link
            w = n * p * (1 - p)
        else:
            p = special.ndtr(eta)
            logphi = -0.5 * eta ** 2 - 0.5 * np.log(2 * np.pi)
            ratio = np.exp(logphi - special.log_ndtr(eta) - special.log_ndtr(-eta))  # stable in tails
            w = n * np.exp(logphi) * ratio
        r = (k - n * p) * ratio
        g = np.stack([r.sum(1), (r * z).sum(1) - _RIDGE * beta[:, 1]], axis=1)
        h00, h01, h11 = w.sum(1), (w * z).sum(1), (w * z * z).sum(1) + _RIDGE
        det = h00 * h11 - h01 ** 2
        det = np.where(det > 1e-300, det, 1e-300)
        step = np.stack([(h11 * g[:, 0] - h01 * g[:, 1]) / det, (h00 * g[:, 1] - h01 * g[:, 0]) / det], 1)
        norm = np.linalg.norm(step, axis=1, keepdims=True)
        step *= np.minimum(1.0, 5.0 / np.maximum(norm, 1e-300))   # damped: no overshoot far out
        beta += step
        if np.all(norm < 1e-9):
            break
    return beta


def _sigmoid_ls(z, y, sy, link, bounds, start=None):
    """Least squares of y = lo + (hi-lo) F(a + b z) (cell means with errors sy). -> (lo, hi, a, b)."""
    fixed = bounds is not None

    def model(p):
        lo, hi = bounds if fixed else p[2:]
        return lo + (hi - lo) * _link(link, p[0] + p[1] * z)

    if start is None:
        lo0, hi0 = (bounds if fixed else (y[0], y[-1]))
        if hi0 == lo0:
            hi0 = lo0 + 1e-6
        t = np.clip((y - lo0) / (hi0 - lo0), 0.05, 0.95)
        b0, a0 = np.polyfit(z, _inv_link(link, t), 1) if len(z) > 1 else (1.0, 0.0)
        start = [a0, b0] + ([] if fixed else [lo0, hi0])
    start = np.asarray(start, float)[: 2 if fixed else 4]
    res = least_squares(lambda p: (model(p) - y) / sy, start, method="lm" if len(y) > len(start) else "trf",
                        max_nfev=400)
    p = res.x
    lo, hi = bounds if fixed else p[2:]
    return np.array([lo, hi, p[0], p[1]])


def _pava(y, w):
    """Isotonic (non-decreasing) least-squares fit: pool adjacent violators."""
    vals, wts, cnt = [], [], []
    for yi, wi in zip(y, w):
        vals.append(yi); wts.append(wi); cnt.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            wsum = wts[-2] + wts[-1]
            v = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / wsum
            c = cnt[-2] + cnt[-1]
            vals[-2:], wts[-2:], cnt[-2:] = [v], [wsum], [c]
    return np.repeat(vals, cnt)


def _crossing_monotone(u, f, level):
    """u where the non-decreasing sequence f crosses level (linear interpolation; the middle of a
    plateau at exactly level); NaN if it never does."""
    below = f < level
    above = f > level
    if below.all() or above.all() or (not below.any() and not above.any()):
        return np.nan
    equal = ~below & ~above
    if equal.any():
        idx = np.flatnonzero(equal)
        return 0.5 * (u[idx[0]] + u[idx[-1]])
    j = np.argmax(above)              # first index above; j-1 is below (f is monotone)
    return u[j - 1] + (level - f[j - 1]) * (u[j] - u[j - 1]) / (f[j] - f[j - 1])


@dataclass
class _SizeFit:
    uc: float            # crossing in the fit coordinate
    width: float         # interquartile width (between the 25% and 75% points) in the fit coordinate
    params: tuple        # what the curve needs: ("glm", a, b, zmean, zscale) etc.


def _fit_size(cells: _Cells, method: str, level: float, bounds, y=None, sy=None, k=None, start=None):
    """One size, one method. ``k`` / ``y, sy`` replace the data (bootstrap)."""
    u = cells.u
    um, us = u.mean(), (u.std() or 1.0)
    z = (u - um) / us
    if method == "interpolate":
        f = (k / cells.n) if cells.binary else y
        w = cells.n if cells.binary else 1.0 / sy ** 2
        sign = 1.0 if _direction(z, f) > 0 else -1.0
        iso = sign * _pava(sign * f, w)       # monotone in the data's direction
        lo, hi = (0.0, 1.0) if cells.binary else (iso.min(), iso.max())
        uc = _crossing_monotone(u, sign * iso, sign * level)
        q25 = _crossing_monotone(u, sign * iso, sign * (lo + 0.25 * (hi - lo)))
        q75 = _crossing_monotone(u, sign * iso, sign * (lo + 0.75 * (hi - lo)))
        return _SizeFit(uc, abs(q75 - q25), ("iso", u, iso))
    if cells.binary and bounds in (None, (0.0, 1.0)):
        a, b = _glm(z, k, cells.n, method)[0]
        lo, hi = 0.0, 1.0
    else:
        lo, hi, a, b = _sigmoid_ls(z, y, sy, method, bounds, start=start)
    t = (level - lo) / (hi - lo) if hi != lo else np.nan
    if not (0 < t < 1) or b == 0:
        uc = np.nan
    else:
        uc = um + us * (_inv_link(method, t) - a) / b
    width = us * abs(_inv_link(method, 0.75) - _inv_link(method, 0.25)) / abs(b) if b else np.inf
    return _SizeFit(uc, width, ("sigmoid", method, lo, hi, a, b, um, us))


def _direction(z, f):
    return np.sign(np.cov(z, f)[0, 1]) if np.ptp(f) > 0 else 1.0


def _curve(params, u):
    """Evaluate a fitted per-size curve at fit coordinates u."""
    if params[0] == "iso":
        _, uu, iso = params
        return np.interp(u, uu, iso)
    _, link, lo, hi, a, b, um, us = params
    return lo + (hi - lo) * _link(link, a + b * (u - um) / us)


def _bootstrap_data(cells: _Cells, B: int, rng):
    """Resample replicas within every control cell; returns k (B, C) or (y, sy) (B, C)."""
    if cells.binary:
        return {"k": rng.binomial(cells.n.astype(np.int64), cells.k / cells.n, size=(B, len(cells.x)))}
    ys, ss = [], []
    for v in cells.values:
        idx = rng.integers(0, len(v), size=(B, len(v)))
        r = v[idx]
        ys.append(r.mean(1))
        ss.append(r.std(1, ddof=1) / np.sqrt(len(v)) if len(v) > 1 else np.full(B, np.nan))
    return {"y": np.stack(ys, 1), "sy": np.stack(ss, 1)}


def _sem_floor(cells: _Cells, sy):
    """Cell errors for least squares: a cell whose replicas all agree would get infinite weight."""
    means = cells.means()
    floor = max(1e-3 * np.ptp(means), 1e-12)
    sy = np.where(np.isfinite(sy), sy, np.nanmax(np.r_[sy[np.isfinite(sy)], floor]))
    return np.maximum(sy, floor)


def _fit_size_all(cells: _Cells, method: str, level, bounds, boot: dict):
    """Central fit and bootstrap crossings (in the fit coordinate) of one size with one method."""
    if cells.binary:
        central = _fit_size(cells, method, level, bounds, k=cells.k,
                            y=cells.k / cells.n, sy=_sem_floor(cells, cells.sems()))
    else:
        central = _fit_size(cells, method, level, bounds, y=cells.means(), sy=_sem_floor(cells, cells.sems()))
    B = len(next(iter(boot.values())))
    if cells.binary and method != "interpolate" and bounds in (None, (0.0, 1.0)):
        u = cells.u
        um, us = u.mean(), (u.std() or 1.0)
        z = (u - um) / us
        ab = _glm(z, boot["k"], cells.n, method)
        with np.errstate(divide="ignore", invalid="ignore"):
            uc = um + us * (_inv_link(method, level) - ab[:, 0]) / ab[:, 1]
        uc[~np.isfinite(uc)] = np.nan
        return central, uc
    uc = np.empty(B)
    start = None
    if central.params[0] == "sigmoid":
        _, _, lo, hi, a, b, _, _ = central.params
        start = [a, b, lo, hi]
    for i in range(B):
        if cells.binary:
            ki = boot["k"][i]
            f = _fit_size(cells, method, level, bounds, k=ki, y=ki / cells.n,
                          sy=_sem_floor(cells, np.sqrt((ki + .5) / (cells.n + 1) * (1 - (ki + .5) / (cells.n + 1)) / cells.n)),
                          start=start)
        else:
            f = _fit_size(cells, method, level, bounds, y=boot["y"][i], sy=_sem_floor(cells, boot["sy"][i]),
                          start=start)
        uc[i] = f.uc
    return central, uc


def _robust_sd(samples, axis=0):
    """Half the 16-84% range: the standard deviation for Gaussian samples, not ruined by the
    occasional wild bootstrap refit (free-exponent extrapolations have heavy tails)."""
    samples = np.asarray(samples, float)
    if samples.size == 0 or np.all(np.isnan(samples)):
        return np.full(samples.shape[1:] if axis == 0 and samples.ndim > 1 else (), np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN columns (no crossing) -> NaN
        q16, q84 = np.nanpercentile(samples, [16, 84], axis=axis)
    return 0.5 * (q84 - q16)


def _label(control: str) -> str:
    """A derived control "batch_size/d" reads "(batch_size/d)" before a suffix like _c."""
    return f"({control})" if any(op in control for op in "*/") else control


# ------------------------------------------------------------------------------ extrapolation
def _wls_line(t, X, w):
    """X = c + a t, weighted, for every row of X (B, k). Returns c, a, chi2 (each (B,))."""
    W = w.sum()
    mt = (w * t).sum() / W
    stt = (w * (t - mt) ** 2).sum()
    mx = (X * w).sum(-1) / W
    a = ((X - mx[..., None]) * (w * (t - mt))).sum(-1) / stt
    c = mx - a * mt
    chi2 = (w * (X - c[..., None] - a[..., None] * t) ** 2).sum(-1)
    return c, a, chi2


def _extrapolate(N, X, sig, omega=None):
    """Fit X = xinf + a N^-omega (omega fixed, or free by profiling over a grid then a parabola in
    log omega). X (B, k). Returns dict of (B,) arrays: xinf, a, omega, chi2, at_edge."""
    X = np.atleast_2d(X)
    w = 1.0 / sig ** 2
    if omega is not None:
        c, a, chi2 = _wls_line(N ** -float(omega), X, w)
        return {"xinf": c, "a": a, "omega": np.full(len(c), float(omega)), "chi2": chi2,
                "at_edge": np.zeros(len(c), bool)}
    prof = np.stack([_wls_line(N ** -om, X, w)[2] for om in _OMEGA_GRID], 1)   # (B, G)
    j = np.argmin(prof, 1)
    at_edge = (j == 0) | (j == len(_OMEGA_GRID) - 1)
    jj = np.clip(j, 1, len(_OMEGA_GRID) - 2)
    lg = np.log(_OMEGA_GRID)
    rows = np.arange(len(j))
    y0, y1, y2 = prof[rows, jj - 1], prof[rows, jj], prof[rows, jj + 1]
    denom = y0 - 2 * y1 + y2
    shift = np.where(denom > 0, 0.5 * (y0 - y2) / np.where(denom > 0, denom, 1), 0.0)
    lopt = np.where(at_edge, lg[j], lg[jj] + np.clip(shift, -1, 1) * (lg[1] - lg[0]))
    om = np.exp(lopt)
    out = {k: np.empty(len(j)) for k in ("xinf", "a", "chi2")}
    for i in range(len(j)):            # one closed-form solve per row at its own omega
        c, a, chi2 = _wls_line(N ** -om[i], X[i:i + 1], w)
        out["xinf"][i], out["a"][i], out["chi2"][i] = c[0], a[0], chi2[0]
    out["omega"] = om
    out["at_edge"] = at_edge
    return out


# ----------------------------------------------------------------------------------- result
@dataclass
class LimitForm:
    """One candidate large-N form of xc(N), fitted to the per-size values (weights 1/xc_stat^2)."""
    name: str                      # "converges" | "power" | "linear"
    formula: str
    values: dict                   # its parameters at the best fit
    chi2: float
    dof: int
    n_params: int
    pvalue: float                  # P(chi2' >= chi2); NaN when dof = 0
    aic: float                     # chi2 + 2 n_params
    bic: float                     # chi2 + n_params ln(sizes)
    at_edge: bool = False          # a parameter at the edge of its searched range (not determined)


@dataclass
class CriticalPoint:
    """Result of ``critical_point``; per-size arrays are aligned with ``sizes``."""
    control: str
    size: str
    observable: str
    level: float
    method: str
    log_control: bool
    sizes: np.ndarray
    xc: np.ndarray                 # crossing per size (control units)
    xc_stat: np.ndarray            # bootstrap error
    xc_sys: np.ndarray             # spread of the other fit forms beyond statistics
    xc_err: np.ndarray             # total
    width: np.ndarray              # interquartile transition width per size, in the fit coordinate
                                   #   (log(control) when log_control: a relative width)
    xc_by_method: dict             # method -> (k,) crossings
    xc_inf: float = np.nan
    nu: float = np.nan
    nu_fixed: bool = True          # nu was given or assumed, not fitted
    amplitude: float = np.nan      # a of m_c(N) = m_c(inf) + a N^(-1/nu); A of A N^kappa if limit == "grows"
    chi2: float = np.nan           # of the chosen large-N form (weights: xc_stat)
    dof: int = 0
    limit: str = ""                # "converges" | "grows" | "undetermined" ("" without extrapolation)
    limit_reason: str = ""         # why (AIC, boundary hit of the convergent form, kappa ~ 0)
    kappa: float = np.nan          # m_c ~ N^kappa (growth_law.kappa); when limit == "grows" xc_inf = inf
    growth_law: object = None      # GrowthLaw: kappa with its stat/sys budget (when all xc > 0)
    forms: list = field(default_factory=list)        # LimitForm candidates that were compared
    convergent: dict = field(default_factory=dict)   # when growth wins: the rejected extrapolation
    errors: dict = field(default_factory=dict)       # "xc_inf", "nu" (converges) or "kappa", "amplitude"
    stat_errors: dict = field(default_factory=dict)
    sys_errors: dict = field(default_factory=dict)
    variants: list = field(default_factory=list)     # per-size-free extrapolation variants
    drift: Drift | None = None     # monotone drift of m_c(N) with N (budget.drift)
    growth: object = None          # PowerLawFit of m_c(N) ~ N^kappa (the "power law in N" form)
    notes: list = field(default_factory=list)
    xc_samples: np.ndarray | None = field(default=None, repr=False)     # (B, k) bootstrap
    xc_inf_samples: np.ndarray | None = field(default=None, repr=False)
    _cells: list = field(default=None, repr=False)
    _fits: list = field(default=None, repr=False)

    def curve(self, i: int, x):
        """The fitted observable of size ``sizes[i]`` at control values x."""
        x = np.asarray(x, float)
        return _curve(self._fits[i].params, np.log(x) if self.log_control else x)

    def data(self, i: int):
        """(x, mean, err) of size ``sizes[i]``: cell means with errors (binomial for success)."""
        c = self._cells[i]
        return c.x, c.means(), c.sems()

    def summary(self) -> str:
        c = _label(self.control)
        L = [f"critical {self.control} where <{self.observable}> = {self.level:g} "
             f"({self.method} fit in {'log ' if self.log_control else ''}{self.control}, "
             f"bootstrap over replicas)"]
        L.append(f"  {self.size:>8} {c + '_c':>12} {'stat':>9} {'sys':>9} {'total':>9} {'width':>8}")
        for i, N in enumerate(self.sizes):
            L.append(f"  {N:>8g} {self.xc[i]:>12.5g} {self.xc_stat[i]:>9.3g} {self.xc_sys[i]:>9.3g} "
                     f"{self.xc_err[i]:>9.3g} {self.width[i]:>8.3g}")
        if self.forms:
            L.append(f"  large-{self.size} form of {c}_c({self.size}) (weights 1/stat^2):")
            for f in self.forms:
                L.append(f"    {f.name:<9} {f.formula:<19} chi2/dof = {f.chi2:.3g}/{f.dof}"
                         + (f", p = {f.pvalue:.2g}" if np.isfinite(f.pvalue) else "")
                         + f", AIC = {f.aic:.3g}, BIC = {f.bic:.3g}"
                         + (" (1/nu at the edge of its range)" if f.at_edge else ""))
            L.append(f"    -> {self.limit}: {self.limit_reason}")
        e, s, y = self.errors, self.stat_errors, self.sys_errors
        if self.limit == "grows":
            L += self._growth_lines(c, "no finite " + c + "_c(inf)")
            cv = self.convergent
            if cv and np.isfinite(cv.get("xc_inf", np.nan)):
                L.append(f"    (rejected: {c}_c(inf) = {cv['xc_inf']:.5g} ± {cv['errors']['xc_inf']:.2g} "
                         f"from x_inf + a N^(-1/nu), nu = {cv['nu']:.3g})")
        elif np.isfinite(self.xc_inf):
            how = "fixed" if self.nu_fixed else "fitted"
            L.append(f"  extrapolation {c}_c({self.size}) = {c}_c(inf) + a {self.size}^(-1/nu), "
                     f"nu {how} = {self.nu:.4g}" +
                     ("" if self.nu_fixed else f" ± {s.get('nu', np.nan):.2g} (stat) "
                      f"± {y.get('nu', np.nan):.2g} (sys) = ± {e.get('nu', np.nan):.2g} (total)"))
            L.append(f"  {c}_c(inf) = {self.xc_inf:.5g} ± {s['xc_inf']:.2g} (stat) ± {y['xc_inf']:.2g} (sys) "
                     f"= ± {e['xc_inf']:.2g} (total); a = {self.amplitude:.3g}; chi2/dof = {self.chi2:.3g}/{self.dof}")
            for v in self.variants:
                vals = ", ".join(f"{k} = {val:.5g}" for k, val in v.values.items())
                errs = ", ".join(f"{val:.2g}" for val in v.stat_errors.values())
                L.append(f"    variant {v.label}: {vals} (stat {errs})")
            if self.limit == "undetermined" and self.growth_law is not None:
                L += self._growth_lines(c, "or a finite limit: undetermined", self.growth_law)
        if self.drift is not None and len(self.drift.values) >= 3:
            if self.drift.monotone:
                L.append(f"  drift: {c}_c({self.size}) moves monotonically with {self.size} beyond errors; "
                         f"extrapolated {self.drift.extrapolated:.5g} ± {self.drift.extrapolated_error:.2g}")
            else:
                L.append(f"  drift: no monotone drift of {c}_c({self.size}) beyond errors")
        if self.growth is not None and self.limit in ("converges", ""):
            g = self.growth
            L.append(f"  power law in {self.size}: {c}_c ~ {self.size}^kappa, kappa = {g.exponent:.3g} "
                     f"± {g.errors['exponent']:.2g}" +
                     (f", chi2/dof = {g.chi2:.3g}/{g.dof}" if np.isfinite(g.pvalue) else ""))
        L += [f"  note: {n}" for n in self.notes]
        return "\n".join(L)

    def _growth_lines(self, c, tail, g=None):
        g = g or self.growth_law
        e, s, y = g.errors, g.stat_errors, g.sys_errors
        L = [f"  {c}_c grows as {self.size}^kappa, kappa = {g.kappa:.4g} ± {s['kappa']:.2g} (stat) "
             f"± {y['kappa']:.2g} (sys) = ± {e['kappa']:.2g} (total); {tail}",
             f"    amplitude A = {g.amplitude:.4g} ± {e['amplitude']:.2g}; chi2/dof = {g.chi2:.3g}/{g.dof}"]
        L += [f"    variant {v.label}: kappa = {v.values['kappa']:.4g} (stat {v.stat_errors['kappa']:.2g})"
              for v in g.variants]
        return L

    def plot(self, ax=None, kind: str = "extrapolation"):
        """kind="extrapolation": xc(N) against N^(-1/nu) with the fit; "curves": the observable
        against the control for every size with the fitted curves."""
        from .plots import critical_point_plot
        return critical_point_plot(self, ax=ax, kind=kind)


# --------------------------------------------------------------------------- critical_point
@validated                  # arguments checked first: analysis/_validate.py
def critical_point(table_or_arrays, control: str = "batch_size", size: str = "N",
                   observable: str = "success", level: float = 0.5, method: str = "logistic",
                   bootstrap: int = 300, extrapolate: bool = True, seed: int = 0,
                   log_control: bool | None = None, nu: float | None = None, bounds=None,
                   trials: str | None = None, methods=METHODS) -> CriticalPoint:
    """Per size, the control value where ``observable`` crosses ``level``; extrapolated in size.

    control: a column, or a ratio / product of two columns such as "batch_size/d" (the critical
        value of m/d has a finite limit if m_c grows like d; see ``analysis.controls``).
    table_or_arrays: an ``analysis.Table`` (or a dict of equal-length arrays) with one row per
        replica (``observable`` boolean/0-1 for success, any float for an order parameter), or
        one row per cell with ``trials`` naming the column of trial counts (observable = fraction).
    method: "logistic" | "probit" (sigmoid in the fit coordinate; binomial maximum likelihood for
        success data, least squares on cell means otherwise, with free asymptotes unless
        ``bounds=(lo, hi)``), or "interpolate" (isotonic regression, linear interpolation).
    log_control: fit in log(control); default: when the control is positive and spans >= 10x.
    bootstrap: resamples of the replicas within every (size, control) cell.
    extrapolate: fit xc(N) = xc_inf + a N^(-1/nu): nu free with >= 4 sizes (nu=None), else the
        given nu, else nu = 1 (assumed, stated in the summary and the notes).
    Errors (issue 6): per size, ``xc_stat`` (bootstrap) and ``xc_sys`` (other fit forms); for
    xc_inf the variants are the other fit forms, dropping the smallest size(s), and the
    extrapolation form (1/nu free vs fixed); ``growth`` is the alternative power law in N.
    Large-N form (``limit``): the convergent extrapolation is compared with growth, xc ~ N^kappa
    (and c + s N), by AIC and by whether the convergent fit runs 1/nu to the edge of its range.
    When growth wins, ``limit == "grows"``, ``xc_inf = inf`` and ``kappa`` carries the budget
    (stat: bootstrap; sys: other fit forms, smallest sizes dropped); ``convergent`` keeps the
    rejected extrapolation.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not allowed; choose one of {METHODS}")
    if not (0 < level < 1) and _observable_is_probability(table_or_arrays, observable, trials):
        raise ValueError(f"level={level} must lie in (0, 1) for a success probability")
    if bootstrap < 20:
        raise ValueError(f"bootstrap={bootstrap} is too few resamples (need >= 20)")
    if nu is not None and not (np.isfinite(nu) and nu > 0):
        raise ValueError(f"nu={nu} must be a positive number (or None)")
    # a derived control ("batch_size/d") becomes a column of its own
    table, control = with_control(_as_table(table_or_arrays), control)
    sizes, cells, log_control = _cells_by_size(table, control, size, observable, log_control, trials)
    if extrapolate and len(sizes) < 2:
        raise ValueError(f"a single {size} ({sizes[0]:g}) cannot be extrapolated in size; "
                         "pass extrapolate=False or add sizes")
    methods = [method] + [m for m in methods if m != method]
    rng = np.random.default_rng(seed)
    to_x = np.exp if log_control else (lambda v: v)

    k = len(sizes)
    xc = {m: np.full(k, np.nan) for m in methods}
    samples = {m: np.full((bootstrap, k), np.nan) for m in methods}
    fits, notes = [], []
    width = np.full(k, np.nan)
    for i, c in enumerate(cells):
        boot = _bootstrap_data(c, bootstrap, rng)     # shared by all methods: same resamples
        for m in methods:
            central, uc = _fit_size_all(c, m, level, bounds, boot)
            inside = c.u.min() <= central.uc <= c.u.max() if np.isfinite(central.uc) else False
            if m == method:
                fits.append(central)
                # no transition inside the data (e.g. never any success): its width is undefined,
                # not the 1e40 a flat fit's vanishing slope would give
                width[i] = central.width if inside else np.nan
            if not inside:
                if m == method:
                    notes.append(f"{size}={sizes[i]:g}: {observable} does not cross {level:g} inside the "
                                 f"{control} range [{c.x.min():g}, {c.x.max():g}] ({m})")
                continue
            xc[m][i] = to_x(central.uc)
            samples[m][:, i] = to_x(uc)
    stat = {m: _robust_sd(samples[m]) for m in methods}
    xc_c, xc_stat = xc[method], stat[method]
    bad = np.mean(~np.isfinite(samples[method]), axis=0)
    for i in np.flatnonzero(bad > 0.05):
        notes.append(f"{size}={sizes[i]:g}: {100 * bad[i]:.0f}% of bootstrap resamples found no crossing")
    xc_sys = np.zeros(k)
    for i in range(k):
        if not np.isfinite(xc_c[i]):
            xc_sys[i] = np.nan
            continue
        # Other fit forms see the same data; under the central model their expected statistical
        # deviation is sqrt(s_v^2 - s_c^2) (Hausman), which is the budget's "nested" rule.
        var = [Variant(m, {"xc": xc[m][i]}, {"xc": stat[m][i]}, nested=True) for m in methods[1:]]
        xc_sys[i] = systematic_errors({"xc": xc_c[i]}, {"xc": xc_stat[i]}, var)["xc"]
    res = CriticalPoint(control=control, size=size, observable=observable, level=level, method=method,
                        log_control=log_control, sizes=sizes, xc=xc_c, xc_stat=xc_stat, xc_sys=xc_sys,
                        xc_err=np.hypot(xc_stat, xc_sys), width=width, xc_by_method=xc,
                        notes=notes, xc_samples=samples[method], _cells=cells, _fits=fits)
    if extrapolate:
        _extrapolation_budget(res, samples, stat, methods, nu)
    return res


def _observable_is_probability(data, observable, trials) -> bool:
    if trials is not None:
        return True
    try:
        y = _as_table(data)[observable]
    except ValueError:
        return False
    return y.dtype == bool or (y.dtype.kind in "iuf" and np.all(np.isin(y[np.isfinite(y.astype(float))], (0, 1))))


def _extrapolation_budget(res: CriticalPoint, samples: dict, stat: dict, methods, nu_user):
    ok = np.isfinite(res.xc) & (res.xc_stat > 0)
    N, X, S = res.sizes[ok], res.xc[ok], res.xc_stat[ok]
    if len(N) < 2:
        res.notes.append("fewer than 2 sizes with a crossing: no extrapolation")
        return
    if len(N) < len(res.sizes):
        res.notes.append(f"extrapolation uses {res.size} = {', '.join(f'{v:g}' for v in N)} only")
    free = nu_user is None and len(N) >= _MIN_SIZES_FREE_NU
    assumed = nu_user is None and not free
    omega_c = None if free else (1.0 / nu_user if nu_user else 1.0)
    if assumed:
        res.notes.append(f"nu assumed = 1 (first-order / mean-field lore): {len(N)} sizes are too few "
                         f"to fit it (need {_MIN_SIZES_FREE_NU})")

    def boot_fit(method, cols, omega):
        Xb = samples[method][:, ok][:, cols]
        good = np.all(np.isfinite(Xb), axis=1)
        out = _extrapolate(N[cols], Xb[good], S[cols], omega)
        return out, good

    allc = np.arange(len(N))
    central = _extrapolate(N, X[None], S, omega_c)
    cb, good = boot_fit(res.method, allc, omega_c)
    if good.mean() < 0.95:
        res.notes.append(f"{100 * (1 - good.mean()):.0f}% of bootstrap resamples dropped from the "
                         "extrapolation (no crossing at some size)")
    values = {"xc_inf": float(central["xinf"][0])}
    stat_err = {"xc_inf": float(_robust_sd(cb["xinf"]))}
    if free:
        values["nu"] = float(1 / central["omega"][0])
        stat_err["nu"] = float(_robust_sd(1 / cb["omega"]))
        if central["at_edge"][0]:
            res.notes.append(f"fitted 1/nu at the edge of the searched range "
                             f"[{_OMEGA_GRID[0]:g}, {_OMEGA_GRID[-1]:g}]: nu is not determined")
    res.xc_inf_samples = cb["xinf"]
    res.xc_inf, res.nu, res.nu_fixed = values["xc_inf"], float(1 / central["omega"][0]), not free
    res.amplitude, res.chi2, res.dof = float(central["a"][0]), float(central["chi2"][0]), len(N) - (3 if free else 2)

    def variant(label, method, cols, omega, nested=True):
        c = _extrapolate(N[cols], np.atleast_2d(res.xc_by_method[method][ok][cols]), S[cols], omega)
        b, _ = boot_fit(method, cols, omega)
        vals = {"xc_inf": float(c["xinf"][0])}
        errs = {"xc_inf": float(_robust_sd(b["xinf"]))}
        if omega is None:
            vals["nu"], errs["nu"] = float(1 / c["omega"][0]), float(_robust_sd(1 / b["omega"]))
        return Variant(label, vals, errs, n_points=len(cols), nested=nested)

    variants, swapped = [], []
    for m in methods[1:]:          # other fit forms, same extrapolation
        if np.all(np.isfinite(res.xc_by_method[m][ok])):
            variants.append(variant(f"fit form {m}", m, allc, omega_c))
    for drop in (1, 2):            # smallest size(s) dropped
        cols = allc[drop:]
        if free and len(cols) >= _MIN_SIZES_FREE_NU:
            variants.append(variant(f"drop {drop} smallest {res.size}", res.method, cols, None))
        elif free and len(cols) >= 3:
            om = float(central["omega"][0])
            variants.append(variant(f"drop {drop} smallest {res.size} (1/nu fixed at {om:.3g})",
                                    res.method, cols, om))
        elif not free and len(cols) >= 2:
            variants.append(variant(f"drop {drop} smallest {res.size}", res.method, cols, omega_c))
    if free:
        # The fixed-exponent model is a special case of the central one: on the same data the
        # expected statistical deviation is sqrt(s_c^2 - s_v^2), so the roles are swapped below.
        swapped.append(variant("1/nu fixed 1", res.method, allc, 1.0))
    elif nu_user is not None and len(N) >= _MIN_SIZES_FREE_NU:
        variants.append(variant("1/nu free", res.method, allc, None))
    else:                          # nu assumed: how much hangs on the assumption
        for om in (0.5, 2.0):
            variants.append(variant(f"1/nu = {om:g}", res.method, allc, om, nested=False))
    sys_err = systematic_errors(values, stat_err, variants)
    for v in swapped:
        for p in values:
            if p in v.values:
                s = systematic_errors({p: v.values[p]}, {p: v.stat_errors[p]},
                                      [Variant(v.label, {p: values[p]}, {p: stat_err[p]}, nested=True)])
                sys_err[p] = max(sys_err.get(p, 0.0), s[p])
    res.variants = variants + swapped
    res.stat_errors, res.sys_errors = stat_err, sys_err
    res.errors = total_errors(stat_err, sys_err)
    # with a fitted nu the drift fit would repeat the central one: use the leading 1/N shift then
    res.drift = budget_drift("xc", N, X, S, nu_hint=res.nu if res.nu_fixed else None)
    if len(N) >= 2 and np.all(X > 0):
        from .powerlaw import power_law
        try:
            res.growth = power_law(N, X, S, bootstrap=200, seed=0)
        except ValueError as exc:   # e.g. too few points; the growth form is optional
            res.notes.append(f"power law in N not fitted: {exc}")
    _limit_selection(res, samples, methods, ok, N, X, S, central, free)


# ------------------------------------------------------------------ large-N form: converge or grow
def _form(name, formula, values, chi2, n, n_params, at_edge=False) -> "LimitForm":
    dof = n - n_params
    return LimitForm(name, formula, values, float(chi2), dof, n_params,
                     float(stats.chi2.sf(chi2, dof)) if dof > 0 else np.nan,
                     float(chi2 + 2 * n_params), float(chi2 + n_params * np.log(n)), bool(at_edge))


def _power_rows(N, X, sig_log):
    """ln X = ln A + kappa ln N for every row of X (B, k), weights 1/sig_log^2 (sig_log = S/X of
    the central values, so every row is weighted alike). Rows with X <= 0 give NaN.
    Returns ln A, kappa, chi2 (each (B,))."""
    X = np.atleast_2d(X)
    with np.errstate(divide="ignore", invalid="ignore"):
        lX = np.where(X > 0, np.log(np.where(X > 0, X, 1.0)), np.nan)
    return _wls_line(np.log(N), lX, 1.0 / sig_log ** 2)


def _limit_forms(N, X, S, central, free) -> dict:
    """The candidate large-N forms of xc(N) fitted to the per-size values (weights 1/S^2;
    the power law in log space with errors S/X, the same weights to first order in S/X)."""
    k = len(N)
    om = float(central["omega"][0])
    # only the lower edge matters here: there the convergent form wants 1/nu -> 0, i.e.
    # x_inf -> -a -> infinity, the degenerate limit in which it mimics a growth
    low_edge = bool(free and om <= _OMEGA_GRID[0] * (1 + 1e-9))
    forms = {"converges": _form("converges", "x_inf + a N^(-1/nu)",
                                {"xc_inf": float(central["xinf"][0]), "a": float(central["a"][0]),
                                 "nu": 1 / om},
                                central["chi2"][0], k, 3 if free else 2, at_edge=low_edge)}
    if np.all(X > 0):
        c, kap, chi2 = _power_rows(N, X[None], S / X)
        forms["power"] = _form("power", "A N^kappa", {"kappa": float(kap[0]), "amplitude": float(np.exp(c[0]))},
                               chi2[0], k, 2)
    c, s, chi2 = _wls_line(N.astype(float), X[None], 1.0 / S ** 2)
    forms["linear"] = _form("linear", "c + s N", {"c": float(c[0]), "s": float(s[0])}, chi2[0], k, 2)
    return forms


def _growing(forms: dict) -> list:
    """The growth forms whose fit actually grows (a power law with kappa < 0 converges to 0)."""
    return [f for f in (forms.get("power"), forms.get("linear"))
            if f is not None and (f.values.get("kappa", 0) > 0 or f.values.get("s", 0) > 0)]


_AIC_DECISIVE = 4.0    # Burnham & Anderson: dAIC > 4 leaves "considerably less support" to the other form


def _choose_limit(forms: dict, kappa: float, kappa_err: float) -> tuple[str, str]:
    """("converges" | "grows" | "undetermined", why).

    Growth needs kappa > 0 by two total errors; without it xc(N) converges (a power law with
    kappa < 0 converges to 0). Then the AIC difference between the convergent form and the best
    growth form decides when it exceeds 4 either way. AIC rather than BIC: with 3-6 sizes ln k < 2
    would barely charge the convergent form for its extra exponent. A convergent fit whose 1/nu
    sits at the lower edge of its range is a growth in disguise (1/nu -> 0 with a < 0 is a
    logarithmic growth), so it never establishes a finite limit on its own.
    """
    conv = forms["converges"]
    if not (np.isfinite(kappa) and np.isfinite(kappa_err) and kappa - 2 * kappa_err > 0):
        return "converges", (f"xc(N) does not grow significantly (kappa = {kappa:.3g} ± {kappa_err:.2g})"
                             if np.isfinite(kappa) else "no power law (xc <= 0 at some size)")
    growing = _growing(forms)
    if not growing:
        return "converges", "no growth form fits with a positive slope"
    best = min(growing, key=lambda f: f.aic)
    d_aic = conv.aic - best.aic
    edge = " (its 1/nu at the lower edge of the range: x_inf not determined)" if conv.at_edge else ""
    if d_aic > _AIC_DECISIVE:
        return "grows", f"AIC prefers {best.name} growth over convergence{edge} by {d_aic:.3g}"
    if d_aic < -_AIC_DECISIVE and not conv.at_edge:
        return "converges", f"AIC prefers convergence over {best.name} growth by {-d_aic:.3g}"
    return "undetermined", (f"the data do not decide between a finite limit and growth "
                            f"(AIC of convergence{edge} - {best.name} growth = {d_aic:.3g}, "
                            f"decisive beyond ±{_AIC_DECISIVE:g})")


@dataclass
class GrowthLaw:
    """xc(N) = amplitude * N^kappa with the issue-6 budget (stat: bootstrap over replicas; sys:
    other per-size fit forms and the smallest size(s) dropped)."""
    kappa: float
    amplitude: float
    errors: dict                   # "kappa", "amplitude": total
    stat_errors: dict
    sys_errors: dict
    variants: list
    chi2: float
    dof: int


def _power_budget(res, samples, methods, ok, N, X, S) -> GrowthLaw:
    sig_log = S / X
    allc = np.arange(len(N))

    def fit(method, cols):
        xm = res.xc_by_method[method][ok][cols]
        c, kap, chi2 = _power_rows(N[cols], xm[None], sig_log[cols])
        Xb = samples[method][:, ok][:, cols]
        cb, kb, _ = _power_rows(N[cols], Xb[np.all(np.isfinite(Xb) & (Xb > 0), axis=1)], sig_log[cols])
        return ({"kappa": float(kap[0]), "amplitude": float(np.exp(c[0]))},
                {"kappa": float(_robust_sd(kb)), "amplitude": float(_robust_sd(np.exp(cb)))}, float(chi2[0]))

    values, stat_err, chi2 = fit(res.method, allc)
    variants = []
    for m in methods[1:]:
        xm = res.xc_by_method[m][ok]
        if np.all(np.isfinite(xm) & (xm > 0)):
            variants.append(Variant(f"fit form {m}", *fit(m, allc)[:2], n_points=len(N)))
    for drop in (1, 2):
        cols = allc[drop:]
        if len(cols) >= 2:
            variants.append(Variant(f"drop {drop} smallest {res.size}", *fit(res.method, cols)[:2],
                                    n_points=len(cols)))
    sys_err = systematic_errors(values, stat_err, variants)
    return GrowthLaw(values["kappa"], values["amplitude"], total_errors(stat_err, sys_err), stat_err,
                     sys_err, variants, chi2, len(N) - 2)


def _limit_selection(res, samples, methods, ok, N, X, S, central, free):
    """Convergence to a finite xc(inf) or growth xc ~ N^kappa: fit both and choose. When growth
    wins, the (meaningless) extrapolation gives way to kappa with its own error budget; when the
    data do not decide, both are reported."""
    forms = _limit_forms(N, X, S, central, free)
    res.forms = list(forms.values())
    if "power" in forms:
        res.growth_law = _power_budget(res, samples, methods, ok, N, X, S)
        res.kappa = res.growth_law.kappa
    g = res.growth_law
    res.limit, res.limit_reason = _choose_limit(forms, g.kappa if g else np.nan,
                                                g.errors["kappa"] if g else np.nan)
    if res.limit != "grows":
        return
    res.convergent = {"xc_inf": res.xc_inf, "nu": res.nu, "errors": res.errors,
                      "stat_errors": res.stat_errors, "sys_errors": res.sys_errors,
                      "variants": res.variants}
    res.xc_inf, res.nu, res.amplitude = np.inf, np.nan, g.amplitude
    res.chi2, res.dof = g.chi2, g.dof
    res.xc_inf_samples = None
    res.stat_errors, res.sys_errors, res.errors = g.stat_errors, g.sys_errors, g.errors
    res.variants = g.variants
    res.notes = [n for n in res.notes if not n.startswith("fitted 1/nu at the edge")]
