"""The `ppo` algorithm's lean learner and env runner (algorithms/ppo/learner.py, env_runner.py, rollout.py) do what
RLlib's own would: the same GAE, value targets and batch rows from rollout arrays as RLlib's learner connector from
episodes (and as a plain per-episode implementation), the same loss and update on the same batch, episodes and
episode metrics that follow the env's dynamics, learning, and RLlib's generic code wherever the lean loops do not
apply (several learners)."""

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


def _episodes(samples):
    from armillary.algorithms.ppo.rollout import expand

    return expand(samples)


# ---------------------------------------------------------------------------------------------------------
# GAE and the train batch from rollout arrays (algorithms/ppo/rollout.py), against a plain implementation.


def random_rollout(rng, num_slots=40, num_envs=5, obs_dim=4, num_actions=2, p_terminate=0.08, p_truncate=0.08,
                   follows=None):
    """A rollout with the next-step-autoreset layout: after an env's episode ends (terminated or truncated), its
    next slot is a reset (reward 0, no flags); some envs start with a reset slot, or, after `follows`, those whose
    episode ended on its last slot, the others continuing its ongoing episodes (same ids)."""
    import uuid

    import gymnasium as gym

    from armillary.algorithms.ppo.rollout import Rollout

    starts_resetting = rng.random(num_envs) < 0.3 if follows is None else follows.done[-1].copy()
    terminated = np.zeros((num_slots, num_envs), dtype=bool)
    truncated = np.zeros((num_slots, num_envs), dtype=bool)
    rewards = rng.normal(size=(num_slots, num_envs))
    for i in range(num_envs):
        resetting = starts_resetting[i]
        for t in range(num_slots):
            if resetting:
                rewards[t, i], resetting = 0.0, False
                continue
            draw = rng.random()
            terminated[t, i], truncated[t, i] = draw < p_terminate, p_terminate <= draw < p_terminate + p_truncate
            resetting = terminated[t, i] or truncated[t, i]
    ids_in = [uuid.uuid4().hex for _ in range(num_envs)] if follows is None else list(follows.episode_ids_out)
    began = (terminated | truncated).any(0) | starts_resetting  # a new episode is going on after the rollout
    return Rollout(
        observations=rng.normal(size=(num_slots + 1, num_envs, obs_dim)).astype(np.float32),
        actions=rng.integers(num_actions, size=(num_slots, num_envs)),
        rewards=rewards, terminated=terminated, truncated=truncated,
        extra_model_outputs={
            "action_dist_inputs": rng.normal(size=(num_slots, num_envs, num_actions)).astype(np.float32),
            "action_logp": -rng.random((num_slots, num_envs)).astype(np.float32)},
        starts_resetting=starts_resetting, weights_seq_no=3,
        step_times=np.cumsum(rng.random(num_slots + 1)) + (0 if follows is None else follows.step_times[-1]),
        episode_ids_in=ids_in, t_in=rng.integers(0, 50, size=num_envs),
        episode_ids_out=[uuid.uuid4().hex if b else e for b, e in zip(began, ids_in)],
        observation_space=gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32),
        action_space=gym.spaces.Discrete(num_actions))


