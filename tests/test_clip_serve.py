"""Contract of the reward deployment on a tiny model: shapes, rewards equal to the in-process model,
dynamic batches, text cache, and bad input answered with a clear error while the replica lives on."""

import numpy as np
import pytest

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import ray
    from ray import serve

    from armillary.algorithms.clip_reward.model_settings import RewardConfig, ServeConfig
    from armillary.algorithms.clip_reward.models import build_clip, build_tokenizer, save_clip
    from armillary.algorithms.clip_reward.serve import start
    from armillary.envs.language_goals import FLOOR_CAPTION, LanguageGoalOptions, World

    world = World(LanguageGoalOptions())
    tokenizer = build_tokenizer(world.vocabulary())
    path = save_clip(build_clip("tiny", 48, 16, len(tokenizer), seed=0), tokenizer, tmp_path_factory.mktemp("m") / "tiny")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    config = ServeConfig(model=str(path), app_name="clip-reward-test", max_batch_size=8, batch_wait_timeout_s=0.05,
                         reward=RewardConfig(extra_negatives=(FLOOR_CAPTION,)))
    try:
        handle = start(config)
        yield handle, config, world
    finally:
        serve.shutdown()
        ray.shutdown()


def _in_process(config, world, frames, goals):
    from armillary.algorithms.clip_reward.models import load_clip
    from armillary.algorithms.clip_reward.reward import ClipReward

    return ClipReward(load_clip(config.model), config.reward)(frames, goals, world.goals)


def test_answers_shapes_and_the_same_rewards_as_the_model_in_process(served):
    from armillary.envs.language_goals import success_triples

    handle, config, world = served
    frames, goals, _ = success_triples(6, seed=0)
    answer = handle.score.remote(frames, goals, world.goals).result(timeout_s=60)
    assert answer["reward"].shape == answer["probability"].shape == (6,)
    assert answer["reward"].dtype == np.float32 and set(answer["reward"].tolist()) <= {0.0, 1.0}
    assert len(answer["candidates"]) == world.num_goals + 1
    expected = _in_process(config, world, frames, goals)
    assert np.allclose(answer["probability"], expected.probability, atol=1e-5)
    assert np.array_equal(answer["reward"], expected.reward)
    one = handle.score.remote(frames[0], goals[0], world.goals).result(timeout_s=60)  # a single frame
    assert one["reward"].shape == (1,)


def test_concurrent_requests_are_batched_and_text_is_cached(served):
    from armillary.algorithms.clip_reward.serve import replica_stats
    from armillary.envs.language_goals import success_triples

    handle, _, world = served
    frames, goals, _ = success_triples(24, seed=1)
    before = next(iter(replica_stats(handle).values()))
    responses = [handle.score.remote(frames[i : i + 1], goals[i : i + 1], world.goals) for i in range(24)]
    answers = [response.result(timeout_s=60) for response in responses]
    assert all(answer["reward"].shape == (1,) for answer in answers)
    stats = replica_stats(handle)
    assert len(stats) == 1  # one replica
    after = next(iter(stats.values()))
    assert after["requests"] - before["requests"] == 24
    assert max(int(size) for size in after["batch_sizes"]) > 1, after["batch_sizes"]  # batches formed
    assert after["text_cache_misses"] == before["text_cache_misses"]  # same goal set: cached


BAD = {
    "float frames": (lambda f: f.astype(np.float32), None, None, "uint8"),
    "wrong size": (lambda f: f[:, :32, :32], None, None, "model takes"),
    "empty goal set": (None, None, [], "goal_set is empty"),
    "unknown goal": (None, ["the agent is on the moon"], None, "unknown goal"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_a_clear_error_and_the_replica_survives(served, case):
    from armillary.algorithms.clip_reward.reward import RewardInputError
    from armillary.algorithms.clip_reward.serve import replica_stats
    from armillary.envs.language_goals import success_triples

    handle, _, world = served
    change, goals, goal_set, message = BAD[case]
    frames, good_goals, _ = success_triples(1, seed=2)
    pid_before = {s["pid"] for s in replica_stats(handle).values()}
    # Ray re-raises the replica's error as a subclass of its cause: callers can catch RewardInputError.
    with pytest.raises(RewardInputError, match=message):
        handle.score.remote(change(frames) if change else frames, good_goals if goals is None else goals,
                            world.goals if goal_set is None else goal_set).result(timeout_s=60)
    ok = handle.score.remote(frames, good_goals, world.goals).result(timeout_s=60)
    assert ok["reward"].shape == (1,)
    assert {s["pid"] for s in replica_stats(handle).values()} == pid_before  # same process: not restarted


def test_ensure_running_reuses_the_running_application(served):
    from armillary.algorithms.clip_reward.serve import ensure_running, replica_stats

    handle, config, _ = served
    pids = {s["pid"] for s in replica_stats(handle).values()}
    again = ensure_running(config)
    assert {s["pid"] for s in replica_stats(again).values()} == pids
