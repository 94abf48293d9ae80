"""Calibration of the analysis error bars on data with known answers (issue 13).

Families of data sets, each with exact values:

* ``synthetic``: a zero-dimension success probability P = F(u) + L^-omega G(u) (per replica
  Bernoulli draws, u = (x - x_c) L^(1/nu), F logistic with F(0) != 1/2, G a bump: a correction to
  scaling that shifts both the crossings and the level crossings) and an observable with
  zeta != 0, y = L^(zeta/nu) [F(u) + 0.2 + L^-omega G(u)] with 1 % noise; x_c = 0.5, nu = 1.3,
  zeta = 0.4, omega = 1.
* ``perc_open`` / ``perc_periodic``: 2D site percolation by Newman-Ziff (tests/percolation_data.py):
  spanning (open) or x-wrapping (periodic) per replica and the largest-cluster fraction (collapsed
  in the window (-1.5, 1) of autoScale's example); p_c = 0.5927460508, nu = 4/3,
  zeta = -beta = -5/36 for the largest cluster. 200 replicas per (L, p) cell, 11 p per size.
* ``ising``: 2D Ising by Wolff (tests/ising_data.py): Binder cumulant and |m|; T_c = 2.269185,
  nu = 1, zeta = -beta = -1/8 for |m|.

Sizes: synthetic and Ising 8, 12, 16, 24, 32, 64 (3 sizes: 8, 16, 32; 4: 8, 16, 32, 64);
percolation 16, 24, 32, 64, 128, 256 (3: 16, 32, 128; 4: 16, 32, 128, 256).
Every data set is generated for six sizes; the 3- and 4-size analyses use subsets of it (so within
one (family, number of sizes) the sets are independent, which is what each coverage number needs).
Estimators are called as a user would, with their defaults (only ``bootstrap`` is set, see BOOT):
``collapse`` (zeta fixed to 0 for zero-dimension observables, free otherwise), ``crossings`` on
zero-dimension observables and ``critical_point`` on per-replica binary outcomes.

Coverage of an estimate is whether the exact value lies inside value +- 2 x total error. An estimate
reported as not determined makes no claim: it is counted apart (column "n.d.") and left out of the
coverage; a parameter the estimator does not estimate by design (nu of critical_point with three
sizes, where it is assumed) is not counted at all. "width" is the median of error / |value - exact| (1.48 for calibrated Gaussian errors;
larger means wider intervals than needed).

Regenerate the README table (datasets cached under $PHYSSGD_CALIBRATION_CACHE, default
``.calibration-cache/`` at the repository root; results of unchanged analysis code are cached too)::

    PYTHONPATH=. python tests/calibration.py --table [--sets 24] [--workers 2]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import ising_data  # noqa: E402
import percolation_data  # noqa: E402

BOOT = dict(collapse=100, crossings=200, critical_point=200)   # bootstrap replicas per estimator
N_SETS = 16                                                    # default sets per family
SUBSETS = {3: (0, 2, 4), 4: (0, 2, 4, 5), 6: (0, 1, 2, 3, 4, 5)}   # indices into the six sizes
LARGEST_WINDOW = (-1.5, 1.0)     # scaled-x window of the largest-cluster collapse


def cache_dir():
    return os.environ.get("PHYSSGD_CALIBRATION_CACHE", os.path.join(ROOT, ".calibration-cache"))


# ---------------------------------------------------------------------------------- families
@dataclass(frozen=True)
class Family:
    name: str
    sizes: tuple                 # the six sizes
    truth: dict                  # analysis label -> {parameter: exact value}


SYN = dict(xc=0.5, nu=1.3, zeta=0.4, omega=1.0)
FAMILIES = {
    "synthetic": Family("synthetic", (8, 12, 16, 24, 32, 64), {
        "collapse P (zeta=0)": {"xc": SYN["xc"], "nu": SYN["nu"]},
        "collapse y (zeta free)": {"xc": SYN["xc"], "nu": SYN["nu"], "zeta": SYN["zeta"]},
        "crossings P": {"x_inf": SYN["xc"], "nu": SYN["nu"]},
        "critical_point P": {"xc_inf": SYN["xc"], "nu": SYN["nu"]}}),
    "perc_open": Family("perc_open", (16, 24, 32, 64, 128, 256), {
        "collapse spanning (zeta=0)": {"xc": percolation_data.PC, "nu": percolation_data.NU},
        "collapse largest cluster (zeta free)": {"xc": percolation_data.PC, "nu": percolation_data.NU,
                                                 "zeta": -percolation_data.BETA},
        "crossings spanning": {"x_inf": percolation_data.PC, "nu": percolation_data.NU},
        # the level 1/2 is the crossing height (Cardy): the shift exponent of x_{1/2}(L) is
        # 1/nu + omega, not 1/nu, so only xc_inf has an exact value
        "critical_point spanning": {"xc_inf": percolation_data.PC}}),
    "perc_periodic": Family("perc_periodic", (16, 24, 32, 64, 128, 256), {
        "collapse wrapping (zeta=0)": {"xc": percolation_data.PC, "nu": percolation_data.NU},
        "collapse largest cluster (zeta free)": {"xc": percolation_data.PC, "nu": percolation_data.NU,
                                                 "zeta": -percolation_data.BETA},
        "crossings wrapping": {"x_inf": percolation_data.PC, "nu": percolation_data.NU},
        # level 1/2 != R^(h)(p_c) = 0.521: x_{1/2}(L) - p_c ~ L^(-1/nu)
        "critical_point wrapping": {"xc_inf": percolation_data.PC, "nu": percolation_data.NU}}),
    "ising": Family("ising", (8, 12, 16, 24, 32, 64), {
        "collapse Binder U (zeta=0)": {"xc": ising_data.TC, "nu": ising_data.NU},
        "collapse |m| (zeta free)": {"xc": ising_data.TC, "nu": ising_data.NU, "zeta": -ising_data.BETA},
        "crossings Binder U": {"x_inf": ising_data.TC, "nu": ising_data.NU}}),
}


def _jittered(rng, x_grid):
    step = np.diff(x_grid).mean()
    return np.sort(x_grid + rng.uniform(-0.4, 0.4) + 0.25 * step * rng.uniform(-1, 1, len(x_grid)))


def _synthetic(seed, sizes, n_rep=300):
    """Binary replicas of P = F(u) + L^-omega G(u) and a zeta != 0 observable (1 % noise)."""
    rng = np.random.default_rng(seed)
    xc, nu, zeta, omega = SYN["xc"], SYN["nu"], SYN["zeta"], SYN["omega"]
    F = lambda u: 1.0 / (1.0 + np.exp(-(u + 0.5)))       # F(0) = 0.62: level 1/2 crosses at u* = -0.5
    G = lambda u: 0.8 * np.exp(-0.5 * (u + 0.3) ** 2)
    rep = {"L": [], "x": [], "hit": []}
    pts = {"L": [], "x": [], "y": [], "dy": []}
    for L in sizes:
        xs = xc + _jittered(rng, np.linspace(-3.0, 2.5, 12)) * L ** (-1.0 / nu)
        u = (xs - xc) * L ** (1.0 / nu)
        P = np.clip(F(u) + L ** -omega * G(u), 0.0, 1.0)
        for xi, pi in zip(xs, P):
            rep["L"].append(np.full(n_rep, L, float))
            rep["x"].append(np.full(n_rep, xi))
            rep["hit"].append(rng.random(n_rep) < pi)
        y = L ** (zeta / nu) * (F(u) + 0.2 + L ** -omega * G(u))
        dy = 0.01 * y
        pts["L"].append(np.full(len(xs), L, float))
        pts["x"].append(xs)
        pts["y"].append(y + dy * rng.standard_normal(len(xs)))
        pts["dy"].append(dy)
    out = {k: np.concatenate(v) for k, v in rep.items()}
    out.update({"y_" + k: np.concatenate(v) for k, v in pts.items()})
    return out


def _percolation(seed, sizes, periodic, n_rep=200):
    rng = np.random.default_rng(seed)
    parts = []
    for L in sizes:
        xg = _jittered(rng, np.linspace(-2.0, 2.0, 11))
        parts.append(percolation_data.cached_generate(
            os.path.join(cache_dir(), "percolation"), sizes=(L,), x_grid=xg, n_rep=n_rep,
            periodic=periodic, seed=int(rng.integers(2 ** 31))))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _ising(seed, sizes, n_meas=3000):
    rng = np.random.default_rng(seed)
    parts = []
    for L in sizes:
        xg = _jittered(rng, np.linspace(-1.8, 2.2, 9))
        parts.append(ising_data.cached_ising(os.path.join(cache_dir(), "ising"), sizes=(L,),
                                             x_grid=xg, n_meas=n_meas, n_therm=300,
                                             seed=int(rng.integers(2 ** 31))))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def generate(family: str, index: int):
    """The six-size data set ``index`` of ``family`` (deterministic; percolation and Ising cached)."""
    fam = FAMILIES[family]
    seed = int(hashlib.sha1(f"{family}:{index}".encode()).hexdigest()[:8], 16)
    if family == "synthetic":
        return _synthetic(seed, fam.sizes)
    if family in ("perc_open", "perc_periodic"):
        return _percolation(seed, fam.sizes, periodic=family == "perc_periodic")
    return _ising(seed, fam.sizes)


# -------------------------------------------------------------------------------- estimates
def _cells(L, x, hit):
    keys, inv = np.unique(np.stack([L, x], 1), axis=0, return_inverse=True)
    inv = inv.ravel()
    n = np.bincount(inv).astype(float)
    k = np.bincount(inv, weights=hit.astype(float))
    from analysis.fitting import binomial_error  # the floor (k + 1/2)/(n + 1): never 0 at k = 0 or n
    return keys[:, 0], keys[:, 1], k / n, binomial_error(k, n)


def _estimates(result, truth):
    und = getattr(result, "undetermined", {}) or {}
    values = getattr(result, "values", None)
    if values is None:          # pre-issue-13 CriticalPoint
        values = {"xc_inf": result.xc_inf, "nu": result.nu if not result.nu_fixed else np.nan}
    out = {}
    for p, exact in truth.items():
        if p not in values:             # not estimated by design (e.g. nu assumed with 3 sizes)
            continue
        v = float(values.get(p, np.nan))
        e = float(result.errors.get(p, np.nan))
        reason = und.get(p)
        if reason is None and not (np.isfinite(v) and np.isfinite(e) and e > 0):
            reason = "no finite value or error"
        out[p] = dict(value=v, error=e, exact=float(exact), determined=reason is None,
                      reason=reason or "", quality=float(getattr(result, "quality", np.nan)),
                      n_terms=int(getattr(result, "n_points", 0) or 0))
    return out


def analyse(family: str, data, n_sizes: int):
    """{analysis label: {parameter: estimate dict}} for one data set restricted to n_sizes sizes."""
    import analysis as an
    fam = FAMILIES[family]
    sizes = np.array([fam.sizes[i] for i in SUBSETS[n_sizes]], float)
    res = {}

    def run(label, estimator, fn):
        if label not in fam.truth:
            return
        try:
            r = fn()
        except ValueError as exc:         # the estimator refused: nothing is claimed
            res[label] = {p: dict(value=np.nan, error=np.nan, exact=float(t), determined=False,
                                  reason=f"refused: {exc}"[:200]) for p, t in fam.truth[label].items()}
            return
        res[label] = _estimates(r, fam.truth[label])
        for d in res[label].values():
            d["estimator"] = estimator

    if family == "ising":
        sel = np.isin(data["size"], sizes)
        L, T = data["size"][sel], data["T"][sel]
        run("collapse Binder U (zeta=0)", "collapse", lambda: an.collapse(
            L, T, data["U"][sel], data["dU"][sel], fixed={"zeta": 0.0}, bootstrap=BOOT["collapse"]))
        run("collapse |m| (zeta free)", "collapse", lambda: an.collapse(
            L, T, data["m"][sel], data["dm"][sel], bootstrap=BOOT["collapse"]))
        run("crossings Binder U", "crossings", lambda: an.crossings(
            L, T, data["U"][sel], data["dU"][sel], bootstrap=BOOT["crossings"]))
    else:
        xkey = "x" if family == "synthetic" else "p"
        name = {"synthetic": "P", "perc_open": "spanning", "perc_periodic": "wrapping"}[family]
        sel = np.isin(data["L"], sizes)
        Lr, xr, hr = data["L"][sel], data[xkey][sel], data["hit"][sel]
        L, x, y, dy = _cells(Lr, xr, hr)
        zlabel = f"collapse {name} (zeta=0)"
        run(zlabel, "collapse", lambda: an.collapse(L, x, y, dy, fixed={"zeta": 0.0},
                                                    bootstrap=BOOT["collapse"]))
        run(f"crossings {name}", "crossings", lambda: an.crossings(L, x, y, dy,
                                                                   bootstrap=BOOT["crossings"]))
        tab = an.Table.from_arrays(L=Lr, x=xr, hit=hr)
        run(f"critical_point {name}", "critical_point", lambda: an.critical_point(
            tab, control="x", size="L", observable="hit", bootstrap=BOOT["critical_point"]))
        if family == "synthetic":
            s2 = np.isin(data["y_L"], sizes)
            run("collapse y (zeta free)", "collapse", lambda: an.collapse(
                data["y_L"][s2], data["y_x"][s2], data["y_y"][s2], data["y_dy"][s2],
                bootstrap=BOOT["collapse"]))
        else:
            lk = _cells(Lr, xr, np.zeros(len(Lr), bool))
            keys = np.stack([Lr, xr], 1)
            cell_keys = np.stack([lk[0], lk[1]], 1)
            mean = np.array([data["largest"][sel][np.all(keys == c, axis=1)].mean() for c in cell_keys])
            sem = np.array([data["largest"][sel][np.all(keys == c, axis=1)].std(ddof=1) /
                            np.sqrt(np.sum(np.all(keys == c, axis=1))) for c in cell_keys])
            # the largest cluster does not scale deep in the disordered phase (P_max ~ log L / L^2):
            # the window of autoScale's percolation example (SCIENCE.md 5.2)
            run("collapse largest cluster (zeta free)", "collapse", lambda: an.collapse(
                lk[0], lk[1], mean, sem, x_window=LARGEST_WINDOW, bootstrap=BOOT["collapse"]))
    return res


def _code_key():
    """Hash of the analysis package and of this file: results are reused while both are unchanged."""
    h = hashlib.sha1()
    pkg = os.path.join(ROOT, "analysis")
    for dirpath, _, files in sorted(os.walk(pkg)):
        for f in sorted(files):
            if f.endswith(".py"):
                with open(os.path.join(dirpath, f), "rb") as fh:
                    h.update(fh.read())
    for f in ("calibration.py", "percolation_data.py", "ising_data.py"):
        with open(os.path.join(HERE, f), "rb") as fh:
            h.update(fh.read())
    h.update(json.dumps(BOOT, sort_keys=True).encode())
    return h.hexdigest()[:16]


def task(args):
    """All analyses of one (family, index): rows of estimates."""
    family, index, key, reuse = args
    path = os.path.join(cache_dir(), "results", key, f"{family}_{index:03d}.json")
    if reuse and os.path.exists(path):
        with open(path) as fh:
            return json.load(fh)
    t0 = time.time()
    data = generate(family, index)
    t_gen = time.time() - t0
    rows = []
    for n_sizes in SUBSETS:
        for label, ests in analyse(family, data, n_sizes).items():
            for p, d in ests.items():
                rows.append(dict(d, family=family, index=index, n_sizes=n_sizes, analysis=label,
                                 parameter=p, estimator=d.get("estimator", label.split()[0])))
    rows.append(dict(family=family, index=index, generate_seconds=round(t_gen, 1),
                     analyse_seconds=round(time.time() - t0 - t_gen, 1)))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as fh:
        json.dump(rows, fh)
    os.replace(path + ".tmp", path)
    return rows


def run(families=None, n_sets=N_SETS, workers=1, reuse=True, progress=True):
    families = list(families or FAMILIES)
    key = _code_key()
    jobs = [(f, i, key, reuse) for i in range(n_sets) for f in families]
    rows = []
    t0 = time.time()
    if workers > 1:
        import multiprocessing as mp
        with mp.get_context("spawn").Pool(workers) as pool:
            for k, r in enumerate(pool.imap_unordered(task, jobs)):
                rows += r
                if progress:
                    print(f"[{k + 1}/{len(jobs)}] {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    else:
        for k, j in enumerate(jobs):
            rows += task(j)
            if progress:
                print(f"[{k + 1}/{len(jobs)}] {j[0]} #{j[1]} {time.time() - t0:.0f}s", file=sys.stderr,
                      flush=True)
    return [r for r in rows if "parameter" in r]


# ------------------------------------------------------------------------------------ summary
def binomial_sd(k, n):
    return math.sqrt(max(k, 0.5) * max(n - k, 0.5) / n ** 3) if n else float("nan")


def coverage(rows, k_sigma=2.0):
    """{hits, n, determined, total, width} over ``rows``."""
    det = [r for r in rows if r["determined"]]
    hits = sum(abs(r["value"] - r["exact"]) <= k_sigma * r["error"] for r in det)
    ratios = [r["error"] / abs(r["value"] - r["exact"]) for r in det if r["value"] != r["exact"]]
    return dict(hits=hits, n=len(det), total=len(rows), width=float(np.median(ratios)) if ratios else np.nan)


def table(rows) -> str:
    """Markdown: per estimator, family and number of sizes, pooled over parameters."""
    lines = ["| estimator | family | sizes | sets | estimates | n.d. | coverage (2σ) | width |",
             "|---|---|---|---|---|---|---|---|"]
    groups = {}
    for r in rows:
        groups.setdefault((r["estimator"], r["family"], r["n_sizes"]), []).append(r)
    for est in ("collapse", "crossings", "critical_point"):
        for (e, fam, ns), g in sorted(groups.items()):
            if e != est:
                continue
            c = coverage(g)
            sets = len({r["index"] for r in g})
            cov = (f"{c['hits'] / c['n']:.0%} ± {binomial_sd(c['hits'], c['n']):.0%} ({c['hits']}/{c['n']})"
                   if c["n"] else "–")
            lines.append(f"| {e} | {fam} | {ns} | {sets} | {c['total']} | {c['total'] - c['n']} | {cov} | "
                         f"{c['width']:.2f} |")
        allr = [r for r in rows if r["estimator"] == est]
        if allr:
            c = coverage(allr)
            lines.append(f"| **{est}** | all | | | {c['total']} | {c['total'] - c['n']} | "
                         f"**{c['hits'] / max(c['n'], 1):.1%}** ± {binomial_sd(c['hits'], c['n']):.1%} "
                         f"({c['hits']}/{c['n']}) | {c['width']:.2f} |")
    return "\n".join(lines)


def misses(rows, k_sigma=2.0):
    out = []
    for r in rows:
        if r["determined"] and abs(r["value"] - r["exact"]) > k_sigma * r["error"]:
            out.append(f"{r['family']} #{r['index']} {r['n_sizes']} sizes {r['analysis']} {r['parameter']}: "
                       f"{r['value']:.6g} ± {r['error']:.2g} vs {r['exact']:.6g} "
                       f"({(r['value'] - r['exact']) / r['error']:+.1f} σ)")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", action="store_true", help="print the markdown coverage table")
    ap.add_argument("--sets", type=int, default=N_SETS, help=f"data sets per family (default {N_SETS})")
    ap.add_argument("--families", nargs="*", default=None, help=f"subset of {list(FAMILIES)}")
    ap.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    ap.add_argument("--no-reuse", action="store_true", help="recompute cached results")
    ap.add_argument("--misses", action="store_true", help="list the estimates outside 2 sigma")
    ap.add_argument("--json", help="write all rows to this file")
    a = ap.parse_args(argv)
    t0 = time.time()
    rows = run(a.families, a.sets, a.workers, reuse=not a.no_reuse)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=0)
    if a.table:
        import subprocess
        try:
            commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True).stdout.strip()
        except OSError:
            commit = "?"
        print(f"Calibration {time.strftime('%Y-%m-%d')}, commit {commit}, {a.sets} data sets per family, "
              f"bootstrap {BOOT}; {time.time() - t0:.0f} s\n")
        print(table(rows))
    if a.misses:
        print("\n".join(misses(rows)))
    for r in rows:
        if not r["determined"] and a.misses:
            print(f"n.d.: {r['family']} #{r['index']} {r['n_sizes']} {r['analysis']} {r['parameter']}: {r['reason']}")


if __name__ == "__main__":
    main()
