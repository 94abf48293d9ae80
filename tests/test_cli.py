"""The physsgd command line: exit codes, one-line messages, run/status/merge/quickstart/analyze."""
import os
import subprocess
import sys
import types
from pathlib import Path

import h5py
import pytest

from physsgd import cli
from test_sweep_config import BAD, BASE
from test_sweep_run import config_text

ROOT = Path(__file__).resolve().parents[1]


def run_main(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("grid,repl,fragments", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_config_exit_2_one_line_nothing_written(tmp_path, capsys, grid, repl, fragments):
    text = BASE
    for old, new in repl.items():
        text = text.replace(old, new, 1)
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text + "\n" + grid)
    out = tmp_path / "out"
    code, _, err = run_main(capsys, "run", cfg, "--out", out)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("physsgd: error: ") and "Traceback" not in err
    assert fragments[-1] in err
    assert not out.exists()


@pytest.mark.parametrize("argv,fragment", [
    (["run", "{cfg}", "--out", "{out}", "--shard", "2/2"], "--shard"),
    (["run", "{missing}", "--out", "{out}"], "cannot read config"),
    (["run", "{cfg}", "--out", "{out}", "--slurm-param", "nonsense"], "KEY=VALUE"),
    (["status", "{missing}"], "{missing}: no such file or directory"),
    (["status", "{cfg}"], "not a directory"),
    (["run", "{cfg}", "--out", "{out}", "--threads", "100000"], "exceeds"),
    (["merge", "{missing}", "-o", "{out}/m.h5"], "{missing}: no such file or directory"),
    (["analyze", "{missing}"], "{missing}: no such file or directory"),
    (["check", "{missing}"], "cannot read config"),
])
def test_bad_arguments_exit_2(tmp_path, capsys, argv, fragment):
    cfg = tmp_path / "ok.toml"
    cfg.write_text(config_text())
    fill = {"cfg": cfg, "out": tmp_path / "out", "missing": tmp_path / "missing"}
    code, _, err = run_main(capsys, *[a.format(**fill) for a in argv])
    assert code == 2 and fragment.format(**fill) in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "--workers", "0", "x.toml", "--out", "d"])
    assert e.value.code == 2


