"""Contract of the skill algorithms (VIC, DISDAIN, RVIC): build from the preset through the platform,
two iterations, every trainable parameter changes, checkpoint → restore → continue keeps the discriminators."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

ray = pytest.importorskip("ray")

from armillary.algorithms.skills.module import DISCRIMINATOR_MODULE_ID  # noqa: E402
from armillary.platform.rllib_config import build_algorithm_config  # noqa: E402
from armillary.platform.spec import load_spec  # noqa: E402

pytestmark = pytest.mark.ray

PRESETS = {
    # preset → (namespace, smoke-sized overrides that keep the whole file fast on 2 cores)
    "disdain/four-rooms": "disdain",
    "vic/four-rooms": "vic",
    "rvic/open-room": "rvic",
}
SMALL = [
    "algorithm.config.train_batch_size=256",
    "algorithm.config.minibatch_size=64",
    "algorithm.config.num_epochs=2",
    "algorithm.config.evaluation_interval=2",
    "algorithm.config.evaluation_episodes_per_skill=1",
]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def learner_weights(algo) -> dict[str, dict[str, np.ndarray]]:
    return {mid: {k: np.array(v, copy=True) for k, v in w.items()} for mid, w in algo.learner_group.get_weights().items()}


def trainable_names(algo) -> dict[str, set[str]]:
    """Names of the parameters that require grad, per module (buffers such as PPO's log-std clip are not)."""
    results = algo.learner_group.foreach_learner(
        lambda learner: {mid: {n for n, p in learner.module[mid].named_parameters() if p.requires_grad} for mid in learner.module.keys()}
    )
    return next(iter(results)).get()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_build_train_checkpoint_restore_continue(preset, local_ray, tmp_path):
    from ray.rllib.algorithms.algorithm import Algorithm

    namespace = PRESETS[preset]
    spec = load_spec(preset, SMALL, smoke=True)
    algo = build_algorithm_config(spec, seed=0).build_algo()
    try:
        before = learner_weights(algo)
        assert set(before) == {"default_policy", DISCRIMINATOR_MODULE_ID}
        for _ in range(2):
            result = algo.train()
        after = learner_weights(algo)
        trainable = trainable_names(algo)
        assert trainable[DISCRIMINATOR_MODULE_ID] and trainable["default_policy"]
        unchanged = [
            f"{mid}/{name}" for mid, names in trainable.items() for name in names if np.array_equal(before[mid][name], after[mid][name])
        ]
        assert not unchanged, f"parameters that did not train: {unchanged}"

        figures = result[namespace]
        for name in ("discriminator_loss", "skill_reward_mean", "effective_skills_train", "effective_skills"):
            assert np.isfinite(figures[name]), name
        assert 1.0 / spec.algorithm.config.num_skills <= figures["effective_skills"] <= spec.algorithm.config.num_skills
        if namespace == "disdain":
            assert figures["bonus_mean"] >= 0.0
            # Separate value estimates of skill reward and bonus (the preset's value_heads="separate").
            policy_figures = result["learners"]["default_policy"]
            assert np.isfinite(policy_figures["vf_loss_skill"]) and np.isfinite(policy_figures["vf_loss_bonus"])

        checkpoint = algo.save_to_path(str(tmp_path / "checkpoint"))
        restored = Algorithm.from_checkpoint(checkpoint)
        try:
            saved = learner_weights(algo)[DISCRIMINATOR_MODULE_ID]
            loaded = learner_weights(restored)[DISCRIMINATOR_MODULE_ID]
            assert saved.keys() == loaded.keys()
            for name in saved:
                np.testing.assert_array_equal(saved[name], loaded[name], err_msg=name)
            # The discriminator's optimizer state comes back too (Adam moments), not only its weights.
            optimizer_state = lambda a: a.learner_group.get_state(components="learner")["learner"]["optimizer"]  # noqa: E731
            key = next(k for k in optimizer_state(algo) if k.startswith(DISCRIMINATOR_MODULE_ID))
            moments = lambda s: [np.asarray(v["exp_avg"]) for v in s[key]["state"]["state"].values()]  # noqa: E731
            for a, b in zip(moments(optimizer_state(algo)), moments(optimizer_state(restored))):
                np.testing.assert_array_equal(a, b)
            assert restored.iteration == algo.iteration == 2
            continued = restored.train()
            assert continued["training_iteration"] == 3 and np.isfinite(continued[namespace]["discriminator_loss"])
            changed = learner_weights(restored)[DISCRIMINATOR_MODULE_ID]
            assert any(not np.array_equal(loaded[n], changed[n]) for n in loaded), "restored discriminator did not train"
        finally:
            restored.stop()
    finally:
        algo.stop()


def test_cluster_scale_atari_preset_builds_and_runs_here(local_ray):
    pytest.importorskip("ale_py")
    spec = load_spec("disdain/atari-pong", ["algorithm.config.train_batch_size=128", "algorithm.config.minibatch_size=64",
                                            "algorithm.config.skill_length=16"], smoke=True)
    algo = build_algorithm_config(spec, seed=0).build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        assert "disdain" in result, sorted(result)
        assert result["disdain"]["finished_skills"] > 0
        assert np.isfinite(result["disdain"]["discriminator_loss"]) and result["disdain"]["bonus_mean"] >= 0
    finally:
        algo.stop()
