"""The language-goal world: rendering, goals, ground truth kept out of the external reward, labelled data."""

import numpy as np
import pytest

from armillary.envs import registry
from armillary.envs.language_goals import (
    COLOURS,
    FLOOR_CAPTION,
    DOWN,
    LEFT,
    NOOP,
    RIGHT,
    UP,
    LanguageGoalEnv,
    LanguageGoalOptions,
    Scene,
    World,
    caption_pairs,
    goal_caption,
    success_triples,
)


def _env(**options) -> LanguageGoalEnv:
    return LanguageGoalEnv(LanguageGoalOptions(**options))


def _walk_to(env: LanguageGoalEnv, target: tuple[int, int]):
    """Step greedily to `target`; returns the last step's results."""
    result = None
    while env._agent != target:
        x, y = env._agent
        action = RIGHT if target[0] > x else LEFT if target[0] < x else DOWN if target[1] > y else UP
        result = env.step(action)
    return result


def test_registered_and_builds_from_the_registry():
    env = registry.make("language-goals", {"grid_size": 5})
    assert registry.get("language-goals").family == "language-goal"
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert info["goal"] in env.goals and info["success"] is False


def test_options_are_validated():
    with pytest.raises(ValueError, match="num_objects"):
        LanguageGoalOptions(num_colours=1, num_shapes=2, num_objects=3)
    with pytest.raises(ValueError, match="no free cell"):
        LanguageGoalOptions(grid_size=2, num_objects=4)
    with pytest.raises(ValueError):
        LanguageGoalOptions(reward="vlm")


def test_frames_are_small_rgb_uint8_and_show_the_agent_moving():
    env = _env(observation="pixels")
    obs, _ = env.reset(seed=1)
    frame = obs["frame"]
    assert frame.dtype == np.uint8 and frame.shape == (48, 48, 3)
    assert env.observation_space.contains(obs)
    assert obs["goal"].sum() == 1 and env.goals[int(obs["goal"].argmax())] == env.world.goals[env._goal_kind]
    before = env._agent
    action = RIGHT if before[0] < 5 else LEFT
    obs2, *_ = env.step(action)
    assert not np.array_equal(frame, obs2["frame"])
    assert np.array_equal(obs2["frame"], env.render())


def test_every_goal_renders_a_distinct_picture():
    world = World(LanguageGoalOptions(num_objects=1))
    pictures = {world.render(Scene((k,), ((2, 2),), (2, 2))).tobytes() for k in range(world.num_goals)}
    assert len(pictures) == world.num_goals == 24


def test_ground_truth_reward_and_termination_on_the_goal():
    env = _env(max_episode_steps=100)
    _, info = env.reset(seed=3)
    goal_cell = env._scene.cells[env._scene.kinds.index(env._goal_kind)]
    _, reward, terminated, truncated, info = _walk_to(env, goal_cell)
    assert (reward, terminated, truncated, info["success"]) == (1.0, True, False, True)
    assert info["standing_on"] == info["goal"]


def test_external_reward_hides_success_from_reward_and_episode_end():
    env = _env(reward="external", max_episode_steps=100)
    env.reset(seed=3)
    goal_cell = env._scene.cells[env._scene.kinds.index(env._goal_kind)]
    _, reward, terminated, truncated, info = _walk_to(env, goal_cell)
    assert info["success"] is True  # logged from info ...
    assert reward == 0.0 and not terminated and not truncated  # ... never seen by the learner


def test_truncates_at_max_episode_steps_and_walls_hold_the_agent():
    env = _env(reward="external", max_episode_steps=3)
    env.reset(seed=0, options={"scene": Scene((0,), ((3, 3),), (0, 0)), "goal": goal_caption("red", "square")})
    assert env.step(UP)[4]["agent_pos"] == (0, 0)
    assert env.step(LEFT)[4]["agent_pos"] == (0, 0)
    assert env.step(NOOP)[3] is True


def test_reset_options_reject_a_goal_not_in_the_scene():
    env = _env()
    with pytest.raises(ValueError, match="not in the scene"):
        env.reset(options={"scene": Scene((0,), ((3, 3),), (0, 0)), "goal": goal_caption("blue", "circle")})
    with pytest.raises(ValueError, match="unknown goal"):
        env.reset(options={"scene": Scene((0,), ((3, 3),), (0, 0)), "goal": "the agent is on the moon"})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(7)


def test_symbolic_observation_encodes_agent_objects_and_goal():
    env = _env(num_colours=4, num_shapes=3)
    scene = Scene((0, 4), ((1, 0), (2, 3)), (5, 5))  # red square, green circle
    obs, _ = env.reset(options={"scene": scene, "goal": goal_caption("green", "circle")})
    cells = obs[: 36 * 8].reshape(6, 6, 8)
    assert cells[5, 5, 0] == 1 and cells[..., 0].sum() == 1  # agent
    assert cells[0, 1, 1] == 1 and cells[0, 1, 5] == 1  # red, square
    assert cells[3, 2, 2] == 1 and cells[3, 2, 6] == 1  # green, circle
    assert list(obs[36 * 8 :]) == [0, 1, 0, 0, 0, 1, 0]  # goal: green, circle