def reference_train_batch(rollouts, values, gamma, lambda_, truncation_bootstraps=True):
    """RLlib's PPO batch written out episode chunk by episode chunk, in float64: chunks of finished episodes env by
    env, then the ongoing ones; within a chunk A_t = delta_t + gamma * lambda * A_{t+1}, delta_t = r_t +
    gamma * V(next) - V(s_t), where the next state's value at the chunk's end is 0 if the episode terminated and
    V(final observation) if it was truncated or cut by the end of the rollout. Standardised with RLlib's extra
    step per chunk (gamma * V(next chunk's first state) - V(final obs) + gamma * lambda * A(next chunk's first))."""
    chunks = []  # (rollout, env, slots, terminated at the end)
    for r, rollout in enumerate(rollouts):
        num_slots, num_envs = rollout.rewards.shape
        finished, ongoing = [], []
        for i in range(num_envs):
            t, slots = (1 if rollout.starts_resetting[i] else 0), []
            while t < num_slots:
                slots.append(t)
                if rollout.terminated[t, i] or rollout.truncated[t, i]:
                    finished.append((r, i, slots, bool(rollout.terminated[t, i])))
                    slots, t = [], t + 2  # the next slot resets the env
                    continue
                t += 1
            if slots:
                ongoing.append((r, i, slots, False))
        chunks += finished + ongoing
    rows, advantages, targets, firsts = [], [], [], []
    for r, i, slots, terminated in chunks:
        v = values[r][:, i].astype(np.float64)
        ends_terminal = terminated or not truncation_bootstraps and rollouts[r].truncated[slots[-1], i]
        chunk_advantages, running = [], 0.0
        for k in reversed(range(len(slots))):
            t = slots[k]
            next_value = v[t + 1] if k < len(slots) - 1 or not ends_terminal else 0.0
            delta = rollouts[r].rewards[t, i] + gamma * next_value - v[t]
            running = delta + gamma * lambda_ * running
            chunk_advantages.append(running)
        chunk_advantages.reverse()
        rows += [(r, t, i) for t in slots]
        advantages.append(np.array(chunk_advantages))
        targets.append(np.array(chunk_advantages) + v[slots])
        firsts.append((v[slots[0]], chunk_advantages[0]))
    padded = []
    for k, (r, i, slots, _) in enumerate(chunks):
        v_final = float(values[r][slots[-1] + 1, i])
        if k == len(chunks) - 1:
            extra = -v_final
        else:
            extra = gamma * firsts[k + 1][0] - v_final + gamma * lambda_ * firsts[k + 1][1]
        padded += [*advantages[k], extra]
    padded = np.array(padded)
    standardised = (np.concatenate(advantages) - padded.mean()) / max(1e-4, padded.std())
    return rows, standardised, np.concatenate(targets)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_train_batch_equals_a_plain_per_episode_gae(seed):
    from armillary.algorithms.ppo.rollout import train_batch

    rng = np.random.default_rng(seed)
    rollouts = [random_rollout(rng), random_rollout(rng, num_slots=23, num_envs=5)]
    values = [3 * rng.normal(size=(len(r.actions) + 1, r.rewards.shape[1])).astype(np.float32) for r in rollouts]
    batch = train_batch(rollouts, values, gamma=0.99, lambda_=0.95)
    rows, advantages, targets = reference_train_batch(rollouts, values, gamma=0.99, lambda_=0.95)

    assert sum(r.terminated.sum() for r in rollouts) > 3 and sum(r.truncated.sum() for r in rollouts) > 3
    assert len(batch["advantages"]) == len(rows) == sum(len(r) for r in rollouts)
    expected_obs = np.stack([rollouts[r].observations[t, i] for r, t, i in rows])
    np.testing.assert_array_equal(batch["obs"], expected_obs)
    np.testing.assert_array_equal(batch["actions"], [rollouts[r].actions[t, i] for r, t, i in rows])
    np.testing.assert_array_equal(batch["action_logp"], [rollouts[r].extra_model_outputs["action_logp"][t, i]
                                                         for r, t, i in rows])
    np.testing.assert_allclose(batch["value_targets"], targets, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batch["advantages"], advantages, rtol=1e-5, atol=1e-5)
    # The comparison has teeth: bootstrapping a truncated episode with 0 (as if it had terminated) is visibly off.
    _, wrong_advantages, wrong_targets = reference_train_batch(rollouts, values, 0.99, 0.95,
                                                               truncation_bootstraps=False)
    assert np.abs(wrong_targets - batch["value_targets"]).max() > 0.5
    assert np.abs(wrong_advantages - batch["advantages"]).max() > 0.1


def test_a_truncated_step_bootstraps_from_its_final_observation():
    """One env, hand-checkable: steps 0-1 truncated at 1, slot 2 the reset, steps 3-4 terminated at 4, lambda 0."""
    from armillary.algorithms.ppo.rollout import advantages_in_chunks

    rng = np.random.default_rng(0)
    rollout = random_rollout(rng, num_slots=5, num_envs=1, p_terminate=0, p_truncate=0)
    rollout.starts_resetting[:] = False
    rollout.truncated[1, 0] = rollout.terminated[4, 0] = True
    rollout.rewards[:, 0] = [1.0, 2.0, 0.0, 3.0, 4.0]
    v = np.array([[10.0], [20.0], [30.0], [40.0], [50.0], [60.0]], dtype=np.float32)  # V(observations[t])
    a = advantages_in_chunks(rollout, v, gamma=0.5, lambda_=0.0)[:, 0]
    np.testing.assert_allclose(a, [1 + 0.5 * 20 - 10, 2 + 0.5 * 30 - 20, 0.0, 3 + 0.5 * 50 - 40, 4 - 50])


