"""The experiment spec: layering, validation before anything starts, stable hashing."""

import subprocess
import sys
import textwrap

import pytest

from armillary.platform.spec import SpecError, load_spec, parse_override, smoke_dict, validate

from conftest import REPO_ROOT


def _base() -> dict:
    return {
        "name": "t/base",
        "algorithm": {"name": "ppo", "config": {"train_batch_size": 512, "minibatch_size": 64}},
        "env": {"name": "CartPole-v1"},
        "stop": {"iterations": 2},
    }


def _with(path: str, value) -> dict:
    data = _base()
    node = data
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return data


def _without(path: str) -> dict:
    data = _base()
    node = data
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    del node[keys[-1]]
    return data


# (spec dict, the field the message must name, a word the message must contain)
MALFORMED = [
    (_with("bogus", 1), "bogus", "unknown field"),
    (_with("algorithm.bogus", 1), "algorithm.bogus", "unknown field"),
    (_with("algorithm.config.bogus", 1), "algorithm.config.bogus", "unknown field"),
    (_with("env.config.bogus", 1), "env.config.bogus", "unknown field"),
    (_with("algorithm.name", "nope"), "algorithm.name", "unknown algorithm"),
    (_with("env.name", "Nope-v0"), "env.name", "unknown environment"),
    (_with("algorithm.config.lr", -1e-3), "algorithm.config.lr", "greater than 0"),
    (_with("algorithm.config.lr", "fast"), "algorithm.config.lr", "number"),
    (_with("algorithm.config.gamma", 1.5), "algorithm.config.gamma", "less than or equal"),
    (_with("algorithm.config.train_batch_size", -5), "algorithm.config.train_batch_size", "greater than 0"),
    (_with("algorithm.config.train_batch_size", 10.5), "algorithm.config.train_batch_size", "integer"),
    (_with("algorithm.config.num_epochs", 0), "algorithm.config.num_epochs", "greater than 0"),
    (_with("algorithm.config.hidden_sizes", []), "algorithm.config.hidden_sizes", "at least 1"),
    (_with("algorithm.config.activation", "swish"), "algorithm.config.activation", "tanh"),
    (_with("algorithm.config", 3), "algorithm.config", "mapping"),
    (_with("env.config.max_episode_steps", 0), "env.config.max_episode_steps", "greater than 0"),
    (_with("algorithm.config.lr_schedule", [[100, 1e-3]]), "algorithm.config.lr_schedule", "env step 0"),
    (_with("algorithm.config.lr_schedule", [[0, 1e-3], [0, 1e-4]]), "algorithm.config.lr_schedule", "increase strictly"),
    (_with("algorithm.config.lr_schedule", [[0, 1e-3], [10, 0.0]]), "algorithm.config.lr_schedule", "> 0"),
    (_without("algorithm"), "algorithm", "missing"),
    (_without("stop"), "stop", "missing"),
    (_without("name"), "name", "missing"),
    (_with("name", "Has Spaces"), "name", "lower-case"),
    (_with("stop", {}), "stop", "at least one"),
    (_with("stop.iterations", -3), "stop.iterations", "greater than 0"),
    (_with("stop.env_steps", "lots"), "stop.env_steps", "integer"),
    (_with("seeds", []), "seeds", "at least 1"),
    (_with("seeds", [1, 1]), "seeds", "distinct"),
    (_with("seeds", [-1]), "seeds", ">= 0"),
    (_with("seeds", "0,1"), "seeds", "list"),
    (_with("resources.profile", "supercomputer"), "resources.profile", "local-cpu"),
    (_with("resources.num_env_runners", -1), "resources.num_env_runners", "greater than or equal to 0"),
    (_with("resources.num_envs_per_env_runner", 0), "resources.num_envs_per_env_runner", "greater than or equal to 1"),
    (_with("resources.num_gpus_per_learner", 1), "resources.num_gpus_per_learner", "no GPUs"),
    (_with("resources.profile", "local-gpu"), "resources.profile", "GPU"),
    (_with("tune.search_space", {"algorithm.config.nope": {"grid": [1, 2]}}), "tune.search_space.algorithm.config.nope", "not a field"),
    (_with("tune.search_space", {"algorithm.config.lr": {"grid": [1e-3, -1.0]}}), "tune.search_space.algorithm.config.lr", "invalid"),
    (_with("tune.search_space", {"algorithm.config.lr": {"uniform": [1e-3, 1e-4]}}), "tune.search_space.algorithm.config.lr", "low < high"),
    (_with("tune.search_space", {"algorithm.config.lr": {"loguniform": [0, 1e-3]}}), "tune.search_space.algorithm.config.lr", "> 0"),
    (_with("tune.search_space", {"algorithm.config.lr": {"grid": [1e-3], "choice": [1e-4]}}), "tune.search_space.algorithm.config.lr", "exactly one"),
    (_with("tune.search_space", {"seeds": {"grid": [[0], [1]]}}), "tune.search_space.seeds", "own axis"),
    (_with("tune.scheduler.kind", "hyperband"), "tune.scheduler.kind", "asha"),
    (_with("tune.scheduler", {"kind": "pbt"}), "tune", "pbt needs a search_space"),
    ({**_with("tune", {"scheduler": {"kind": "pbt", "perturbation_interval": 5}, "search_space": {"algorithm.config.lr": {"grid": [1e-3, 1e-4]}}}),
      "checkpoint": {"every_iterations": 2}}, "tune.scheduler.perturbation_interval", "multiple of checkpoint.every_iterations"),
    ({**_with("tune", {"scheduler": {"kind": "pbt", "perturbation_interval": 4}, "search_space": {"algorithm.config.lr": {"grid": [1e-3, 1e-4]}}}),
      "checkpoint": {"every_iterations": 2, "num_to_keep": 2}}, "checkpoint.num_to_keep", "more than"),
    (_with("tune.num_samples", 0), "tune.num_samples", "greater than or equal to 1"),
    (_with("tune.mode", "maximise"), "tune.mode", "max"),
    (_with("checkpoint.every_iterations", 0), "checkpoint.every_iterations", "greater than or equal to 1"),
    (_with("failure.max_failures", -2), "failure.max_failures", "greater than or equal to -1"),
    (_with("tracking.unknown", "x"), "tracking.unknown", "unknown field"),
]


