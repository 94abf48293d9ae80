"""Sweep directory storage: atomic task files, stale temp cleanup, merge and the /index table."""
import json
import os
import socket
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from physsgd import store
from physsgd.result import TrainResult


def fake_result(seed=0, replicas=3, T=4, K=2, M=2, diverged=False) -> TrainResult:
    rng = np.random.default_rng(seed)
    div = np.zeros(replicas, bool)
    div[0] = diverged
    return TrainResult(
        time=np.linspace(0, 1, T), steps=np.arange(T), eps_g=rng.random((replicas, T)),
        train_error=rng.random((replicas, T)), R=rng.random((replicas, T, K, M)),
        Q=rng.random((replicas, T, K, K)), T=rng.random((replicas, M, M)),
        weight_change=rng.random((replicas, T)), weight_norm=rng.random((replicas, T)),
        diverged=div, success=rng.random(replicas) < 0.5, stopped_at=np.full(replicas, T),
        params={"teacher": {"N": 10 + seed, "kind": "Committee"}, "algorithm": {"lr": 0.5 * (seed + 1)},
                "run": {"seed": seed, "stop": None}})


KEYS = ["0123456789abcdef", "fedcba9876543210", "00000000000000aa"]


def test_write_task_is_atomic_and_leaves_no_temp(tmp_path):
    res = fake_result()
    path = store.write_task(tmp_path, KEYS[0], res, {"host": "h", "threads": 1})
    assert path == str(tmp_path / f"{KEYS[0]}.h5")
    assert os.listdir(tmp_path) == [f"{KEYS[0]}.h5"]
    assert store.load(path) == res
    info = store.task_info(path)
    assert info["status"] == "done" and info["params"] == res.params and info["replicas"] == 3


def test_failed_write_removes_its_temp_file(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(store, "write_result", boom)
    with pytest.raises(OSError):
        store.write_task(tmp_path, KEYS[0], fake_result(), {})
    assert os.listdir(tmp_path) == []


def test_clean_stale_temps_respects_live_writers(tmp_path):
    host = socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".{KEYS[0]}.{host}.{dead.pid}.tmp"
    live = tmp_path / f".{KEYS[1]}.{host}.{os.getpid()}.tmp"
    foreign_new = tmp_path / f".{KEYS[2]}.otherhost.123.tmp"
    foreign_old = tmp_path / f".{KEYS[0]}.otherhost.456.tmp"
    for p in (stale, live, foreign_new, foreign_old):
        p.write_bytes(b"partial")
    old = time.time() - 2 * store.STALE_FOREIGN_TMP
    os.utime(foreign_old, (old, old))
    removed = store.clean_stale_temps(tmp_path)
    assert sorted(removed) == sorted([str(stale), str(foreign_old)])
    assert sorted(os.listdir(tmp_path)) == sorted([live.name, foreign_new.name])


def test_merge_and_index_readable_with_h5py_alone(tmp_path):
    d1, d2 = tmp_path / "a", tmp_path / "b"
    d1.mkdir(), d2.mkdir()
    results = {k: fake_result(seed=i, diverged=(i == 1)) for i, k in enumerate(KEYS)}
    store.write_task(d1, KEYS[0], results[KEYS[0]], {"host": "h"})
    store.write_task(d1, KEYS[1], results[KEYS[1]], {"host": "h"})
    store.write_task(d2, KEYS[2], results[KEYS[2]], {"host": "h"})
    store.write_task(d2, KEYS[0], results[KEYS[0]], {"host": "h"})      # duplicate across dirs: once
    (d1 / "notes.h5").write_bytes(b"not a task")                         # ignored: not a key name
    out = tmp_path / "m.h5"
    assert store.merge([str(d1), str(d2)], str(out)) == 3
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]

    loaded = store.load(str(out))
    assert sorted(loaded) == sorted(KEYS)
    for k in KEYS:
        assert loaded[k] == results[k] and loaded[k].params == results[k].params
    assert store.load(str(d1))[KEYS[1]] == results[KEYS[1]]            # a directory loads too

    with h5py.File(out, "r") as f:                                       # the documented layout
        g = f["tasks"][KEYS[1]]
        assert g.attrs["status"] == "diverged" and json.loads(g.attrs["params_json"])["run"]["seed"] == 1
        assert g["eps_g"].shape == (3, 4)
        idx = f["index"][()]
    assert [k.decode() for k in idx["key"]] == sorted(KEYS)
    row = idx[[k.decode() for k in idx["key"]].index(KEYS[1])]
    assert row["status"] == b"diverged" and row["n_diverged"] == 1 and row["teacher.N"] == 11
    assert idx["algorithm.lr"].dtype == np.float64 and idx["teacher.N"].dtype == np.int64
    assert set(idx["run.stop"]) == {b""}                                 # None -> empty string

    # merging a merged file (plus nothing new) reproduces it
    out2 = tmp_path / "m2.h5"
    assert store.merge([str(out)], str(out2)) == 3
    assert store.load(str(out2)) == {k: v for k, v in loaded.items()}


def test_index_table_mixed_columns():
    infos = {"a" * 16: {"status": "done", "params": {"x": 1, "s": "u", "f": 1.5}, "replicas": 2,
                        "success_rate": 0.5, "n_diverged": 0, "wall_time": 1.0},
             "b" * 16: {"status": "done", "params": {"x": 2.5, "f": None}, "replicas": 2,
                        "success_rate": 1.0, "n_diverged": 0, "wall_time": 1.0}}
    t = store.index_table(infos)
    assert t["x"].dtype == np.float64 and list(t["x"]) == [1.0, 2.5]
    assert list(t["s"]) == [b"u", b""]
    assert t["f"][0] == 1.5 and np.isnan(t["f"][1])
