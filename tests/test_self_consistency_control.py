"""The self-consistent control agent (`self-consistency-ppo`): its segments of the rollouts by hand, its
hyperparameters' errors, which parameters the Learner's self-consistency loss moves for each method (a wrong
stop-gradient fails it), and the contract: builds from its preset, two iterations, every trainable parameter
changes, checkpoint → restore → continue keeps the model and the value."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from armillary.algorithms.ppo.rollout import Rollout, train_batch
from armillary.algorithms.self_consistency import segments as seg
from armillary.algorithms.self_consistency.config import Method, SelfConsistentPPOHyperparameters
from armillary.algorithms.self_consistency.networks import LatentModel


def _rollout() -> Rollout:
    """T = 5 slots, 2 envs; observation = 10 × slot + env. Env 0: an episode terminates at slot 1 (slot 2 is its
    reset), the next runs from slot 3 past the rollout's end. Env 1: slot 0 is a reset, its episode runs 1 … 3 and
    is truncated at 3 (slot 4 is a reset)."""
    slots, envs = 5, 2
    observations = (10.0 * np.arange(slots + 1)[:, None] + np.arange(envs)[None, :])[..., None].astype(np.float32)
    terminated, truncated = np.zeros((slots, envs), bool), np.zeros((slots, envs), bool)
    terminated[1, 0], truncated[3, 1] = True, True
    return Rollout(observations=observations, actions=np.arange(slots * envs).reshape(slots, envs) % 2,
                   rewards=np.arange(slots * envs, dtype=np.float32).reshape(slots, envs),
                   terminated=terminated, truncated=truncated,
                   extra_model_outputs={"action_logp": np.zeros((slots, envs), np.float32),
                                        "action_dist_inputs": np.zeros((slots, envs, 2), np.float32)},
                   starts_resetting=np.array([False, True]), step_times=np.arange(slots + 1, dtype=float),
                   weights_seq_no=0, episode_ids_in=["a", "b"], t_in=np.zeros(envs, int), episode_ids_out=["c", "d"])


def test_segments_follow_each_row_until_its_episode_or_the_rollout_ends():
    rollout = _rollout()
    slot, env = rollout.chunk_order()
    # RLlib's order: finished chunks env by env (env 0: 0-1, env 1: 1-3), then the ongoing one (env 0: 3-4).
    assert list(zip(slot, env)) == [(0, 0), (1, 0), (1, 1), (2, 1), (3, 1), (3, 0), (4, 0)]
    targets = 100.0 + np.arange(7, dtype=np.float32)  # the value target of row i is 100 + i
    got = seg.batch_segments([rollout], targets, depth=2)
    np.testing.assert_array_equal(got[seg.SEGMENT_VALID], [[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 0], [1, 0, 0],
                                                           [1, 1, 0], [1, 0, 0]])
    # Row (1, 1): s_1, s_2, s_3 of env 1 with their rows' targets (rows 2, 3, 4); row (0, 0) stops at the termination.
    np.testing.assert_array_equal(got[seg.SEGMENT_OBS][2, :, 0], [11, 21, 31])
    np.testing.assert_array_equal(got[seg.SEGMENT_TARGETS][2], [102, 103, 104])
    np.testing.assert_array_equal(got[seg.SEGMENT_TARGETS][0], [100, 101, 0])
    np.testing.assert_array_equal(got[seg.SEGMENT_CONTINUES][0], [1, 0])  # terminated at slot 1
    np.testing.assert_array_equal(got[seg.SEGMENT_CONTINUES][3], [1, 1])  # truncated at slot 3: not a termination
    np.testing.assert_array_equal(got[seg.SEGMENT_REWARDS][2], rollout.rewards[[1, 2], 1])
    np.testing.assert_array_equal(got[seg.SEGMENT_ACTIONS][5], rollout.actions[[3, 4], 0])
    # Row i's segment starts at row i's observation of PPO's train batch.
    batch = train_batch([rollout], [np.zeros((6, 2), np.float32)], gamma=0.9, lambda_=0.95)
    np.testing.assert_array_equal(got[seg.SEGMENT_OBS][:, 0], batch["obs"])
    with pytest.raises(ValueError, match="7 real steps"):
        seg.batch_segments([rollout], targets[:6], depth=2)


def test_bad_hyperparameters_are_rejected_naming_the_field():
    with pytest.raises(ValueError, match="hidden_sizes"):
        SelfConsistentPPOHyperparameters(hidden_sizes=[32])
    with pytest.raises(ValueError, match="rollout_depth"):
        SelfConsistentPPOHyperparameters(rollout_depth=0)
    with pytest.raises(ValueError, match="method"):
        SelfConsistentPPOHyperparameters(method="sc-sideways")
    with pytest.raises(ValueError, match="use_kl_loss"):
        SelfConsistentPPOHyperparameters(use_kl_loss=True)
    assert SelfConsistentPPOHyperparameters(method="td").method is Method.TD


def test_a_spec_with_several_learners_is_refused_before_anything_starts():
    from armillary.platform.spec import SpecError, load_spec

    with pytest.raises(SpecError, match="resources.num_learners: self-consistency-ppo trains on one learner"):
        load_spec("self-consistency/cartpole", ["resources.num_learners=2"])


ray = pytest.importorskip("ray")


def test_the_module_refuses_what_the_model_cannot_take():
    import gymnasium as gym

    from armillary.algorithms.self_consistency.module import SelfConsistentModule

    sizes = {"latent_dim": 8, "hidden": 8}
    with pytest.raises(ValueError, match="discrete action space"):
        SelfConsistentModule(observation_space=gym.spaces.Box(-1, 1, (4,)), action_space=gym.spaces.Box(-1, 1, (1,)),
                             model_config=sizes)
    with pytest.raises(ValueError, match="flat"):
        SelfConsistentModule(observation_space=gym.spaces.Box(0, 1, (8, 8, 3)), action_space=gym.spaces.Discrete(2),
                             model_config=sizes)
    module = SelfConsistentModule(observation_space=gym.spaces.Box(-1, 1, (4,)), action_space=gym.spaces.Discrete(3),
                                  model_config=sizes)
    obs = torch.randn(5, 4)
    out = module.forward_train({"obs": obs})
    assert out["action_dist_inputs"].shape == (5, 3)
    # PPO's critic is the latent model's value head on the encoded state.
    torch.testing.assert_close(module.compute_values({"obs": obs}), module.model.predict_value(module.model.encode(obs)))


@pytest.fixture(scope="module")
def algo(local_ray):
    from armillary.platform.rllib_config import build_algorithm_config
    from armillary.platform.spec import load_spec

    built = build_algorithm_config(load_spec("self-consistency/cartpole", smoke=True), seed=0).build_algo()
    yield built
    built.stop()


def _learner(algo):
    learner = algo.learner_group._learner  # num_learners=0: the local learner, in this process
    assert learner is not None
    return learner


def _minibatch(model: LatentModel, depth: int, rows: int = 16) -> dict[str, torch.Tensor]:
    """A minibatch with PPO's columns and the segments, all steps valid, on CartPole-shaped observations."""
    generator = torch.Generator().manual_seed(0)
    obs = torch.randn(rows, depth + 1, 4, generator=generator)
    actions = torch.randint(2, (rows, depth + 1), generator=generator)
    return {"obs": obs[:, 0], "actions": actions[:, 0], "action_logp": torch.full((rows,), -0.7),
            "advantages": torch.randn(rows, generator=generator), "value_targets": torch.randn(rows, generator=generator),
            seg.SEGMENT_OBS: obs, seg.SEGMENT_ACTIONS: actions[:, :depth],
            seg.SEGMENT_REWARDS: torch.ones(rows, depth), seg.SEGMENT_CONTINUES: torch.ones(rows, depth),
            seg.SEGMENT_VALID: torch.ones(rows, depth + 1), seg.SEGMENT_TARGETS: torch.randn(rows, depth + 1, generator=generator)}


