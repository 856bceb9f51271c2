"""Submit an experiment to a Ray cluster as a Ray job, unchanged from a local run.

The code travels once, as a staged copy of the `armillary` package (Ray's py_modules); the repository goes as
the job's working_dir without that code (it is the package), without results/ (measured results, not code) and
without .git, runs, checkpoints, data or virtual environments; the spec travels fully resolved, so the cluster
runs exactly what was validated here.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
import time
from pathlib import Path

from armillary.platform.spec import ExperimentSpec, SpecError

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = ("core", "platform", "algorithms", "envs", "jobs")

# Never uploaded with the working_dir (gitignore-style patterns, relative to the repo root; a leading "/" anchors a
# pattern at the root). The package folders travel as py_modules, so the working_dir leaves them out.
WORKING_DIR_EXCLUDES = [
    *(f"/{folder}" for folder in PACKAGE_FOLDERS), "/results",
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


# The job's entrypoint is a shell command on the head, and a bare `python` there is whatever PATH finds first, which
# need not be the environment Ray runs in (a head started as .venv/bin/ray start). The interpreter the head's Ray runs
# with is found from the Ray module the job supervisor (the shell's parent) has loaded: <prefix>/lib/pythonX.Y/
# site-packages/ray/_raylet*.so → <prefix>/bin/python3. Then python3 and python on PATH; each must import ray, and a
# head where none does gets a message saying so instead of "No module named 'ray'" from deep inside.
FIND_RAY_PYTHON = (
    'ray_prefix=$(grep -m1 -oE "/[^ ]*/(site|dist)-packages/ray/_raylet[^ /]*\\.so" /proc/$PPID/maps 2>/dev/null '
    '| sed -E "s#/lib/python[^/]*/(site|dist)-packages/.*##"); '
    'PY=; for candidate in "$ray_prefix/bin/python3" "$ray_prefix/bin/python" python3 python; do '
    '"$candidate" -c "import ray" >/dev/null 2>&1 && PY=$candidate && break; done; '
    'if [ -z "$PY" ]; then echo "armillary: no Python on this head imports ray (tried the Ray process\'s '
    '${ray_prefix:-(not found)}/bin/python3, python3, python on PATH=$PATH): install Armillary\'s environment on the '
    'head or put its bin folder first on PATH" >&2; exit 127; fi; '
)


def entrypoint(spec: ExperimentSpec, python: str = "python") -> str:
    """The job command. A RayJob's image has its interpreter on PATH; `armillary submit` passes "$PY" (a head it knows
    nothing about: see FIND_RAY_PYTHON)."""
    return f"{python} -m armillary.jobs.run_experiment --spec-json {shlex.quote(json.dumps(spec.to_dict()))}"


def submitted_entrypoint(spec: ExperimentSpec) -> str:
    return FIND_RAY_PYTHON + "exec " + entrypoint(spec, python='"$PY"')


# Tracking stores that live outside the job (a server or a database), where results outlive the Ray session.
_REMOTE_SCHEMES = ("http", "https", "postgresql", "mysql", "mssql", "databricks", "databricks-uc", "uc")


def results_location(spec: ExperimentSpec, env: dict[str, str] | None = None) -> list[str]:
    """Where a submitted job's results will land, one line each; SpecError when they would be lost with the job.

    The job runs in a temporary working directory on the head, deleted with the Ray session: the default store
    (runs/mlflow.db) and run folders (checkpoints, Tune's results) there are thrown away. Results must go to an
    MLflow server or database (tracking.mlflow_uri / $MLFLOW_TRACKING_URI) or into a shared runs folder
    ($ARMILLARY_RUNS_DIR, an absolute path that the head and workers mount)."""
    env = dict(os.environ if env is None else env)
    runs_dir = env.get("ARMILLARY_RUNS_DIR")
    field = "tracking.mlflow_uri" if spec.tracking.mlflow_uri else "MLFLOW_TRACKING_URI"
    lines = [_mlflow_location(spec.tracking.mlflow_uri or env.get("MLFLOW_TRACKING_URI"), field, runs_dir)]
    if _is_shared(runs_dir):
        lines.append(f"run folders (checkpoints, Tune's result files): {runs_dir}")
    else:
        lines.append("run folders (checkpoints, Tune's result files): the job's temporary working directory, DELETED "
                     "with the Ray session; set ARMILLARY_RUNS_DIR to a shared absolute folder to keep them")
    return lines


def job_results_location(argv: list[str], env: dict[str, str] | None = None) -> list[str]:
    """Where a submitted job preset's outputs will land (its --out folder and its MLflow run), one line each;
    SpecError when they would be lost with the job. Every job module writes to --out (a relative default) and logs to
    --mlflow-uri, else $MLFLOW_TRACKING_URI, else $ARMILLARY_RUNS_DIR/mlflow.db, unless --no-mlflow."""
    env = dict(os.environ if env is None else env)
    out = _last_value(argv, "--out")
    if not out or not Path(out).is_absolute():
        raise SpecError([
            f"out: {out or 'the job default'}: a submitted job would write its outputs (tables, plots, models) into "
            "its temporary working directory on the head, deleted with the Ray session. Pass out=/an/absolute/folder "
            "shared by the cluster's nodes (e.g. out=/mnt/armillary/results/NAME)"])
    lines = [f"outputs (tables, plots, models): {out}, a folder on the head's disk: it must be on a volume that "
             "outlives the job"]
    if "--no-mlflow" in argv:
        return [*lines, "MLflow: none (no-mlflow)"]
    uri = _last_value(argv, "--mlflow-uri")
    field = "mlflow_uri" if uri else "MLFLOW_TRACKING_URI"
    return [*lines, _mlflow_location(uri or env.get("MLFLOW_TRACKING_URI"), field, env.get("ARMILLARY_RUNS_DIR"))]


def _last_value(argv: list[str], option: str) -> str | None:
    """The value of the last `option VALUE` in argv (a job preset's overrides come after its defaults; argparse keeps
    the last)."""
    values = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == option]
    return values[-1] if values else None


def _is_shared(runs_dir: str | None) -> bool:
    return bool(runs_dir) and Path(runs_dir).is_absolute()


def _mlflow_location(uri: str | None, field: str, runs_dir: str | None) -> str:
    """Where MLflow runs of a submitted job land, or SpecError when the store would be deleted with the job."""
    scheme = uri.split(":", 1)[0].split("+")[0].lower() if uri and ":" in uri else ""
    if uri and scheme in _REMOTE_SCHEMES:
        return f"MLflow (metrics, params, artifacts, exported policy): {uri}"
    if uri and scheme == "sqlite" and uri.startswith("sqlite:////"):
        return f"MLflow: {uri}, a file on the head's disk: it must be on a volume that outlives the job"
    if not uri and _is_shared(runs_dir):
        return f"MLflow: sqlite:///{runs_dir.rstrip('/')}/mlflow.db in the shared runs folder"
    raise SpecError([
        f"{field}: {uri or 'not set'}: a submitted job would log into its temporary working directory on the head, "
        "deleted with the Ray session. Set tracking.mlflow_uri (or MLFLOW_TRACKING_URI here) to the cluster's "
        "MLflow server (e.g. http://armillary-mlflow:5000) or a database, or ARMILLARY_RUNS_DIR to an absolute "
        "folder shared by the cluster's nodes"])


def job_entrypoint(module: str, argv: list[str]) -> str:
    """A job preset's command: the same module and arguments `armillary run` would call main() with, run by the
    interpreter of the head's Ray (FIND_RAY_PYTHON), as an experiment's job is."""
    return FIND_RAY_PYTHON + 'exec "$PY" ' + shlex.join(["-m", module, *argv])


def _client(address: str):
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(address)  # token auth: see RAY_AUTH_MODE in armillary.platform.cli


def submit(spec: ExperimentSpec, *, address: str, wait: bool = False, timeout_s: float | None = None) -> int:
    where = results_location(spec)  # before anything is sent: results that would not outlive the job are refused
    print(f"Results of {spec.name} will land in:", *(f"  {line}" for line in where), sep="\n", flush=True)
    return _submit(address, spec.name, submitted_entrypoint(spec), spec, {"armillary.spec_hash": spec.spec_hash()},
                   wait=wait, timeout_s=timeout_s)


def submit_job_preset(name: str, module: str, argv: list[str], *, address: str, wait: bool = False,
                      timeout_s: float | None = None) -> int:
    """Submit a job preset (e.g. long-context/smollm2-niah) as a Ray job: its module runs on the cluster's head
    and, through ray.init() there, joins that cluster. Refused before anything is sent when its outputs or MLflow
    runs would land in the job's temporary working directory (job_results_location)."""
    where = job_results_location(argv)
    print(f"Results of {name} will land in:", *(f"  {line}" for line in where), sep="\n", flush=True)
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
