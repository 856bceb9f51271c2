"""The CLI's commands that need no running experiment."""

import json
import subprocess
import sys

import pytest

from armillary.platform import cli
from armillary.platform.report import diff_runs, report_run

from conftest import REPO_ROOT


def test_list_shows_presets_algorithms_and_environments(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for expected in ("ppo/cartpole", "ppo/atari-pong", "ppo/dmc-walker-walk", "dqn/cartpole", "CartPole-v1",
                     "four-rooms-small", "dmc-walker-walk", "atari-pong"):
        assert expected in out, expected


def test_validate_ok_and_invalid(capsys, tmp_path):
    assert cli.main(["validate", "ppo/cartpole", "algorithm.config.lr=1e-3", "--show"]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "lr: 0.001" in out
    assert cli.main(["validate", "ppo/cartpole", "algorithm.config.nope=1"]) == cli.EXIT_INVALID
    assert "algorithm.config.nope" in capsys.readouterr().err


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "armillary.platform.cli", "validate", "dqn/cartpole"],
                         capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert out.returncode == 0, out.stderr


def _fake_run(folder, lr, rows_per_seed):
    """A run folder in the layout the runner writes, with result.json rows for two seeds."""
    import yaml

    from armillary.platform.spec import load_spec

    spec = load_spec("ppo/cartpole", [f"algorithm.config.lr={lr}"])
    folder.mkdir(parents=True)
    (folder / "spec.yaml").write_text(spec.to_yaml())
    (folder / "provenance.json").write_text(json.dumps({"git_commit": f"commit-{lr}", "versions": {"ray": "2.60.0"}}))
    for seed, returns in rows_per_seed.items():
        trial = folder / "tune" / f"trial_{seed}"
        trial.mkdir(parents=True)
        (trial / "params.json").write_text(json.dumps({"seed": seed, "overrides": {}, "spec": yaml.safe_load(spec.to_yaml())}))
        lines = [json.dumps({"training_iteration": i + 1, "env_runners/num_env_steps_sampled_lifetime": 1000 * (i + 1),
                             "env_runners/episode_return_mean": r}) for i, r in enumerate(returns)]
        (trial / "result.json").write_text("\n".join(lines) + "\n")
    return folder


def test_diff_names_what_differs(tmp_path):
    a = _fake_run(tmp_path / "a", 1e-3, {0: [1, 2]})
    b = _fake_run(tmp_path / "b", 1e-4, {0: [1, 2]})
    text = diff_runs(a, b)
    assert "spec.algorithm.config.lr" in text and "provenance.git_commit" in text
    assert "spec.algorithm.config.gamma" not in text  # equal fields are counted, not listed
    assert "2 field(s) differ" in text


def test_report_draws_the_headline_sheet_over_seeds(tmp_path):
    run = _fake_run(tmp_path / "run", 1e-3, {0: [10, 20, 30], 1: [20, 30, 50]})
    paths = report_run(run, log_to_mlflow=False)
    assert [p.name for p in paths] == ["headline.png"] and paths[0].stat().st_size > 1000


def test_resume_refuses_a_folder_that_is_not_a_run_and_skips_a_completed_run(tmp_path, capsys):
    assert cli.main(["resume", str(tmp_path)]) == cli.EXIT_INVALID
    assert "not an Armillary run folder" in capsys.readouterr().err
    run = _fake_run(tmp_path / "runs" / "ppo__cartpole" / "done", 1e-3, {0: [1.0]})
    (run / "COMPLETED").write_text("yes")
    assert cli.main(["resume", str(run)]) == 0
    assert "already completed" in capsys.readouterr().out


@pytest.mark.parametrize("argv, expected", [
    (["run", "ppo/cartpole", "--smoke", "seeds=[0]"], {"experiment": "ppo/cartpole", "smoke": True, "overrides": ["seeds=[0]"]}),
    (["run", "--smoke", "ppo/cartpole", "seeds=[0]"], {"experiment": "ppo/cartpole", "smoke": True, "overrides": ["seeds=[0]"]}),
    (["run", "seeds=[0]", "--fresh", "ppo/cartpole"], None),  # an override before the experiment is not an experiment
    (["run", "ppo/cartpole", "a.b=1", "--verbose", "--no-dashboard", "c.d=2", "--fresh"],
     {"experiment": "ppo/cartpole", "overrides": ["a.b=1", "c.d=2"], "verbose": True, "fresh": True}),
    (["validate", "ppo/cartpole", "--show", "seeds=[1]", "--smoke"],
     {"experiment": "ppo/cartpole", "show": True, "smoke": True, "overrides": ["seeds=[1]"]}),
    (["submit", "ppo/cartpole", "--address", "http://127.0.0.1:8265", "seeds=[0]", "--wait"],
     {"experiment": "ppo/cartpole", "address": "http://127.0.0.1:8265", "overrides": ["seeds=[0]"], "wait": True}),
    (["render-k8s", "ppo/cartpole", "--profile", "cluster-cpu", "seeds=[0]"],
     {"experiment": "ppo/cartpole", "profile": "cluster-cpu", "overrides": ["seeds=[0]"]}),
    (["resume", "--verbose", "runs/x/y"], {"run_dir": "runs/x/y", "verbose": True}),
    (["report", "--metric", "a", "runs/x/y", "--no-mlflow"], {"run_dir": "runs/x/y", "metric": ["a"], "no_mlflow": True}),
    (["diff", "runs/a", "runs/b"], {"run_a": "runs/a", "run_b": "runs/b"}),
])
def test_flags_and_overrides_in_any_order_on_every_subcommand(argv, expected):
    args = cli.parse_args(argv)
    assert args.command == argv[0]
    if expected is None:  # parsed, but the experiment is the first positional, whatever it is
        assert args.experiment == "seeds=[0]" and args.overrides == ["ppo/cartpole"]
        return
    for key, value in expected.items():
        assert getattr(args, key) == value, key


def test_an_override_after_a_flag_validates(capsys):
    assert cli.main(["validate", "ppo/cartpole", "--smoke", "seeds=[7]", "--show"]) == 0
    assert "- 7" in capsys.readouterr().out