def _gradients(loss: torch.Tensor, model: LatentModel) -> dict[str, torch.Tensor]:
    """The gradient of a loss on each part of the latent model (zeros where it does not reach)."""
    parts = LatentModel.MODEL_PARTS + LatentModel.VALUE_PARTS
    params = {part: list(getattr(model, part).parameters()) for part in parts}
    flat = [p for part in parts for p in params[part]]
    grads = (torch.autograd.grad(loss, flat, allow_unused=True, retain_graph=True) if loss.requires_grad
             else [None] * len(flat))
    out, i = {}, 0
    for part in parts:
        pieces = [torch.zeros_like(p) if g is None else g for p, g in zip(params[part], grads[i:i + len(params[part])])]
        out[part] = torch.cat([g.flatten() for g in pieces])
        i += len(params[part])
    return out


def _moved(grads: dict[str, torch.Tensor]) -> set[str]:
    return {part for part, g in grads.items() if g.abs().max() > 0}


@pytest.mark.parametrize("method, parts", [
    (Method.TD, set()),
    (Method.DYNA, {"value"}),
    (Method.SC_DIRECT, {"encoder", "transition", "value"}),  # never the reward or continuation: they are in the target
    (Method.SC_REVERSE, {"encoder", "transition", "reward", "continuation", "value"}),
    (Method.SC_RESIDUAL, {"encoder", "transition", "reward", "continuation", "value"}),
])
def test_the_learners_consistency_loss_moves_the_methods_parts(algo, method, parts):
    learner = _learner(algo)
    hp, model = learner.hp, learner.module["default_policy"].unwrapped().model
    try:
        learner.hp = hp.model_copy(update={"method": method})
        figures = learner.model_losses(model, _minibatch(model, hp.rollout_depth))
        assert _moved(_gradients(figures["consistency_loss"], model)) == parts
        # The policy head is PPO's actor: imagined rollouts sample from it but never move it.
        assert "policy" not in _moved(_gradients(figures["consistency_loss"], model))
    finally:
        learner.hp = hp


