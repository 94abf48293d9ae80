"""Storage: verified atomic task files, damaged and legacy files, claims, stale temps, merge, /index.

Nothing here runs the kernels: results are synthetic TrainResults (``fake_result``).
"""
import errno
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import warnings

import h5py
import numpy as np
import pytest

import physsgd as ps
from physsgd import _fileio, h5layout, store, taskdir
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


def sweep_key(res):
    """The key physsgd.sweep gives a task: the hash of its canonical parameters."""
    return hashlib.sha256(h5layout.canonical_json(res.params).encode()).hexdigest()[:16]


def write_sweep_task(d, res):
    key = sweep_key(res)
    taskdir.write_task(d, key, res, {"key": key, "host": "h"})
    return key, taskdir.task_path(d, key)


def write_legacy(path, res):
    """A task file as the previous release wrote it: same datasets and attributes, no marker."""
    with h5py.File(path, "w") as f:
        for name in TrainResult.ARRAYS:
            f.create_dataset(name, data=getattr(res, name))
        f.attrs["params_json"] = h5layout.canonical_json(res.params)
        f.attrs["status"] = "done"
        f.attrs["wall_time"] = 0.0


def listing(d):
    return sorted(os.listdir(d))


# --------------------------------------------------------------------------------------------
# Writing

def test_write_task_is_atomic_verified_and_leaves_no_temp(tmp_path):
    res = fake_result()
    path = store.write_task(tmp_path, KEYS[0], res, {"host": "h", "threads": 1})
    assert path == str(tmp_path / f"{KEYS[0]}.h5")
    assert listing(tmp_path) == [f"{KEYS[0]}.h5"]
    assert store.load(path) == res
    info = store.task_info(path)
    assert info["status"] == "done" and info["params"] == res.params and info["replicas"] == 3
    assert taskdir.verify_task_file(path) == ("ok", "")
    with h5py.File(path, "r") as f:
        assert f.attrs["complete"] == 1 and len(f.attrs["sha256"]) == 64


def test_checksum_recipe_in_the_docs_reproduces_the_stored_one(tmp_path):
    """The recipe of runs/README.md, written out with h5py and hashlib only."""
    path = store.write_task(tmp_path, KEYS[0], fake_result(), {})
    with h5py.File(path, "r") as f:
        h = hashlib.sha256()
        for name in sorted(f):
            a = np.ascontiguousarray(f[name][()])
            a = a.astype(a.dtype.newbyteorder("<")) if a.dtype.kind in "biufc" else a
            h.update(f"{name}\0{a.dtype.str}\0{','.join(map(str, a.shape))}\0".encode())
            h.update(a.tobytes())
        h.update(b"params_json\0" + f.attrs["params_json"].encode())
        assert h.hexdigest() == f.attrs["sha256"]


def test_to_hdf5_path_is_sealed_and_atomic(tmp_path):
    res = fake_result(seed=2)
    res.to_hdf5(tmp_path / "r.h5")
    assert listing(tmp_path) == ["r.h5"]
    assert ps.load(tmp_path / "r.h5") == res
    with h5py.File(tmp_path / "g.h5", "w") as f:              # into a user's group
        res.to_hdf5(f.create_group("mine"))
    with h5py.File(tmp_path / "g.h5", "r") as f:
        assert h5layout.verify(f["mine"]) == ("ok", "")


def _fail_write_result(monkeypatch):
    def boom(*a, **k):
        raise OSError(errno.EIO, "Input/output error")
    monkeypatch.setattr(h5layout, "write_result", boom)


def _fail_os_write(monkeypatch):
    real, calls = os.write, []

    def write(fd, data):
        calls.append(1)
        if len(calls) == 1:                      # a short write first: the loop must go on
            return real(fd, bytes(data)[:100])
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "write", write)


def _fail_fsync(monkeypatch):
    def fsync(fd):
        raise OSError(errno.EIO, "Input/output error")
    monkeypatch.setattr(os, "fsync", fsync)


