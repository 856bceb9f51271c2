"""A verdict on untrusted code that the code cannot forge: the tests run on the trusted side, only plain data
comes out of the sandbox. No Ray, stdlib only.

The model's program (the problem's prompt + its completion) runs in the sandbox as a *server* of one function:
a small harness loads it, then answers calls that arrive on a pipe — arguments in, the return value out, both as
plain data (plain_data.py). The problem's test, `check(candidate)`, never enters the sandbox: it runs here, in the
trusted process, with `candidate` a proxy that sends each call into the sandbox and returns the decoded reply —
a fresh int, str, list … built by trusted code, so every `==`, `abs`, `<` of the test is the real one.

A response passes if and only if the trusted `check` returned normally (every assertion in it ran and held),
every call it made got a well-formed value reply in time, and it made at least one call. Nothing the program
does on its side can say "pass": an exit status, printed text, an atexit hook, a patched builtin, a lying
`__eq__` — the verdict reads none of them. What it can do is answer calls, so its only way to pass is to return
the right values.

Besides the verdict, each run lists the `Tamper` signs it saw (counted per iteration as `score/verifier_flags`):
the program ended its own process while it should have been answering, wrote to the channel what was not the
reply to the call it was given, or returned an object of its own class posing as plain data. Signs are seen
partly by the sandboxed harness, which the program can subvert, so they are a lower bound; the verdict does not
depend on them.
"""

from __future__ import annotations

import builtins
import enum
import json
import os
import random
import select
import signal
import time
import types
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

from armillary.algorithms.score.sandbox import SandboxLimits, start_python
from armillary.algorithms.score.tasks import plain_data
from armillary.algorithms.score.tasks.base import Verdict

# The program's module name in the sandbox (not "__main__", so that `if __name__ == "__main__":` blocks stay off).
MODULE_NAME = "candidate"
MAX_REPLY_BYTES = 4 << 20


class Tamper(str, enum.Enum):
    EXITED = "exited"  # ended its own process (exit, os._exit, SystemExit, KeyboardInterrupt, a signal) mid-test
    FORGED = "forged"  # wrote to the result channel something other than the reply to the call it was given
    NON_PLAIN = "non_plain"  # returned an object of its own class posing as (or instead of) plain data


# The sandboxed side: the codec's source, then this. argv: program.py <request fd> <reply fd>.
_SERVER = r'''

def _serve():
    import sys
    requests = os.fdopen(int(sys.argv[1]), "rb")
    replies = os.fdopen(int(sys.argv[2]), "wb", buffering=0)
    del sys.argv[1:]
    namespace = {"__name__": MODULE_NAME, "__builtins__": __builtins__}
    try:
        exec(compile(SOURCE, "<candidate>", "exec"), namespace)
        function = namespace[ENTRY_POINT]
        if not callable(function):
            raise TypeError("%s is not callable" % ENTRY_POINT)
    except Exception as e:
        replies.write(('{"load_error":%s}\n' % name_text("%s: %s" % (type(e).__name__, e))).encode())
        return
    replies.write(b'{"ready":true}\n')
    for line in requests:
        request = parse_trusted(line.decode())
        number = int(request["id"])
        try:
            value = function(*decode(request["args"]), **decode(request["kwargs"]))
            reply = '{"id":%d,"value":%s}\n' % (number, encode(value, MODULE_NAME))
        except NotPlain as e:
            reply = '{"id":%d,"not_plain":%s,"own":%s}\n' % (number, name_text(e.type_name), "true" if e.own else "false")
        except Exception as e:  # in the function, or a value that cannot be written (an int of more than 4300 digits)
            reply = '{"id":%d,"raised":%s}\n' % (number, name_text(type(e).__name__))
        replies.write(reply.encode())

_serve()
'''


def harness(source: str, entry_point: str) -> str:
    """The program the sandbox runs for one response: the codec, the response's code as a string, the server."""
    codec = Path(plain_data.__file__).read_text()
    return (f"{codec}\nMODULE_NAME = {MODULE_NAME!r}\nSOURCE = {source!r}\nENTRY_POINT = {entry_point!r}\n"
            f"import os\n{_SERVER}")


def _wait(fd: int, event: int, timeout: float) -> bool:
    """Whether `fd` is ready for `event` (or hung up) within `timeout` seconds. poll, not select: a trainer process
    (a Ray worker) may hold more than select's 1024 descriptors."""
    poller = select.poll()
    poller.register(fd, event)
    return bool(poller.poll(max(0, int(timeout * 1000) + 1) if timeout > 0 else 0))