@pytest.mark.parametrize("method", [Method.SC_DIRECT, Method.DYNA])
def test_the_minibatch_loss_adds_exactly_the_weighted_consistency_term(algo, method):
    """The learner's whole loss (PPO + grounded model + SC) for a method, minus the same loss without SC (td), on the
    same minibatch and imagined actions: sc_weight × the method's consistency gradient; for SC-Direct it reaches the
    transition and the encoder, for Dyna only the value head."""
    learner = _learner(algo)
    hp = learner.hp
    module = learner.module["default_policy"].unwrapped()
    model = module.model
    args = dict(clip_param=0.2, vf_clip_param=10.0, vf_loss_coeff=0.5, entropy_coeff=0.0, use_critic=True, with_stats=True)
    minibatch = _minibatch(model, hp.rollout_depth)
    try:
        totals = {}
        for variant in (Method.TD, method):
            learner.hp = hp.model_copy(update={"method": variant, "sc_weight": 2.0})
            learner._imagination.manual_seed(1)
            loss, stats = learner._minibatch_loss(module, minibatch, **args)
            totals[variant] = _gradients(loss, model)
            assert {"model_loss", "consistency_loss", "model_reward_loss"} <= set(stats)
        learner._imagination.manual_seed(1)
        learner.hp = hp.model_copy(update={"method": method})
        consistency = _gradients(learner.model_losses(model, minibatch)["consistency_loss"], model)
        difference = {part: totals[method][part] - totals[Method.TD][part] for part in totals[method]}
        for part in difference:
            torch.testing.assert_close(difference[part], 2.0 * consistency[part], atol=1e-5, rtol=1e-4)
        expected = {"encoder", "transition", "value"} if method is Method.SC_DIRECT else {"value"}
        assert {part for part, g in difference.items() if g.abs().max() > 1e-7} == expected
    finally:
        learner.hp = hp


def test_the_speed_levers_are_rejected_naming_the_field():
    for fraction in (0.0, 1.5, 0.001):  # 0.001 of a 250-row minibatch: no row left
        with pytest.raises(ValueError, match="model_row_fraction"):
            SelfConsistentPPOHyperparameters(model_row_fraction=fraction, minibatch_size=250)
    with pytest.raises(ValueError, match="model_every: 5 must divide the 48 minibatches"):
        SelfConsistentPPOHyperparameters(model_every=5)  # 6 epochs × 2000 / 250
    with pytest.raises(ValueError, match="model_every"):
        SelfConsistentPPOHyperparameters(model_every=0)
    assert SelfConsistentPPOHyperparameters(model_row_fraction=0.25).model_rows(250) == 62


