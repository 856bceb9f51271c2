"""Skill-discovery math on hand-checkable tensors (no Ray): rewards, bonus, effective skills, information."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from armillary.algorithms.disdain.config import DisdainHyperparameters
from armillary.algorithms.disdain.losses import DisdainMethod
from armillary.algorithms.rvic.config import RvicHyperparameters
from armillary.algorithms.rvic.losses import RvicMethod
from armillary.algorithms.skills import estimators
from armillary.algorithms.skills.env import SkillEnv
from armillary.algorithms.skills.evaluation import rollout_skills, skill_metrics
from armillary.algorithms.skills.method import RewardSettings, SkillRewards, combine
from armillary.algorithms.skills.networks import DiscriminatorEnsemble, ensemble_cross_entropy
from armillary.algorithms.vic.config import VicHyperparameters
from armillary.algorithms.vic.losses import VicMethod
from armillary.envs.skill_layout import SkillObservationLayout


def logs(*rows):
    """log of probability rows (0 → −inf, as a log-softmax would give in the limit)."""
    return torch.tensor(rows, dtype=torch.float64).log()


def test_ensemble_mean_is_the_mean_of_probabilities():
    members = torch.stack([logs([0.5, 0.5]), logs([1.0, 0.0])])  # [E=2, B=1, N=2]
    mean = estimators.ensemble_mean_log_probs(members)
    assert torch.allclose(mean.exp(), torch.tensor([[0.75, 0.25]], dtype=torch.float64))


def test_skill_reward_is_zero_at_chance_and_log_n_at_certainty():
    n = 4
    chance = logs([0.25] * 4, [0.25] * 4)
    certain = logs([0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0])
    skills = torch.tensor([2, 1])
    assert torch.allclose(estimators.skill_reward(chance, skills, n), torch.zeros(2, dtype=torch.float64))
    assert torch.allclose(estimators.skill_reward(certain, skills, n), torch.full((2,), math.log(4), dtype=torch.float64))
    # A state that points to the other skill: log(0.1 * 4) < 0.
    wrong = logs([0.1, 0.9, 0.0, 0.0])
    assert estimators.skill_reward(wrong, torch.tensor([0]), n).item() == pytest.approx(math.log(0.4))


def test_disagreement_bonus_by_hand():
    agree = torch.stack([logs([0.3, 0.7]), logs([0.3, 0.7])])
    assert estimators.disagreement_bonus(agree).item() == pytest.approx(0.0, abs=1e-12)
    opposite = torch.stack([logs([1.0, 0.0]), logs([0.0, 1.0])])
    assert estimators.disagreement_bonus(opposite).item() == pytest.approx(math.log(2))
    mixed = torch.stack([logs([0.5, 0.5]), logs([1.0, 0.0])])
    entropy_of_mean = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    mean_entropy = (math.log(2) + 0.0) / 2
    assert estimators.disagreement_bonus(mixed).item() == pytest.approx(entropy_of_mean - mean_entropy)


def test_vic_and_rvic_rewards_by_hand():
    skills = torch.tensor([1])
    assert estimators.vic_reward(logs([0.5, 0.5, 0.0, 0.0]), skills, 4).item() == pytest.approx(math.log(2))
    relative, absolute = logs([0.5, 0.5]), logs([0.75, 0.25])
    assert estimators.rvic_reward(relative, absolute, skills).item() == pytest.approx(math.log(0.5 / 0.25))


def test_effective_skills_is_exp_of_mean_reward():
    assert estimators.effective_skills(torch.full((5,), math.log(24))).item() == pytest.approx(24, rel=1e-5)
    assert estimators.effective_skills(torch.zeros(5)).item() == pytest.approx(1.0)
    # exp of the mean, not the mean of exps: half certain (log 4), half chance (0) over N = 4 → 2.
    assert estimators.effective_skills(torch.tensor([math.log(4), 0.0])).item() == pytest.approx(2.0)


def test_plugin_mutual_information_by_hand():
    skills = torch.tensor([0, 1, 2, 3] * 5)
    assert estimators.plugin_mutual_information(skills, skills * 7, 4).item() == pytest.approx(math.log(4))
    independent = estimators.plugin_mutual_information(torch.tensor([0, 0, 1, 1]), torch.tensor([5, 6, 5, 6]), 2)
    assert independent.item() == pytest.approx(0.0, abs=1e-12)
    # Outcomes as (x, y) rows: displacements (1, 0) vs (0, 1) identify the two skills: one bit.
    rows = torch.tensor([[1, 0], [0, 1], [1, 0], [0, 1]])
    bits = estimators.nats_to_bits(estimators.plugin_mutual_information(torch.tensor([0, 1, 0, 1]), rows, 2))
    assert bits.item() == pytest.approx(1.0)


def test_per_skill_entropy_by_hand():
    skills = torch.tensor([0, 0, 0, 0, 1, 1])
    outcomes = torch.tensor([[0, 0], [0, 0], [1, 2], [1, 2], [3, 3], [3, 3]])
    entropies = estimators.per_skill_entropy(skills, outcomes, 3)
    assert entropies[0].item() == pytest.approx(math.log(2))
    assert entropies[1].item() == pytest.approx(0.0)
    assert math.isnan(entropies[2].item())  # skill 2 never ran


def test_ensemble_members_are_initialised_independently_and_trained_on_the_same_pairs():
    torch.manual_seed(0)
    ensemble = DiscriminatorEnsemble(input_dim=3, num_skills=4, ensemble_size=3, hidden_sizes=(8,))
    x = torch.randn(5, 3)
    out = ensemble(x)
    assert out.shape == (3, 5, 4)
    assert torch.allclose(out.exp().sum(-1), torch.ones(3, 5))
    assert not torch.allclose(out[0], out[1])  # different initial weights → disagreement
    skills = torch.tensor([0, 1, 2, 3, 0])
    by_hand = sum(-out[e, torch.arange(5), skills].mean() for e in range(3))
    assert ensemble_cross_entropy(out, skills).item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_combine_clips_the_skill_reward_and_weights_the_bonus():
    terms = SkillRewards(skill=torch.tensor([-1.0, 2.0]), bonus=torch.tensor([0.5, 0.0]), effective_log=torch.zeros(2))
    clipped = combine(terms, RewardSettings(bonus_weight=20.0, clip_skill_reward_at_zero=True))
    assert torch.allclose(clipped, torch.tensor([10.0, 2.0]))
    raw = combine(terms, RewardSettings(bonus_weight=0.0, clip_skill_reward_at_zero=False))
    assert torch.allclose(raw, torch.tensor([-1.0, 2.0]))


DISDAIN = DisdainHyperparameters(discriminator_hidden_sizes=[16], ensemble_size=2)
VIC = VicHyperparameters(discriminator_hidden_sizes=[16])
RVIC = RvicHyperparameters(discriminator_hidden_sizes=[16])


def test_methods_wire_the_right_discriminators():
    layout = SkillObservationLayout(state_dim=3, num_skills=4, include_start=True, include_time=False)
    state, start, skills = torch.randn(6, 3), torch.randn(6, 3), torch.tensor([0, 1, 2, 3, 0, 1])
    disdain = DisdainMethod(SkillObservationLayout(3, 4, False, False), DISDAIN)
    single = DisdainMethod(SkillObservationLayout(3, 4, False, False), DISDAIN.model_copy(update={"ensemble_size": 1,
                                                                                              "bonus_weight": 0.0}))
    assert torch.all(single.rewards(single.discriminate(single.build_discriminator(), state), skills).bonus == 0)
    terms = disdain.rewards(disdain.discriminate(disdain.build_discriminator(), state), skills)
    assert torch.all(terms.bonus > 0)  # two fresh, independently initialised members disagree
    vic = VicMethod(layout, VIC)
    assert vic.build_discriminator().net[0].in_features == 6  # q(z | s_T, s_0)
    rvic = RvicMethod(layout, RVIC)
    net = rvic.build_discriminator()
    outputs = rvic.discriminate(net, state, start)
    expected = outputs["relative_log_probs"][torch.arange(6), skills] - outputs["absolute_log_probs"][torch.arange(6), skills]
    assert torch.allclose(rvic.rewards(outputs, skills).skill, expected)
    with pytest.raises(ValueError, match="start state"):
        RvicMethod(SkillObservationLayout(3, 4, False, False), RVIC).build_discriminator()


def test_skill_env_layout_and_fixed_length():
    env = SkillEnv({"env": "open-room", "options": {"size": 5}, "num_skills": 3, "skill_length": 4, "include_start": True, "include_time": True})
    obs, info = env.reset(seed=1, options={"skill": 2, "start_pos": (1, 1)})
    assert obs.shape == (25 + 25 + 3 + 1,) and env.observation_space.contains(obs)
    state, start, skill = env.layout.split(torch.as_tensor(obs)[None])
    assert skill.item() == 2 and torch.equal(state, start)
    for t in range(4):
        obs, _, terminated, truncated, info = env.step(2)  # right
        assert terminated == (t == 3) and not truncated  # the skill ends at T: terminated, never truncated
    state, start, _ = env.layout.split(torch.as_tensor(obs)[None])
    assert not torch.equal(state, start) and obs[-1] == pytest.approx(1.0)
    assert info["pos"] == (5, 1) and info["start_pos"] == (1, 1)


def test_rollout_and_metrics_of_scripted_skills():
    # Skill k repeats action k from the centre of an open room: 5 skills, 5 different end cells.
    envs = [SkillEnv({"env": "open-room", "options": {"size": 9, "start": "fixed"}, "num_skills": 5, "skill_length": 3}) for _ in range(4)]
    layout = envs[0].layout

    def act(obs):
        return torch.nn.functional.one_hot(layout.split(obs)[2], 5).float()  # logits: argmax = own skill

    rollouts = rollout_skills(envs, act, episodes_per_skill=3)
    assert sorted(rollouts.skills.tolist()) == sorted([0, 1, 2, 3, 4] * 3)
    displacement = rollouts.final_pos - rollouts.start_pos
    assert displacement[rollouts.skills == 2].tolist() == [[3, 0]] * 3
    method = DisdainMethod(layout, DISDAIN)

    def perfect(final_obs):  # a discriminator that is certain and right
        skills = layout.split(final_obs)[2]
        return {"member_log_probs": torch.stack([torch.nn.functional.one_hot(skills, 5).double().log()] * 2)}

    figures = skill_metrics(rollouts, method, perfect)
    assert figures["effective_skills"] == pytest.approx(5.0)
    assert figures["mutual_information_final_bits"] == pytest.approx(math.log2(5))
    assert figures["skill_entropy_final_bits"] == pytest.approx(0.0)
    assert figures["eval_bonus_mean"] == pytest.approx(0.0)


def test_pure_modules_do_not_import_ray():
    code = (
        "import sys\n"
        "import armillary.algorithms.skills.estimators, armillary.algorithms.skills.networks, armillary.algorithms.skills.env\n"
        "import armillary.algorithms.skills.evaluation, armillary.algorithms.disdain.losses, armillary.algorithms.vic.losses\n"
        "import armillary.algorithms.rvic.losses, armillary.algorithms.disdain.config\n"
        "assert not any(m == 'ray' or m.startswith('ray.') for m in sys.modules), 'ray was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
