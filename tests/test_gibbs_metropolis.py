"""Metropolis on a small binary perceptron against the exact Gibbs distribution (issue 10).

``ps.Greedy(batch_size=P, temperature=T, new_batch="sweep")`` on a fixed training set of P rows:
every sweep proposes each of the N weight flips once (random order) and judges it on the whole set,
accepting with min(1, exp(-dE/T)) (dE = change in the number E of training errors). Each single-flip
update then satisfies detailed balance with respect to exp(-E/T) -- also with ties rejected (no
move either way) or accepted with probability 1/2 (symmetric) -- and so does the sweep (a product
of reversible kernels in a uniformly random order, whose reverse order is equally likely). The
sweep-end states of a long chain are therefore (correlated) samples of the Gibbs distribution over
the 2^N students, which we enumerate exactly.

Statistics. The recorded ``train_error`` of every sweep gives E(t). The error of the chain's mean
energy comes from batch means (batches of 20 integrated autocorrelation times or more, so the
batch means are nearly independent); the integrated autocorrelation time tau_int (Sokal's
automatic window) gives the effective sample size n / (2 tau_int), and the batch-means error must
agree with sqrt(var(E) 2 tau_int / n) -- the check that the tolerance itself is right. The test
passes at |z| < 4 (a false alarm once in ~16000 runs if the errors are right); the same chain
against the Gibbs law of a 20 % wrong temperature must give |z| > 10: the test can fail.
P(E = e) is checked with Hotelling's T^2 on the batch means of the level frequencies.
"""
import itertools

import numpy as np
import pytest
from scipy import stats

import physsgd as ps

BURN = 200          # sweeps dropped from every chain (relaxation from the random start: a few tau)


def _sign(h):
    return np.where(h >= 0, 1.0, -1.0)          # physsgd's convention: sign(0) = +1


def make_data(N, P, seed):
    """P training rows and 1 held-out row of +-1 inputs with random +-1 labels (no teacher: a
    frustrated landscape with many energy levels)."""
    rng = np.random.default_rng(seed)
    X = rng.choice([-1.0, 1.0], size=(P + 1, N))
    y = rng.choice([-1.0, 1.0], size=P + 1)
    return X, y


def energies_of_all_students(X, y):
    """E(w) = number of misclassified rows, for all 2^N students w in {-1, +1}^N."""
    N = X.shape[1]
    W = np.array(list(itertools.product([-1.0, 1.0], repeat=N)))
    return (_sign(W @ X.T) != y).sum(axis=1)


def gibbs(E_all, T):
    """Exact P(E = e) over the levels present, and <E>, Var E."""
    levels = np.unique(E_all)
    logw = -E_all / T
    w = np.exp(logw - logw.max())
    p = np.array([w[E_all == e].sum() for e in levels]) / w.sum()
    mean = float((levels * p).sum())
    return levels, p, mean, float(((levels - mean) ** 2 * p).sum())


def _train(X, y, T, ties, sweeps, replicas, seed, record=None):
    P = X.shape[0] - 1
    data = ps.Dataset.from_arrays(X, y, test_fraction=1 / (P + 1))      # 1 held-out row
    assert data.P == P
    return ps.train(None, ps.Perceptron(X.shape[1], weights="binary"),
                    ps.Greedy(batch_size=P, temperature=T, ties=ties, new_batch="sweep"), data,
                    steps=sweeps, replicas=replicas, seed=seed,
                    record=np.arange(sweeps + 1) if record is None else record)


def run_chain(X, y, T, ties, sweeps, replicas, seed):
    """Energies (replicas, sweeps + 1) and the training rows physsgd used."""
    # 64 hot, short chains end at diverse students: together they pin down the held-out row
    probe = _train(X, y, 50.0, ties, 2, 64, seed, record=2)
    held_out = consistent_held_out(X, y, probe)
    assert len(held_out) == 1, f"held-out row not identified from the records: candidates {held_out}"
    res = _train(X, y, T, ties, sweeps, replicas, seed)
    assert held_out[0] in consistent_held_out(X, y, res), "the long run used another split"
    P = X.shape[0] - 1
    return np.rint(res.train_error * P).astype(int), np.delete(np.arange(P + 1), held_out[0])


def consistent_held_out(X, y, res):
    """The rows whose removal reproduces every replica's final training and test errors: which
    row physsgd held out, found from its records rather than from its private split."""
    P = X.shape[0] - 1
    W = res.weights[:, 0, :]                                    # (replicas, N) final students
    wrong = _sign(W @ X.T) != y                                 # (replicas, P + 1)
    E_train = np.rint(res.train_error[:, -1] * P).astype(int)
    return [i for i in range(P + 1)
            if np.array_equal(wrong.sum(1) - wrong[:, i], E_train)
            and np.array_equal(wrong[:, i].astype(float), res.eps_g[:, -1])]


