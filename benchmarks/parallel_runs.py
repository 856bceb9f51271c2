"""Run benchmark workers as subprocesses, at most `parallel` at a time, one thread of torch/BLAS each.

Each job is (command, log): stdout goes to `log` (the worker's JSON lines), stderr beside it as `.err`. The
first failure stops the benchmark with the log to read.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


def run_jobs(jobs: list[tuple[list[str], Path]], parallel: int) -> list[Path]:
    """Runs every job; returns the logs in job order."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    pending, running = list(jobs), []
    while pending or running:
        while pending and len(running) < parallel:
            command, log = pending.pop(0)
            with log.open("w") as out, log.with_suffix(".err").open("w") as err:
                running.append((subprocess.Popen(command, stdout=out, stderr=err, env=env), log))
        time.sleep(2)
        for process, log in list(running):
            if process.poll() is not None:
                running.remove((process, log))
                if process.returncode:
                    raise SystemExit(f"{log.name} failed (exit {process.returncode}); see {log.with_suffix('.err')}")
    return [log for _, log in jobs]