def _fail_verification(monkeypatch):
    monkeypatch.setattr(taskdir, "verify_task_file", lambda p: ("damaged", "zeroed by the disk"))


def _fail_rename(monkeypatch):
    def replace(a, b):
        raise OSError(errno.EXDEV, "Invalid cross-device link")
    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("inject", [_fail_write_result, _fail_os_write, _fail_fsync,
                                    _fail_verification, _fail_rename])
def test_a_write_error_anywhere_leaves_no_task_file_and_no_temp(tmp_path, monkeypatch, inject):
    inject(monkeypatch)
    with pytest.raises(OSError):
        store.write_task(tmp_path, KEYS[0], fake_result(), {})
    monkeypatch.undo()
    assert listing(tmp_path) == []


def test_full_disk_error_names_the_directory_and_the_space_needed(tmp_path, monkeypatch):
    monkeypatch.setattr(_fileio, "free_bytes", lambda d: 1234)
    with pytest.raises(_fileio.DiskFullError) as e:
        store.write_task(tmp_path, KEYS[0], fake_result(), {})
    msg = str(e.value)
    assert msg.startswith(f"no space left in {tmp_path}: task file {KEYS[0]}.h5 needs ") and "kB" in msg
    assert msg.endswith("1.2 kB free") and "\n" not in msg and e.value.errno == errno.ENOSPC
    assert listing(tmp_path) == []                          # nothing was even created
    monkeypatch.undo()
    _fail_os_write(monkeypatch)                               # the disk fills up while writing
    with pytest.raises(_fileio.DiskFullError, match=f"no space left in {tmp_path}"):
        store.write_task(tmp_path, KEYS[0], fake_result(), {})
    monkeypatch.undo()
    assert listing(tmp_path) == []


# --------------------------------------------------------------------------------------------
# Damaged and legacy files

def _zero_dataset(p):
    with h5py.File(p, "r+") as f:                           # what a full disk did to the old release
        f["eps_g"][...] = 0.0


def _flip_value(p):
    with h5py.File(p, "r+") as f:
        f["success"][0] = not f["success"][0]


def _drop_dataset(p):
    with h5py.File(p, "r+") as f:
        del f["R"]


