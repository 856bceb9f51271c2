"""Roll out each policy of the set (no Ray): returns, goals reached and visited cells per policy, the per-policy
occupancy picture for gridworlds and, for rendered envs (DM Control walker), one short clip per policy. Used by
the final artifacts and benchmarks/domino_grid.py."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from armillary.algorithms.domino.env import DominoEnv


@dataclass
class PolicyRollouts:
    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    goals: Counter = field(default_factory=Counter)  # goal index → times reached (grid envs with info["goal"])
    positions: list[tuple[int, int]] = field(default_factory=list)  # info["pos"] of every step (grid envs)
    features: list[np.ndarray] = field(default_factory=list)  # φ(s_{t+1}) of every step
    frames: list[np.ndarray] = field(default_factory=list)  # RGB frames of the first episode (clip_steps > 0)

    def summary(self) -> dict:
        out = {"return_mean": float(np.mean(self.returns)), "length_mean": float(np.mean(self.lengths)),
               "sf_estimate": np.mean(self.features, axis=0).round(4).tolist()}
        if self.goals:
            out["goals"] = {str(k): v for k, v in sorted(self.goals.items())}
            out["main_goal"] = int(self.goals.most_common(1)[0][0])
        return out


def rollout_policies(
    env_config: dict, act: Callable[[torch.Tensor], torch.Tensor], episodes_per_policy: int, seed: int = 0,
    clip_steps: int = 0, clip_every: int = 1, render: Callable[[DominoEnv], np.ndarray] | None = None,
) -> list[PolicyRollouts]:
    """`act` maps a batch of observations [1, D] to actions [1] (e.g. the greedy action of the policy).

    clip_steps > 0: keep the frames of each policy's first episode, the reset frame and then every clip_every-th
    of its first clip_steps steps, from `render(env)` (default: env.render(), which needs an rgb_array env)."""
    env = DominoEnv(env_config)
    render = render or (lambda e: e.render())
    results = []
    for policy in range(env.num_policies):
        rollouts = PolicyRollouts()
        for episode in range(episodes_per_policy):
            obs, _ = env.reset(seed=seed + 1000 * policy + episode, options={"policy": policy})
            recording = episode == 0 and clip_steps > 0
            if recording:
                rollouts.frames.append(np.asarray(render(env)))
            total, steps, done = 0.0, 0, False
            while not done:
                action = act(torch.as_tensor(obs)[None])[0]
                obs, reward, terminated, truncated, info = env.step(action.numpy() if action.dim() else int(action))
                total, steps, done = total + reward, steps + 1, terminated or truncated
                if recording and steps <= clip_steps and steps % clip_every == 0:
                    rollouts.frames.append(np.asarray(render(env)))
                phi, _ = env.layout.split(torch.as_tensor(obs))
                rollouts.features.append(phi.numpy())
                if "pos" in info:
                    rollouts.positions.append(tuple(info["pos"]))
                if info.get("goal", -1) >= 0:
                    rollouts.goals[int(info["goal"])] += 1
            rollouts.returns.append(total)
            rollouts.lengths.append(steps)
        results.append(rollouts)
    env.close()
    return results


def records_clips(env_config: dict) -> bool:
    """Whether the env gets one clip per policy: it renders RGB frames and is not a gridworld (gridworlds get the
    occupancy picture instead)."""
    env = DominoEnv(env_config)
    try:
        return getattr(env.inner.unwrapped, "grid", None) is None and env.render_mode == "rgb_array"
    finally:
        env.close()


def occupancy_side_by_side(env_config: dict, rollouts: list[PolicyRollouts]) -> np.ndarray | None:
    """RGB uint8: one visit heat map per policy, left to right (None when the env is not a gridworld)."""
    from armillary.envs.render import count_visits, occupancy_image

    env = DominoEnv(env_config)
    grid = getattr(env.inner.unwrapped, "grid", None)
    env.close()
    if grid is None:
        return None
    gap = np.full((grid.height * 8, 4, 3), 255, dtype=np.uint8)
    tiles = []
    for r in rollouts:
        tiles += [occupancy_image(count_visits(r.positions, grid.walls.shape), walls=grid.walls, pixels_per_cell=8), gap]
    return np.concatenate(tiles[:-1], axis=1)


def greedy_actor(module) -> Callable[[torch.Tensor], torch.Tensor]:
    """Greedy actions of an RLlib policy module: argmax of the logits (discrete) or the Gaussian mean."""
    from ray.rllib.core.columns import Columns

    device = next(module.parameters()).device

    @torch.no_grad()
    def act(obs: torch.Tensor) -> torch.Tensor:
        inputs = module.forward_inference({Columns.OBS: obs.to(device)})[Columns.ACTION_DIST_INPUTS].cpu()
        if module.action_space.shape == ():
            return inputs.argmax(-1)
        return inputs[..., : inputs.shape[-1] // 2]

    return act


def sampling_actor(module, seed: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Actions sampled from a discrete RLlib policy module's distribution (softmax of the logits), from a generator
    seeded with `seed`: the stochastic policy that PPO trained, reproducible run to run."""
    from ray.rllib.core.columns import Columns

    if module.action_space.shape != ():
        raise ValueError(f"sampling_actor needs a discrete action space, got {module.action_space}")
    device = next(module.parameters()).device
    generator = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def act(obs: torch.Tensor) -> torch.Tensor:
        logits = module.forward_inference({Columns.OBS: obs.to(device)})[Columns.ACTION_DIST_INPUTS].cpu()
        return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator)[:, 0]

    return act
