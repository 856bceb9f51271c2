"""What a Ray job carries (the staged package, a working_dir without .git/runs/checkpoints/data, the spec), where its
results land, and which interpreter runs it on the head."""

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from armillary.platform import presets
from armillary.platform.spec import SpecError, load_spec
from armillary.platform.submit import (
    FIND_RAY_PYTHON,
    PACKAGE_FOLDERS,
    WORKING_DIR_EXCLUDES,
    entrypoint,
    job_results_location,
    job_runtime_env,
    results_location,
    stage_package,
    submitted_entrypoint,
)


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
    submitted = submitted_entrypoint(spec)
    assert submitted.startswith(FIND_RAY_PYTHON) and submitted.endswith(entrypoint(spec, python='"$PY"'))


def _find_python(path: str) -> subprocess.CompletedProcess:
    """FIND_RAY_PYTHON run as Ray runs an entrypoint: a shell whose parent process has Ray loaded, with `path` as PATH."""
    code = ("import ray._raylet, subprocess, sys; "
            "out = subprocess.run(['/bin/sh', '-c', sys.argv[1] + 'echo \"$PY\"'], env={'PATH': sys.argv[2]}, "
            "capture_output=True, text=True); print(out.stdout, end=''); print(out.stderr, end='', file=sys.stderr); "
            "sys.exit(out.returncode)")
    return subprocess.run([sys.executable, "-c", code, FIND_RAY_PYTHON, path], capture_output=True, text=True, timeout=120)


def test_the_job_runs_with_the_interpreter_of_the_heads_ray_even_off_path():
    # A head whose PATH lacks the environment's interpreter (ray started as .venv/bin/ray): a bare `python` there
    # failed with "No module named 'ray'". The entrypoint takes the interpreter of the Ray its parent runs.
    out = _find_python("/usr/bin:/bin")
    assert out.returncode == 0, out.stderr
    found = out.stdout.strip()
    assert Path(found).parent.parent == Path(sys.prefix)  # this environment's, not /usr/bin's
    assert subprocess.run([found, "-c", "import ray"], capture_output=True, timeout=120).returncode == 0


