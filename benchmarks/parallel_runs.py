"""Benchmark workers: subprocesses run at most `parallel` at a time with one thread of torch/BLAS each
(`run_jobs`), and the algorithm each worker trains, built from a preset through the platform (`build_worker`).

Each job is (command, log): stdout goes to `log` (the worker's JSON lines), stderr beside it as `.err`. The
first failure stops the benchmark with the log to read.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


def run_jobs(jobs: list[tuple[list[str], Path]], parallel: int, time_limit_s: float | None = None) -> list[Path]:
    """Runs every job; returns the logs in job order. With `time_limit_s`, jobs still running then are killed
    and jobs not started are skipped (their logs say so): for benchmarks that write results as they go."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    pending, running = list(jobs), []
    deadline = time.monotonic() + time_limit_s if time_limit_s else None
    while pending or running:
        while pending and len(running) < parallel:
            command, log = pending.pop(0)
            with log.open("w") as out, log.with_suffix(".err").open("w") as err:
                running.append((subprocess.Popen(command, stdout=out, stderr=err, env=env), log))
            if time_limit_s:
                time.sleep(1)  # each job may start its own local Ray: spread the start-ups out
        time.sleep(2)
        for process, log in list(running):
            if process.poll() is not None:
                running.remove((process, log))
                if process.returncode:
                    raise SystemExit(f"{log.name} failed (exit {process.returncode}); see {log.with_suffix('.err')}")
        if deadline is not None and time.monotonic() > deadline:
            for process, log in running + [(None, log) for _, log in pending]:
                if process is not None:
                    process.kill()
                with log.with_suffix(".err").open("a") as err:
                    err.write(f"stopped at the time limit ({time_limit_s:.0f} s)\n")
                print(f"{log.name}: stopped at the time limit ({time_limit_s:.0f} s)", flush=True)
            break
    return [log for _, log in jobs]


# A worker samples in its own process (no env-runner actor): one CPU per worker, so two run side by side.
WORKER_RESOURCES = ["resources.num_env_runners=0", "resources.num_envs_per_env_runner=8"]


def build_worker(preset: str, overrides: list[str], seed: int, configure=None, gpu: bool = False):
    """(spec, algorithm) for one trial of `preset` in this worker process, on a private one-CPU local Ray.
    `configure(config)` may add to the RLlib config (e.g. callbacks) before the algorithm is built. With `gpu`,
    the local-gpu profile and the machine's GPU in that Ray (workers on one machine share it)."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    import ray

    from armillary.platform.rllib_config import build_algorithm_config
    from armillary.platform.spec import load_spec

    resources = [*WORKER_RESOURCES, "resources.profile=local-gpu"] if gpu else WORKER_RESOURCES
    spec = load_spec(preset, [*overrides, *resources])
    config = build_algorithm_config(spec, seed)
    if configure is not None:
        configure(config)
    ray.init(address="local", num_cpus=1, num_gpus=1 if gpu else 0, include_dashboard=False, log_to_driver=False)
    return spec, config.build_algo()


def stop_worker(algo) -> None:
    import ray

    algo.stop()
    ray.shutdown()
