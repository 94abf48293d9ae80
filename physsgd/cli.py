"""The ``physsgd`` command line: run / check / status / merge / quickstart / analyze.

Exit codes: 0 ok, 2 bad config or arguments (one-line message, nothing computed or written),
1 runtime failure (a task failed, a file could not be written, ...). ``--debug`` shows tracebacks.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2


class UsageError(ValueError):
    """Bad command-line input (exit code 2)."""


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from .executors import SweepIOError
    from .sweep import ConfigError
    try:
        return args.func(args)
    except (ConfigError, UsageError) as e:
        if args.debug:
            raise
        _err(str(e))
        return EXIT_USAGE
    except KeyboardInterrupt:
        if args.debug:
            raise
        _err("interrupted; finished tasks are saved, re-run the same command to resume")
        return 130
    except (SweepIOError, OSError, RuntimeError, ValueError) as e:
        if args.debug:
            raise
        _err(str(e) or type(e).__name__)
        return EXIT_RUNTIME


def _err(msg):
    print(f"physsgd: error: {msg}", file=sys.stderr, flush=True)


def _info(args, msg):
    if not getattr(args, "quiet", False):
        print(msg, file=sys.stderr, flush=True)


def _parser():
    from ._version import __version__
    p = argparse.ArgumentParser(prog="physsgd", description="Teacher-student SGD simulations: sweeps, storage, analysis.")
    p.add_argument("--version", action="version", version=f"physsgd {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    execution = argparse.ArgumentParser(add_help=False)
    execution.add_argument("--workers", type=_positive, help="parallel tasks (default: chosen from cores)")
    execution.add_argument("--threads", type=_positive, help="numba threads per task (default: chosen from cores)")
    execution.add_argument("--quiet", "-q", action="store_true", help="no progress output")

    r = sub.add_parser("run", parents=[common, execution], help="run a sweep config (resumes)",
                       description="Expand CONFIG into tasks and run those not yet in DIR.")
    r.add_argument("config", metavar="CONFIG")
    r.add_argument("--out", "-o", required=True, metavar="DIR", help="directory of task files")
    r.add_argument("--shard", metavar="i/n", help="run only the i-th (0-based) of n slices, e.g. $SLURM_ARRAY_TASK_ID/8")
    r.add_argument("--executor", default="local",
                   choices=["local", "inline", "dask", "slurm", "submitit-local"],
                   help="local processes (default), inline (this process), dask (--scheduler), "
                        "slurm via submitit, submitit-local")
    r.add_argument("--scheduler", metavar="ADDRESS", help="dask scheduler address or scheduler JSON file")
    r.add_argument("--slurm-param", action="append", default=[], metavar="KEY=VALUE",
                   help="submitit parameter, e.g. slurm_partition=short, timeout_min=30 (repeatable)")
    r.add_argument("--merge", metavar="FILE", help="after a complete run, merge DIR into FILE")
    r.add_argument("--dry-run", action="store_true", help="validate and list the tasks, run nothing")
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("check", parents=[common], help="validate a config and count its tasks")
    c.add_argument("config", metavar="CONFIG")
    c.set_defaults(func=cmd_check)

    s = sub.add_parser("status", parents=[common], help="done / diverged / missing tasks per grid axis")
    s.add_argument("dir", metavar="DIR")
    s.add_argument("--config", metavar="CONFIG", help="the sweep config (to count missing tasks)")
    s.set_defaults(func=cmd_status)

    m = sub.add_parser("merge", parents=[common], help="merge task files into one HDF5 file")
    m.add_argument("sources", nargs="+", metavar="DIR", help="sweep directories (or task / merged files)")
    m.add_argument("-o", "--out", required=True, metavar="FILE")
    m.set_defaults(func=cmd_merge)

    q = sub.add_parser("quickstart", parents=[common, execution],
                       help="a small greedy mini-batch sweep, merged, analysed and plotted")
    q.add_argument("--out", "-o", default="physsgd-quickstart", metavar="DIR")
    q.set_defaults(func=cmd_quickstart)

    a = sub.add_parser("analyze", parents=[common], help="critical point / scaling report of a results file")
    a.add_argument("results", metavar="RESULTS")
    a.add_argument("--control", default="batch_size")
    a.add_argument("--size", default="N")
    a.add_argument("--observable", default="success")
    a.add_argument("--out", "-o", metavar="DIR", help="directory for the report's figures")
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
    from .executors import Progress, run_tasks
    from .sweep import load_config, parse_shard, shard
    sw = load_config(args.config)
    tasks = sw.tasks
    label = ""
    if args.shard:
        try:
            i, n = parse_shard(args.shard)
        except ValueError as e:
            raise UsageError(str(e)) from None
        tasks = shard(tasks, i, n)
        label = f" (shard {i}/{n} of {len(sw.tasks)})"
    if args.executor == "dask" and not args.scheduler:
        raise UsageError("--executor dask needs --scheduler ADDRESS")
    slurm = _slurm_params(args.slurm_param)
    if args.executor in ("local", "inline"):
        _check_threads(args.threads)
    if args.dry_run:
        from .store import task_files
        done = set(task_files(args.out)) if os.path.isdir(args.out) else set()
        for t in tasks:
            print(f"{t.key}  {'done   ' if t.key in done else 'missing'}  {t.label()}")
        print(f"{len(tasks)} tasks{label}, {sum(t.key in done for t in tasks)} done", file=sys.stderr)
        return EXIT_OK
    from .store import task_files
    finished = set(task_files(args.out)) if os.path.isdir(args.out) else set()
    done0 = sum(t.key in finished for t in tasks)
    _info(args, f"physsgd run: {len(tasks)} tasks{label}, {done0} already done, writing to {args.out}")
    progress = Progress(len(tasks), already=done0, quiet=args.quiet)
    try:
        report = run_tasks(tasks, args.out, executor=args.executor, workers=args.workers,
                           threads=args.threads, scheduler=args.scheduler, slurm=slurm,
                           progress=progress)
    finally:
        progress.close()
    if report.removed_temps:
        _info(args, f"removed {len(report.removed_temps)} temp file(s) of killed runs")
    ran = len(report.outcomes)
    how = (f"{report.workers} workers x {report.threads} threads" if report.workers
           else f"executor {args.executor}, {report.threads} threads per task")
    _info(args, f"{ran} tasks run in {report.wall_time:.1f}s ({how}), "
                f"{report.count('done')} done, {report.count('diverged')} diverged, "
                f"{len(report.failed)} failed; {report.skipped} were already done")
    if report.failed:
        first = report.failed[0]
        _err(f"{len(report.failed)} task(s) failed, e.g. {first.key}: {first.error}; "
             "their files were not written, re-run to retry")
        return EXIT_RUNTIME
    if args.merge:
        from .store import merge
        if args.shard:
            _info(args, "--merge ignored with --shard: merge once all shards are done")
        else:
            n = merge([args.out], args.merge)
            _info(args, f"merged {n} tasks into {args.merge}")
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
    from .store import merge
    for src in args.sources:
        if not os.path.exists(src):
            raise UsageError(f"{src}: no such directory or file")
    n = merge(args.sources, args.out)
    if n == 0:
        _err(f"no task files found in {', '.join(args.sources)}")
        return EXIT_RUNTIME
    print(f"merged {n} tasks into {args.out}")
    return EXIT_OK


def cmd_status(args) -> int:
    from . import store
    if not os.path.isdir(args.dir):
        raise UsageError(f"{args.dir}: no such directory")
    files = store.task_files(args.dir)
    infos = {k: store.task_info(p) for k, p in files.items()}
    running = store.temp_files(args.dir)
    if args.config:
        from .sweep import load_config
        sw = load_config(args.config)
        rows = [(t.point, infos[t.key]["status"] if t.key in infos else "missing") for t in sw.tasks]
        extra = len(set(infos) - {t.key for t in sw.tasks})
    else:
        flat = {k: store.flatten(i["params"]) for k, i in infos.items()}
        cols = sorted({c for f in flat.values() for c in f})
        varying = [c for c in cols if len({repr(f.get(c)) for f in flat.values()}) > 1]
        rows = [({c: flat[k].get(c) for c in varying}, infos[k]["status"]) for k in infos]
        extra = 0
    print(_status_text(rows))
    if extra:
        print(f"({extra} other task files in {args.dir} are not in this config)")
    if running:
        print(f"({len(running)} task(s) being written now or left by killed runs: {', '.join(running[:3])}"
              f"{' ...' if len(running) > 3 else ''})")
    return EXIT_OK


def _status_text(rows) -> str:
    statuses = ["done", "diverged", "missing"]
    total = {s: sum(st == s for _, st in rows) for s in statuses}
    lines = [f"{len(rows)} tasks: " + ", ".join(f"{total[s]} {s}" for s in statuses)]
    axes = []
    for point, _ in rows:
        for k in point:
            if k not in axes:
                axes.append(k)
    for axis in axes:
        counts = {}
        for point, st in rows:
            v = point.get(axis)
            key = v if isinstance(v, (int, float, str, bool)) or v is None else repr(v)
            counts.setdefault(key, {s: 0 for s in statuses})
            counts[key][st if st in statuses else "done"] += 1
        if len(counts) < 2 and len(axes) > 1:
            continue
        width = max(len(axis), *(len(str(v)) for v in counts))
        lines.append("")
        lines.append(f"{axis:>{width}}  " + "  ".join(f"{s:>8}" for s in statuses))
        for v in counts:
            lines.append(f"{str(v):>{width}}  " + "  ".join(f"{counts[v][s]:>8}" for s in statuses))
    return "\n".join(lines)


def cmd_analyze(args) -> int:
    if not os.path.exists(args.results):
        raise UsageError(f"{args.results}: no such file")
    try:
        from analysis.report import analyze
    except ImportError as e:
        raise RuntimeError(f"the analysis package is not available ({e})") from None
    out = analyze(args.results, control=args.control, size=args.size, observable=args.observable,
                  out_dir=args.out)
    if out is not None and not isinstance(out, (dict, list)):
        print(out)
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# quickstart

QUICKSTART_CONTROLS = ("batch_size/d",)     # extra controls of the quickstart report


def quickstart_config_path() -> str:
    """The quickstart config shipped inside the package (physsgd/runs/quickstart.toml)."""
    from importlib.resources import files
    return str(files("physsgd").joinpath("runs", "quickstart.toml"))


def cmd_quickstart(args) -> int:
    from .executors import Progress, run_tasks
    from .store import merge
    from .sweep import load_config
    _check_threads(args.threads)
    config = quickstart_config_path()
    sw = load_config(config)
    out = args.out
    tasks_dir = os.path.join(out, "tasks")
    results = os.path.join(out, "results.h5")
    t0 = time.time()
    _info(args, f"physsgd quickstart: greedy mini-batch sweep ({config}), {len(sw.tasks)} tasks -> {out}")
    progress = Progress(len(sw.tasks), quiet=args.quiet)
    try:
        report = run_tasks(sw.tasks, tasks_dir, workers=args.workers, threads=args.threads, progress=progress)
    finally:
        progress.close()
    if report.failed:
        _err(f"{len(report.failed)} task(s) failed, e.g. {report.failed[0].error}")
        return EXIT_RUNTIME
    merge([tasks_dir], results)
    _info(args, f"ran in {time.time() - t0:.1f}s; results: {results}")
    try:
        from analysis.report import analyze
    except ImportError:
        analyze = None
    if analyze is not None:
        try:
            # m_c(N) with its growth law, and m/d: if m_c grows like d, (m/d)_c(N) has a limit
            rep = analyze(results, control="batch_size", size="N", observable="success", out_dir=out,
                          controls=QUICKSTART_CONTROLS)
            if rep is not None and not isinstance(rep, (dict, list)):
                print(rep)
            return EXIT_OK
        except Exception as e:                     # the simple table below still tells the story
            if args.debug:
                raise
            _info(args, f"(analysis report failed: {type(e).__name__}: {e}; showing the plain table)")
    table = success_table(results)
    print(format_success_table(table))
    png = os.path.join(out, "success_vs_m.png")
    plot_success(table, png)
    print(f"plot: {png}")
    return EXIT_OK


def success_table(results) -> dict:
    """{N: [(m, p, dp, replicas), ...]}: success probability vs batch size m, pooled over seeds."""
    import numpy as np
    from .store import read_index
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
    ax.set_ylabel("success probability")
    ax.set_ylim(-0.05, 1.05)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
