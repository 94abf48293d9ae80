"""engine="overlaps" (physsgd/kernels/overlaps.py): the exact overlap chain of online SGD.

Checked against
1. an explicit-vector NumPy twin on the chain's own random numbers (tests/reference.py, end):
   the Gram matrices after a step agree to rounding;
2. the direct engine, in distribution: means and spreads over >= 2000 replicas of eps_g, R, Q
   (and weight_change) at several times;
3. the Saad-Solla ODE at N = 10^6, plateau and escape included;
plus validation, reproducibility, and the result's fields.

Statistical tolerances (``assert_same_law``): for every compared quantity (an observable at a
record time) the difference of the two means is divided by its standard error
sqrt(va/na + vb/nb), and the difference of the two variances by its standard error
sqrt((m4a - va^2)/na + (m4b - vb^2)/nb) (m4 the fourth central moment: the large-sample variance
of a sample variance, valid for any law with a finite fourth moment). The threshold on |z| is
Bonferroni: a family-wise false-alarm probability of 1e-3 over all the comparisons of the test,
so a correct engine fails a test with probability <= 1e-3 (the seeds are fixed, so a pass is
reproducible). ``test_comparison_has_power`` shows the same comparison rejects a real
finite-size difference (N = 50 against N = 35).
"""
import importlib
import math

import numpy as np
import pytest
from scipy.stats import norm

import physsgd as ps
from physsgd import overlaps as pov
from physsgd import theory
from physsgd.kernels import overlaps as kov
from physsgd.kernels import rng as krng
from physsgd.kernels.rng import seed_states

import reference as ref

ptrain = importlib.import_module("physsgd.train")


# ------------------------------------------------------------------------------------------
# helpers

def observables(res, records):
    """(replicas, features) samples: eps_g, weight_change and every R, Q (upper triangle) entry
    at the given record indices, with names."""
    cols, names = [], []
    K, M = res.R.shape[2:]
    for t in records:
        cols += [res.eps_g[:, t], res.weight_change[:, t]]
        names += [f"eps_g[{t}]", f"weight_change[{t}]"]
        for k in range(K):
            for n in range(M):
                cols.append(res.R[:, t, k, n])
                names.append(f"R[{t},{k},{n}]")
            for l in range(k, K):
                cols.append(res.Q[:, t, k, l])
                names.append(f"Q[{t},{k},{l}]")
    return np.column_stack(cols), names


# Relative rounding tolerance for deterministic columns: ~10^4 ulps, the twin tests' tolerance
# (the engines reach the same number by different O(N)-term sums: an N = 200 dot product against
# a QR of the rows, ~N eps = 4e-14 apart at most).
ROUNDING = 1e-12


def law_z(a, b):
    """Standardised differences of the means and of the variances of samples a, b (n, p).

    A column that is deterministic in both samples (its spread within rounding in each, e.g. Q
    at t = 0 from an init array) has no spread to standardise by: its z is 0 if the two values
    agree to ROUNDING (relative), else inf (a real difference, however small its z would be)."""
    na, nb = a.shape[0], b.shape[0]
    ma, mb = a.mean(0), b.mean(0)
    va, vb = a.var(0, ddof=1), b.var(0, ddof=1)
    m4a = ((a - ma) ** 4).mean(0)
    m4b = ((b - mb) ** 4).mean(0)
    se_m = np.sqrt(va / na + vb / nb)
    se_v = np.sqrt(np.maximum(m4a - va ** 2, 0) / na + np.maximum(m4b - vb ** 2, 0) / nb)
    with np.errstate(divide="ignore", invalid="ignore"):
        z_m = np.where(se_m > 0, (ma - mb) / se_m, np.where(ma == mb, 0.0, np.inf))
        z_v = np.where(se_v > 0, (va - vb) / se_v, np.where(va == vb, 0.0, np.inf))
    tol = ROUNDING * np.maximum(1.0, np.maximum(np.abs(a).max(0), np.abs(b).max(0)))
    fixed = (np.ptp(a, 0) <= tol) & (np.ptp(b, 0) <= tol)
    agree = np.where(np.abs(ma - mb) <= tol, 0.0, np.inf)
    return np.where(fixed, agree, z_m), np.where(fixed, agree, z_v)


