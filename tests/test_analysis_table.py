"""analysis.table: the column store, HDF5 loading (files built by hand with h5py) and aggregation."""
import json

import h5py
import numpy as np
import pytest

from analysis.table import Table, aggregate, load, wilson_interval


# ----------------------------------------------------------------------------- hand-made files
def _params(N=20, m=4, seed=0, teacher_d=None):
    return {"teacher": {"kind": "Committee", "N": N, "K": 1, "d": teacher_d or N, "activation": "sign"},
            "student": {"kind": "Committee", "N": N, "K": 1, "d": N, "activation": "sign"},
            "algorithm": {"kind": "Greedy", "batch_size": m, "temperature": 0.0, "ties": "accept"},
            "data": {"kind": "Online", "inputs": "binary"},
            "run": {"seed": seed, "replicas": 3, "steps": 10}}


def _write_task(g, params, R=3, T=4, K=1, M=1, success=None, rho=None):
    """A task group in the physsgd layout; replica r has overlap rho[r] at the last record."""
    rho = np.linspace(0.2, 1.0, R) if rho is None else np.asarray(rho, float)
    g.attrs["params_json"] = json.dumps(params, sort_keys=True)
    g.attrs["status"] = "done"
    for sec, d in params.items():
        for k, v in d.items():
            g.attrs[f"{sec}.{k}"] = v
    g["time"] = np.arange(T, dtype=float)
    g["steps"] = np.arange(T)
    g["eps_g"] = np.tile(np.linspace(0.5, 0.0, T), (R, 1)) + np.arange(R)[:, None] * 0.01
    g["train_error"] = np.zeros((R, T))
    Rarr = np.zeros((R, T, K, M))
    Rarr[:, -1] = (rho * 2.0)[:, None, None]          # Q_kk = 4, T_nn = 1  ->  |R|/sqrt(QT) = rho
    g["R"] = Rarr
    g["Q"] = np.tile(4.0 * np.eye(K), (R, T, 1, 1))
    g["T"] = np.tile(np.eye(M), (R, 1, 1))
    g["weight_change"] = np.ones((R, T))
    g["weight_norm"] = np.ones((R, T)) * 2
    g["diverged"] = np.zeros(R, bool)
    g["success"] = np.asarray(success if success is not None else rho > 0.99)
    g["stopped_at"] = np.full(R, T - 1)