def test_finished_episode_figures_count_their_earlier_chunks():
    """Episode length, return and duration from arrays == summing each finished episode's chunks, over rollouts
    whose episodes continue from one to the next (RLlib's get_metrics accounting on the episode chunks)."""
    from armillary.algorithms.ppo.rollout import finished_episodes, new_carried

    rng = np.random.default_rng(5)
    carried, earlier_chunks, previous, seen = new_carried(4), {}, None, 0
    for _ in range(5):
        rollout = random_rollout(rng, num_slots=30, num_envs=4, p_terminate=0.04, p_truncate=0.04, follows=previous)
        got = finished_episodes(rollout, carried)
        expected = {"length": [], "return": [], "duration": []}
        for episode in rollout.to_episodes():
            chunks = earlier_chunks.pop(episode.id_, []) + [episode]
            if episode.is_done:
                expected["length"].append(sum(len(e) for e in chunks))
                expected["return"].append(sum(e.get_return() for e in chunks))
                expected["duration"].append(sum(e.get_duration_s() for e in chunks))
                seen += len(chunks) > 1
            else:
                earlier_chunks[episode.id_] = chunks
        for key, value in expected.items():
            np.testing.assert_allclose(got[key], value, rtol=1e-9, err_msg=key)
        previous = rollout
    assert seen >= 3, "some finished episodes should span rollouts"


def _learner_and_batch(algo):
    from ray.rllib.core.learner.training_data import TrainingData

    learner = algo.learner_group._learner
    episodes = _episodes(algo.env_runner.sample(num_timesteps=512))
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


def test_rollout_batch_equals_rllibs_learner_connector(algo):
    """The lean learner's columns from rollout arrays == RLlib's learner connector (AddOneTsToEpisodesAndTruncate,
    GAE, standardisation) on the same rollouts cut into episode chunks, row for row, on random rollouts with
    terminations, truncations, chunks cut by the rollout's end and two rollouts in one batch."""
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.learner.training_data import TrainingData
    from ray.rllib.evaluation.postprocessing import Postprocessing

    learner = algo.learner_group._learner
    runner = algo.env_runner
    rng = np.random.default_rng(7)
    rollouts = [random_rollout(rng, num_slots=n, num_envs=4) for n in (50, 31)]
    for rollout in rollouts:
        rollout.observation_space, rollout.action_space = (runner.env.single_observation_space,
                                                           runner.env.single_action_space)
    assert learner.array_path_applies()
    lean = learner._columns_from_rollouts(MODULE, rollouts)
    rllib = learner._make_batch_if_necessary(training_data=TrainingData(episodes=_episodes(rollouts)))
    rllib = learner._loss_columns(rllib.policy_batches[MODULE])
    assert len(lean[Columns.OBS]) == sum(len(r) for r in rollouts) == len(rllib[Columns.OBS])
    for key in (Columns.OBS, Columns.ACTIONS, Columns.ACTION_LOGP):
        torch.testing.assert_close(lean[key], rllib[key], rtol=0, atol=0, msg=key)
    for key in (Postprocessing.VALUE_TARGETS, Postprocessing.ADVANTAGES):
        torch.testing.assert_close(lean[key], rllib[key].float(), rtol=1e-5, atol=1e-5, msg=key)


def test_the_train_loop_hands_rollouts_to_the_array_path(algo):
    from armillary.algorithms.ppo.rollout import Rollout

    runner, learner = algo.env_runner, algo.learner_group._learner
    assert runner.emits_rollouts()
    samples = runner.sample(num_timesteps=64)
    # every env takes ceil(64 / 4) slots; a reset slot is one of them but not a sampled step
    assert len(samples) == 1 and isinstance(samples[0], Rollout) and samples[0].num_slots == 16
    assert 64 - runner.num_envs * 16 // 2 < len(samples[0]) <= 64
    updates = learner.num_array_updates
    result = algo.train()
    assert learner.num_array_updates == updates + 1
    for key in ("episode_return_mean", "episode_len_mean", "episode_len_min", "episode_return_max",
                "episode_duration_sec_mean", "num_episodes", "num_env_steps_sampled"):
        assert key in result["env_runners"], key
    learner_results = result["learners"]
    assert {"policy_loss", "vf_loss", "total_loss", "diff_num_grad_updates_vs_sampler_policy"} <= set(
        learner_results[MODULE])
    assert learner_results["__all_modules__"]["learner_connector_sum_episodes_length_in"] > 0


