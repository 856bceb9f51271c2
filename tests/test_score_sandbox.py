"""The code sandbox against hostile HumanEval completions.

Each hostile sample is the problem's CORRECT solution followed by an attack at module level, so it scores 1
if and only if the attack got through: "contained" means the attack fails, the run scores 0, and the host
shows no trace of it. (Wrong solutions that try to be scored correct are in test_score_verifier.py.)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from armillary.algorithms.score.sandbox import SandboxLimits, run_python, start_python
from armillary.algorithms.score.tasks.humaneval import HumanEvalTask, load_problems

FAST = SandboxLimits(wall_time_s=3.0, cpu_time_s=2, memory_bytes=512 << 20, max_processes=16)


@pytest.fixture(scope="module")
def problem():
    return next(p for p in load_problems() if p.problem_id == "HumanEval/0")


@pytest.fixture(scope="module")
def task():
    return HumanEvalTask(limits=FAST)


def hostile(problem, attack: str) -> str:
    return problem.metadata["canonical_solution"] + "\n\n" + attack.strip() + "\n"


def sandbox_processes_left() -> list[str]:
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        if "score-sandbox-" in cmdline:
            left.append(f"{pid}: {cmdline}")
    return left


def test_the_canonical_solution_passes_and_a_wrong_one_fails(task, problem):
    assert task.is_correct(problem, problem.metadata["canonical_solution"])
    assert not task.is_correct(problem, "    return False\n")
    assert not task.is_correct(problem, "    return numbers[\n")  # a syntax error


def test_batched_scoring_keeps_the_order(task, problem):
    responses = [problem.metadata["canonical_solution"], "    return False\n", "    while True:\n        pass\n",
                 problem.metadata["canonical_solution"]]
    assert [v.passed for v in task.verify_many([problem] * 4, responses, max_workers=4)] == [True, False, False, True]


def test_a_whole_function_in_a_code_fence_is_accepted(task, problem):
    fenced = "```python\ndef has_close_elements(numbers, threshold):\n" + problem.metadata["canonical_solution"] + "```\n"
    assert task.is_correct(problem, fenced)


def test_infinite_loop_is_stopped(task, problem):
    start = time.monotonic()
    assert not task.is_correct(problem, hostile(problem, "while True:\n    pass"))
    assert time.monotonic() - start < FAST.wall_time_s + 2


def test_fork_bomb_is_contained_and_leaves_no_process(task, problem):
    bomb = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""
    assert not task.is_correct(problem, hostile(problem, bomb))
    deadline = time.monotonic() + 20  # polled: a loaded machine reaps the bomb's processes late
    while sandbox_processes_left() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sandbox_processes_left() == []
    assert subprocess.run(["true"]).returncode == 0  # the host can still start processes


@pytest.mark.skipif(os.geteuid() != 0, reason="a uid of its own per sandbox needs root")
def test_a_fork_bomb_does_not_starve_a_sandbox_running_beside_it(problem):
    """Each sandbox has a uid of its own, so RLIMIT_NPROC is not shared: an honest response verified while another
    sandbox forks without end still passes (with one shared uid its interpreter could not even start)."""
    bomb = start_python("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
                        SandboxLimits(wall_time_s=30, cpu_time_s=20, max_processes=16))
    try:
        time.sleep(0.5)
        patient = HumanEvalTask(limits=SandboxLimits(wall_time_s=20, cpu_time_s=5, max_processes=16))
        assert patient.is_correct(problem, problem.metadata["canonical_solution"])
        uids = {run_python("import os; print(os.getuid())", FAST).stdout for _ in range(2)}
        assert len(uids) == 2
    finally:
        bomb.finish(0)


def test_memory_hog_is_refused(task, problem):
    hog = "hoard = []\nwhile True:\n    hoard.append(bytearray(64 << 20))"
    assert not task.is_correct(problem, hostile(problem, hog))
    result = run_python(hog, FAST)
    assert not result.exited_zero
    assert "MemoryError" in result.stderr or result.returncode != 0


def test_no_writes_outside_the_scratch_dir(task, problem, tmp_path):
    target_dir = tmp_path / "open_to_all"
    target_dir.mkdir()
    os.chmod(target_dir, 0o777)  # even a world-writable folder must stay untouched
    target = target_dir / "pwned.txt"
    attack = f"open({str(target)!r}, 'w').write('pwned')"
    assert not task.is_correct(problem, hostile(problem, attack))
    assert not target.exists()
    escape = "open('../escaped.txt', 'w').write('x')"
    assert not task.is_correct(problem, hostile(problem, escape))
    # Writing inside the scratch dir works (tests may need temporary files).
    assert run_python("open('scratch.txt', 'w').write('ok')\nassert open('scratch.txt').read() == 'ok'", FAST).exited_zero


def test_no_network_even_to_localhost(task, problem):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    attack = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'leak')"
    try:
        assert not task.is_correct(problem, hostile(problem, attack))
        # A completed TCP handshake waits in the backlog even unaccepted: after the run, nothing may be there.
        server.setblocking(False)
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()


def test_the_network_check_itself_sees_a_connection():
    """The check above is not vacuous: a connection from this (unsandboxed) process does arrive."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    client = socket.create_connection(server.getsockname(), timeout=2)
    try:
        server.setblocking(False)
        time.sleep(0.05)
        connection, _ = server.accept()
        connection.close()
    finally:
        client.close()
        server.close()


