"""DOMiNO's small world (multi-goal-room) and the latent-conditioned wrapper (DominoEnv). No Ray, fast."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from pydantic import ValidationError

from armillary.algorithms.domino.env import DominoEnv
from armillary.envs import registry
from armillary.envs.gridworld import DOWN, LEFT, NOOP, RIGHT, UP, measure_steps_per_second


def run_checker(env, **kwargs) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env, **kwargs)


def test_registered_as_a_grid_env():
    assert registry.get("multi-goal-room").family == "grid"


def test_every_corner_is_an_equally_good_goal_at_the_same_distance():
    env = registry.make("multi-goal-room")  # 7x7, start in the centre (4, 4)
    grid = env.unwrapped.grid
    distance = grid.distances_from(grid.default_start)
    corners = [grid.free_cells[c] for c in env.unwrapped.goal_cells]
    assert corners == [(1, 1), (7, 1), (1, 7), (7, 7)]
    assert {int(distance[y, x]) for x, y in corners} == {6}
    for moves, goal in (((UP, LEFT), 0), ((UP, RIGHT), 1), ((DOWN, LEFT), 2), ((DOWN, RIGHT), 3)):
        _, info = env.reset(seed=0)
        assert info["pos"] == (4, 4) and info["goal"] == -1
        for step in range(6):
            obs, reward, terminated, truncated, info = env.step(moves[step % 2])
        assert terminated and not truncated and reward == 1.0 and info["goal"] == goal


def test_features_are_normalised_xy_and_time_limit_truncates():
    env = registry.make("multi-goal-room", {"max_episode_steps": 3})
    _, info = env.reset(seed=0)
    np.testing.assert_allclose(info["features"], [0.5, 0.5])
    _, _, _, _, info = env.step(LEFT)
    np.testing.assert_allclose(info["features"], [2 / 6, 0.5])
    env.step(NOOP)
    _, reward, terminated, truncated, _ = env.step(NOOP)
    assert truncated and not terminated and reward == 0.0


def test_respawn_keeps_the_episode_going_from_the_start():
    env = registry.make("multi-goal-room", {"size": 3, "on_goal": "respawn", "max_episode_steps": 4})
    env.reset(seed=0)
    env.step(UP)
    _, reward, terminated, truncated, info = env.step(LEFT)
    assert reward == 1.0 and not terminated and not truncated
    assert info["goal"] == 0 and info["pos"] == (2, 2)  # back on the start
    np.testing.assert_allclose(info["features"], [0.5, 0.5])
    env.step(DOWN)
    _, reward, terminated, truncated, info = env.step(RIGHT)
    assert reward == 1.0 and truncated and not terminated and info["goal"] == 3


def test_unequal_goal_rewards_and_bad_options():
    env = registry.make("multi-goal-room", {"size": 3, "goal_rewards": [0.5, 1, 1, 1]})
    env.reset(seed=0)
    env.step(UP)
    _, reward, terminated, _, _ = env.step(LEFT)
    assert terminated and reward == 0.5
    with pytest.raises(ValidationError, match="size"):
        registry.make("multi-goal-room", {"size": 6})
    with pytest.raises(ValidationError, match="goal_rewards"):
        registry.make("multi-goal-room", {"goal_rewards": [1, 1]})
    with pytest.raises(ValueError):
        env.step(5)


def test_passes_gymnasiums_checker_and_is_fast():
    run_checker(registry.make("multi-goal-room"))
    run_checker(registry.make("multi-goal-room", {"observation": "xy"}))
    assert measure_steps_per_second(registry.make("multi-goal-room"), num_steps=20_000) > 30_000


def test_wrapper_layout_features_and_policy():
    env = DominoEnv({"env": "multi-goal-room", "options": {}, "num_policies": 3, "features": "features"})
    assert env.layout.size == 49 + 2 + 3
    obs, info = env.reset(seed=1, options={"policy": 2})
    phi, policy = env.layout.split(torch.as_tensor(obs)[None])
    assert policy.item() == 2 and info["policy"] == 2
    np.testing.assert_allclose(phi[0].numpy(), [0.5, 0.5])
    obs, *_ = env.step(RIGHT)
    phi, _ = env.layout.split(torch.as_tensor(obs)[None])
    np.testing.assert_allclose(phi[0].numpy(), [4 / 6, 0.5], rtol=1e-6)
    drawn = {env.reset()[1]["policy"] for _ in range(60)}
    assert drawn == {0, 1, 2}
    run_checker(env)
    with pytest.raises(ValueError, match="policy"):
        env.reset(options={"policy": 3})


def test_wrapper_features_from_the_observation_and_bad_keys():
    env = DominoEnv({"env": "multi-goal-room", "options": {"observation": "xy"}, "num_policies": 2, "features": "observation"})
    assert env.layout.size == 2 + 2 and env.layout.feature_dim == 2
    with pytest.raises(ValueError, match="no such info key"):
        DominoEnv({"env": "multi-goal-room", "options": {}, "num_policies": 2, "features": "nope"})


def test_rollouts_keep_clip_frames_of_the_first_episode_from_an_injected_renderer():
    from armillary.algorithms.domino.evaluation import records_clips, rollout_policies

    config = {"env": "multi-goal-room", "options": {"max_episode_steps": 9}, "num_policies": 2, "features": "features"}
    actions_taken = [0]

    def act(obs):
        actions_taken[0] += 1
        return torch.tensor([RIGHT])

    def render(env):  # a frame that says how many steps had been taken when it was drawn
        return np.full((4, 4, 3), actions_taken[0], dtype=np.uint8)

    rollouts = rollout_policies(config, act, episodes_per_policy=2, clip_steps=5, clip_every=2, render=render)
    # per policy: the reset frame, then after steps 2 and 4 of its first episode only (2 episodes of 9 steps each)
    assert [[int(f[0, 0, 0]) for f in r.frames] for r in rollouts] == [[0, 2, 4], [18, 20, 22]]
    assert rollout_policies(config, lambda obs: torch.tensor([RIGHT]), 1)[0].frames == []
    assert not records_clips(config)  # a gridworld gets the occupancy picture instead


def test_walker_clip_frames_render_headless():
    """DM Control renders through MuJoCo with MUJOCO_GL=egl (software, no GPU) here; the clips of the final
    artifacts come from these frames."""
    from armillary.algorithms.domino.evaluation import records_clips, rollout_policies

    config = {"env": "dmc-walker-walk", "options": {"render_size": 24}, "num_policies": 2, "features": "observation"}
    assert records_clips(config)
    env = DominoEnv(config)
    action = torch.as_tensor(env.action_space.high)[None]
    env.close()
    rollouts = rollout_policies(config, lambda obs: action, episodes_per_policy=1, clip_steps=20, clip_every=10)
    for r in rollouts:
        assert len(r.frames) == 3 and all(f.shape == (24, 24, 3) and f.dtype == np.uint8 for f in r.frames)
        assert not np.array_equal(r.frames[0], r.frames[-1]), "the walker should move between the first and last frame"
        assert len(r.returns) == 1 and r.lengths == [1000]
