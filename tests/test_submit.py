"""What a Ray job carries: the staged package (once), a working_dir without the package, results/, .git, runs,
checkpoints or data, and the spec."""

import json
import shlex

import subprocess
from pathlib import Path

from conftest import REPO_ROOT

from armillary.platform.spec import load_spec
from armillary.platform.submit import PACKAGE_FOLDERS, WORKING_DIR_EXCLUDES, entrypoint, job_runtime_env, stage_package


def test_staged_package_has_the_code_in_wheel_layout_and_no_tests(tmp_path):
    package = stage_package(tmp_path)
    assert (package / "__init__.py").is_file()
    for module in ("platform/spec.py", "platform/runner.py", "algorithms/registry.py", "envs/registry.py",
                   "jobs/run_experiment.py"):
        assert (package / module).is_file(), module
    assert not list(package.rglob("__pycache__")) and not list(package.rglob("test_*.py"))
    assert not (package / "results").exists()


def _uploaded_with_the_working_dir(paths: list[str]) -> list[str]:
    """The paths Ray's working_dir upload keeps, with Ray's own matcher of the excludes."""
    from ray._private.runtime_env.packaging import _get_excludes

    excluded = _get_excludes(REPO_ROOT, WORKING_DIR_EXCLUDES)
    kept = []
    for path in paths:
        # Ray prunes a directory that matches, so a file is dropped when it or any folder above it matches.
        parts = Path(path).parts
        if not any(excluded(REPO_ROOT.joinpath(*parts[: i + 1])) for i in range(len(parts))):
            kept.append(path)
    return kept


def test_the_working_dir_carries_neither_the_package_a_second_time_nor_results():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert any(p.startswith("results/") for p in tracked) and any(p.startswith("platform/") for p in tracked)
    kept = _uploaded_with_the_working_dir(tracked)
    assert not [p for p in kept if p.split("/")[0] in (*PACKAGE_FOLDERS, "results")]
    assert not [p for p in kept if p.endswith(".py") and p.split("/")[0] not in ("benchmarks", "tests")]
    # What a job may read by a path relative to the repo root still travels.
    assert "README.md" in kept and "pyproject.toml" in kept
    # Anchored at the root: a folder of the same name deeper down is not excluded.
    assert _uploaded_with_the_working_dir(["benchmarks/core/x.yaml"]) == ["benchmarks/core/x.yaml"]


def test_working_dir_excludes_vcs_runs_checkpoints_data_and_envs(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.armillary.svc:5000")
    spec = load_spec("ppo/cartpole")
    env = job_runtime_env(spec, tmp_path)
    for pattern in (".git", "runs", ".venv", "checkpoints", "data", "*.pt", "mlruns", "*.db"):
        assert pattern in env["excludes"] and pattern in WORKING_DIR_EXCLUDES
    assert env["py_modules"] == [str(tmp_path)]
    assert env["env_vars"]["MLFLOW_TRACKING_URI"] == "http://mlflow.armillary.svc:5000"


def test_entrypoint_carries_the_fully_resolved_spec():
    spec = load_spec("ppo/cartpole", ["algorithm.config.lr=1e-4"])
    args = shlex.split(entrypoint(spec))
    assert args[:3] == ["python", "-m", "armillary.jobs.run_experiment"]
    assert json.loads(args[args.index("--spec-json") + 1]) == spec.to_dict()
