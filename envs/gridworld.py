"""Fast gridworlds for skill discovery (DISDAIN, RVIC) and goal reaching: pure numpy and Python ints, no Ray.

Registered maps:
  four-rooms-small  the small Four Rooms of the DISDAIN authors' notebook: 24 free cells, skill length T = 8,
                    fixed start. The map is ours (we do not have their exact layout), drawn so that, as in
                    their experiment, exactly 23 cells lie within 8 steps of the start: 23 effective skills
                    is the maximum possible.
  four-rooms        Sutton, Precup & Singh (1999): 11x11 interior, 104 free cells, fixed start, T = 20 (the
                    farthest cell is exactly 20 steps away).
  open-room         an empty square room (size x size free cells, default 9), random starts, because
                    RVIC reduces to VIC when every skill starts from the same state.

Actions: 0 no-op, 1 up, 2 right, 3 down, 4 left. A move into a wall leaves the agent where it is.

Coordinates: x is the column, y the row, (0, 0) the top-left corner of the map *including* its outer wall
(so `grid.walls[y, x]`). The cell index numbers the free cells in row-major order, 0 .. num_cells - 1.

Observations (float32):
  onehot  one-hot of the cell index, shape (num_cells,)
  xy      (x / (W - 1), y / (H - 1)), in [0, 1], shape (2,)
When the goal is drawn at random each episode the agent must be told which goal it is after, so the goal's
encoding is appended (the shape doubles); `observe_goal` overrides that choice.

Rewards: these are reward-free skill-discovery worlds (reward 0, episodes only truncate, at
max_episode_steps = T, since the skill algorithms reward the final state themselves). With a `goal`, reaching
it gives reward 1 and terminates the episode.

info (on reset and after every step): "pos" (x, y) ints, "cell" int, "start_pos" (x, y); "goal_pos" when a
goal is set. Skill evaluation reads end states and displacements (pos - start_pos) from these.

Per-episode overrides: reset(options={"start_pos": (x, y), "goal_pos": (x, y)}) starts an episode from a
given cell (e.g. to evaluate skills from every start), or with a given goal.

Speed (measure_steps_per_second below: random actions, resets included, one core of the 2-core dev machine):
~1.1M steps/s for four-rooms-small with one-hot observations, ~1.3M four-rooms, ~0.76M open-room (a random
start every 5 steps), ~0.6M with a random goal; about a third of that while the machine is busy.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from pydantic import Field

from armillary.core.entries import EnvEntry, EnvOptions
from armillary.envs.registry import register

Position = tuple[int, int]

NOOP, UP, RIGHT, DOWN, LEFT = range(5)
ACTION_NAMES = ("noop", "up", "right", "down", "left")
_ACTION_DELTAS = ((0, 0), (0, -1), (1, 0), (0, 1), (-1, 0))  # (dx, dy), indexed by action

# '#' wall, ' ' free, 'S' free and the fixed start. Four rooms joined by four one-cell doorways:
# top-left 3x2 (6 cells), top-right 2x2 (4), bottom-right 3x2 (6), bottom-left 2x2 (4), plus 4 doorways = 24.
# The horizontal walls sit at different heights on the two sides, as in the classic map.
FOUR_ROOMS_SMALL_MAP = """\
#######
#S #  #
#     #
#  ## #
## #  #
#     #
#  #  #
#######"""

# Sutton, Precup & Singh (1999), Figure 2: 13x13 with the outer wall, doorways at the classic places.
FOUR_ROOMS_MAP = """\
#############
#S    #     #
#     #     #
#           #
#     #     #
#     #     #
## ####     #
#     ### ###
#     #     #
#     #     #
#           #
#     #     #
#############"""

PIXELS_PER_CELL = 8
_WALL_RGB = (40, 40, 40)
_FLOOR_RGB = (235, 235, 235)
_START_RGB = (190, 210, 240)
_GOAL_RGB = (60, 180, 75)
_AGENT_RGB = (230, 25, 75)


