"""The `ppo` algorithm's lean learner and env runner (algorithms/ppo/learner.py, env_runner.py) do what RLlib's
own would: the same loss and update on the same batch, episodes that follow the env's dynamics, learning,
and RLlib's generic code wherever the lean loops do not apply (several learners)."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

ray = pytest.importorskip("ray")
torch = pytest.importorskip("torch")

from armillary.platform.rllib_config import build_algorithm_config  # noqa: E402
from armillary.platform.spec import load_spec  # noqa: E402

pytestmark = pytest.mark.ray

MODULE = "default_policy"


@pytest.fixture(scope="module")
def algo(local_ray):
    # A non-zero entropy bonus so that its term is compared too; 4 x 128 steps per sample.
    spec = load_spec("ppo/cartpole", ["algorithm.config.entropy_coeff=0.01", "algorithm.config.train_batch_size=512",
                                      "resources.num_envs_per_env_runner=4"])
    algo = build_algorithm_config(spec, seed=0).build_algo()
    yield algo
    algo.stop()


def _learner_and_batch(algo):
    from ray.rllib.core.learner.training_data import TrainingData

    learner = algo.learner_group._learner
    episodes = algo.env_runner.sample(num_timesteps=512)
    batch = learner._make_batch_if_necessary(training_data=TrainingData(episodes=copy.deepcopy(episodes)))
    return learner, episodes, batch.policy_batches[MODULE]


def test_the_lean_pieces_are_the_ones_in_use(algo):
    from armillary.algorithms.ppo.env_runner import LeanSingleAgentEnvRunner
    from armillary.algorithms.ppo.learner import LeanPPOTorchLearner

    assert isinstance(algo.env_runner, LeanSingleAgentEnvRunner) and algo.env_runner.lean_path_applies()
    learner = algo.learner_group._learner
    assert isinstance(learner, LeanPPOTorchLearner) and learner.lean_path_applies()
    updates = learner.num_lean_updates
    algo.train()
    assert learner.num_lean_updates == updates + 1


def test_lean_loss_equals_rllibs_ppo_loss_on_the_same_batch(algo):
    """ppo_loss on the real rows == PPOTorchLearner.compute_loss_for_module on RLlib's padded, masked batch,
    with the policy moved away from the sampling one so that the ratio clip and the value clip both act."""
    from ray.rllib.core.columns import Columns

    from armillary.algorithms.ppo.learner import ppo_loss

    learner, _, module_batch = _learner_and_batch(algo)
    module = learner.module[MODULE].unwrapped()
    config = learner.config.get_config_for_module(MODULE)
    state = copy.deepcopy(module.state_dict())
    try:
        with torch.no_grad():
            for param in module.parameters():
                param.add_(0.3 * torch.randn_like(param))
        batch = {key: torch.as_tensor(module_batch[key]) for key in module_batch.keys() if key != Columns.INFOS}
        rllib_loss = learner.compute_loss_for_module(module_id=MODULE, config=config, batch=batch,
                                                     fwd_out=module.forward_train(batch))
        # Not vf_explained_var: RLlib computes that one over the padded rows too, the lean learner over real steps.
        rllib_stats = {key: float(torch.as_tensor(learner.metrics.peek((MODULE, key))).detach())
                       for key in ("policy_loss", "vf_loss", "vf_loss_unclipped", "entropy")}
        mask = batch[Columns.LOSS_MASK].bool()
        assert not mask.all(), "RLlib pads each episode chunk with a masked step; the test should see some"
        real = {key: value[mask] for key, value in batch.items() if len(value) == len(mask)}
        lean_loss, lean_stats = ppo_loss(module, real, clip_param=config.clip_param, vf_clip_param=config.vf_clip_param,
                                         vf_loss_coeff=config.vf_loss_coeff, entropy_coeff=config.entropy_coeff,
                                         with_stats=True)
        ratio = torch.exp(module.get_train_action_dist_cls().from_logits(module.forward_train(real)[
            Columns.ACTION_DIST_INPUTS]).logp(real[Columns.ACTIONS]) - real[Columns.ACTION_LOGP])
        assert ((ratio - 1).abs() > config.clip_param).any(), "the ratio clip should act in this test"
    finally:
        module.load_state_dict(state)
    assert float(lean_loss.detach()) == pytest.approx(float(rllib_loss.detach()), rel=1e-5, abs=1e-6)
    for key, value in rllib_stats.items():
        assert float(lean_stats[key]) == pytest.approx(value, rel=1e-4, abs=1e-5), key


def test_lean_update_moves_the_weights_exactly_as_rllibs_update(algo):
    """From the same weights and a fresh Adam, on the same episodes, 3 full-batch epochs of the lean update
    and of RLlib's generic `Learner.update` (padded batch, masked means, its clip and Adam) end equal."""
    from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner

    learner, episodes, _ = _learner_and_batch(algo)
    module = learner.module[MODULE].unwrapped()
    start = {key: value.detach().clone() for key, value in module.state_dict().items()}

    def train(update) -> dict[str, np.ndarray]:
        # Same weights (copied into the same parameters the optimizer holds) and a fresh Adam for both.
        module.load_state_dict(start)
        learner.get_optimizer(MODULE).state.clear()
        results = update(learner, episodes=copy.deepcopy(episodes), num_epochs=3, minibatch_size=None,
                         shuffle_batch_per_epoch=False, timesteps={})
        return {key: value.detach().numpy().copy() for key, value in module.state_dict().items()}, results[MODULE]

    (lean, lean_results), (generic, generic_results) = train(type(learner).update), train(PPOTorchLearner.update)
    module.load_state_dict(start)
    assert lean.keys() == generic.keys()
    moved = max(float(np.abs(lean[k] - start[k].numpy()).max()) for k in lean)
    assert moved > 1e-4, "the update should change the weights"
    for key in lean:
        np.testing.assert_allclose(lean[key], generic[key], rtol=1e-4, atol=2e-6, err_msg=key)
    for key in ("policy_loss", "vf_loss", "entropy", "total_loss", "gradients_default_optimizer_global_norm"):
        assert float(lean_results[key].peek()) == pytest.approx(float(generic_results[key].peek()), rel=1e-3,
                                                                abs=1e-5), key


