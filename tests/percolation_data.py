"""2D site percolation on the square lattice by Newman-Ziff (a test/calibration fixture, not part
of ``analysis``).

One replica at occupation probability p: draw n ~ Binomial(L^2, p), occupy the first n sites of a
random permutation one by one and merge clusters with a weighted union-find with path compression
(Newman & Ziff, PRE 64, 016706 (2001)). This samples exactly the canonical ensemble at p (every
site occupied independently with probability p), and the replicas of every (L, p) cell are
independent, so cell means have independent errors as the FSS estimators assume.

Per replica it records
  * open boundaries: whether a cluster spans from the top row to the bottom row (the spanning
    probability R_L(p) of an L x L square tends to 1/2 at p_c, Cardy);
  * periodic boundaries: whether a cluster wraps around the torus in the x direction (R^(h)_L(p)
    tends to 0.521058 at p_c, Pinson); wrapping is detected as in Newman-Ziff, with each site's
    displacement to its root: two sites of one cluster that are neighbours but whose displacements
    differ by more than one lattice step close a loop around the torus;
  * the size of the largest cluster (its fraction P_L(p) ~ L^(-beta/nu) F((p - p_c) L^(1/nu))).

Checked in tests/test_fss_calibration.py against exact enumeration of the 3 x 3 lattice (all 512
configurations, by breadth-first search: an independent implementation).
"""
from __future__ import annotations

import numpy as np
from numba import njit

PC = 0.59274605079210          # Jacobsen 2015 (SCIENCE.md 5.6)
NU = 4.0 / 3.0
BETA = 5.0 / 36.0
SPAN_AT_PC = 0.5               # open L x L square, top-bottom crossing (Cardy)
WRAP_X_AT_PC = 0.521058290     # torus, wrapping in x (Pinson)


@njit(cache=True)
def _find(parent, dx, dy, stack, i):
    """Root of i; compresses the path and leaves dx, dy of every node on it relative to the root."""
    top = 0
    r = i
    while parent[r] != r:
        stack[top] = r
        top += 1
        r = parent[r]
    # walk back from the node next to the root: each node's displacement to the root is its own
    # displacement to its parent plus the parent's (already final) displacement to the root
    for k in range(top - 1, -1, -1):
        v = stack[k]
        p = parent[v]
        if p != r:
            dx[v] += dx[p]
            dy[v] += dy[p]
        parent[v] = r
    return r


@njit(cache=True)
def _merge(keep, gone, ddx, ddy, parent, size, dx, dy, top_flag, bot_flag):
    """Attach root ``gone`` under root ``keep`` at displacement (ddx, ddy); returns ``keep``."""
    parent[gone] = keep
    dx[gone] = ddx
    dy[gone] = ddy
    size[keep] += size[gone]
    top_flag[keep] = top_flag[keep] or top_flag[gone]
    bot_flag[keep] = bot_flag[keep] or bot_flag[gone]
    return keep


@njit(cache=True)
def _replica(L, n_occ, periodic, perm, parent, size, dx, dy, top_flag, bot_flag, stack):
    """Occupy perm[:n_occ] one by one; return (spans or wraps in x, largest cluster size)."""
    N = L * L
    for s in range(N):
        parent[s] = -1                    # empty
    largest = 0
    hit = False
    for k in range(n_occ):
        s = perm[k]
        parent[s] = s
        size[s] = 1
        dx[s] = 0
        dy[s] = 0
        row = s // L
        top_flag[s] = row == 0
        bot_flag[s] = row == L - 1
        if largest < 1:
            largest = 1
        if (not periodic) and L == 1:
            hit = True
        x = s % L
        for nb in range(4):
            ex = 0
            ey = 0
            if nb == 0:
                ex = 1
            elif nb == 1:
                ex = -1
            elif nb == 2:
                ey = 1
            else:
                ey = -1
            tx = x + ex
            ty = row + ey
            if periodic:
                tx = (tx + L) % L
                ty = (ty + L) % L
            elif tx < 0 or tx >= L or ty < 0 or ty >= L:
                continue
            t = ty * L + tx
            if parent[t] < 0:
                continue
            rs = _find(parent, dx, dy, stack, s)
            rt = _find(parent, dx, dy, stack, t)
            # position of t in the unwrapped frame of s's root: pos(s) + e
            ds_x = (dx[s] if s != rs else 0) + ex
            ds_y = (dy[s] if s != rs else 0) + ey
            dt_x = dx[t] if t != rt else 0
            dt_y = dy[t] if t != rt else 0
            if rs == rt:
                if periodic and ds_x - dt_x != 0:
                    hit = True
                continue
            # union by size; the absorbed root's displacement to the new root
            if size[rs] >= size[rt]:
                root = _merge(rs, rt, ds_x - dt_x, ds_y - dt_y, parent, size, dx, dy, top_flag, bot_flag)
            else:
                root = _merge(rt, rs, dt_x - ds_x, dt_y - ds_y, parent, size, dx, dy, top_flag, bot_flag)
            if size[root] > largest:
                largest = size[root]
            if (not periodic) and top_flag[root] and bot_flag[root]:
                hit = True
        if (not periodic) and top_flag[s] and bot_flag[s]:
            hit = True                     # L = 1
    return hit, largest


