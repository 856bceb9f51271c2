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
  per sample()     the arrays are cut into `SingleAgentEpisode` chunks (numpy, as RLlib's `to_numpy()` leaves
                   them) with the same ids, `t_started`, terminated/truncated flags and extra model outputs
                   (action_dist_inputs, action_logp, weights_seq_no), so the learner connector, GAE and the
                   episode metrics (`episode_return_mean` etc., via RLlib's own `get_metrics`) are unchanged.

The env is RLlib's (gymnasium vector env, next-step autoreset): a sub-env that ended is reset by the next
vector step, whose slot is a reset, not a transition, and does not count as a sampled step, as in RLlib.
Anything else (custom connectors, episode callbacks, recurrent modules, Box actions, `num_episodes` sampling,
random actions) runs RLlib's own `_sample`; switching between the two resets the envs, as RLlib does whenever
it samples whole episodes.
"""

from __future__ import annotations

import time
import uuid

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.utils.metrics import WEIGHTS_SEQ_NO

_EPISODE_CALLBACKS = ("on_episode_created", "on_episode_start", "on_episode_step", "on_episode_end")


class LeanSingleAgentEnvRunner(SingleAgentEnvRunner):
    _lean: dict | None = None  # the loop's state between sample() calls; None: not sampling leanly

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

    def _lean_reset(self) -> None:
        observations, _ = self._try_env_reset(seed=self._seed if self._needs_initial_reset else None, options=None)
        self._needs_initial_reset = False
        self._ongoing_episodes_for_metrics.clear()  # as RLlib does: chunks of episodes that will never finish
        n = self.num_envs
        self._lean = {"obs": np.asarray(observations), "ids": [uuid.uuid4().hex for _ in range(n)],
                      "t": np.zeros(n, dtype=np.int64), "resetting": np.zeros(n, dtype=bool)}

    def _lean_sample(self, num_timesteps: int, explore: bool) -> list[SingleAgentEpisode]:
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
        while ts < num_timesteps:
            with torch.no_grad():
                obs_tensor = torch.from_numpy(obs).to(self._device)
                if obs_tensor.dtype == torch.float64:  # as RLlib's NumpyToTensor connector does
                    obs_tensor = obs_tensor.float()
                inputs = forward({Columns.OBS: obs_tensor})[Columns.ACTION_DIST_INPUTS]
                dist = dist_class.from_logits(inputs)
                if not explore:
                    dist = dist.to_deterministic()
                action = dist.sample()
                if explore:
                    logps.append(dist.logp(action).cpu().numpy())
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

        columns = {
            "obs": np.stack(observations), "actions": np.stack(actions), "rewards": np.stack(rewards),
            "terminated": np.stack(terminateds), "truncated": np.stack(truncateds),
            Columns.ACTION_DIST_INPUTS: np.stack(dist_inputs),
        }
        if explore:
            columns[Columns.ACTION_LOGP] = np.stack(logps)
        done, ongoing = self._cut_episodes(columns, starts_resetting, np.asarray(step_times))
        state["obs"], state["resetting"] = obs, resetting

        self._done_episodes_for_metrics.extend(done)
        for episode in ongoing:
            self._ongoing_episodes_for_metrics[episode.id_].append(episode)
        self._log_env_steps(metric=self._metrics_num_env_steps_sampled, num_steps=ts)
        self._increase_sampled_metrics(ts, len(done))
        return done + ongoing

    def _cut_episodes(self, columns: dict[str, np.ndarray], starts_resetting: np.ndarray, step_times: np.ndarray):
        """Per env, split the steps into episode chunks. Slot t holds observations[t] -> actions[t] ->
        observations[t + 1]; the slot after an episode's last step is its env's reset (observations[t + 1] is
        the new episode's first observation), not a transition."""
        state = self._lean
        num_slots = len(columns["actions"])
        done_flags = columns["terminated"] | columns["truncated"]
        model_outputs = [key for key in (Columns.ACTION_DIST_INPUTS, Columns.ACTION_LOGP) if key in columns]
        done_episodes, ongoing_chunks = [], []
        for i in range(self.num_envs):
            start = 1 if starts_resetting[i] else 0  # slot 0 resets env i: its episode starts at slot 1
            if starts_resetting[i]:
                state["ids"][i], state["t"][i] = uuid.uuid4().hex, 0
            for end in [*np.flatnonzero(done_flags[:, i]), None]:
                last = num_slots - 1 if end is None else int(end)
                if last >= start:
                    episode = self._episode(columns, model_outputs, i, start, last, step_times,
                                            terminated=end is not None and bool(columns["terminated"][last, i]),
                                            truncated=end is not None and bool(columns["truncated"][last, i]))
                    (ongoing_chunks if end is None else done_episodes).append(episode)
                    state["t"][i] += last - start + 1
                if end is not None:  # the next slot resets env i and starts a new episode
                    state["ids"][i], state["t"][i] = uuid.uuid4().hex, 0
                    start = last + 2
        return done_episodes, ongoing_chunks

    def _episode(self, columns, model_outputs, i: int, first: int, last: int, step_times, *, terminated: bool,
                 truncated: bool) -> SingleAgentEpisode:
        steps = slice(first, last + 1)
        length = last - first + 1
        extra = {key: columns[key][steps, i] for key in model_outputs}
        extra[WEIGHTS_SEQ_NO] = np.full(length, self._weights_seq_no)
        episode = SingleAgentEpisode(
            self._lean["ids"][i],
            observations=columns["obs"][first:last + 2, i],
            observation_space=self.env.single_observation_space,
            actions=columns["actions"][steps, i],
            action_space=self.env.single_action_space,
            rewards=columns["rewards"][steps, i],
            infos=[{} for _ in range(length + 1)],
            terminated=terminated,
            truncated=truncated,
            extra_model_outputs=extra,
            t_started=int(self._lean["t"][i]),
            len_lookback_buffer=0,
        )
        episode._start_time, episode._last_step_time = step_times[first], step_times[last + 1]
        return episode
