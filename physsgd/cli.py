"""The ``physsgd`` command line: quickstart / check / run / status / merge / analyze.

Exit codes (the same for every command):

    0    success (also: nothing left to do, every task already finished)
    1    runtime failure: a task failed, a result could not be written (full disk, permissions),
         a damaged file was skipped by merge, a lost dask scheduler, workers that kept dying
    2    usage error: bad arguments, a bad config (one line naming file, line and key), a path
         that does not exist; nothing is computed or written
    3    nothing to work on: an existing directory or file without any task results
    130  interrupted by SIGINT (Ctrl-C); finished task files are kept, re-run to resume
    143  terminated by SIGTERM (e.g. a SLURM time limit); likewise

Errors are one line on stderr (``physsgd: error: ...``); ``--debug`` shows tracebacks.
"""
from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
import textwrap
import time
import warnings

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, EXIT_EMPTY = 0, 1, 2, 3
EXIT_SIGINT, EXIT_SIGTERM = 130, 143

EPILOG = """\
exit codes:
  0    success (also when every task was already finished)
  1    runtime failure: a task failed, a result could not be written, merge skipped a damaged file
  2    usage error: bad arguments or config, a missing path; nothing computed or written
  3    nothing to work on: a directory or file without task results
  130  interrupted by SIGINT (Ctrl-C): finished tasks kept, re-run to resume
  143  terminated by SIGTERM (e.g. a SLURM time limit): likewise

environment:
  NUMBA_CACHE_DIR  where numba caches the compiled kernels (default: __pycache__ next to the
                   package, or a per-user cache when that is read-only). The first run compiles
                   them (half a minute to a minute per kind of run); later runs load them
                   in seconds. On a cluster, point it at a directory on a shared file system
                   (e.g. $HOME/.cache/numba): nodes with the same CPU model then compile once.
  NUMBA_OPT        if set, numba's own compilation at that LLVM level for every kernel
                   (default: -O1 for the greedy kernels, -O3 for SGD and the overlap chain)
  NUMBA_NUM_THREADS  upper limit of --threads (default: the number of cores)

docs: README.md (Sweeps and clusters, HDF5 layout) and runs/README.md
"""

SHORT_EPILOG = """\
exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 nothing to work on,
130 / 143 interrupted by SIGINT / SIGTERM (finished tasks kept); see physsgd --help
(also for NUMBA_CACHE_DIR, where the compiled kernels are cached)
"""


class UsageError(ValueError):
    """Bad command-line input (exit code 2)."""


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from .executors import Interrupted, SweepError, SweepIOError
    from .sweep import ConfigError
    from .taskdir import EmptyInputError
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return args.func(args)
        except (ConfigError, UsageError) as e:
            if args.debug:
                raise
            _err(str(e))
            return EXIT_USAGE
        except EmptyInputError as e:
            if args.debug:
                raise
            _err(str(e))
            return EXIT_EMPTY
        except Interrupted as e:
            if args.debug:
                raise
            print(f"physsgd: {e}", file=sys.stderr, flush=True)
            return e.exit_code
        except KeyboardInterrupt:
            if args.debug:
                raise
            _err("interrupted; finished task files are kept, re-run the same command to resume")
            return EXIT_SIGINT
        except (SweepIOError, SweepError, OSError, RuntimeError, ValueError) as e:
            if args.debug:
                raise
            _err(_one_line(e))
            return EXIT_RUNTIME


def _one_line(e) -> str:
    text = " ".join(str(e).split()) if str(e) else type(e).__name__
    return text


def _err(msg):
    print(f"physsgd: error: {msg}", file=sys.stderr, flush=True)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"physsgd: warning: {message}", file=sys.stderr, flush=True)


def _info(args, msg):
    if not getattr(args, "quiet", False):
        print(msg, file=sys.stderr, flush=True)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's layout and adds "(default: ...)" to every option that has one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "%(default)" not in text and action.default not in (None, False, [], argparse.SUPPRESS) \
                and action.option_strings:
            text += " (default: %(default)s)"
        return text


