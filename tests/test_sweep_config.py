"""Sweep configs: grid expansion, derived values, hashing, and one clear message per bad config."""
import textwrap

import pytest

from physsgd.sweep import ConfigError, evaluate, parse_config, parse_shard, shard, task_key

BASE = """
[teacher]
activation = "sign"
output = "sign"
topology = "tree"
d = 4
weights = "binary"

[student]
activation = "sign"
output = "sign"
topology = "tree"
d = 4
weights = "binary"

[algorithm]
kind = "Greedy"

[data]
kind = "Online"
inputs = "binary"

[run]
steps = 20
replicas = 2
"""


def cfg(grid="", base=BASE):
    return parse_config(base + "\n" + textwrap.dedent(grid), path="x.toml")


def test_cartesian_product_in_order_last_axis_fastest():
    sw = cfg("""
        [grid]
        N = [12, 20]
        batch_size = [1, 2, 3]
    """)
    assert [(t.point["N"], t.point["batch_size"]) for t in sw.tasks] == \
        [(12, 1), (12, 2), (12, 3), (20, 1), (20, 2), (20, 3)]
    t = sw.tasks[4]
    # a short model key sets teacher and student; other short keys find their section
    assert t.params["teacher"]["N"] == t.params["student"]["N"] == 20
    assert t.params["teacher"]["K"] == 5                       # the spec derived K = N/d
    assert t.params["algorithm"]["batch_size"] == 2
    assert t.params["run"]["steps"] == 20 and t.params["run"]["replicas"] == 2
    assert sw.axes == {"N": [12, 20], "batch_size": [1, 2, 3]}


def test_dotted_keys_zip_groups_and_seeds_alias():
    student_without_d = BASE.replace('topology = "tree"\nd = 4\nweights = "binary"\n\n[algorithm]',
                                     'topology = "tree"\nweights = "binary"\n\n[algorithm]')
    assert student_without_d != BASE
    sw = cfg("""
        [grid]
        N = [12]
        "student.d" = [12, 4]
        seeds = [0, 1, 2]
        [[grid.zip]]
        batch_size = [1, 5]
        "algorithm.temperature" = [0.0, 0.5]
    """, base=student_without_d)
    assert len(sw.tasks) == 1 * 2 * 3 * 2
    t = sw.tasks[-1]
    assert t.params["student"]["d"] == 4 and t.params["teacher"]["d"] == 4
    assert sw.tasks[0].params["student"]["d"] == 12 and sw.tasks[0].params["teacher"]["d"] == 4
    assert t.params["run"]["seed"] == 2
    assert (t.params["algorithm"]["batch_size"], t.params["algorithm"]["temperature"]) == (5, 0.5)