def law_check(a, b, names, family_alpha=1e-3):
    """(worst |z|, threshold, worst name): see the module docstring."""
    z_m, z_v = law_z(a, b)
    z = np.concatenate([np.abs(z_m), np.abs(z_v)])
    labels = [f"mean {n}" for n in names] + [f"var {n}" for n in names]
    threshold = norm.isf(family_alpha / (2 * z.size))
    i = int(np.argmax(z))
    return z[i], threshold, labels[i]


def test_law_check_deterministic_columns():
    """A column constant in both samples passes when the two constants agree to rounding and
    fails (z = inf) on any larger difference, even one far below the other columns' spread; the
    random columns keep their z-scores."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2000, 2)), rng.standard_normal((2000, 2))
    a[:, 1], b[:, 1] = 0.3, 0.3 + 1e-16                     # rounding apart: t = 0 Q, init array
    worst, threshold, _ = law_check(a, b, ["random", "fixed"])
    assert worst <= threshold
    z_m, z_v = law_z(a, b)
    assert z_m[1] == 0 and z_v[1] == 0 and 0 < abs(z_m[0]) < np.inf
    b[:, 1] = 0.3 + 1e-9                                      # a real difference
    worst, threshold, name = law_check(a, b, ["random", "fixed"])
    assert worst == np.inf and name == "mean fixed"


def assert_same_law(res_a, res_b, records):
    a, names = observables(res_a, records)
    b, _ = observables(res_b, records)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    worst, threshold, name = law_check(a, b, names)
    assert worst <= threshold, f"{name}: |z| = {worst:.2f} > {threshold:.2f}"


def both_engines(teacher, student, algo, data=ps.Online(), replicas=2000, **kw):
    return [ps.train(teacher, student, algo, data, replicas=replicas, engine=e, **kw)
            for e in ("direct", "overlaps")]


def chain_setup(teacher, student, algo, data=ps.Online(), **kw):
    plan = ptrain.check_args(teacher, student, algo, data, steps=10, engine="overlaps", **kw)
    cfg = pov.chain_config(teacher, student, algo, data, plan)
    given = pov.given_coordinates(cfg, None if isinstance(plan.init, str) else plan.init)
    return cfg, given


# ------------------------------------------------------------------------------------------
# 1. one step against the explicit-vector twin, on the same random numbers

N_TWIN = 40
ERF2 = ps.Committee(N=N_TWIN, K=2, activation="erf")
TWIN_CASES = {
    "erf-m1": (ERF2, ERF2, ps.SGD(lr=0.5), {}),
    "erf-m8-momentum-decay": (ERF2, ERF2, ps.SGD(lr=0.5, batch_size=8, momentum=0.7,
                                                 weight_decay=0.01), {}),
    "tanh-K3-output-scale": (ERF2, ps.Committee(N=N_TWIN, K=3, activation="tanh"),
                             ps.SGD(lr=0.5, batch_size=3, output_scale=2.0), {}),
    "perceptron-hinge": (ps.Perceptron(N_TWIN), ps.Perceptron(N_TWIN, activation="linear"),
                         ps.SGD(lr=1.0, batch_size=8, loss="hinge"), {}),
    "perceptron-logistic": (ps.Perceptron(N_TWIN), ps.Perceptron(N_TWIN, activation="erf"),
                            ps.SGD(lr=1.0, batch_size=4, loss="logistic"), {}),
    "tree-parity-momentum": (
        ps.Committee(N=60, activation="sign", output="parity", topology="tree", d=20),
        ps.Committee(N=60, activation="erf", output="parity", topology="tree", d=20),
        ps.SGD(lr=0.5, batch_size=5, loss="hinge", momentum=0.5), {}),
    "second-layer": (ps.Committee(N=N_TWIN, K=2, activation="erf", second_layer=(1.0, -0.5)),
                     ps.Committee(N=N_TWIN, K=3, activation="relu", second_layer=(0.5, 1.0, 2.0)),
                     ps.SGD(lr=0.3, batch_size=2), {}),
    "init-teacher": (ERF2, ERF2, ps.SGD(lr=0.5, batch_size=2), dict(init="teacher")),
    "zero-init-momentum": (ERF2, ERF2, ps.SGD(lr=0.5, batch_size=2, momentum=0.9),
                           dict(init_scale=0.0)),
    "init-array": (ERF2, ERF2, ps.SGD(lr=0.5, batch_size=2),
                   dict(init=np.random.default_rng(1).standard_normal((2, N_TWIN)))),
    "axis-teacher": (ps.Committee(N=N_TWIN, K=1, activation="sign", output="sign", weights="axis"),
                     ps.Perceptron(N_TWIN, activation="linear"),
                     ps.SGD(lr=0.5, batch_size=3, loss="squared_hinge"), {}),
    "tiny-F-momentum": (ps.Committee(N=4, K=2, activation="erf"),
                        ps.Committee(N=4, K=2, activation="erf"),
                        ps.SGD(lr=0.5, batch_size=2, momentum=0.5), {}),
}


@pytest.mark.parametrize("case", TWIN_CASES)
def test_step_matches_explicit_twin(case):
    """Five steps from a drawn initial state: after each, the kernel's Gram matrices (Y Y^T per
    block) equal the twin's explicit dot products, and so do the batch error and the active
    samples. Rounding only: the tolerance 1e-12 relative is ~10^4 ulps."""
    teacher, student, algo, kw = TWIN_CASES[case]
    cfg, given = chain_setup(teacher, student, algo, **kw)
    Y = kov.initial_coordinates(cfg, given, seed_states(3, 1, 0))[0]
    s = seed_states(3, 1, 1)[0]
    vs = np.asarray(student.second_layer or np.ones(student.K), float)
    vt = np.asarray(teacher.second_layer or np.ones(teacher.K), float)
    buf = kov.move_buffers(cfg)
    for t in range(5):
        before = Y.copy()
        err, finite, n_active = kov.chain_move(cfg, s, Y, vs, vt, buf)
        U, Bt, active = buf[0], buf[1], buf[3][:n_active]
        q = min(n_active, cfg.nu)
        grams, err_ref, active_ref = ref.chain_step_explicit(teacher, student, algo, before, U,
                                                             Bt[:, :n_active, :q], seed=t)
        assert finite
        np.testing.assert_array_equal(active, active_ref)
        assert err == pytest.approx(err_ref, rel=1e-12, abs=1e-12)
        gram_kernel = np.einsum("bij,bkj->bik", Y, Y)
        scale = max(1.0, np.abs(grams).max())
        np.testing.assert_allclose(gram_kernel, grams, rtol=0, atol=1e-12 * scale)


def test_inline_draws_are_the_generator_s():
    """The kernel's inlined draws give rng.normal / rng.uniform's numbers from the same state."""
    from numba import njit

    @njit
    def draw(s, n):
        out = np.empty(2 * n)
        for i in range(n):
            out[2 * i] = kov._normal(s)
            out[2 * i + 1] = kov._uniform(s)
        return out

    @njit
    def draw_rng(s, n):
        out = np.empty(2 * n)
        for i in range(n):
            out[2 * i] = krng.normal(s)
            out[2 * i + 1] = krng.uniform(s)
        return out

    s1, s2 = seed_states(5, 1, 1)[0], seed_states(5, 1, 1)[0]
    np.testing.assert_array_equal(draw(s1, 20000), draw_rng(s2, 20000))


def test_chi_square_law():
    """chi^2(k) draws (k = 1, 3, 1000, 10^9): mean k and variance 2k within 5 standard errors
    (n = 200000 draws; the se of the variance uses the fourth moment 12 k (k + 4))."""
    from numba import njit

    @njit
    def draws(s, k, n):
        out = np.empty(n)
        for i in range(n):
            out[i] = kov.chi_square(s, k)
        return out

    n = 200_000
    for k in (1, 3, 1000, 10**9):
        x = draws(seed_states(1, 1, k % 97)[0], k, n)
        assert abs(x.mean() - k) <= 5 * math.sqrt(2 * k / n), (k, x.mean())
        m4 = 12.0 * k * (k + 4)                     # fourth central moment of chi^2(k)
        assert abs(x.var() - 2 * k) <= 5 * math.sqrt((m4 - 4 * k * k) / n), (k, x.var())


def test_lq_and_cholesky_factor():
    """lq_in_place keeps A A^T; cholesky_rows gives the lower factor with a non-negative
    diagonal (the Cholesky factor of a full-rank Gram matrix), rank-deficient rows included."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 9))
    A[2] = A[0] - 2 * A[1]                          # rank 3
    B = A.copy()
    kov.lq_in_place(B, 0, 4, 0, 9)
    np.testing.assert_allclose(B @ B.T, A @ A.T, atol=1e-12)
    assert np.all(B[:, 4:] == 0) and np.all(np.triu(B[:, :4], 1) == 0)
    L = np.empty((3, 3))
    Yb = rng.standard_normal((5, 6))
    rows = np.array([0, 2, 4])
    kov.cholesky_rows(Yb, rows, 6, L)
    G = Yb[rows] @ Yb[rows].T
    np.testing.assert_allclose(L, np.linalg.cholesky(G), atol=1e-12)


