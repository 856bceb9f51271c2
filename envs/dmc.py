"""The DeepMind Control Suite as gymnasium environments: `dmc-<domain>-<task>`, e.g. dmc-walker-walk.

Observation (state, the default): the suite's observation dict flattened into one float32 vector, the keys in
sorted order, each array flattened in C order. `env.unwrapped.state_layout` maps each key to its slice, e.g.
walker: height [0:1], orientations [1:15], velocity [15:24].
Observation (pixels=True): an RGB uint8 [pixel_size, pixel_size, 3] image from the task's camera.
Either way info["state"] holds the flattened state: the proprioceptive features DOMiNO uses as φ.

Action: a float32 Box with the bounds of the suite's action spec; actions outside are clipped to it (MuJoCo
would clamp the controls anyway, and RLlib's Gaussian policies do sample outside the bounds).

Episodes: every registered task has the suite's time limit of 1000 control steps; reaching it ends the episode
with truncated=True. terminated=True only where the suite ends an episode with discount 0 (a real terminal
state). With action_repeat = k each agent step is k control steps with summed reward, so an episode is ceil(1000 / k)
agent steps.

Seeding: reset(seed=s) gives the same episode as `suite.load(domain, task, task_kwargs={"random": s})`. The
suite draws everything random from the task's RandomState, so we reseed it in place instead of rebuilding the
physics (tests/test_envs.py checks the equivalence).

Rendering: MUJOCO_GL=egl (software llvmpipe without a GPU); render() gives an RGB uint8
[render_size, render_size, 3] frame for clips.

Speed (random actions, one core of the 2-core dev machine, measured with
armillary.envs.gridworld.measure_steps_per_second): walker-walk with state observations ~5,400 steps/s;
with pixels=True (64x64) and action_repeat=4, ~45 agent steps/s, bound by software rendering. About half of
both while the machine is busy.
"""

from __future__ import annotations

import os

# Before dm_control is imported anywhere: the default GL backend (GLFW) needs a display.
os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from pydantic import Field  # noqa: E402

from armillary.core.entries import EnvEntry, EnvOptions  # noqa: E402
from armillary.envs.registry import register  # noqa: E402

DMC_TASKS = (
    ("walker", "stand"),
    ("walker", "walk"),
    ("walker", "run"),
    ("cheetah", "run"),
    ("cartpole", "balance"),
    ("cartpole", "swingup"),
    ("quadruped", "walk"),
    ("quadruped", "run"),
    ("reacher", "easy"),
    ("reacher", "hard"),
    ("point_mass", "easy"),
    ("hopper", "hop"),
    ("finger", "spin"),
    ("ball_in_cup", "catch"),
)

# Camera 0 suits most domains; quadruped's camera 0 is a far global view, so use 2 as DrQ and dmc2gym do.
_DEFAULT_CAMERA = {"quadruped": 2}


class DMCOptions(EnvOptions):
    action_repeat: int = Field(1, ge=1, description="Control steps per agent step; the rewards are summed.")
    pixels: bool = Field(False, description="Observe an RGB image from the camera instead of the state vector.")
    pixel_size: int = Field(64, ge=16, le=512, description="Side of the square pixel observation.")
    render_size: int = Field(128, ge=16, le=1024, description="Side of the square frames render() returns.")
    camera_id: int | None = Field(None, ge=0, description="Camera for pixels and render() (default: per domain).")