def test_model_every_puts_the_model_terms_n_fold_on_every_nth_minibatch_only(algo):
    """model_every = 3: minibatch 0 of an update carries 3 × the model and SC terms, minibatches 1 and 2 are PPO's loss
    alone (no gradient reaches the transition, reward or continuation), minibatch 3 has the terms again; a minibatch
    without them that reports figures still reports them."""
    from armillary.algorithms.ppo.learner import minibatch_loss

    learner = _learner(algo)
    hp = learner.hp
    module = learner.module["default_policy"].unwrapped()
    model = module.model
    args = dict(clip_param=0.2, vf_clip_param=10.0, vf_loss_coeff=0.5, entropy_coeff=0.0, use_critic=True)
    minibatch = _minibatch(model, hp.rollout_depth)
    ppo = _gradients(minibatch_loss(module, minibatch, **args)[0], model)
    try:
        learner.hp = hp.model_copy(update={"model_every": 1})
        learner._imagination.manual_seed(1)
        full = _gradients(learner._minibatch_loss(module, minibatch, **args)[0], model)
        learner.hp = hp.model_copy(update={"model_every": 3})
        learner._minibatch_index = 0
        gradients, reported = [], {}
        for index in range(4):
            learner._imagination.manual_seed(1)
            loss, stats = learner._minibatch_loss(module, minibatch, with_stats=index == 2, **args)
            gradients.append(_gradients(loss, model))
            reported = stats if index == 2 else reported
        for part in full:
            torch.testing.assert_close(gradients[0][part] - ppo[part], 3.0 * (full[part] - ppo[part]), atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(gradients[3][part], gradients[0][part])
            for index in (1, 2):
                torch.testing.assert_close(gradients[index][part], ppo[part])
        assert _moved(gradients[1]) == _moved(ppo) and not {"transition", "reward", "continuation"} & _moved(ppo)
        assert {"transition", "reward", "continuation"} <= _moved(gradients[0])
        assert reported["consistency_loss"] > 0 and reported["model_reward_loss"] > 0  # index 2 reported its figures
    finally:
        learner.hp = hp
        learner._minibatch_index = 0


def test_model_row_fraction_takes_the_model_terms_on_the_first_rows(algo):
    learner = _learner(algo)
    hp = learner.hp
    module = learner.module["default_policy"].unwrapped()
    args = dict(clip_param=0.2, vf_clip_param=10.0, vf_loss_coeff=0.5, entropy_coeff=0.0, use_critic=True, with_stats=True)
    minibatch = _minibatch(module.model, hp.rollout_depth, rows=16)
    try:
        learner.hp = hp.model_copy(update={"model_row_fraction": 0.5})
        learner._imagination.manual_seed(2)
        _, stats = learner._minibatch_loss(module, minibatch, **args)
        learner._imagination.manual_seed(2)
        first = learner.model_losses(module.model, {key: value[:8] for key, value in minibatch.items()})
        learner._imagination.manual_seed(2)
        everything = learner.model_losses(module.model, minibatch)
        for name, value in first.items():
            torch.testing.assert_close(stats[name], value.detach())
        assert float(everything["model_value_loss"]) != pytest.approx(float(first["model_value_loss"]))
    finally:
        learner.hp = hp


def _weights(algo) -> dict[str, np.ndarray]:
    return {k: np.array(v, copy=True) for k, v in algo.learner_group.get_weights()["default_policy"].items()}


@pytest.mark.ray
def test_build_train_checkpoint_restore_continue(algo, tmp_path):
    from ray.rllib.algorithms.algorithm import Algorithm

    from armillary.platform.metrics import summarize

    before = _weights(algo)
    parts = {name.split(".")[1] for name in before}
    assert parts == {"encoder", "transition", "reward", "continuation", "policy", "value"}, parts
    start = algo.iteration
    for _ in range(2):
        result = algo.train()
    after = _weights(algo)
    unchanged = [name for name in before if np.array_equal(before[name], after[name])]
    assert not unchanged, f"parameters that did not train: {unchanged}"
    assert _learner(algo).num_array_updates >= 2, "the agent must train on the lean learner's array path"
    figures = summarize(result)
    for name in ("model_value_loss", "model_reward_loss", "model_continuation_loss", "consistency_loss"):
        assert np.isfinite(figures[f"self-consistency-ppo/{name}"]) and figures[f"self-consistency-ppo/{name}"] >= 0
    assert figures["self-consistency-ppo/consistency_loss"] > 0  # SC-Direct's term is on

    checkpoint = algo.save_to_path(str(tmp_path / "checkpoint"))
    restored = Algorithm.from_checkpoint(checkpoint)
    try:
        loaded = _weights(restored)
        assert loaded.keys() == after.keys()
        for name in after:  # the model (encoder, transition, reward, continuation) and the value head
            np.testing.assert_array_equal(after[name], loaded[name], err_msg=name)
        assert restored.iteration == algo.iteration == start + 2
        continued = restored.train()
        assert continued["training_iteration"] == start + 3
        moved = _weights(restored)
        for part in ("transition", "reward", "value", "encoder"):
            assert any(not np.array_equal(moved[n], loaded[n]) for n in moved if n.split(".")[1] == part), part
    finally:
        restored.stop()
