"""A rendered 2-D world with language goals, for vision-language-model rewards (PAPERS.md §6).

The world is a G x G grid (default 6 x 6) drawn at P pixels per cell (default 8), so frames are RGB uint8
[G*P, G*P, 3] (48 x 48). Each episode places `num_objects` (default 5) distinct objects — a colour (red,
green, blue, yellow, orange, purple) and a shape (square, circle, triangle, diamond): 24 kinds, 24 goals —
on distinct cells, and the agent (a small white square with a black rim, drawn over whatever it stands on,
leaving only the object's outline visible) on a free cell. The goal is one of the objects present, given as
text: "the agent is on the red square". Success is "the agent's cell holds the goal object".

Looks vary per scene, so that a detector has to read colour and shape rather than match exact pixels:
object colours are jittered (± `colour_jitter` per channel; orange sits between red and yellow), the floor
is noisy (± `floor_noise`), and sprites shift by up to `sprite_shift` pixels. They are drawn once per scene
from a fixed bank (64 floors x 1024 colour/shift draws), so steps only paste the agent onto a cached frame.

Actions: 0 no-op, 1 up, 2 right, 3 down, 4 left; moves off the grid leave the agent where it is. Objects do
not move: walking onto one is allowed (that is what the goals ask for).

Rewards (option `reward`):
  ground_truth  1 on success and the episode terminates — the oracle baseline.
  external      always 0 and success never terminates: the reward comes from outside (the VLM reward), so
                neither the reward nor the episode boundary tells the learner the ground truth. Episodes
                truncate at `max_episode_steps`.
Either way, info carries the ground truth for logging: "success" (bool: on the goal now), "reached" (bool: on
the goal at some step of this episode), "goal" (text), "goal_index",
"agent_pos" (x, y), "standing_on" (the caption of the agent's cell, e.g. "the agent is on the floor").
With `info_frame=True` the rendered frame is also in info["frame"], for a reward model when the policy's
observation is symbolic.

Observations (option `observation`):
  symbolic  float32 [G*G*(1 + colours + shapes) + colours + shapes]: per cell the agent flag and the
            one-hot colour and shape of the object there, then the goal's colour and shape one-hots.
  objects   float32 [num_objects*4 + colours + shapes]: per object its offset from the agent (dx, dy) / (G - 1)
            and whether its colour and its shape are the goal's (two flags), the goal object first and the
            others in the scene's order; then the goal's colour and shape one-hots. Egocentric and pointing at
            the goal, so the policy has nothing to learn but "walk there and stay" — which is what the reward
            model's RL experiment needs: it tests whether the *reward* teaches that, so the shuffled-goal
            control (same observation, reward about another object) shows what the reward alone contributes.
            (With per-object one-hot colours and shapes in scene order, PPO on the ground-truth reward stayed
            at "walk to any object" for 200k steps: matching colour AND shape across slots is slow for an MLP.)
  pixels    Dict(frame: uint8 [H, W, 3], goal: float32 one-hot over all `num_goals` goal texts).

Labelled data for training and evaluating reward models, from the same renderer: `caption_pairs` gives
(frame, caption) pairs and `success_triples` gives (frame, goal, success) triples.

Speed (`python -m armillary.envs.language_goals`: gridworld's measure_steps_per_second, random actions,
resets included, one thread on the 2-core dev machine while other jobs kept its load average near 11):
symbolic ~61k steps/s, pixels ~21k, symbolic + info_frame ~30k. An RLlib env runner does far fewer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from pydantic import Field, model_validator

from armillary.core.entries import EnvEntry, EnvOptions
from armillary.envs.registry import register

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 90, 230),
    "yellow": (235, 215, 40),
    "orange": (245, 130, 30),  # between red and yellow on purpose: close colours make the detector work
    "purple": (150, 60, 200),
}
SHAPES = ("square", "circle", "triangle", "diamond")
FLOOR_CAPTION = "the agent is on the floor"
_FLOOR_RGB = (70, 70, 70)
_AGENT_RIM_RGB = (0, 0, 0)
_AGENT_RGB = (255, 255, 255)

NOOP, UP, RIGHT, DOWN, LEFT = range(5)
_ACTION_DELTAS = ((0, 0), (0, -1), (1, 0), (0, 1), (-1, 0))  # (dx, dy)


def goal_caption(colour: str, shape: str) -> str:
    return f"the agent is on the {colour} {shape}"


class LanguageGoalOptions(EnvOptions):
    grid_size: int = Field(6, ge=2, le=16, description="G: cells per side.")
    cell_pixels: int = Field(8, ge=6, le=32, description="P: pixels per cell side; frames are G*P square.")
    num_colours: int = Field(
        6, ge=1, le=len(COLOURS), description="Colours in use: the first n of red, green, blue, yellow, orange, purple."
    )
    num_shapes: int = Field(4, ge=1, le=len(SHAPES), description="Shapes in use: the first n of square, circle, triangle, diamond.")
    num_objects: int = Field(5, ge=1, description="Distinct objects placed per episode.")
    colour_jitter: int = Field(
        40, ge=0, le=100, description="Each object's RGB is offset by up to ± this per channel, drawn per scene."
    )
    floor_noise: int = Field(16, ge=0, le=60, description="Per-pixel floor noise of up to ± this, drawn per scene.")
    sprite_shift: int = Field(
        1, ge=0, le=1, description="Objects are drawn shifted by up to ± this many pixels (within their one-pixel margin), per scene."
    )
    max_episode_steps: int = Field(20, gt=0, description="Episodes truncate after this many steps.")
    reward: Literal["ground_truth", "external"] = Field(
        "ground_truth", description="'ground_truth': 1 and terminate on success; 'external': 0, no termination."
    )
    observation: Literal["symbolic", "objects", "pixels"] = Field("symbolic", description="See the module docstring.")
    info_frame: bool = Field(False, description="Put the rendered frame in info['frame'] on reset and every step.")

    @model_validator(mode="after")
    def _fits(self):
        kinds = self.num_colours * self.num_shapes
        if self.num_objects > kinds:
            raise ValueError(f"num_objects={self.num_objects} exceeds the {kinds} distinct colour-shape objects")
        if self.num_objects >= self.grid_size**2:
            raise ValueError(f"num_objects={self.num_objects} leaves no free cell for the agent on a {self.grid_size}^2 grid")
        return self


@dataclass(frozen=True)
class Scene:
    """One layout: object kinds (indices into World.kinds) at cells (x, y), the agent's cell, and the seed of
    its looks (colour jitter, floor noise, sprite shifts)."""

    kinds: tuple[int, ...]
    cells: tuple[tuple[int, int], ...]
    agent: tuple[int, int]
    style: int = 0

    def kind_at(self, cell: tuple[int, int]) -> int:
        """The kind of the object on `cell`, -1 for the floor."""
        for kind, where in zip(self.kinds, self.cells):
            if where == cell:
                return kind
        return -1


class World:
    """The static part of the env: the vocabulary of goals, sprites, and a renderer of scenes (pure numpy)."""

    def __init__(self, options: LanguageGoalOptions):
        self.options = options
        self.size = options.grid_size
        self.pixels = options.cell_pixels
        self.frame_shape = (self.size * self.pixels, self.size * self.pixels, 3)
        self.colours = tuple(COLOURS)[: options.num_colours]
        self.shapes = SHAPES[: options.num_shapes]
        # kind k = colour_index * num_shapes + shape_index
        self.kinds = tuple((c, s) for c in self.colours for s in self.shapes)
        self.goals = tuple(goal_caption(c, s) for c, s in self.kinds)
        self._goal_index = {g: i for i, g in enumerate(self.goals)}
        self._sprites = [_sprite(shape, self.pixels) for _, shape in self.kinds]
        self._sprite_rgb = [np.array(COLOURS[c], dtype=np.uint8) for c, _ in self.kinds]
        self._agent_rim, self._agent_core = _agent_masks(self.pixels)
        self._looks = _LooksBank(options, self.frame_shape, np.stack(self._sprite_rgb))
        shift = options.sprite_shift
        # Every sprite at every shift, drawn once: np.roll per object per reset would cost more than an episode.
        self._shifted = {
            (kind, dx, dy): np.roll(self._sprites[kind], (dy, dx), axis=(0, 1))  # a one-pixel margin: no wrap
            for kind in range(len(self.kinds))
            for dx in range(-shift, shift + 1)
            for dy in range(-shift, shift + 1)
        }

    @property
    def num_goals(self) -> int:
        return len(self.goals)

    @property
    def captions(self) -> tuple[str, ...]:
        """Every caption a frame can have: the goals and the floor."""
        return (*self.goals, FLOOR_CAPTION)

    def vocabulary(self) -> list[str]:
        """The words of every caption, sorted: enough for a word-level tokenizer."""
        return sorted({word for caption in self.captions for word in caption.split()})

    def goal_index(self, goal: str) -> int:
        try:
            return self._goal_index[goal]
        except KeyError:
            raise ValueError(f"unknown goal {goal!r}; goals look like {self.goals[0]!r}") from None

    def caption(self, scene: Scene) -> str:
        kind = scene.kind_at(scene.agent)
        return FLOOR_CAPTION if kind < 0 else self.goals[kind]

    def sample_scene(self, rng: np.random.Generator, agent_on_object: bool | None = None) -> Scene:
        """Objects of distinct kinds on distinct cells; the agent on a free cell, or (if asked) on an object."""
        num_cells = self.size * self.size
        kinds = rng.permutation(len(self.kinds))[: self.options.num_objects]
        chosen = rng.permutation(num_cells)[: self.options.num_objects + 1]
        cells = tuple((int(c % self.size), int(c // self.size)) for c in chosen)
        objects, agent = cells[:-1], cells[-1]
        if agent_on_object:
            agent = objects[int(rng.integers(len(objects)))]
        return Scene(tuple(int(k) for k in kinds), objects, agent, style=int(rng.integers(2**31)))

    def render_background(self, scene: Scene) -> np.ndarray:
        """The floor and the objects (everything but the agent), with the scene's looks."""
        p = self.pixels
        frame, colours, shifts = self._looks.draw(scene.style, scene.kinds)
        for kind, (x, y), rgb, (dx, dy) in zip(scene.kinds, scene.cells, colours, shifts):
            frame[y * p : (y + 1) * p, x * p : (x + 1) * p][self._shifted[kind, dx, dy]] = rgb
        return frame

    def draw_agent(self, frame: np.ndarray, cell: tuple[int, int]) -> np.ndarray:
        p = self.pixels
        x, y = cell
        patch = frame[y * p : (y + 1) * p, x * p : (x + 1) * p]
        patch[self._agent_rim] = _AGENT_RIM_RGB
        patch[self._agent_core] = _AGENT_RGB
        return frame

    def render(self, scene: Scene) -> np.ndarray:
        return self.draw_agent(self.render_background(scene), scene.agent)