# ------------------------------------------------------------------------------------------
# 2. the chain and the direct engine agree in distribution

N_LAW = 50
ERF_LAW = ps.Committee(N=N_LAW, K=2, activation="erf")
REC = np.array([0, 5, 25, 100, 400])


def test_initial_law_matches_direct():
    """t = 0: the chain's initial R, Q, T (teacher included) have the direct engine's law."""
    d, o = both_engines(ERF_LAW, ERF_LAW, ps.SGD(lr=0.5), steps=1, record=[0, 1], replicas=4000,
                        seed=1, init_scale=0.7)
    assert_same_law(d, o, [0])
    T = lambda r: r.T.reshape(r.replicas, -1)              # noqa: E731
    worst, threshold, name = law_check(T(d), T(o), ["T00", "T01", "T10", "T11"])
    assert worst <= threshold, (name, worst)


@pytest.mark.parametrize("algo", [ps.SGD(lr=0.5), ps.SGD(lr=0.5, batch_size=8, momentum=0.6,
                                                          weight_decay=2e-3)],
                         ids=["m1", "m8-momentum-decay"])
def test_erf_committee_law_matches_direct(algo):
    d, o = both_engines(ERF_LAW, ERF_LAW, algo, steps=int(REC[-1]), record=REC, seed=2)
    assert_same_law(d, o, range(len(REC)))


