"""Per-replica random streams: xoshiro256** (Blackman & Vigna), one 4-word state per stream.

numba's own np.random keeps one state per *thread*, so results would depend on how prange
splits the replicas; an explicit state per replica makes every replica's numbers a function of
(seed, replica) only, whatever the thread count.
"""
import math

import numpy as np
from numba import njit

_U = np.uint64
_TWO_PI = 2.0 * math.pi
_INV_2_53 = 1.0 / 9007199254740992.0


def seed_states(seed: int, n: int, stream: int) -> np.ndarray:
    """(n, 4) uint64 states for streams (seed, i, stream), i = 0..n-1, via numpy's SeedSequence."""
    out = np.empty((n, 4), dtype=np.uint64)
    for i in range(n):
        out[i] = np.random.SeedSequence([seed, i, stream]).generate_state(4, np.uint64)
    return out


@njit(inline="always")
def _rotl(x, k):
    return (x << _U(k)) | (x >> _U(64 - k))


@njit
def next_u64(s):
    result = _rotl(s[1] * _U(5), 7) * _U(9)
    t = s[1] << _U(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return result


@njit
def uniform(s):
    """Uniform on [0, 1) with 53 random bits."""
    return float(next_u64(s) >> _U(11)) * _INV_2_53


@njit
def randint(s, n):
    """Uniform integer in [0, n) (multiply-shift on 53 bits; bias < n / 2^53)."""
    return int(uniform(s) * n)


@njit
def fill_normal(s, out):
    """Fill a 1-D array with independent N(0,1) by Box-Muller pairs."""
    n = out.shape[0]
    i = 0
    while i < n:
        u1 = 1.0 - uniform(s)          # (0, 1]: log is finite
        u2 = uniform(s)
        r = math.sqrt(-2.0 * math.log(u1))
        out[i] = r * math.cos(_TWO_PI * u2)
        if i + 1 < n:
            out[i + 1] = r * math.sin(_TWO_PI * u2)
        i += 2


@njit
def normal(s):
    u1 = 1.0 - uniform(s)
    u2 = uniform(s)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2)


@njit
def fill_binary(s, out):
    """Fill a 1-D array with independent uniform +-1, 64 signs per draw."""
    n = out.shape[0]
    i = 0
    while i < n:
        bits = next_u64(s)
        for b in range(min(64, n - i)):
            out[i + b] = 1.0 if (bits >> _U(b)) & _U(1) else -1.0
        i += 64


@njit
def gamma(s, a):
    """Gamma(a, 1) by Marsaglia & Tsang; a < 1 via Gamma(a+1) * U^(1/a)."""
    if a < 1.0:
        return gamma(s, a + 1.0) * (1.0 - uniform(s)) ** (1.0 / a)
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = normal(s)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = 1.0 - uniform(s)
        if math.log(u) < 0.5 * x * x + d - d * v + d * math.log(v):
            return d * v


@njit
def shuffle(s, a):
    """In-place Fisher-Yates shuffle."""
    for i in range(a.shape[0] - 1, 0, -1):
        j = randint(s, i + 1)
        a[i], a[j] = a[j], a[i]
