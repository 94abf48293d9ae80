"""Architecture specs: a two-layer committee (and the perceptron, its K = 1 case).

Pre-activation of hidden unit k: h_k = sum_{i in S_k} w_ki x_i / sqrt(|S_k|), S_k its receptive
field (all N inputs when dense, d inputs when sparse). Real output f = sum_k v_k g(h_k) for
outputs "sum" and "sign", f = prod_k g(h_k) for "parity"; the predicted label is f ("sum",
regression) or sign(f) ("sign", "parity"; sign(0) = +1). With activation "sign" and output "sign"
f counts the hidden votes: the committee majority.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from . import _validate as v

ACTIVATIONS = ("sign", "erf", "tanh", "relu", "linear")
OUTPUTS = ("sum", "sign", "parity")
TOPOLOGIES = ("dense", "tree", "random")
WEIGHTS = ("gaussian", "binary", "axis")


@dataclass(frozen=True)
class Committee:
    """Two-layer network with K hidden units and a fixed second layer.

    N: inputs. K: hidden units (for trees K = N/d, derived when omitted).
    activation: "sign" | "erf" (erf(h/sqrt 2)) | "tanh" | "relu" | "linear".
    output: "sum" (soft committee, regression) | "sign" (majority / sign of the sum) | "parity".
    topology: "dense" (d = N) | "tree" (disjoint blocks of d inputs, K*d = N) | "random"
        (each unit reads d inputs drawn at random, independently per replica).
    weights: "gaussian" (N(0,1), continuous) | "binary" (+-1) | "axis" (teacher only, K = 1:
        w = sqrt(N) e_1, the label is sign(x_1) as in Sclocchi et al.).
    second_layer: fixed read-out weights v_k (default all 1), not trained.
    """
    N: int
    K: int | None = None
    activation: str = "erf"
    output: str = "sum"
    topology: str = "dense"
    d: int | None = None
    weights: str = "gaussian"
    second_layer: tuple | None = None

    def __post_init__(self):
        N = v.integer("N", self.N, 1)
        v.choice("activation", self.activation, ACTIVATIONS)
        v.choice("output", self.output, OUTPUTS)
        v.choice("topology", self.topology, TOPOLOGIES)
        v.choice("weights", self.weights, WEIGHTS)
        K = v.integer("K", self.K, 1, allow_none=True)
        d = v.integer("d", self.d, 1, N, allow_none=True)
        if self.topology == "dense":
            if d is not None and d != N:
                raise ValueError(f"d={d} is not allowed with topology='dense' (dense means d = N = {N}); "
                                 "use topology='tree' or 'random' for sparse units")
            d = N
            K = 1 if K is None else K
        elif self.topology == "tree":
            if d is None and K is None:
                raise ValueError("topology='tree' needs d (receptive-field size) or K; got neither")
            if d is None:
                if N % K:
                    raise ValueError(f"K={K} does not divide N={N}; a tree needs K*d = N")
                d = N // K
            if N % d:
                raise ValueError(f"d={d} does not divide N={N}; a tree needs N divisible by d "
                                 f"(allowed d: {_divisors(N)})")
            if K is not None and K * d != N:
                raise ValueError(f"K={K} with d={d} gives K*d={K * d} != N={N}; a tree needs K = N/d = {N // d}")
            K = N // d
        else:  # random
            if d is None:
                raise ValueError("topology='random' needs d, the number of inputs each unit reads (1 <= d <= N)")
            K = 1 if K is None else K
        if self.weights == "axis" and K != 1:
            raise ValueError(f"weights='axis' is a K = 1 teacher (label sign(x_1)); got K={K}")
        if self.activation == "sign" and self.output == "sign" and K % 2 == 0:
            raise ValueError(f"K={K}: a majority vote of sign units needs odd K (ties are undefined)")
        if self.second_layer is not None:
            object.__setattr__(self, "second_layer", v.reals("second_layer", self.second_layer, K))
        object.__setattr__(self, "N", N)
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "d", d)

    @property
    def fan_in(self) -> int:
        return self.d

    @property
    def n_weights(self) -> int:
        return self.K * self.d

    @property
    def classifier(self) -> bool:
        return self.output in ("sign", "parity")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["kind"] = type(self).__name__
        return out

    @staticmethod
    def from_dict(spec: dict) -> "Committee":
        spec = dict(spec)
        kind = spec.pop("kind", "Committee")
        if kind == "Perceptron":
            for key in ("K", "second_layer"):
                spec.pop(key, None)
            return Perceptron(**spec)
        if kind != "Committee":
            raise ValueError(f"kind={kind!r} is not allowed; choose 'Committee' or 'Perceptron'")
        return Committee(**spec)


class Perceptron(Committee):
    """One unit: f = g(w.x/sqrt N). Default: sign activation and sign output (a classifier)."""

    def __init__(self, N, activation="sign", output="sign", weights="gaussian", topology="dense", d=None):
        super().__init__(N=N, K=1, activation=activation, output=output, topology=topology, d=d,
                         weights=weights)

    def __repr__(self):
        return (f"Perceptron(N={self.N}, activation={self.activation!r}, output={self.output!r}, "
                f"weights={self.weights!r}, topology={self.topology!r}, d={self.d})")


def _divisors(n: int) -> str:
    divs = [k for k in range(1, n + 1) if n % k == 0]
    return ", ".join(map(str, divs[:12])) + (", ..." if len(divs) > 12 else "")
