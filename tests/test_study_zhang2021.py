"""Edge-of-chaos study (runs/zhang2021, SCIENCE.md section 3): the chaos probe physsgd.chaos, the
Fashion-MNIST IDX loader, the paper's network (mlp.py: gradients, PyTorch's SGD conventions) and
(slow) the compiled step against the reference and a reduced version of the study."""
import gzip
import math
import os
import struct
import sys

import numpy as np
import pytest

from physsgd import chaos

RUNS = os.path.join(os.path.dirname(__file__), os.pardir, "runs", "zhang2021")


# ------------------------------------------------------------------------------ chaos probe
def test_lyapunov_sign_change_at_J_1_N500():
    """SCIENCE.md section 6 item 8: J0 = 0, tanh, N = 500: lambda_1 < 0 for J < 1, > 0 for J > 1."""
    N = 500
    lam = {J: chaos.lyapunov(chaos.random_layer(N, J, seed=1), steps=600, burn=200, seed=1)
           for J in (0.7, 0.9, 1.5, 2.0)}
    assert lam[0.7] < 0 and lam[0.9] < 0
    assert lam[1.5] > 0 and lam[2.0] > 0
    # ordered phase: the orbit falls onto x = 0, lambda_1 = ln(spectral radius) ~ ln J
    assert lam[0.7] == pytest.approx(math.log(0.7), abs=0.06)
    # chaotic phase: close to the mean-field exponent
    assert lam[2.0] == pytest.approx(chaos.mean_field_lyapunov(2.0), abs=0.02)


def test_mean_field_lyapunov():
    assert chaos.mean_field_lyapunov(0.5) == pytest.approx(math.log(0.5))
    assert chaos.mean_field_lyapunov(1.2) > 0 > chaos.mean_field_lyapunov(0.95)
    assert abs(chaos.mean_field_lyapunov(1.0)) < 1e-2
    # a strong ferromagnetic coupling orders a layer that would be chaotic at J0 = 0
    assert chaos.mean_field_lyapunov(1.5, J0=3.0) < 0 < chaos.mean_field_lyapunov(1.5)


def test_random_layer_and_order_parameters():
    W = chaos.random_layer(400, 1.3, 2.0, seed=3)
    J, J0 = chaos.order_parameters(W)
    assert J == pytest.approx(1.3, rel=0.01)
    assert J0 == pytest.approx(2.0, abs=0.2)        # std of N mean(W) is J/sqrt(N) = 0.065
    assert np.array_equal(W, chaos.random_layer(400, 1.3, 2.0, seed=3))
    assert not np.array_equal(W, chaos.random_layer(400, 1.3, 2.0, seed=4))
    # physsgd weights W_ps with h = W_ps x / sqrt(N): effective matrix W_ps / sqrt(N), J = std(W_ps)
    rng = np.random.default_rng(0)
    Wps = 0.5 * rng.standard_normal((300, 300))
    assert chaos.order_parameters(Wps / math.sqrt(300))[0] == pytest.approx(Wps.std())


def test_lyapunov_reproducible_and_x0():
    W = chaos.random_layer(60, 1.5, seed=0)
    a = chaos.lyapunov(W, steps=200, burn=50, seed=2)
    assert a == chaos.lyapunov(W, steps=200, burn=50, seed=2)
    assert np.isfinite(chaos.lyapunov(W, steps=200, burn=50, x0=np.full(60, 0.1)))


@pytest.mark.parametrize("call, match", [
    (lambda: chaos.lyapunov(np.ones((3, 4))), "square"),
    (lambda: chaos.lyapunov(np.ones(5)), "square"),
    (lambda: chaos.lyapunov(np.full((3, 3), np.nan)), "finite"),
    (lambda: chaos.lyapunov(np.eye(4), steps=0), "steps=0"),
    (lambda: chaos.lyapunov(np.eye(4), burn=-1), "burn=-1"),
    (lambda: chaos.lyapunov(np.eye(4), x0=np.zeros(3)), "x0"),
    (lambda: chaos.lyapunov(np.eye(4), steps=2.5), "steps=2.5"),
    (lambda: chaos.random_layer(1, 1.0), "N=1"),
    (lambda: chaos.random_layer(10, -1.0), "J=-1.0"),
    (lambda: chaos.random_layer(10, 1.0, float("nan")), "J0=nan"),
    (lambda: chaos.random_layer(10, 1.0, seed=-1), "seed=-1"),
    (lambda: chaos.order_parameters(np.ones((2, 3))), "square"),
    (lambda: chaos.mean_field_lyapunov(0.0), "J=0.0"),
])
def test_chaos_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------------------ IDX loader
def _write_idx(path, arr, code=0x08, gz=False):
    arr = np.asarray(arr)
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    body = arr.astype({0x08: np.uint8, 0x0C: ">i4"}[code]).tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(head + body)