def test_comparison_has_power():
    """The comparison is sharp enough to see a real finite-size difference: the chain at N = 35
    against the direct engine at N = 50 (same alpha grid) is rejected."""
    d = ps.train(ERF_LAW, ERF_LAW, ps.SGD(lr=0.5), ps.Online(), steps=400, record=REC,
                 replicas=2000, seed=2)
    small = ps.Committee(N=35, K=2, activation="erf")
    o = ps.train(small, small, ps.SGD(lr=0.5), ps.Online(), steps=280, record=(REC * 0.7).astype(int),
                 replicas=2000, seed=2, engine="overlaps")
    a, names = observables(d, range(len(REC)))
    b, _ = observables(o, range(len(REC)))
    worst, threshold, name = law_check(a, b, names)
    assert worst > threshold, (name, worst, threshold)


@pytest.mark.parametrize("student, algo", [
    (ps.Perceptron(N_LAW, activation="linear"), ps.SGD(lr=1.0, loss="hinge")),
    (ps.Perceptron(N_LAW, activation="erf"), ps.SGD(lr=1.0, batch_size=8, loss="logistic")),
], ids=["hinge-m1", "logistic-m8"])
def test_perceptron_law_matches_direct(student, algo):
    d, o = both_engines(ps.Perceptron(N_LAW), student, algo, steps=int(REC[-1]), record=REC,
                        seed=3)
    assert_same_law(d, o, range(len(REC)))


