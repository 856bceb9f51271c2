"""The environments: gridworlds (DISDAIN, RVIC), Atari from pixels, the DeepMind Control Suite.

Fast (well under a minute): the slowest parts are importing ray.rllib (for the Atari wrappers and one RLModule
check) and building every registered environment once.
"""

from __future__ import annotations

import os

# dm_control picks its rendering backend when first imported (ray.rllib imports it too): headless needs EGL.
os.environ.setdefault("MUJOCO_GL", "egl")

import warnings  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from gymnasium.utils.env_checker import check_env  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from armillary.envs import registry  # noqa: E402
from armillary.envs.gridworld import (  # noqa: E402
    DOWN,
    FOUR_ROOMS,
    FOUR_ROOMS_SMALL,
    LEFT,
    NOOP,
    RIGHT,
    UP,
    measure_steps_per_second,
)
from armillary.envs.render import count_visits, occupancy_image, write_clip  # noqa: E402

GRID_ENVS = ("four-rooms-small", "four-rooms", "open-room")


def run_checker(env: gym.Env, **kwargs) -> None:
    """gymnasium's env checker; its warnings (unbounded Box, wrapped env, no spec) are advice, not failures."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env, **kwargs)


def rollout_positions(env: gym.Env, actions: list[int]) -> list[tuple[int, int]]:
    return [env.step(action)[4]["pos"] for action in actions]


# --- registry ------------------------------------------------------------------------------------------------


REQUIRED_ENVS = (
    *GRID_ENVS,
    *(f"atari-{game}" for game in ("pong", "breakout", "space-invaders", "ms-pacman", "montezuma-revenge")),
    *(f"dmc-{task}" for task in ("walker-walk", "walker-run", "cheetah-run", "cartpole-swingup", "quadruped-walk",
                                 "reacher-easy", "point_mass-easy")),
)


def test_registry_lists_every_family():
    assert set(REQUIRED_ENVS) <= set(registry.names())
    families = {name: registry.get(name).family for name in REQUIRED_ENVS}
    assert {families[name] for name in GRID_ENVS} == {"grid"}
    assert families["atari-pong"] == "atari" and families["dmc-walker-walk"] == "dmc"


@pytest.mark.parametrize("name", [n for n in registry.names() if registry.get(n).family in ("grid", "atari", "dmc")])
def test_every_registered_env_builds_resets_and_steps(name):
    if name.startswith("atari-"):
        require_atari_roms()
    env = registry.make(name)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)
    assert isinstance(reward, float) and isinstance(terminated, bool) and isinstance(truncated, bool)
    env.close()


def test_unknown_options_are_rejected():
    with pytest.raises(ValidationError):
        registry.make("four-rooms-small", {"max_steps": 8})
    with pytest.raises(ValidationError):
        registry.make("four-rooms-small", {"start": "anywhere"})


# --- gridworlds ------------------------------------------------------------------------------------------------


def test_four_rooms_small_is_the_disdain_map():
    env = registry.make("four-rooms-small")
    grid = env.unwrapped.grid
    assert grid.num_cells == 24
    assert env.action_space == gym.spaces.Discrete(5)
    assert env.observation_space.shape == (24,)
    assert env.unwrapped.max_episode_steps == 8
    # With T = 8 and a no-op, a skill can end in any cell within 8 steps: 23 of the 24, as in the paper.
    distance = grid.distances_from(grid.default_start)
    reachable = (distance >= 0) & (distance <= 8)
    assert reachable.sum() == 23
    assert (distance[~grid.walls] >= 0).all(), "every free cell is connected"


def test_four_rooms_is_the_classic_map():
    env = registry.make("four-rooms")
    assert FOUR_ROOMS.num_cells == 104
    assert FOUR_ROOMS.walls.shape == (13, 13)
    assert env.observation_space.shape == (104,)
    distance = FOUR_ROOMS.distances_from(FOUR_ROOMS.default_start)[~FOUR_ROOMS.walls]
    assert distance.min() == 0 and distance.max() == env.unwrapped.max_episode_steps == 20  # all cells reachable


def test_walls_block_moves():
    env = registry.make("four-rooms-small")
    _, info = env.reset(seed=0)
    assert info["pos"] == (1, 1)  # the top-left corner: walls above and to the left
    assert rollout_positions(env, [UP, LEFT, RIGHT, RIGHT]) == [(1, 1), (1, 1), (2, 1), (2, 1)]  # (3, 1) is a wall


def test_moves_go_where_the_action_says():
    env = registry.make("open-room", {"start": "fixed"})
    _, info = env.reset(seed=0)
    x, y = info["pos"]
    assert (x, y) == (5, 5)  # the centre of the 9x9 room
    assert rollout_positions(env, [UP, RIGHT, DOWN, DOWN, LEFT]) == [(5, 4), (6, 4), (6, 5), (6, 6), (5, 6)]


def test_no_op_keeps_every_cell_and_its_observation():
    env = registry.make("four-rooms-small")
    for pos in FOUR_ROOMS_SMALL.free_cells:
        obs, _ = env.reset(options={"start_pos": pos})
        next_obs, _, _, _, info = env.step(NOOP)
        assert info["pos"] == pos
        np.testing.assert_array_equal(next_obs, obs)


def test_truncation_exactly_at_skill_length():
    env = registry.make("four-rooms-small", {"max_episode_steps": 3})
    env.reset(seed=0)
    flags = [env.step(RIGHT)[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]  # (terminated, truncated)


def test_no_reward_without_a_goal():
    env = registry.make("four-rooms")
    env.reset(seed=0)
    rewards = []
    for action in np.random.default_rng(0).integers(5, size=200):
        _, reward, terminated, truncated, _ = env.step(action)
        rewards.append(reward)
        assert not terminated, "reward-free worlds only truncate"
        if truncated:
            env.reset()
    assert set(rewards) == {0.0}


def test_fixed_start_is_fixed_and_random_start_varies_reproducibly():
    fixed = registry.make("four-rooms-small")
    assert {fixed.reset(seed=seed)[1]["start_pos"] for seed in range(20)} == {(1, 1)}

    room = registry.make("open-room")  # random starts by default
    starts = [room.reset(seed=seed)[1]["start_pos"] for seed in range(100)]
    assert len(set(starts)) > 40  # 100 uniform draws over 81 cells
    assert all(room.unwrapped.grid.is_free(pos) for pos in starts)
    assert [room.reset(seed=seed)[1]["start_pos"] for seed in range(100)] == starts  # same seeds, same starts
    room.reset(seed=7)
    unseeded = [room.reset()[1]["start_pos"] for _ in range(20)]
    assert len(set(unseeded)) > 5, "resets without a seed continue the random stream"


def test_info_reports_position_cell_and_start():
    env = registry.make("open-room", {"size": 5})
    _, info = env.reset(seed=1)
    start = info["start_pos"]
    assert info["pos"] == start
    for action in [RIGHT, RIGHT, DOWN]:
        _, _, _, _, info = env.step(action)
        assert info["start_pos"] == start
        assert info["cell"] == env.unwrapped.grid.cell_index(info["pos"])
        assert all(isinstance(v, int) for v in info["pos"])


def test_onehot_observation_marks_the_agent_cell():
    env = registry.make("four-rooms")
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.sum() == 1.0 and obs[info["cell"]] == 1.0
    obs, _, _, _, info = env.step(DOWN)
    assert obs.sum() == 1.0 and obs[info["cell"]] == 1.0


def test_xy_observation_is_normalised_position():
    env = registry.make("four-rooms", {"observation": "xy"})
    obs, info = env.reset(seed=0)
    assert env.observation_space.shape == (2,)
    np.testing.assert_allclose(obs, np.array(info["pos"]) / 12.0)
    moved, _, _, _, _ = env.step(RIGHT)
    assert moved[0] > obs[0] and moved[1] == obs[1]


def test_fixed_goal_gives_reward_and_terminates():
    env = registry.make("four-rooms-small", {"goal": [2, 2]})
    _, info = env.reset(seed=0)
    assert info["goal_pos"] == (2, 2)
    assert env.observation_space.shape == (24,), "a fixed goal is not observed"
    _, reward, terminated, truncated, _ = env.step(RIGHT)  # (2, 1): not the goal yet
    assert (reward, terminated, truncated) == (0.0, False, False)
    _, reward, terminated, truncated, info = env.step(DOWN)
    assert (reward, terminated, truncated) == (1.0, True, False) and info["pos"] == (2, 2)


def test_random_goal_is_observed_and_never_the_start():
    env = registry.make("open-room", {"size": 5, "goal": "random"})
    assert env.observation_space.shape == (50,)  # agent one-hot + goal one-hot
    for seed in range(30):
        obs, info = env.reset(seed=seed)
        assert info["goal_pos"] != info["start_pos"]
        goal_cell = env.unwrapped.grid.cell_index(info["goal_pos"])
        assert obs[:25].argmax() == info["cell"] and obs[25:].argmax() == goal_cell
    # Start next to the goal and step onto it.
    gx, gy = info["goal_pos"]
    beside, action = ((gx - 1, gy), RIGHT) if gx > 1 else ((gx + 1, gy), LEFT)
    env.reset(options={"start_pos": beside, "goal_pos": (gx, gy)})
    assert env.step(action)[1:3] == (1.0, True)


def test_invalid_positions_are_rejected():
    with pytest.raises(ValueError, match="not a free cell"):
        registry.make("four-rooms-small", {"start": [3, 1]})  # a wall
    with pytest.raises(ValueError, match="fixed start"):
        registry.make("four-rooms-small", {"goal": [1, 1]})
    with pytest.raises(ValueError):
        registry.make("four-rooms-small").step(5)


def test_grid_render_is_small_rgb_and_shows_the_agent():
    env = registry.make("four-rooms-small")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (8 * 8, 7 * 8, 3) and frame.dtype == np.uint8
    agent_pixel = frame[1 * 8 + 4, 1 * 8 + 4].copy()
    env.step(RIGHT)
    moved = env.render()
    assert not np.array_equal(moved[1 * 8 + 4, 2 * 8 + 4], frame[1 * 8 + 4, 2 * 8 + 4])
    np.testing.assert_array_equal(moved[1 * 8 + 4, 2 * 8 + 4], agent_pixel)


@pytest.mark.parametrize("name", GRID_ENVS)
def test_grid_envs_pass_gymnasiums_checker(name):
    run_checker(registry.make(name))
    run_checker(registry.make(name, {"goal": "random", "start": "random", "observation": "xy"}))


def test_gridworld_is_fast():
    steps_per_second = measure_steps_per_second(registry.make("four-rooms-small"), num_steps=20_000)
    assert steps_per_second > 30_000  # ~1M on the dev machine; a loose floor so a loaded machine still passes


# --- pictures --------------------------------------------------------------------------------------------------


def test_occupancy_image_heat_map():
    counts = count_visits([(1, 1), (1, 1), (1, 1), (2, 1)], FOUR_ROOMS_SMALL.walls.shape)
    assert counts[1, 1] == 3 and counts[1, 2] == 1 and counts.sum() == 4
    image = occupancy_image(counts, FOUR_ROOMS_SMALL.walls)
    assert image.shape == (8 * 8, 7 * 8, 3) and image.dtype == np.uint8
    centre = {name: image[y * 8 + 4, x * 8 + 4].astype(int) for name, (x, y) in
              {"hottest": (1, 1), "warm": (2, 1), "unvisited": (4, 1), "wall": (0, 0)}.items()}
    hottest, warm, unvisited, wall = centre["hottest"], centre["warm"], centre["unvisited"], centre["wall"]
    assert hottest.sum() > warm.sum() > unvisited.sum()  # viridis brightens with the count
    assert not np.array_equal(wall, unvisited), "walls stand apart from floor never visited"
    assert occupancy_image(np.zeros((3, 3))).shape == (24, 24, 3)  # no visits at all: no division by zero


def test_write_clip_saves_an_animated_gif(tmp_path):
    from PIL import Image

    env = registry.make("four-rooms-small")
    env.reset(seed=0)
    frames = [env.render()]
    for action in (RIGHT, DOWN, DOWN):  # every step moves the agent, so no two frames are the same
        env.step(action)
        frames.append(env.render())
    path = write_clip(frames, tmp_path / "clip.gif", fps=10)
    with Image.open(path) as gif:
        assert gif.n_frames == 4 and gif.size == (56, 64)
        assert gif.info["duration"] == 100
        gif.seek(3)
        np.testing.assert_array_equal(np.asarray(gif.convert("RGB")), frames[3])  # few colours: GIF is lossless
    with pytest.raises(ValueError):
        write_clip(frames, tmp_path / "clip.mp4")


# --- Atari -----------------------------------------------------------------------------------------------------


def require_atari_roms() -> None:
    import ale_py.roms

    if ale_py.roms.get_rom_path("pong") is None:
        pytest.skip("ale-py has no Atari ROMs here (ale_py.roms.get_rom_path('pong') is None)")


@pytest.fixture
def pong():
    require_atari_roms()
    env = registry.make("atari-pong")
    yield env
    env.close()


def test_atari_observations_are_stacked_small_frames(pong):
    obs, _ = pong.reset(seed=0)
    assert obs.shape == (64, 64, 4) and obs.dtype == np.float32
    assert -1.0 <= obs.min() < obs.max() <= 1.0, "a real, non-blank screen scaled to [-1, 1]"
    for _ in range(10):
        obs, reward, terminated, truncated, _ = pong.step(pong.action_space.sample())
    assert pong.observation_space.contains(obs)
    assert not np.array_equal(obs[..., 0], obs[..., 3]), "the stack holds different frames"
    assert pong.action_space == gym.spaces.Discrete(6)  # Pong's minimal action set
    frame = pong.render()
    assert frame.shape == (210, 160, 3) and frame.dtype == np.uint8


def test_atari_options():
    require_atari_roms()
    env = registry.make("atari-breakout", {"dim": 84, "framestack": 2, "full_action_space": True})
    assert env.reset(seed=0)[0].shape == (84, 84, 2)
    assert env.action_space == gym.spaces.Discrete(18)


def test_atari_wrappers_match_rllibs_stack():
    """Our stack is RLlib's wrap_atari_for_new_api_stack with only the lost-life wrapper replaced."""
    require_atari_roms()
    import ale_py
    from ray.rllib.env.wrappers.atari_wrappers import wrap_atari_for_new_api_stack

    gym.register_envs(ale_py)
    theirs = wrap_atari_for_new_api_stack(gym.make("ale_py:ALE/Pong-v5", frameskip=1), dim=64, framestack=4)
    ours = registry.make("atari-pong")

    def chain(env):
        wrappers = []
        while isinstance(env, gym.Wrapper):
            wrappers.append(type(env))
            env = env.env
        return wrappers

    assert [w.__name__ for w in chain(ours)] == [w.__name__ for w in chain(theirs)]
    episodic_life = next(w for w in chain(ours) if w.__name__ == "EpisodicLifeEnv")
    assert episodic_life.__module__ == "armillary.envs.atari", "ours, which resets after a truncation"


