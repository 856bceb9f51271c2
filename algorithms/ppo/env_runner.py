"""A lean sampling loop for RLlib's single-agent env runner: same env, module, actions and episodes, less Python.

RLlib's `SingleAgentEnvRunner._sample` spends ~0.9 ms of Python per vector step whatever the vector width
(benchmarks/README.md): the env-to-module and module-to-env connector pipelines (`tree.map_structure`, space
unbatching, per-env item lists), `module.eval()`/`train()` toggles around every forward (a recursive walk over
the submodules), the info-dict-to-list wrapper, and one `SingleAgentEpisode.add_env_step` per env per step.
For the set-up those pipelines are the identity for (a Box observation batched as it comes, a Discrete action
sampled from the module's action distribution, no episode callbacks), `LeanSingleAgentEnvRunner` does the
same work directly:

  per vector step  one batched forward (the module's own `_forward_exploration`/`_forward_inference`), a sample
                   and its log-probability from the module's action distribution class (RLlib's GetActions),
                   one `env.step`, and the results stored into per-step arrays;
  per sample()     the arrays become one `Rollout` (algorithms/ppo/rollout.py: [T, num_envs] arrays with the same
                   ids, `t_started`, terminated/truncated flags and extra model outputs RLlib's episodes carry).
                   Where the lean learner is the consumer (`emits_rollouts`), sample() returns [rollout] and the
                   learner computes GAE and the batch from the arrays; for any other consumer (several learners,
                   an `on_sample_end` callback, evaluation) it returns `rollout.to_episodes()`, the numpy
                   `SingleAgentEpisode` chunks RLlib's own env runner would.
  episode metrics  RLlib's names, windows and reductions (`episode_return_mean` etc.), computed per finished
                   episode from the arrays (`finished_episodes`, its earlier chunks counted) and logged once per
                   `get_metrics()`: on Four Rooms (~500 episodes of 8 steps per 4000-step sample) building the
                   chunks and logging episode by episode cost ~0.02 s per iteration.

The env is RLlib's (gymnasium vector env, next-step autoreset): a sub-env that ended is reset by the next
vector step, whose slot is a reset, not a transition, and does not count as a sampled step, as in RLlib.
Anything else (custom connectors, episode callbacks, recurrent modules, Box actions, `num_episodes` sampling,
random actions) runs RLlib's own `_sample`; switching between the two resets the envs, as RLlib does whenever
it samples whole episodes.
"""

from __future__ import annotations

import math
import time
import uuid

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core import DEFAULT_AGENT_ID, DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.rllib.utils.metrics import (
    EPISODE_DURATION_SEC_MEAN,
    EPISODE_LEN_MAX,
    EPISODE_LEN_MEAN,
    EPISODE_LEN_MIN,
    EPISODE_RETURN_MAX,
    EPISODE_RETURN_MEAN,
    EPISODE_RETURN_MIN,
)

from armillary.algorithms.ppo.rollout import Rollout, finished_episodes, new_carried

_EPISODE_CALLBACKS = ("on_episode_created", "on_episode_start", "on_episode_step", "on_episode_end")


def env_seed(seed: int, global_index: int) -> int:
    """The reset seed of global env `global_index` of an experiment seeded `seed` (independent streams per pair)."""
    return int(np.random.SeedSequence([seed, global_index]).generate_state(1)[0])


def action_streams(seed: int | None, offset: int, num_envs: int) -> list[np.random.Generator]:
    """One action-noise generator per env, keyed by (seed, global env index); unseeded runs draw fresh entropy."""
    if seed is None:
        return [np.random.default_rng() for _ in range(num_envs)]
    return [np.random.default_rng(np.random.SeedSequence([seed, offset + i, 1])) for i in range(num_envs)]


def categorical_sample(logits: np.ndarray, streams: list[np.random.Generator]) -> np.ndarray:
    """Actions [N] from categorical logits [N, K] by inverse CDF, env i's uniform drawn from streams[i]."""
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    cdf = np.cumsum(p, axis=1)
    u = np.array([stream.random() for stream in streams]) * cdf[:, -1]
    return np.minimum((cdf <= u[:, None]).sum(axis=1), logits.shape[1] - 1).astype(np.int64)


