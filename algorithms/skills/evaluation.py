"""Skill evaluation: run every skill from its start, near-greedy, and measure what the skills do.

Pure torch + gymnasium, no Ray. `act` maps a batch of policy observations to logits; `discriminate` maps
final observations to the method's discriminator outputs. Envs run in lockstep (every skill lasts T).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from armillary.algorithms.skills import estimators
from armillary.algorithms.skills.env import SkillEnv
from armillary.algorithms.skills.method import SkillMethod


@dataclass
class SkillRollouts:
    skills: np.ndarray  # int [M]
    final_obs: np.ndarray  # float [M, W] policy observations at s_T
    start_pos: np.ndarray | None  # int [M, 2] (x, y) when the env reports positions
    final_pos: np.ndarray | None  # int [M, 2]
    frames: dict[int, list[np.ndarray]] = field(default_factory=dict)  # skill → rendered frames of one episode


def epsilon_greedy(logits: torch.Tensor, epsilon: float, generator: torch.Generator) -> torch.Tensor:
    """ε-greedy on the logits; epsilon=None samples from the policy's own softmax instead."""
    if epsilon is None:
        return torch.multinomial(torch.softmax(logits.double(), -1), 1, generator=generator).squeeze(-1)
    greedy = logits.argmax(-1)
    if epsilon <= 0:
        return greedy
    random_actions = torch.randint(logits.shape[-1], greedy.shape, generator=generator)
    explore = torch.rand(greedy.shape, generator=generator) < epsilon
    return torch.where(explore, random_actions, greedy)


def rollout_skills(
    envs: Sequence[SkillEnv],
    act: Callable[[torch.Tensor], torch.Tensor],
    episodes_per_skill: int,
    epsilon: float | None = 0.0,
    seed: int = 0,
    record_frames: bool = False,
) -> SkillRollouts:
    """episodes_per_skill episodes of every skill, len(envs) episodes at a time, acting ε-greedily on `act`
    (epsilon=None: sampling from the policy, as in training)."""
    num_skills = envs[0].num_skills
    schedule = np.repeat(np.arange(num_skills), episodes_per_skill)
    generator = torch.Generator().manual_seed(seed)
    skills, final_obs, start_pos, final_pos = [], [], [], []
    frames: dict[int, list[np.ndarray]] = {}
    for begin in range(0, len(schedule), len(envs)):
        chunk = schedule[begin : begin + len(envs)]
        active = envs[: len(chunk)]
        observations, infos = [], []
        for i, (env, skill) in enumerate(zip(active, chunk)):
            obs, info = env.reset(seed=seed + begin + i, options={"skill": int(skill)})
            observations.append(obs)
            infos.append(info)
        starts = [info.get("pos") for info in infos]
        filming = {i: int(s) for i, s in enumerate(chunk) if record_frames and int(s) not in frames}
        for i, skill in filming.items():
            frames[skill] = [active[i].render()]
        done = np.zeros(len(chunk), dtype=bool)
        while not done.all():
            with torch.no_grad():
                actions = epsilon_greedy(act(torch.as_tensor(np.stack(observations))), epsilon, generator).numpy()
            for i, env in enumerate(active):
                if done[i]:
                    continue
                obs, _, terminated, truncated, info = env.step(int(actions[i]))
                observations[i], infos[i] = obs, info
                done[i] = terminated or truncated
                if i in filming:
                    frames[filming[i]].append(env.render())
        skills.append(chunk)
        final_obs.append(np.stack(observations))
        start_pos.append(starts)
        final_pos.append([info.get("pos") for info in infos])
    has_pos = all(p is not None for chunk in final_pos for p in chunk)
    return SkillRollouts(
        skills=np.concatenate(skills),
        final_obs=np.concatenate(final_obs),
        start_pos=np.array([p for c in start_pos for p in c], dtype=np.int64) if has_pos else None,
        final_pos=np.array([p for c in final_pos for p in c], dtype=np.int64) if has_pos else None,
        frames=frames,
    )


def skill_metrics(rollouts: SkillRollouts, method: SkillMethod, discriminate: Callable[[torch.Tensor], dict]) -> dict[str, float]:
    """Effective skills (through the discriminator) and, where positions are known, plug-in information.

    effective_skills                 exp(E[log q(z|s_T) + log N]) with the method's classifier (ensemble mean)
    mutual_information_final_bits    I(Z; S_f) from counts of end positions
    mutual_information_displacement_bits   I(Z; S_f − S_0) from counts of displacements
    skill_entropy_final_bits / skill_entropy_displacement_bits   mean over skills of H[S_f | z], H[S_f − S_0 | z]
    distinct_final_states            how many end positions occur at all
    """
    skills = torch.as_tensor(rollouts.skills)
    outputs = discriminate(torch.as_tensor(rollouts.final_obs))
    terms = method.rewards(outputs, skills)
    figures = {
        "effective_skills": float(estimators.effective_skills(terms.effective_log)),
        "eval_skill_reward_mean": float(terms.skill.mean()),
        "eval_bonus_mean": float(terms.bonus.mean()),
    }
    if rollouts.final_pos is not None:
        n = method.num_skills
        final = torch.as_tensor(rollouts.final_pos)
        displacement = final - torch.as_tensor(rollouts.start_pos)
        figures.update(
            mutual_information_final_bits=float(estimators.nats_to_bits(estimators.plugin_mutual_information(skills, final, n))),
            mutual_information_displacement_bits=float(
                estimators.nats_to_bits(estimators.plugin_mutual_information(skills, displacement, n))
            ),
            skill_entropy_final_bits=float(estimators.nats_to_bits(estimators.per_skill_entropy(skills, final, n).nanmean())),
            skill_entropy_displacement_bits=float(
                estimators.nats_to_bits(estimators.per_skill_entropy(skills, displacement, n).nanmean())
            ),
            distinct_final_states=float(len(torch.unique(final, dim=0))),
        )
    return figures