def test_environment_secrets_do_not_leak(task, problem, monkeypatch):
    monkeypatch.setenv("SCORE_TEST_SECRET", "hunter2-0451")
    attack = """
import os, glob
found = os.environ.get("SCORE_TEST_SECRET") == "hunter2-0451"
for path in glob.glob("/proc/*/environ"):
    try:
        found = found or b"hunter2-0451" in open(path, "rb").read()
    except OSError:
        pass
assert found, "no secret"
"""
    assert not task.is_correct(problem, hostile(problem, attack))
    result = run_python(attack, FAST)
    assert not result.exited_zero
    assert "hunter2" not in result.stdout + result.stderr


def test_killing_the_parent_or_host_processes_fails(task, problem):
    sentinel = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        attack = f"""
import os, signal
for pid in (os.getppid(), {sentinel.pid}, 1):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
os.kill({sentinel.pid}, 0)  # raises unless the sentinel is visible (and so killable) from here
"""
        assert not task.is_correct(problem, hostile(problem, attack))
        time.sleep(0.2)
        assert sentinel.poll() is None, "the host's process was killed from the sandbox"
    finally:
        sentinel.kill()
        sentinel.wait()


def test_an_empty_environment_and_a_fresh_scratch_cwd():
    probe = "import os, sys\nprint(sorted(k for k in os.environ if k != 'LC_CTYPE'))\nprint(os.listdir('.'))\nprint(sys.flags.isolated)"
    result = run_python(probe, FAST)
    assert result.exited_zero, result.stderr
    env_keys, listing, isolated = result.stdout.splitlines()
    assert env_keys == "[]"
    assert listing == "['program.py']"
    assert isolated == "1"


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="namespaces need root and unshare")
def test_namespaces_and_unprivileged_uid_are_in_force_here():
    result = run_python("import os; print(os.getuid(), os.getpid())", FAST)
    assert result.exited_zero, result.stderr
    uid, pid = result.stdout.split()
    assert uid != "0"
    assert int(pid) < 10  # a fresh PID namespace
    assert {"netns", "pidns", "readonly-fs", "uid-own"} <= set(result.isolation)


def test_bad_limits_name_the_field():
    with pytest.raises(ValueError, match="wall_time_s"):
        SandboxLimits(wall_time_s=0)
    with pytest.raises(TypeError, match="source"):
        run_python(b"print(1)")  # type: ignore[arg-type]
