"""DOMiNO's robustness experiment: the room's perturbations (added walls, moved or removed goals) and the best-member
selection, on scripted policies. No Ray, fast."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from armillary.algorithms.domino import robustness
from armillary.algorithms.domino.robustness import Perturbation, PerturbationKind
from armillary.envs import registry
from armillary.envs.gridworld import DOWN, LEFT, NOOP, RIGHT, UP

ROOM = {"size": 7, "max_episode_steps": 30, "observation": "onehot", "on_goal": "respawn"}
DOMINO_ENV = {"env": "multi-goal-room", "options": ROOM, "num_policies": 4, "features": "features"}
CORNERS = [(1, 1), (7, 1), (1, 7), (7, 7)]


def shortest_steps(env, target: tuple[int, int]) -> int:
    """Fewest steps from the start to `target` through the env's own transition table (so added walls count)."""
    room = env.unwrapped
    start, goal = room._start_cell, room.grid.cell_index(target)
    seen, queue = {start: 0}, deque([start])
    while queue:
        cell = queue.popleft()
        for nxt in room._next_cell[cell]:
            if nxt not in seen:
                seen[nxt] = seen[cell] + 1
                queue.append(nxt)
    return seen.get(goal, -1)


def test_a_wall_cell_cannot_be_entered_from_any_side_and_the_observation_keeps_its_width():
    open_room = registry.make("multi-goal-room", ROOM)
    walled = registry.make("multi-goal-room", {**ROOM, "walls": [(3, 4)]})
    assert walled.observation_space == open_room.observation_space  # a trained policy reads the same one-hot
    wall = walled.unwrapped.grid.cell_index((3, 4))
    _, info = walled.reset(seed=0)
    assert info["pos"] == (4, 4)
    _, _, _, _, info = walled.step(LEFT)  # from the start straight into the wall: stays put
    assert info["pos"] == (4, 4)
    for neighbour, into in (((2, 4), RIGHT), ((3, 3), DOWN), ((3, 5), UP), ((4, 4), LEFT)):
        cell = walled.unwrapped.grid.cell_index(neighbour)
        assert walled.unwrapped._next_cell[cell][into] == cell, neighbour
    assert all(wall not in row for cell, row in enumerate(walled.unwrapped._next_cell) if cell != wall)
    # The open room does enter it.
    open_room.reset(seed=0)
    assert open_room.step(LEFT)[4]["pos"] == (3, 4)


def test_a_moved_goal_pays_where_it_now_is_and_not_at_the_old_corner():
    env = registry.make("multi-goal-room", {**ROOM, "goal_positions": [(4, 2), (7, 1), (1, 7), (7, 7)]})
    env.reset(seed=0)
    env.step(UP)
    _, reward, _, _, info = env.step(UP)
    assert reward == 1.0 and info["goal"] == 0 and info["pos"] == (4, 4)  # respawned
    for _ in range(3):
        env.step(LEFT)  # left to (1, 4), then up to the old corner (1, 1)
    rewards = [env.step(UP)[1] for _ in range(3)]
    assert env.unwrapped.grid.free_cells[env.unwrapped._cell] == (1, 1) and rewards == [0.0, 0.0, 0.0]


def test_bad_perturbation_options_name_the_field():
    with pytest.raises(ValidationError, match="walls"):
        registry.make("multi-goal-room", {**ROOM, "walls": [(0, 3)]})  # the outer wall
    with pytest.raises(ValidationError, match="walls"):
        registry.make("multi-goal-room", {**ROOM, "walls": [(1, 1)]})  # a goal
    with pytest.raises(ValidationError, match="walls"):
        registry.make("multi-goal-room", {**ROOM, "walls": [(4, 4)]})  # the start
    with pytest.raises(ValidationError, match="goal_positions"):
        registry.make("multi-goal-room", {**ROOM, "goal_positions": [(2, 2), (2, 2), (1, 7), (7, 7)]})


@pytest.mark.parametrize("corner", range(4))
def test_a_walled_corner_costs_a_detour_of_two_steps_and_leaves_the_other_corners_at_six(corner):
    options = Perturbation(PerturbationKind.CORNER_WALLED, corner).apply(ROOM)
    env = registry.make("multi-goal-room", options)
    distances = [shortest_steps(env, c) for c in CORNERS]
    assert distances[corner] == 8
    assert [d for k, d in enumerate(distances) if k != corner] == [6, 6, 6]
    assert len(options["walls"]) == 4 and ROOM.get("walls") is None  # the base options are not modified


