"""What a Ray job carries: the staged package, a working_dir without .git/runs/checkpoints/data, the spec."""

import json
import shlex

from armillary.platform.spec import load_spec
from armillary.platform.submit import WORKING_DIR_EXCLUDES, entrypoint, job_runtime_env, stage_package


def test_staged_package_has_the_code_in_wheel_layout_and_no_tests(tmp_path):
    package = stage_package(tmp_path)
    assert (package / "__init__.py").is_file()
    for module in ("platform/spec.py", "platform/runner.py", "algorithms/registry.py", "envs/registry.py",
                   "jobs/run_experiment.py"):
        assert (package / module).is_file(), module
    assert not list(package.rglob("__pycache__")) and not list(package.rglob("test_*.py"))


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