def test_tree_law_matches_direct():
    """A tree (K = 3, d = 17) whose erf parity student learns a sign parity teacher: one chain
    per block."""
    t = ps.Committee(N=51, activation="sign", output="parity", topology="tree", d=17)
    s = ps.Committee(N=51, activation="erf", output="parity", topology="tree", d=17)
    d, o = both_engines(t, s, ps.SGD(lr=0.5, batch_size=4, loss="hinge"), steps=300,
                        record=[0, 10, 60, 300], seed=4)
    assert_same_law(d, o, range(4))


@pytest.mark.parametrize("kw", [dict(init_scale=0.0), dict(init="teacher")],
                         ids=["zero-init", "init-teacher"])
def test_rank_deficient_starts_match_direct(kw):
    """Starts whose Gram matrix is singular: W = W0 = 0, and W = W0 = teacher (label noise
    drives the planted student off its teacher)."""
    data = ps.Online(label_noise=0.3 if "init" in kw else 0.0)
    d, o = both_engines(ERF_LAW, ERF_LAW, ps.SGD(lr=0.5, batch_size=2, momentum=0.5), data,
                        steps=200, record=[0, 1, 10, 50, 200], seed=5, **kw)
    assert_same_law(d, o, range(5))


def test_test_set_eps_and_output_scale_match_direct():
    """No closed form (tanh student, output_scale): eps_g from fixed test fields N(0, G) has the
    law of the direct engine's fixed test set (test-set noise included)."""
    s = ps.Committee(N=N_LAW, K=2, activation="tanh")
    d, o = both_engines(ERF_LAW, s, ps.SGD(lr=0.3, batch_size=4, output_scale=2.0),
                        ps.Online(test_size=500), steps=200, record=[0, 20, 200], seed=6,
                        probe_every=200)
    assert_same_law(d, o, range(3))


def test_tiny_fan_in_matches_direct():
    """N = 4 < r = 8 rows (K = M = 2 with momentum): the frame is all of R^N, no orthogonal
    part."""
    t = ps.Committee(N=4, K=2, activation="erf")
    d, o = both_engines(t, t, ps.SGD(lr=0.3, batch_size=2, momentum=0.5), steps=40,
                        record=[0, 2, 10, 40], seed=7)
    assert_same_law(d, o, range(4))


@pytest.mark.slow
@pytest.mark.parametrize("case", ["erf-m1", "erf-m8-momentum-decay", "perceptron-hinge",
                                  "perceptron-logistic", "tree-parity-momentum",
                                  "second-layer", "init-teacher", "zero-init-momentum",
                                  "init-array", "axis-teacher"])
def test_law_matches_direct_at_N200(case):
    """The twin cases at N = 200 (tree: d = 200), 4000 replicas, up to alpha = 5 per sample."""
    teacher, student, algo, kw = TWIN_CASES[case]
    N = 200

    def resize(model):
        spec = model.to_dict()
        kind = spec.pop("kind")
        if spec["topology"] == "tree":
            spec["N"], spec["d"], spec["K"] = 3 * N, N, 3
        else:
            spec["N"], spec["d"] = N, None
        return (ps.Perceptron if kind == "Perceptron" else ps.Committee)(
            **{k: v for k, v in spec.items() if kind != "Perceptron" or k not in ("K", "second_layer")})

    teacher, student = resize(teacher), resize(student)
    planted = isinstance(kw.get("init"), str) and kw["init"] == "teacher"
    if "init" in kw and not isinstance(kw["init"], str):
        kw = dict(init=np.random.default_rng(1).standard_normal((student.K, student.d)))
    data = ps.Online(label_noise=0.3 if planted else 0.0, test_size=2000)
    steps = 5 * N // algo.batch_size
    rec = np.unique(np.round(np.geomspace(1, steps, 6)).astype(int))
    rec = np.concatenate([[0], rec])
    d, o = both_engines(teacher, student, algo, data, replicas=4000, steps=steps, record=rec,
                        seed=8, probe_every=steps, **kw)
    assert_same_law(d, o, range(len(rec)))


# ------------------------------------------------------------------------------------------
# 3. the Saad-Solla ODE at N = 10^6