def test_a_head_without_a_python_for_ray_gets_a_message_not_a_missing_module(tmp_path):
    out = subprocess.run(["/bin/sh", "-c", FIND_RAY_PYTHON + 'echo "$PY"'], env={"PATH": str(tmp_path)},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 127 and "no Python on this head imports ray" in out.stderr, out.stderr


@pytest.mark.parametrize("env, where", [
    ({"MLFLOW_TRACKING_URI": "http://armillary-mlflow:5000"}, "MLflow (metrics, params, artifacts, exported policy): http://armillary-mlflow:5000"),
    ({"MLFLOW_TRACKING_URI": "postgresql+psycopg2://u@db/mlflow", "ARMILLARY_RUNS_DIR": "/mnt/armillary/runs"},
     "run folders (checkpoints, Tune's result files): /mnt/armillary/runs"),
    ({"ARMILLARY_RUNS_DIR": "/mnt/armillary/runs"}, "MLflow: sqlite:////mnt/armillary/runs/mlflow.db in the shared runs folder"),
    ({"MLFLOW_TRACKING_URI": "sqlite:////shared/mlflow.db"}, "a file on the head's disk"),
])
def test_submit_says_where_results_land(env, where):
    lines = results_location(load_spec("ppo/cartpole"), env)
    assert where in "\n".join(lines)
    if "ARMILLARY_RUNS_DIR" not in env:
        assert "DELETED with the Ray session" in lines[-1]  # checkpoints would go with the session: said loudly


@pytest.mark.parametrize("env", [{}, {"MLFLOW_TRACKING_URI": "sqlite:///runs/mlflow.db"}, {"ARMILLARY_RUNS_DIR": "runs"}])
def test_submit_refuses_results_that_would_be_deleted_with_the_job(env):
    # The job's working directory is a temporary folder under the Ray session: a relative or default store there
    # is thrown away when the session ends.
    with pytest.raises(SpecError, match="temporary working directory") as caught:
        results_location(load_spec("ppo/cartpole"), env)
    assert caught.value.problems[0].startswith("MLFLOW_TRACKING_URI:")


def test_submit_refuses_before_contacting_the_cluster(monkeypatch):
    from armillary.platform import submit as submit_module

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("ARMILLARY_RUNS_DIR", raising=False)
    monkeypatch.setattr(submit_module, "_client", lambda address: pytest.fail("the cluster was contacted"))
    with pytest.raises(SpecError):
        submit_module.submit(load_spec("ppo/cartpole"), address="http://127.0.0.1:9")


JOB_PRESETS = [name for name in presets.names() if presets.get(name).job]


@pytest.mark.parametrize("name", JOB_PRESETS)
def test_submitting_a_job_preset_refuses_outputs_in_the_jobs_temporary_folder(name, monkeypatch, capsys):
    """A job preset's --out (relative in every preset) would land in the job's temporary working directory on the head:
    refused, the field named, exit 2, before the cluster is contacted, even with a durable MLflow store."""
    from armillary.platform import cli
    from armillary.platform import submit as submit_module

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://armillary-mlflow:5000")
    monkeypatch.delenv("ARMILLARY_RUNS_DIR", raising=False)
    monkeypatch.setattr(submit_module, "_client", lambda address: pytest.fail("the cluster was contacted"))
    assert cli.main(["submit", name, "--address", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "out:" in err and "temporary working directory" in err and "Traceback" not in err


@pytest.mark.parametrize("name", JOB_PRESETS)
def test_submitting_a_job_preset_refuses_an_mlflow_store_deleted_with_the_job(name, monkeypatch, capsys):
    from armillary.platform import cli
    from armillary.platform import submit as submit_module

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("ARMILLARY_RUNS_DIR", raising=False)
    monkeypatch.setattr(submit_module, "_client", lambda address: pytest.fail("the cluster was contacted"))
    assert cli.main(["submit", name, "out=/mnt/armillary/results/x", "--address", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "MLFLOW_TRACKING_URI: not set" in err and "Traceback" not in err


def test_submitting_a_job_preset_says_where_its_results_land_before_submitting(monkeypatch, capsys):
    from armillary.platform import cli
    from armillary.platform import submit as submit_module

    class Contacted(Exception):
        pass

    def client(address):  # the first contact with the cluster: what was printed by then is what the user saw
        raise Contacted(capsys.readouterr().out)

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("ARMILLARY_RUNS_DIR", "/mnt/armillary/runs")
    monkeypatch.setattr(submit_module, "_client", client)
    with pytest.raises(Contacted) as contacted:
        cli.main(["submit", "self-consistency/random-mdp", "out=/mnt/armillary/results/random-mdp",
                  "--address", "http://127.0.0.1:9"])
    said = str(contacted.value)
    assert "outputs (tables, plots, models): /mnt/armillary/results/random-mdp" in said
    assert "MLflow: sqlite:////mnt/armillary/runs/mlflow.db in the shared runs folder" in said


@pytest.mark.parametrize("argv, env, where", [
    (["--out", "runs/x", "--out", "/shared/x", "--mlflow-uri", "http://mlflow:5000"], {}, "MLflow (metrics, params, artifacts, exported policy): http://mlflow:5000"),
    (["--out", "/shared/x", "--no-mlflow"], {}, "MLflow: none"),
    (["--out", "/shared/x"], {"MLFLOW_TRACKING_URI": "sqlite:////shared/mlflow.db"}, "a file on the head's disk"),
])
def test_job_results_location_reads_the_last_out_and_the_jobs_mlflow_store(argv, env, where):
    lines = job_results_location(argv, env)
    assert lines[0].startswith("outputs (tables, plots, models): /shared/x") and where in lines[-1]


@pytest.mark.parametrize("argv, env, field", [
    (["--out", "/shared/x", "--out", "runs/x"], {"MLFLOW_TRACKING_URI": "http://mlflow:5000"}, "out: runs/x"),
    (["--size", "tiny"], {"MLFLOW_TRACKING_URI": "http://mlflow:5000"}, "out: the job default"),
    (["--out", "/shared/x", "--mlflow-uri", "sqlite:///runs/mlflow.db"], {}, "mlflow_uri: sqlite:///runs/mlflow.db"),
    (["--out", "/shared/x"], {"ARMILLARY_RUNS_DIR": "runs"}, "MLFLOW_TRACKING_URI: not set"),
])
def test_job_results_location_refuses_what_the_job_would_lose(argv, env, field):
    with pytest.raises(SpecError) as caught:
        job_results_location(argv, env)
    assert caught.value.problems[0].startswith(field)
