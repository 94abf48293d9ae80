"""The result of one ``ps.train`` call: trajectories of the order parameters for every replica.

Arrays are indexed ``[replica, record, ...]``; ``time`` and ``steps`` are shared by all replicas
(every replica is recorded on the same grid; a replica that stopped early, by a stop rule or by
divergence, repeats its last recorded values and its ``stopped_at`` says when it stopped).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .h5layout import write_result


@dataclass
class TrainResult:
    time: np.ndarray            # (T,) alpha = samples seen / N at the recorded points
    steps: np.ndarray           # (T,) update steps (SGD) or sweeps (Greedy) at the recorded points
    eps_g: np.ndarray           # (replicas, T) generalisation error
    train_error: np.ndarray     # (replicas, T) error on the full training set; online: mean error of the fresh
                                # batches since the previous record, each measured before its move (NaN at t=0)
    R: np.ndarray               # (replicas, T, K, M) teacher-student overlaps w_k.w*_n / fan-in
    Q: np.ndarray               # (replicas, T, K, K) student-student overlaps
    T: np.ndarray               # (replicas, M, M) teacher-teacher overlaps
    weight_change: np.ndarray   # (replicas, T) |w(t) - w(0)| / sqrt(#weights)
    weight_norm: np.ndarray     # (replicas, T) |w(t)| / sqrt(#weights)
    diverged: np.ndarray        # (replicas,) bool: weights became non-finite; the replica stopped
    success: np.ndarray         # (replicas,) bool: the student computes the teacher's function at the end
    stopped_at: np.ndarray      # (replicas,) steps at which the replica stopped (stop rule, divergence or end)
    # stationary observables, whatever the stop rule (None in files written before physsgd 0.2):
    # the state after step t counts as "on the teacher" when the student computes the teacher's
    # function (params["run"]["teacher_rule"] says how that was decided, and at which cadence)
    time_at_teacher: np.ndarray | None = None  # (replicas,) fraction of the window's steps (or probes) on the teacher
    first_passage: np.ndarray | None = None    # (replicas,) first step on the teacher (0: planted start); -1: never
    first_exit: np.ndarray | None = None       # (replicas,) first step off the teacher after being on it; -1: never
    window_overlap: np.ndarray | None = None   # (replicas,) window mean of the best-matched overlap (probes)
    window_eps_g: np.ndarray | None = None     # (replicas,) window mean of eps_g
    window: np.ndarray | None = None           # (2,) first and last step of the window (inclusive)
    # measure=[...] (ps.train's docstring has the definitions), at the record points; None when
    # not requested. Phi = training loss (mean over the P samples) + weight_decay/2 |w|^2.
    grad_noise: np.ndarray | None = None       # (replicas, T) E|g_B - grad Phi|^2 of the run's batches (trace, unnormalised)
    noise_scale: np.ndarray | None = None      # (replicas, T) per-sample tr Cov(g) / |grad Phi|^2: the "simple noise scale" B_noise
    sharpness: np.ndarray | None = None        # (replicas, T) largest eigenvalue of Hess Phi (Lanczos); NaN: not converged
    hessian_trace: np.ndarray | None = None    # (replicas, T) tr Hess Phi (exact)
    weights: np.ndarray | None = None          # (replicas, K, F) final student weights (unit k reads inputs student_fields[r, k])
    teacher_weights: np.ndarray | None = None  # (replicas, M, F_t)
    student_fields: np.ndarray | None = None   # (replicas, K, F) input indices of each unit's receptive field
    teacher_fields: np.ndarray | None = None   # (replicas, M, F_t)
    params: dict = field(default_factory=dict)   # everything needed to rerun: models, algorithm, data, run
    wall_time: float = 0.0

    ARRAYS = ("time", "steps", "eps_g", "train_error", "R", "Q", "T", "weight_change",
              "weight_norm", "diverged", "success", "stopped_at")
    STATIONARY = ("time_at_teacher", "first_passage", "first_exit", "window_overlap", "window_eps_g")
    MEASURES = ("grad_noise", "noise_scale", "sharpness", "hessian_trace")
    OPTIONAL_ARRAYS = STATIONARY + ("window",) + MEASURES + ("weights", "teacher_weights",
                                                            "student_fields", "teacher_fields")

    @property
    def replicas(self) -> int:
        return self.eps_g.shape[0]

    @property
    def overlap(self) -> np.ndarray:
        """(replicas, T) normalised teacher-student overlap, best-matched over hidden units.

        For each teacher unit n, max_k |R_kn| / sqrt(Q_kk T_nn), averaged over n: 1 for a perfect
        student up to permutation and sign symmetries, ~ N^-1/2 for an unrelated one.
        """
        Qd = np.sqrt(np.clip(np.einsum("rtkk->rtk", self.Q), 1e-300, None))
        Td = np.sqrt(np.clip(np.einsum("rnn->rn", self.T), 1e-300, None))
        rho = np.abs(self.R) / Qd[..., :, None] / Td[:, None, None, :]
        return rho.max(axis=2).mean(axis=2)

    def final(self) -> dict:
        """Final and stationary observables per replica, the columns that ``analysis.load`` puts
        in its table."""
        out = {
            "eps_g": self.eps_g[:, -1], "train_error": self.train_error[:, -1],
            "overlap": self.overlap[:, -1], "weight_change": self.weight_change[:, -1],
            "weight_norm": self.weight_norm[:, -1], "success": self.success,
            "diverged": self.diverged, "stopped_at": self.stopped_at,
        }
        for name in self.STATIONARY:
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name in self.MEASURES:
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)[:, -1]
        return out

    def to_hdf5(self, path_or_group, attrs: dict | None = None) -> None:
        write_result(path_or_group, self, attrs=attrs)

    def __eq__(self, other) -> bool:  # bitwise comparison, NaN == NaN (used by reproducibility tests)
        if not isinstance(other, TrainResult):
            return NotImplemented

        def same(a, b):
            if a is None or b is None:
                return a is None and b is None
            return np.array_equal(a, b, equal_nan=True)
        return all(same(getattr(self, n), getattr(other, n))
                   for n in self.ARRAYS + self.STATIONARY + ("window",) + self.MEASURES)

    def __repr__(self) -> str:
        K, M = self.R.shape[2:]
        at = ("" if self.time_at_teacher is None or np.all(np.isnan(self.time_at_teacher))
              else f", time_at_teacher={np.nanmean(self.time_at_teacher):.3f}")
        return (f"TrainResult(replicas={self.replicas}, records={len(self.time)}, K={K}, M={M}, "
                f"final eps_g={np.nanmean(self.eps_g[:, -1]):.4g}, "
                f"success={self.success.mean():.3f}{at}, diverged={int(self.diverged.sum())})")
