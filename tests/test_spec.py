"""The experiment spec: layering, validation before anything starts, stable hashing."""

import re
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


def _arms(overrides_by_arm: dict, names: list[str] | None = None) -> dict:
    arms = [{"name": name, "overrides": overrides} for name, overrides in overrides_by_arm.items()]
    for arm, name in zip(arms, names or []):
        arm["name"] = name
    return {**_base(), "arms": arms}


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
] + [  # arms: a comparison of named sets of overrides in one run; `results` keeps its outcome
    (_arms({"a": {}}), "arms", "at least 2"),
    (_arms({"a": {}, "b": {"algorithm.config.lr": 1e-3}}, names=["a", "a"]), "arms.a", "given twice"),
    (_arms({"a": {}, "b": {"algorithm.config.bogus": 1}}), "arms.b: algorithm.config.bogus", "unknown field"),
    (_arms({"a": {}, "b": {"algorithm.config.lr": -1.0}}), "arms.b: algorithm.config.lr", "greater than 0"),
    (_arms({"a": {}, "b": {"env.config.bogus": 1}}), "arms.b: env.config.bogus", "unknown field"),
    (_arms({"a": {}, "b": {"stop.iterations": 5}}), "arms.1.overrides", "only algorithm.* and env.*"),
    (_arms({"a": {}, "b": {"seeds": [3]}}), "arms.1.overrides", "only algorithm.* and env.*"),
    (_arms({"a": {}, "Fast Arm": {"algorithm.config.lr": 1e-3}}), "arms.1.name", "lower-case"),
    (_arms({"a": {}, "b": {"algorithm.name": "nope"}}), "arms.b: algorithm.name", "unknown algorithm"),
    # another algorithm with the base's config: PPO's fields are not DQN's
    (_arms({"a": {}, "b": {"algorithm.name": "dqn"}}), "arms.b: algorithm.config.clip_param", "unknown field"),
    (_arms({"a": {}, "b": {"algorithm.config.lr": 3e-4}}), "arms.b", "same spec as arms.a"),
    ({**_arms({"a": {}, "b": {"algorithm.config.lr": 1e-3}}), "tune": {"search_space": {"algorithm.config.lr": {"grid": [1e-3, 1e-4]}}}},
     "tune.search_space.algorithm.config.lr", "also set by arms.b"),
    ({**_arms({"a": {}, "b": {"algorithm.config.gamma": 0.9}}),
      "tune": {"scheduler": {"kind": "pbt"}, "search_space": {"algorithm.config.lr": {"grid": [1e-3, 1e-4]}}}},
     "tune.scheduler.kind", "arms"),
    (_with("arms", "a,b"), "arms", "list"),
    (_with("results", {"folder": "ppo/cartpole"}), "results", "needs `arms`"),
    ({**_arms({"a": {}, "b": {"algorithm.config.lr": 1e-3}}), "results": {"folder": "../elsewhere"}}, "results.folder",
     "relative folder"),
    ({**_arms({"a": {}, "b": {"algorithm.config.lr": 1e-3}}), "results": {"folder": "ppo/x", "metrics": ["nope/x"]}},
     "results.metrics", "never reported"),
    ({**_arms({"a": {}, "b": {"algorithm.config.lr": 1e-3}}), "results": {"folder": "ppo/x", "bogus": 1}},
     "results.bogus", "unknown field"),
    (_with("tune.search_space", {"arms": {"grid": [[], []]}}), "tune.search_space.arms", "own axis"),
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



# ---------------------------------------------------------------------------------------------------
# The CLI against malformed input, as a user meets it: every row must exit 2 with the field named, print no traceback,
# start no Ray and create no run folder, within bounded time and memory. All rows run in one subprocess (one import of
# the stack) under RLIMIT_AS; each row is timed there, and the subprocess as a whole has a timeout.

LAUGHS = "".join(f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
LAUGHS_FLOW = "[&a [1,1,1,1,1,1,1,1,1], " + ", ".join(f"&{c} [{','.join(['*' + p] * 9)}]" for p, c in zip("abcdefg", "bcdefgh")) + "]"
PRESET = "preset: ppo/cartpole\n"

# (id, argv, files {name: bytes}, env changes, the field the error names, a word the message contains)
CLI_MALFORMED = [
    # files that are not YAML text, or cost too much to read
    ("binary-file", ["validate", "spec.yaml"], {"spec.yaml": bytes(range(256)) * 4}, {}, "spec.yaml", "UTF-8"),
    ("utf16-file", ["validate", "spec.yaml"], {"spec.yaml": PRESET.encode("utf-16")}, {}, "spec.yaml", "UTF-8"),
    ("nul-bytes", ["validate", "spec.yaml"], {"spec.yaml": PRESET.encode() + b"\0\0"}, {}, "spec.yaml", "NUL"),
    ("deep-lists", ["validate", "spec.yaml"], {"spec.yaml": (PRESET + "x: " + "[" * 3000 + "]" * 3000).encode()}, {},
     "spec.yaml", "nested too deeply"),
    ("deep-maps", ["validate", "spec.yaml"], {"spec.yaml": (PRESET + "x: " + "{a: " * 40 + "1" + "}" * 40).encode()}, {},
     "x.a.a", "nested too deeply"),
    ("billion-laughs", ["validate", "spec.yaml"], {"spec.yaml": (PRESET + "a: &a [x, x, x, x, x, x, x, x, x]\n" + LAUGHS).encode()},
     {}, "spec.yaml", "aliases"),
    ("self-alias", ["validate", "spec.yaml"], {"spec.yaml": (PRESET + "x: &a [*a]\n").encode()}, {}, "x", "nested too deeply"),
    ("huge-file", ["validate", "spec.yaml"], {"spec.yaml": (PRESET + "# padding\n" * 150_000).encode()}, {}, "spec.yaml", "at most"),
    ("yaml-syntax", ["validate", "spec.yaml"], {"spec.yaml": (PRESET + "algorithm: {config: [\n").encode()}, {}, "spec.yaml", "not valid YAML"),
    ("top-level-list", ["validate", "spec.yaml"], {"spec.yaml": b"- 1\n- 2\n"}, {}, "spec.yaml", "mapping"),
    ("missing-file", ["validate", "nope.yaml"], {}, {}, "nope.yaml", "no such spec file"),
    ("preset-traversal", ["validate", "spec.yaml"], {"spec.yaml": b"preset: ../../etc/passwd\n"}, {}, "preset", "unknown preset"),
    ("preset-not-a-name", ["validate", "spec.yaml"], {"spec.yaml": b"preset: [1]\n"}, {}, "preset", "preset name"),
    ("preset-is-a-job", ["validate", "spec.yaml"], {"spec.yaml": b"preset: clip-reward/fit\n"}, {}, "preset", "job preset"),
    # keys given twice, booleans for numbers, non-finite floats
    ("duplicate-key", ["validate", "spec.yaml"], {"spec.yaml": (PRESET + "algorithm:\n  config:\n    lr: 0.1\n    lr: 0.2\n").encode()},
     {}, "algorithm.config.lr", "given twice"),
    ("duplicate-top-key", ["validate", "spec.yaml"], {"spec.yaml": (PRESET + "seeds: [0]\nseeds: [1]\n").encode()}, {}, "seeds", "given twice"),
    ("duplicate-key-override", ["validate", "ppo/cartpole", "algorithm.config={lr: 0.1, lr: 0.2}"], {}, {}, "algorithm.config.lr", "given twice"),
    ("inf-in-file", ["validate", "spec.yaml"], {"spec.yaml": (PRESET + "algorithm: {config: {lr: .inf}}\n").encode()}, {},
     "algorithm.config.lr", "finite"),
    ("nan-override", ["validate", "ppo/cartpole", "algorithm.config.lr=.nan"], {}, {}, "algorithm.config.lr", "finite"),
    ("minus-inf-env", ["validate", "dqn/cartpole", "algorithm.config.gamma=-.inf"], {}, {}, "algorithm.config.gamma", "finite"),
    ("inf-stop-metric", ["validate", "ppo/cartpole", "stop.metric={env_runners/episode_return_mean: .inf}"], {}, {},
     "stop.metric.env_runners/episode_return_mean", "finite"),
    ("bool-gamma-file", ["validate", "spec.yaml"], {"spec.yaml": (PRESET + "algorithm: {config: {gamma: true}}\n").encode()}, {},
     "algorithm.config.gamma", "boolean"),
    ("bool-yes-batch", ["validate", "ppo/cartpole", "algorithm.config.train_batch_size=yes"], {}, {},
     "algorithm.config.train_batch_size", "boolean"),
    ("bool-in-list", ["validate", "ppo/cartpole", "algorithm.config.hidden_sizes=[64, true]"], {}, {},
     "algorithm.config.hidden_sizes", "boolean"),
    ("bool-seed", ["validate", "ppo/cartpole", "seeds=[true]"], {}, {}, "seeds", "boolean"),
    ("bool-env-option", ["validate", "ppo/cartpole", "env.config.max_episode_steps=on"], {}, {}, "env.config.max_episode_steps", "boolean"),
    # what RLlib or MLflow would refuse only once Ray runs
    ("minibatch-over-batch", ["validate", "ppo/cartpole", "algorithm.config.minibatch_size=5000"], {}, {},
     "algorithm.config.minibatch_size", "larger"),
    ("minibatch-over-share", ["validate", "ppo/cartpole", "resources.num_learners=2", "algorithm.config.minibatch_size=1500"],
     {}, {}, "algorithm.config.minibatch_size", "larger"),
    ("batch-not-split", ["validate", "ppo/cartpole", "resources.num_learners=3"], {}, {}, "algorithm.config.train_batch_size", "split"),
    ("dqn-batch-not-split", ["validate", "dqn/cartpole", "resources.num_learners=5"], {}, {}, "algorithm.config.train_batch_size", "split"),
    ("score-problems-not-split", ["validate", "score/arithmetic", "resources.num_learners=3"], {}, {},
     "algorithm.config.problems_per_iteration", "split"),
    ("search-space-minibatch", ["validate", "ppo/cartpole", "tune.search_space={algorithm.config.minibatch_size: {grid: [64, 4096]}}"],
     {}, {}, "tune.search_space.algorithm.config.minibatch_size", "larger"),
    ("file-mlflow-uri", ["validate", "ppo/cartpole", "tracking.mlflow_uri=file:///tmp/mlruns"], {}, {}, "tracking.mlflow_uri", "file store"),
    ("path-mlflow-uri", ["validate", "ppo/cartpole", "tracking.mlflow_uri=./mlruns"], {}, {}, "tracking.mlflow_uri", "file store"),
    ("typo-mlflow-scheme", ["validate", "ppo/cartpole", "tracking.mlflow_uri=sqllite:///x.db"], {}, {}, "tracking.mlflow_uri", "scheme"),
    ("file-uri-from-env", ["run", "ppo/cartpole", "--no-dashboard"], {}, {"MLFLOW_TRACKING_URI": "file:///tmp/mlruns"},
     "MLFLOW_TRACKING_URI", "file store"),
    ("old-api-metric-asha", ["validate", "ppo/cartpole", "tune.metric=episode_reward_mean", "tune.scheduler.kind=asha"], {}, {},
     "tune.metric", "never reports"),
    ("other-algorithms-metric", ["validate", "ppo/cartpole", "tune.metric=score/acc_t2"], {}, {}, "tune.metric", "never reports"),
    ("stop-metric-never-reported", ["validate", "dqn/cartpole", "stop.metric={episode_reward_mean: 100}"], {}, {},
     "stop.metric.episode_reward_mean", "never reports"),
    # overrides: bounded like files
    ("override-laughs", ["validate", "ppo/cartpole", f"algorithm.config.hidden_sizes={LAUGHS_FLOW}"], {}, {},
     "algorithm.config.hidden_sizes", "aliases"),
    ("override-deep", ["validate", "ppo/cartpole", "seeds=" + "[" * 3000 + "]" * 3000], {}, {}, "seeds", "nested too deeply"),
    ("override-bad-yaml", ["validate", "ppo/cartpole", "seeds=[0,"], {}, {}, "seeds", "not valid YAML"),
    ("override-no-equals", ["validate", "ppo/cartpole", "noequals"], {}, {}, "noequals", "dotted.field=value"),
    # job presets: their own overrides, refused the same way
    ("job-preset-dotted-validate", ["validate", "clip-reward/fit", "bogus.key=1"], {}, {}, "bogus.key", "option=value"),
    ("job-preset-dotted-run", ["run", "clip-reward/fit", "bogus.key=1"], {}, {}, "bogus.key", "option=value"),
    # the classes that were already refused, through `run` (refused before Ray starts) and `validate`
    ("unknown-field-run", ["run", "ppo/cartpole", "bogus=1", "--no-dashboard"], {}, {}, "bogus", "unknown field"),
    ("wrong-type", ["validate", "ppo/cartpole", "algorithm.config.lr=fast"], {}, {}, "algorithm.config.lr", "number"),
    ("unknown-algorithm", ["validate", "ppo/cartpole", "algorithm.name=nope"], {}, {}, "algorithm.name", "unknown algorithm"),
    ("unknown-preset", ["validate", "ppo/cartpol"], {}, {}, "experiment", "unknown preset"),
    ("seeds-twice", ["validate", "ppo/cartpole", "seeds=[1, 1]"], {}, {}, "seeds", "distinct"),
    ("gpu-profile-here", ["validate", "ppo/cartpole", "resources.profile=local-gpu"], {}, {}, "resources.profile", "GPU"),
    # a submitted job whose results would be deleted with the Ray session: refused before anything is sent
    ("submit-without-tracking", ["submit", "ppo/cartpole", "--address", "http://127.0.0.1:9"], {}, {},
     "MLFLOW_TRACKING_URI", "temporary working directory"),
    # a submitted job preset: its --out folder (relative in every preset) and its MLflow store, checked the same way
    ("submit-job-preset-relative-out", ["submit", "long-context/smollm2-niah", "--address", "http://127.0.0.1:9"], {},
     {"MLFLOW_TRACKING_URI": "http://armillary-mlflow:5000"}, "out", "temporary working directory"),
    ("submit-job-preset-without-tracking", ["submit", "self-consistency/random-mdp", "out=/mnt/armillary/results/mdp",
                                            "--address", "http://127.0.0.1:9"], {}, {}, "MLFLOW_TRACKING_URI",
     "temporary working directory"),
    # thousands of unknown keys: every one refused, the message bounded (the table asserts ≤ 25 lines)
    ("many-unknown-keys", ["validate", "spec.yaml"], {"spec.yaml": (PRESET + "".join(f"key{i}: 1\n" for i in range(20_000))).encode()},
     {}, "key0", "more problem(s)"),
]

CLI_WORKER = r'''
import contextlib, io, json, os, sys, time, traceback
from pathlib import Path
from armillary.platform import cli
rows = json.loads(sys.stdin.read())
for row in rows:
    folder = Path(row["folder"])
    folder.mkdir(parents=True)
    for name, hex_bytes in row["files"].items():
        (folder / name).write_bytes(bytes.fromhex(hex_bytes))
    os.chdir(folder)
    saved = {k: os.environ.get(k) for k in row["env"]}
    os.environ.update(row["env"])
    err, out = io.StringIO(), io.StringIO()
    started = time.monotonic()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = cli.main(row["argv"])
    except SystemExit as stop:
        rc = stop.code
    except BaseException:
        rc, err = "crashed", io.StringIO(err.getvalue() + traceback.format_exc())
    for k, v in saved.items():
        os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    ray = sys.modules.get("ray")
    print(json.dumps({"id": row["id"], "rc": rc, "stderr": err.getvalue()[-5000:], "stdout": out.getvalue()[-2000:],
                      "seconds": time.monotonic() - started, "ray": bool(ray and ray.is_initialized()),
                      "runs": (folder / "runs").exists()}), flush=True)
'''
ROW_SECONDS = 60  # a hang guard, far above what a row takes (about a second; the first imports the stack)
WORKER_MEMORY = 3 << 30  # bytes of address space: the stack needs ~0.7 GB; a billion laughs grew past 3.9 GB


@pytest.fixture(scope="module")
def cli_malformed_results(tmp_path_factory):
    import json
    import os
    import resource

    root = tmp_path_factory.mktemp("malformed")
    rows = [{"id": row_id, "argv": argv, "files": {k: v.hex() for k, v in files.items()}, "env": env,
             "folder": str(root / row_id)} for row_id, argv, files, env, _, _ in CLI_MALFORMED]
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "ARMILLARY_RUNS_DIR", "RAY_ADDRESS")}

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY, WORKER_MEMORY))

    try:
        out = subprocess.run([sys.executable, "-c", CLI_WORKER], input=json.dumps(rows), capture_output=True, text=True,
                             env=env, preexec_fn=limit_memory, timeout=ROW_SECONDS * len(rows))
        stdout, stderr = out.stdout, out.stderr
    except subprocess.TimeoutExpired as expired:
        stdout, stderr = expired.stdout or "", f"the worker ran past {ROW_SECONDS * len(rows)} s"
    results = {r["id"]: r for r in map(json.loads, filter(None, (stdout or "").splitlines()))}
    return results, (stderr or "")[-3000:]


