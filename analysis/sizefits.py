"""Per size, where the observable crosses a level: the sigmoid fits of one size.

Success data (booleans, or fractions with trial counts) are fitted by binomial maximum likelihood
with a logistic or probit curve in the fit coordinate u = log(control) (or the control itself);
any other observable by least squares of a sigmoid with free asymptotes on the cell means; the
isotonic interpolation is the model-free alternative. Bootstrap resamples are drawn within every
(size, control) cell of replicas.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special
from scipy.optimize import least_squares

from .fitting import binomial_error
from .table import Table

__all__ = ["METHODS"]   # the helpers below are shared with analysis.critical

METHODS = ("logistic", "probit", "interpolate")
_RIDGE = 1.0 / 50.0 ** 2          # weak prior on the standardised slope: keeps perfectly separated
                                  # data (a step between two controls) finite, negligible otherwise

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
            return binomial_error(self.k, self.n)      # never exactly 0 at p = 0 or 1
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
                          sy=_sem_floor(cells, binomial_error(ki, cells.n)),
                          start=start)
        else:
            f = _fit_size(cells, method, level, bounds, y=boot["y"][i], sy=_sem_floor(cells, boot["sy"][i]),
                          start=start)
        uc[i] = f.uc
    return central, uc


def _label(control: str) -> str:
    """A derived control "batch_size/d" reads "(batch_size/d)" before a suffix like _c."""
    return f"({control})" if any(op in control for op in "*/") else control
