"""The contract between the Python driver and the kernels: integer codes, the stream ids and the
``KernelConfig`` record every kernel reads.

Codes are ints (not strings) so that one compiled kernel serves every architecture; the Python
layer maps names to codes with the tables at the bottom. ``KernelConfig`` is a namedtuple: numba
types it by its fields, so every field must always have the same Python type (int, float or bool)
whatever the run, or numba compiles a new specialisation.
"""
from collections import namedtuple

# activations, outputs, losses (network.py)
SIGN, ERF, TANH, RELU, LINEAR = 0, 1, 2, 3, 4
SUM, MAJORITY, PARITY = 0, 1, 2
SQUARE, HINGE, LOGISTIC, SQUARED_HINGE, HEBBIAN = 0, 1, 2, 3, 4

# algorithms and greedy tie rules (steps.py)
SGD_ALGO, GREEDY_ALGO = 0, 1
TIE_ACCEPT, TIE_REJECT, TIE_RANDOM = 0, 1, 2

# stop rules, input laws (engine.py)
STOP_NONE, STOP_ZERO_TRAIN_ERROR, STOP_ZERO_LOSS, STOP_SUCCESS = 0, 1, 2, 3
INPUT_GAUSSIAN, INPUT_BINARY = 0, 1

# eps_g modes: which closed form applies, or the test set (observables.py)
EG_TESTSET, EG_ERF, EG_LINEAR, EG_ARCCOS, EG_TREE_MAJORITY, EG_TREE_PARITY = 0, 1, 2, 3, 4, 5

# how "the student computes the teacher's function" is decided (teacher.py)
#   RULE_WEIGHTS: from the weights alone, exactly: the student's units are the teacher's up to
#                 the architecture's symmetries (binary tree machines and perceptrons, where
#                 this is also necessary); checked after every step.
#   RULE_WEIGHTS_OR_TEST: the same, and where the weights differ, no error on the test set
#                 (dense and random-field binary machines, where other students can compute
#                 the same function); checked after every step, the test pass stopping at the
#                 first error.
#   RULE_EPS:     eps_g <= success_eps (closed form, or the test set with an early exit);
#                 checked at the probes only.
RULE_EPS, RULE_WEIGHTS, RULE_WEIGHTS_OR_TEST = 0, 1, 2
RULE_NAMES = {RULE_EPS: "eps", RULE_WEIGHTS: "weights", RULE_WEIGHTS_OR_TEST: "weights+test"}

# random streams of replica r: keyed (seed, r, stream)
STREAM_SETUP, STREAM_TRAIN, STREAM_TEST = 0, 1, 2
STREAM_MEASURE = 3       # measure=[...] only (curvature.py): Lanczos starts, online samples

# measure=[...] (curvature.py): bits of KernelConfig.measure
MEASURE_GRAD_NOISE, MEASURE_NOISE_SCALE, MEASURE_SHARPNESS, MEASURE_HESSIAN_TRACE = 1, 2, 4, 8

KernelConfig = namedtuple("KernelConfig", [
    "algo", "N", "act_s", "out_s", "act_t", "out_t", "dense_s", "dense_t", "fan_in_t", "loss",
    "margin", "output_scale", "lr", "momentum", "weight_decay", "batch_size", "temperature",
    "ties", "new_batch_per_proposal", "inputs", "chi", "label_noise", "P", "user_data",
    "independent_batches", "test_size", "eg_mode", "success_eps", "stop_rule", "check_every",
    "exact_votes", "teacher_rule", "sign_flips", "total_steps", "probe_every", "window_start",
    "window_stop", "batch_eps",
    # measure=[...] (curvature.py); defaults: nothing measured
    "measure", "lanczos_iters", "lanczos_tol", "measure_samples"],
    defaults=(0, 0, 0.0, 0))
KernelConfig.__doc__ = """Everything a replica's run reads, as plain scalars.

independent_batches: finite data only; every step draws batch_size distinct samples afresh
    (True) instead of walking through an epoch's shuffled order (False).
teacher_rule: RULE_WEIGHTS, RULE_WEIGHTS_OR_TEST or RULE_EPS (see above); sign_flips: under RULE_WEIGHTS, whether
    flipping the signs of an even number of units is a symmetry (parity output, and a field that
    can never be exactly 0).
total_steps: the run's length (the last step); the replica stops earlier only by a stop rule
    or divergence.
probe_every: cadence (steps) of the probes that measure the window means (and, under RULE_EPS,
    whether the student is on the teacher); window_start/window_stop: the measurement window,
    steps window_start <= t <= window_stop (the state after step t), both inclusive.
batch_eps: the window mean of eps_g is the mean error of the fresh batches met in the window
    (online data without label noise: each batch error, measured before its move, is an
    unbiased estimate of the current student's eps_g) instead of eps_g at the probes.
measure: bits MEASURE_* of the observables taken at the record points (0: none);
    lanczos_iters, lanczos_tol: the sharpness's Lanczos budget (Hessian-vector products) and
    relative residual; measure_samples: fresh samples behind the online gradient moments.
"""

# name -> code tables of the Python layer
ACTIVATION_CODES = {"sign": SIGN, "erf": ERF, "tanh": TANH, "relu": RELU, "linear": LINEAR}
OUTPUT_CODES = {"sum": SUM, "sign": MAJORITY, "parity": PARITY}
LOSS_CODES = {"square": SQUARE, "hinge": HINGE, "logistic": LOGISTIC,
              "squared_hinge": SQUARED_HINGE, "hebbian": HEBBIAN}
TIE_CODES = {"accept": TIE_ACCEPT, "reject": TIE_REJECT, "random": TIE_RANDOM}
STOP_CODES = {None: STOP_NONE, "zero_train_error": STOP_ZERO_TRAIN_ERROR,
              "zero_loss": STOP_ZERO_LOSS, "success": STOP_SUCCESS}
INPUT_CODES = {"gaussian": INPUT_GAUSSIAN, "binary": INPUT_BINARY}
MEASURE_CODES = {"grad_noise": MEASURE_GRAD_NOISE, "noise_scale": MEASURE_NOISE_SCALE,
                 "sharpness": MEASURE_SHARPNESS, "hessian_trace": MEASURE_HESSIAN_TRACE}
