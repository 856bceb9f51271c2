"""A room with several equally rewarding goals: the small world for DOMiNO (diverse near-optimal policies).

`multi-goal-room`: an open square room of size x size free cells (default 7, odd), the fixed start in its
centre and one goal in each corner, all at the same shortest distance (size − 1 steps). Reaching a goal gives
its reward (default 1 each) and terminates the episode (on_goal='terminate'), or sends the agent back to the
start (on_goal='respawn': a continuing task of fixed length, as the average-reward setting of DOMiNO assumes:
a per-step bonus cannot then be farmed by avoiding the goal). Episodes truncate at max_episode_steps.
Each goal has many equally short routes (every monotone path to its corner), so the optimal policies form
a large set; a policy that wanders is worse in average reward per step. `goal_rewards` makes goals unequal.

Perturbations (DOMiNO's robustness experiment, algorithms/domino/robustness.py): `walls` adds wall cells inside the
room (a blocked route: the agent cannot enter them), `goal_positions` moves the goals off the corners, and a
goal reward of 0 removes a goal. Cells are (x, y) with 1 ≤ x, y ≤ size (0 and size + 1 are the outer walls).

Actions: 0 no-op, 1 up, 2 right, 3 down, 4 left (as armillary.envs.gridworld); walls block.
Observations (float32): 'onehot' cell index (size², default) or 'xy' in [0, 1]².
Features φ(s) for successor features: info["features"] is the agent's (x, y) normalised to [0, 1] (2 numbers),
on reset and after every step, whatever the observation; info also has "pos", "cell" and "goal" (index of the
goal reached, −1 if none).

Speed: see measure_steps_per_second in armillary.envs.gridworld (tests/test_envs.py runs it on this env too).
"""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np
from pydantic import Field, model_validator

from armillary.envs.gridworld import _WALL_RGB, ACTION_NAMES, GridMap, _paint_cell, _paint_map, open_room_map
from armillary.core.entries import EnvEntry, EnvOptions
from armillary.envs.registry import register

_GOAL_RGB = (60, 180, 75)
_AGENT_RGB = (230, 25, 75)
_START_RGB = (190, 210, 240)


class MultiGoalOptions(EnvOptions):
    size: int = Field(7, ge=3, le=31, description="Free cells per side of the square room (odd: the start is the centre).")
    max_episode_steps: int = Field(20, gt=0, description="Episodes truncate after this many steps.")
    observation: Literal["onehot", "xy"] = Field("onehot", description="One-hot cell index, or normalised (x, y).")
    on_goal: Literal["terminate", "respawn"] = Field(
        "terminate", description="Reaching a goal ends the episode, or puts the agent back on the start cell."
    )
    goal_rewards: list[float] = Field(
        default_factory=lambda: [1.0, 1.0, 1.0, 1.0], min_length=4, max_length=4,
        description="Reward of the goal in each corner: top-left, top-right, bottom-left, bottom-right.",
    )

    walls: list[tuple[int, int]] = Field(
        default_factory=list, description="Extra wall cells (x, y) inside the room, 1 ≤ x, y ≤ size: they cannot be entered.",
    )
    goal_positions: list[tuple[int, int]] | None = Field(
        None, min_length=4, max_length=4,
        description="Cells (x, y) of the four goals, in the order of goal_rewards (default: the corners).",
    )

    @model_validator(mode="after")
    def _valid_layout(self):
        if self.size % 2 == 0:
            raise ValueError(f"size must be odd so that the start is the centre cell, got {self.size}")
        centre = (self.size + 1) // 2
        for name, cells in (("walls", self.walls), ("goal_positions", self.goal_positions or [])):
            for x, y in cells:
                if not (1 <= x <= self.size and 1 <= y <= self.size):
                    raise ValueError(f"{name}: cell {(x, y)} is outside the room, expected 1 ≤ x, y ≤ {self.size}")
                if (x, y) == (centre, centre):
                    raise ValueError(f"{name}: cell {(x, y)} is the start cell")
        goals = self.goal_positions or [(1, 1), (self.size, 1), (1, self.size), (self.size, self.size)]
        if len(set(goals)) != len(goals):
            raise ValueError(f"goal_positions must be four different cells, got {goals}")
        if set(goals) & set(self.walls):
            raise ValueError(f"walls: the goal cells {sorted(set(goals) & set(self.walls))} cannot be walls "
                             "(move the goal with goal_positions, or remove it with a goal reward of 0)")
        return self


class MultiGoalRoomEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, options: MultiGoalOptions, render_mode: str | None = "rgb_array"):
        self.options = options
        self.render_mode = render_mode
        # The open room numbers the cells, so observations keep their meaning (and width) when walls are added:
        # an added wall stays a cell index that the agent can no longer enter.
        self.grid: GridMap = open_room_map(options.size)
        self.max_episode_steps = options.max_episode_steps
        low, high = 1, options.size
        corners = ((low, low), (high, low), (low, high), (high, high))
        goals = [tuple(cell) for cell in options.goal_positions] if options.goal_positions else corners
        self.goal_cells = tuple(self.grid.cell_index(pos) for pos in goals)
        self._goal_reward = {cell: float(r) for cell, r in zip(self.goal_cells, options.goal_rewards)}
        self._goal_index = {cell: i for i, cell in enumerate(self.goal_cells)}
        self._start_cell = self.grid.cell_index(self.grid.default_start)
        self._next_cell = self.grid.transition_table()
        self.wall_cells = frozenset(self.grid.cell_index(tuple(pos)) for pos in options.walls)
        for row in self._next_cell:
            for action, target in enumerate(row):
                if target in self.wall_cells:
                    row[action] = row[0]  # blocked: stay put (action 0 is the no-op)
        xy = np.array(self.grid.free_cells, dtype=np.float32) - 1.0
        self._features = xy / float(options.size - 1)  # (x, y) of each cell in [0, 1]
        self._cell_obs = np.eye(self.grid.num_cells, dtype=np.float32) if options.observation == "onehot" else self._features
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(self._cell_obs.shape[1],), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(len(ACTION_NAMES))
        self.feature_dim = 2
        self._cell = self._start_cell
        self._steps = 0
        self._background: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._cell = self._start_cell
        self._steps = 0
        return self._cell_obs[self._cell].copy(), self._info(goal=-1)

    def step(self, action):
        if not 0 <= action < len(ACTION_NAMES):
            raise ValueError(f"action must be in 0..{len(ACTION_NAMES) - 1}, got {action!r}")
        self._cell = self._next_cell[self._cell][action]
        self._steps += 1
        goal = self._goal_index.get(self._cell, -1)
        reward = self._goal_reward[self._cell] if goal >= 0 else 0.0
        terminated = goal >= 0 and self.options.on_goal == "terminate"
        if goal >= 0 and not terminated:
            self._cell = self._start_cell  # respawn: the observation after the step is the start
        truncated = not terminated and self._steps >= self.max_episode_steps
        return self._cell_obs[self._cell].copy(), reward, terminated, truncated, self._info(goal)

    def render(self) -> np.ndarray:
        if self._background is None:
            self._background = _paint_map(self.grid)
            _paint_cell(self._background, self.grid.free_cells[self._start_cell], _START_RGB, margin=0)
            for cell in self.wall_cells:
                _paint_cell(self._background, self.grid.free_cells[cell], _WALL_RGB, margin=0)
            for cell in self.goal_cells:
                _paint_cell(self._background, self.grid.free_cells[cell], _GOAL_RGB, margin=1)
        frame = self._background.copy()
        _paint_cell(frame, self.grid.free_cells[self._cell], _AGENT_RGB, margin=2)
        return frame

    def _info(self, goal: int) -> dict[str, Any]:
        return {
            "pos": self.grid.free_cells[self._cell],
            "cell": self._cell,
            "goal": goal,
            "features": self._features[self._cell].copy(),
        }


register(
    EnvEntry(
        name="multi-goal-room",
        options=MultiGoalOptions,
        make=lambda options: MultiGoalRoomEnv(options),
        description="Open room (default 7x7), start in the centre, a goal of reward 1 in each corner: many equally "
        "good routes (DOMiNO). φ(s) = normalised (x, y) in info['features'].",
        family="grid",
        smoke={"size": 5, "max_episode_steps": 12},
    )
)
