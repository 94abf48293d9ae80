"""Slow, obviously-correct NumPy reference of the physsgd simulator (STUMPY-style testing).

Everything here is written from the documented semantics (DESIGN.md section 2, the docstrings of
``physsgd.models``, ``physsgd.algorithms``, ``physsgd.data``, ``physsgd.train``), vectorised over
samples and written for clarity, never for speed. Names (not integer codes) select activations,
outputs and losses. The only things taken from the package are the random streams: the reference
calls the ``physsgd.kernels.rng`` primitives (``uniform``, ``randint``, ``fill_normal``, ...) in the
order the simulator consumes them, so that trajectories can be compared number by number.

Conventions (DESIGN.md 2):
  h_k = sum_{i in S_k} w_ki x_i / sqrt(|S_k|);  f = sum_k v_k g(h_k) ('sum', 'sign') or prod_k g(h_k)
  ('parity'); label = f ('sum') or sign(f) with sign(0) = +1.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.special import erf as _erf, expit as _expit

from physsgd.kernels import rng as krng

ACTIVATIONS = ("sign", "erf", "tanh", "relu", "linear")
OUTPUTS = ("sum", "sign", "parity")
LOSSES = ("square", "hinge", "logistic", "squared_hinge", "hebbian")


# --------------------------------------------------------------------------------------------
# network
# --------------------------------------------------------------------------------------------
def sign(x):
    """Elementwise sign with sign(0) = +1."""
    return np.where(np.asarray(x) >= 0.0, 1.0, -1.0)


def activation(act, h):
    h = np.asarray(h, dtype=float)
    if act == "sign":
        return sign(h)
    if act == "erf":
        return _erf(h / math.sqrt(2.0))
    if act == "tanh":
        return np.tanh(h)
    if act == "relu":
        return np.maximum(h, 0.0)
    if act == "linear":
        return h.copy()
    raise ValueError(act)


def activation_derivative(act, h):
    """g'(h); the sign activation has zero derivative almost everywhere; relu'(0) = 0."""
    h = np.asarray(h, dtype=float)
    if act == "sign":
        return np.zeros_like(h)
    if act == "erf":
        return math.sqrt(2.0 / math.pi) * np.exp(-h * h / 2.0)
    if act == "tanh":
        return 1.0 / np.cosh(h) ** 2
    if act == "relu":
        return (h > 0.0).astype(float)
    if act == "linear":
        return np.ones_like(h)
    raise ValueError(act)


def field_indices(fields, dense, K, N):
    """(K, F) integer array: S_k as indices into the N inputs."""
    if dense:
        return np.tile(np.arange(N), (K, 1))
    return np.asarray(fields, dtype=np.int64)


def embed(W, fields, dense, N):
    """(K, N): each unit's weights placed on its receptive field, zero elsewhere."""
    K = W.shape[0]
    full = np.zeros((K, N))
    idx = field_indices(fields, dense, K, N)
    for k in range(K):
        full[k, idx[k]] = W[k]
    return full


def raw_fields(W, fields, dense, X):
    """(P, K) sums sum_{i in S_k} w_ki x_i (exact integers for +-1 weights and inputs)."""
    X = np.atleast_2d(X)
    return X @ embed(W, fields, dense, X.shape[1]).T


def preactivations(W, fields, dense, X):
    """(P, K) h_k = sum_{i in S_k} w_ki x_i / sqrt(|S_k|)."""
    return raw_fields(W, fields, dense, X) / math.sqrt(W.shape[1])


def network_output(act, out, v, H):
    """(P,) real output f for pre-activations H (P, K)."""
    G = activation(act, H)
    if out == "parity":
        return np.prod(G, axis=-1)
    return G @ np.asarray(v, float)


def output_gradient(act, out, v, H):
    """(P, K) df/dh_k."""
    G = activation(act, H)
    D = activation_derivative(act, H)
    if out == "parity":
        K = H.shape[-1]
        grad = np.empty_like(H)
        for k in range(K):
            others = [l for l in range(K) if l != k]
            grad[..., k] = D[..., k] * np.prod(G[..., others], axis=-1)
        return grad
    return D * np.asarray(v, float)


def predict(out, f):
    return np.asarray(f, float) if out == "sum" else sign(f)


def loss_value(loss, F, y, margin):
    F, y = np.asarray(F, float), np.asarray(y, float)
    if loss == "square":
        return 0.5 * (F - y) ** 2
    if loss == "hinge":
        return np.maximum(0.0, margin - y * F)
    if loss == "logistic":
        return np.logaddexp(0.0, -y * F)
    if loss == "squared_hinge":
        return 0.5 * np.maximum(0.0, margin - y * F) ** 2
    if loss == "hebbian":
        return -y * F
    raise ValueError(loss)


def loss_derivative(loss, F, y, margin):
    """d loss / d F (hinge at the kink y F = margin: 0)."""
    F, y = np.asarray(F, float), np.asarray(y, float)
    if loss == "square":
        return F - y
    if loss == "hinge":
        return np.where(y * F < margin, -y, 0.0)
    if loss == "logistic":
        return -y * _expit(-y * F)
    if loss == "squared_hinge":
        return -y * np.maximum(0.0, margin - y * F)
    if loss == "hebbian":
        return -y * np.ones_like(F)
    raise ValueError(loss)


def sample_error(out, F, y):
    """Per-sample error: 1/2 (F - y)^2 for regression, 1[sign F != y] for classifiers."""
    if out == "sum":
        return 0.5 * (np.asarray(F) - y) ** 2
    return (sign(F) != y).astype(float)


# --------------------------------------------------------------------------------------------
# SGD
# --------------------------------------------------------------------------------------------
class Net:
    """A network's fixed description: activation, output, second layer, receptive fields."""

    def __init__(self, act, out, v, fields, dense):
        self.act, self.out, self.v, self.fields, self.dense = act, out, np.asarray(v, float), fields, dense

    def H(self, W, X):
        return preactivations(W, self.fields, self.dense, X)

    def f(self, W, X):
        return network_output(self.act, self.out, self.v, self.H(W, X))

    def label(self, W, X):
        return predict(self.out, self.f(W, X))