class _CallFailed(BaseException):
    """Raised into the trusted check from the proxy. A BaseException, so that no `except Exception` in a test can
    swallow it (the session remembers the failure anyway)."""


class _Session:
    """The trusted end of one sandboxed program's channel."""

    def __init__(self, to_child: int, from_child: int, deadline: float):
        self.to_child, self.from_child, self.deadline = to_child, from_child, deadline
        self.buffer = bytearray()
        self.calls = 0
        self.failure: str | None = None
        self.tampering: list[Tamper] = []
        self.ended = False  # the program's end of the channel closed
        os.set_blocking(to_child, False)

    def fail(self, why: str, tamper: Tamper | None = None) -> _CallFailed:
        if self.failure is None:
            self.failure = why
        if tamper is not None and tamper not in self.tampering:
            self.tampering.append(tamper)
        return _CallFailed(why)

    def _remaining(self) -> float:
        return self.deadline - time.monotonic()

    def _fill(self, timeout: float) -> bool:
        """Read what is there within `timeout`; False on end of channel."""
        if not _wait(self.from_child, select.POLLIN, timeout):
            return True
        chunk = os.read(self.from_child, 1 << 16)
        if not chunk:
            self.ended = True
            return False
        self.buffer += chunk
        return True

    def receive(self) -> dict:
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_REPLY_BYTES:
                raise self.fail(f"a reply longer than {MAX_REPLY_BYTES} bytes")
            if self._remaining() <= 0:
                raise self.fail("time limit")
            if not self._fill(self._remaining()):
                raise self.fail("the program ended before replying")  # flagged or not by how it ended
        line, self.buffer = self.buffer.split(b"\n", 1)  # bytearrays both
        if self.buffer:
            raise self.fail("more than one reply to a call", Tamper.FORGED)
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):
            raise self.fail("a reply that is not JSON", Tamper.FORGED) from None
        if not isinstance(message, dict):
            raise self.fail("a reply that is not an object", Tamper.FORGED)
        return message

    def unsolicited(self) -> bool:
        """Whether the program wrote something nobody asked for (checked before each call and at the end)."""
        if not self.ended and not self.buffer:
            self._fill(0.0)
        return bool(self.buffer)

    def send(self, data: bytes) -> None:
        while data:
            if self._remaining() <= 0:
                raise self.fail("time limit")
            if not _wait(self.to_child, select.POLLOUT, self._remaining()):
                continue
            try:
                data = data[os.write(self.to_child, data):]
            except BlockingIOError:
                continue
            except BrokenPipeError:
                self.ended = True
                raise self.fail("the program ended before the call") from None

    def _text(self, message: dict, key: str) -> str:
        try:
            return plain_data.decode_text(message[key])[:200]
        except plain_data.Malformed:
            raise self.fail("a malformed message", Tamper.FORGED) from None

    def start(self) -> None:
        message = self.receive()
        if message == {"ready": True}:
            return
        if set(message) == {"load_error"}:
            raise self.fail(f"the program did not load: {self._text(message, 'load_error')}")
        raise self.fail("a malformed first message", Tamper.FORGED)

    def call(self, *args, **kwargs):
        if self.failure is not None:
            raise _CallFailed(self.failure)
        if self.unsolicited():
            raise self.fail("data on the channel before the call", Tamper.FORGED)
        self.calls += 1
        try:
            request = '{"id":%d,"args":%s,"kwargs":%s}\n' % (self.calls, plain_data.encode(list(args)), plain_data.encode(kwargs))
        except plain_data.NotPlain as e:  # the trusted test passes something that cannot cross: a harness limit
            raise self.fail(f"the test passes a {e.type_name}, which is not plain data") from None
        self.send(request.encode())
        reply = self.receive()
        if type(reply.get("id")) is not int or reply["id"] != self.calls:
            raise self.fail("a reply to another call", Tamper.FORGED)
        if set(reply) == {"id", "value"}:
            try:
                return plain_data.decode(reply["value"])
            except (plain_data.Malformed, RecursionError) as e:
                raise self.fail(f"a malformed value ({e})", Tamper.FORGED) from None
        if set(reply) == {"id", "raised"}:
            raise self.fail(f"the function raised {self._text(reply, 'raised')}")
        if set(reply) == {"id", "not_plain", "own"} and type(reply["own"]) is bool:
            raise self.fail(f"the function returned a {self._text(reply, 'not_plain')}, not plain data",
                            Tamper.NON_PLAIN if reply["own"] else None)
        raise self.fail("a malformed reply", Tamper.FORGED)