def test_atari_episodes_after_a_time_limit_are_full_length():
    # RLlib's own lost-life wrapper would make every episode after the first truncation one step long.
    require_atari_roms()
    env = registry.make("atari-pong", {"max_episode_frames": 200})
    env.reset(seed=0)
    lengths = []
    for _ in range(3):
        steps, done = 0, False
        while not done:
            _, _, terminated, truncated, _ = env.step(0)
            steps, done = steps + 1, terminated or truncated
        assert truncated and not terminated
        lengths.append(steps)
        env.reset()
    assert min(lengths) > 20  # 200 frames are ~40 agent steps, less the no-ops and FIRE at reset


def test_atari_reset_with_a_seed_is_reproducible(pong):
    first, _ = pong.reset(seed=123)
    for _ in range(5):
        pong.step(pong.action_space.sample())
    again, _ = pong.reset(seed=123)
    np.testing.assert_array_equal(first, again)
    run_checker(pong, skip_render_check=True, skip_close_check=True)  # RLlib's wrappers cannot be re-made by spec


def test_atari_model_config_builds_rllibs_default_ppo_module(pong):
    import torch
    from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    entry = registry.get("atari-pong")
    module = RLModuleSpec(
        module_class=DefaultPPOTorchRLModule,
        observation_space=pong.observation_space,
        action_space=pong.action_space,
        model_config=dict(entry.model_config),
    ).build()
    obs, _ = pong.reset(seed=0)
    with torch.no_grad():
        out = module.forward_inference({Columns.OBS: torch.from_numpy(np.stack([obs, obs]))})
    assert out[Columns.ACTION_DIST_INPUTS].shape == (2, 6)


