"""Pictures of trained skills for MLflow: end-state occupancy per skill, one clip per skill, and (for
methods with a bonus) the bonus against how often each end state is reached.

Called by each entry's final_artifacts hook with the trained Algorithm; runs the rollouts inside the
learner (where policy and discriminator live), draws on the driver.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns

from armillary.algorithms.skills.env import SkillEnv
from armillary.algorithms.skills.evaluation import rollout_skills
from armillary.algorithms.skills.module import DISCRIMINATOR_MODULE_ID

MAX_CLIPS = 32


def _grid(env: SkillEnv):
    return getattr(env.inner.unwrapped, "grid", None)


def end_states_and_bonus_on_learner(learner, episodes_per_skill: int, seed: int = 0) -> dict:
    """Inside a Learner: end positions of skills sampled as in training, and the method's reward terms at
    every free cell (as the end state of every skill, from the env's default start)."""
    probe = SkillEnv(learner.config.env_config)
    grid = _grid(probe)
    if grid is None:  # not a grid world (e.g. Atari): no cells to draw, and no 64 envs to build for nothing
        probe.close()
        return {}
    envs = [probe] + [SkillEnv(learner.config.env_config) for _ in range(63)]
    policy = learner.module[DEFAULT_MODULE_ID].unwrapped()
    discriminator = learner.module[DISCRIMINATOR_MODULE_ID].unwrapped()
    device = next(policy.parameters()).device

    def act(obs):
        return policy.forward_inference({Columns.OBS: obs.to(device)})[Columns.ACTION_DIST_INPUTS].cpu()

    sampled = rollout_skills(envs, act, episodes_per_skill, epsilon=None, seed=seed)
    env = envs[0]
    cells = list(grid.free_cells)
    final_obs = []
    for pos in cells:  # the observation "standing in this cell" for skill 0; the bonus does not depend on z
        obs, _ = env.reset(options={"skill": 0, "start_pos": pos})
        final_obs.append(obs)
    outputs, skills = discriminator.discriminate_observations(torch.as_tensor(np.stack(final_obs)).to(device))
    terms = discriminator.method.rewards({k: v.cpu() for k, v in outputs.items()}, skills.cpu())
    return {
        "cells": cells,
        "end_positions": sampled.final_pos.tolist(),
        "bonus": terms.bonus.tolist(),
        "walls": grid.walls.tolist(),
    }


def plot_bonus_vs_visits(data: dict, path: Path, title: str) -> dict[str, float]:
    """Scatter: for each free cell, how often sampled skills end there vs the bonus there; and a bonus map."""
    from matplotlib.figure import Figure

    from armillary.envs.render import count_visits

    walls = np.array(data["walls"], dtype=bool)
    counts = count_visits(data["end_positions"], walls.shape)
    visits = np.array([counts[y, x] for x, y in data["cells"]])
    bonus = np.array(data["bonus"])
    share = visits / max(1, visits.sum())
    bonus_map = np.full(walls.shape, np.nan)
    for (x, y), b in zip(data["cells"], bonus):
        bonus_map[y, x] = b

    figure = Figure(figsize=(10, 4))
    left, right = figure.subplots(1, 2)
    left.scatter(share + 1e-4, bonus, c="tab:red")
    left.set_xscale("log")
    left.set_xlabel("share of sampled skills ending in the cell (+1e-4)")
    left.set_ylabel("disagreement bonus r_D at the cell (nats)")
    left.set_title(title)
    image = right.imshow(bonus_map, cmap="viridis")
    right.set_title("bonus r_D by cell (walls blank)")
    right.set_xticks([]), right.set_yticks([])
    figure.colorbar(image, ax=right)
    figure.tight_layout()
    figure.savefig(path, dpi=100)

    order = np.argsort(share)
    quarter = max(1, len(order) // 4)
    return {
        "bonus_on_rarest_quarter": float(bonus[order[:quarter]].mean()),
        "bonus_on_most_visited_quarter": float(bonus[order[-quarter:]].mean()),
        "never_reached_cells": int((visits == 0).sum()),
    }


def write_skill_artifacts(algo, folder, episodes_per_skill: int | None = None) -> None:
    """Occupancy per skill (PNG), one GIF per skill (up to MAX_CLIPS), figures (JSON), bonus plot (DISDAIN); on
    `final_episodes_per_skill` episodes per skill unless given."""
    from PIL import Image

    episodes_per_skill = episodes_per_skill or algo.skill_method.hp.final_episodes_per_skill

    from armillary.envs.render import count_visits, occupancy_image, write_clip

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rollouts, figures = algo.evaluate_skills(episodes_per_skill=episodes_per_skill, record_frames=True)
    namespace = algo.skill_method.namespace
    (folder / f"{namespace}_skill_figures.json").write_text(json.dumps(figures, indent=2))
    for skill, frames in sorted(rollouts.frames.items())[:MAX_CLIPS]:
        write_clip(frames, folder / f"skill_{skill:02d}.gif", fps=4)

    probe = SkillEnv(algo.config.env_config)
    grid = _grid(probe)
    if grid is not None and rollouts.final_pos is not None:
        tiles = []
        for skill in range(probe.num_skills):
            ends = rollouts.final_pos[rollouts.skills == skill]
            tiles.append(occupancy_image(count_visits(ends, grid.walls.shape), walls=grid.walls, pixels_per_cell=8))
        columns = 8
        blank = np.zeros_like(tiles[0])
        rows = [np.concatenate((tiles[i : i + columns] + [blank] * columns)[:columns], axis=1) for i in range(0, len(tiles), columns)]
        Image.fromarray(np.concatenate(rows, axis=0)).save(folder / "end_state_occupancy_per_skill.png")

    if namespace == "disdain":
        results = algo.learner_group.foreach_learner(lambda learner: end_states_and_bonus_on_learner(learner, episodes_per_skill))
        data = next(iter(results)).get()
        if data:
            summary = plot_bonus_vs_visits(data, folder / "bonus_vs_end_state_visits.png", "DISDAIN bonus vs visits")
            (folder / "bonus_summary.json").write_text(json.dumps(summary, indent=2))