def test_follows_saad_solla_at_1e6():
    """K = M = 2, lr = 0.5, N = 10^6: every replica follows the ODE integrated from its own
    initial overlaps onto the plateau (alpha <= 25). The gap's replica mean must be within
    3.5 standard errors, plus 5/N relative for the O(1/N) finite-size corrections."""
    N = 10**6
    t = ps.Committee(N=N, K=2, activation="erf")
    alpha = np.array([0, 1, 2.5, 5, 10, 25])
    res = ps.train(t, t, ps.SGD(lr=0.5), ps.Online(), steps=int(alpha[-1] * N), replicas=4,
                   seed=2, init_scale=math.sqrt(0.2), record=(alpha * N).astype(np.int64),
                   engine="overlaps")
    ode = theory.saad_solla(2, 2, 0.5, alpha=res.time, init=dict(Q=res.Q[:, 0], R=res.R[:, 0],
                                                                  T=res.T))
    gap = res.eps_g[:, 1:] - ode.eps_g[:, 1:]
    se = gap.std(0, ddof=1) / math.sqrt(gap.shape[0])
    allowed = 3.5 * se + ode.eps_g[:, 1:].mean(0) * 5.0 / N
    assert np.all(np.abs(gap.mean(0)) <= allowed), (gap.mean(0), allowed)
    # and the plateau is the symmetric fixed point (SCIENCE.md 4.1: eps_g = 0.0147 +- 5 %)
    assert abs(res.eps_g[:, -1].mean() / theory.plateau(2, 0.5).eps_g - 1) < 0.05


@pytest.mark.slow
def test_plateau_and_escape_follow_saad_solla_at_1e6():
    """K = M = 2, lr = 0.5, N = 10^6, alpha to 600: each replica and the ODE integrated from its
    own initial overlaps sit on the same plateau (theory.plateau's eps_g to 2 %, the finite-N
    fluctuations being O(N^-1/2)), escape (eps_g < plateau / 10) at nearly the same time, and
    then converge (eps_g < 1e-4 plateau in both).

    The escape tolerance: on the plateau the unstable mode grows as e^{lambda alpha} (lambda =
    0.0316, runs/plateau); the ODE has the initial amplitude only, the chain adds the SGD noise,
    also O(N^-1/2), which shifts the escape by ln|1 + xi| / lambda (xi the ratio of the two
    amplitudes). runs/plateau measures the spread of this shift at 0.4 / lambda (N = 10^3); a
    shift beyond 2 / lambda = 63 (|1 + xi| outside [e^-2, e^2]) in any of 4 replicas would
    contradict it."""
    N, K, lr = 10**6, 2, 0.5
    t = ps.Committee(N=N, K=K, activation="erf")
    alpha = np.concatenate([[0], np.arange(5, 601, 5)]).astype(float)
    res = ps.train(t, t, ps.SGD(lr=lr), ps.Online(), steps=int(alpha[-1] * N), replicas=4,
                   seed=11, init_scale=math.sqrt(0.2), record=(alpha * N).astype(np.int64),
                   engine="overlaps", probe_every=N * 100)
    ode = theory.saad_solla(K, K, lr, alpha=res.time, method="dop853",
                            init=dict(Q=res.Q[:, 0], R=res.R[:, 0], T=res.T))
    plateau = theory.plateau(K, lr).eps_g
    at = np.searchsorted(res.time, 100)
    assert np.all(np.abs(res.eps_g[:, at] / plateau - 1) < 0.02), res.eps_g[:, at]
    assert np.all(np.abs(ode.eps_g[:, at] / plateau - 1) < 0.02), ode.eps_g[:, at]

    def escape(eps):
        return np.array([res.time[np.argmax(e < plateau / 10)] if np.any(e < plateau / 10)
                         else np.inf for e in eps])

    sim, th = escape(res.eps_g), escape(ode.eps_g)
    assert np.all(np.isfinite(sim)) and np.all(np.isfinite(th)), (sim, th)
    assert np.all(np.abs(sim - th) <= 2 / 0.0316), (sim, th)
    assert np.all(res.eps_g[:, -1] < 1e-4 * plateau) and np.all(ode.eps_g[:, -1] < 1e-4 * plateau)


# ------------------------------------------------------------------------------------------
# validation, reproducibility, the result

