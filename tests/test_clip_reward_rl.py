"""The RL side of the CLIP reward: the client's retries, the shuffled-goal control, and PPO whose rewards come
from the served model — written into the batch, ground truth hidden, one deployment shared by two trials, and
training that survives a killed replica."""

import numpy as np
import pytest

from armillary.algorithms.clip_reward.client import RewardClient, derangement
from armillary.algorithms.clip_reward.reward import RewardInputError


def test_derangement_moves_every_goal_and_is_fixed_by_its_seed():
    goals = [f"goal {i}" for i in range(24)]
    shuffled = derangement(goals, seed=3)
    assert sorted(shuffled) == sorted(goals) and sorted(shuffled.values()) == sorted(goals)
    assert all(shuffled[g] != g for g in goals)
    assert derangement(goals, seed=3) == shuffled and derangement(goals, seed=4) != shuffled
    with pytest.raises(ValueError, match="at least two goals"):
        derangement(["only"], seed=0)


class _Response:
    def __init__(self, outcome):
        self.outcome = outcome

    def result(self, timeout_s=None):
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


class _FlakyHandle:
    """A DeploymentHandle stand-in: answers reward = frame index parity; the first `failures` calls fail."""

    def __init__(self, failures=0, error=None):
        self.failures, self.error, self.calls = failures, error or ConnectionError("replica died"), []
        self.score = self

    def remote(self, frames, goals, goal_set):
        self.calls.append(len(goals))
        if len(self.calls) <= self.failures:
            return _Response(self.error)
        values = frames[:, 0, 0, 0].astype(np.float32)
        return _Response({"reward": values % 2, "probability": values / 100})


def test_client_splits_frames_into_requests_and_puts_answers_back_in_order():
    frames = np.zeros((10, 2, 2, 3), dtype=np.uint8)
    frames[:, 0, 0, 0] = np.arange(10)
    handle = _FlakyHandle()
    reward, probability, stats = RewardClient("app", frames_per_request=4, handle=handle).score(frames, ["g"] * 10, ["g"])
    assert handle.calls == [4, 4, 2] and stats.requests == 3 and stats.retries == 0
    assert reward.tolist() == [i % 2 for i in range(10)] and np.allclose(probability, np.arange(10) / 100)


def test_client_retries_a_failed_request_and_counts_it():
    frames = np.zeros((6, 2, 2, 3), dtype=np.uint8)
    frames[:, 0, 0, 0] = np.arange(6)
    handle = _FlakyHandle(failures=2)
    client = RewardClient("app", frames_per_request=3, retry_window_s=60, backoff_s=0.0, handle=handle)
    reward, _, stats = client.score(frames, ["g"] * 6, ["g"])
    assert stats.retries == 2 and stats.failures == ["ConnectionError", "ConnectionError"]
    assert reward.tolist() == [0, 1, 0, 1, 0, 1]


def test_client_gives_up_after_its_retry_window_and_never_retries_bad_input():
    frames = np.zeros((2, 2, 2, 3), dtype=np.uint8)
    with pytest.raises(RuntimeError, match="still failing after"):
        RewardClient("app", retry_window_s=0.25, backoff_s=0.1, handle=_FlakyHandle(failures=99)).score(frames, ["g"] * 2, ["g"])
    bad = _FlakyHandle(failures=5, error=RewardInputError("unknown goal 'x'"))
    with pytest.raises(RewardInputError, match="unknown goal"):
        RewardClient("app", retry_window_s=60, backoff_s=0.0, handle=bad).score(frames, ["x"] * 2, ["g"])
    assert len(bad.calls) == 1


def test_the_env_reward_must_stay_external():
    from armillary.platform.rllib_config import build_algorithm_config
    from armillary.platform.spec import load_spec

    spec = load_spec("clip-reward/ppo-language-goals", ["env.config.reward=ground_truth"])
    with pytest.raises(ValueError, match="env.config.reward"):
        build_algorithm_config(spec, 0)


def test_an_env_without_language_goals_is_refused():
    from armillary.platform.rllib_config import build_algorithm_config
    from armillary.platform.spec import validate

    spec = validate({"name": "x", "algorithm": {"name": "clip-reward-ppo", "config": {"reward_model": {"model": "m"}}},
                     "env": {"name": "CartPole-v1"}, "stop": {"iterations": 1}})
    with pytest.raises(ValueError, match="env.name: CartPole-v1 is not a language-goal env"):
        build_algorithm_config(spec, 0)


def test_a_missing_model_folder_is_refused_with_the_field_and_the_fix(tmp_path):
    from armillary.algorithms.clip_reward.configure import check_model_exists

    with pytest.raises(ValueError, match=r"reward_model\.model.*armillary run clip-reward/fit"):
        check_model_exists(str(tmp_path / "nowhere"))
    check_model_exists(str(tmp_path))  # an existing folder passes


@pytest.mark.parametrize("env, reason", [
    ({"HF_HUB_OFFLINE": "1"}, "HF_HUB_OFFLINE is set"),
    ({"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}, "the hub did not confirm it"),  # nothing listens on 9
])
def test_a_hub_name_that_cannot_be_loaded_is_refused_in_bounded_time(env, reason, tmp_path):
    """A reward model named by a hub id that is neither cached nor reachable: the Serve replica's from_pretrained
    would retry for ever, so prepare() refuses it first, naming the field."""
    import os
    import subprocess
    import sys

    code = ("from armillary.algorithms.clip_reward.configure import check_model_exists\n"
            "try:\n    check_model_exists('openai/clip-vit-base-patch32')\nexcept ValueError as err:\n    print(err)\n"
            "else:\n    print('accepted')")
    run_env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), **env}  # an empty cache
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("algorithm.config.reward_model.model: 'openai/clip-vit-base-patch32' is not a local "
                                 "folder"), out.stdout + out.stderr
    assert reason in out.stdout