@pytest.fixture
def fm():
    sys.path.insert(0, os.path.abspath(RUNS))
    try:
        import fashion_mnist
        yield fashion_mnist
    finally:
        sys.path.remove(os.path.abspath(RUNS))


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_loader_synthetic_idx(tmp_path, fm, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([0, 1, 2, 8, 9], dtype=np.uint8)
    sfx = ".gz" if gz else ""
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{sfx}", images, gz=gz)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{sfx}", labels, gz=gz)
    X, y = fm.load_fashion_mnist(tmp_path, "test")
    assert X.shape == (5, 784) and y.tolist() == [0, 1, 2, 8, 9]
    assert np.allclose(X * 255, images.reshape(5, -1))
    Z, Zt = fm.features(X, X[:2])
    assert Z.shape == (5, 196) and Zt.shape == (2, 196)
    assert np.allclose(Z.mean(0), 0) and np.allclose(Zt, Z[:2])
    assert np.allclose(fm.pool2x2(X)[0, 0], images[0, :2, :2].mean() / 255)
    assert fm.features(X, pool=False)[0].shape == (5, 784)
    # an int32 IDX file is read with the right byte order
    _write_idx(tmp_path / "ints", np.array([[1, -2], [300000, 4]]), code=0x0C)
    assert fm.read_idx(tmp_path / "ints").tolist() == [[1, -2], [300000, 4]]


def test_fashion_mnist_loader_errors(tmp_path, fm):
    with pytest.raises(FileNotFoundError, match="train-images"):
        fm.load_fashion_mnist(tmp_path, "train")
    with pytest.raises(ValueError, match="split"):
        fm.load_fashion_mnist(tmp_path, "valid")
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(ValueError, match="magic"):
        fm.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 3)
    with pytest.raises(ValueError, match="expected 10"):
        fm.read_idx(tmp_path / "short")


# ------------------------------------------------------------------------------ the network
@pytest.fixture(scope="module")
def mlp():
    sys.path.insert(0, os.path.abspath(RUNS))
    try:
        import mlp as m
        yield m
    finally:
        sys.path.remove(os.path.abspath(RUNS))


def test_mlp_gradients_against_finite_differences(mlp):
    """Every gradient of the mean cross-entropy against central differences (h = 1e-6, float64:
    truncation ~h^2, rounding ~1e-16/h, so agreement to 1e-7 relative is expected)."""
    rng = np.random.default_rng(0)
    p = mlp.init_params(5, 3, 1.3, 2, seed=0)
    for k in p:
        p[k] = p[k] + 0.3 * rng.standard_normal(p[k].shape)        # biases away from 0 too
    X = rng.standard_normal((2, 4, 5))
    y = rng.integers(0, 3, (2, 4))
    L, g = mlp.loss_and_grads(p, X, y)
    assert np.allclose(L, mlp.loss(p, X, y), rtol=1e-14)
    for k in mlp.PARAMS:
        num = np.zeros_like(p[k])
        for i in np.ndindex(p[k].shape):
            q = {kk: v.copy() for kk, v in p.items()}
            q[k][i] += 1e-6
            up = mlp.loss(q, X, y)[i[0]]
            q[k][i] -= 2e-6
            num[i] = (up - mlp.loss(q, X, y)[i[0]]) / 2e-6
        assert np.abs(num - g[k]).max() <= 1e-7 * np.abs(g[k]).max(), k


