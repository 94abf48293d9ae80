"""Data: the input law, online (fresh samples every step) or a finite training set per replica,
or user arrays."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _validate as v

INPUTS = ("gaussian", "binary")
BATCHES = ("epochs", "independent")


@dataclass(frozen=True)
class Online:
    """Fresh samples for every mini-batch.

    inputs: "gaussian" N(0, I) | "binary" uniform +-1.
    chi: density exponent of x_1 near 0: p(x_1) ~ |x_1|^chi exp(-x_1^2/2) (chi = 0: Gaussian;
        only with gaussian inputs). Used with an "axis" teacher, whose boundary is x_1 = 0.
    label_noise: classification: probability of flipping each label; regression: std of additive
        Gaussian noise on the teacher output.
    test_size: samples of the fixed test set that measures eps_g where no closed form exists.
    """
    inputs: str = "gaussian"
    chi: float = 0.0
    label_noise: float = 0.0
    test_size: int = 10_000

    def __post_init__(self):
        _check_common(self)

    def to_dict(self) -> dict:
        return {"kind": "Online", "inputs": self.inputs, "chi": self.chi,
                "label_noise": self.label_noise, "test_size": self.test_size}


@dataclass(frozen=True)
class Dataset:
    """A finite training set of P samples per replica (each replica draws its own set and teacher).

    batches: "epochs" (default): epochs visit the set in a fresh random order in mini-batches
    drawn without replacement; when batch_size does not divide P the last P mod batch_size
    samples of each epoch's order are dropped (so every step has exactly batch_size samples),
    like drop_last=True in PyTorch. "independent": every step draws batch_size distinct samples
    uniformly at random, independently of the other steps (the protocol of Geiger's and
    Sclocchi's code; SCIENCE.md 2.2); an "epoch" is then just P // batch_size steps.

    ``Dataset.from_arrays(X, y)`` trains on user data instead (no teacher); eps_g is then the error
    on a held-out split of ``test_fraction`` of the rows.
    """
    P: int
    inputs: str = "gaussian"
    chi: float = 0.0
    label_noise: float = 0.0
    test_size: int = 10_000
    X: np.ndarray | None = field(default=None, repr=False, compare=False)
    y: np.ndarray | None = field(default=None, repr=False, compare=False)
    test_fraction: float = 0.2
    batches: str = "epochs"

    def __post_init__(self):
        v.integer("P", self.P, 1)
        _check_common(self)
        v.real("test_fraction", self.test_fraction, 0, 1, low_open=True, high_open=True)
        v.choice("batches", self.batches, BATCHES)

    @classmethod
    def from_arrays(cls, X, y, test_fraction: float = 0.2, batches: str = "epochs") -> "Dataset":
        test_fraction = v.real("test_fraction", test_fraction, 0, 1, low_open=True, high_open=True)
        X, y = _real_array("X", X), _real_array("y", y)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (samples, features); got shape {X.shape}")
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have shape ({X.shape[0]},) to match X; got {y.shape}")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
            raise ValueError("X and y must be finite (found NaN or inf)")
        n_test = int(round(test_fraction * X.shape[0]))
        if n_test < 1 or X.shape[0] - n_test < 1:
            raise ValueError(f"test_fraction={test_fraction} leaves no training or no test rows "
                             f"of {X.shape[0]}")
        return cls(P=X.shape[0] - n_test, X=X, y=y, test_fraction=test_fraction, test_size=n_test,
                   batches=batches)

    @property
    def user_data(self) -> bool:
        return self.X is not None

    def to_dict(self) -> dict:
        out = {"kind": "Dataset", "P": self.P, "inputs": self.inputs, "chi": self.chi,
               "label_noise": self.label_noise, "test_size": self.test_size, "batches": self.batches}
        if self.user_data:
            out.update(user_data=True, test_fraction=self.test_fraction, shape=list(self.X.shape))
        return out


def _real_array(name, a) -> np.ndarray:
    """A float64 copy of user data: real numbers (or booleans) only, never silently cast."""
    if a is None or isinstance(a, (str, bytes)):
        raise ValueError(f"{name} must be an array of real numbers; got {type(a).__name__}")
    arr = np.asarray(a)
    if arr.dtype.kind == "c":
        raise ValueError(f"{name} must be real; got a complex array (dtype {arr.dtype})")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be an array of real numbers; got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _check_common(data):
    v.choice("inputs", data.inputs, INPUTS)
    v.real("chi", data.chi, -1, low_open=True)
    if data.chi != 0 and data.inputs != "gaussian":
        raise ValueError(f"chi={data.chi} needs inputs='gaussian'; got inputs={data.inputs!r}")
    v.real("label_noise", data.label_noise, 0)
    v.integer("test_size", data.test_size, 1)


def data_from_dict(spec: dict):
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind == "Online":
        return Online(**spec)
    if kind == "Dataset":
        if spec.pop("user_data", False):
            raise ValueError("a Dataset built from user arrays cannot be rebuilt from its parameters")
        spec.pop("test_fraction", None); spec.pop("shape", None)
        return Dataset(**spec)
    raise ValueError(f"data kind={kind!r} is not allowed; choose 'Online' or 'Dataset'")
