"""Every registered preset, cluster-scale ones included, builds and trains here on smoke sizes."""

import math

import pytest

from armillary.platform import presets
from armillary.platform.metrics import ENV_STEPS, summarize
from armillary.platform.rllib_config import build_algorithm_config
from armillary.platform.spec import load_spec

pytestmark = pytest.mark.ray


def test_the_issue_presets_exist():
    assert {"ppo/cartpole", "ppo/atari-pong", "ppo/dmc-walker-walk", "dqn/cartpole"} <= set(presets.names())


def _smoke_spec(name, request):
    from armillary.platform.runner import prepare

    spec = load_spec(name, smoke=True)
    if spec.algorithm.name == "clip-reward-ppo":
        model = request.getfixturevalue("tiny_clip_model")
        spec = load_spec(name, [f"algorithm.config.reward_model.model={model}"], smoke=True)
    prepare(spec)  # e.g. the reward model's Serve deployment
    return spec


@pytest.mark.parametrize("name", presets.experiment_names())
def test_preset_builds_and_trains_on_smoke_sizes(name, local_ray, request):
    spec = _smoke_spec(name, request)
    algo = build_algorithm_config(spec, seed=0).build_algo()
    try:
        before = {k: v.detach().clone() for k, v in algo.get_module().state_dict().items()}
        summary = {}
        for _ in range(2):
            summary = summarize(algo.train())
        assert summary[ENV_STEPS] > 0
        after = algo.get_module().state_dict()
        changed = [k for k, v in before.items() if v.dtype.is_floating_point and not (after[k] == v).all()]
        assert changed, f"{name}: no parameter changed after two iterations"
        assert all(math.isfinite(v) for v in summary.values() if not math.isnan(v))
    finally:
        algo.stop()


@pytest.mark.parametrize("name", [n for n in presets.names() if presets.get(n).job])
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
    from armillary.platform.runner import _progress_reporter

    ppo = _progress_reporter(load_spec("ppo/cartpole"))._metric_columns
    assert list(ppo.values()) == ["env steps", "return", "steps/s"] and metrics.EPISODE_RETURN in ppo
    score = _progress_reporter(load_spec("score/arithmetic"))._metric_columns
    assert metrics.EPISODE_RETURN not in score and "score/train/acc_t2" in score and metrics.ENV_STEPS in score