# --- with Ray and a served tiny model --------------------------------------------------------------------------


def _delete_app():
    from ray import serve
    from ray.serve.exceptions import RayServeException

    try:
        serve.delete("clip-test")
    except (ValueError, RayServeException):  # Serve not started yet on this cluster
        pass


def _spec(model, threshold, *more):
    from armillary.platform.spec import load_spec

    # τ = 10 flattens P(goal | x) to ~1/25 for every frame, so the gate is known in advance: β = 0.01 always
    # fires, β = 0.9 never does — whatever the (untrained) model sees.
    return load_spec("clip-reward/ppo-language-goals", [
        f"algorithm.config.reward_model.model={model}", "algorithm.config.reward_model.reward.temperature=10",
        f"algorithm.config.reward_model.reward.threshold={threshold}", "algorithm.config.reward_model.app_name=clip-test",
        *more], smoke=True)


@pytest.mark.ray
def test_rewards_come_from_the_deployment_and_ground_truth_stays_hidden(tiny_clip_model, local_ray):
    from armillary.platform.metrics import summarize
    from armillary.platform.rllib_config import build_algorithm_config
    from armillary.platform.runner import prepare

    for threshold, expected in ((0.01, 1.0), (0.9, 0.0)):
        spec = _spec(tiny_clip_model, threshold)
        _delete_app()
        prepare(spec)  # deploys the model with this β
        algo = build_algorithm_config(spec, 0).build_algo()
        try:
            episodes = algo.env_runner.sample()
            for episode in episodes:
                assert np.all(episode.get_rewards() == expected)  # the served reward, not the env's 0
                for info in episode.get_infos():
                    assert not {"frame", "success", "reached"} & set(info), "ground truth or frames reached the learner"
            summary = summarize(algo.train())
        finally:
            algo.stop()
        assert summary["clip-reward-ppo/firing_rate"] == expected
        # Returns are counted after the rewrite: every step of a 10-step episode pays 1 when the gate always fires.
        assert summary["env_runners/episode_return_mean"] == pytest.approx(10 * expected)
        for name in ("gt_on_goal_rate", "gt_success_rate", "reward_requests", "reward_wait_ms_per_step"):
            assert np.isfinite(summary[f"clip-reward-ppo/{name}"])
        assert summary["clip-reward-ppo/reward_requests"] >= 1


@pytest.mark.ray
def test_two_trials_of_a_sweep_share_one_deployment(tiny_clip_model, local_ray, runs_dir):
    import json

    from ray import serve

    from armillary.algorithms.clip_reward.serve import replica_stats
    from armillary.platform.runner import run_experiment

    _delete_app()
    spec = _spec(tiny_clip_model, 0.5, "seeds=[0,1]", "resources.max_concurrent_trials=2")
    from armillary.platform.spec import validate

    spec = validate({**spec.to_dict(), "seeds": [0, 1]})  # --smoke keeps one seed; the sweep needs two
    outcome = run_experiment(spec)
    assert outcome.ok and outcome.num_trials == 2
    stats = replica_stats(serve.get_app_handle("clip-test"))
    assert len(stats) == 1, "one model copy for the whole sweep"
    (replica,) = stats.values()
    steps = 0
    for result_file in (outcome.run_dir / "tune").glob("*/result.json"):
        last = json.loads(result_file.read_text().splitlines()[-1])
        steps += last["env_runners/num_env_steps_sampled_lifetime"]
    assert steps > 0 and replica["frames"] == steps, "every env step of both trials was scored by the one replica"


@pytest.mark.ray
def test_training_goes_on_when_the_replica_is_killed(tiny_clip_model, local_ray):
    import ray
    from ray import serve

    from armillary.algorithms.clip_reward.serve import replica_stats
    from armillary.platform.metrics import summarize
    from armillary.platform.rllib_config import build_algorithm_config
    from armillary.platform.runner import prepare

    _delete_app()
    spec = _spec(tiny_clip_model, 0.01)
    prepare(spec)
    handle = serve.get_app_handle("clip-test")
    (before,) = replica_stats(handle)
    algo = build_algorithm_config(spec, 0).build_algo()
    try:
        normal = summarize(algo.train())
        replica = next(a for a in ray.util.list_named_actors(all_namespaces=True) if "clip-test" in a["name"] and "REPLICA" in a["name"])
        ray.kill(ray.get_actor(replica["name"], namespace=replica["namespace"]), no_restart=True)
        summary = summarize(algo.train())  # the requests of this iteration meet the dead replica
    finally:
        algo.stop()
    assert summary["clip-reward-ppo/firing_rate"] == 1.0  # every frame still scored
    # The gap shows: this iteration's frames waited for a new replica (a process that imports torch and loads
    # the model: seconds), where a normal iteration waits a fraction of a second.
    wait, usual = summary["clip-reward-ppo/reward_wait_s"], normal["clip-reward-ppo/reward_wait_s"]
    assert wait > 1.0 and wait > 5 * usual, (wait, usual)
    (after,) = replica_stats(handle)
    assert after != before, "Serve replaced the killed replica"