# --- DeepMind Control Suite ------------------------------------------------------------------------------------


@pytest.fixture
def walker():
    env = registry.make("dmc-walker-walk")
    yield env
    env.close()


def test_dmc_walker_spaces_and_state_layout(walker):
    assert walker.observation_space.shape == (24,) and walker.observation_space.dtype == np.float32
    assert walker.action_space.shape == (6,) and walker.action_space.dtype == np.float32
    np.testing.assert_array_equal(walker.action_space.low, -1.0)
    np.testing.assert_array_equal(walker.action_space.high, 1.0)
    layout = walker.unwrapped.state_layout
    assert list(layout) == ["height", "orientations", "velocity"]  # sorted keys
    assert list(layout.values()) == [slice(0, 1), slice(1, 15), slice(15, 24)]
    obs, info = walker.reset(seed=0)
    np.testing.assert_array_equal(obs, info["state"])
    assert obs[layout["height"]][0] == pytest.approx(walker.unwrapped.physics.torso_height(), rel=1e-6)


def test_dmc_same_seed_same_first_observation(walker):
    from dm_control import suite

    first, _ = walker.reset(seed=5)
    for _ in range(3):
        walker.step(walker.action_space.sample())
    np.testing.assert_array_equal(walker.reset(seed=5)[0], first)
    other = registry.make("dmc-walker-walk")
    np.testing.assert_array_equal(other.reset(seed=5)[0], first)
    assert not np.array_equal(other.reset(seed=6)[0], first)
    # The same episode as the suite's own seeding.
    reference = suite.load("walker", "walk", task_kwargs={"random": 5}).reset().observation
    flat = np.concatenate([np.ravel(reference[key]) for key in sorted(reference)]).astype(np.float32)
    np.testing.assert_array_equal(flat, first)