def test_derived_values_and_helper_variables():
    base = BASE.replace('kind = "Online"', 'kind = "Dataset"').replace('[algorithm]\nkind = "Greedy"',
                                                                        '[algorithm]\nkind = "SGD"')
    base = base.replace('weights = "binary"', 'weights = "gaussian"')
    base = base.replace('[student]\nactivation = "sign"', '[student]\nactivation = "erf"')  # SGD needs a gradient
    sw = cfg("""
        [grid]
        N = [12, 20]
        batch_size = [2, 4]
        T = [0.25, 0.5]
        P = "4*N"
        lr = "T*batch_size"
        "data.test_size" = "max(100, P // 2)"
    """, base=base)
    assert len(sw.tasks) == 8
    for t in sw.tasks:
        p = t.params
        assert p["data"]["P"] == 4 * p["teacher"]["N"] and isinstance(p["data"]["P"], int)
        assert p["algorithm"]["lr"] == p["vars"]["T"] * p["algorithm"]["batch_size"]
        assert isinstance(p["algorithm"]["lr"], float)
        assert p["data"]["test_size"] == max(100, p["data"]["P"] // 2)
        assert t.point["P"] == p["data"]["P"]


def test_hash_is_stable_canonical_and_sensitive():
    a = cfg("[grid]\nN = [12, 20]\n")
    b = cfg("[grid]\nN = [12, 20]\n")
    assert [t.key for t in a.tasks] == [t.key for t in b.tasks]
    assert all(len(t.key) == 16 and int(t.key, 16) >= 0 for t in a.tasks)
    assert a.tasks[0].key == task_key(a.tasks[0].params)
    # 0 and 0.0 are the same temperature: same task, same file
    c = cfg("[grid]\nN = [12, 20]\n", base=BASE.replace('kind = "Greedy"', 'kind = "Greedy"\ntemperature = 0'))
    assert [t.key for t in a.tasks] == [t.key for t in c.tasks]
    # any parameter change changes the key
    d = cfg("[grid]\nN = [12, 20]\n", base=BASE.replace("steps = 20", "steps = 21"))
    assert not {t.key for t in a.tasks} & {t.key for t in d.tasks}


def test_single_task_without_grid():
    sw = cfg("", base=BASE.replace("d = 4", "d = 4\nN = 12"))
    assert len(sw.tasks) == 1 and sw.tasks[0].point == {}


def test_shards_partition_the_task_list():
    sw = cfg("[grid]\nN = [12, 20]\nbatch_size = [1, 2, 3]\nseed = [0, 1]\n")
    parts = [shard(sw.tasks, i, 5) for i in range(5)]
    assert sorted(t.key for p in parts for t in p) == sorted(t.key for t in sw.tasks)
    assert parse_shard("2/5") == (2, 5)
    for bad in ("5/5", "x", "1/0", "-1/3"):
        with pytest.raises(ValueError):
            parse_shard(bad)


@pytest.mark.parametrize("expr", ["__import__('os').system('true')", "N.__class__", "(lambda: 1)()",
                                  "open('x')", "[1, 2]", "N if N else 1", "2 ** 1000"])
def test_expression_evaluator_refuses_code(expr):
    with pytest.raises(ValueError):
        evaluate(expr, {"N": 10})


def test_expression_evaluator_arithmetic():
    assert evaluate("4*N + teacher.d // 2 - sqrt(16) + 2**3 % 5", {"N": 10, "teacher.d": 5}) == 40 + 2 - 4.0 + 3


# One clear message per bad config: (grid text, base replacements, expected fragments)
BAD = [
    ("[grid]\nbatch_size = [1, 2, 3, 0]\nN = [12]\n", {}, ["x.toml:", "grid.batch_size[3]", "batch_size=0"]),
    ("[grid]\nN = [12]\nbatch_szie = [1]\n", {}, ["grid.batch_szie", "did you mean 'batch_size'"]),
    ("[grid]\nN = [12]\n", {"[run]": "[run]\nfoo = 1"}, ["x.toml:", "run.foo", "unknown parameter"]),
    ("[grid]\nN = [12]\n", {'inputs = "binary"': 'inputs = "bianry"'}, ["data.inputs", "'bianry'"]),
    ("[grid]\nN = [12, 13]\n", {}, ["grid.N[1]", "d=4 does not divide N=13"]),
    ("[grid]\nN = [12]\n", {"replicas = 2": 'replicas = "two"'}, ["run.replicas", "integer"]),
    ("[grid]\nN = [12]\n", {"steps = 20": "steps = 20\nalpha = 3.0"}, ["exactly one of steps, epochs, alpha"]),
    ("[grid]\nN = [12]\nP = \"4*M\"\n", {}, ["grid.P", "unknown name 'M'"]),
    ("[grid]\nN = [12]\n", {'kind = "Greedy"': 'kind = "Adam"'}, ["algorithm.kind", "'Adam'"]),
    ("[grid]\nN = [12]\n", {'kind = "Greedy"': 'kind = "Greedy"\nmomentum = 0.9'},
     ["algorithm.momentum", "not a parameter of Greedy"]),
    ("[grid]\nN = []\n", {}, ["grid.N", "empty list"]),
    ("[grid]\nN = [12]\n[grid.zip]\nbatch_size = [1, 2]\nseed = [0]\n", {}, ["grid.zip", "different lengths"]),
    ("[grid]\nN = [12]\nd = \"N/4\"\nK = \"N/d\"\nd2 = 1\n", {}, ["grid.d2", "unknown parameter"]),
    ("[grid]\nN = [12]\nlr = \"a\"\na = \"lr\"\n", {}, ["cycle"]),
    ("[grid]\nN = [12]\n", {"[data]": "[dataa]"}, ["unknown section 'dataa'"]),
    ("[grid]\nN = [12]\n", {"steps = 20": "steps = 20\n[extra"}, ["invalid TOML"]),
    ("[grid]\nN = [12]\n\"teacher.d\" = [4]\n", {}, ["grid.teacher.d", "also given in [teacher]"]),
    ("[grid]\nN = [12]\nseed = [0, 0]\n", {}, ["same task"]),
    ("[grid]\nN = [12]\n", {"steps = 20": "epochs = 2"}, ["run.epochs", "Dataset"]),
    ("[grid]\nN = [12]\nstop = [\"sucess\"]\n", {}, ["grid.stop", "'sucess' is not allowed"]),
    # numbers that do not fit, and expressions that would run for minutes: refused at check time
    ("[grid]\nN = [12]\nbatch_size = \"1e30\"\n", {}, ["x.toml:29:", "grid.batch_size", "value out of range in '1e30'"]),
    ("[grid]\nN = [12]\nbatch_size = \"1e15\"\n", {}, ["x.toml:29:", "grid.batch_size",
                                                     "batch_size=1000000000000000: this run needs about"]),
    ("[grid]\nN = [12]\n", {'kind = "Greedy"': 'kind = "Greedy"\nbatch_size = "1e30"'},
     ["x.toml:18:", "algorithm.batch_size", "a number in quotes is a string in TOML: write batch_size = 1e30"]),
    ("[grid]\nN = [12]\nbatch_size = \"((2**60)**60)**60\"\n", {}, ["x.toml:29:", "grid.batch_size", "value out of range"]),
    ("[grid]\nN = [12]\nbatch_size = \"9**9**9**9\"\n", {}, ["grid.batch_size", "exponent 387420489 too large"]),
    ("[grid]\nN = [12]\nbatch_size = \"" + "+".join(["1"] * 300) + "\"\n", {}, ["grid.batch_size", "too long"]),
    ("[grid]\nN = [12]\nbatch_size = \"" + "(" * 220 + "1" + ")" * 220 + "\"\n", {}, ["grid.batch_size", "cannot parse"]),
    ("[grid]\nN = [12]\nbatch_size = [99999999999999999999999999999]\n", {},
     ["x.toml:29:", "grid.batch_size", "batch_size=999999...(29 digits) is out of range"]),
    ("[grid]\nN = [12]\nbatch_size = \"99999999999999999999999999 // 10**20\"\n", {},
     ["x.toml:29:", "grid.batch_size", "value out of range"]),
    ("[grid]\nN = [12]\n", {"steps = 20": "steps = 9223372036854775807"}, ["x.toml:24:", "run.steps",
                                                                       "allowed: integer in [1, 1000000000000]"]),
    ("[grid]\nN = [12]\nrecord = [[0, 10, 1000]]\n", {}, ["grid.record", "within [0, 20]"]),
    ("[grid]\nN = [12]\nlabel_noise = [1.5]\n", {}, ["grid.label_noise", "allowed: [0, 1]"]),
    ("[grid]\nN = [12]\ntemperature = [nan]\n", {}, ["grid.temperature", "temperature=nan is out of range"]),
]


@pytest.mark.parametrize("grid,repl,fragments", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_configs_give_one_line_with_key_path(grid, repl, fragments):
    base = BASE
    for old, new in repl.items():
        assert old in base
        base = base.replace(old, new, 1)
    with pytest.raises(ConfigError) as exc:
        parse_config(base + "\n" + grid, path="x.toml")
    msg = str(exc.value)
    assert "\n" not in msg
    for frag in fragments:
        assert frag in msg, msg


def test_error_names_the_toml_line():
    text = BASE + "\n[grid]\nN = [12]\nbatch_size = [1, 0]\n"
    line = text.splitlines().index("batch_size = [1, 0]") + 1
    with pytest.raises(ConfigError, match=rf"^x.toml:{line}: grid.batch_size\[1\]: "):
        parse_config(text, path="x.toml")
