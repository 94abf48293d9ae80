"""Per-replica random streams: xoshiro256** (Blackman & Vigna), one 4-word state per stream;
Gaussians by the ziggurat (Marsaglia & Tsang), uniform +-1 from single bits.

numba's own np.random keeps one state per *thread*, so results would depend on how prange
splits the replicas; an explicit state per replica makes every replica's numbers a function of
(seed, replica) only, whatever the thread count.
"""
import math

import numpy as np
from numba import njit

from .jit import internal


_U = np.uint64
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


@njit(inline="always")
def _xoshiro(s0, s1, s2, s3):
    """One xoshiro256** step on a state held in locals: (word, new state)."""
    word = _rotl(s1 * _U(5), 7) * _U(9)
    t = s1 << _U(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    return word, s0, s1, s2, _rotl(s3, 45)


@internal
def next_u64(s):
    word, s[0], s[1], s[2], s[3] = _xoshiro(s[0], s[1], s[2], s[3])
    return word


@internal
def uniform(s):
    """Uniform on [0, 1) with 53 random bits."""
    return float(next_u64(s) >> _U(11)) * _INV_2_53


@internal
def randint(s, n):
    """Uniform integer in [0, n) (multiply-shift on 53 bits; bias < n / 2^53)."""
    return int(uniform(s) * n)


def _ziggurat_tables():
    """Marsaglia & Tsang's 256-layer ziggurat with 52-bit mantissas (numpy's legacy tables)."""
    dn = tn = 3.6541528853610088
    vn = 0.00492867323399
    m1 = 2.0 ** 52
    ki = np.zeros(256, np.uint64)
    wi = np.zeros(256)
    fi = np.zeros(256)
    q = vn / math.exp(-0.5 * dn * dn)
    ki[0] = np.uint64((dn / q) * m1)
    wi[0] = q / m1
    wi[255] = dn / m1
    fi[0] = 1.0
    fi[255] = math.exp(-0.5 * dn * dn)
    for i in range(254, 0, -1):
        dn = math.sqrt(-2.0 * math.log(vn / dn + math.exp(-0.5 * dn * dn)))
        ki[i + 1] = np.uint64((dn / tn) * m1)
        tn = dn
        fi[i] = math.exp(-0.5 * dn * dn)
        wi[i] = dn / m1
    return ki, wi, fi


_ZIG_KI, _ZIG_WI, _ZIG_FI = _ziggurat_tables()
_ZIG_R = 3.6541528853610088
_ZIG_INV_R = 1.0 / _ZIG_R
# Signed tables indexed by 9 bits (8 layer bits + the sign bit): the sign costs a table entry, not
# a branch. A data-dependent `if negative: x = -x` is mispredicted half the time and made the
# generator 2x slower (benchmarks/README.md, "How the step got faster").
_ZIG_KI2 = np.concatenate([_ZIG_KI, _ZIG_KI]).astype(np.int64)
_ZIG_WI2 = np.concatenate([_ZIG_WI, -_ZIG_WI])


@internal
def _ziggurat_slow(s, idx, negative, x):
    """The rare (~0.7 %) branch: the tail beyond r, or the wedge test. NaN means draw again."""
    if idx == 0:
        while True:
            xx = -_ZIG_INV_R * math.log1p(-uniform(s))
            yy = -math.log1p(-uniform(s))
            if yy + yy > xx * xx:
                return -(_ZIG_R + xx) if negative else _ZIG_R + xx
    if (_ZIG_FI[idx - 1] - _ZIG_FI[idx]) * uniform(s) + _ZIG_FI[idx] < math.exp(-0.5 * x * x):
        return x
    return np.nan


@internal
def fill_normal(s, out):
    """Fill a contiguous 1-D array with independent N(0,1): ziggurat, one 64-bit word per normal
    on the fast path (bits 0-7 pick the layer, bit 8 the sign, bits 12-63 the 52-bit abscissa).

    Two passes: first all the words, into out itself (viewed as uint64), then each word turned
    into its normal in place. Each pass is a tight loop; one loop doing both ran ~10 % slower
    (benchmarks/README.md, "How the step got faster"). A word off the fast path (~1.5 %)
    continues with later words of the stream (wedge or tail test, or a whole new draw): each
    entry still follows the ziggurat's law exactly, independently of the others."""
    raw = out.view(np.uint64)
    _fill_u64(s, raw)
    for i in range(out.shape[0]):
        x, fast, layer_sign = _ziggurat_word(raw[i])
        if not fast:
            x = _ziggurat_slow(s, layer_sign & 0xFF, layer_sign >= 256, x)
            if math.isnan(x):
                x = normal(s)
        out[i] = x


@njit(inline="always")
def _ziggurat_word(word):
    """(x, whether x is on the fast path and final, the 9 layer+sign bits) for one word."""
    layer_sign = np.intp(word & _U(0x1FF))
    rabs = np.int64(word >> _U(12))
    return float(rabs) * _ZIG_WI2[layer_sign], rabs < _ZIG_KI2[layer_sign], layer_sign


@internal
def _fill_u64(s, raw):
    """Consecutive xoshiro256** words. The state lives in local variables for the whole loop:
    kept in the array, every word round-trips through memory the compiler cannot prove distinct
    from raw, and the loop runs ~5x slower."""
    s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
    for i in range(raw.shape[0]):
        raw[i], s0, s1, s2, s3 = _xoshiro(s0, s1, s2, s3)
    s[0], s[1], s[2], s[3] = s0, s1, s2, s3


@internal
def normal(s):
    """One N(0,1) draw, the same transform of the same words as fill_normal."""
    while True:
        x, fast, layer_sign = _ziggurat_word(next_u64(s))
        if fast:
            return x
        x = _ziggurat_slow(s, layer_sign & 0xFF, layer_sign >= 256, x)
        if not math.isnan(x):
            return x


@internal
def fill_binary(s, out):
    """Fill a 1-D array with independent uniform +-1, 64 signs per draw."""
    n = out.shape[0]
    i = 0
    while i < n:
        bits = next_u64(s)
        for b in range(min(64, n - i)):
            out[i + b] = 1.0 if (bits >> _U(b)) & _U(1) else -1.0
        i += 64


@internal
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


@internal
def shuffle(s, a):
    """In-place Fisher-Yates shuffle."""
    for i in range(a.shape[0] - 1, 0, -1):
        j = randint(s, i + 1)
        a[i], a[j] = a[j], a[i]
