"""physsgd: Numba-accelerated simulations of SGD in teacher-student networks."""
from ._version import __version__
from .models import Committee, Perceptron
from .algorithms import SGD, Greedy
from .data import Online, Dataset
from .result import TrainResult
from .store import load
from .train import train
from . import chaos, theory

__all__ = ["Committee", "Perceptron", "SGD", "Greedy", "Online", "Dataset", "TrainResult",
           "load", "train", "theory", "chaos", "__version__"]
