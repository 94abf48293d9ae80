"""The training driver (stub while the kernels are written)."""
from __future__ import annotations


def train(teacher, student, algo, data, steps=None, epochs=None, alpha=None, replicas=32, seed=0,
          init_scale=1.0, record=50, stop=None, success_eps=None, threads=None):
    raise NotImplementedError("ps.train is being written")