def scaled_output(net, W, W0, X, output_scale):
    """What the loss sees: f(w, x), or alpha (f(w, x) - f(w0, x)) when output_scale alpha > 0."""
    f = net.f(W, X)
    if output_scale:
        f = output_scale * (f - net.f(W0, X))
    return f


def sgd_step(net, W, W0, buf, X, y, *, loss, margin, output_scale, lr, momentum, weight_decay):
    """One SGD step on the batch-mean loss (loss / alpha when output_scale alpha is given).

    Returns (W_new, buf_new, mean batch error before the update, all weights finite)."""
    X = np.atleast_2d(X)
    P, (K, F) = X.shape[0], W.shape
    with np.errstate(over="ignore", invalid="ignore"):
        Fout = scaled_output(net, W, W0, X, output_scale)
    # d(loss(F)/alpha)/dW = loss'(F) * (dF/df / alpha) * df/dW = loss'(F) df/dW
    dl = loss_derivative(loss, Fout, y, margin)                       # (P,)
    dfdh = output_gradient(net.act, net.out, net.v, net.H(W, X))        # (P, K)
    idx = field_indices(net.fields, net.dense, K, X.shape[1])
    Xg = X[:, idx]                                                     # (P, K, F): dh_k/dW_kj * sqrt(F)
    # a sample with loss'(F) = 0 contributes exactly nothing, even where df/dh overflows
    with np.errstate(invalid="ignore", over="ignore"):
        coef = np.where(dl[:, None] != 0.0, dl[:, None] * dfdh, 0.0)   # (P, K)
        grad = np.einsum("pk,pkj->kj", coef, Xg) / (P * math.sqrt(F))
    with np.errstate(over="ignore", invalid="ignore"):     # divergence is reported, not warned
        g = grad + weight_decay * W
        if momentum > 0:
            buf = momentum * buf + g
            g = buf
        W_new = W - lr * g
        err = sample_error(net.out, Fout, y).mean()
    return W_new, buf, err, bool(np.all(np.isfinite(W_new)))


# --------------------------------------------------------------------------------------------
# Greedy / Metropolis flips
# --------------------------------------------------------------------------------------------
def fisher_yates(state, a):
    """In-place Fisher-Yates shuffle of a, drawing j uniform in [0, i] for i = n-1 .. 1."""
    for i in range(len(a) - 1, 0, -1):
        j = krng.randint(state, i + 1)
        a[i], a[j] = a[j], a[i]
    return a


def energy(net, W, X, y):
    """Number of misclassified samples, computed from scratch."""
    return int(np.sum(net.label(W, X) != y))


def accept(state, dE, temperature, ties):
    """Acceptance of a move with energy change dE (random numbers drawn only when needed)."""
    if dE < 0:
        return True
    if dE == 0:
        if ties == "accept":
            return True
        if ties == "reject":
            return False
        return krng.uniform(state) < 0.5
    if temperature > 0:
        return krng.uniform(state) < math.exp(-dE / temperature)
    return False


def propose(net, state, W, X, y, idx, temperature, ties):
    """Propose flipping weight idx = k * F + j; returns (W after the decision, accepted dE)."""
    K, F = W.shape
    k, j = divmod(int(idx), F)
    W_try = W.copy()
    W_try[k, j] = -W_try[k, j]
    dE = energy(net, W_try, X, y) - energy(net, W, X, y)
    if accept(state, dE, temperature, ties):
        return W_try, dE
    return W, 0


def greedy_sweep(net, state, W, X, y, order, temperature, ties):
    """Shuffle ``order`` in place (it persists between sweeps), then propose each flip in that
    order on the batch (X, y). Returns (W, batch error fraction before the sweep, accepted indices)."""
    error_before = energy(net, W, X, y) / X.shape[0]
    fisher_yates(state, order)
    accepted = []
    for idx in order:
        W_new, dE = propose(net, state, W, X, y, idx, temperature, ties)
        if W_new is not W:
            accepted.append(int(idx))
        W = W_new
    return W, error_before, accepted


# --------------------------------------------------------------------------------------------
# observables and closed-form generalisation errors
# --------------------------------------------------------------------------------------------
def overlaps(Ws, fields_s, dense_s, Wt, fields_t, dense_t, N):
    """R (K, M), Q (K, K), T (M, M) normalised by fan-ins."""
    Fs, Ft = Ws.shape[1], Wt.shape[1]
    S, Tt = embed(Ws, fields_s, dense_s, N), embed(Wt, fields_t, dense_t, N)
    return S @ Tt.T / math.sqrt(Fs * Ft), S @ S.T / Fs, Tt @ Tt.T / Ft


def _arcsin_kernel(C, da, db):
    return np.arcsin(C / np.sqrt(np.outer(1.0 + da, 1.0 + db)))


def eps_erf(Q, R, T, vs, vt):
    """Saad & Solla: 1/2 <(sum_k v_k erf(h_k/sqrt2) - sum_n v*_n erf(h*_n/sqrt2))^2>, using
    <erf(u/sqrt2) erf(w/sqrt2)> = (2/pi) arcsin(C_uw / sqrt((1 + C_uu)(1 + C_ww)))."""
    dq, dt = np.diag(Q), np.diag(T)
    return (vs @ _arcsin_kernel(Q, dq, dq) @ vs + vt @ _arcsin_kernel(T, dt, dt) @ vt
            - 2.0 * vs @ _arcsin_kernel(R, dq, dt) @ vt) / math.pi


def eps_linear(Q, R, T, vs, vt):
    return 0.5 * (vs @ Q @ vs + vt @ T @ vt - 2.0 * vs @ R @ vt)