@pytest.fixture
def task_dir(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    for i, (N, m) in enumerate([(20, 2), (20, 8), (40, 2), (40, 8)]):
        with h5py.File(d / f"task{i:03d}.h5", "w") as f:
            _write_task(f, _params(N, m, seed=i))
    (d / ".task999.h5.tmp").write_text("half-written")   # must be ignored
    return d


def test_load_task_file(task_dir):
    t = load(task_dir / "task000.h5")
    assert len(t) == 3
    assert list(t["replica"]) == [0, 1, 2]
    assert np.all(t["N"] == 20) and np.all(t["student.N"] == 20) and np.all(t["batch_size"] == 2)
    assert np.all(t["temperature"] == 0.0) and np.all(t["seed"] == 0)
    np.testing.assert_allclose(t["overlap"], [0.2, 0.6, 1.0])
    np.testing.assert_allclose(t["eps_g"], [0.0, 0.01, 0.02])
    assert t["success"].dtype == bool and list(t["success"]) == [False, False, True]
    assert t["status"][0] == "done" and t["task"][0] == "task000"
    assert "kind" not in t.columns and "algorithm.kind" in t.columns
    assert np.all(t["steps"] == 10) and np.all(t["steps_final"] == 3) and np.all(t["time_final"] == 3.0)


def test_load_directory_and_merged(task_dir, tmp_path):
    t = load(task_dir)
    assert len(t) == 12
    assert sorted(t.unique("N")) == [20, 40] and sorted(t.unique("batch_size")) == [2, 8]
    merged = tmp_path / "merged.h5"
    with h5py.File(merged, "w") as f:
        for i, (N, m, seed) in enumerate([(20, 2, 0), (40, 8, 3)]):   # = task000, task003
            _write_task(f.create_group(f"tasks/k{i}"), _params(N, m, seed=seed))
        f.create_dataset("index", data=np.arange(3))   # someone else's table: not relied upon
    tm = load(merged)
    assert len(tm) == 6 and set(tm["task"]) == {"k0", "k1"}
    # a merged file next to its own task files: duplicates are read once
    import shutil
    shutil.copy(merged, task_dir / "merged.h5")
    td = load(task_dir)
    assert len(td) == 12 and len(td.meta["skipped"]) == 2


def test_short_name_precedence_when_sections_disagree(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        _write_task(f, _params(20, 2, teacher_d=5))
    t = load(tmp_path / "a.h5")
    assert t.meta["aliases"]["d"] == "student.d"
    assert np.all(t["d"] == 20) and np.all(t["teacher.d"] == 5)


def test_sgd_temperature_derived(tmp_path):
    p = _params(20, 4)
    p["algorithm"] = {"kind": "SGD", "lr": 0.5, "batch_size": 4, "momentum": 0.0}
    with h5py.File(tmp_path / "s.h5", "w") as f:
        _write_task(f, p)
    t = load(tmp_path / "s.h5")
    np.testing.assert_allclose(t["temperature"], 0.125)
    assert np.all(t["lr"] == 0.5)


def test_load_errors(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load(tmp_path / "nope.h5")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .h5"):
        load(tmp_path / "empty")


# ------------------------------------------------------------------------------------ Table
def test_table_basics_and_errors():
    t = Table.from_arrays(N=[10, 10, 20, 20], m=[1, 2, 1, 2], ok=[True, False, True, True], tag="x")
    assert len(t) == 4 and t.columns == ["N", "m", "ok", "tag"]
    assert list(t.where(N=10)["m"]) == [1, 2]
    assert len(t.where(t["m"] > 1)) == 2
    assert list(t.unique("N")) == [10, 20]
    groups = list(t.groupby("N"))
    assert [g[0] for g in groups] == [{"N": 10}, {"N": 20}] and len(groups[0][1]) == 2
    assert [k for k, _ in t.groupby(["N", "m"])][1] == {"N": 10, "m": 2}
    assert "4 rows" in repr(t)
    with pytest.raises(ValueError, match="unknown column 'q'"):
        t["q"]
    with pytest.raises(ValueError, match="unknown column"):
        t.where(q=1)
    with pytest.raises(ValueError, match="equal lengths"):
        Table.from_arrays(a=[1, 2], b=[1, 2, 3])
    with pytest.raises(ValueError, match="equal lengths"):
        Table({"a": [1, 2], "b": [1]})
    with pytest.raises(ValueError, match="boolean array"):
        t.where(np.array([True]))


def test_records_and_csv_roundtrip(tmp_path):
    t = Table.from_records([{"a": 1, "b": 0.5, "s": "x", "f": True},
                            {"a": 2, "s": "y", "f": False}])
    assert np.isnan(t["b"][1]) and t["a"].dtype.kind == "i" and t["f"].dtype == bool
    t.to_csv(tmp_path / "t.csv")
    u = Table.from_csv(tmp_path / "t.csv")
    assert u.columns == t.columns and list(u["s"]) == ["x", "y"] and u["f"].dtype == bool
    np.testing.assert_array_equal(u["a"], t["a"])
    assert u["b"][0] == 0.5 and np.isnan(u["b"][1])


def test_wilson_interval():
    lo, hi = wilson_interval(0, 10, 1.0)
    assert lo == 0.0 and 0 < hi < 0.2
    lo, hi = wilson_interval(5, 10, 1.96)
    assert lo < 0.5 < hi and abs((lo + hi) / 2 - 0.5) < 1e-12
    lo, hi = wilson_interval(np.array([0, 10]), np.array([10, 10]))
    assert lo.shape == (2,) and hi[1] == 1.0
    # coverage of the 95% interval on binomial draws (Wilson is close to nominal)
    rng = np.random.default_rng(0)
    k = rng.binomial(40, 0.3, 4000)
    lo, hi = wilson_interval(k, np.full(4000, 40), 1.959964)
    cover = np.mean((lo <= 0.3) & (0.3 <= hi))
    assert 0.92 < cover < 0.98
    with pytest.raises(ValueError, match="0 <= k <= n"):
        wilson_interval(5, 3)


def test_aggregate():
    t = Table.from_arrays(N=[10] * 4 + [20] * 4, ok=[1, 1, 0, 0, 1, 1, 1, 1],
                          q=[0.1, 0.3, np.nan, 0.5, 1, 1, 1, 1])
    t = t.with_column("ok", t["ok"].astype(bool))
    a = aggregate(t, by="N", observable=["ok", "q"])
    assert list(a["N"]) == [10, 20] and list(a["n"]) == [4, 4]
    np.testing.assert_allclose(a["ok_mean"], [0.5, 1.0])
    assert list(a["q_n"]) == [3, 4]
    np.testing.assert_allclose(a["q_mean"][0], 0.3)
    np.testing.assert_allclose(a["q_sem"][0], 0.2 / np.sqrt(3))
    assert a["ok_lo68"][1] < 1 and a["ok_hi68"][1] == 1.0 and "q_lo68" not in a
    with pytest.raises(ValueError, match="unknown column"):
        aggregate(t, by="M", observable="ok")


def test_strings_are_str_never_bytes(tmp_path):
    """Bytes from HDF5 (or anywhere) become str columns: no b'...' in a Table (issue 15)."""
    t = Table({"s": np.array([b"done", b"failed"]), "o": [b"a", "b"], "n": [1, 2]})
    assert t["s"].dtype.kind == "U" and list(t["s"]) == ["done", "failed"]
    assert t["o"].dtype.kind == "U" and list(t["o"]) == ["a", "b"]
    assert t.where(s="done")["n"].tolist() == [1]
    r = Table.from_records([{"k": b"x"}, {"k": "y"}])
    assert list(r["k"]) == ["x", "y"]
    # a task file whose string attributes are stored as bytes (fixed-length HDF5 strings)
    with h5py.File(tmp_path / "b.h5", "w") as f:
        _write_task(f, _params())
        f.attrs["status"] = np.bytes_(b"done")
        f.attrs["params_json"] = np.bytes_(json.dumps(_params(), sort_keys=True).encode())
    t = load(tmp_path / "b.h5")
    for name in t.columns:
        assert t[name].dtype.kind != "S", name
    assert t["status"][0] == "done" and t["algorithm.kind"][0] == "Greedy"


def test_to_pandas(task_dir, monkeypatch):
    pd = pytest.importorskip("pandas")
    t = load(task_dir)
    df = t.to_pandas()
    assert isinstance(df, pd.DataFrame) and list(df.columns) == t.columns and len(df) == len(t)
    np.testing.assert_array_equal(df["overlap"].to_numpy(), t["overlap"])
    assert df["success"].dtype == bool and df["N"].dtype.kind == "i"
    assert all(isinstance(v, str) for v in df["status"]) and df.attrs["aliases"]["N"] == "student.N"
    monkeypatch.setitem(__import__("sys").modules, "pandas", None)      # pandas not installed
    with pytest.raises(ImportError, match=r"physsgd\[pandas\]"):
        t.to_pandas()