@pytest.mark.parametrize("over, match", [
    (dict(algo=ps.Greedy()), r"algo=Greedy.*ps.SGD only"),
    (dict(data=ps.Dataset(P=20)), r"data=a finite training set \(ps.Dataset\(P=20\)\)"),
    (dict(data=ps.Online(inputs="binary")), r"data.inputs='binary'"),
    (dict(data=ps.Online(chi=1.0)), r"data.chi=1.0"),
    (dict(teacher=ps.Committee(N=10, K=2, weights="binary", activation="sign", output="parity")),
     r"teacher.weights='binary'"),
    (dict(student=ps.Committee(N=10, K=2, topology="random", d=5)), r"student.topology='random'"),
    (dict(teacher=ps.Committee(N=10, K=2, topology="random", d=5)), r"teacher.topology='random'"),
    (dict(teacher=ps.Committee(N=10, topology="tree", d=5)),
     r"teacher.topology='tree' but student.topology='dense'"),
    (dict(teacher=ps.Committee(N=10, topology="tree", d=5),
          student=ps.Committee(N=10, topology="tree", d=2)), r"teacher.d=5 but student.d=2"),
    (dict(stop="zero_loss"), r"stop='zero_loss'"),
])
def test_unsupported_runs_name_the_parameter(over, match):
    args = dict(teacher=ps.Committee(N=10, K=2), student=ps.Committee(N=10, K=2),
                algo=ps.SGD(lr=0.1), data=ps.Online(), steps=2, replicas=1, record=2,
                engine="overlaps")
    if isinstance(over.get("algo"), ps.Greedy):
        args.update(student=ps.Committee(N=9, K=3, activation="sign", output="sign",
                                         weights="binary"),
                    teacher=ps.Committee(N=9, K=3, activation="sign", output="sign",
                                         weights="binary"))
    args.update(over)
    with pytest.raises(ValueError, match=match):
        ps.train(**args)


def test_user_arrays_are_refused():
    X = np.random.default_rng(0).standard_normal((30, 10))
    data = ps.Dataset.from_arrays(X, np.sign(X[:, 0]))
    with pytest.raises(ValueError, match=r"data=user arrays"):
        ps.train(None, ps.Perceptron(10, activation="linear"), ps.SGD(lr=0.1, loss="hinge"),
                 data, steps=2, engine="overlaps")


SCM = ps.Committee(N=30, K=2, activation="erf")
REPRO = (SCM, SCM, ps.SGD(lr=0.5, batch_size=3, momentum=0.5, weight_decay=1e-3), ps.Online())


@pytest.mark.skipif(__import__("numba").config.NUMBA_NUM_THREADS < 2,
                    reason="needs 2 numba threads (NUMBA_NUM_THREADS caps them at 1)")
def test_same_numbers_for_one_and_two_threads():
    runs = [ps.train(*REPRO, steps=200, replicas=5, seed=7, record=6, threads=t,
                     engine="overlaps") for t in (1, 2)]
    assert runs[0] == runs[1]


def test_replica_independent_of_replica_count():
    few = ps.train(*REPRO, steps=100, replicas=2, seed=3, record=5, engine="overlaps")
    many = ps.train(*REPRO, steps=100, replicas=4, seed=3, record=5, engine="overlaps")
    for name in ("eps_g", "R", "Q", "T", "weight_change", "train_error"):
        np.testing.assert_array_equal(getattr(few, name), getattr(many, name)[:2])


def test_result_fields_and_params(tmp_path):
    res = ps.train(*REPRO, steps=90, replicas=3, seed=1, record=4, engine="overlaps")
    direct = ps.train(*REPRO, steps=90, replicas=3, seed=1, record=4)
    for name in res.ARRAYS + res.STATIONARY + ("window",):
        a, b = getattr(res, name), getattr(direct, name)
        assert a.shape == b.shape and a.dtype == b.dtype, name
    assert res.weights is None and res.teacher_weights is None and res.student_fields is None
    assert res.params["run"]["engine"] == "overlaps" and res.params["run"]["steps"] == 90
    assert res.params["run"]["teacher_rule"] == "eps"
    assert res.params["run"]["window_eps_g"] == "batches"
    assert {k: v for k, v in res.params.items() if k != "run"} == \
        {k: v for k, v in direct.params.items() if k != "run"}
    assert np.isnan(res.train_error[:, 0]).all() and np.isfinite(res.train_error[:, 1:]).all()
    path = tmp_path / "r.h5"
    res.to_hdf5(path)
    back = ps.load(path)
    assert back == res