class GridMap:
    """A static map: walls, the free cells and their indices, the default start."""

    def __init__(self, walls: np.ndarray, default_start: Position):
        self.walls = walls.astype(bool)
        self.height, self.width = self.walls.shape
        ys, xs = np.nonzero(~self.walls)  # row-major order, which defines the cell index
        self.free_cells: tuple[Position, ...] = tuple((int(x), int(y)) for x, y in zip(xs, ys))
        self._index = {pos: i for i, pos in enumerate(self.free_cells)}
        if default_start not in self._index:
            raise ValueError(f"default start {default_start} is not a free cell")
        self.default_start = default_start

    @classmethod
    def from_ascii(cls, text: str) -> GridMap:
        rows = text.splitlines()
        if len({len(row) for row in rows}) != 1:
            raise ValueError("every row of a map must have the same length")
        walls = np.array([[char == "#" for char in row] for row in rows])
        starts = [(x, y) for y, row in enumerate(rows) for x, char in enumerate(row) if char == "S"]
        if len(starts) != 1:
            raise ValueError(f"a map needs exactly one 'S' (the fixed start), found {len(starts)}")
        return cls(walls, starts[0])

    @property
    def num_cells(self) -> int:
        return len(self.free_cells)

    def is_free(self, pos: Position) -> bool:
        return tuple(pos) in self._index

    def cell_index(self, pos: Position) -> int:
        try:
            return self._index[tuple(pos)]
        except KeyError:
            raise ValueError(f"{tuple(pos)} is not a free cell of this {self.width}x{self.height} map") from None

    def cell_index_grid(self) -> np.ndarray:
        """int [H, W]: the cell index of each free cell, -1 on walls."""
        grid = np.full(self.walls.shape, -1, dtype=np.int64)
        for i, (x, y) in enumerate(self.free_cells):
            grid[y, x] = i
        return grid

    def distances_from(self, pos: Position) -> np.ndarray:
        """int [H, W]: fewest steps from `pos` to each cell (breadth-first), -1 on walls and unreachable cells.

        A skill of length T (with the no-op) can end exactly in the cells at distance <= T, so this bounds the
        number of distinguishable skills.
        """
        distance = np.full(self.walls.shape, -1, dtype=np.int64)
        distance[pos[1], pos[0]] = 0
        frontier = deque([tuple(pos)])
        while frontier:
            x, y = frontier.popleft()
            for dx, dy in _ACTION_DELTAS[1:]:
                nx, ny = x + dx, y + dy
                if not self.walls[ny, nx] and distance[ny, nx] < 0:
                    distance[ny, nx] = distance[y, x] + 1
                    frontier.append((nx, ny))
        return distance

    def transition_table(self) -> list[list[int]]:
        """next_cell[cell][action], as plain Python ints: a list lookup is the whole of a step."""
        table = []
        for x, y in self.free_cells:
            row = []
            for dx, dy in _ACTION_DELTAS:
                target = (x + dx, y + dy)
                row.append(self._index.get(target, self._index[(x, y)]))  # walls block: stay put
            table.append(row)
        return table


def open_room_map(size: int) -> GridMap:
    """size x size free cells inside an outer wall; the fixed start is the centre."""
    walls = np.ones((size + 2, size + 2), dtype=bool)
    walls[1:-1, 1:-1] = False
    centre = 1 + size // 2
    return GridMap(walls, (centre, centre))


FOUR_ROOMS_SMALL = GridMap.from_ascii(FOUR_ROOMS_SMALL_MAP)
FOUR_ROOMS = GridMap.from_ascii(FOUR_ROOMS_MAP)


class GridOptions(EnvOptions):
    max_episode_steps: int = Field(8, gt=0, description="Skill length T: episodes truncate after this many steps.")
    start: Literal["fixed", "random"] | Position = Field(
        "fixed", description="'fixed': the map's start cell; 'random': uniform over free cells; or an (x, y) cell."
    )
    observation: Literal["onehot", "xy"] = Field("onehot", description="One-hot cell index, or normalised (x, y).")
    goal: Literal["none", "random"] | Position = Field(
        "none", description="'none': reward-free; 'random': a new goal cell each episode; or a fixed (x, y) goal."
    )
    observe_goal: bool | None = Field(
        None, description="Append the goal's encoding to the observation (default: only when goal='random')."
    )