@njit(cache=True)
def _cell(L, p, periodic, n_rep, seed):
    """n_rep independent replicas at occupation probability p."""
    np.random.seed(seed)
    N = L * L
    perm = np.arange(N)
    parent = np.empty(N, np.int64)
    size = np.empty(N, np.int64)
    dx = np.empty(N, np.int64)
    dy = np.empty(N, np.int64)
    top_flag = np.empty(N, np.bool_)
    bot_flag = np.empty(N, np.bool_)
    stack = np.empty(N, np.int64)
    hits = np.empty(n_rep, np.bool_)
    largest = np.empty(n_rep, np.int64)
    for r in range(n_rep):
        n_occ = np.random.binomial(N, p)
        for k in range(n_occ):            # partial Fisher-Yates: a uniform random n_occ-subset in order
            j = k + np.random.randint(N - k)
            tmp = perm[k]
            perm[k] = perm[j]
            perm[j] = tmp
        h, c = _replica(L, n_occ, periodic, perm, parent, size, dx, dy, top_flag, bot_flag, stack)
        hits[r] = h
        largest[r] = c
    return hits, largest


def sample(L: int, p: float, n_rep: int, periodic: bool = False, seed: int = 0):
    """(hit, largest_fraction) per replica: spanning (open) or x-wrapping (periodic) and the
    largest cluster's fraction of the L^2 sites."""
    hits, largest = _cell(int(L), float(p), bool(periodic), int(n_rep), int(seed) % (2 ** 31))
    return hits, largest / float(L * L)


def p_grid(L, x_grid, pc=PC, nu=NU):
    """Per-size grid p = p_c + x L^(-1/nu) (non-rectangular across sizes)."""
    return pc + np.asarray(x_grid, float) * float(L) ** (-1.0 / nu)


def generate(sizes, x_grid, n_rep, periodic=False, seed=0, jitter=0.0):
    """Per-replica long format: dict of arrays L, p, hit (bool), largest (fraction).

    ``jitter`` shifts every size's scaled grid by a uniform random amount in [-jitter, jitter] and
    every point by a quarter of the local spacing times U(-1, 1), so grids are non-rectangular and
    not centred on the exact p_c."""
    rng = np.random.default_rng(seed)
    out = {"L": [], "p": [], "hit": [], "largest": []}
    x_grid = np.asarray(x_grid, float)
    step = np.diff(x_grid).mean() if len(x_grid) > 1 else 0.0
    for a, L in enumerate(sizes):
        xg = x_grid + rng.uniform(-jitter, jitter) + 0.25 * step * rng.uniform(-1, 1, len(x_grid)) * (jitter > 0)
        for b, p in enumerate(p_grid(L, np.sort(xg))):
            p = float(np.clip(p, 0.0, 1.0))
            h, c = sample(L, p, n_rep, periodic, seed=rng.integers(2 ** 31))
            out["L"].append(np.full(n_rep, L, float))
            out["p"].append(np.full(n_rep, p))
            out["hit"].append(h)
            out["largest"].append(c)
    return {k: np.concatenate(v) for k, v in out.items()}


def cached_generate(cache_dir, **kwargs):
    """``generate(**kwargs)`` cached as .npz in ``cache_dir`` (keyed by the arguments)."""
    from ising_data import _cached
    return _cached(cache_dir, "perc_v1_", generate, kwargs, digits=9, as_float=True)


# ------------------------------------------------------------------ exact enumeration (small L)
def exact_small(L: int, p: float, periodic: bool = False):
    """Exact (P(hit), E[largest fraction]) on an L x L lattice by enumerating all 2^(L^2)
    configurations; clusters by breadth-first search with unwrapped coordinates (wrapping: a
    neighbour reached again at another unwrapped x). Independent of the union-find above."""
    N = L * L
    if N > 16:
        raise ValueError(f"exact_small enumerates 2^(L^2) configurations; L={L} is too large")
    P_hit = 0.0
    E_big = 0.0
    for mask in range(1 << N):
        occ = [(mask >> s) & 1 for s in range(N)]
        k = sum(occ)
        w = p ** k * (1 - p) ** (N - k)
        seen = {}
        hit = False
        big = 0
        for s0 in range(N):
            if not occ[s0] or s0 in seen:
                continue
            seen[s0] = (s0 % L, s0 // L)
            queue = [s0]
            members = 0
            rows = set()
            while queue:
                s = queue.pop()
                members += 1
                ux, uy = seen[s]
                rows.add(s // L)
                for ex, ey in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                    x, y = s % L + ex, s // L + ey
                    if periodic:
                        x, y = x % L, y % L
                    elif not (0 <= x < L and 0 <= y < L):
                        continue
                    t = y * L + x
                    if not occ[t]:
                        continue
                    pos = (ux + ex, uy + ey)
                    if t in seen:
                        if periodic and seen[t][0] != pos[0]:
                            hit = True
                    else:
                        seen[t] = pos
                        queue.append(t)
            big = max(big, members)
            if not periodic and 0 in rows and L - 1 in rows:
                hit = True
        P_hit += w * hit
        E_big += w * big / N
    return P_hit, E_big
