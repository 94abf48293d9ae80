"""analysis/fss/warm.py: `python -m analysis.fss.warm` fills an empty numba cache with every
collapse kernel (what the quickstart runs in the background while its training kernel compiles)."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECK = "from analysis.fss import warm; print(warm.kernels_cached())"


def _python(args, cache):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache),
           "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_warm_fills_an_empty_cache(tmp_path):
    before = _python(["-c", CHECK], tmp_path)
    assert before.stdout.strip() == "False", before.stderr
    run = _python(["-m", "analysis.fss.warm"], tmp_path)
    assert run.returncode == 0, run.stderr
    after = _python(["-c", CHECK], tmp_path)
    assert after.stdout.strip() == "True", after.stderr


def test_background_compile_runs_at_a_lower_priority():
    """The quickstart starts the analysis compile with cli._lower_priority: the child's niceness
    is 10 above ours, so the training kernel's compile keeps its core."""
    from physsgd import cli
    base = os.nice(0)
    out = subprocess.run([sys.executable, "-c", "import os; print(os.nice(0))"],
                         preexec_fn=cli._lower_priority, capture_output=True, text=True, check=True)
    assert int(out.stdout) == min(base + 10, 19)


SPAWN = """
import sys
from physsgd import cli, executors
executors.kernels_cached = lambda tasks=(): False      # as on a cold cache, with two cores
executors.cores = lambda: 2
p = cli._warm_analysis_kernels([])
p.kill()
p.wait()
print(p.args[1:], p.args[0] == sys.executable, "analysis" in sys.modules)
"""


def test_quickstart_starts_the_analysis_compile_without_importing_analysis(tmp_path):
    """The quickstart's cold path starts `python -m analysis.fss.warm` (which checks its own
    cache) from the directory holding the analysis package, without importing analysis itself
    (~1.3 s before the training kernel's compile could start)."""
    out = _python(["-c", SPAWN], tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == "['-m', 'analysis.fss.warm'] True False"