@pytest.mark.parametrize("row_id,argv,files,env,field,words", CLI_MALFORMED, ids=[row[0] for row in CLI_MALFORMED])
def test_cli_refuses_malformed_input(cli_malformed_results, row_id, argv, files, env, field, words):
    results, worker_stderr = cli_malformed_results
    assert row_id in results, f"the worker never finished this row (killed for time or memory?): {worker_stderr}"
    row = results[row_id]
    message = row["stderr"]
    assert row["rc"] == 2, (row["rc"], message, row["stdout"])
    assert "Traceback" not in message and "Traceback" not in row["stdout"], message
    assert re.search(rf"(^|[\s'\"]){re.escape(field)}", message), f"{field} is not named: {message}"
    assert words.lower() in message.lower(), message
    assert not row["ray"], "Ray was started"
    assert not row["runs"], "a run folder was created"
    assert row["seconds"] < ROW_SECONDS
    assert len(message.splitlines()) <= 25, "the error list is not bounded"


def test_cli_table_covers_at_least_forty_malformed_inputs():
    assert len(CLI_MALFORMED) >= 40 and len({row[0] for row in CLI_MALFORMED}) == len(CLI_MALFORMED)


def test_thousands_of_unknown_keys_print_a_bounded_error(tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text(PRESET + "".join(f"key{i}: 1\n" for i in range(5000)))
    with pytest.raises(SpecError) as caught:
        load_spec(str(path))
    assert len(caught.value.problems) == 5000  # all kept for code that reads them
    text = str(caught.value)
    assert len(text.splitlines()) <= 22 and "4980 more problem(s)" in text


# --- arms ----------------------------------------------------------------------------------------------------------


def test_each_trial_of_an_arm_is_the_base_with_the_arms_overrides():
    from armillary.platform.spec import arm_specs, trial_spec

    spec = load_spec("rvic/reproduce")
    assert [arm.name for arm in spec.arms] == ["rvic", "vic", "vic-end"]
    vic = trial_spec(spec.to_dict(), {"seed": 2, "arm": "vic", "overrides": {}})
    assert vic.algorithm.name == "vic" and vic.seeds == [2] and not vic.arms and vic.results is None
    assert vic.env == spec.env and vic.stop == spec.stop
    assert trial_spec(spec.to_dict(), {"seed": 0, "arm": "rvic"}).algorithm.name == "rvic"
    disdain = arm_specs(load_spec("disdain/reproduce"))
    assert [(a.algorithm.config.ensemble_size, a.algorithm.config.bonus_weight) for a in disdain.values()] == [
        (2, 20.0), (2, 0.0), (1, 0.0)]


def test_the_smoke_of_a_comparison_keeps_every_arm_on_smoke_sizes_and_never_writes_results():
    from armillary.platform.spec import arm_specs

    spec = load_spec("rvic/reproduce", smoke=True)
    assert spec.results is None and spec.seeds == [0] and spec.stop.iterations == 2
    arms = arm_specs(spec)
    assert list(arms) == ["rvic", "vic", "vic-end"] and [a.algorithm.name for a in arms.values()] == ["rvic", "vic", "vic"]
    assert all(a.algorithm.config.train_batch_size == 256 for a in arms.values())  # each algorithm's own smoke


def test_reproduce_presets_resolve_with_a_results_folder_each():
    from armillary.platform import presets

    reproduce = [n for n in presets.experiment_names() if presets.get(n).spec.get("arms")]
    assert {"disdain/reproduce", "rvic/reproduce", "domino/reproduce", "domino/reproduce-alpha",
            "clip-reward/reproduce", "score/reproduce"} <= set(reproduce)
    folders = [load_spec(n).results.folder for n in reproduce]
    assert len(set(folders)) == len(folders)