def test_mlp_sgd_follows_pytorch_conventions(mlp):
    """One hand-computed step of torch.optim.SGD(lr, momentum, weight_decay), full batch:
    buf_1 = g + wd p0, p1 = p0 - lr buf_1; buf_2 = m buf_1 + (g(p1) + wd p1), p2 = p1 - lr buf_2."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((6, 4))
    y = np.array([0, 1, 2, 0, 1, 2])
    opt = mlp.SGD(lr=0.3, batch_size=6, momentum=0.5, weight_decay=0.1)
    r = mlp.train(X, y, opt, epochs=2, J=0.8, replicas=1, seed=4, kernel=False)
    p = mlp.init_params(4, 3, 0.8, 1, seed=4)
    buf = {k: 0.0 for k in p}
    for _ in range(2):
        _, g = mlp.loss_and_grads(p, X[None], y[None])
        for k in p:
            buf[k] = 0.5 * buf[k] + g[k] + 0.1 * p[k]
            p[k] = p[k] - 0.3 * buf[k]
    for k in p:
        assert np.allclose(r["params"][k], p[k], rtol=1e-13, atol=1e-15)
    assert opt.scale == pytest.approx(0.3 / (0.5 * 6))
    J, J0 = mlp.order_parameters(p["W"])
    assert r["J"][0, -1] == pytest.approx(J[0]) and r["J0"][0, -1] == pytest.approx(J0[0])


def test_mlp_init_and_validation(mlp):
    p = mlp.init_params(300, 10, 0.7, 2, seed=3)
    J, J0 = mlp.order_parameters(p["W"])
    assert np.allclose(J, 0.7, rtol=0.01)            # std of the estimate ~ J / sqrt(2 N^2) ~ 0.002 J
    assert np.all(np.abs(J0) < 4 * 0.7)              # N mean(W) ~ N(0, J^2)
    assert np.all(p["b"] == 0) and np.abs(p["V"]).max() <= 1 / math.sqrt(300)
    X, y = np.zeros((10, 3)), np.zeros(10, int)
    with pytest.raises(ValueError, match="lr"):
        mlp.SGD(lr=0.0)
    with pytest.raises(ValueError, match="momentum"):
        mlp.SGD(lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="batch_size=20"):
        mlp.train(X, y, mlp.SGD(0.1, batch_size=20), 1, 0.5)
    with pytest.raises(ValueError, match="integer labels"):
        mlp.train(X, y.astype(float), mlp.SGD(0.1, 2), 1, 0.5)
    with pytest.raises(ValueError, match="record_every"):
        mlp.train(X, y, mlp.SGD(0.1, 2), 1, 0.5, record_every=0)


# ------------------------------------------------------------------------------ slow study
@pytest.mark.slow
def test_mlp_kernel_matches_reference_and_scaling_relation(mlp):
    """The compiled SGD step against the NumPy reference (same batches: rounding only), and on
    digits from J(0) = 0.5: J grows, runs of equal s = lr/((1-m)B) coincide in the small-step
    limit, and s sets the time scale (4x s reaches the same J^2 in ~1/4 of the epochs)."""
    sys.path.insert(0, os.path.abspath(RUNS))
    import study
    data = study.digits_data()
    if data is None:
        pytest.skip("scikit-learn is not installed")
    X, y, Xt, yt = data
    opt = mlp.SGD(lr=0.2, batch_size=16, momentum=0.9, weight_decay=1e-3)
    a = mlp.train(X, y, opt, 2, 1.2, replicas=3, Xtest=Xt, ytest=yt, record_every=0.5)
    b = mlp.train(X, y, opt, 2, 1.2, replicas=3, Xtest=Xt, ytest=yt, record_every=0.5, kernel=False)
    for k in mlp.PARAMS:
        assert np.allclose(a["params"][k], b["params"][k], rtol=1e-10, atol=1e-12), k
    assert np.allclose(a["train_loss"], b["train_loss"], rtol=1e-10)

    def dJ2(lr, B, m, epochs):
        r = mlp.train(X, y, mlp.SGD(lr, B, m), epochs, 0.5, replicas=4, seed=2)
        return (r["J"] ** 2)[:, -1] - (r["J"] ** 2)[:, 0]
    s = 1 / 800
    ref = dJ2(s * 8, 8, 0.0, 16)
    for B, m in ((64, 0.0), (32, 0.9)):
        other = dJ2(s * (1 - m) * B, B, m, 16)
        se = math.hypot(ref.std(ddof=1), other.std(ddof=1)) / 2
        assert abs(other.mean() - ref.mean()) < max(4 * se, 0.03 * ref.mean()), (B, m, ref, other)
    fast = dJ2(4 * s * 8, 8, 0.0, 4)                     # 4x s, 1/4 of the epochs
    assert ref.mean() > 0.05
    assert abs(fast.mean() / ref.mean() - 1) < 0.1, (fast, ref)


@pytest.mark.slow
def test_reduced_study_lyapunov_sign():
    """lambda_1 (mean over layers) changes sign near J = 1, and the chaotic side sharpens with N."""
    for N in (100, 400):
        mean = {J: np.mean([chaos.lyapunov(chaos.random_layer(N, J, seed=s), steps=1000, burn=300, seed=s)
                            for s in range(4)]) for J in (0.8, 0.95, 1.6, 2.0)}
        assert mean[0.8] < mean[0.95] < 0 < mean[1.6] < mean[2.0]