class FourRoomsSmallOptions(GridOptions):
    pass  # the paper's defaults: T = 8, fixed start


class FourRoomsOptions(GridOptions):
    # Our choice, not a paper figure: the farthest cell is exactly 20 steps from the start, so any cell can end a skill.
    max_episode_steps: int = Field(20, gt=0, description="Skill length T: episodes truncate after this many steps.")


class OpenRoomOptions(GridOptions):
    size: int = Field(9, ge=2, le=64, description="Free cells per side of the square room.")
    max_episode_steps: int = Field(5, gt=0, description="Skill length T (the RVIC notes use 4-6).")
    start: Literal["fixed", "random"] | Position = Field(
        "random", description="'random' by default: RVIC needs varying start states."
    )


class GridWorldEnv(gym.Env):
    """A gridworld on a `GridMap`; see the module docstring for actions, observations, rewards and info."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, grid: GridMap, options: GridOptions, render_mode: str | None = "rgb_array"):
        self.grid = grid
        self.options = options
        self.render_mode = render_mode
        self.max_episode_steps = options.max_episode_steps

        self._fixed_start = None if options.start == "random" else self._resolve_start(options.start)
        self._fixed_goal = None if options.goal in ("none", "random") else grid.cell_index(options.goal)
        self.has_goal = options.goal != "none"
        if self._fixed_goal is not None and self._fixed_goal == self._fixed_start:
            raise ValueError(f"the goal {options.goal} is the fixed start: the episode would be over before it began")
        self._observe_goal = options.goal == "random" if options.observe_goal is None else options.observe_goal
        if self._observe_goal and not self.has_goal:
            raise ValueError("observe_goal=True needs a goal")

        self._next_cell = grid.transition_table()
        self._cell_obs = _encode_cells(grid, options.observation)
        obs_size = self._cell_obs.shape[1] * (2 if self._observe_goal else 1)
        self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(obs_size,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(len(ACTION_NAMES))

        self._cell = self._start_cell = 0
        self._goal_cell = -1  # -1 never equals a cell index: no goal
        self._steps = 0
        self._background: np.ndarray | None = None

    def _resolve_start(self, start) -> int:
        return self.grid.cell_index(self.grid.default_start if start == "fixed" else start)

    # --- gymnasium API -------------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        start = self._requested_or_fixed_start(options.get("start_pos"))
        self._goal_cell = self._choose_goal(options.get("goal_pos"), avoid=start)
        self._start_cell = self._draw_cell(avoid=self._goal_cell) if start is None else start
        if self._start_cell == self._goal_cell:
            start_pos = self.grid.free_cells[self._start_cell]
            raise ValueError(f"the start {start_pos} is the goal: the episode would be over before it began")
        self._cell = self._start_cell
        self._steps = 0
        return self._observation(), self._info()

    def step(self, action):
        if not 0 <= action < 5:  # a negative index would silently wrap around in the table lookup
            raise ValueError(f"action must be in 0..4, got {action!r}")
        self._cell = self._next_cell[self._cell][action]
        self._steps += 1
        terminated = self._cell == self._goal_cell
        truncated = not terminated and self._steps >= self.max_episode_steps
        return self._observation(), 1.0 if terminated else 0.0, terminated, truncated, self._info()

    def render(self) -> np.ndarray:
        """RGB uint8 [H * 8, W * 8, 3]: walls dark, start tinted blue, goal green, agent red."""
        if self._background is None:
            self._background = _paint_map(self.grid)
        frame = self._background.copy()
        _paint_cell(frame, self.grid.free_cells[self._start_cell], _START_RGB, margin=0)
        if self._goal_cell >= 0:
            _paint_cell(frame, self.grid.free_cells[self._goal_cell], _GOAL_RGB, margin=1)
        _paint_cell(frame, self.grid.free_cells[self._cell], _AGENT_RGB, margin=2)
        return frame

    # --- helpers -------------------------------------------------------------------------------------------

    def _requested_or_fixed_start(self, requested: Position | None) -> int | None:
        if requested is not None:
            return self.grid.cell_index(requested)
        return self._fixed_start  # None: drawn at random once the goal is known

    def _choose_goal(self, requested: Position | None, avoid: int | None) -> int:
        if requested is not None:
            if not self.has_goal:
                raise ValueError("goal_pos given to reset() but the environment was built with goal='none'")
            return self.grid.cell_index(requested)
        if self._fixed_goal is not None:
            return self._fixed_goal
        if self.has_goal:
            return self._draw_cell(avoid=-1 if avoid is None else avoid)
        return -1

    def _draw_cell(self, avoid: int) -> int:
        """A uniform draw over the free cells other than `avoid` (-1: none), so start and goal never coincide."""
        num_choices = self.grid.num_cells - (avoid >= 0)
        cell = int(self.np_random.integers(num_choices))
        return cell + 1 if 0 <= avoid <= cell else cell

    def _observation(self) -> np.ndarray:
        if self._observe_goal:
            return np.concatenate((self._cell_obs[self._cell], self._cell_obs[self._goal_cell]))
        return self._cell_obs[self._cell].copy()  # a copy, so a caller writing into it cannot corrupt the table

    def _info(self) -> dict[str, Any]:
        info = {
            "pos": self.grid.free_cells[self._cell],
            "cell": self._cell,
            "start_pos": self.grid.free_cells[self._start_cell],
        }
        if self._goal_cell >= 0:
            info["goal_pos"] = self.grid.free_cells[self._goal_cell]
        return info

    @property
    def agent_pos(self) -> Position:
        return self.grid.free_cells[self._cell]


def _encode_cells(grid: GridMap, observation: str) -> np.ndarray:
    """float32 [num_cells, obs_size]: the observation of every cell, computed once."""
    if observation == "onehot":
        return np.eye(grid.num_cells, dtype=np.float32)
    xy = np.array(grid.free_cells, dtype=np.float32)
    return xy / np.array([grid.width - 1, grid.height - 1], dtype=np.float32)


def _paint_map(grid: GridMap) -> np.ndarray:
    colours = np.where(grid.walls[..., None], np.array(_WALL_RGB), np.array(_FLOOR_RGB)).astype(np.uint8)
    return np.repeat(np.repeat(colours, PIXELS_PER_CELL, axis=0), PIXELS_PER_CELL, axis=1)


def _paint_cell(frame: np.ndarray, pos: Position, rgb: tuple[int, int, int], margin: int) -> None:
    x, y = pos
    top, left = y * PIXELS_PER_CELL + margin, x * PIXELS_PER_CELL + margin
    frame[top : top + PIXELS_PER_CELL - 2 * margin, left : left + PIXELS_PER_CELL - 2 * margin] = rgb


def measure_steps_per_second(env: gym.Env, num_steps: int = 200_000, seed: int = 0) -> float:
    """Env steps per second under uniformly random actions, for any env (the Atari and DMC figures use it too).

    The actions are drawn beforehand, so only the env is timed; resets are included.
    """
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(num_steps)]
    env.reset(seed=seed)
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return num_steps / (time.perf_counter() - start)


def _goal_return(options) -> tuple[float, float]:
    return (0.0, 1.0)  # reward 1 on reaching the goal, which ends the episode; 0 everywhere else


register(
    EnvEntry(
        name="four-rooms-small",
        options=FourRoomsSmallOptions,
        make=lambda options: GridWorldEnv(FOUR_ROOMS_SMALL, options),
        description="DISDAIN's small Four Rooms: 24 free cells, 5 actions (no-op + 4 moves), fixed start, T = 8.",
        family="grid",
        return_range=_goal_return,
    )
)
register(
    EnvEntry(
        name="four-rooms",
        options=FourRoomsOptions,
        make=lambda options: GridWorldEnv(FOUR_ROOMS, options),
        description="Sutton, Precup & Singh's Four Rooms: 11x11 interior, 104 free cells, 5 actions, fixed start.",
        family="grid",
        return_range=_goal_return,
    )
)
register(
    EnvEntry(
        name="open-room",
        options=OpenRoomOptions,
        make=lambda options: GridWorldEnv(open_room_map(options.size), options),
        description="An empty square room (default 9x9 free cells) with random starts, for RVIC.",
        family="grid",
        return_range=_goal_return,
        smoke={"size": 5},
    )
)
