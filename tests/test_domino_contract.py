"""Contract of DOMiNO: build from the preset through the platform, two iterations, every trainable parameter
changes, the namespaced figures are there, and checkpoint → restore → continue keeps λ, ψ and v̄."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

ray = pytest.importorskip("ray")

from armillary.algorithms.domino.module import DOMINO_MODULE_ID  # noqa: E402
from armillary.platform.metrics import summarize  # noqa: E402
from armillary.platform.rllib_config import build_algorithm_config  # noqa: E402
from armillary.platform.spec import load_spec  # noqa: E402

pytestmark = pytest.mark.ray

SMALL = ["algorithm.config.train_batch_size=256", "algorithm.config.minibatch_size=64", "algorithm.config.num_epochs=2"]
STATE = ("psi", "value", "lagrange", "lagrange_integral", "adam_first", "adam_second", "adam_step", "seen")


def learner_weights(algo) -> dict[str, dict[str, np.ndarray]]:
    return {mid: {k: np.array(v, copy=True) for k, v in w.items()} for mid, w in algo.learner_group.get_weights().items()}


def domino_state(algo) -> dict[str, np.ndarray]:
    weights = learner_weights(algo)[DOMINO_MODULE_ID]
    return {name: weights[f"state.{name}"] for name in STATE}


def trainable_names(algo) -> dict[str, set[str]]:
    results = algo.learner_group.foreach_learner(
        lambda learner: {mid: {n for n, p in learner.module[mid].named_parameters() if p.requires_grad} for mid in learner.module.keys()}
    )
    return next(iter(results)).get()


@pytest.mark.parametrize("successor_features", ["moving_average", "network"])
def test_build_train_checkpoint_restore_continue(successor_features, local_ray, tmp_path):
    from ray.rllib.algorithms.algorithm import Algorithm

    spec = load_spec("domino/grid", SMALL + [f"algorithm.config.successor_features={successor_features}"], smoke=True)
    num_policies = spec.algorithm.config.num_policies
    network = successor_features == "network"
    algo = build_algorithm_config(spec, seed=0).build_algo()
    try:
        before = learner_weights(algo)
        assert set(before) == {"default_policy", DOMINO_MODULE_ID}
        for _ in range(2):
            result = algo.train()
        after = learner_weights(algo)
        trainable = trainable_names(algo)
        assert trainable["default_policy"]
        if network:  # the successor-feature head is the state module's only trained part
            assert trainable[DOMINO_MODULE_ID] and all(n.startswith("state.sf_network.") for n in trainable[DOMINO_MODULE_ID])
        else:
            assert not trainable[DOMINO_MODULE_ID]  # the state is buffers only
        unchanged = [f"{mid}/{n}" for mid, names in trainable.items() for n in names if np.array_equal(before[mid][n], after[mid][n])]
        assert not unchanged, f"parameters that did not train: {unchanged}"

        state = domino_state(algo)
        assert state["seen"].all(), "every policy should have data after two iterations of 256 steps"
        assert state["adam_step"] == 2, "one multiplier step per training iteration"
        assert state["lagrange"][0] == 0 and (state["lagrange"][1:] != 0).all()
        for name in ("psi", "value"):
            assert not np.array_equal(before[DOMINO_MODULE_ID][f"state.{name}"], state[name]), name

        figures = summarize(result)
        for i in range(1, num_policies):
            assert 0 < figures[f"domino/lagrange/{i}"] < 1
            assert np.isfinite(figures[f"domino/value_ratio/{i}"]) and np.isfinite(figures[f"domino/constraint_margin/{i}"])
        for i in range(num_policies):
            assert figures[f"domino/nearest_sf_distance/{i}"] >= figures["domino/min_pairwise_sf_distance"] >= 0
        assert np.isfinite(figures["domino/diversity_reward_mean"])
        if network:
            assert figures["domino/sf_td_loss"] >= 0 and np.isfinite(figures["domino/sf_network_gap"])
            assert np.abs(state["psi"]).max() > 0, "ψ should come from the trained head, which starts at 0"
        else:
            assert "domino/sf_td_loss" not in figures
        # Separate value heads for r_e and r_d.
        policy_figures = result["learners"]["default_policy"]
        assert np.isfinite(policy_figures["vf_loss_extrinsic"]) and np.isfinite(policy_figures["vf_loss_diversity"])

        from armillary.algorithms import registry

        registry.get("domino").final_artifacts(algo, tmp_path / "artifacts")
        assert (tmp_path / "artifacts" / "occupancy_per_policy.png").stat().st_size > 0
        assert (tmp_path / "artifacts" / "domino_policies.json").stat().st_size > 0

        checkpoint = algo.save_to_path(str(tmp_path / "checkpoint"))
        restored = Algorithm.from_checkpoint(checkpoint)
        try:
            loaded = domino_state(restored)
            for name in STATE:
                np.testing.assert_array_equal(state[name], loaded[name], err_msg=name)
            head = {n: v for n, v in learner_weights(algo)[DOMINO_MODULE_ID].items() if n.startswith("state.sf_network.")}
            restored_head = {n: v for n, v in learner_weights(restored)[DOMINO_MODULE_ID].items() if n.startswith("state.sf_network.")}
            assert bool(head) == network and head.keys() == restored_head.keys()
            for name in head:
                np.testing.assert_array_equal(head[name], restored_head[name], err_msg=name)
            assert restored.iteration == algo.iteration == 2
            continued = restored.train()
            assert continued["training_iteration"] == 3
            after_restore = domino_state(restored)
            assert after_restore["adam_step"] == 3
            assert not np.array_equal(after_restore["lagrange"], loaded["lagrange"]), "λ did not move after restore"
            assert not np.array_equal(after_restore["psi"], loaded["psi"]), "ψ did not move after restore"
            if network:
                continued_head = learner_weights(restored)[DOMINO_MODULE_ID]
                assert any(not np.array_equal(continued_head[n], head[n]) for n in head), "the head did not train after restore"
        finally:
            restored.stop()
    finally:
        algo.stop()


def test_a_pbt_exploit_carries_the_state_and_the_new_alpha_takes_over(local_ray, tmp_path):
    """What PBT does to a weaker trial: build it with its mutated config (here α 0.9 → 0.5), restore the stronger
    trial's checkpoint into it (trainable.train_trial: restore_from_path), continue. λ, its PI integral, ψ and v̄
    must be the stronger trial's, and the next multiplier step must use the new α."""
    import torch

    from armillary.algorithms.domino import losses

    donor = build_algorithm_config(load_spec("domino/grid", SMALL, smoke=True), seed=0).build_algo()
    try:
        for _ in range(2):
            donor.train()
        checkpoint = donor.save_to_path(str(tmp_path / "donor"))
        carried = domino_state(donor)
        integral_before = learner_weights(donor)[DOMINO_MODULE_ID]["state.lagrange_integral"]
    finally:
        donor.stop()
    spec = load_spec("domino/grid", SMALL + ["algorithm.config.optimality_ratio=0.5"], smoke=True)
    hp = spec.algorithm.config
    weaker = build_algorithm_config(spec, seed=1).build_algo()
    try:
        weaker.restore_from_path(checkpoint)
        restored = domino_state(weaker)
        for name in STATE:
            np.testing.assert_array_equal(carried[name], restored[name], err_msg=name)
        weaker.train()
        weights = learner_weights(weaker)[DOMINO_MODULE_ID]
        value = torch.as_tensor(weights["state.value"])
        violation = losses.normalised_violation(value, min(0.5 + hp.target_margin, 1.0))
        expected = np.clip(integral_before + hp.multiplier_lr * violation.numpy(), -hp.multiplier_bound, hp.multiplier_bound)
        np.testing.assert_allclose(weights["state.lagrange_integral"], expected, rtol=0, atol=1e-6)
    finally:
        weaker.stop()