def tau_int(x):
    """Integrated autocorrelation time of a 1-D series, Sokal's window (M >= 5 tau(M))."""
    x = np.asarray(x, float) - np.mean(x)
    n = len(x)
    f = np.fft.rfft(x, 2 * n)
    acf = np.fft.irfft(f * np.conj(f))[:n] / (x.var() * n)
    tau = 0.5
    for M in range(1, n):
        tau += acf[M]
        if M >= 5 * tau:
            break
    return float(tau)


def chain_statistics(E, levels):
    """Mean energy with its batch-means error, tau_int, and the batch means of the level
    frequencies. E: (replicas, sweeps) after burn-in."""
    tau = float(np.mean([tau_int(e) for e in E]))
    L = max(int(np.ceil(20 * tau)), 10)                   # batch length
    nb = E.shape[1] // L
    batches = E[:, :nb * L].reshape(E.shape[0], nb, L)
    means = batches.mean(axis=2).ravel()                  # independent replicas x batches
    freq = np.stack([(batches == e).mean(axis=2).ravel() for e in levels], axis=1)
    mean = float(E[:, :nb * L].mean())
    err = float(means.std(ddof=1) / np.sqrt(len(means)))
    err_tau = float(np.sqrt(E.var() * 2 * tau / E[:, :nb * L].size))
    return {"mean": mean, "err": err, "err_tau": err_tau, "tau": tau, "n_batches": len(means),
            "ess": E[:, :nb * L].size / (2 * tau), "freq": freq}


def hotelling_p(freq, p):
    """p-value of the level frequencies' batch means against the exact probabilities (the last
    level and levels with p < 1 % are left out: the frequencies sum to one)."""
    keep = np.flatnonzero(p >= 0.01)[:-1]
    F = freq[:, keep]
    n = F.shape[0]
    d = F.mean(0) - p[keep]
    S = np.cov(F, rowvar=False) / n
    t2 = float(d @ np.linalg.solve(np.atleast_2d(S), d))
    k = len(keep)
    f_stat = t2 * (n - k) / (k * (n - 1))                  # T^2 -> F(k, n - k)
    return float(stats.f.sf(f_stat, k, n - k)), t2, k


def check(N, P, T, ties, sweeps, replicas, seed):
    X, y = make_data(N, P, seed)
    E, rows = run_chain(X, y, T, ties, sweeps, replicas, seed)
    E_all = energies_of_all_students(X[rows], y[rows])
    levels, p, mean, var = gibbs(E_all, T)
    st = chain_statistics(E[:, BURN + 1:], levels)
    # the energies recorded are the training-set energies of students: every level must exist
    assert set(np.unique(E)) <= set(levels.tolist())
    z = (st["mean"] - mean) / st["err"]
    wrong = gibbs(E_all, 1.2 * T)[2]
    z_wrong = (st["mean"] - wrong) / st["err"]
    return {"z": z, "z_wrong": z_wrong, "exact": mean, "var": var, "levels": levels, "p": p, **st}


@pytest.mark.parametrize("ties", ["accept", "reject", "random"])
def test_metropolis_sweeps_sample_gibbs(ties):
    """N = 7, P = 12 rows, T = 1: mean energy within 4 batch-means errors of the exact Gibbs mean;
    a 20 % wrong temperature is rejected by > 10 errors; the error agrees with tau_int's."""
    r = check(N=7, P=12, T=1.0, ties=ties, sweeps=6000, replicas=8, seed=11)
    assert len(r["levels"]) >= 4 and r["var"] > 0.5, "the landscape must have several energy levels"
    assert abs(r["z"]) < 4, r
    assert abs(r["z_wrong"]) > 10, r
    assert r["n_batches"] >= 40 and 0.7 < r["err"] / r["err_tau"] < 1.4, r
    p_value, _, _ = hotelling_p(r["freq"], r["p"])
    assert p_value > 1e-4, (p_value, r["p"], r["freq"].mean(0))


@pytest.mark.slow
@pytest.mark.parametrize("ties", ["accept", "reject", "random"])
@pytest.mark.parametrize("T", [0.5, 2.0])
def test_metropolis_sweeps_sample_gibbs_long(ties, T):
    """N = 10 (even: fields h = 0 occur, sign(0) = +1), P = 20, two temperatures, long chains:
    mean energy and the whole P(E = e)."""
    r = check(N=10, P=20, T=T, ties=ties, sweeps=60000, replicas=8, seed=23)
    assert abs(r["z"]) < 4, r
    assert abs(r["z_wrong"]) > 10, r
    assert 0.75 < r["err"] / r["err_tau"] < 1.3, r
    p_value, _, _ = hotelling_p(r["freq"], r["p"])
    assert p_value > 1e-4, (p_value, r["p"], r["freq"].mean(0))