def test_a_removed_goal_pays_nothing_and_the_others_still_pay():
    env = registry.make("multi-goal-room", Perturbation(PerturbationKind.GOAL_REMOVED, 0).apply(ROOM))
    env.reset(seed=0)
    rewards = [env.step(a)[1] for a in (UP, LEFT) * 3]
    assert rewards[-1] == 0.0 and env.unwrapped.grid.free_cells[env.unwrapped._cell] == (4, 4)  # the goal still respawns
    rewards = [env.step(a)[1] for a in (UP, RIGHT) * 3]
    assert rewards[-1] == 1.0


def corner_seekers(size: int = 7):
    """A hand-built set: member i walks to corner i, vertical moves first, then horizontal."""
    cells = registry.make("multi-goal-room", ROOM).unwrapped.grid.free_cells

    def act(obs: torch.Tensor) -> torch.Tensor:
        x, y = cells[int(obs[0, : size * size].argmax())]
        policy = int(obs[0, -4:].argmax())
        tx, ty = CORNERS[policy]
        if y != ty:
            return torch.tensor([UP if ty < y else DOWN])
        if x != tx:
            return torch.tensor([LEFT if tx < x else RIGHT])
        return torch.tensor([NOOP])

    return act


def test_the_best_member_is_one_that_reaches_an_open_goal_after_policy_0s_goal_is_cut_off():
    perturbations = [Perturbation(PerturbationKind.CORNER_WALLED, 0), Perturbation(PerturbationKind.GOAL_REMOVED, 0),
                     Perturbation(PerturbationKind.CORNER_WALLED, 3)]
    results = robustness.evaluate_set(DOMINO_ENV, corner_seekers(), perturbations, selection_episodes=1,
                                      evaluation_episodes=2, seed=0)
    unperturbed, walled0, removed0, walled3 = results
    assert unperturbed.world == "none" and unperturbed.evaluation == [5.0] * 4  # 6 steps a goal, 30 steps
    assert unperturbed.chosen == 0 and unperturbed.best_return == unperturbed.policy0_return  # ties: policy 0
    for cut_off in (walled0, removed0):
        assert cut_off.policy0_return == 0.0  # stuck at the wall, or arriving where nothing pays
        assert cut_off.chosen != 0 and cut_off.best_return == 5.0
        assert robustness.fraction_kept(cut_off.best_return, unperturbed.policy0_return) == 1.0
    # Member 3 walks down, then right into its wall (x = 6) and stays; the set keeps policy 0.
    assert walled3.evaluation[3] == 0.0 and walled3.chosen == 0


def test_selection_and_evaluation_use_disjoint_episode_seeds(monkeypatch):
    seen = []

    def record(env_config, act, episodes, seed):
        seen.append((env_config["options"].get("goal_rewards"), episodes, seed))
        return np.zeros(4)

    monkeypatch.setattr(robustness, "member_returns", record)
    robustness.evaluate_set(DOMINO_ENV, corner_seekers(), [Perturbation(PerturbationKind.GOAL_REMOVED, 2)],
                            selection_episodes=10, evaluation_episodes=50, seed=3)
    (_, n_sel, s_sel), (_, n_eval, s_eval) = seen[:2]
    assert (n_sel, n_eval) == (10, 50)
    # rollout_policies seeds episode e of policy i with seed + 1000 i + e: the two ranges must not meet.
    selection_seeds = {s_sel + 1000 * i + e for i in range(4) for e in range(n_sel)}
    evaluation_seeds = {s_eval + 1000 * i + e for i in range(4) for e in range(n_eval)}
    assert not selection_seeds & evaluation_seeds
    assert seen[2][0] == [1.0, 1.0, 0.0, 1.0] and seen[0][0] is None  # the perturbed world, then the base one


def test_bad_selection_inputs():
    with pytest.raises(ValueError, match="one return per member"):
        robustness.best_member([])
    with pytest.raises(ValueError, match="positive"):
        robustness.fraction_kept(1.0, 0.0)
    assert robustness.best_member([0.2, 0.9, 0.9, 0.1]) == 1