def test_objects_observation_points_at_the_goal_first():
    env = _env(num_colours=4, num_shapes=3, num_objects=4, observation="objects")
    scene = Scene((0, 4, 1), ((1, 0), (2, 3), (5, 0)), (5, 5))  # red square, green circle, red circle
    obs, _ = env.reset(options={"scene": scene, "goal": goal_caption("green", "circle")})
    assert obs.shape == env.observation_space.shape == (4 * 4 + 7,) and env.observation_space.contains(obs)
    slots = obs[:16].reshape(4, 4)
    assert slots[0] == pytest.approx([(2 - 5) / 5, (3 - 5) / 5, 1, 1])  # the goal: offset, same colour, same shape
    assert slots[1] == pytest.approx([(1 - 5) / 5, (0 - 5) / 5, 0, 0])  # red square: neither
    assert slots[2] == pytest.approx([0, (0 - 5) / 5, 0, 1])  # red circle: a near miss (same shape)
    assert slots[3].tolist() == [0, 0, 0, 0]  # this scene holds 3 objects of the 4 the space has room for
    assert list(obs[16:]) == [0, 1, 0, 0, 0, 1, 0]
    assert env.step(LEFT)[0][0] == pytest.approx((2 - 4) / 5)  # offsets follow the agent


def test_reached_stays_true_after_leaving_the_goal():
    env = _env(reward="external", max_episode_steps=100)
    env.reset(seed=0, options={"scene": Scene((0,), ((1, 0),), (0, 0)), "goal": goal_caption("red", "square")})
    info = env.step(RIGHT)[4]
    assert info["success"] and info["reached"]
    info = env.step(RIGHT)[4]
    assert not info["success"] and info["reached"]
    assert not env.reset(seed=1)[1]["reached"]


def test_info_frame_matches_render():
    env = _env(info_frame=True)
    _, info = env.reset(seed=0)
    assert np.array_equal(info["frame"], env.render())


def test_caption_pairs_are_consistent_with_the_scene():
    frames, captions = caption_pairs(200, seed=0)
    assert frames.shape == (200, 48, 48, 3) and frames.dtype == np.uint8
    world = World(LanguageGoalOptions())
    assert set(captions) <= set(world.captions)
    on_object = np.mean([c != FLOOR_CAPTION for c in captions])
    assert 0.45 < on_object < 0.75
    again, again_captions = caption_pairs(200, seed=0)
    assert np.array_equal(frames, again) and captions == again_captions  # seeded


def test_success_triples_are_balanced_and_correct():
    frames, goals, success = success_triples(400, seed=1)
    assert frames.shape[0] == len(goals) == success.shape[0] == 400
    assert 0.4 < success.mean() < 0.6
    # Re-derive the ground truth from pixels (exact colours: no jitter or noise): a success frame shows the
    # goal's colour around the agent.
    plain = LanguageGoalOptions(colour_jitter=0, floor_noise=0, sprite_shift=0)
    frames, goals, success = success_triples(400, seed=1, options=plain)
    world = World(plain)
    for frame, goal, ok in zip(frames[:50], goals[:50], success[:50]):
        assert goal in world.goals
        ys, xs = np.nonzero((frame == 255).all(-1))  # the agent's white core
        cy, cx = ys.min() // 8, xs.min() // 8
        cell = frame[cy * 8 : cy * 8 + 8, cx * 8 : cx * 8 + 8].reshape(-1, 3)
        colour = goal.split()[-2]
        shows_goal_colour = bool((cell == np.array(COLOURS[colour])).all(-1).any())
        if ok:
            assert shows_goal_colour


def test_fast_enough_for_rl_on_two_cores():
    from armillary.envs.gridworld import measure_steps_per_second

    assert measure_steps_per_second(_env(), num_steps=5_000) > 10_000
    assert measure_steps_per_second(_env(observation="pixels"), num_steps=5_000) > 5_000


def test_looks_vary_per_scene_but_are_fixed_within_an_episode():
    env = _env(observation="pixels", reward="external")
    first, _ = env.reset(seed=0)
    env.step(NOOP)
    assert np.array_equal(env.render(), first["frame"])  # noise drawn once per scene, not per step
    second, _ = env.reset(seed=1)
    floor = (first["frame"] != second["frame"]).any(-1).mean()
    assert floor > 0.5  # the floor noise differs between scenes
    plain = World(LanguageGoalOptions(colour_jitter=0, floor_noise=0, sprite_shift=0))
    frame = plain.render(Scene((0,), ((3, 3),), (0, 0), style=5))
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) == 4  # floor, red, agent rim, agent core


def test_jittered_objects_stay_inside_their_cell():
    world = World(LanguageGoalOptions(colour_jitter=0, floor_noise=0))
    for style in range(30):
        frame = world.render_background(Scene((0,), ((2, 2),), (0, 0), style=style))
        coloured = np.argwhere((frame != np.array((70, 70, 70))).any(-1))
        assert coloured.min() >= 16 and coloured.max() < 24


@pytest.mark.parametrize("options", [{}, {"observation": "pixels"}, {"observation": "objects"},
                                     {"reward": "external", "info_frame": True},
                                     registry.get("language-goals").smoke])
def test_passes_gymnasiums_checker(options):
    from gymnasium.utils.env_checker import check_env

    check_env(registry.make("language-goals", options), skip_render_check=True)