# ---- the trusted check ---------------------------------------------------------------------------------------


def _silent_print(*args, **kwargs) -> None:
    pass


def _private_random() -> types.ModuleType:
    """A `random` module of its own for one check (some HumanEval tests draw inputs from the global `random`):
    the trainer's global random state is left alone."""
    rng = random.Random()
    module = types.ModuleType("random")
    for name in random.__all__:
        own = getattr(rng, name, None) if name[:1].islower() else None
        setattr(module, name, own if callable(own) else getattr(random, name))
    return module


@lru_cache(maxsize=512)
def _compiled(trusted_source: str):
    return compile(trusted_source, "<trusted test>", "exec")


def trusted_check(trusted_source: str, check_name: str = "check"):
    """The test function defined by `trusted_source` (the problem's prompt and test: trusted, from the dataset),
    in a fresh namespace whose `print` is silent and whose `import random` gets a private generator; and that
    namespace (a test may call the function under test by its name, as HumanEval/33 does)."""
    private = _private_random()

    def importer(name, globals=None, locals=None, fromlist=(), level=0):
        return private if name == "random" and level == 0 else builtins.__import__(name, globals, locals, fromlist, level)

    namespace = {"__name__": "trusted_test", "__builtins__": {**vars(builtins), "__import__": importer, "print": _silent_print}}
    exec(_compiled(trusted_source), namespace)
    check = namespace.get(check_name)
    if not callable(check):
        raise ValueError(f"check_name: the trusted source defines no function {check_name!r}")
    return check, namespace


def verify(source: str, entry_point: str, trusted_source: str, limits: SandboxLimits, check_name: str = "check") -> Verdict:
    """Run `check(candidate)` from `trusted_source` here, with `candidate` served by `source`'s function
    `entry_point` from the sandbox; the Verdict says whether every test ran and held."""
    check, namespace = trusted_check(trusted_source, check_name)
    requests_read, requests_write = os.pipe()
    replies_read, replies_write = os.pipe()
    started = None
    session = None
    try:
        started = start_python(harness(source, entry_point), limits, pass_fds=(requests_read, replies_write),
                               args=(str(requests_read), str(replies_write)))
        os.close(requests_read)
        os.close(replies_write)
        requests_read = replies_write = -1
        session = _Session(requests_write, replies_read, time.monotonic() + limits.wall_time_s)
        namespace[entry_point] = session.call
        returned = False
        try:
            session.start()
            check(session.call)
            returned = True
        except _CallFailed:
            pass
        except Exception as e:  # an assertion of the test, or an error in it caused by a wrong value
            session.fail(f"the test failed: {type(e).__name__}: {str(e)[:200]}")
        if returned and session.failure is None and session.unsolicited():
            session.fail("data on the channel after the last call", Tamper.FORGED)
        if returned and session.failure is None and session.calls == 0:
            session.fail("the test made no call")
    finally:
        for fd in (requests_read, requests_write, replies_read, replies_write):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        result = started.finish(0.0 if session is None or not session.ended else 0.5) if started else None
    if session.ended and Tamper.EXITED not in session.tampering and session.failure is not None and \
            _ended_on_its_own(result.returncode):
        session.tampering.append(Tamper.EXITED)
    if session.failure is None:
        return Verdict(True, tuple(t.value for t in session.tampering), "")
    return Verdict(False, tuple(t.value for t in session.tampering), session.failure)


# Signals that end an honest program too: the CPU and file-size limits, the kernel's SIGKILL, a C stack overflow.
_RESOURCE_SIGNALS = {signal.SIGKILL, signal.SIGXCPU, signal.SIGXFSZ, signal.SIGSEGV}


def _ended_on_its_own(returncode: int | None) -> bool:
    """An exit the program chose (a status, or a signal it sent itself), as opposed to a limit or our kill.
    Through the namespace init a signal shows as 128 + its number."""
    if returncode is None:
        return False
    number = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else None
    return number is None or number not in _RESOURCE_SIGNALS


def verify_many(jobs: list[tuple[str, str, str]], limits: SandboxLimits, max_workers: int = 4) -> list[Verdict]:
    """verify over (source, entry_point, trusted_source) jobs, `max_workers` sandboxes at a time, in order."""
    if max_workers < 1:
        raise ValueError(f"max_workers: must be ≥ 1, got {max_workers}")
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        return list(pool.map(lambda job: verify(*job, limits), jobs))