def _truncate(p):
    with open(p, "r+b") as f:
        f.truncate(os.path.getsize(p) // 2)


def _garbage(p):
    with open(p, "wb") as f:
        f.write(os.urandom(4096))


def _empty(p):
    open(p, "wb").close()


def _other_params(p):
    with h5py.File(p, "r+") as f:
        f.attrs["params_json"] = '{"teacher": {"N": 99}}'


@pytest.mark.parametrize("damage, reason", [
    (_zero_dataset, "checksum mismatch"), (_flip_value, "checksum mismatch"),
    (_drop_dataset, "checksum mismatch"), (_truncate, "not a readable HDF5 file"),
    (_garbage, "not a readable HDF5 file"), (_empty, "empty file (0 bytes)"),
    (_other_params, "checksum mismatch"),
])
def test_damaged_task_files_are_named_moved_aside_and_never_loaded(tmp_path, damage, reason):
    d = tmp_path / "sweep"
    d.mkdir()
    good_key, _ = write_sweep_task(d, fake_result(seed=0))
    bad_key, bad = write_sweep_task(d, fake_result(seed=1))
    damage(bad)
    state, why = taskdir.verify_task_file(bad)
    assert state == "damaged" and reason in why
    with pytest.raises(store.DamagedFileError, match=f"{re.escape(bad)}: damaged result file: .*{re.escape(reason)}"):
        ps.load(bad)
    with pytest.warns(UserWarning, match=f"skipped 1 damaged result.*{re.escape(bad)}"):
        assert list(ps.load(d)) == [good_key]                  # loaders never move files
    assert os.path.exists(bad)
    rep = store.merge([str(d)], str(tmp_path / "m.h5"))        # merge moves it aside, skips it
    assert rep.n_tasks == 1 and not rep.ok and rep.damaged[0].path == bad
    assert not os.path.exists(bad) and rep.damaged[0].moved_to.startswith(str(d / "damaged"))
    assert reason in open(rep.damaged[0].moved_to[:-3] + ".txt").read()
    assert list(ps.load(tmp_path / "m.h5")) == [good_key]
    assert taskdir.scan(d).damaged == []                       # nothing left to move


def test_misnamed_task_file_is_damaged(tmp_path):
    key, path = write_sweep_task(tmp_path, fake_result())
    other = taskdir.task_path(tmp_path, KEYS[1])
    os.rename(path, other)
    assert taskdir.verify_task_file(other) == ("damaged", f"misnamed: it holds task {key}")


def test_damaged_group_inside_a_merged_file_is_skipped_not_changed(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    k0, _ = write_sweep_task(d, fake_result(seed=0))
    k1, _ = write_sweep_task(d, fake_result(seed=1))
    merged = tmp_path / "m.h5"
    assert store.merge([str(d)], str(merged)).ok
    with h5py.File(merged, "r+") as f:
        f["tasks"][k1]["eps_g"][0, 0] += 1.0
    with pytest.warns(UserWarning, match=f"{merged}:/tasks/{k1} \\(checksum mismatch"):
        assert list(ps.load(merged)) == [k0]
    rep = store.merge([str(merged)], str(tmp_path / "m2.h5"))
    assert rep.n_tasks == 1 and rep.damaged[0].path == f"{merged}:/tasks/{k1}"
    assert rep.damaged[0].moved_to is None


def test_legacy_files_without_marker_are_read_with_a_warning_and_merged(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    res = fake_result(seed=3)
    legacy = d / f"{KEYS[2]}.h5"
    write_legacy(legacy, res)
    k0, _ = write_sweep_task(d, fake_result(seed=0))
    assert taskdir.verify_task_file(legacy)[0] == "legacy"
    with pytest.warns(store.UnverifiedWarning, match="earlier physsgd have no checksum"):
        assert ps.load(legacy) == res
    s = taskdir.scan(d)
    assert list(s.legacy) == [KEYS[2]] and list(s.ok) == [k0] and not s.damaged
    rep = store.merge([str(d)], str(tmp_path / "m.h5"))
    assert rep.ok and rep.n_tasks == 2 and rep.legacy == [str(legacy)]
    with h5py.File(tmp_path / "m.h5", "r") as f:               # stays honest: no marker added
        assert "complete" not in f["tasks"][KEYS[2]].attrs
    # a legacy file that is not even a result (datasets missing) is damaged
    with h5py.File(d / f"{KEYS[1]}.h5", "w") as f:
        f.create_dataset("eps_g", data=np.zeros((2, 3)))
    assert "no completion marker and no success, diverged" in taskdir.verify_task_file(d / f"{KEYS[1]}.h5")[1]


# --------------------------------------------------------------------------------------------
# Temp files and claims

def test_clean_stale_temps_respects_live_writers(tmp_path):
    host = socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".{KEYS[0]}.{host}.{dead.pid}.tmp"
    live = tmp_path / f".{KEYS[1]}.{host}.{os.getpid()}.tmp"
    foreign_new = tmp_path / f".{KEYS[2]}.otherhost.123.tmp"
    foreign_old = tmp_path / f".{KEYS[0]}.otherhost.456.tmp"
    merge_stale = tmp_path / f".results.h5.merge-{dead.pid}@{host}.tmp"     # a killed merge
    merge_live = tmp_path / f".results.h5.merge-{os.getpid()}@{host}.tmp"
    for p in (stale, live, foreign_new, foreign_old, merge_stale, merge_live):
        p.write_bytes(b"partial")
    old = time.time() - 2 * store.STALE_FOREIGN_TMP
    os.utime(foreign_old, (old, old))
    removed = store.clean_stale_temps(tmp_path)
    assert sorted(removed) == sorted([str(stale), str(foreign_old), str(merge_stale)])
    assert listing(tmp_path) == sorted([live.name, foreign_new.name, merge_live.name])


def test_merge_removes_the_temp_file_of_a_killed_merge(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    write_sweep_task(d, fake_result())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = tmp_path / f".m.h5.merge-{dead.pid}@{socket.gethostname()}.tmp"
    left.write_bytes(b"half a merge")
    store.merge([str(d)], str(tmp_path / "m.h5"))
    assert listing(tmp_path) == ["d", "m.h5"]


def _claim_file(d, key, **info):
    os.makedirs(d / ".claims", exist_ok=True)
    p = d / ".claims" / key
    p.write_text(json.dumps(info))
    return p


def test_claims_are_exclusive_and_stale_ones_are_taken_over(tmp_path):
    a, b = taskdir.Claims(tmp_path), taskdir.Claims(tmp_path)
    try:
        assert a.acquire(KEYS[0]) == (True, "")
        ok, holder = b.acquire(KEYS[0])                         # the same live process, other run
        assert not ok and holder == f"pid {os.getpid()} on {socket.gethostname()}"
        a.release(KEYS[0])
        assert b.acquire(KEYS[0]) == (True, "")
        # a claim of a dead process on this host is stale
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        _claim_file(tmp_path, KEYS[1], host=socket.gethostname(), pid=dead.pid, run="x")
        assert a.acquire(KEYS[1]) == (True, "")
        # another host's claim: live while refreshed, stale when not refreshed for long
        fresh = _claim_file(tmp_path, KEYS[2], host="elsewhere", pid=1, run="y")
        ok, holder = a.acquire(KEYS[2])
        assert not ok and holder == "pid 1 on elsewhere"
        old = time.time() - 2 * taskdir.STALE_FOREIGN_CLAIM
        os.utime(fresh, (old, old))
        assert a.acquire(KEYS[2]) == (True, "")
        assert sorted(taskdir.live_claims(tmp_path)) == sorted(KEYS)
    finally:
        a.close()
        b.close()
    assert os.listdir(tmp_path / ".claims") == []               # released on close


def test_a_reused_pid_does_not_keep_a_claim_alive(tmp_path):
    # our own PID, but recorded with another process start time: the PID was reused
    _claim_file(tmp_path, KEYS[0], host=socket.gethostname(), pid=os.getpid(), start=1, run="z")
    with taskdir.Claims(tmp_path) as c:
        assert c.acquire(KEYS[0]) == (True, "")


# --------------------------------------------------------------------------------------------
# Merge and the index

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
    rep = store.merge([str(d1), str(d2)], str(out))
    assert rep.n_tasks == 3 and rep.ok and not rep.legacy
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]

    loaded = store.load(str(out))
    assert sorted(loaded) == sorted(KEYS)
    for k in KEYS:
        assert loaded[k] == results[k] and loaded[k].params == results[k].params
    assert store.load(str(d1))[KEYS[1]] == results[KEYS[1]]            # a directory loads too

    with h5py.File(out, "r") as f:                                       # the documented layout
        assert h5layout.verify(f) == ("ok", "")                          # root: marker + index checksum
        g = f["tasks"][KEYS[1]]
        assert g.attrs["status"] == "diverged" and json.loads(g.attrs["params_json"])["run"]["seed"] == 1
        assert g["eps_g"].shape == (3, 4) and h5layout.verify(g) == ("ok", "")
        raw = f["index"][()]
    assert [k.decode() for k in raw["key"]] == sorted(KEYS)              # h5py alone: bytes
    idx = store.read_index(out)                                          # physsgd: str
    assert list(idx["key"]) == sorted(KEYS) and isinstance(idx["key"][0], str)
    row = idx[list(idx["key"]).index(KEYS[1])]
    assert row["status"] == "diverged" and row["n_diverged"] == 1 and row["teacher.N"] == 11
    assert idx["algorithm.lr"].dtype == np.float64 and idx["teacher.N"].dtype == np.int64
    assert set(idx["run.stop"]) == {""}                                  # None -> empty string

    # merging a merged file (plus nothing new) reproduces it
    out2 = tmp_path / "m2.h5"
    assert store.merge([str(out)], str(out2)).n_tasks == 3
    assert store.load(str(out2)) == {k: v for k, v in loaded.items()}


def test_merge_of_nothing_is_an_empty_input_error(tmp_path):
    with pytest.raises(taskdir.EmptyInputError, match=f"no task files in {tmp_path}"):
        store.merge([str(tmp_path)], str(tmp_path / "m.h5"))
    assert listing(tmp_path) == []


def test_merge_on_a_full_disk_leaves_nothing(tmp_path, monkeypatch):
    d = tmp_path / "d"
    d.mkdir()
    for i in range(3):
        write_sweep_task(d, fake_result(seed=i))
    monkeypatch.setattr(_fileio, "free_bytes", lambda p: 10)       # known too small: before writing
    with pytest.raises(_fileio.DiskFullError, match=f"no space left in {tmp_path}: merging 3 tasks needs"):
        store.merge([str(d)], str(tmp_path / "m.h5"))
    monkeypatch.undo()
    real = _fileio.RecordingFile.write

    def write(self, b):                                          # fills up half-way
        if self._f.tell() > 2000:
            return self._guard(lambda _: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")), b)
        return real(self, b)
    monkeypatch.setattr(_fileio.RecordingFile, "write", write)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(_fileio.DiskFullError, match=f"no space left in {tmp_path}"):
            store.merge([str(d)], str(tmp_path / "m.h5"))
    assert listing(tmp_path) == ["d"]


def test_index_table_mixed_columns():
    infos = {"a" * 16: {"status": "done", "params": {"x": 1, "s": "u", "f": 1.5}, "replicas": 2,
                        "success_rate": 0.5, "n_diverged": 0, "wall_time": 1.0},
             "b" * 16: {"status": "done", "params": {"x": 2.5, "f": None}, "replicas": 2,
                        "success_rate": 1.0, "n_diverged": 0, "wall_time": 1.0}}
    t = store.index_table(infos)
    assert t["x"].dtype == np.float64 and list(t["x"]) == [1.0, 2.5]
    assert list(t["s"]) == [b"u", b""]
    assert t["f"][0] == 1.5 and np.isnan(t["f"][1])
    assert list(h5layout.decode_index(t)["s"]) == ["u", ""]


def _relative_imports(module):
    import ast
    tree = ast.parse(open(module.__file__).read())
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.level:
            out |= {n.module} if n.module else {a.name for a in n.names}
    return out


def test_no_import_circle_between_result_and_storage():
    import physsgd.result
    assert _relative_imports(h5layout) == {"_fileio"}        # the layout knows nothing of physsgd
    assert _relative_imports(_fileio) == set()
    assert _relative_imports(physsgd.result) == {"h5layout"}
    assert "result" not in _relative_imports(taskdir)


# --------------------------------------------------------------------------------------------
# analysis.load verifies too, with its own (h5py-only) implementation of the recipe

def test_analysis_verification_matches_physsgds(tmp_path):
    from analysis import _verify
    d = tmp_path / "d"
    d.mkdir()
    _, p = write_sweep_task(d, fake_result(seed=4, replicas=5, K=3, M=1))
    with h5py.File(p, "r") as f:
        assert _verify.checksum(f) == h5layout.checksum(f) == f.attrs["sha256"]
        assert _verify.verify_group(f) == ("ok", "")


def test_analysis_load_skips_damaged_results_by_name_and_warns_on_legacy(tmp_path):
    import analysis as an
    d = tmp_path / "d"
    d.mkdir()
    k0, p0 = write_sweep_task(d, fake_result(seed=0))
    k1, p1 = write_sweep_task(d, fake_result(seed=1))
    with h5py.File(p1, "r+") as f:
        f["success"][0] = not f["success"][0]
    (d / f"{KEYS[0]}.h5").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match=f"skipped 2 damaged result.*{re.escape(p1)}:.* \\(damaged: checksum mismatch"):
        tab = an.load(d)
    assert set(tab["task"]) == {k0} and len(tab) == 3
    assert any("not a readable HDF5 file" in s for s in tab.meta["skipped"])
    write_legacy(d / f"{KEYS[1]}.h5", fake_result(seed=2))
    os.remove(p1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                       # foreign data (no physsgd_version): silent
        with pytest.raises(UserWarning, match="skipped 1 damaged"):
            an.load(d)
    with h5py.File(d / f"{KEYS[1]}.h5", "r+") as f:
        f.attrs["physsgd_version"] = "0.1.0"                 # a task file of the previous release
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tab = an.load(d)
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2 and "earlier physsgd have no checksum" in messages[0]
    assert messages[1].startswith("skipped 1 damaged result(s):")
    assert set(tab["task"]) == {k0, KEYS[1]}
    with pytest.raises(ValueError, match="no readable task groups.*garbage|no readable task groups.*not a readable"):
        an.load(d / f"{KEYS[0]}.h5")


def test_readme_hdf5_example_runs_with_h5py_pandas_and_xarray(tmp_path, monkeypatch):
    """The code block of README.md's "HDF5 layout" section, on a small merged file."""
    from pathlib import Path
    d = tmp_path / "tasks"
    d.mkdir()
    for i, (N, m, init) in enumerate([(15, 20, "random"), (15, 20, "teacher"), (15, 32, "random"),
                                      (21, 20, "random"), (21, 32, "random")]):
        res = fake_result(seed=i)
        res.time_at_teacher = np.linspace(0, 1, len(res.success))
        res.params = {"teacher": {"N": N}, "algorithm": {"batch_size": m}, "run": {"seed": 0, "init": init}}
        write_sweep_task(d, res)
    (tmp_path / "quickstart").mkdir()
    store.merge([str(d)], str(tmp_path / "quickstart" / "results.h5"))
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## HDF5 layout"):]
    code = section[section.index("```python") + len("```python"):section.index("```", section.index("```python") + 3)]
    pytest.importorskip("pandas")
    if "xarray" in code:
        pytest.importorskip("xarray")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert list(namespace["idx"]["key"]) == sorted(namespace["idx"]["key"])
    assert len(namespace["rows"]) == 2                  # N = 15, m = 20: both starts
    sel = namespace["df"][(namespace["df"]["teacher.N"] == 15) & (namespace["df"]["algorithm.batch_size"] == 20)]
    assert namespace["p"].loc[(15, 20)] == pytest.approx(sel["success_rate"].mean())
    assert namespace["da"].dims == ("teacher.N", "algorithm.batch_size") and namespace["da"].shape == (2, 2)


def test_the_verification_recipe_of_runs_readme_works_as_printed(tmp_path):
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "runs" / "README.md").read_text()
    block = text[text.index("**Checksum.**"):]
    code = block[block.index("```python") + 9:block.index("```", block.index("```python") + 9)]
    code = code[:code.index("with h5py.File(")]                 # the function, not the example call
    namespace = {}
    exec(compile(code, "runs/README.md", "exec"), namespace)
    verify = namespace["verify"]
    d = tmp_path / "d"
    d.mkdir()
    k0, p0 = write_sweep_task(d, fake_result(seed=0))
    write_sweep_task(d, fake_result(seed=1))
    store.merge([str(d)], str(tmp_path / "m.h5"))
    with h5py.File(p0, "r") as f:
        assert verify(f) == "ok"
    with h5py.File(tmp_path / "m.h5", "r") as f:
        assert verify(f) == "ok" and all(verify(g) == "ok" for g in f["tasks"].values())
    with h5py.File(p0, "r+") as f:
        f["eps_g"][0, 0] += 1
    with h5py.File(p0, "r") as f:
        assert verify(f) == "damaged"
    write_legacy(tmp_path / "old.h5", fake_result())
    with h5py.File(tmp_path / "old.h5", "r") as f:
        assert verify(f) == "legacy"
