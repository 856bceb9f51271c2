"""Goal reaching with frozen skills as actions: the downstream task of the RVIC paper.

A meta-controller (any RL algorithm, e.g. PPO through the platform) acts in the open room with a random
start and a random goal. Its actions are the N frozen skills of an exported skill library (VIC, RVIC or
DISDAIN, see `export_skill_library`) followed by the 5 primitive moves (`include_primitives`). Choosing
skill z runs the frozen skill policy greedily for its T steps from the current cell (s_0 = that cell),
stopping early when the goal is reached; a primitive is one step. One meta-step can therefore take up to
T environment steps: `info["primitive_steps"]` says how many, so learning curves can be drawn against
environment steps, the budget that matters. Reward: 1 when the goal is reached (the episode ends), else 0;
the episode is truncated after `max_episode_steps` primitive steps.

The skill library is a folder: `policy/` (the skill algorithm's RLModule checkpoint, loaded with
RLModule.from_checkpoint) and `skills.json` (the observation layout, T, and the env the skills were learned
in). Skills only transfer to the state encoding they were learned on, so that must match this room's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from pydantic import Field

from armillary.core.entries import EnvEntry, EnvOptions
from armillary.envs import registry as environments
from armillary.envs.registry import register
from armillary.envs.skill_layout import SkillObservationLayout

LIBRARY_FILE = "skills.json"
POLICY_DIR = "policy"
NUM_PRIMITIVES = 5


class SkillOptionsEnvOptions(EnvOptions):
    skills: str | None = Field(None, description="Folder of an exported skill library; None: primitive actions only.")
    include_primitives: bool = Field(True, description="Offer the 5 primitive moves beside the skills.")
    size: int = Field(9, ge=2, le=64, description="Free cells per side of the room (must match the skills' room).")
    max_episode_steps: int = Field(30, gt=0, description="Budget of primitive steps per episode.")


def export_skill_library(algo, folder: str | Path) -> Path:
    """Save a trained skill algorithm's policy and what is needed to run its skills (see module docstring)."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    folder = Path(folder).resolve()  # RLlib's checkpointing takes a relative path for a URI
    folder.mkdir(parents=True, exist_ok=True)
    method, env_config = algo.skill_method, algo.config.env_config
    algo.get_module(DEFAULT_MODULE_ID).save_to_path(str(folder / POLICY_DIR))
    library = {
        "algorithm": method.namespace,
        "layout": method.layout.to_dict(),
        "skill_length": env_config["skill_length"],
        "env": env_config["env"],
        "env_options": env_config["options"],
    }
    (folder / LIBRARY_FILE).write_text(json.dumps(library, indent=2))
    return folder


class FrozenSkills:
    """The skill policy of a library, acting greedily: z, s_0, s_t → primitive action."""

    def __init__(self, folder: str | Path):
        import torch
        from ray.rllib.core.rl_module.rl_module import RLModule

        folder = Path(folder).resolve()
        if not (folder / LIBRARY_FILE).is_file():
            raise FileNotFoundError(f"skills: {folder} has no {LIBRARY_FILE}; export one with export_skill_library()")
        library = json.loads((folder / LIBRARY_FILE).read_text())
        self.layout = SkillObservationLayout(**library["layout"])
        self.skill_length = int(library["skill_length"])
        self.env_name, self.env_options = library["env"], library["env_options"]
        self._torch = torch
        self._module = RLModule.from_checkpoint(str(folder / POLICY_DIR))
        self._module.eval()

    @property
    def num_skills(self) -> int:
        return self.layout.num_skills

    def act(self, skill: int, state: np.ndarray, start: np.ndarray, step: int) -> int:
        observation = self.layout.compose(state, start, skill, step / self.skill_length)
        obs = self._torch.from_numpy(observation[None].astype(np.float32))
        with self._torch.no_grad():
            logits = self._module.forward_inference({"obs": obs})["action_dist_inputs"]
        return int(logits.argmax(-1)[0])


class SkillOptionsEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, options: SkillOptionsEnvOptions):
        room = {"size": options.size, "max_episode_steps": options.max_episode_steps, "start": "random",
                "observation": "xy", "goal": "random", "observe_goal": True}
        self.inner = environments.make("open-room", room)
        self.state_dim = self.inner.observation_space.shape[0] // 2  # [position (x, y) | goal (x, y)]
        self.skills = FrozenSkills(options.skills) if options.skills else None
        if self.skills is not None:
            learned_in = {k: self.skills.env_options.get(k) for k in ("size", "observation")}
            if self.skills.env_name != "open-room" or learned_in != {"size": options.size, "observation": "xy"}:
                raise ValueError(f"skills: learned in {self.skills.env_name} {learned_in}, but this task is the "
                                 f"open room {{'size': {options.size}, 'observation': 'xy'}}: their states do not match")
            if self.skills.layout.state_dim != self.state_dim:
                raise ValueError(f"skills: state width {self.skills.layout.state_dim} != this room's {self.state_dim}")
        self.num_skills = self.skills.num_skills if self.skills else 0
        self.num_primitives = NUM_PRIMITIVES if options.include_primitives else 0
        if self.num_skills + self.num_primitives == 0:
            raise ValueError("include_primitives: without skills the agent needs the primitive actions")
        self.action_space = gym.spaces.Discrete(self.num_skills + self.num_primitives)
        self.observation_space = self.inner.observation_space
        self.render_mode = "rgb_array"
        self._obs = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._obs, info = self.inner.reset(seed=seed, options=options)
        return self._obs, {**info, "primitive_steps": 0}

    def step(self, action):
        action = int(action)
        if not 0 <= action < self.action_space.n:
            raise ValueError(f"action must be in 0..{self.action_space.n - 1}, got {action}")
        if action >= self.num_skills:
            self._obs, reward, terminated, truncated, info = self.inner.step(action - self.num_skills)
            return self._obs, reward, terminated, truncated, {**info, "primitive_steps": 1, "skill": -1}
        start = self._obs[: self.state_dim].copy()
        total, steps = 0.0, 0
        for t in range(self.skills.skill_length):
            primitive = self.skills.act(action, self._obs[: self.state_dim], start, t)
            self._obs, reward, terminated, truncated, info = self.inner.step(primitive)
            total, steps = total + reward, steps + 1
            if terminated or truncated:
                break
        return self._obs, total, terminated, truncated, {**info, "primitive_steps": steps, "skill": action}

    def render(self):
        return self.inner.render()


register(
    EnvEntry(
        name="open-room-skill-options",
        options=SkillOptionsEnvOptions,
        make=SkillOptionsEnv,
        description="Goal reaching from random starts in the open room; actions: frozen skills + primitives (RVIC downstream).",
        family="grid",
        smoke={"max_episode_steps": 10},
    )
)
