"""Training algorithms: mini-batch SGD (continuous weights) and greedy / Metropolis single-weight
flips (binary weights)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from . import _validate as v

LOSSES = ("square", "hinge", "logistic", "squared_hinge", "hebbian")
TIE_RULES = ("accept", "reject", "random")
NEW_BATCH = ("sweep", "proposal")


@dataclass(frozen=True)
class SGD:
    """Mini-batch SGD on the batch-mean loss, PyTorch conventions:
    g = grad mean_mu loss_mu + weight_decay * w;  buf = momentum * buf + g;  w <- w - lr * buf.

    loss: "square" 1/2 (f - y)^2 | "hinge" max(0, margin - y f) | "logistic" log(1 + e^{-y f})
        | "squared_hinge" 1/2 max(0, margin - y f)^2 | "hebbian" -y f.
        With a linear perceptron: hebbian is Hebb's rule, hinge with margin 0 Rosenblatt's
        perceptron rule, squared_hinge with margin 0 the AdaTron (SCIENCE.md 4.3).
    output_scale: alpha of the lazy / feature-learning knob: when given, the loss sees
        alpha * (f(w, x) - f(w0, x)) and is divided by alpha (Geiger et al.; SCIENCE.md 2.2).
    temperature T = lr / batch_size (a property, for sweeps over T).
    """
    lr: float
    batch_size: int = 1
    momentum: float = 0.0
    weight_decay: float = 0.0
    loss: str = "square"
    output_scale: float | None = None
    margin: float = 1.0

    def __post_init__(self):
        v.real("lr", self.lr, 0, low_open=True)
        v.integer("batch_size", self.batch_size, 1)
        v.real("momentum", self.momentum, 0, 1, high_open=True)
        v.real("weight_decay", self.weight_decay, 0)
        v.choice("loss", self.loss, LOSSES)
        v.real("output_scale", self.output_scale, 0, low_open=True, allow_none=True)
        v.real("margin", self.margin, 0)

    @property
    def temperature(self) -> float:
        return self.lr / self.batch_size

    def to_dict(self) -> dict:
        return {"kind": "SGD", **asdict(self)}


@dataclass(frozen=True)
class Greedy:
    """Single-weight flips of +-1 weights judged on one mini-batch.

    One step (a "sweep") draws a mini-batch of batch_size samples (new_batch="sweep"), then
    proposes to flip every student weight once, in a fresh random order. The energy is the number
    of misclassified samples of the batch; a flip with dE < 0 is accepted, dE > 0 is accepted with
    probability exp(-dE / temperature) (never at temperature 0), and dE = 0 follows ``ties``:
    "accept" (default), "reject", or "random" (probability 1/2).
    new_batch="proposal" draws a new mini-batch before every proposal instead.
    """
    batch_size: int = 1
    temperature: float = 0.0
    ties: str = "accept"
    new_batch: str = "sweep"

    def __post_init__(self):
        v.integer("batch_size", self.batch_size, 1)
        v.real("temperature", self.temperature, 0)
        v.choice("ties", self.ties, TIE_RULES)
        v.choice("new_batch", self.new_batch, NEW_BATCH)

    def to_dict(self) -> dict:
        return {"kind": "Greedy", **asdict(self)}


def algorithm_from_dict(spec: dict):
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind == "SGD":
        return SGD(**spec)
    if kind == "Greedy":
        return Greedy(**spec)
    raise ValueError(f"algorithm kind={kind!r} is not allowed; choose 'SGD' or 'Greedy'")
