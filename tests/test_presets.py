"""Every registered preset, cluster-scale ones included, builds and trains here on smoke sizes."""

import math

import pytest

from armillary.algorithms import registry as algorithms
from armillary.platform import presets
from armillary.platform.metrics import ENV_STEPS, summarize
from armillary.platform.rllib_config import build_algorithm_config
from armillary.platform.spec import load_spec

pytestmark = pytest.mark.ray


def test_the_issue_presets_exist():
    assert {"ppo/cartpole", "ppo/atari-pong", "ppo/dmc-walker-walk", "dqn/cartpole"} <= set(presets.names())


def _smoke_spec(name):
    from armillary.platform.runner import prepare

    spec = load_spec(name, smoke=True)
    prepare(spec)  # e.g. the reward model's Serve deployment (smoke: the built-in tiny model)
    return spec


# A comparison preset (`arms`) builds its base, which another preset already is; tests/test_reproduce.py runs every
# arm of its smoke through the CLI.
SINGLE = [name for name in presets.experiment_names() if not presets.get(name).spec.get("arms")]


@pytest.mark.parametrize("name", SINGLE)
def test_preset_builds_and_trains_on_smoke_sizes(name, local_ray):
    spec = _smoke_spec(name)
    algo = build_algorithm_config(spec, seed=0).build_algo()
    try:
        before = {k: v.detach().clone() for k, v in algo.get_module().state_dict().items()}
        summary = {}
        for _ in range(2):
            summary = summarize(algo.train())
        assert summary[ENV_STEPS] > 0
        # What validation lets tune.metric / stop.metric name covers every figure the algorithm really reports.
        entry = algorithms.get(spec.algorithm.name)
        unreported = sorted(key for key in summary if not entry.reports(key))
        assert not unreported, f"{spec.algorithm.name} reports figures its registry entry does not declare: {unreported}"
        after = algo.get_module().state_dict()
        changed = [k for k, v in before.items() if v.dtype.is_floating_point and not (after[k] == v).all()]
        assert changed, f"{name}: no parameter changed after two iterations"
        assert all(math.isfinite(v) for v in summary.values() if not math.isnan(v))
    finally:
        algo.stop()


# The long-context smokes load the real SmolLM2 (≈ 20 s each) and start Ray workers: slow, as is the Ray sweep test;
# so are the asynchronous DQN smokes (a Ray of their own with actor processes, ~80 s each on a loaded 2-core machine)
# and the self-consistency evaluation smokes (~25 s of CPU each; the job runs end to end in
# tests/test_self_consistency_latent.py).
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow)
                                  if n.startswith("long-context/") or n.endswith(("-scale", "-evaluation")) else n
                                  for n in presets.names() if presets.get(n).job])
def test_job_presets_run_their_job_on_smoke_sizes(name, tmp_path, monkeypatch):
    import importlib

    monkeypatch.setenv("ARMILLARY_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)  # job outputs (runs/...) land here, not in the checkout
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    preset = presets.get(name)
    if preset.name == "clip-reward/eval":  # evaluates what clip-reward/fit saved: fit first, on smoke sizes
        importlib.import_module(presets.get("clip-reward/fit").job).main(presets.get("clip-reward/fit").job_argv(smoke=True))
    assert importlib.import_module(preset.job).main(preset.job_argv(smoke=True)) == 0


def test_progress_table_shows_the_algorithms_own_figures():
    from armillary.platform import metrics
    from armillary.platform.runner import progress_columns

    ppo, _ = progress_columns(load_spec("ppo/cartpole"))
    assert list(ppo.values()) == ["env steps", "return", "steps/s"] and metrics.EPISODE_RETURN in ppo
    score, _ = progress_columns(load_spec("score/arithmetic"))
    assert metrics.EPISODE_RETURN not in score and "score/train/acc_t2" in score and metrics.ENV_STEPS in score
    skills, _ = progress_columns(load_spec("disdain/four-rooms"))
    assert metrics.EPISODE_RETURN not in skills and any("effective_skills" in key for key in skills)


def test_every_experiment_preset_has_a_smoke_that_validates():
    """A new preset cannot ship without a `--smoke`: the real path on tiny sizes, one seed, two iterations, one trial,
    and nothing to fetch first (SCoRe and the CLIP reward use built-in quick models)."""
    from armillary.platform.spec import arm_specs

    for name in presets.experiment_names():
        spec = load_spec(name, smoke=True)
        assert spec.stop.iterations == 2 and len(spec.seeds) == 1 and not spec.tune.search_space, name
        assert spec.resources.num_env_runners == 0 and spec.resources.num_learners == 0, name
        for each in [spec, *arm_specs(spec).values()]:  # every arm of a comparison on its smoke sizes too
            config = each.algorithm.config
            for model in (getattr(config, "model", ""), getattr(getattr(config, "reward_model", None), "model", "")):
                assert not model or model.startswith("builtin:"), f"{name}: the smoke needs {model!r}"


def test_a_presets_own_smoke_layer_shrinks_it_keeping_the_env_module_and_learner(tmp_path):
    """disdain/atari-pong's smoke: the algorithm's smoke sizes, then the preset's own layer (32x32 frames, 8 skills of 8
    steps), also when the preset is named from a YAML file; the real run and other presets keep their sizes."""
    full, smoke = load_spec("disdain/atari-pong"), load_spec("disdain/atari-pong", smoke=True)
    assert (full.env.config.dim, full.algorithm.config.num_skills, full.algorithm.config.skill_length) == (64, 64, 32)
    assert (smoke.env.config.dim, smoke.algorithm.config.num_skills, smoke.algorithm.config.skill_length) == (32, 8, 8)
    assert (smoke.env.name, smoke.algorithm.name) == (full.env.name, full.algorithm.name)
    assert smoke.algorithm.config.train_batch_size == algorithms.get("disdain").smoke["train_batch_size"]
    assert smoke.algorithm.config.hidden_sizes == full.algorithm.config.hidden_sizes  # the same module
    spec_file = tmp_path / "pong.yaml"
    spec_file.write_text("preset: disdain/atari-pong\nseeds: [4]\n")
    from_file = load_spec(str(spec_file), smoke=True)
    assert (from_file.env.config.dim, from_file.algorithm.config.num_skills, from_file.seeds) == (32, 8, [4])
    assert load_spec("disdain/four-rooms", smoke=True).algorithm.config.num_skills == 24  # no layer of its own


SMOKE_SECONDS = 60  # the README's promise, on a quiet machine; the test allows 5x for a loaded one


@pytest.mark.slow
@pytest.mark.parametrize("name", SINGLE)  # the comparisons' smokes: tests/test_reproduce.py
def test_every_experiment_preset_smoke_runs_through_the_cli(name, tmp_path):
    """`armillary run NAME --smoke` as a new user runs it, for every experiment preset: finishes, COMPLETED."""
    import os
    import subprocess
    import sys
    import time

    env = dict(os.environ, ARMILLARY_RUNS_DIR=str(tmp_path / "runs"), OMP_NUM_THREADS="1",
               ARMILLARY_CACHE_DIR=os.environ.get("ARMILLARY_CACHE_DIR", str(tmp_path / "cache")))
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("RAY_ADDRESS", None)
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "armillary.platform.cli", "run", name, "--smoke", "--no-dashboard"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=5 * SMOKE_SECONDS)
    print(f"{name}: {time.monotonic() - started:.1f} s")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert list((tmp_path / "runs").glob("*/*/COMPLETED")), out.stdout[-3000:]
