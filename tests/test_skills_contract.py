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
    optimizer = "sgd" if namespace == "vic" else "adam"  # both discriminator optimizers train and checkpoint
    spec = load_spec(preset, [*SMALL, f"algorithm.config.discriminator_optimizer={optimizer}"], smoke=True)
    algo = build_algorithm_config(spec, seed=0).build_algo()
    try:
        (built,) = algo.learner_group.foreach_learner(lambda learner: type(learner.get_optimizer(DISCRIMINATOR_MODULE_ID)).__name__)
        assert built.get().lower() == optimizer
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


def test_exported_skills_drive_the_downstream_goal_task(local_ray, tmp_path, monkeypatch):
    """RVIC downstream: a skill action replays the trained policy greedily for T steps; a primitive is one step."""
    import torch

    from armillary.envs import registry as environments
    from armillary.envs.skill_options import export_skill_library

    spec = load_spec("rvic/open-room", SMALL, smoke=True)
    algo = build_algorithm_config(spec, seed=0).build_algo()
    try:
        algo.train()
        monkeypatch.chdir(tmp_path)
        export_skill_library(algo, "library")  # a relative path, as a user types it
        policy = algo.get_module()
    finally:
        algo.stop()
    size, num_skills, length = spec.env.config.size, spec.algorithm.config.num_skills, spec.algorithm.config.skill_length

    with pytest.raises(ValueError, match="skills: learned in open-room"):
        environments.make("open-room-skill-options", {"skills": "library", "size": size + 1})
    env = environments.make("open-room-skill-options", {"skills": "library", "size": size, "max_episode_steps": 50})
    assert env.action_space.n == num_skills + 5

    # The same skill, replayed by hand with the trained module from the same start: the same cells, T steps.
    room = environments.make("open-room", {"size": size, "max_episode_steps": 50, "start": "random", "observation": "xy"})
    corner, far = (1, 1), (size, size)  # the goal is 2 (size - 1) > T steps away: the skill cannot end early
    for skill in range(num_skills):
        env.reset(options={"start_pos": corner, "goal_pos": far})
        _, reward, terminated, _, info = env.step(skill)
        state, _ = room.reset(options={"start_pos": corner})
        start = state.copy()
        for _ in range(length):
            one_hot = np.eye(num_skills, dtype=np.float32)[skill]
            obs = torch.from_numpy(np.concatenate([state, start, one_hot])[None])
            action = int(policy.forward_inference({"obs": obs})["action_dist_inputs"].argmax(-1)[0])
            state, *_, expected = room.step(action)
        assert info["primitive_steps"] == length and info["skill"] == skill
        assert info["pos"] == expected["pos"] and reward == 0.0 and not terminated

    env.reset(options={"start_pos": corner, "goal_pos": far})
    _, _, _, _, info = env.step(num_skills + 2)  # primitive 2: one step right
    assert info["primitive_steps"] == 1 and info["pos"] == (2, 1)
