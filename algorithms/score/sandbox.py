"""Run untrusted, model-written Python, contained. No Ray, stdlib only.

Layers, strongest first (each one that is unavailable is skipped with a logged reason):

1. Linux namespaces via the `unshare` command (needs root or CAP_SYS_ADMIN): a new network namespace (only a
   downed loopback: no network at all), a new PID namespace with its own /proc (the code cannot see or signal
   host processes, and when the namespace's init exits every process left in it is killed — fork bombs and
   daemonised children included), a new IPC namespace, and a private mount namespace in which every mount
   is remounted read-only except the scratch directory; top-level folders other than the system's, the
   interpreter's and the scratch dir's (/work, /root, /home, /opt, …) are covered by an empty read-only tmpfs.
2. An unprivileged identity of its own when we run as root (a uid/gid drawn at random from 2^24 that no account
   uses, no supplementary groups): no permission to write anything root owns, nor to signal root's processes (our
   parent included); no RLIMIT_NPROC budget or files shared with other sandboxes running at the same time.
3. Resource limits (setrlimit) in the child: CPU seconds, address space, file size, number of processes of the
   uid (against fork bombs), open files, no core dumps.
4. Always: a fresh interpreter in isolated mode (`-I -S`: no PYTHON* variables, no user or site packages), an
   empty environment (no secrets leak), the working directory a fresh scratch dir, stdout/stderr to files
   (capped by the file-size limit), and a wall-clock timeout that SIGKILLs the whole process group.

What the program says about itself — its exit status, its output — is reported (`SandboxResult`) but is no
verdict: a program can exit 0 from anywhere. Judging code by tests is tasks/code_verifier.py's job, which keeps
the tests on the trusted side and only lets plain data out of the sandbox.
"""

from __future__ import annotations