def test_debug_shows_the_traceback(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(BASE + "\n[grid]\nN = [12]\nbatch_size = [0]\n")
    with pytest.raises(ValueError, match="batch_size"):
        cli.main(["run", str(cfg), "--out", str(tmp_path / "o"), "--debug"])


def test_run_status_merge_and_runtime_failure(tmp_path, capsys):
    cfg = tmp_path / "s.toml"
    cfg.write_text(config_text(seeds="[0]"))
    out = tmp_path / "out"
    code, _, err = run_main(capsys, "run", cfg, "--out", out, "--shard", "0/2", "--workers", "1")
    assert code == 0, err
    assert "[5/5]" in err and "ETA" in err                      # plain log lines when not a TTY
    code, text, _ = run_main(capsys, "status", out, "--config", cfg)
    assert code == 0
    assert text.splitlines()[0] == "10 tasks: 5 done, 0 diverged, 5 missing"
    assert "batch_size" in text and "missing" in text
    code, text, _ = run_main(capsys, "status", out)                # without the config: what is there
    assert code == 0 and text.startswith("5 tasks: 5 done")
    code, _, err = run_main(capsys, "run", cfg, "--out", out, "--workers", "1", "--quiet",
                            "--merge", tmp_path / "r.h5")
    assert code == 0 and "5 were already done" not in err        # --quiet
    with h5py.File(tmp_path / "r.h5", "r") as f:
        assert len(f["tasks"]) == 10 and len(f["index"]) == 10
    code, text, _ = run_main(capsys, "merge", out, "-o", tmp_path / "r2.h5")
    assert code == 0 and "merged 10 tasks" in text
    code, text, _ = run_main(capsys, "run", cfg, "--out", out, "--dry-run")
    assert code == 0 and text.count("done") == 10
    # an output path that cannot be a directory: runtime failure, exit 1, one line
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_main(capsys, "run", cfg, "--out", blocker / "sub")
    assert code == 1 and "cannot create output directory" in err and err.count("\n") == 1


def test_check_command(tmp_path, capsys):
    cfg = tmp_path / "s.toml"
    cfg.write_text(config_text())
    code, text, _ = run_main(capsys, "check", cfg)
    assert code == 0 and "20 tasks" in text and "batch_size: 1, 2, 3, 4, 5" in text


def test_quickstart_config_shipped_in_package_matches_runs():
    packaged = Path(cli.quickstart_config_path())
    assert packaged.read_text() == (ROOT / "runs" / "quickstart.toml").read_text()
    from physsgd.sweep import load_config
    sw = load_config(packaged)
    assert {t.params["algorithm"]["kind"] for t in sw.tasks} == {"Greedy"}
    assert len(sw.axes["N"]) >= 3
    # the phase, not a first passage: no early stop, both starts, m bracketing m_1/2 ~ 5 d per size
    assert {t.params["run"].get("stop") for t in sw.tasks} == {None}
    assert {t.params["run"]["init"] for t in sw.tasks} == {"random", "teacher"}
    for N in sw.axes["N"]:
        ms = [t.params["algorithm"]["batch_size"] for t in sw.tasks if t.params["teacher"]["N"] == N]
        d = N // 3
        assert min(ms) < 3 * d and max(ms) > 8 * d, (N, ms)


def test_quickstart_flow_with_fallback_table(tmp_path, capsys, monkeypatch):
    # the same flow as the real quickstart, on the tiny test grid, without the analysis package
    cfg = tmp_path / "q.toml"
    cfg.write_text(config_text(seeds="[0]"))
    monkeypatch.setattr(cli, "quickstart_config_path", lambda: str(cfg))
    monkeypatch.setitem(sys.modules, "analysis.report", None)        # import fails -> fallback
    code, text, err = run_main(capsys, "quickstart", "--out", tmp_path / "qs", "--workers", "1")
    assert code == 0, err
    assert "success probability" in text and "N=12:" in text and "N=20:" in text
    assert (tmp_path / "qs" / "results.h5").exists() and (tmp_path / "qs" / "success_vs_m.png").exists()
    assert err.strip().splitlines()[-1] == (f"results: {tmp_path / 'qs' / 'results.h5'}; "
                                            f"plot: {tmp_path / 'qs' / 'success_vs_m.png'}")


def test_analyze_calls_the_report_lazily(tmp_path, capsys, monkeypatch):
    calls = []
    mod = types.ModuleType("analysis.report")
    mod.analyze = lambda path, **kw: calls.append((path, kw)) or "REPORT"
    monkeypatch.setitem(sys.modules, "analysis.report", mod)
    res = tmp_path / "r.h5"
    res.write_bytes(b"x")
    code, text, _ = run_main(capsys, "analyze", res, "--control", "batch_size", "--size", "N",
                             "--observable", "success", "--out", tmp_path / "rep")
    assert code == 0 and "REPORT" in text
    assert calls == [(str(res), dict(control="batch_size", size="N", observable="success",
                                     out_dir=str(tmp_path / "rep")))]
    code, text, _ = run_main(capsys, "analyze", res)                  # default: next to the results
    assert calls[-1][1]["out_dir"] == str(tmp_path / "r_report")
    code, _, err = run_main(capsys, "analyze", tmp_path / "nope.h5")
    assert code == 2 and "no such file" in err


def test_console_script_entry_point():
    r = subprocess.run([sys.executable, "-m", "physsgd.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("physsgd ")


@pytest.mark.slow
def test_real_quickstart_under_two_minutes(tmp_path):
    import time
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "physsgd.cli", "quickstart", "--out", str(tmp_path / "qs")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "qs" / "results.h5").exists()
    assert time.time() - t0 < 120


def _tiny_quickstart_config(tmp_path) -> Path:
    """The shipped quickstart with 3 sizes, 7 batch sizes, 16 replicas and 100 sweeps."""
    import re
    text = (ROOT / "runs" / "quickstart.toml").read_text()
    for key, value in (("N", "[9, 15, 21]"), ("d", "[3, 5, 7]"), ("replicas", "16"), ("steps", "100"),
                       ("batch_size", "[4, 8, 12, 16, 24, 32, 48]")):
        text, n = re.subn(rf"(?m)^{key} = [^#\n]*", f"{key} = {value}   ", text)
        assert n == 1, key
    cfg = tmp_path / "tiny_quickstart.toml"
    cfg.write_text(text)
    return cfg


def test_quickstart_report_shows_mc_per_size_and_limits(tmp_path, capsys, monkeypatch):
    """Issue 6 test 3: the report on a (tiny) quickstart sweep shows m_c(N) per N and the large-N
    limit (m_c(inf), or the growth law when m_c grows) with stat/sys/total errors, for m and m/d."""
    import re
    monkeypatch.setattr(cli, "quickstart_config_path", lambda: str(_tiny_quickstart_config(tmp_path)))
    code, text, err = run_main(capsys, "quickstart", "--out", tmp_path / "qs", "--workers", "1")
    assert code == 0, err
    report = (tmp_path / "qs" / "report.txt").read_text()
    assert report.strip() in text
    num = r"[-+0-9.e]+"
    for label in ("batch_size", r"\(batch_size/d\)"):
        header = re.search(rf"(?m)^\s+N\s+{label}_c\s+stat\s+sys\s+total\s+width$", report)
        assert header, label
        rows = report[header.end():].splitlines()[1:4]
        for N, row in zip((9, 15, 21), rows):      # N, value, stat, sys, total, width
            assert re.fullmatch(rf"\s+{N}" + rf"\s+{num}" * 5, row), row
        limit = re.search(rf"(?m)^  {label}_c\(inf\) = {num} ± {num} \(stat\) ± {num} \(sys\) = ± {num} \(total\)"
                          rf"|^  {label}_c grows as N\^kappa, kappa = {num} ± {num} \(stat\) ± {num} \(sys\) "
                          rf"= ± {num} \(total\)", report)
        assert limit, label
    # m/d is the quantity with a finite limit if m_c grows like d: its extrapolation is shown
    assert re.search(rf"(?m)^  \(batch_size/d\)_c\(inf\) = {num} ± {num} \(stat\) ± {num} \(sys\) = ± {num} \(total\)",
                     report), report


# --------------------------------------------------------------------------------------------
# Exit codes, empty input, damaged files, help

def _sweep_dir(tmp_path, n=3, damaged=0):
    """A task directory written by physsgd (fake results), ``damaged`` of them corrupted."""
    from test_store import fake_result, write_sweep_task
    d = tmp_path / "d"
    d.mkdir()
    paths = [write_sweep_task(d, fake_result(seed=i))[1] for i in range(n)]
    for p in paths[:damaged]:
        with h5py.File(p, "r+") as f:
            f["eps_g"][0, 0] = 7.0
    return d, paths


def test_empty_input_is_exit_3_with_one_clear_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, text, err = run_main(capsys, "status", empty)
    assert code == 3 and text.strip() == f"{empty}: no task files yet"
    cfg = tmp_path / "s.toml"
    cfg.write_text(config_text(seeds="[0]"))
    code, text, _ = run_main(capsys, "status", empty, "--config", cfg)
    assert code == 3 and "(0 of 10 tasks done)" in text
    code, _, err = run_main(capsys, "merge", empty, "-o", tmp_path / "m.h5")
    assert code == 3 and err == f"physsgd: error: no task files in {empty}\n"
    assert "Size must be positive" not in err and not (tmp_path / "m.h5").exists()
    code, _, err = run_main(capsys, "analyze", empty)
    assert code == 3 and err.count("\n") == 1 and "no task files" in err
    (tmp_path / "zero.h5").write_bytes(b"")
    code, _, err = run_main(capsys, "analyze", tmp_path / "zero.h5")
    assert code == 3 and "empty file" in err


def test_merge_skips_damaged_files_by_name_and_exits_1(tmp_path, capsys):
    d, paths = _sweep_dir(tmp_path, n=3, damaged=1)
    code, text, err = run_main(capsys, "merge", d, "-o", tmp_path / "m.h5")
    assert code == 1
    assert f"damaged, not merged: {paths[0]}: checksum mismatch" in err and "moved to " in err
    assert text.strip() == f"merged 2 tasks into {tmp_path / 'm.h5'}"
    assert len(list((d / "damaged").glob("*.h5"))) == 1
    code, text, err = run_main(capsys, "merge", d, "-o", tmp_path / "m.h5")     # now clean
    assert code == 0 and err == ""


def test_status_verifies_and_reports_damaged_and_running_tasks(tmp_path, capsys):
    d, paths = _sweep_dir(tmp_path, n=3, damaged=1)
    from physsgd import taskdir
    with taskdir.Claims(d) as c:
        c.acquire("0" * 16)
        code, text, _ = run_main(capsys, "status", d)
    assert code == 0
    assert text.startswith(f"damaged: {paths[0]}: checksum mismatch: the data changed after the file "
                           "was written; moved to ")
    assert "3 tasks: 2 done, 0 diverged, 1 running, 0 missing" in text
    assert f"(1 task(s) being computed now by pid {os.getpid()} on " in text


def test_analyze_unknown_column_names_the_flag_and_suggests(tmp_path, capsys):
    d, _ = _sweep_dir(tmp_path, n=3)
    code, _, err = run_main(capsys, "analyze", d, "--size", "NN", "--control", "lr")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"physsgd: error: --size NN: no such column in {d}; did you mean N?")
    assert len(err) < 300                                          # not every column of the table


def test_every_command_and_option_is_documented_with_defaults(capsys):
    parser = cli._parser()
    sub = next(a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction))
    assert set(sub.choices) == {"quickstart", "check", "run", "status", "merge", "analyze"}
    for name, p in sub.choices.items():
        assert p.description and len(p.description) > 40, name
        help_line = next(c.help for c in sub._choices_actions if c.dest == name)
        assert help_line, name
        for action in p._actions:
            assert action.help, (name, action.dest)
        text = p.format_help()
        for action in p._actions:
            if action.option_strings and action.default not in (None, False, [], "==SUPPRESS=="):
                assert f"(default: {action.default})" in " ".join(text.split()), (name, action.dest)
        assert "exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 nothing to work on" in text
    top = parser.format_help()
    assert "NUMBA_CACHE_DIR" in top
    for code in ("0", "1", "2", "3", "130", "143"):
        assert f"\n  {code} " in top