def test_lean_loss_equals_rllibs_ppo_loss_on_the_same_batch(algo):
    """minibatch_loss (losses.ppo_loss) on the real rows == PPOTorchLearner.compute_loss_for_module on RLlib's padded, masked batch,
    with the policy moved away from the sampling one so that the ratio clip and the value clip both act."""
    from ray.rllib.core.columns import Columns

    from armillary.algorithms.ppo.learner import minibatch_loss

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
        lean_loss, lean_stats = minibatch_loss(module, real, clip_param=config.clip_param,
                                               vf_clip_param=config.vf_clip_param, vf_loss_coeff=config.vf_loss_coeff,
                                               entropy_coeff=config.entropy_coeff, with_stats=True)
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
        episodes = _episodes(runner.sample(num_timesteps=512))
        assert 512 - 128 < sum(len(e) for e in episodes) <= 512  # 128 slots per env, resets among them
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


def test_episode_metrics_are_rllibs_on_the_same_episodes(algo):
    """get_metrics() after several samples reports what RLlib's per-episode accounting (each finished episode with
    its earlier chunks, the last `metrics_num_episodes_for_smoothing` of them) gives on the same episode chunks."""
    runner = algo.env_runner
    runner.get_metrics()  # start from a clean slate
    window = runner.config.metrics_num_episodes_for_smoothing
    finished, earlier = [], {}
    # Episodes still going at the clean slate have chunks from before it: enough episodes after the first sample's
    # push them out of the window (num_episodes counts them all).
    first_sample = None
    while first_sample is None or len(finished) - first_sample < window:
        if finished and first_sample is None:
            first_sample = len(finished)
        for episode in _episodes(runner.sample(num_timesteps=512)):
            chunks = earlier.pop(episode.id_, []) + [episode]
            if episode.is_done:
                finished.append((sum(len(e) for e in chunks), sum(e.get_return() for e in chunks)))
            else:
                earlier[episode.id_] = chunks
    metrics = runner.get_metrics()
    lengths, returns = np.array(finished[-window:]).T
    assert metrics["num_episodes"].peek() == len(finished)
    assert metrics["episode_len_mean"].peek() == pytest.approx(lengths.mean())
    assert metrics["episode_return_mean"].peek() == pytest.approx(returns.mean())
    assert metrics["episode_len_max"].peek() == lengths.max() and metrics["episode_len_min"].peek() == lengths.min()
    assert metrics["module_episode_return_mean"][MODULE].peek() == pytest.approx(returns.mean())


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


def test_lr_schedule_is_followed_by_the_lean_update(local_ray):
    """lr_schedule interpolates linearly in env steps sampled and stays at its last value; the lean path runs it."""
    spec = load_spec("ppo/cartpole", ["algorithm.config.train_batch_size=256", "algorithm.config.minibatch_size=64",
                                      "algorithm.config.num_epochs=1", "algorithm.config.lr_schedule=[[0,0.001],[512,0.0001]]"])
    algo = build_algorithm_config(spec, seed=0).build_algo()
    try:
        learner = algo.learner_group._learner
        assert learner.lean_path_applies()
        seen = []
        for _ in range(3):
            steps = algo.train()["num_env_steps_sampled_lifetime"]
            (optimizer,) = learner.get_optimizers_for_module(MODULE)
            seen.append((steps, optimizer[1].param_groups[0]["lr"]))
        assert learner.num_lean_updates == 3
    finally:
        algo.stop()
    for steps, lr in seen:
        assert lr == pytest.approx(float(np.interp(steps, [0, 512], [1e-3, 1e-4]))), seen
    assert seen[-1][1] == pytest.approx(1e-4) and seen[0][1] > 2e-4, seen


@pytest.mark.parametrize("learner", ["ppo", "skills", "domino"])
def test_learners_take_a_scheduled_lr_into_a_multi_tensor_adam(learner):
    """RLlib's schedule sets the lr as a 0-d tensor; multi-tensor Adam (ours, and torch's default on GPUs) refuses
    one unless capturable. Every PPO-based learner of ours hands it a float instead, and the step is the same."""
    from armillary.algorithms.domino.learner import DominoPPOLearner
    from armillary.algorithms.ppo.learner import LeanPPOTorchLearner
    from armillary.algorithms.skills.learner import SkillPPOLearner

    cls = {"ppo": LeanPPOTorchLearner, "skills": SkillPPOLearner, "domino": DominoPPOLearner}[learner]
    weights = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.Adam([weights], lr=1.0, foreach=True)
    cls._set_optimizer_lr(optimizer, torch.tensor(1e-2))
    weights.grad = torch.ones(3)
    optimizer.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-2)
    assert torch.allclose(weights.detach(), torch.full((3,), 1.0 - 1e-2))


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