class DMCEnv(gym.Env):
    """One dm_control suite task behind the gymnasium API; see the module docstring."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 40}

    def __init__(self, domain: str, task: str, options: DMCOptions, render_mode: str | None = "rgb_array"):
        from dm_control import suite

        self.domain, self.task = domain, task
        self.options = options
        self.render_mode = render_mode
        self._env = suite.load(domain, task, task_kwargs={"random": None})
        # Antialiasing samples cost most of a software-rendered frame and buy nothing at these sizes.
        self._env.physics.model.vis.quality.offsamples = 0
        self._render_backend_checked = False
        self._camera_id = _DEFAULT_CAMERA.get(domain, 0) if options.camera_id is None else options.camera_id

        self.state_layout = _state_layout(self._env.observation_spec())
        state_size = max(part.stop for part in self.state_layout.values())
        self.state_space = gym.spaces.Box(-np.inf, np.inf, shape=(state_size,), dtype=np.float32)
        if options.pixels:
            size = options.pixel_size
            self.observation_space = gym.spaces.Box(0, 255, shape=(size, size, 3), dtype=np.uint8)
        else:
            self.observation_space = self.state_space
        spec = self._env.action_spec()
        self.action_space = gym.spaces.Box(
            spec.minimum.astype(np.float32), spec.maximum.astype(np.float32), shape=spec.shape, dtype=np.float32
        )
        seconds_per_step = self._env.control_timestep() * options.action_repeat
        self.metadata = {**self.metadata, "render_fps": round(1 / seconds_per_step)}

    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            # The same stream as a fresh suite.load(task_kwargs={"random": seed}), without rebuilding the physics.
            self._env.task.random.seed(seed)
        time_step = self._env.reset()
        state = self._flatten(time_step.observation)
        return self._observe(state), {"state": state}

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=np.float64), self.action_space.low, self.action_space.high)
        reward = 0.0
        for _ in range(self.options.action_repeat):
            time_step = self._env.step(action)
            reward += time_step.reward or 0.0  # the suite gives reward None only on reset steps
            if time_step.last():
                break
        # dm_env's convention: discount 0 marks a terminal state; the time limit ends an episode with discount 1.
        terminated = bool(time_step.last() and time_step.discount == 0.0)
        truncated = bool(time_step.last() and not terminated)
        state = self._flatten(time_step.observation)
        return self._observe(state), float(reward), terminated, truncated, {"state": state}

    def render(self) -> np.ndarray:
        return self._render(self.options.render_size)

    def close(self):
        self._env.physics.free()  # releases the rendering contexts now rather than at garbage collection

    @property
    def physics(self):
        """The MuJoCo physics, e.g. to perturb the dynamics (DOMiNO's robustness experiments)."""
        return self._env.physics

    def _flatten(self, observation) -> np.ndarray:
        return np.concatenate([np.asarray(observation[key], dtype=np.float32).ravel() for key in self.state_layout])

    def _observe(self, state: np.ndarray) -> np.ndarray:
        if not self.options.pixels:
            return state.copy()  # not the info's array: writing into one must not change the other
        return self._render(self.options.pixel_size)

    def _render(self, size: int) -> np.ndarray:
        if not self._render_backend_checked:
            _check_offscreen_rendering()
            self._render_backend_checked = True
        return self._env.physics.render(height=size, width=size, camera_id=self._camera_id)


def _check_offscreen_rendering() -> None:
    """Fail with the fix, rather than with MuJoCo's "no OpenGL context", when no backend can render here."""
    from dm_control import _render

    if _render.BACKEND in ("egl", "osmesa") or os.environ.get("DISPLAY"):
        return
    raise RuntimeError(
        f"dm_control chose the rendering backend {_render.BACKEND!r}, which needs a display, because it was imported "
        "(perhaps by `import ray.rllib`) before MUJOCO_GL was set. Set MUJOCO_GL=egl in the environment of every "
        "process that renders (for Ray workers: the runtime env), or import armillary.envs.dmc first."
    )


def _state_layout(observation_spec) -> dict[str, slice]:
    """Sorted key -> its slice of the flattened state vector."""
    layout, start = {}, 0
    for key in sorted(observation_spec):
        size = int(np.prod(observation_spec[key].shape, dtype=np.int64))  # () -> 1
        layout[key] = slice(start, start + size)
        start += size
    return layout


def _maker(domain: str, task: str):
    def make(options: DMCOptions) -> gym.Env:
        return DMCEnv(domain, task, options)

    return make


for _domain, _task in DMC_TASKS:
    register(
        EnvEntry(
            name=f"dmc-{_domain}-{_task}",
            options=DMCOptions,
            make=_maker(_domain, _task),
            description=f"DeepMind Control Suite {_domain} {_task}: flattened state (or pixels), "
            "continuous actions, 1000-step episodes.",
            family="dmc",
        )
    )
