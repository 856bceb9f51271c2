"""Submit an experiment to a Ray cluster as a Ray job, unchanged from a local run.

The code travels as a staged copy of the `armillary` package (Ray's py_modules), the repository as the
job's working_dir without .git, runs, checkpoints, data or virtual environments; the spec travels
fully resolved, so the cluster runs exactly what was validated here.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
import time
from pathlib import Path

from armillary.platform.spec import ExperimentSpec

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = ("platform", "algorithms", "envs", "jobs")

# Never uploaded with the working_dir (gitignore-style patterns, relative to the repo root).
WORKING_DIR_EXCLUDES = [
    ".git", ".venv", "venv", "runs", "mlruns", "mlartifacts", "*.db", "checkpoints", "checkpoint_*", "data",
    "datasets", "models", "*.pt", "*.ckpt", "*.safetensors", "*.bin", "*.mp4", "*.gif", "__pycache__", "*.pyc",
    ".pytest_cache", "*.egg-info", "build", "dist", "benchmarks/results", ".whl", ".gl",
]

# Environment variables forwarded to the job when set here (never secrets: a tracking *URI* only).
FORWARDED_ENV = ("MLFLOW_TRACKING_URI", "ARMILLARY_RUNS_DIR")


def stage_package(destination: Path) -> Path:
    """Copy the package's code into destination/armillary (the layout of an installed wheel)."""
    package = destination / "armillary"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""Armillary, as staged for a Ray job."""\n')
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "tests")
    for folder in PACKAGE_FOLDERS:
        shutil.copytree(REPO_ROOT / folder, package / folder, ignore=ignore)
    return package


def job_runtime_env(spec: ExperimentSpec | None, staged_package: Path) -> dict:
    """The job's runtime env; spec None for a job preset (its tracking URI comes from the environment)."""
    env_vars = {"MUJOCO_GL": "egl", "RAY_AIR_NEW_OUTPUT": "0"}
    env_vars.update({k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)})
    if spec is not None and spec.tracking.mlflow_uri:
        env_vars["MLFLOW_TRACKING_URI"] = spec.tracking.mlflow_uri
    return {"working_dir": str(REPO_ROOT), "excludes": WORKING_DIR_EXCLUDES, "py_modules": [str(staged_package)],
            "env_vars": env_vars}


def entrypoint(spec: ExperimentSpec) -> str:
    return f"python -m armillary.jobs.run_experiment --spec-json {shlex.quote(json.dumps(spec.to_dict()))}"


def job_entrypoint(module: str, argv: list[str]) -> str:
    """A job preset's command: the same module and arguments `armillary run` would call main() with."""
    return shlex.join(["python", "-m", module, *argv])


def _client(address: str):
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(address)  # token auth: see RAY_AUTH_MODE in armillary.platform.cli


def submit(spec: ExperimentSpec, *, address: str, wait: bool = False, timeout_s: float | None = None) -> int:
    return _submit(address, spec.name, entrypoint(spec), spec, {"armillary.spec_hash": spec.spec_hash()},
                   wait=wait, timeout_s=timeout_s)


def submit_job_preset(name: str, module: str, argv: list[str], *, address: str, wait: bool = False,
                      timeout_s: float | None = None) -> int:
    """Submit a job preset (e.g. long-context/smollm2-niah) as a Ray job: its module runs on the cluster's head
    and, through ray.init() there, joins that cluster."""
    return _submit(address, name, job_entrypoint(module, argv), None, {"armillary.job": module},
                   wait=wait, timeout_s=timeout_s)


def _submit(address: str, name: str, command: str, spec: ExperimentSpec | None, metadata: dict, *, wait: bool,
            timeout_s: float | None) -> int:
    client = _client(address)
    with tempfile.TemporaryDirectory(prefix="armillary-job-") as staging:
        package = stage_package(Path(staging))
        submission_id = _submit_when_ready(
            client,
            entrypoint=command,
            runtime_env=job_runtime_env(spec, package),
            metadata={"armillary.experiment": name, **metadata},
        )
    dashboard = address.rstrip("/")
    print(f"Submitted {name} as Ray job {submission_id}")
    print(f"  dashboard: {dashboard}/#/jobs/{submission_id}")
    print(f"  logs:      ray job logs --address {address} --follow {submission_id}")
    if not wait:
        return 0
    return follow(client, submission_id, timeout_s=timeout_s)


def _submit_when_ready(client, *, agent_wait_s: float = 120.0, **job) -> str:
    """Submit, waiting out a head whose job agent is still starting (a freshly started cluster)."""
    deadline = time.monotonic() + agent_wait_s
    while True:
        try:
            return client.submit_job(**job)
        except RuntimeError as err:
            if "No available agent" not in str(err) or time.monotonic() > deadline:
                raise
            print("The cluster's job agent is still starting; retrying ...", flush=True)
            time.sleep(3)


def follow(client, submission_id: str, timeout_s: float | None = None) -> int:
    """Print the job's logs as they come and return 0 if it succeeded."""
    from ray.job_submission import JobStatus

    deadline = time.monotonic() + timeout_s if timeout_s else None
    printed = 0
    while True:
        logs = client.get_job_logs(submission_id)
        print(logs[printed:], end="", flush=True)
        printed = len(logs)
        status = client.get_job_status(submission_id)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            print(f"\nJob {submission_id}: {status.value}")
            return 0 if status == JobStatus.SUCCEEDED else 1
        if deadline and time.monotonic() > deadline:
            print(f"\nJob {submission_id}: still {status.value} after {timeout_s} s; stopped following")
            return 1
        time.sleep(2)
