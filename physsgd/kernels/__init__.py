"""Numba kernels. Imports nothing from the rest of physsgd: pure functions over arrays."""