@pytest.mark.parametrize("preset, extrinsic_weight", [("domino/grid-no-diversity", 1.0), ("domino/grid-fixed-mix", 0.5)])
def test_baselines_keep_fixed_weights(preset, extrinsic_weight, local_ray):
    spec = load_spec(preset, SMALL, smoke=True)
    algo = build_algorithm_config(spec, seed=0).build_algo()
    try:
        result = summarize(algo.train())
        assert result["domino/lagrange/1"] == extrinsic_weight
        assert (domino_state(algo)["lagrange"] == 0).all() and domino_state(algo)["adam_step"] == 0
    finally:
        algo.stop()


@pytest.mark.parametrize("successor_features", ["moving_average", "network"])
def test_cluster_scale_walker_preset_builds_and_runs_here(successor_features, local_ray):
    overrides = ["algorithm.config.train_batch_size=128", "algorithm.config.minibatch_size=64",
                 f"algorithm.config.successor_features={successor_features}"]
    spec = load_spec("domino/walker", overrides, smoke=True)
    assert spec.algorithm.config.multiplier_optimizer == "pi"
    algo = build_algorithm_config(spec, seed=0).build_algo()
    try:
        for _ in range(2):
            result = summarize(algo.train())
        assert np.isfinite(result["domino/min_pairwise_sf_distance"])
        assert domino_state(algo)["psi"].shape == (spec.algorithm.config.num_policies, 24)  # walker's proprioceptive state
        assert ("domino/sf_td_loss" in result) == (successor_features == "network")
    finally:
        algo.stop()