class _LooksBank:
    """Pre-drawn floors, colour offsets and sprite shifts, picked by a scene's style seed.

    Drawing noise for a whole frame on every reset would cost more than the steps of an episode; a bank of
    64 floors x 1024 offset/shift draws gives plenty of variety at the cost of a copy.
    """

    FLOORS, DRAWS = 64, 1024

    def __init__(self, options: LanguageGoalOptions, frame_shape: tuple[int, int, int], kind_rgb: np.ndarray):
        rng = np.random.default_rng(12345)  # fixed: the looks are part of the world, not of an episode
        n, j, s = options.floor_noise, options.colour_jitter, options.sprite_shift
        noise = rng.integers(-n, n + 1, size=(self.FLOORS, *frame_shape))
        self.floors = (np.array(_FLOOR_RGB) + noise).astype(np.uint8)  # the floor is far from 0 and 255: no wrap
        jitter = rng.integers(-j, j + 1, size=(self.DRAWS, options.num_objects, 1, 3))
        # colours[draw, slot, kind]: the jittered colour of a kind in an object slot, clipped once here
        self.colours = np.clip(kind_rgb.astype(np.int64) + jitter, 0, 255).astype(np.uint8)
        self.shifts = [[tuple(int(v) for v in shift) for shift in row]
                       for row in rng.integers(-s, s + 1, size=(self.DRAWS, options.num_objects, 2))]
        self.plain = kind_rgb

    def draw(self, style: int, kinds: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
        """(a fresh floor frame, RGB per object [n, 3], sprite shift (dx, dy) per object)."""
        floor = self.floors[style % self.FLOORS].copy()
        if len(kinds) > self.colours.shape[1]:  # a hand-made scene with more objects than the options allow
            return floor, self.plain[list(kinds)], [(0, 0)] * len(kinds)
        draw = (style // self.FLOORS) % self.DRAWS
        return floor, self.colours[draw, np.arange(len(kinds)), list(kinds)], self.shifts[draw][: len(kinds)]


def _sprite(shape: str, p: int) -> np.ndarray:
    """bool [p, p]: the shape's pixels inside one cell, with a one-pixel margin."""
    yy, xx = np.mgrid[0:p, 0:p].astype(np.float64) + 0.5
    inner = (yy >= 1) & (yy <= p - 1) & (xx >= 1) & (xx <= p - 1)
    if shape == "square":
        return inner
    if shape == "circle":
        return (yy - p / 2) ** 2 + (xx - p / 2) ** 2 <= (p / 2 - 1) ** 2
    if shape == "triangle":  # apex at the top centre, base along the bottom
        height = (yy - 1) / (p - 2)
        return inner & (np.abs(xx - p / 2) <= height * (p / 2 - 1))
    if shape == "diamond":
        return np.abs(yy - p / 2) + np.abs(xx - p / 2) <= p / 2 - 0.5
    raise ValueError(f"unknown shape {shape!r}")


def _agent_masks(p: int) -> tuple[np.ndarray, np.ndarray]:
    """The agent marker: a centred square of side ~p/2 (black rim, white core), leaving the object's outline visible."""
    side = max(3, p // 2)
    lo = (p - side) // 2
    outer = np.zeros((p, p), dtype=bool)
    outer[lo : lo + side, lo : lo + side] = True
    core = np.zeros((p, p), dtype=bool)
    core[lo + 1 : lo + side - 1, lo + 1 : lo + side - 1] = True
    return outer & ~core, core


class LanguageGoalEnv(gym.Env):
    """See the module docstring."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, options: LanguageGoalOptions | None = None, render_mode: str | None = "rgb_array"):
        self.options = options or LanguageGoalOptions()
        self.render_mode = render_mode
        self.world = World(self.options)
        self.max_episode_steps = self.options.max_episode_steps
        g, n_c, n_s = self.world.size, len(self.world.colours), len(self.world.shapes)
        self._cell_features = 1 + n_c + n_s
        if self.options.observation == "symbolic":
            size = g * g * self._cell_features + n_c + n_s
            self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(size,), dtype=np.float32)
        elif self.options.observation == "objects":
            size = self.options.num_objects * 4 + n_c + n_s
            self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(size,), dtype=np.float32)
        else:
            self.observation_space = gym.spaces.Dict(
                {
                    "frame": gym.spaces.Box(0, 255, shape=self.world.frame_shape, dtype=np.uint8),
                    "goal": gym.spaces.Box(0.0, 1.0, shape=(self.world.num_goals,), dtype=np.float32),
                }
            )
        self.action_space = gym.spaces.Discrete(len(_ACTION_DELTAS))
        self._scene: Scene | None = None
        self._background: np.ndarray | None = None
        self._layout: np.ndarray | None = None
        self._kind_grid: np.ndarray | None = None
        self._agent = (0, 0)
        self._goal_kind = 0
        self._steps = 0
        self._reached = False

    @property
    def goals(self) -> tuple[str, ...]:
        return self.world.goals

    # --- gymnasium API -------------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """options: {"scene": Scene} to start from a given layout, {"goal": text} to pick the goal (must be present)."""
        super().reset(seed=seed)
        options = options or {}
        scene = options.get("scene") or self.world.sample_scene(self.np_random)
        self._scene = scene
        self._agent = scene.agent
        self._kind_grid = np.full((self.world.size, self.world.size), -1, dtype=np.int64)
        for kind, (x, y) in zip(scene.kinds, scene.cells):
            self._kind_grid[y, x] = kind
        if "goal" in options:
            kind = self.world.goal_index(options["goal"])
            if kind not in scene.kinds:
                raise ValueError(f"goal {options['goal']!r} names an object that is not in the scene")
            self._goal_kind = kind
        else:
            self._goal_kind = scene.kinds[int(self.np_random.integers(len(scene.kinds)))]
        self._background = self.world.render_background(scene)
        self._layout = self._symbolic_layout() if self.options.observation == "symbolic" else None
        self._steps = 0
        self._reached = self._success()
        return self._observation(), self._info()

    def step(self, action):
        if not 0 <= action < len(_ACTION_DELTAS):
            raise ValueError(f"action must be in 0..4, got {action!r}")
        dx, dy = _ACTION_DELTAS[action]
        x, y = self._agent
        last = self.world.size - 1
        self._agent = (min(max(x + dx, 0), last), min(max(y + dy, 0), last))
        self._steps += 1
        success = self._success()
        self._reached = self._reached or success
        reward, terminated = 0.0, False
        if self.options.reward == "ground_truth" and success:
            reward, terminated = 1.0, True
        truncated = not terminated and self._steps >= self.max_episode_steps
        return self._observation(), reward, terminated, truncated, self._info(success)

    def render(self) -> np.ndarray:
        """RGB uint8 [G*P, G*P, 3]."""
        return self.world.draw_agent(self._background.copy(), self._agent)

    # --- helpers -------------------------------------------------------------------------------------------

    def _success(self) -> bool:
        x, y = self._agent
        return bool(self._kind_grid[y, x] == self._goal_kind)

    def _symbolic_layout(self) -> np.ndarray:
        g, n_s = self.world.size, len(self.world.shapes)
        layout = np.zeros((g, g, self._cell_features), dtype=np.float32)
        for kind, (x, y) in zip(self._scene.kinds, self._scene.cells):
            colour, shape = divmod(kind, n_s)
            layout[y, x, 1 + colour] = 1.0
            layout[y, x, 1 + len(self.world.colours) + shape] = 1.0
        goal = np.zeros(len(self.world.colours) + n_s, dtype=np.float32)
        colour, shape = divmod(self._goal_kind, n_s)
        goal[colour] = goal[len(self.world.colours) + shape] = 1.0
        return np.concatenate((layout.reshape(-1), goal))

    def _observation(self):
        if self.options.observation == "symbolic":
            obs = self._layout.copy()
            x, y = self._agent
            obs[(y * self.world.size + x) * self._cell_features] = 1.0
            return obs
        if self.options.observation == "objects":
            return self._objects_observation()
        goal = np.zeros(self.world.num_goals, dtype=np.float32)
        goal[self._goal_kind] = 1.0
        return {"frame": self.render(), "goal": goal}

    def _objects_observation(self) -> np.ndarray:
        n_c, n_s = len(self.world.colours), len(self.world.shapes)
        slots = np.zeros((self.options.num_objects, 4), dtype=np.float32)  # a given scene may hold fewer: zeros
        x, y = self._agent
        scale = max(1, self.world.size - 1)
        goal_colour, goal_shape = divmod(self._goal_kind, n_s)
        order = sorted(range(len(self._scene.kinds)), key=lambda i: self._scene.kinds[i] != self._goal_kind)
        for slot, i in zip(slots, order):
            kind, (ox, oy) = self._scene.kinds[i], self._scene.cells[i]
            colour, shape = divmod(kind, n_s)
            slot[:] = (ox - x) / scale, (oy - y) / scale, colour == goal_colour, shape == goal_shape
        goal = np.zeros(n_c + n_s, dtype=np.float32)
        goal[goal_colour] = goal[n_c + goal_shape] = 1.0
        return np.concatenate((slots.reshape(-1), goal))

    def _info(self, success: bool | None = None) -> dict[str, Any]:
        x, y = self._agent
        kind = int(self._kind_grid[y, x])
        info = {
            "goal": self.world.goals[self._goal_kind],
            "goal_index": self._goal_kind,
            "success": self._success() if success is None else success,
            "reached": self._reached,
            "agent_pos": self._agent,
            "standing_on": FLOOR_CAPTION if kind < 0 else self.world.goals[kind],
        }
        if self.options.info_frame:
            info["frame"] = self.render()
        return info


# --- labelled data for reward models ----------------------------------------------------------------------


def caption_pairs(
    num: int, seed: int, options: LanguageGoalOptions | None = None, on_object_fraction: float = 0.6
) -> tuple[np.ndarray, list[str]]:
    """(frames uint8 [num, H, W, 3], captions): what the agent stands on, from random scenes.

    A fraction `on_object_fraction` of the frames has the agent on an object (captioned with that object's
    goal text), the rest on the floor (FLOOR_CAPTION), so a model learns both what each goal looks like and
    what "not there yet" looks like.
    """
    world = World(options or LanguageGoalOptions())
    rng = np.random.default_rng(seed)
    frames = np.empty((num, *world.frame_shape), dtype=np.uint8)
    captions = []
    for i in range(num):
        scene = world.sample_scene(rng, agent_on_object=bool(rng.random() < on_object_fraction))
        frames[i] = world.render(scene)
        captions.append(world.caption(scene))
    return frames, captions


def success_triples(
    num: int,
    seed: int,
    options: LanguageGoalOptions | None = None,
    positive_fraction: float = 0.5,
    near_miss_fraction: float = 0.5,
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(frames uint8 [num, H, W, 3], goals, success bool [num]) for evaluating a success detector.

    About `positive_fraction` of the triples are successes. The goal object is always in the scene, as in
    an episode. Of the negatives, `near_miss_fraction` are near misses — the agent on an object that shares
    the goal's colour or its shape, the confusion a weak detector makes — and the rest have the agent on the
    floor or on an unrelated object. Success is computed from the scene (the agent's cell holds the goal
    object), never assumed.
    """
    world = World(options or LanguageGoalOptions())
    rng = np.random.default_rng(seed)
    num_shapes = len(world.shapes)
    frames = np.empty((num, *world.frame_shape), dtype=np.uint8)
    goals, success = [], np.empty(num, dtype=bool)
    for i in range(num):
        positive = bool(rng.random() < positive_fraction)
        near_miss = not positive and bool(rng.random() < near_miss_fraction)
        scene = world.sample_scene(rng, agent_on_object=positive or near_miss or bool(rng.random() < 0.5))
        under_agent = scene.kind_at(scene.agent)
        if positive:
            goal_kind = under_agent
        elif near_miss:
            colour, shape = divmod(under_agent, num_shapes)
            pool = [k for k in range(len(world.kinds)) if k != under_agent and (k // num_shapes == colour or k % num_shapes == shape)]
            goal_kind = pool[int(rng.integers(len(pool)))] if pool else under_agent
            scene = _with_kind_present(scene, goal_kind, rng)
        else:
            others = [k for k in scene.kinds if k != under_agent]
            goal_kind = others[int(rng.integers(len(others)))] if others else under_agent
        frames[i] = world.render(scene)
        goals.append(world.goals[goal_kind])
        success[i] = scene.kind_at(scene.agent) == goal_kind
    return frames, goals, success


def _with_kind_present(scene: Scene, kind: int, rng: np.random.Generator) -> Scene:
    """The scene with `kind` on one of the cells the agent is not on (swapped in for another object)."""
    if kind in scene.kinds:
        return scene
    replaceable = [i for i, cell in enumerate(scene.cells) if cell != scene.agent]
    if not replaceable:
        return scene
    kinds = list(scene.kinds)
    kinds[replaceable[int(rng.integers(len(replaceable)))]] = kind
    return Scene(tuple(kinds), scene.cells, scene.agent)


def _speed_report(num_steps: int = 100_000) -> dict[str, float]:
    """Raw env steps/s per observation mode (figures in the module docstring)."""
    from armillary.envs.gridworld import measure_steps_per_second

    figures = {}
    for name, opts in {
        "symbolic": LanguageGoalOptions(),
        "pixels": LanguageGoalOptions(observation="pixels"),
        "symbolic+info_frame": LanguageGoalOptions(info_frame=True),
    }.items():
        figures[name] = measure_steps_per_second(LanguageGoalEnv(opts), num_steps=num_steps)
    return figures


register(
    EnvEntry(
        name="language-goals",
        options=LanguageGoalOptions,
        make=lambda options: LanguageGoalEnv(options),
        description="A rendered 6x6 world of coloured shapes with language goals ('the agent is on the red square').",
        family="language-goal",
        # The frame size stays: reward models are trained at it and refuse other sizes.
        smoke={"num_objects": 2, "max_episode_steps": 10},
    )
)


if __name__ == "__main__":
    for name, steps_per_second in _speed_report().items():
        print(f"{name:>22}: {steps_per_second:,.0f} steps/s")