def _parser():
    from ._version import __version__
    p = argparse.ArgumentParser(
        prog="physsgd", formatter_class=_Formatter, epilog=EPILOG,
        description=textwrap.fill(
            "Teacher-student SGD simulations: sweeps into HDF5, resumable on a laptop or a "
            "cluster, and their finite-size-scaling analysis. Start with `physsgd quickstart`; "
            "`physsgd COMMAND --help` describes each command.", 79))
    p.add_argument("--version", action="version", version=f"physsgd {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    execution = argparse.ArgumentParser(add_help=False)
    execution.add_argument("--workers", type=_positive, metavar="N",
                           help="tasks run in parallel (default: from the cores and the task count; "
                                "1 runs in this process)")
    execution.add_argument("--threads", type=_positive, metavar="N",
                           help="numba threads per task (default: cores / workers)")
    execution.add_argument("--quiet", "-q", action="store_true",
                           help="print only failures and errors (no progress)")

    def add(name, help, description, parents):
        return sub.add_parser(name, parents=parents, help=help, formatter_class=_Formatter,
                              description=textwrap.fill(description, 79), epilog=SHORT_EPILOG)

    q = add("quickstart", "run the built-in greedy mini-batch sweep, merge, analyse and plot it",
            "Run the small sweep shipped with physsgd (runs/quickstart.toml: a binary tree "
            "committee trained by greedy single-flip moves on mini-batches of m samples, 4 sizes "
            "x 7 batch sizes x 2 starts (random, planted) x 32 replicas), merge it into "
            "DIR/results.h5, and write the critical-point report (DIR/report.txt) and figures "
            "(DIR/*.png). The first run compiles the numba kernels (about half a minute, announced; "
            "cached for later runs, see NUMBA_CACHE_DIR in physsgd --help). Re-running resumes.",
            [common, execution])
    q.add_argument("--out", "-o", default="physsgd-quickstart", metavar="DIR",
                   help="output directory (task files go to DIR/tasks)")
    q.set_defaults(func=cmd_quickstart)

    c = add("check", "validate a sweep config and list its tasks' grid",
            "Read CONFIG, build every task (a bad value anywhere is reported with file, line and "
            "key), and print the number of tasks and the grid axes. Runs nothing.", [common])
    c.add_argument("config", metavar="CONFIG", help="sweep config (TOML, see runs/README.md)")
    c.set_defaults(func=cmd_check)

    r = add("run", "run a sweep config into a directory of task files (resumes)",
            "Expand CONFIG into tasks and run those without a verified file in DIR: one HDF5 file "
            "per finished task, written atomically. Re-running the same command resumes; damaged "
            "files are moved to DIR/damaged/ and recomputed; concurrent runs on one DIR share the "
            "work. Ctrl-C / SIGTERM stop cleanly (exit 130 / 143).", [common, execution])
    r.add_argument("config", metavar="CONFIG", help="sweep config (TOML, see runs/README.md)")
    r.add_argument("--out", "-o", required=True, metavar="DIR", help="directory of task files (created)")
    r.add_argument("--shard", metavar="i/n",
                   help="run only the i-th (0-based) of n round-robin slices, e.g. "
                        "$SLURM_ARRAY_TASK_ID/8 (see runs/slurm_array.sh)")
    r.add_argument("--executor", default="local",
                   choices=["local", "inline", "dask", "slurm", "submitit-local"],
                   help="local: processes on this machine; inline: this process; dask: a "
                        "dask.distributed scheduler (--scheduler); slurm: a submitit job array; "
                        "submitit-local: the same with local processes")
    r.add_argument("--scheduler", metavar="ADDRESS",
                   help="dask scheduler address (tcp://host:8786) or scheduler JSON file")
    r.add_argument("--slurm-param", action="append", default=[], metavar="KEY=VALUE",
                   help="submitit parameter, e.g. slurm_partition=short, timeout_min=30 "
                        "(repeatable; default: cpus_per_task=--threads, timeout_min=60)")
    r.add_argument("--merge", metavar="FILE", help="once every task is finished, merge DIR into FILE")
    r.add_argument("--dry-run", action="store_true", help="validate and list the tasks (done / missing), run nothing")
    r.set_defaults(func=cmd_run)

    s = add("status", "count done / diverged / missing tasks, per grid axis",
            "Verify the task files in DIR (damaged ones are moved to DIR/damaged/) and count them "
            "by status, per grid axis; with --config also the tasks still missing.", [common])
    s.add_argument("dir", metavar="DIR", help="directory of task files")
    s.add_argument("--config", metavar="CONFIG", help="the sweep config (to count missing tasks)")
    s.set_defaults(func=cmd_status)

    m = add("merge", "merge task files into one HDF5 file with an /index table",
            "Verify and copy every task into OUT: /tasks/<key> groups (datasets and attributes as "
            "in the task files) and an /index table with one row per task. Damaged files are "
            "skipped (exit 1) and moved to DIR/damaged/; files from an earlier physsgd without a "
            "checksum are merged with a warning.", [common])
    m.add_argument("sources", nargs="+", metavar="SOURCE", help="sweep directories, task files or merged files")
    m.add_argument("-o", "--out", required=True, metavar="FILE", help="merged file to write (replaced atomically)")
    m.set_defaults(func=cmd_merge)

    a = add("analyze", "critical point, finite-size scaling and figures of a results file",
            "Load RESULTS (a merged file, a task file or a directory of task files), locate where "
            "OBSERVABLE crosses 1/2 as a function of CONTROL for each SIZE, extrapolate in size "
            "with statistical and systematic errors, assess the transition order, and write a "
            "report and figures.", [common])
    a.add_argument("results", metavar="RESULTS", help="merged file, task file or directory of task files")
    a.add_argument("--control", default="batch_size",
                   help="control parameter: a column of the table, or a ratio/product of two "
                        "columns such as batch_size/d")
    a.add_argument("--size", default="N", help="system-size column for the extrapolation")
    a.add_argument("--observable", default="success",
                   help="per-replica observable whose crossing defines the critical point "
                        "(success, or a continuous one such as overlap)")
    a.add_argument("--out", "-o", metavar="DIR",
                   help="directory for report.txt, aggregated.csv and the figures "
                        "(default: RESULTS without .h5 + _report)")
    a.set_defaults(func=cmd_analyze)
    p.set_defaults(debug=False)
    return p


def _positive(text):
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return n


# --------------------------------------------------------------------------------------------

def cmd_check(args) -> int:
    from .sweep import load_config
    sw = load_config(args.config)
    print(f"{args.config}: OK, {len(sw.tasks)} tasks")
    for k, vals in sw.axes.items():
        print(f"  {k}: {', '.join(map(str, vals))}")
    return EXIT_OK


def cmd_run(args) -> int:
    from . import sweep
    sw = sweep.load_config(args.config)
    shard = None
    if args.shard:
        try:
            shard = sweep.parse_shard(args.shard)
        except ValueError as e:
            raise UsageError(str(e)) from None
    if args.executor == "dask" and not args.scheduler:
        raise UsageError("--executor dask needs --scheduler ADDRESS")
    slurm = _slurm_params(args.slurm_param)
    if args.executor in ("local", "inline"):
        _check_threads(args.threads)
    if args.dry_run:
        from . import taskdir
        tasks = sweep.shard(sw.tasks, *shard) if shard else sw.tasks
        done = set(taskdir.task_files(args.out)) if os.path.isdir(args.out) else set()
        for t in tasks:
            print(f"{t.key}  {'done   ' if t.key in done else 'missing'}  {t.label()}")
        print(f"{len(tasks)} tasks, {sum(t.key in done for t in tasks)} done", file=sys.stderr)
        return EXIT_OK
    report = sweep.run(sw, args.out, shard=shard, executor=args.executor, workers=args.workers,
                       threads=args.threads, scheduler=args.scheduler, slurm=slurm,
                       quiet=args.quiet, merge=args.merge)
    _info(args, f"task files: {report.out_dir}" + (f"; merged results: {os.path.abspath(args.merge)}"
                                                   if report.merged else ""))
    if report.failed or (report.merged is not None and not report.merged.ok):
        return EXIT_RUNTIME
    return EXIT_OK


def _check_threads(threads):
    # numba cannot use more threads than its pool has (NUMBA_NUM_THREADS, default: all cores)
    if threads:
        import numba
        limit = numba.config.NUMBA_NUM_THREADS
        if threads > limit:
            raise UsageError(f"--threads {threads} exceeds the {limit} threads numba can use here "
                             "(NUMBA_NUM_THREADS, default: the number of cores)")


def _slurm_params(items) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--slurm-param {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        try:
            v = int(v)
        except ValueError:
            pass
        out[k.strip()] = v
    return out


def cmd_merge(args) -> int:
    from .taskdir import merge
    for src in args.sources:
        if not os.path.exists(src):
            raise UsageError(f"{src}: no such file or directory")
    if os.path.isdir(args.out):
        raise UsageError(f"-o {args.out} is a directory; give the merged file's path, e.g. {args.out.rstrip('/')}.h5")
    rep = merge(args.sources, args.out)
    for d in rep.damaged:
        _err(f"damaged, not merged: {d}")
    if rep.legacy:
        print(f"physsgd: warning: {len(rep.legacy)} task(s) from an earlier physsgd have no checksum "
              f"and were merged unverified, e.g. {rep.legacy[0]}", file=sys.stderr)
    print(f"merged {rep.n_tasks} tasks into {os.path.abspath(args.out)}")
    if rep.damaged:
        _err(f"{len(rep.damaged)} damaged file(s) skipped; re-run the sweep to recompute them, then merge again")
        return EXIT_RUNTIME
    return EXIT_OK


def cmd_status(args) -> int:
    from . import h5layout, taskdir
    if not os.path.exists(args.dir):
        raise UsageError(f"{args.dir}: no such file or directory")
    if not os.path.isdir(args.dir):
        raise UsageError(f"{args.dir}: not a directory (status reads a directory of task files)")
    found = taskdir.scan(args.dir, quarantine=True)
    for d in found.damaged:
        print(f"damaged: {d} (a run recomputes it)")
    files = found.finished
    infos = {k: taskdir.task_info(p) for k, p in files.items()}
    running = taskdir.live_claims(args.dir)
    if args.config:
        from .sweep import load_config
        sw = load_config(args.config)
        keys = {t.key for t in sw.tasks}
        rows = [(t.point, infos[t.key]["status"] if t.key in infos
                 else "running" if t.key in running else "missing") for t in sw.tasks]
        extra = len(set(infos) - keys)
    else:
        flat = {k: h5layout.flatten(i["params"]) for k, i in infos.items()}
        cols = sorted({c for f in flat.values() for c in f})
        varying = [c for c in cols if len({repr(f.get(c)) for f in flat.values()}) > 1]
        rows = [({c: flat[k].get(c) for c in varying}, infos[k]["status"]) for k in infos]
        rows += [({}, "running") for k in running if k not in infos]
        extra = 0
    if not infos and not running:
        msg = f"{args.dir}: no task files yet"
        if args.config:
            msg += f" (0 of {len(rows)} tasks done)"
        print(msg)
        return EXIT_EMPTY
    print(_status_text(rows))
    if extra:
        print(f"({extra} other task files in {args.dir} are not in this config)")
    if found.legacy:
        print(f"({len(found.legacy)} task files from an earlier physsgd have no checksum: unverified)")
    if running:
        holders = sorted(set(running.values()))
        print(f"({len(running)} task(s) being computed now by {', '.join(holders[:3])})")
    return EXIT_OK


def _status_text(rows) -> str:
    statuses = ["done", "diverged", "running", "missing"]
    total = {s: sum(st == s for _, st in rows) for s in statuses}
    shown = [s for s in statuses if s != "running" or total["running"]]
    lines = [f"{len(rows)} tasks: " + ", ".join(f"{total[s]} {s}" for s in shown)]
    axes = []
    for point, _ in rows:
        for k in point:
            if k not in axes:
                axes.append(k)
    for axis in axes:
        counts = {}
        for point, st in rows:
            if axis not in point:
                continue
            v = point.get(axis)
            key = v if isinstance(v, (int, float, str, bool)) or v is None else repr(v)
            counts.setdefault(key, {s: 0 for s in statuses})
            counts[key][st if st in statuses else "done"] += 1
        if len(counts) < 2 and len(axes) > 1:
            continue
        counts = dict(sorted(counts.items(), key=lambda kv: (str(type(kv[0])), kv[0])))
        width = max(len(axis), *(len(str(v)) for v in counts))
        lines.append("")
        lines.append(f"{axis:>{width}}  " + "  ".join(f"{s:>8}" for s in shown))
        for v in counts:
            lines.append(f"{str(v):>{width}}  " + "  ".join(f"{counts[v][s]:>8}" for s in shown))
    return "\n".join(lines)


def _default_report_dir(results) -> str:
    base = os.path.abspath(results).rstrip(os.sep)
    if base.endswith((".h5", ".hdf5")):
        base = os.path.splitext(base)[0]
    return base + "_report"


def cmd_analyze(args) -> int:
    if not os.path.exists(args.results):
        raise UsageError(f"{args.results}: no such file or directory")
    try:
        from analysis.report import analyze
    except ImportError as e:
        raise RuntimeError(f"the analysis package is not available ({e})") from None
    out_dir = args.out or _default_report_dir(args.results)
    _check_results_nonempty(args.results)
    try:
        rep = analyze(args.results, control=args.control, size=args.size, observable=args.observable,
                      out_dir=out_dir)
    except ValueError as e:
        raise _column_error(e, args) from None
    if rep is not None and not isinstance(rep, (dict, list)):
        print(rep)
    _print_outputs(rep, out_dir)
    return EXIT_OK


def _check_results_nonempty(path):
    from .taskdir import EmptyInputError, task_files
    if os.path.isdir(path) and not task_files(path) and not [
            n for n in os.listdir(path) if n.endswith((".h5", ".hdf5")) and not n.startswith(".")]:
        raise EmptyInputError(f"{path}: no task files (.h5) in this directory")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise EmptyInputError(f"{path}: empty file")


def _column_error(e, args):
    """analysis lists every column of the table for an unknown name; say which flag it came
    from and suggest the closest columns instead."""
    m = re.match(r"unknown column '([^']*)'; columns are: (.*)$", str(e), re.S)
    if not m:
        return e
    name, columns = m.group(1), [c.strip() for c in m.group(2).split(",")]
    flag = next((f for f, v in (("--control", args.control), ("--size", args.size),
                                ("--observable", args.observable)) if name == v or name in str(v)), None)
    close = difflib.get_close_matches(name, columns, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    where = f"{flag} {name}" if flag else repr(name)
    return UsageError(f"{where}: no such column in {args.results}{hint} ({len(columns)} columns; "
                      "python -c \"import analysis; print(analysis.load('FILE').columns)\" lists them)")


def _print_outputs(rep, out_dir):
    if not os.path.isdir(out_dir):
        return
    figures = list(getattr(rep, "figures", {}).values()) if rep is not None else []
    parts = [f"report: {os.path.join(out_dir, 'report.txt')}"]
    if figures:
        parts.append(f"figures: {', '.join(os.path.basename(f) for f in figures)} in {out_dir}")
    print("; ".join(parts), file=sys.stderr)


# --------------------------------------------------------------------------------------------
# quickstart

QUICKSTART_CONTROLS = ("batch_size/d",)     # extra controls of the quickstart report


def quickstart_config_path() -> str:
    """The quickstart config shipped inside the package (physsgd/runs/quickstart.toml)."""
    from importlib.resources import files
    return str(files("physsgd").joinpath("runs", "quickstart.toml"))


def cmd_quickstart(args) -> int:
    from . import sweep
    _check_threads(args.threads)
    config = quickstart_config_path()
    sw = sweep.load_config(config)
    out = os.path.abspath(args.out)
    tasks_dir = os.path.join(out, "tasks")
    results = os.path.join(out, "results.h5")
    t0 = time.time()
    _info(args, f"physsgd quickstart: greedy mini-batch sweep ({config}), {len(sw.tasks)} tasks -> {out}")
    warm = _warm_analysis_kernels(sw.tasks)
    try:
        report = sweep.run(sw, tasks_dir, workers=args.workers, threads=args.threads,
                           quiet=args.quiet, merge=results)
    except BaseException:
        if warm is not None:      # interrupted: the analysis will not run now
            warm.kill()
        raise
    if warm is not None:
        warm.wait()
    if report.failed:
        return EXIT_RUNTIME
    if report.merged is None:
        _err(f"not every task is finished (another run is computing {len(report.elsewhere)}); "
             "re-run the quickstart once it is done")
        return EXIT_RUNTIME
    _info(args, f"ran in {time.time() - t0:.1f}s; results: {results}")
    try:
        from analysis.report import analyze
    except ImportError:
        analyze = None
    if analyze is not None:
        _info(args, "analysing: critical points, finite-size scaling, figures (the first run also "
                    "compiles the analysis kernels, up to a minute) ...")
        try:
            # m_c(N) with its growth law, and m/d: if m_c grows like d, (m/d)_c(N) has a limit
            rep = analyze(results, control="batch_size", size="N", observable="time_at_teacher", out_dir=out,
                          controls=QUICKSTART_CONTROLS)
            if rep is not None and not isinstance(rep, (dict, list)):
                print(rep)
            _info(args, f"results: {results}")
            _print_outputs(rep, out)
            return EXIT_OK
        except Exception as e:                     # the simple table below still tells the story
            if args.debug:
                raise
            _info(args, f"(analysis report failed: {type(e).__name__}: {e}; showing the plain table)")
    table = success_table(results)
    print(format_success_table(table))
    png = os.path.join(out, "success_vs_m.png")
    plot_success(table, png)
    _info(args, f"results: {results}; plot: {png}")
    return EXIT_OK


def _warm_analysis_kernels(tasks):
    """On a cold numba cache, compile the collapse kernels (analysis/fss/warm.py) in a background
    process while the training kernel compiles: that compile is single-threaded and the
    analysis would otherwise compile its own kernels afterwards (~8 s). Returns the process, or
    None (training kernels cached, one core only, or no analysis package). The child checks
    whether the analysis kernels are cached: importing analysis here would cost the cold run
    ~1.3 s before its compile starts."""
    import importlib.util
    import subprocess
    from .executors import cores, kernels_cached
    if cores() < 2 or kernels_cached(tasks) is not False:
        return None
    spec = importlib.util.find_spec("analysis")      # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    package = list(spec.submodule_search_locations)[0]
    if not os.path.exists(os.path.join(package, "fss", "warm.py")):
        return None
    try:
        # from the directory that holds the analysis package, at a lower priority: the training
        # kernel's compile (single-threaded) is the critical path, and the analysis needs its
        # kernels only once the sweep is done
        return subprocess.Popen([sys.executable, "-m", "analysis.fss.warm"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                cwd=os.path.dirname(package),
                                preexec_fn=_lower_priority if hasattr(os, "nice") else None)
    except OSError:
        return None


def _lower_priority():
    try:
        os.nice(10)
    except OSError:
        pass


def success_table(results) -> dict:
    """{N: [(m, p, dp, replicas), ...]}: success probability vs batch size m, pooled over seeds."""
    import numpy as np
    from .taskdir import read_index
    idx = read_index(results)
    out = {}
    for N in sorted(set(idx["teacher.N"].tolist())):
        rows = []
        sel = idx[idx["teacher.N"] == N]
        for m in sorted(set(sel["algorithm.batch_size"].tolist())):
            r = sel[sel["algorithm.batch_size"] == m]
            n = int(r["replicas"].sum())
            p = float((r["success_rate"] * r["replicas"]).sum() / n)
            rows.append((int(m), p, float(np.sqrt(max(p * (1 - p), 1e-12) / n)), n))
        out[int(N)] = rows
    return out


def format_success_table(table) -> str:
    lines = ["success probability vs mini-batch size m"]
    for N, rows in table.items():
        lines.append(f"N={N}: " + "  ".join(f"m={m}:{p:.2f}" for m, p, _, _ in rows))
    return "\n".join(lines)


def plot_success(table, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for N, rows in table.items():
        m, p, dp, _ = zip(*rows)
        ax.errorbar(m, p, yerr=dp, marker="o", capsize=2, label=f"N={N}")
    ax.set_xlabel("mini-batch size m")
    ax.set_ylabel("P(success)")
    ax.set_title("greedy training: success probability vs m")
    ax.set_ylim(-0.05, 1.05)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