def test_dmc_time_limit_truncates():
    env = registry.make("dmc-walker-walk", {"action_repeat": 4})
    env.reset(seed=0)
    zeros = np.zeros(6, dtype=np.float32)
    flags = [env.step(zeros)[2:4] for _ in range(250)]  # 1000 control steps / 4
    assert flags[-1] == (False, True)
    assert set(flags[:-1]) == {(False, False)}


def test_dmc_action_repeat_sums_rewards_and_clips_actions():
    single, double = registry.make("dmc-cheetah-run"), registry.make("dmc-cheetah-run", {"action_repeat": 2})
    single.reset(seed=1)
    double.reset(seed=1)
    # Many of these actions lie outside [-1, 1]: the env clips them, so `double` gets them clipped beforehand.
    for action in np.random.default_rng(0).uniform(-3, 3, size=(5, 6)).astype(np.float32):
        obs_double, reward_double, _, _, _ = double.step(np.clip(action, -1, 1))
        _, first_reward, _, _, _ = single.step(action)
        obs_single, second_reward, _, _, _ = single.step(action)
        assert reward_double == pytest.approx(first_reward + second_reward)
        np.testing.assert_array_equal(obs_double, obs_single)


def test_dmc_pixels_and_render():
    env = registry.make("dmc-walker-walk", {"pixels": True})
    obs, info = env.reset(seed=0)
    assert env.observation_space.shape == (64, 64, 3)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8 and obs.std() > 10, "a picture, not a blank"
    assert info["state"].shape == (24,)
    next_obs, _, _, _, info = env.step(np.ones(6, dtype=np.float32))
    assert info["state"].shape == (24,) and not np.array_equal(next_obs, obs)
    frame = env.render()
    assert frame.shape == (128, 128, 3) and frame.dtype == np.uint8
    env.close()


def test_dmc_passes_gymnasiums_checker(walker):
    run_checker(walker, skip_render_check=True)


# --- RLlib -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["four-rooms-small", "atari-pong", "dmc-walker-walk"])
def test_rllib_env_runner_samples_each_family(name):
    """RLlib's own env runner (vectorised, with the entry's model_config) steps the env and keeps its infos."""
    if name.startswith("atari-"):
        require_atari_roms()
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
    from ray.tune.registry import register_env

    entry = registry.get(name)
    register_env(registry.rllib_env_id(name), lambda env_config: entry.build(dict(env_config)))
    config = (
        PPOConfig()
        .environment(registry.rllib_env_id(name))
        .env_runners(num_envs_per_env_runner=2)
        .rl_module(model_config=dict(entry.model_config))
    )
    runner = SingleAgentEnvRunner(config=config)
    try:
        episodes = runner.sample(num_timesteps=64, random_actions=False)
    finally:
        runner.stop()
    assert sum(len(episode) for episode in episodes) == 64
    expected_info = {"grid": "pos", "atari": "lives", "dmc": "state"}[entry.family]
    assert expected_info in episodes[0].get_infos(-1)
