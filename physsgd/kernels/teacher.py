"""Is the student the teacher? The exact rule from the weights, and the best-matched overlap.

For binary (+-1) weights with the teacher's architecture, a student computes the teacher's
function when its units are the teacher's units up to the architecture's exact symmetries:
- a permutation of units that read the same inputs (``same_field[k, n]``: student unit k and
  teacher unit n have the same receptive field; a tree has none, a dense layer all of them), the
  read-out being symmetric (committee majority, parity);
- for a parity output, flipping the signs of an even number of units (``sign_flips``), which
  leaves the product of signs unchanged when no field can be exactly 0 (odd fan-in on +-1
  inputs, or Gaussian inputs).
Matching is greedy: "same field and equal up to sign" is an equivalence between units, so a
first-fit assignment finds a perfect matching whenever one exists, and the parity of the number
of flipped units does not depend on which one it finds.
"""
import math

from .jit import internal


@internal
def _row_sign(a, b, flips):
    """+1 if a == b, -1 if a == -b (when flips are allowed), 0 otherwise; stops at the first
    mismatch, so an unrelated row costs O(1) on average."""
    if a[0] == b[0]:
        s = 1.0
    elif flips and a[0] == -b[0]:
        s = -1.0
    else:
        return 0
    for j in range(1, a.shape[0]):
        if a[j] != s * b[j]:
            return 0
    return 1 if s > 0.0 else -1


@internal
def on_teacher(W, Wt, same_field, sign_flips, used):
    """Whether the binary student W (K, F) computes the teacher Wt's (M, F) function, by the rule
    above. ``used`` (M,) bool is scratch."""
    K = W.shape[0]
    M = Wt.shape[0]
    if K != M or W.shape[1] != Wt.shape[1]:
        return False
    used[:] = False
    negative = 0
    for k in range(K):
        found = False
        for n in range(M):
            if used[n] or not same_field[k, n]:
                continue
            s = _row_sign(W[k], Wt[n], sign_flips)
            if s != 0:
                used[n] = True
                if s < 0:
                    negative += 1
                found = True
                break
        if not found:
            return False
    return negative % 2 == 0


@internal
def best_overlap(R, Q, T):
    """Normalised teacher-student overlap, best-matched over student units: for each teacher
    unit n, max_k |R_kn| / sqrt(Q_kk T_nn), averaged over n (as TrainResult.overlap)."""
    K, M = R.shape
    if M == 0:
        return math.nan
    acc = 0.0
    for n in range(M):
        tn = math.sqrt(max(T[n, n], 1e-300))
        best = 0.0
        for k in range(K):
            v = abs(R[k, n]) / (math.sqrt(max(Q[k, k], 1e-300)) * tn)
            if v > best:
                best = v
        acc += best
    return acc / M