def test_stop_success_and_stationary_observables():
    """A planted perceptron (init="teacher") with a hinge loss of margin 0 never moves: on the
    teacher at every probe, it stops at the first check (the first record after step 0, as the
    direct engine); a random start is not on the teacher."""
    P = ps.Perceptron(100, activation="linear")
    t = ps.Perceptron(100, activation="linear", output="sign")
    runs = [ps.train(t, P, ps.SGD(lr=0.5, loss="hinge", margin=0.0), ps.Online(), steps=500,
                     replicas=3, record=[0, 50, 500], stop="success", init="teacher", engine=e,
                     success_eps=1e-9) for e in ("direct", "overlaps")]
    for res in runs:
        assert res.success.all() and np.all(res.stopped_at == 50)
        assert np.all(res.first_passage == 0) and np.all(res.eps_g[:, 0] == 0)
        assert np.all(res.time_at_teacher == 1.0) or np.all(np.isnan(res.time_at_teacher))
    for name in ("stopped_at", "first_passage", "first_exit", "time_at_teacher", "eps_g"):
        np.testing.assert_array_equal(getattr(runs[0], name), getattr(runs[1], name))
    free = ps.train(t, P, ps.SGD(lr=0.5, loss="hinge", margin=0.0), ps.Online(), steps=400,
                    replicas=3, record=5, engine="overlaps")
    assert np.all(free.first_passage != 0) and np.all(np.isfinite(free.window_eps_g))
    assert np.all(free.window_overlap > 0.5)


def test_divergence_is_recorded():
    t = ps.Committee(N=20, K=2, activation="linear")
    res = ps.train(t, t, ps.SGD(lr=50.0), ps.Online(), steps=2000, replicas=3, seed=0, record=5,
                   engine="overlaps")
    assert res.diverged.all() and not res.success.any() and np.all(res.stopped_at < 2000)
    assert np.isnan(res.eps_g[:, -1]).all() and np.isfinite(res.eps_g[:, 0]).all()


def test_huge_N_is_cheap_and_sane():
    """N = 10^9: the initial overlaps are O(N^-1/2), T = 1 + O(N^-1/2), and a few thousand steps
    barely move them (the cost does not depend on N)."""
    t = ps.Committee(N=10**9, K=2, activation="erf")
    res = ps.train(t, t, ps.SGD(lr=0.5), ps.Online(), steps=5000, replicas=4, record=3, seed=0,
                   engine="overlaps")
    assert np.all(np.abs(res.T - np.eye(2)) < 6 * math.sqrt(2 / 1e9))
    assert np.all(np.abs(res.R[:, 0]) < 6 / math.sqrt(1e9)) and np.all(np.isfinite(res.eps_g))
    assert res.wall_time < 60


def test_sweep_runs_the_chain(tmp_path):
    """run.engine = "overlaps" in a TOML sweep."""
    from physsgd import store, sweep
    cfg = tmp_path / "chain.toml"
    cfg.write_text("""
[teacher]
N = 1000
K = 2
activation = "erf"
[student]
N = 1000
K = 2
activation = "erf"
[algorithm]
kind = "SGD"
lr = 0.5
[data]
kind = "Online"
[run]
alpha = 2
replicas = 3
record = 4
engine = "overlaps"
[grid]
seed = [0, 1]
""")
    report = sweep.run(str(cfg), str(tmp_path / "out"), progress=False, threads=1)
    assert report.ok
    files = store.task_files(str(tmp_path / "out"))
    assert len(files) == 2
    res = ps.load(next(iter(files.values())) if isinstance(files, dict) else files[0])
    assert res.params["run"]["engine"] == "overlaps" and res.weights is None