def flip_probability(R, Q, T):
    """P(sign h != sign h*) = arccos(R / sqrt(Q T)) / pi for centred jointly Gaussian (h, h*)."""
    if Q <= 0 or T <= 0:
        return 0.5
    return math.acos(float(np.clip(R / math.sqrt(Q * T), -1.0, 1.0))) / math.pi


def eps_tree_majority(p):
    """Brute force over teacher votes tau and flip patterns: P(sign sum tau != sign sum student)."""
    K = len(p)
    err = 0.0
    for tau in itertools.product((-1, 1), repeat=K):
        for flips in itertools.product((0, 1), repeat=K):
            prob = 0.5 ** K * np.prod([p[k] if flips[k] else 1 - p[k] for k in range(K)])
            student = [t * (-1) ** fl for t, fl in zip(tau, flips)]
            if sign(sum(tau)) != sign(sum(student)):
                err += prob
    return err


def eps_tree_parity(p):
    """P(odd number of branch flips), by enumeration."""
    K = len(p)
    err = 0.0
    for flips in itertools.product((0, 1), repeat=K):
        if sum(flips) % 2:
            err += np.prod([p[k] if flips[k] else 1 - p[k] for k in range(K)])
    return err


def eps_closed_form(mode, Q, R, T, vs, vt):
    """mode: 'erf' | 'linear' | 'arccos' | 'tree_majority' | 'tree_parity'."""
    if mode == "erf":
        return eps_erf(Q, R, T, vs, vt)
    if mode == "linear":
        return eps_linear(Q, R, T, vs, vt)
    if mode == "arccos":
        return flip_probability(R[0, 0], Q[0, 0], T[0, 0])
    p = [flip_probability(R[k, k], Q[k, k], T[k, k]) for k in range(R.shape[0])]
    return eps_tree_majority(p) if mode == "tree_majority" else eps_tree_parity(p)


def eps_monte_carlo(student, Ws, teacher, Wt, N, n, rng, chunk=50_000):
    """Monte Carlo estimate of eps_g on N(0, I) inputs in R^N: (mean, standard error)."""
    total = total2 = 0.0
    done = 0
    while done < n:
        m = min(chunk, n - done)
        X = rng.standard_normal((m, N))
        fs, ft = student.f(Ws, X), teacher.f(Wt, X)
        if student.out == "sum":
            e = 0.5 * (fs - ft) ** 2
        else:
            e = (sign(fs) != sign(ft)).astype(float)
        total += e.sum()
        total2 += (e * e).sum()
        done += m
    mean = total / n
    var = total2 / n - mean * mean
    return mean, math.sqrt(max(var, 0.0) / (n - 1))


# --------------------------------------------------------------------------------------------
# the whole driver: ps.train, replica by replica, one sample at a time where it matters
# --------------------------------------------------------------------------------------------
STREAM_SETUP, STREAM_TRAIN, STREAM_TEST = 0, 1, 2


def closed_form_mode(teacher, student, algo, data):
    """Which exact eps_g formula applies on Gaussian inputs (None: a fresh test set)."""
    if (teacher is None or data.inputs != "gaussian" or data.chi != 0
            or getattr(algo, "output_scale", None) is not None):
        return None
    s, t = student, teacher
    if s.output == t.output == "sum":
        pair = {s.activation, t.activation}
        return "erf" if pair == {"erf"} else "linear" if pair == {"linear"} else None
    odd = ("sign", "erf", "tanh", "linear")       # sign(g(h)) = sign(h)
    if not (s.classifier and t.classifier and s.second_layer is None and t.second_layer is None
            and s.activation in odd and t.activation in odd):
        return None
    if s.K == t.K == 1:
        return "arccos"
    if s.topology == t.topology == "tree" and s.d == t.d:
        if s.output == t.output == "parity":
            return "tree_parity"
        if s.output == t.output == "sign" and s.activation == t.activation == "sign":
            return "tree_majority"
    return None


def _ref_fields(model, rng):
    K, d, N = model.K, model.d, model.N
    if model.topology == "tree":
        return np.arange(N).reshape(K, d)
    if model.topology == "random":
        return np.stack([np.sort(rng.choice(N, d, replace=False)) for _ in range(K)])
    return np.zeros((K, 1), np.int64)


def _ref_weights(model, rng, scale):
    K, F = model.K, model.d
    if model.weights == "binary":
        return rng.choice(np.array([-1.0, 1.0]), size=(K, F))
    if model.weights == "axis":
        w = np.zeros((1, F))
        w[0, 0] = math.sqrt(F)
        return w
    return scale * rng.standard_normal((K, F))