import json
import logging
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SandboxLimits:
    wall_time_s: float = 10.0
    cpu_time_s: int = 5
    memory_bytes: int = 1 << 30  # address space
    file_size_bytes: int = 16 << 20  # any single file written, stdout/stderr included
    max_processes: int = 32  # of the sandbox uid, system-wide (RLIMIT_NPROC)
    max_open_files: int = 64
    output_bytes: int = 64 << 10  # how much stdout/stderr is read back

    def __post_init__(self):
        for name in ("wall_time_s", "cpu_time_s", "memory_bytes", "file_size_bytes", "max_processes", "max_open_files"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class SandboxResult:
    returncode: int | None  # None when killed for the wall-clock limit
    timed_out: bool
    stdout: str
    stderr: str
    duration_s: float
    isolation: tuple[str, ...] = field(default_factory=tuple)  # the layers that were in force

    @property
    def exited_zero(self) -> bool:
        """The program ended with status 0 in time: says nothing about correctness (any code can exit 0)."""
        return self.returncode == 0 and not self.timed_out


# The first process inside the namespaces (PID 1 there, still root there): make the filesystem read-only
# except the scratch dir, then fork the untrusted interpreter under its own uid with the limits, and wait for it.
# Passed with `python -I -S -c`, so it relies on nothing but the standard library.
_NAMESPACE_INIT = r"""
import ctypes, json, os, resource, sys
cfg = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
def mount(src, target, flags, fstype=None):
    if libc.mount(src and src.encode(), target.encode(), fstype and fstype.encode(), ctypes.c_ulong(flags), None) != 0:
        raise OSError(ctypes.get_errno(), "mount " + target)
mount(None, "/", MS_REC | MS_PRIVATE)
scratch = cfg["scratch"]
mount(scratch, scratch, MS_BIND)
targets = []
with open("/proc/self/mountinfo") as f:
    for line in f:
        target = line.split()[4].encode().decode("unicode_escape")
        if target != scratch and target not in targets:
            targets.append(target)
for target in targets:
    try:
        mount(None, target, MS_REMOUNT | MS_BIND | MS_RDONLY)
    except OSError as e:
        if target == "/":
            sys.stderr.write("sandbox init: cannot make / read-only: %s\n" % e)
            os._exit(125)
# Top-level folders the program has no need of (everything but the system's and the interpreter's) are covered by
# an empty read-only tmpfs: the user's files, other projects, the datasets the trusted side reads the tests from.
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
for name in os.listdir("/"):
    path = "/" + name
    if name not in cfg["visible"] and os.path.isdir(path) and not os.path.islink(path):
        try:
            mount("tmpfs", path, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "tmpfs")
        except OSError as e:
            sys.stderr.write("sandbox init: cannot hide %s: %s\n" % (path, e))
            os._exit(125)
pid = os.fork()
if pid == 0:
    try:
        for name, value in cfg["rlimits"].items():
            resource.setrlimit(getattr(resource, name), (value, value))
        if cfg["uid"] is not None:
            os.setgroups([])
            os.setgid(cfg["gid"])
            os.setuid(cfg["uid"])
        os.chdir(scratch)
        os.umask(0o077)
        os.execve(cfg["argv"][0], cfg["argv"], {})
    except BaseException as e:
        sys.stderr.write("sandbox init: cannot start the program: %r\n" % (e,))
    finally:
        os._exit(126)
for fd in cfg["pass_fds"]:  # only the program holds its channel: its end closes when it ends
    os.close(fd)
_, status = os.waitpid(pid, 0)
os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
"""


@lru_cache(maxsize=1)
def _unshare_command() -> tuple[str, ...] | None:
    """The unshare prefix if namespaces work here, else None (with the reason logged once)."""
    binary = shutil.which("unshare")
    if binary is None:
        logger.warning("sandbox: no `unshare` command; running without network/PID/mount namespaces")
        return None
    command = (binary, "--net", "--ipc", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child")
    try:
        probe = subprocess.run([*command, "true"], capture_output=True, timeout=10, env={})
    except (OSError, subprocess.TimeoutExpired) as e:
        logger.warning("sandbox: `unshare` failed to start (%s); running without namespaces", e)
        return None
    if probe.returncode != 0:
        logger.warning(
            "sandbox: namespaces unavailable (%s); running without network/PID/mount isolation",
            probe.stderr.decode(errors="replace").strip() or f"exit {probe.returncode}",
        )
        return None
    return command


# Each sandbox runs under a uid/gid of its own, drawn from 2^24 numbers far above any account's (running as a uid
# needs no passwd entry): concurrent sandboxes then share no RLIMIT_NPROC budget (a fork bomb in one cannot starve
# another) and cannot read each other's scratch folders.
_SANDBOX_IDS = range(0x60000000, 0x60000000 + (1 << 24))
_draw = random.SystemRandom()  # not the global generator: the trainer's random state is not ours to move


@lru_cache(maxsize=1)
def _unprivileged_ids() -> range | None:
    """The uids sandboxes draw from, or None when we cannot change uid (not root)."""
    if os.geteuid() != 0:
        logger.warning("sandbox: not root, so the code runs under our own uid (it can write where we can outside the namespaces)")
        return None
    return _SANDBOX_IDS


def _fresh_ids(pool: range) -> tuple[int, int]:
    uid = _draw.choice(pool)
    return uid, uid


# Top-level folders a sandboxed interpreter may see (plus those holding the interpreter and the scratch dir).
_SYSTEM_DIRS = frozenset({"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "sys", "usr"})


def _top_dir(path: str) -> str:
    parts = os.path.realpath(path).strip("/").split("/")
    return parts[0] if parts and parts[0] else ""


def _visible_top_dirs(python: str, scratch: str) -> set[str]:
    """The path the interpreter is started by and the one it resolves to (a venv's python links elsewhere)."""
    literal = os.path.abspath(python).strip("/").split("/")[0]
    return set(_SYSTEM_DIRS) | {literal, _top_dir(python), _top_dir(scratch)} - {""}


def _rlimits(limits: SandboxLimits) -> dict[str, int]:
    return {
        "RLIMIT_CPU": int(limits.cpu_time_s),
        "RLIMIT_AS": int(limits.memory_bytes),
        "RLIMIT_FSIZE": int(limits.file_size_bytes),
        "RLIMIT_NPROC": int(limits.max_processes),
        "RLIMIT_NOFILE": int(limits.max_open_files),
        "RLIMIT_CORE": 0,
    }


def _read_capped(path: str, limit: int) -> str:
    with open(path, "rb") as f:
        return f.read(limit).decode("utf-8", errors="replace")


def run_python(source: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run `source` as a Python program in the sandbox; never raises for anything the code does."""
    if not isinstance(source, str):
        raise TypeError(f"source: expected str, got {type(source).__name__}")
    python, ids, namespaces = _setup()
    return _run(source, limits or SandboxLimits(), python, ids, namespaces)


def run_python_many(sources: list[str], limits: SandboxLimits | None = None, max_workers: int = 4) -> list[SandboxResult]:
    """run_python over many programs, `max_workers` at a time (threads only wait on child processes), in order.
    All of them count against the one RLIMIT_NPROC budget of the sandbox uid."""
    if max_workers < 1:
        raise ValueError(f"max_workers: must be ≥ 1, got {max_workers}")
    _setup()  # probe once, before the threads start
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        return list(pool.map(lambda source: run_python(source, limits), sources))


@lru_cache(maxsize=1)
def _setup() -> tuple[str, range | None, tuple[str, ...] | None]:
    """Choose the interpreter: an unprivileged uid must be able to run it (a pyenv Python under /root is not
    readable by others), so try ours and then the system's with a trivial program, once per process."""
    ids, namespaces = _unprivileged_ids(), _unshare_command()
    if ids is None:
        return sys.executable, None, namespaces
    candidates = [sys.executable, "/usr/bin/python3", "/usr/local/bin/python3", shutil.which("python3")]
    for candidate in dict.fromkeys(c for c in candidates if c and os.path.exists(c)):
        probe = _run("import sys", SandboxLimits(wall_time_s=20), candidate, ids, namespaces)
        if probe.exited_zero:
            if candidate != sys.executable:
                logger.info("sandbox: %s is not usable by an unprivileged uid; untrusted code runs on %s", sys.executable, candidate)
            return candidate, ids, namespaces
    logger.warning("sandbox: no Python interpreter that an unprivileged uid can run; the code runs as root (in the "
                   "namespaces, if any, which keep the filesystem read-only)")
    return sys.executable, None, namespaces


class SandboxProcess:
    """A started sandboxed program. `finish(wait_s)` waits for it up to `wait_s`, SIGKILLs its process group (and
    with it, through the PID namespace, everything it started), reads its output and removes its files."""

    def __init__(self, process: subprocess.Popen, host_dir: str, limits: SandboxLimits, isolation: list[str], start: float):
        self.process, self.host_dir, self.limits, self.isolation, self.start = process, host_dir, limits, isolation, start

    def finish(self, wait_s: float) -> SandboxResult:
        timed_out = False
        try:
            self.process.wait(timeout=max(0.0, wait_s))
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait()
        duration = time.monotonic() - self.start
        try:
            return SandboxResult(
                returncode=None if timed_out else self.process.returncode,
                timed_out=timed_out,
                stdout=_read_capped(os.path.join(self.host_dir, "stdout"), self.limits.output_bytes),
                stderr=_read_capped(os.path.join(self.host_dir, "stderr"), self.limits.output_bytes),
                duration_s=duration,
                isolation=tuple(self.isolation),
            )
        finally:
            shutil.rmtree(self.host_dir, ignore_errors=True)


def start_python(source: str, limits: SandboxLimits | None = None, *, pass_fds: tuple[int, ...] = (),
                 args: tuple[str, ...] = ()) -> SandboxProcess:
    """Start `source` as a Python program in the sandbox (`python program.py *args`) and return at once. The
    descriptors in `pass_fds` stay open in it under the same numbers (the caller closes its copies of the ends it
    gave away); everything else it sees is what `run_python` gives. The caller must call `finish`."""
    if not isinstance(source, str):
        raise TypeError(f"source: expected str, got {type(source).__name__}")
    python, ids, namespaces = _setup()
    return _start(source, limits or SandboxLimits(), python, ids, namespaces, tuple(pass_fds), tuple(args))


def _run(source: str, limits: SandboxLimits, python: str, ids, namespaces) -> SandboxResult:
    started = _start(source, limits, python, ids, namespaces, (), ())
    return started.finish(limits.wall_time_s)


def _start(source: str, limits: SandboxLimits, python: str, ids, namespaces, pass_fds: tuple[int, ...],
           args: tuple[str, ...]) -> SandboxProcess:
    rlimits = _rlimits(limits)
    if ids is None and namespaces is None:
        # RLIMIT_NPROC counts every process of our own uid: keep room for the host's.
        rlimits.pop("RLIMIT_NPROC")

    ids = None if ids is None else _fresh_ids(ids)
    host_dir = tempfile.mkdtemp(prefix="score-sandbox-")
    try:
        scratch = os.path.join(host_dir, "scratch")
        os.mkdir(scratch, 0o700)
        program = os.path.join(scratch, "program.py")
        with open(program, "w") as f:
            f.write(source)
        if ids is not None:
            os.chown(scratch, *ids)
            os.chown(program, *ids)
        os.chmod(host_dir, 0o711)  # the sandbox's uid may traverse to the scratch dir but not list our files
        argv = [python, "-I", "-S", "-B", program, *args]
        stdout_path, stderr_path = os.path.join(host_dir, "stdout"), os.path.join(host_dir, "stderr")
        isolation = ["subprocess", "isolated-interpreter", "empty-env", "rlimits", "scratch-cwd", "wall-timeout"]

        if namespaces is not None:
            visible = sorted(_visible_top_dirs(python, scratch))
            config = {"scratch": scratch, "rlimits": rlimits, "argv": argv, "pass_fds": list(pass_fds),
                      "visible": visible, "uid": ids[0] if ids else None, "gid": ids[1] if ids else None}
            command = [*namespaces, python, "-I", "-S", "-B", "-c", _NAMESPACE_INIT, json.dumps(config)]
            preexec = None
            isolation += ["netns", "pidns", "ipcns", "readonly-fs", "hidden-host-dirs"]
        else:
            command = argv

            def preexec():
                for name, value in rlimits.items():
                    resource.setrlimit(getattr(resource, name), (value, value))
                if ids is not None:
                    os.setgroups([])
                    os.setgid(ids[1])
                    os.setuid(ids[0])
                os.umask(0o077)

        if ids is not None:
            isolation.append("uid-own")

        start = time.monotonic()
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=scratch, env={},
                start_new_session=True, preexec_fn=preexec, close_fds=True, pass_fds=pass_fds,
            )
        return SandboxProcess(process, host_dir, limits, isolation, start)
    except BaseException:
        shutil.rmtree(host_dir, ignore_errors=True)
        raise