def test_exit_codes_are_documented_alike_in_help_docstring_and_readme():
    import re
    def table(text):
        return {int(c) for c in re.findall(r"(?m)^\s*[|`]*\s*`?(\d{1,3})`?\s*[|`]?\s{1,}\S", text)
                if int(c) in (0, 1, 2, 3, 130, 143)}
    expected = {0, 1, 2, 3, 130, 143}
    assert table(cli.__doc__) == expected
    assert table(cli.EPILOG) == expected
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Exit codes"):][:2000]
    assert table(section) == expected
    assert (cli.EXIT_OK, cli.EXIT_RUNTIME, cli.EXIT_USAGE, cli.EXIT_EMPTY, cli.EXIT_SIGINT,
            cli.EXIT_SIGTERM) == (0, 1, 2, 3, 130, 143)


def test_run_and_merge_print_where_their_outputs_are(tmp_path, capsys, monkeypatch):
    import physsgd
    from test_sweep_run import ok_train
    monkeypatch.setattr(physsgd, "train", ok_train)
    cfg = tmp_path / "s.toml"
    cfg.write_text(config_text(seeds="[0]"))
    code, _, err = run_main(capsys, "run", cfg, "--out", tmp_path / "out", "--workers", "1",
                            "--merge", tmp_path / "r.h5")
    assert code == 0
    assert err.strip().splitlines()[-1] == f"task files: {tmp_path / 'out'}; merged results: {tmp_path / 'r.h5'}"