class LeanSingleAgentEnvRunner(SingleAgentEnvRunner):
    _lean: dict | None = None  # the loop's state between sample() calls; None: not sampling leanly
    _action_streams: list | None = None  # per env: the generator of its action noise (see categorical_sample)

    def lean_path_applies(self) -> bool:
        """Whether RLlib's connector pipelines and callbacks would do nothing the lean loop leaves out."""
        config = self.config
        if self.module is None or self.env is None or self.module.is_stateful():
            return False
        if config._env_to_module_connector is not None or config._module_to_env_connector is not None:
            return False
        if not (config.add_default_connectors_to_env_to_module_pipeline
                and config.add_default_connectors_to_module_to_env_pipeline):
            return False
        if any(getattr(config, f"callbacks_{name}", None) for name in _EPISODE_CALLBACKS):
            return False
        for callback in self._callbacks:
            if any(getattr(type(callback), name) is not getattr(RLlibCallback, name) for name in _EPISODE_CALLBACKS):
                return False
        if not isinstance(self.env.single_observation_space, gym.spaces.Box):
            return False
        if not isinstance(self.env.single_action_space, gym.spaces.Discrete):
            return False
        autoreset = self.env.unwrapped.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
        return autoreset == gym.vector.AutoresetMode.NEXT_STEP

    def _sample(self, *, num_timesteps=None, num_episodes=None, explore: bool, random_actions: bool = False,
                force_reset: bool = False):
        lean = num_timesteps is not None and not random_actions and self.lean_path_applies()
        if not lean:
            if self._lean is not None:  # the generic loop does not know the lean loop's ongoing episodes
                self._lean, force_reset = None, True
            return super()._sample(num_timesteps=num_timesteps, num_episodes=num_episodes, explore=explore,
                                   random_actions=random_actions, force_reset=force_reset)
        if self._lean is None or force_reset or self._needs_initial_reset:
            self._lean_reset()
        return self._lean_sample(num_timesteps, explore)

    def emits_rollouts(self) -> bool:
        """Whether `sample()` returns `Rollout`s (arrays, no episode objects) rather than episode chunks: only where
        the one consumer is the lean learner, which takes them as they are (several learners shard episodes, an
        `on_sample_end` callback or an evaluation runner's caller expects episodes)."""
        config = self.config
        if config.in_evaluation or config.num_learners > 1:
            return False
        if config.callbacks_on_sample_end or any(
                type(callback).on_sample_end is not RLlibCallback.on_sample_end for callback in self._callbacks):
            return False
        from armillary.algorithms.ppo.learner import LeanPPOTorchLearner

        try:
            return issubclass(config.learner_class, LeanPPOTorchLearner)
        except Exception:  # no learner class for this config: nobody to hand rollouts to
            return False

    def global_env_offset(self) -> int:
        """The global index of this runner's first env: runner k (1-based) of a group holds envs
        (k − 1)·n … k·n − 1; the local runner (index 0, sampling only when there are no remote runners) holds 0 … n − 1.
        A layout of R runners × n envs and one of R' × n' with R·n = R'·n' thus hold the same global envs."""
        return (max(self.worker_index, 1) - 1) * self.num_envs

    def _lean_reset(self) -> None:
        seeds = None
        if self._needs_initial_reset:
            # Each env's streams (its reset seed and its action noise) are keyed by its global index, not by the runner
            # that holds it, so a seed gives the same trajectories whatever the layout.
            offset = self.global_env_offset()
            seed = self.config.seed
            if seed is not None and self.config.in_evaluation:
                seed += 1_000_000  # evaluation envs apart from the training ones, as RLlib's seeding keeps them
            seeds = [env_seed(seed, offset + i) for i in range(self.num_envs)] if seed is not None else None
            self._action_streams = action_streams(seed, offset, self.num_envs)
        observations, _ = self._try_env_reset(seed=seeds, options=None)
        self._needs_initial_reset = False
        self._ongoing_episodes_for_metrics.clear()  # as RLlib does: chunks of episodes that will never finish
        n = self.num_envs
        self._lean = {"obs": np.asarray(observations), "ids": [uuid.uuid4().hex for _ in range(n)],
                      "t": np.zeros(n, dtype=np.int64), "resetting": np.zeros(n, dtype=bool),
                      "carried": new_carried(n)}

    def _lean_sample(self, num_timesteps: int, explore: bool):
        state, module, n = self._lean, self.module, self.num_envs
        vector_env = self.env.env  # under RLlib's DictInfoToList wrapper: infos stay dicts, which we drop
        if explore:
            forward, dist_class = module._forward_exploration, module.get_exploration_action_dist_cls()
        else:
            forward, dist_class = module._forward_inference, module.get_inference_action_dist_cls()
        module.eval()  # once, not around every forward

        obs, resetting = state["obs"], state["resetting"]
        starts_resetting = resetting.copy()
        observations, actions, rewards, terminateds, truncateds, dist_inputs, logps, step_times = \
            [obs], [], [], [], [], [], [], [time.perf_counter()]
        ts = 0
        # Every env takes the same number of vector slots (a reset slot is one of them but not a sampled step):
        # T = ceil(num_timesteps / n), with the group's per-env share for the default fragment so that runners of
        # any layout give each env the same T (RLlib's "auto" fragment differs by one between runners when the batch
        # does not divide). The batch is then T·(all envs) slots minus the resets; sampling until a runner's steps
        # reach a target would make each env's share depend on its neighbours' episode ends.
        for _ in range(self._slots_per_env(num_timesteps)):
            with torch.no_grad():
                obs_tensor = torch.from_numpy(obs).to(self._device)
                if obs_tensor.dtype == torch.float64:  # as RLlib's NumpyToTensor connector does
                    obs_tensor = obs_tensor.float()
                inputs = forward({Columns.OBS: obs_tensor})[Columns.ACTION_DIST_INPUTS]
                dist = dist_class.from_logits(inputs)
                if explore:
                    # One uniform per env from its own stream (inverse CDF), instead of torch's process-wide generator:
                    # an env's actions then do not depend on which runner samples it or on its neighbours.
                    action = torch.from_numpy(categorical_sample(inputs.cpu().numpy(), self._action_streams))
                    logps.append(dist.logp(action.to(inputs.device)).cpu().numpy())
                else:
                    action = dist.to_deterministic().sample()
            action = action.cpu().numpy()
            obs, reward, terminated, truncated, _ = vector_env.step(action)
            obs = np.asarray(obs)
            observations.append(obs)
            actions.append(action)
            rewards.append(reward)
            terminateds.append(terminated)
            truncateds.append(truncated)
            dist_inputs.append(inputs.cpu().numpy())
            step_times.append(time.perf_counter())
            ts += n - int(resetting.sum())  # a reset slot is not a sampled step
            resetting = terminated | truncated
        self._log_env_steps(metric=self._metrics_num_try_env_step, num_steps=len(actions))

        extra = {Columns.ACTION_DIST_INPUTS: np.stack(dist_inputs)}
        if explore:
            extra[Columns.ACTION_LOGP] = np.stack(logps)
        rollout = Rollout(
            observations=np.stack(observations), actions=np.stack(actions), rewards=np.stack(rewards),
            terminated=np.stack(terminateds), truncated=np.stack(truncateds), extra_model_outputs=extra,
            starts_resetting=starts_resetting, step_times=np.asarray(step_times), weights_seq_no=self._weights_seq_no,
            episode_ids_in=list(state["ids"]), t_in=state["t"].copy(), episode_ids_out=[],
            observation_space=self.env.single_observation_space, action_space=self.env.single_action_space,
            env_offset=self.global_env_offset())
        self._advance_episodes(rollout)
        state["obs"], state["resetting"] = obs, resetting

        finished = finished_episodes(rollout, state["carried"])
        if self._lean_finished is None:
            self._lean_finished = []
        self._lean_finished.append(finished)
        self._log_env_steps(metric=self._metrics_num_env_steps_sampled, num_steps=ts)
        self._increase_sampled_metrics(ts, len(finished["length"]))
        return [rollout] if explore and self.emits_rollouts() else rollout.to_episodes()

    def _slots_per_env(self, num_timesteps: int) -> int:
        config = self.config
        if num_timesteps == config.get_rollout_fragment_length(self.worker_index) * self.num_envs:
            total_envs = self.num_envs * max(1, config.num_env_runners or 0)
            return -(-config.total_train_batch_size // total_envs)
        return -(-num_timesteps // self.num_envs)

    def _advance_episodes(self, rollout: Rollout) -> None:
        """Per env, the id and length of the episode that goes on after this rollout (a new one after an end)."""
        state = self._lean
        began = rollout.done.any(0) | rollout.starts_resetting  # the episode carried in ended: a new one follows
        ongoing_steps = rollout.ongoing.sum(0)
        for i in np.flatnonzero(began):
            state["ids"][i] = uuid.uuid4().hex
        state["t"] = np.where(began, ongoing_steps, state["t"] + ongoing_steps)
        rollout.episode_ids_out = list(state["ids"])

    _lean_finished: list | None = None  # finished-episode figures since the last get_metrics(), one dict per rollout

    def get_metrics(self):
        """RLlib's episode metrics (same names, windows and reductions), logged from arrays: a windowed mean, min or
        max of the last `window` values pushed since the last reduce is what RLlib reports, so pushing that one
        reduced value gives the same result as pushing every episode's."""
        finished = self._lean_finished
        if finished:
            self._log_episode_figures({key: np.concatenate([f[key] for f in finished]) for key in finished[0]})
            finished.clear()
        return super().get_metrics()

    def _log_episode_figures(self, episodes: dict[str, np.ndarray]) -> None:
        if not len(episodes["length"]):
            return
        # RLlib's window: the smoothing window over the env runners that report in parallel.
        config = self.config
        window = max(1, int(math.ceil(config.metrics_num_episodes_for_smoothing / (config.num_env_runners or 1))))
        recent = {key: value[-window:] for key, value in episodes.items()}
        length, ret = recent["length"].astype(np.float64), recent["return"]
        log = self.metrics.log_value
        log(EPISODE_LEN_MEAN, float(np.nanmean(length)), window=window)
        log(EPISODE_RETURN_MEAN, float(np.nanmean(ret)), window=window)
        log(EPISODE_DURATION_SEC_MEAN, float(np.nanmean(recent["duration"])), window=window)
        log(("agent_episode_return_mean", DEFAULT_AGENT_ID), float(np.nanmean(ret)), window=window)
        log(("module_episode_return_mean", DEFAULT_MODULE_ID), float(np.nanmean(ret)), window=window)
        log(EPISODE_LEN_MIN, float(np.nanmin(length)), reduce="min", window=window)
        log(EPISODE_RETURN_MIN, float(np.nanmin(ret)), reduce="min", window=window)
        log(EPISODE_LEN_MAX, float(np.nanmax(length)), reduce="max", window=window)
        log(EPISODE_RETURN_MAX, float(np.nanmax(ret)), reduce="max", window=window)