def setup_replica(teacher, student, seed, r, init_scale):
    """Teacher and student of replica r from the (seed, r, 0) stream: teacher fields, teacher
    weights, student fields (the teacher's when both are random with equal K and d), student
    weights. Without a teacher (user data) only the student's."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, r, STREAM_SETUP]))
    if teacher is None:
        Wt, ft = np.zeros((0, 1)), np.zeros((0, 1), np.int64)
        shared = False
    else:
        ft = _ref_fields(teacher, rng)
        Wt = _ref_weights(teacher, rng, 1.0)
        shared = (student.topology == teacher.topology == "random" and student.K == teacher.K
                  and student.d == teacher.d)
    fs = ft.copy() if shared else _ref_fields(student, rng)
    W = _ref_weights(student, rng, init_scale)
    return Wt, ft, W, fs


def draw_input(state, N, inputs, chi):
    x = np.empty(N)
    if inputs == "binary":
        krng.fill_binary(state, x)
        return x
    krng.fill_normal(state, x)
    if chi != 0:   # |x_1| = sqrt(2 G), G ~ Gamma((chi + 1)/2): p(x_1) ~ |x_1|^chi exp(-x_1^2/2)
        G = krng.gamma(state, 0.5 * (chi + 1.0))
        x[0] = math.sqrt(2.0 * G) * (1.0 if krng.uniform(state) - 0.5 >= 0 else -1.0)
    return x


def draw_samples(state, n, teacher_net, Wt, N, data, with_noise):
    """n samples: input, clean teacher label, then (if with_noise) its noise, sample by sample."""
    X = np.empty((n, N))
    y = np.empty(n)
    for mu in range(n):
        X[mu] = draw_input(state, N, data.inputs, data.chi)
        y[mu] = teacher_net.label(Wt, X[mu])[0]
        if with_noise and data.label_noise != 0:
            if teacher_net.out == "sum":
                y[mu] += data.label_noise * krng.normal(state)
            elif krng.uniform(state) < data.label_noise:
                y[mu] = -y[mu]
    return X, y


def binary_batch_input_major(state, m, N):
    """m uniform +-1 inputs drawn input by input: input i of samples 64 w .. 64 w + 63 are the
    bits of one 64-bit word (bit b: sample 64 w + b; set = +1)."""
    X = np.empty((m, N))
    for i in range(N):
        for w in range(0, m, 64):
            word = int(krng.next_u64(state))
            for b in range(min(64, m - w)):
                X[w + b, i] = 1.0 if (word >> b) & 1 else -1.0
    return X


def draw_online_batch(state, m, teacher_net, Wt, N, data):
    """A fresh online batch: binary inputs input by input, then the labels, then their noise
    sample by sample; Gaussian inputs sample by sample (input, label, noise)."""
    if data.inputs != "binary":
        return draw_samples(state, m, teacher_net, Wt, N, data, True)
    X = binary_batch_input_major(state, m, N)
    y = np.array([teacher_net.label(Wt, X[mu])[0] for mu in range(m)])
    if data.label_noise != 0:
        for mu in range(m):
            if teacher_net.out == "sum":
                y[mu] += data.label_noise * krng.normal(state)
            elif krng.uniform(state) < data.label_noise:
                y[mu] = -y[mu]
    return X, y


def record_grid(record, total):
    """Step 0, then up to record - 1 log-spaced steps ending at the last step."""
    if np.isscalar(record):
        pts = np.unique(np.round(np.geomspace(1, total, max(record - 1, 2))).astype(np.int64))
        return np.concatenate([[0], pts[-(record - 1):]]).astype(np.int64)
    return np.asarray(record, np.int64)


def same_function_by_symmetry(teacher, student, W, Wt, fs, ft, inputs):
    """Brute force: is the binary student W the teacher Wt up to the architecture's symmetries?
    Tries every permutation of units between units with equal receptive fields and, for a parity
    output whose fields can never be exactly 0, every even set of sign flips."""
    K = W.shape[0]
    flips_ok = student.output == "parity" and (inputs == "gaussian" or student.d % 2 == 1)
    dense = student.topology == "dense"
    for perm in itertools.permutations(range(K)):
        if not dense and any(not np.array_equal(fs[k], ft[perm[k]]) for k in range(K)):
            continue
        for signs in itertools.product([1.0, -1.0] if flips_ok else [1.0], repeat=K):
            if np.prod(signs) < 0:
                continue
            if all(np.array_equal(W[k], signs[k] * Wt[perm[k]]) for k in range(K)):
                return True
    return False


def weights_rule(teacher, student, success_eps):
    """How the driver decides "on the teacher": None (eps_g <= success_eps at the probes), or,
    for binary sign-unit classifiers with the teacher's architecture (plain read-out) asked for
    exact recovery, "weights" (tree machines, perceptrons) or "weights+test" (the symmetric
    match, else no error on the test set: dense and random-field machines)."""
    if teacher is None or success_eps != 0:
        return None
    same = all(getattr(student, a) == getattr(teacher, a) for a in
               ("N", "K", "d", "topology", "activation", "output", "weights", "second_layer"))
    if not (same and student.weights == "binary" and student.activation == "sign"
            and student.classifier and student.second_layer is None):
        return None
    return "weights" if (student.topology == "tree" or student.K == 1) else "weights+test"


def best_overlap(R, Q, T):
    """mean over teacher units n of max_k |R_kn| / sqrt(Q_kk T_nn) (TrainResult.overlap)."""
    if R.shape[1] == 0:
        return np.nan
    Qd = np.sqrt(np.clip(np.diag(Q), 1e-300, None))
    Td = np.sqrt(np.clip(np.diag(T), 1e-300, None))
    return float((np.abs(R) / Qd[:, None] / Td[None, :]).max(axis=0).mean())


def train_reference(teacher, student, algo, data, steps=None, epochs=None, alpha=None, replicas=2,
                    seed=0, init_scale=1.0, record=5, stop=None, success_eps=None, init="random",
                    window=None, probe_every=None, check_every=None):
    """Pure-NumPy ps.train: teacher-generated data (ps.Online, ps.Dataset(P)) or user arrays
    (ps.Dataset.from_arrays with teacher=None). Returns a dict of the TrainResult arrays,
    stationary observables included."""
    from physsgd.algorithms import SGD
    from physsgd.data import Dataset
    sgd = isinstance(algo, SGD)
    finite = isinstance(data, Dataset)
    N, K, F = student.N, student.K, student.d
    m = algo.batch_size
    proposal = (not sgd) and algo.new_batch == "proposal"
    per_step = m * (K * F if proposal else 1)
    if steps is not None:
        total = steps
    elif epochs is not None:
        total = epochs * (data.P // m)
    else:
        total = max(1, math.ceil(alpha * N / per_step - 1e-9))
    rec_steps = record_grid(record, total)
    n_rec = len(rec_steps)
    if check_every is None:
        check_every = max(1, data.P // m if finite else round(N / per_step))
    probe_every = check_every if probe_every is None else probe_every
    if window is None:                    # the second half of the run, both ends inclusive
        w_first, w_last = (total // 2 + 1 if total > 1 else 1), total
    elif isinstance(window, float):       # the last ceil(f * total) steps
        w_first, w_last = total - max(1, math.ceil(window * total - 1e-9)) + 1, total
    else:
        w_first, w_last = window
    in_window = lambda t: w_first <= t <= w_last  # noqa: E731
    if success_eps is None:
        success_eps = (0.0 if student.weights == "binary" and student.classifier
                       else 0.01 if student.classifier else 1e-3)
    mode = closed_form_mode(teacher, student, algo, data)
    margin = algo.margin if sgd else 0.0
    output_scale = (algo.output_scale or 0.0) if sgd else 0.0
    user = finite and data.user_data
    rule = weights_rule(teacher, student, success_eps)
    exact = rule is not None
    batch_eps = (not finite) and teacher is not None and data.label_noise == 0
    independent = finite and getattr(data, "batches", "epochs") == "independent"
    M = teacher.K if teacher is not None else 0
    vs = np.asarray(student.second_layer or np.ones(K), float)
    vt = np.asarray(teacher.second_layer or np.ones(M), float) if teacher is not None else np.zeros(0)
    if user:   # one fixed split of the user rows, shared by all replicas
        perm = np.random.default_rng(np.random.SeedSequence([seed, 2**31])).permutation(len(data.y))
        X_user, y_user = data.X[perm[:data.P]], data.y[perm[:data.P]]
        X_held, y_held = data.X[perm[data.P:]], data.y[perm[data.P:]]

    res = dict(eps_g=np.full((replicas, n_rec), np.nan), train_error=np.full((replicas, n_rec), np.nan),
               R=np.full((replicas, n_rec, K, M), np.nan), Q=np.full((replicas, n_rec, K, K), np.nan),
               T=np.zeros((replicas, M, M)), weight_change=np.full((replicas, n_rec), np.nan),
               weight_norm=np.full((replicas, n_rec), np.nan), diverged=np.zeros(replicas, bool),
               success=np.zeros(replicas, bool), stopped_at=np.zeros(replicas, np.int64),
               steps=rec_steps, time=rec_steps * per_step / N,
               time_at_teacher=np.full(replicas, np.nan), first_passage=np.full(replicas, -1, np.int64),
               first_exit=np.full(replicas, -1, np.int64), window_overlap=np.full(replicas, np.nan),
               window_eps_g=np.full(replicas, np.nan), window=np.array([w_first, w_last]))
    train_states = krng.seed_states(seed, replicas, STREAM_TRAIN)
    test_states = krng.seed_states(seed, replicas, STREAM_TEST)
    for r in range(replicas):
        s_train, s_test = train_states[r].copy(), test_states[r].copy()
        Wt, ft, W, fs = setup_replica(teacher, student, seed, r, init_scale)
        if isinstance(init, str) and init == "teacher":
            W = Wt.copy()
        elif not isinstance(init, str):
            W0_given = np.asarray(init, float)
            W = (W0_given[r] if W0_given.ndim == 3 else W0_given).copy()
        tnet = (Net(teacher.activation, teacher.output, vt, ft, teacher.topology == "dense")
                if teacher is not None else Net("linear", "sum", vt, ft, False))
        snet = Net(student.activation, student.output, vs, fs, student.topology == "dense")
        W0 = W.copy()
        if user:
            Xtr, ytr = X_user, y_user
        elif finite:
            Xtr, ytr = draw_samples(s_train, data.P, tnet, Wt, N, data, True)
        if finite:
            epoch_order = np.arange(data.P)
            pos = data.P                       # the first batch starts an epoch
        if user:
            Xte, yte = X_held, y_held
        elif mode is None or rule == "weights+test":
            Xte, yte = draw_samples(s_test, data.test_size, tnet, Wt, N, data, False)
        R, Q, T = overlaps(W, fs, snet.dense, Wt, ft, tnet.dense, N)
        res["T"][r] = T

        def next_batch():
            nonlocal pos
            if not finite:
                return draw_online_batch(s_train, m, tnet, Wt, N, data)
            if independent:                    # m distinct samples: a partial Fisher-Yates shuffle
                for i in range(m):
                    j = i + krng.randint(s_train, data.P - i)
                    epoch_order[i], epoch_order[j] = epoch_order[j], epoch_order[i]
                sel = epoch_order[:m].copy()
                return Xtr[sel], ytr[sel]
            if pos + m > data.P:               # drop_last: fresh order when < m unseen remain
                fisher_yates(s_train, epoch_order)
                pos = 0
            sel = epoch_order[pos:pos + m].copy()
            pos += m
            return Xtr[sel], ytr[sel]

        def set_error(X, y):
            Fv = scaled_output(snet, W, W0, X, output_scale)
            return sample_error(snet.out, Fv, y).mean(), bool(np.all(y * Fv >= margin))

        def on_teacher():
            if same_function_by_symmetry(teacher, student, W, Wt, fs, ft, data.inputs):
                return True
            return rule == "weights+test" and set_error(Xte, yte)[0] == 0.0

        def current_eps(R, Q, on):
            if exact and on:
                return 0.0
            if mode is None:
                return set_error(Xte, yte)[0]
            return eps_closed_form(mode, Q, R, T, vs, vt)

        track = dict(on=0, seen=0, was_on=False, probes=0, overlap=0.0, eps=0.0, berr=0.0, nberr=0)

        def observe_teacher(step, on):
            if on and res["first_passage"][r] < 0:
                res["first_passage"][r] = step
            if not on and track["was_on"] and res["first_exit"][r] < 0:
                res["first_exit"][r] = step
            track["was_on"] |= bool(on)
            if in_window(step):
                track["seen"] += 1
                track["on"] += int(on)

        buf = np.zeros((K, F))
        flip_order = np.arange(K * F)
        batch_errors = []
        rec, stop_at = 0, total
        for step in range(total + 1):
            if step > 0:
                finite_w = True
                if proposal:
                    fisher_yates(s_train, flip_order)
                    errors = []
                    for idx in flip_order:
                        Xb, yb = next_batch()
                        errors.append(energy(snet, W, Xb, yb) / m)
                        W, _ = propose(snet, s_train, W, Xb, yb, idx, algo.temperature, algo.ties)
                    berr = float(np.mean(errors))
                elif sgd:
                    Xb, yb = next_batch()
                    W, buf, berr, finite_w = sgd_step(
                        snet, W, W0, buf, Xb, yb, loss=algo.loss, margin=margin,
                        output_scale=output_scale, lr=algo.lr, momentum=algo.momentum,
                        weight_decay=algo.weight_decay)
                else:
                    Xb, yb = next_batch()
                    W, berr, _ = greedy_sweep(snet, s_train, W, Xb, yb, flip_order,
                                              algo.temperature, algo.ties)
                if not finite_w:
                    res["diverged"][r] = True
                    stop_at = step
                    break
                batch_errors.append(berr)
                if batch_eps and in_window(step - 1):   # the error of the state after step - 1
                    track["berr"] += berr
                    track["nberr"] += 1
            probe = step % probe_every == 0 or step == w_last
            on = False
            if exact:
                on = on_teacher()
                observe_teacher(step, on)
            elif probe:
                R, Q, _ = overlaps(W, fs, snet.dense, Wt, ft, tnet.dense, N)
                on = current_eps(R, Q, False) <= success_eps
                observe_teacher(step, on)
            if probe and in_window(step):
                R, Q, _ = overlaps(W, fs, snet.dense, Wt, ft, tnet.dense, N)
                track["overlap"] += best_overlap(R, Q, T)
                if not batch_eps:
                    track["eps"] += current_eps(R, Q, on)
                track["probes"] += 1
            is_record = rec < n_rec and step == rec_steps[rec]
            check = stop is not None and step > 0 and (step % check_every == 0 or is_record)
            if not (is_record or check):
                continue
            R, Q, _ = overlaps(W, fs, snet.dense, Wt, ft, tnet.dense, N)
            eg = current_eps(R, Q, on)
            if not (math.isfinite(eg) and math.isfinite(np.linalg.norm(W))):
                res["diverged"][r] = True
                stop_at = step
                break
            if finite:
                terr, zero_loss = set_error(Xtr, ytr)
            else:
                terr, zero_loss = (np.mean(batch_errors) if batch_errors else np.nan), False
            halt = check and {"zero_train_error": terr == 0.0, "zero_loss": zero_loss,
                              "success": on if exact else eg <= success_eps}[stop]
            if is_record or halt:
                res["eps_g"][r, rec], res["train_error"][r, rec] = eg, terr
                res["R"][r, rec], res["Q"][r, rec] = R, Q
                res["weight_change"][r, rec] = np.linalg.norm(W - W0) / math.sqrt(K * F)
                res["weight_norm"][r, rec] = np.linalg.norm(W) / math.sqrt(K * F)
                rec += 1
                batch_errors = []
            if halt:
                stop_at = step
                break
        res["stopped_at"][r] = stop_at
        names = ("eps_g", "train_error", "weight_change", "weight_norm", "R", "Q")
        for t in range(rec, n_rec):       # stopped early: NaN (diverged) or repeat the last record
            for name in names if (res["diverged"][r] or rec > 0) else ():
                res[name][r, t] = np.nan if res["diverged"][r] else res[name][r, rec - 1]
        if not res["diverged"][r]:
            if track["seen"]:
                res["time_at_teacher"][r] = track["on"] / track["seen"]
            if track["probes"]:
                res["window_overlap"][r] = track["overlap"] / track["probes"]
            if batch_eps:
                res["window_eps_g"][r] = track["berr"] / track["nberr"] if track["nberr"] else np.nan
            elif track["probes"]:
                res["window_eps_g"][r] = track["eps"] / track["probes"]
        if res["diverged"][r] or rec == 0:
            res["success"][r] = False
        elif exact:
            res["success"][r] = on_teacher()
        else:
            res["success"][r] = res["eps_g"][r, -1] <= success_eps
    return res


# ============================================================================================
# overlap chain (engine="overlaps", physsgd/kernels/overlaps.py): one step on explicit vectors
# ============================================================================================
def chain_step_explicit(teacher, student, algo, Y, U, Bt, seed=0):
    """One online SGD step on explicit weight vectors rebuilt from the chain's coordinates and
    random numbers; returns (Gram matrices of every block after the step, mean batch error,
    indices of the samples with a non-zero loss derivative).

    Block b (dense: one block of fan-in N; tree: unit b's block of fan-in d) has rows
    (teacher, W0, W, momentum buffer) s_a = sqrt(F) sum_j Y[b, a, j] f_j for an explicit random
    orthonormal frame f_1..f_n of R^F, completed by q more orthonormal vectors g_1..g_q. Sample
    mu is x_mu = sum_j U[mu, b, j] f_j + sum_j Bt[b, i, j] g_j on block b, i the rank of mu among
    the samples whose loss derivative is non-zero (the only ones whose orthogonal parts the
    chain draws). The step itself is ``sgd_step`` above on the assembled (K, F) weights, and the
    Gram matrices are explicit dot products / F, so the twin shares nothing with the kernel but
    the random numbers."""
    Y, U, Bt = (np.asarray(a, float) for a in (Y, U, Bt))
    blocks, rows, n = Y.shape
    m = U.shape[0]
    q = Bt.shape[2]
    tree = student.topology == "tree"
    F, N = student.d, student.N
    Kb, Mb = (1, 1) if tree else (student.K, teacher.K)
    c = Mb + Kb
    mom = algo.momentum > 0
    rng = np.random.default_rng(seed)
    frames = [np.linalg.qr(rng.standard_normal((F, F)))[0] for _ in range(blocks)]
    S = [math.sqrt(F) * Y[b] @ frames[b][:, :n].T for b in range(blocks)]        # (rows, F)
    Wt = np.vstack([S[b][:Mb] for b in range(blocks)])
    W0 = np.vstack([S[b][Mb:c] for b in range(blocks)])
    W = np.vstack([S[b][c:c + Kb] for b in range(blocks)])
    buf = np.vstack([S[b][c + Kb:] for b in range(blocks)]) if mom else np.zeros_like(W)
    fields = np.arange(N).reshape(student.K, F) if tree else np.zeros((student.K, 1), np.int64)
    tfields = np.arange(N).reshape(teacher.K, F) if tree else np.zeros((teacher.K, 1), np.int64)
    vs = student.second_layer or np.ones(student.K)
    vt = teacher.second_layer or np.ones(teacher.K)
    snet = Net(student.activation, student.output, vs, fields, not tree)
    tnet = Net(teacher.activation, teacher.output, vt, tfields, not tree)
    X = np.zeros((m, N))
    for b in range(blocks):
        X[:, b * F:(b + 1) * F] = U[:, b, :n] @ frames[b][:, :n].T
    y = tnet.label(Wt, X)            # fields, hence labels, see the frame parts only
    dl = loss_derivative(algo.loss, scaled_output(snet, W, W0, X, algo.output_scale), y, algo.margin)
    active = np.flatnonzero(dl != 0.0)
    for i, mu in enumerate(active):
        for b in range(blocks):
            X[mu, b * F:(b + 1) * F] += Bt[b, i, :q] @ frames[b][:, n:n + q].T
    W_new, buf_new, err, _ = sgd_step(snet, W, W0, buf, X, y, loss=algo.loss, margin=algo.margin,
                                      output_scale=algo.output_scale, lr=algo.lr,
                                      momentum=algo.momentum, weight_decay=algo.weight_decay)
    grams = np.empty((blocks, rows, rows))
    for b in range(blocks):
        parts = [Wt[b * Mb:(b + 1) * Mb], W0[b * Kb:(b + 1) * Kb], W_new[b * Kb:(b + 1) * Kb]]
        if mom:
            parts.append(buf_new[b * Kb:(b + 1) * Kb])
        Sb = np.vstack(parts)
        grams[b] = Sb @ Sb.T / F
    return grams, err, active

# ============================================================================================
# curvature and gradient noise (measure=[...]; physsgd/kernels/curvature.py)
# ============================================================================================
# The objective SGD descends on a finite training set (X, y) of P samples:
#     Phi(W) = (1/P) sum_mu loss(F_mu) / alpha + (weight_decay / 2) |W|^2,
# F_mu = f(W, x_mu), or alpha (f(W, x_mu) - f(W0, x_mu)) when output_scale alpha is given
# (alpha = 1 otherwise). Everything below is built from explicit (P, K, F) arrays and dense
# (K F, K F) matrices; weights are flattened row by row (index k * F + j).

def activation_second_derivative(act, h):
    """g''(h); relu and linear: 0 (relu's kink at 0 is ignored: it has measure zero)."""
    h = np.asarray(h, dtype=float)
    if act == "erf":
        return -h * activation_derivative("erf", h)
    if act == "tanh":
        t = np.tanh(h)
        return -2.0 * t * (1.0 - t * t)
    if act in ("relu", "linear", "sign"):
        return np.zeros_like(h)
    raise ValueError(act)


def output_hessian(act, out, v, H):
    """(P, K, K) d^2 f / dh_k dh_l at pre-activations H (P, K)."""
    G, D = activation(act, H), activation_derivative(act, H)
    D2 = activation_second_derivative(act, H)
    P, K = H.shape
    B = np.zeros((P, K, K))
    if out == "parity":
        for k in range(K):
            for l in range(K):
                rest = [i for i in range(K) if i not in (k, l)]
                prod = np.prod(G[:, rest], axis=-1)
                B[:, k, l] = (D2[:, k] if k == l else D[:, k] * D[:, l]) * prod
        return B
    for k in range(K):
        B[:, k, k] = np.asarray(v, float)[k] * D2[:, k]
    return B


def loss_second_derivative(loss, F, y, margin):
    """d^2 loss / dF^2 (hinge: 0 away from its kink; hebbian: 0)."""
    F, y = np.asarray(F, float), np.asarray(y, float)
    if loss == "square":
        return np.ones_like(F)
    if loss == "hinge" or loss == "hebbian":
        return np.zeros_like(F)
    if loss == "logistic":
        s = _expit(y * F)
        return y * y * s * (1.0 - s)
    if loss == "squared_hinge":
        return np.where(margin - y * F > 0.0, y * y, 0.0)
    raise ValueError(loss)


def _input_blocks(net, W, X):
    """(P, K, F) xhat_k = x[S_k] / sqrt(F): dh_k / dW_k."""
    K, F = W.shape
    idx = field_indices(net.fields, net.dense, K, X.shape[1])
    return X[:, idx] / math.sqrt(F)


def per_sample_gradients(net, W, W0, X, y, *, loss, margin, output_scale):
    """(P, K, F) gradient of loss(F_mu) / alpha with respect to W, sample by sample."""
    Fout = scaled_output(net, W, W0, X, output_scale)
    dl = loss_derivative(loss, Fout, y, margin)
    A = output_gradient(net.act, net.out, net.v, net.H(W, X))
    return (dl[:, None] * A)[:, :, None] * _input_blocks(net, W, X)


def objective_gradient(net, W, W0, X, y, *, loss, margin, output_scale, weight_decay):
    """(K, F) grad Phi."""
    return per_sample_gradients(net, W, W0, X, y, loss=loss, margin=margin,
                                output_scale=output_scale).mean(axis=0) + weight_decay * W


def objective_hessian(net, W, W0, X, y, *, loss, margin, output_scale, weight_decay):
    """(K F, K F) Hessian of Phi, dense, from its two terms sample by sample:
    alpha loss''(F) (grad f)(grad f)^T + loss'(F) sum_kl d^2f/dh_k dh_l xhat_k xhat_l^T."""
    K, F = W.shape
    alpha = output_scale or 1.0
    Fout = scaled_output(net, W, W0, X, output_scale)
    dl = loss_derivative(loss, Fout, y, margin)
    d2l = loss_second_derivative(loss, Fout, y, margin)
    Hpre = net.H(W, X)
    A = output_gradient(net.act, net.out, net.v, Hpre)              # (P, K)
    B = output_hessian(net.act, net.out, net.v, Hpre)               # (P, K, K)
    Xh = _input_blocks(net, W, X)                                   # (P, K, F)
    grad_f = (A[:, :, None] * Xh).reshape(len(X), K * F)            # (P, K F)
    Hs = np.zeros((K * F, K * F))
    for mu in range(len(X)):
        Hs += alpha * d2l[mu] * np.outer(grad_f[mu], grad_f[mu])
        if dl[mu] != 0.0:
            for k in range(K):
                for l in range(K):
                    Hs[k * F:(k + 1) * F, l * F:(l + 1) * F] += dl[mu] * B[mu, k, l] * np.outer(Xh[mu, k], Xh[mu, l])
    return Hs / len(X) + weight_decay * np.eye(K * F)


def gradient_noise(net, W, W0, X, y, m, *, loss, margin, output_scale, weight_decay,
                   replacement=False):
    """The exact second moments of the mini-batch gradient on the training set (X, y):
    sigma2 = (1/P) sum_mu |g_mu - G|^2 (per-sample variance, divisor P), |G|^2 with
    G = grad Phi, and E|g_B - E g_B|^2 for a batch of m samples: sigma2 / m with replacement,
    sigma2 / m (P - m) / (P - 1) without. Returns dict(sigma2, G2, grad_noise, noise_scale)."""
    g = per_sample_gradients(net, W, W0, X, y, loss=loss, margin=margin, output_scale=output_scale)
    P = len(X)
    Gbar = g.mean(axis=0)
    sigma2 = float(((g - Gbar) ** 2).sum() / P)
    G2 = float(((Gbar + weight_decay * W) ** 2).sum())
    fpc = 1.0 if replacement else ((P - m) / (P - 1) if P > 1 else 0.0)
    return dict(sigma2=sigma2, G2=G2, grad_noise=sigma2 / m * fpc,
                noise_scale=sigma2 / G2 if G2 > 0 else (math.inf if sigma2 > 0 else math.nan))


def replica_training_set(teacher, student, data, seed, r, replicas, init_scale=1.0):
    """Replica r's training set (X, y), teacher and initial student as ps.train draws them:
    (X, y, Wt, ft, W, fs). Teacher-generated data only (user data: the split in train_reference)."""
    train_states = krng.seed_states(seed, replicas, STREAM_TRAIN)
    s_train = train_states[r].copy()
    Wt, ft, W, fs = setup_replica(teacher, student, seed, r, init_scale)
    vt = np.asarray(teacher.second_layer or np.ones(teacher.K), float)
    tnet = Net(teacher.activation, teacher.output, vt, ft, teacher.topology == "dense")
    X, y = draw_samples(s_train, data.P, tnet, Wt, student.N, data, True)
    return X, y, Wt, ft, W, fs

# ============================================================================================
# analysis: Houdayer-Hartmann collapse quality (slow twin of analysis.fss.quality.hh_kernel)
# ============================================================================================
# Written from SCIENCE.md 5.2, independently of the kernel: scale the data, then for every point
# collect from every *other* size the two points bracketing its scaled x, fit a weighted straight
# line through them and compare. Only points inside the scaled-x window take part, as terms and as
# bracketing points.
def hh_quality(size, x, y, dy, xc, nu, zeta, b=0.0, omega=1.0, window=(-np.inf, np.inf), c=0.0,
               s=0.0):
    """(S, n_terms, Y, dY2): the Houdayer-Hartmann S and, per point (input order), the master
    curve value and its variance (NaN where no master curve is defined). Corrections: the
    amplitude y / (1 + b L^-omega) and the scaling variable (x - xc) L^(1/nu) (1 + c L^-omega)
    + s L^-omega."""
    size, x, y, dy = (np.asarray(a, float) for a in (size, x, y, dy))
    corr = 1.0 + b * size ** (-omega)
    X = (x - xc) * size ** (1.0 / nu) * (1.0 + c * size ** (-omega)) + s * size ** (-omega)
    Ys = y * size ** (-zeta / nu) / corr
    DY = dy * size ** (-zeta / nu) / np.abs(corr)
    inside = (X >= window[0]) & (X <= window[1])
    Y = np.full(len(x), np.nan)
    dY2 = np.full(len(x), np.nan)
    terms = []
    for p in np.flatnonzero(inside):
        chosen = []
        for L in np.unique(size):
            if L == size[p]:
                continue
            idx = np.flatnonzero((size == L) & inside)
            idx = idx[np.argsort(X[idx])]
            if len(idx) < 2 or not (X[idx[0]] <= X[p] <= X[idx[-1]]):
                continue
            j = min(np.searchsorted(X[idx], X[p], side="right") - 1, len(idx) - 2)
            chosen += [idx[j], idx[j + 1]]
        if not chosen:
            continue
        w = 1.0 / DY[chosen] ** 2
        xs, ys = X[chosen], Ys[chosen]
        K, Kx, Kxx, Ky, Kxy = w.sum(), (w * xs).sum(), (w * xs ** 2).sum(), (w * ys).sum(), (w * xs * ys).sum()
        delta = K * Kxx - Kx ** 2
        if delta <= 1e-12 * K * Kxx:
            continue                          # all bracketing points at one x: no line
        b_hat = (Kxx * Ky - Kx * Kxy) / delta
        m_hat = (K * Kxy - Kx * Ky) / delta
        var_b, var_m, cov_bm = Kxx / delta, K / delta, -Kx / delta
        Y[p] = m_hat * X[p] + b_hat
        dY2[p] = var_m * X[p] ** 2 + 2 * cov_bm * X[p] + var_b
        terms.append((Ys[p] - Y[p]) ** 2 / (DY[p] ** 2 + dY2[p]))
    S = float(np.mean(terms)) if terms else np.inf
    return S, len(terms), Y, dY2