def test_lean_episodes_follow_the_env(algo):
    """Replay every sampled step in a CartPole set to the step's observation (CartPole's state is its
    observation): the next observation, reward and termination must be the recorded ones. Catches an
    observation/action off by one, a reset slot taken for a step, a chunk that loses its continuation."""
    import gymnasium as gym

    env = gym.make("CartPole-v1").unwrapped
    env.reset(seed=0)
    runner = algo.env_runner
    seen: dict[str, int] = {}  # episode id -> t at the end of its latest chunk
    for call in range(3):
        episodes = runner.sample(num_timesteps=512)
        assert sum(len(e) for e in episodes) >= 512
        for episode in episodes:
            episode.validate()
            if call > 0:  # (the first call continues episodes other tests sampled)
                assert episode.t_started == seen.get(episode.id_, 0), "a continued chunk starts where the last ended"
            seen[episode.id_] = episode.t
            obs, actions, rewards = episode.get_observations(), episode.get_actions(), episode.get_rewards()
            logp = episode.get_extra_model_outputs("action_logp")
            assert len(obs) == len(actions) + 1 == len(rewards) + 1 == len(logp) + 1
            for t, action in enumerate(actions):
                env.state, env.steps_beyond_terminated = np.asarray(obs[t], dtype=np.float64), None
                next_obs, reward, terminated, _, _ = env.step(int(action))
                np.testing.assert_allclose(next_obs, obs[t + 1], atol=1e-5)
                assert reward == rewards[t] == 1.0
                assert terminated == (episode.is_terminated and t == len(actions) - 1)
    metrics = runner.get_metrics()
    assert metrics["num_episodes"].peek() > 0 and metrics["episode_return_mean"].peek() > 5


def test_ppo_learns_cartpole_through_the_lean_path(local_ray):
    """The platform path with the lean pieces still learns: random CartPole is ~22; 10 iterations of 4000 steps
    reach well above 100 (the reference PPO: ~360 after 100k steps)."""
    spec = load_spec("ppo/cartpole", ["algorithm.config.train_batch_size=4000", "algorithm.config.minibatch_size=128",
                                      "algorithm.config.num_epochs=4"])
    algo = build_algorithm_config(spec, seed=0).build_algo()
    try:
        returns = [algo.train()["env_runners"]["episode_return_mean"] for _ in range(10)]
    finally:
        algo.stop()
    assert returns[0] < 40, returns
    assert max(returns[-3:]) > 100, returns


@pytest.mark.parametrize("num_learners", [1, 2])
def test_remote_learners(local_ray, num_learners):
    """One remote learner runs the lean update in its actor; two (DDP) hand over to RLlib's update. Both train."""
    spec = load_spec("ppo/cartpole", [f"resources.num_learners={num_learners}", "algorithm.config.train_batch_size=256",
                                      "algorithm.config.minibatch_size=64", "algorithm.config.num_epochs=2"])
    algo = build_algorithm_config(spec, seed=0).build_algo()
    try:
        applies = algo.learner_group.foreach_learner(lambda learner: learner.lean_path_applies())
        assert [r.get() for r in applies] == [num_learners == 1] * num_learners
        before = {k: v.clone() for k, v in algo.get_module().state_dict().items()}
        results = [algo.train() for _ in range(2)]
        after = algo.get_module().state_dict()
        lean_updates = [r.get() for r in algo.learner_group.foreach_learner(lambda learner: learner.num_lean_updates)]
    finally:
        algo.stop()
    assert lean_updates == [2 if num_learners == 1 else 0] * num_learners
    assert all(np.isfinite(r["learners"][MODULE]["total_loss"]) for r in results)
    assert any(not torch.equal(before[k], after[k]) for k in before), "the env runner's weights should be synced"