def test_walker_final_artifacts_write_one_clip_per_policy(local_ray, tmp_path, monkeypatch):
    """The walker's final artifacts: one GIF per policy (rendered headless with MUJOCO_GL=egl), at tiny sizes."""
    import json

    from PIL import Image

    from armillary.algorithms import registry
    from armillary.algorithms.domino import configure

    monkeypatch.setattr(configure, "CLIP_EVERY", 3)
    overrides = ["algorithm.config.train_batch_size=128", "algorithm.config.minibatch_size=64", "algorithm.config.num_policies=3",
                 "algorithm.config.summary_episodes=1", "algorithm.config.clip_steps=6", "env.config.render_size=32"]
    spec = load_spec("domino/walker", overrides, smoke=True)
    algo = build_algorithm_config(spec, seed=0).build_algo()
    try:
        algo.train()
        registry.get("domino").final_artifacts(algo, tmp_path / "artifacts")
    finally:
        algo.stop()
    clips = sorted((tmp_path / "artifacts").glob("policy_*.gif"))
    assert [c.name for c in clips] == ["policy_00.gif", "policy_01.gif", "policy_02.gif"]
    for clip in clips:
        with Image.open(clip) as gif:
            assert gif.size == (32, 32) and gif.n_frames >= 2  # reset, steps 3 and 6 (identical frames merge)
    assert len(json.loads((tmp_path / "artifacts" / "domino_policies.json").read_text())) == 3
    assert not (tmp_path / "artifacts" / "occupancy_per_policy.png").exists()


def test_the_lean_array_path_equals_the_connector_pipeline(local_ray):
    """DOMiNO's train batch from the lean env runner's rollout arrays (learner._columns_from_rollouts) == the one its
    learner connector (DominoRewardConnector, MultiStreamAdvantages) makes from the same rollouts cut into episode
    chunks, row for row, and both leave ψ and v̄ in the same state; the training loop takes the array path."""
    import copy

    import torch
    from ray.rllib.core import DEFAULT_MODULE_ID
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.learner.training_data import TrainingData
    from ray.rllib.evaluation.postprocessing import Postprocessing

    from armillary.algorithms.ppo.rollout import Rollout, expand

    spec = load_spec("domino/grid", SMALL, smoke=True)
    algo = build_algorithm_config(spec, seed=0).build_algo()
    try:
        algo.train()  # ψ, v̄ and λ away from their initial values
        learner, runner = algo.learner_group._learner, algo.env_runner
        assert runner.emits_rollouts() and learner.lean_path_applies() and learner.array_path_applies()
        rollouts = runner.sample(num_timesteps=200) + runner.sample(num_timesteps=77)  # chunks cut by the end
        assert all(isinstance(r, Rollout) for r in rollouts)
        state = learner.module[DOMINO_MODULE_ID].unwrapped().state
        before = copy.deepcopy(state.state_dict())
        lean = learner._columns_from_rollouts(DEFAULT_MODULE_ID, rollouts)
        after_lean = copy.deepcopy(state.state_dict())
        state.load_state_dict(before)
        rllib = learner._make_batch_if_necessary(training_data=TrainingData(episodes=expand(rollouts)))
        rllib = learner._loss_columns(rllib.policy_batches[DEFAULT_MODULE_ID])
        for name, value in state.state_dict().items():
            torch.testing.assert_close(after_lean[name], value, msg=name)
        assert not torch.equal(after_lean["psi"], before["psi"])
        assert lean[Postprocessing.VALUE_TARGETS].shape == (len(lean[Columns.OBS]), 2)
        for key in (Columns.OBS, Columns.ACTIONS, Columns.ACTION_LOGP):
            torch.testing.assert_close(lean[key], rllib[key], rtol=0, atol=0, msg=key)
        for key in (Postprocessing.VALUE_TARGETS, Postprocessing.ADVANTAGES):
            torch.testing.assert_close(lean[key], rllib[key].float(), rtol=1e-5, atol=1e-5, msg=key)
        updates = learner.num_array_updates
        result = algo.train()
        assert learner.num_array_updates == updates + 1
        assert {"vf_loss_extrinsic", "vf_loss_diversity", "policy_loss"} <= set(result["learners"][DEFAULT_MODULE_ID])
    finally:
        algo.stop()