@pytest.mark.parametrize("data,field,words", MALFORMED, ids=[f"{i}-{m[1]}" for i, m in enumerate(MALFORMED)])
def test_malformed_spec_is_refused_naming_the_field(data, field, words):
    with pytest.raises(SpecError) as caught:
        validate(data)
    matching = [p for p in caught.value.problems if p.startswith(f"{field}:")]
    assert matching, f"no problem names {field!r}: {caught.value.problems}"
    assert any(words.lower() in p.lower() for p in matching), caught.value.problems


def test_table_has_at_least_thirty_cases():
    assert len(MALFORMED) >= 30


def test_valid_base_spec_and_defaults():
    spec = validate(_base())
    assert spec.seeds == [0]
    assert spec.resources.profile == "local-cpu"
    assert spec.algorithm.config.train_batch_size == 512
    assert spec.algorithm.config.lr == pytest.approx(3e-4)  # the algorithm's documented default


def test_unknown_field_lists_the_allowed_ones():
    with pytest.raises(SpecError) as caught:
        validate(_with("algorithm.config.learning_rate", 1e-3))
    assert "lr" in caught.value.problems[0] and "minibatch_size" in caught.value.problems[0]


def test_every_problem_is_reported_at_once():
    data = _with("algorithm.config.lr", -1)
    data["seeds"] = [1, 1]
    data["bogus"] = True
    with pytest.raises(SpecError) as caught:
        validate(data)
    fields = {p.split(":")[0] for p in caught.value.problems}
    assert {"algorithm.config.lr", "seeds", "bogus"} <= fields


def test_preset_then_yaml_then_overrides(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(textwrap.dedent("""
        preset: ppo/cartpole
        name: ppo/cartpole-variant
        algorithm: {config: {lr: 0.001}}
        seeds: [3, 4]
    """))
    spec = load_spec(str(path), ["algorithm.config.num_epochs=2", "stop.env_steps=1000"])
    assert spec.name == "ppo/cartpole-variant"
    assert spec.algorithm.config.lr == pytest.approx(1e-3)  # from the file
    assert spec.algorithm.config.train_batch_size == 2000  # from the preset
    assert spec.algorithm.config.num_epochs == 2  # from the override
    assert spec.seeds == [3, 4]
    assert spec.stop.env_steps == 1000


def test_override_values_are_typed_yaml():
    assert parse_override("seeds=[0, 1]") == ("seeds", [0, 1])
    assert parse_override("algorithm.config.lr=1e-4") == ("algorithm.config.lr", 1e-4)
    assert parse_override("tracking.mlflow_uri=null") == ("tracking.mlflow_uri", None)
    for bad in ("noequals", "=3", "a..b=1"):
        with pytest.raises(SpecError):
            parse_override(bad)


def test_unknown_preset_and_missing_file():
    with pytest.raises(SpecError, match="unknown preset"):
        load_spec("ppo/cartpol")
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec("missing.yaml")


def test_resolved_spec_round_trips_with_the_same_hash():
    spec = load_spec("ppo/cartpole", ["algorithm.config.lr=1e-4"])
    again = validate(__import__("yaml").safe_load(spec.to_yaml()))
    assert again == spec and again.spec_hash() == spec.spec_hash()
    assert load_spec("ppo/cartpole").spec_hash() != spec.spec_hash()


def test_smoke_keeps_the_algorithm_and_shrinks_the_sizes():
    full = load_spec("ppo/cartpole")
    smoke = validate(smoke_dict(full.to_dict()))
    assert smoke.algorithm.name == full.algorithm.name and smoke.env.name == full.env.name
    assert smoke.stop.iterations == 2 and smoke.seeds == full.seeds[:1]
    assert smoke.algorithm.config.train_batch_size < full.algorithm.config.train_batch_size


def test_cli_refuses_a_bad_spec_with_exit_2_and_starts_no_ray(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("preset: ppo/cartpole\nalgorithm: {config: {lr: -1}}\n")
    code = ("import sys, armillary.platform.cli as cli; rc = cli.main(['run', sys.argv[1]]); "
            "import ray; print('ray-initialized' if ray.is_initialized() else 'no-ray'); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, str(bad)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "algorithm.config.lr" in out.stderr
    assert "no-ray" in out.stdout
    assert not (tmp_path / "runs").exists()


def test_spec_error_survives_pickling_with_its_problems():
    # A trial's SpecError reaches the driver through pickle (Ray); it must still list problems, not characters.
    import pickle

    error = pickle.loads(pickle.dumps(SpecError(["algorithm.config.lr: must be > 0"])))
    assert error.problems == ["algorithm.config.lr: must be > 0"]
    assert str(error).endswith("  - algorithm.config.lr: must be > 0")

