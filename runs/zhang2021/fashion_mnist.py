"""Loader for the standard Fashion-MNIST IDX files from a local folder (no download).

Expected files (gzipped or not), as distributed by Zalando Research:
    train-images-idx3-ubyte[.gz]  train-labels-idx1-ubyte[.gz]
    t10k-images-idx3-ubyte[.gz]   t10k-labels-idx1-ubyte[.gz]

``load_fashion_mnist(path, split="train")`` returns (X, labels): X float64 (n, rows*cols) in
[0, 1], labels int64 (n,) in 0..9. ``features(X_train, X_test)`` standardises both with the
training set's per-pixel mean and std, optionally after 2x2 average pooling (784 -> 196 inputs, so
that the square hidden layer of the paper's network is affordable on a laptop); the 10 class
labels are used as they are.
"""
from __future__ import annotations

import gzip
import os
import struct

import numpy as np

# IDX type codes -> numpy dtypes (big-endian), from the IDX format description
_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")


def read_idx(path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into an array of its stored shape."""
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    code, ndim = raw[2], raw[3]
    if code not in _DTYPES:
        raise ValueError(f"{path}: unknown IDX data type 0x{code:02x}")
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(_DTYPES[code])
    count = int(np.prod(shape)) if ndim else 0
    body = raw[4 + 4 * ndim:]
    if len(body) != count * dtype.itemsize:
        raise ValueError(f"{path}: expected {count * dtype.itemsize} data bytes for shape {shape}, "
                         f"found {len(body)}")
    return np.frombuffer(body, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _find(folder, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{stem}[.gz] not found in {folder!r} (Fashion-MNIST IDX files expected)")


def load_fashion_mnist(path, split="train"):
    """(X, labels) of one split: X float64 (n, rows*cols) scaled to [0, 1], labels int64 (n,)."""
    if split not in _FILES:
        raise ValueError(f"split={split!r} is not allowed; choose 'train' or 'test'")
    img_stem, lab_stem = _FILES[split]
    images = read_idx(_find(path, img_stem))
    labels = read_idx(_find(path, lab_stem))
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"inconsistent IDX files: images {images.shape}, labels {labels.shape}")
    X = images.reshape(images.shape[0], -1).astype(np.float64) / 255.0
    return X, labels.astype(np.int64)


def pool2x2(X, rows=28, cols=28):
    """2x2 average pooling of flattened rows x cols images."""
    n = X.shape[0]
    img = X.reshape(n, rows // 2, 2, cols // 2, 2)
    return img.mean(axis=(2, 4)).reshape(n, -1)


def features(X_train, X_test=None, pool=True, rows=28, cols=28):
    """Standardised inputs (per-pixel z-score with the training set's statistics; constant pixels
    -> 0), optionally 2x2-pooled first: (Z_train, Z_test) (Z_test None without X_test)."""
    if pool:
        X_train = pool2x2(X_train, rows, cols)
        X_test = pool2x2(X_test, rows, cols) if X_test is not None else None
    mu, sd = X_train.mean(axis=0), X_train.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return (X_train - mu) / sd, ((X_test - mu) / sd if X_test is not None else None)
