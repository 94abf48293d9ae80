"""Edge-of-chaos study (runs/zhang2021, SCIENCE.md section 3): the chaos probe physsgd.chaos, the
Fashion-MNIST IDX loader, and (slow) a reduced version of the study."""
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
    Z, yb = fm.binary_task(X, y)
    assert Z.shape == (5, 196) and yb.tolist() == [1, -1, 1, -1, -1]
    assert np.allclose(fm.pool2x2(X)[0, 0], images[0, :2, :2].mean() / 255)
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


# ------------------------------------------------------------------------------ slow study
@pytest.mark.slow
def test_reduced_study_lyapunov_sign_and_linear_J2_growth():
    import physsgd as ps
    # 1. lambda_1 (mean over layers) changes sign near J = 1, and the chaotic side sharpens with N
    for N in (100, 400):
        mean = {J: np.mean([chaos.lyapunov(chaos.random_layer(N, J, seed=s), steps=1000, burn=300, seed=s)
                            for s in range(4)]) for J in (0.8, 0.95, 1.6, 2.0)}
        assert mean[0.8] < mean[0.95] < 0 < mean[1.6] < mean[2.0]
    # 2. ordered phase: J^2 grows linearly in epochs, equal s = lr / ((1 - momentum) B) collapse,
    #    and the slope grows with s
    N, P = 64, 1024
    teacher = ps.Perceptron(N)
    student = ps.Committee(N, K=N, activation="tanh", output="sign",
                           second_layer=tuple([1 / math.sqrt(N)] * N))
    data = ps.Dataset(P=P, test_size=500)

    def J2(lr, B, m):
        res = ps.train(teacher, student, ps.SGD(lr=lr, batch_size=B, momentum=m, loss="logistic"),
                       data, epochs=60, replicas=4, init_scale=0.5, seed=0,
                       record=np.arange(0, 60 * (P // B) + 1, 10 * (P // B)))
        return (res.weight_norm ** 2).mean(0)

    t = np.arange(0, 61, 10.0)
    a = J2(1.0, 16, 0.0)            # s = 1/16
    b = J2(0.5, 32, 0.75)           # s = 1/16 with momentum
    c = J2(4.0, 16, 0.0)            # s = 1/4
    assert a[-1] < 0.81 and a[-1] > a[0] + 0.02
    fit = np.polyfit(t, a, 1)
    r2 = 1 - np.var(a - np.polyval(fit, t)) / np.var(a)
    assert r2 > 0.97, f"J^2(t) not linear: R^2 = {r2:.4f}, J^2 = {a}"
    assert abs((b[-1] - b[0]) / (a[-1] - a[0]) - 1) < 0.15, (a, b)
    assert (c[3] - c[0]) > 2 * (a[3] - a[0])
