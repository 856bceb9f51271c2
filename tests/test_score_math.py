"""SCoRe learner math on hand-checkable tensors (no Ray): log-probs, KL, shaped rewards, leave-one-out
baseline, per-turn credit, the loss's gradient direction, and the self-correction metrics."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from armillary.algorithms.score import losses
from armillary.algorithms.score.losses import KLEstimator, Variant


# ---- log-probs and KL --------------------------------------------------------------------------------


def test_response_log_probs_picks_the_next_token_and_masks_the_prompt():
    # Vocabulary of 2; logits at position t predict token t+1.
    probs = torch.tensor([[[0.25, 0.75], [0.5, 0.5], [0.9, 0.1]]])  # [1, 3, 2]
    input_ids = torch.tensor([[0, 1, 0]])
    mask = torch.tensor([[0, 1, 1]])
    out = losses.response_log_probs(probs.log(), input_ids, mask)
    assert torch.allclose(out, torch.tensor([[0.0, math.log(0.75), math.log(0.5)]]))
    prompt_only = losses.response_log_probs(probs.log(), input_ids, torch.tensor([[0, 0, 1]]))
    assert prompt_only[0, 1] == 0 and torch.isclose(prompt_only[0, 2], torch.tensor(math.log(0.5)))


def test_response_log_probs_rejects_a_mask_on_position_zero_and_bad_shapes():
    logits = torch.zeros(1, 3, 2)
    with pytest.raises(ValueError, match="response_mask"):
        losses.response_log_probs(logits, torch.zeros(1, 3, dtype=torch.long), torch.tensor([[1, 1, 1]]))
    with pytest.raises(ValueError, match="input_ids"):
        losses.response_log_probs(logits, torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4))


def test_kl_estimators_on_hand_values():
    logp = torch.tensor([[math.log(0.5), math.log(0.5), 0.0]])
    ref = torch.tensor([[math.log(0.25), math.log(0.5), 0.0]])
    mask = torch.tensor([[1, 1, 0]])
    k1 = losses.per_token_kl(logp, ref, mask, KLEstimator.K1)
    assert torch.allclose(k1, torch.tensor([[math.log(2.0), 0.0, 0.0]]))
    k3 = losses.per_token_kl(logp, ref, mask, KLEstimator.K3)
    # ratio π_ref/π_θ = 0.5: (0.5 − 1) − log 0.5
    assert torch.allclose(k3, torch.tensor([[-0.5 + math.log(2.0), 0.0, 0.0]]))
    assert torch.allclose(losses.sequence_kl(logp, ref, mask), torch.tensor([math.log(2.0)]))


def test_k3_is_non_negative_and_both_estimate_the_true_kl():
    torch.manual_seed(0)
    p = torch.tensor([0.7, 0.2, 0.1])
    q = torch.tensor([0.3, 0.3, 0.4])
    true_kl = float((p * (p / q).log()).sum())
    samples = torch.multinomial(p, 200_000, replacement=True)
    logp, logq = p.log()[samples][None], q.log()[samples][None]
    mask = torch.ones_like(logp)
    k1 = losses.per_token_kl(logp, logq, mask, "k1")
    k3 = losses.per_token_kl(logp, logq, mask, "k3")
    assert bool((k3 >= 0).all())
    assert abs(float(k1.mean()) - true_kl) < 0.01
    assert abs(float(k3.mean()) - true_kl) < 0.01


# ---- shaped rewards ----------------------------------------------------------------------------------


R1 = torch.tensor([1.0, 0.0, 1.0, 0.0])
R2 = torch.tensor([1.0, 1.0, 0.0, 0.0])  # c→c, i→c, c→i, i→i


def test_stage2_shaping_rewards_turn2_only_and_leaves_turn1_alone():
    rewards = losses.shaped_rewards(Variant.STAGE2, R1, R2, alpha=10.0, beta1=0.01, beta2=0.1)
    assert torch.equal(rewards.turn1, R1)
    assert torch.equal(rewards.turn2, torch.tensor([1.0, 11.0, -10.0, 0.0]))
    assert (rewards.beta_turn1, rewards.beta_turn2) == (0.01, 0.01)


def test_stage1_uses_turn2_reward_only_and_the_strong_kl_on_turn1():
    rewards = losses.shaped_rewards(Variant.STAGE1, R1, R2, alpha=10.0, beta1=0.01, beta2=0.1)
    assert torch.equal(rewards.turn1, torch.zeros(4))
    assert torch.equal(rewards.turn2, R2)
    assert (rewards.beta_turn1, rewards.beta_turn2) == (0.1, 0.01)


def test_naive_multi_turn_and_single_turn():
    naive = losses.shaped_rewards(Variant.NAIVE_MULTI_TURN, R1, R2, alpha=10.0, beta1=0.01, beta2=0.1)
    assert torch.equal(naive.turn1, R1) and torch.equal(naive.turn2, R2) and naive.train_turn2
    single = losses.shaped_rewards(Variant.SINGLE_TURN, R1, R2, alpha=10.0, beta1=0.01, beta2=0.1)
    assert torch.equal(single.turn1, R1) and not single.train_turn2


def test_shaped_rewards_name_the_bad_field():
    with pytest.raises(ValueError, match="alpha"):
        losses.shaped_rewards(Variant.STAGE2, R1, R2, alpha=-1.0, beta1=0.01, beta2=0.1)
    with pytest.raises(ValueError, match="correct_turn2"):
        losses.shaped_rewards(Variant.STAGE2, R1, R2[:3], alpha=1.0, beta1=0.01, beta2=0.1)
    with pytest.raises(ValueError):
        losses.shaped_rewards("stage3", R1, R2, alpha=1.0, beta1=0.01, beta2=0.1)


# ---- KL sign -----------------------------------------------------------------------------------------


def test_kl_penalty_is_subtracted_from_the_reward():
    reward = torch.tensor([1.0, 0.0])
    kl = torch.tensor([2.0, 0.5])
    assert torch.allclose(losses.kl_penalised(reward, kl, 0.1), torch.tensor([0.8, -0.05]))


def test_the_loss_gradient_pulls_the_policy_towards_the_reference():
    """Equal oracle rewards: only the KL term differs. The episode that drifted further from π_ref must be
    made LESS likely (its log-prob gradient of the loss is positive). Adding the KL would flip this."""
    # Two episodes of one problem, one response token each at position 1.
    logp = torch.tensor([[0.0, math.log(0.9)], [0.0, math.log(0.5)]], requires_grad=True)
    ref = torch.tensor([[0.0, math.log(0.3)], [0.0, math.log(0.5)]])  # episode 0 drifted: KL_0 = log 3 > 0 = KL_1
    turn1 = torch.tensor([[0, 1], [0, 1]])
    turn2 = torch.zeros(2, 2, dtype=torch.long)
    out = losses.score_loss(logp, ref, turn1, turn2, [1, 1], [0, 0], variant=Variant.NAIVE_MULTI_TURN,
                            group_size=2, beta1=0.5)
    assert out.returns_turn1[0] < out.returns_turn1[1]
    out.loss.backward()
    # d loss / d logp = −A: episode 0 has A < 0 → pushed down; episode 1 A > 0 → pushed up.
    assert logp.grad[0, 1] > 0 > logp.grad[1, 1]
    assert torch.allclose(out.returns_turn1, torch.tensor([1.0 - 0.5 * math.log(3.0), 1.0]))


# ---- baseline and credit -----------------------------------------------------------------------------


def test_leave_one_out_baseline_on_hand_values():
    returns = torch.tensor([1.0, 0.0, 0.0, 3.0, 3.0, 3.0])
    adv = losses.leave_one_out_advantages(returns, group_size=3)
    assert torch.allclose(adv, torch.tensor([1.0, -0.5, -0.5, 0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="group_size"):
        losses.leave_one_out_advantages(returns, group_size=1)
    with pytest.raises(ValueError, match="returns"):
        losses.leave_one_out_advantages(returns, group_size=4)


def _two_turn_batch():
    """4 episodes (2 problems × k=2), sequence [prompt, y1, y1, instr, y2] — masks mark y1 and y2."""
    turn1 = torch.tensor([[0, 1, 1, 0, 0]] * 4)
    turn2 = torch.tensor([[0, 0, 0, 0, 1]] * 4)
    logp = torch.full((4, 5), math.log(0.5)) * (turn1 + turn2)
    return logp, turn1, turn2


def test_turn1_tokens_never_see_the_bonus():
    """Per-turn credit: y1's advantages depend on r̂(y1) only. If α·(r̂(y2) − r̂(y1)) leaked into turn 1, the
    turn-1 advantages would change with α (and −α·r̂(y1) would reward a worse first attempt)."""
    logp, turn1, turn2 = _two_turn_batch()
    c1, c2 = [1, 0, 0, 0], [1, 1, 1, 0]
    outs = {a: losses.score_loss(logp, logp, turn1, turn2, c1, c2, variant=Variant.STAGE2, group_size=2, alpha=a)
            for a in (0.0, 10.0)}
    t1 = turn1.bool()
    for out in outs.values():
        # Problem 0: r̂(y1) = (1, 0) → A_1 = (+1, −1); problem 1: (0, 0) → 0. Same on both y1 tokens.
        assert torch.allclose(out.token_advantages[t1].view(4, 2), torch.tensor([[1.0, 1.0], [-1.0, -1.0], [0, 0], [0, 0]]))
    assert torch.equal(outs[0.0].token_advantages[t1], outs[10.0].token_advantages[t1])
    # Turn 2 does get the bonus: problem 0, episode 1 went wrong → right: r_2 = 1 + 10 = 11 vs 1 → A_2 = ∓10.
    a2 = outs[10.0].token_advantages[turn2.bool()]
    assert torch.allclose(a2, torch.tensor([-10.0, 10.0, 11.0, -11.0]))
    # Everything outside the responses gets nothing.
    assert torch.all(outs[10.0].token_advantages[~(t1 | turn2.bool())] == 0)


def test_a_better_first_attempt_is_never_penalised_in_stage2():
    logp, turn1, turn2 = _two_turn_batch()
    out = losses.score_loss(logp, logp, turn1, turn2, [1, 0, 1, 0], [1, 1, 1, 1], variant=Variant.STAGE2,
                            group_size=2, alpha=10.0)
    a1 = out.token_advantages[:, 1]
    assert a1[0] > 0 > a1[1] and a1[2] > 0 > a1[3]


def test_stage1_turn1_has_no_reward_only_the_strong_kl():
    logp, turn1, turn2 = _two_turn_batch()
    ref = logp.clone()
    ref[0, 1] = math.log(0.25)  # episode 0 drifted on its first turn: k1 KL = log 2
    out = losses.score_loss(logp, ref, turn1, turn2, [1, 0, 1, 0], [0, 1, 0, 1], variant=Variant.STAGE1,
                            group_size=2, alpha=10.0, beta1=0.01, beta2=0.1)
    assert torch.allclose(out.returns_turn1, torch.tensor([-0.1 * math.log(2.0), 0.0, 0.0, 0.0]))
    a1 = out.token_advantages[:, 1]
    assert torch.allclose(a1, torch.tensor([-0.1 * math.log(2.0), 0.1 * math.log(2.0), 0.0, 0.0]))
    assert torch.allclose(out.token_advantages[:, 4], torch.tensor([-1.0, 1.0, -1.0, 1.0]))


def test_single_turn_trains_turn1_only():
    logp, turn1, turn2 = _two_turn_batch()
    out = losses.score_loss(logp, logp, turn1, turn2, [1, 0, 1, 0], [0, 1, 0, 1], variant=Variant.SINGLE_TURN, group_size=2)
    assert torch.all(out.token_advantages[turn2.bool()] == 0)
    assert torch.allclose(out.token_advantages[:, 1], torch.tensor([1.0, -1.0, 1.0, -1.0]))


def test_loss_value_and_gradient_on_hand_values():
    logp = torch.tensor([[0.0, math.log(0.5)], [0.0, math.log(0.25)]], requires_grad=True)
    adv = torch.tensor([[0.0, 1.0], [0.0, -1.0]])
    loss = losses.reinforce_loss(logp, adv)
    assert torch.isclose(loss, torch.tensor(-(math.log(0.5) - math.log(0.25)) / 2))
    loss.backward()
    assert torch.allclose(logp.grad, torch.tensor([[0.0, -0.5], [0.0, 0.5]]))


def test_join_turns_keeps_each_turn_on_its_own_tokens():
    v1, m1 = torch.tensor([[0.0, -1.0]]), torch.tensor([[0, 1]])
    v2, m2 = torch.tensor([[0.0, 0.0, -2.0]]), torch.tensor([[0, 0, 1]])
    values, mask1, mask2 = losses.join_turns(v1, m1, v2, m2)
    assert values.tolist() == [[0.0, -1.0, 0.0, 0.0, -2.0]]
    assert mask1.tolist() == [[0, 1, 0, 0, 0]] and mask2.tolist() == [[0, 0, 0, 0, 1]]
    with pytest.raises(ValueError, match="turn2_values"):
        losses.join_turns(v1, m1, torch.zeros(2, 3), torch.zeros(2, 3))


def test_per_turn_masks_must_not_overlap():
    with pytest.raises(ValueError, match="both turns"):
        losses.per_turn_token_advantages(torch.ones(1), torch.ones(1), torch.tensor([[1, 1]]), torch.tensor([[0, 1]]))


# ---- metrics -----------------------------------------------------------------------------------------


def test_self_correction_metrics_on_hand_values():
    c1 = [True, False, True, False, True]
    c2 = [True, True, False, False, True]
    m = losses.self_correction_metrics(c1, c2, ["1", "2", "3", None, "5"], ["1", "7", "4", None, "5"])
    assert m["score/acc_t1"] == pytest.approx(0.6)
    assert m["score/acc_t2"] == pytest.approx(0.6)
    assert m["score/delta_t1_t2"] == pytest.approx(0.0)
    assert m["score/delta_i_to_c"] == pytest.approx(0.2)
    assert m["score/delta_c_to_i"] == pytest.approx(0.2)
    assert m["score/change_rate"] == pytest.approx(0.6)  # 2→7, 3→4, None counts as changed
    assert m["score/delta_t1_t2"] == pytest.approx(m["score/delta_i_to_c"] - m["score/delta_c_to_i"])


def test_metrics_reject_mismatched_lengths():
    with pytest.raises(ValueError, match="correct_turn2"):
        losses.self_correction_metrics([True], [True, False])
    with pytest.raises(ValueError, match="answers"):
        losses.self_correction_metrics([True], [True], ["1"], None)


def test_score_modules_import_without_ray():
    code = (
        "import sys; import armillary.algorithms.score.losses, armillary.algorithms.score.tasks, "
        "armillary.algorithms.score.sandbox, armillary.algorithms.score.model, armillary.algorithms.score.rollout, "
        "armillary.algorithms.score.config, armillary.algorithms.score.tasks.humaneval, "
        "armillary.algorithms.score.tasks.math_answers, armillary.algorithms.score.tasks.arithmetic, "
        "armillary.algorithms.score.pretrain; "
        "print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# ---- config ------------------------------------------------------------------------------------------


def test_config_defaults_are_the_papers_and_feed_the_loss():
    from armillary.algorithms.score.config import ScoreHyperparameters

    config = ScoreHyperparameters(model="some/path")
    assert (config.alpha, config.beta1, config.beta2, config.lr, config.temperature) == (10.0, 0.01, 0.1, 5e-6, 1.0)
    logp, turn1, turn2 = _two_turn_batch()
    out = losses.score_loss(logp, logp, turn1, turn2, [1, 0, 1, 0], [1, 1, 1, 1], **config.loss_kwargs() | {"group_size": 2})
    assert torch.isfinite(out.loss)


@pytest.mark.parametrize("field, value", [("alpha", -1.0), ("group_size", 1), ("lr", 0.0), ("variant", "stage3"),
                                          ("kl_estimator", "k2"), ("unknown_field", 1)])
def test_config_rejects_bad_values_naming_the_field(field, value):
    import pydantic

    from armillary.algorithms.score.config import ScoreHyperparameters

    with pytest.raises(pydantic.ValidationError, match=field):
        ScoreHyperparameters(model="m", **{field: value})


def test_stage1_config_needs_beta2_at_least_beta1():
    import pydantic

    from armillary.algorithms.score.config import ScoreHyperparameters

    with pytest.raises(pydantic.ValidationError, match="beta2"):
        ScoreHyperparameters(model="m", variant="stage1", beta1=0.5, beta2=0.1)


# ---- SFT on correction traces (the STaR-style baseline) ----------------------------------------------------


def test_correction_sft_trains_only_accepted_second_attempts():
    logp = torch.zeros(4, 6, requires_grad=True)
    turn2 = torch.tensor([[0, 0, 0, 1, 1, 0]] * 4)
    c1, c2 = [0, 1, 0, 1], [1, 1, 0, 0]  # i→c, c→c, i→i, c→i
    loss, kept = losses.correction_sft_loss(logp, turn2, c1, c2)
    loss.backward()
    assert kept.tolist() == [1, 1, 0, 0]
    grad = logp.grad
    assert (grad[:2, 3:5] == -0.5).all() and grad[2:].abs().sum() == 0 and grad[:, :3].abs().sum() == 0
    loss, kept = losses.correction_sft_loss(logp.detach(), turn2, c1, c2, only_corrections=True)
    assert kept.tolist() == [1, 0, 0, 0]


def test_sft_variants_have_no_rl_rewards():
    for variant in (Variant.SFT_CORRECTION, Variant.PAIR_SFT):
        with pytest.raises(ValueError, match=variant.value):
            losses.shaped_rewards(variant, [1.0], [1.0], alpha=1.0, beta1=0.01, beta2=0.1)


def test_pair_sft_pairs_each_wrong_attempt_with_a_correct_sibling_of_its_own_problem():
    # Two problems, k = 4: problem 0 has right attempts at rows 1 and 3, problem 1 has none.
    targets = losses.correction_pairs([0, 1, 0, 1, 0, 0, 0, 0], group_size=4)
    assert targets[1] is None and targets[3] is None  # a right attempt is not a correction
    assert (targets[0], targets[2]) == (1, 3)  # wrong attempts spread over the right siblings
    assert targets[4:] == [None] * 4  # no right sibling: nothing to learn from
    assert losses.correction_pairs([0, 0, 1], group_size=3) == [2, 2, None]
    with pytest.raises(ValueError, match="group_size"):
        losses.correction_pairs([0, 1, 0], group_size=2)


def test_sft_loss_trains_only_the_kept_rows_turn2_tokens():
    logp = torch.zeros(3, 5, requires_grad=True)
    turn2 = torch.tensor([[0, 0, 1, 1, 0]] * 3)
    losses.sft_loss(logp, turn2, torch.tensor([1.0, 0.0, 1.0])).backward()
    assert (logp.grad[[0, 2]][:, 2:4] == -0.5).all() and logp.grad[1].abs().sum() == 0
    assert logp.grad[:, [0, 1, 4]].abs().sum() == 0
    with pytest.raises(ValueError, match="kept"):
        losses.sft_loss(logp, turn2, torch.ones(2))
