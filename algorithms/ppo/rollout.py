"""A sampled rollout as [T, num_envs] arrays, and what RLlib derives from its episodes, computed on the arrays.

The lean env runner (env_runner.py) hands its samples to the lean learner (learner.py) as one `Rollout` per
`sample()` call instead of one `SingleAgentEpisode` per episode chunk: on Four Rooms (8-step episodes) a
4000-step sample is ~500 chunks, and building them, running RLlib's learner connector over them and logging
their metrics one by one cost ~0.04 s per iteration, about what the reference PPO needs for its whole rollout.
The functions here compute the same figures with whole-array operations:

  `train_batch`         PPO's train batch: GAE advantages (standardised) and value targets, rows in the order
                        RLlib's learner connector makes them, numerically what RLlib's `AddOneTsToEpisodesAndTruncate`
                        + `GeneralAdvantageEstimation` give on `Rollout.to_episodes()` (tests/test_ppo_lean.py).
  `finished_episodes`   length, return and duration of each episode that ended, for the env runner's metrics.
  `Rollout.to_episodes` the `SingleAgentEpisode` chunks RLlib's own code expects, for every consumer that is not
                        the lean learner's array path (RLlib's learner, several learners, tests).

Slot layout (gymnasium's next-step autoreset, the mode RLlib's env runner uses): slot t holds observations[t] ->
actions[t] -> observations[t + 1], rewards[t], terminated[t], truncated[t]. After an episode of env i ends at
slot t, observations[t + 1, i] is its final observation, and slot t + 1 of env i is a reset: not a transition
and not a sampled step (its action is ignored, observations[t + 2, i] is the next episode's first observation).
A chunk is a run of real slots of one env that ends where its episode ends or where the rollout ends.

GAE as RLlib computes it (the semantics the lean path keeps), for a chunk with steps 0..L-1:
  delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t), with s_L the chunk's last observation: a
            truncated episode and a chunk cut by the end of the rollout bootstrap from V(s_L), a terminated one
            does not;
  A_t     = delta_t + gamma * lambda * A_{t+1} within the chunk (A_L := 0 at its end);
  targets = A + V; advantages = targets - V, standardised (mean, population std floored at 1e-4) over the real
            steps *and* one artificial step per chunk: RLlib appends it to every chunk to compute V(s_L), masks it
            out of the loss but not out of the standardisation. Its advantage is
            gamma * V(first state of the next chunk) - V(s_L) + gamma * lambda * A(first step of the next chunk)
            in the batch's chunk order (-V(s_L) after the last chunk); `train_batch` reproduces it.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from typing import Any, Sequence

import numpy as np

from armillary.algorithms.ppo.losses import mixed_advantages


@dataclasses.dataclass(eq=False)
class Rollout:
    """One `sample()` call of a vector env: T slots x N envs (see the module doc for the slot layout)."""

    observations: np.ndarray  # [T + 1, N, ...]
    actions: np.ndarray  # [T, N, ...]
    rewards: np.ndarray  # [T, N]
    terminated: np.ndarray  # [T, N] bool
    truncated: np.ndarray  # [T, N] bool
    extra_model_outputs: dict[str, np.ndarray]  # [T, N, ...] each: action_dist_inputs, action_logp
    starts_resetting: np.ndarray  # [N] bool: slot 0 of env i is a reset (its episode ended in the last rollout)
    step_times: np.ndarray  # [T + 1] perf_counter() before slot 0 and after each slot
    weights_seq_no: int
    episode_ids_in: list[str]  # per env: the episode continued from the previous rollout (unless starts_resetting)
    t_in: np.ndarray  # [N] env steps that episode had before this rollout
    episode_ids_out: list[str]  # per env: the episode still going after the last slot (continued by the next one)
    observation_space: Any = None
    action_space: Any = None
    env_offset: int = 0  # the global index of env 0 (its runner's first env; env_runner.global_env_offset)

    @property
    def num_slots(self) -> int:
        return len(self.actions)

    @functools.cached_property
    def done(self) -> np.ndarray:
        return self.terminated | self.truncated

    @functools.cached_property
    def real(self) -> np.ndarray:
        """[T, N] bool: the slot is a transition (not an env's reset)."""
        reset = np.empty_like(self.done)
        reset[0] = self.starts_resetting
        reset[1:] = self.done[:-1]
        return ~reset

    @functools.cached_property
    def chunk_end(self) -> np.ndarray:
        """[T, N] bool: the slot is the last of its chunk (its episode ended there, or the rollout does)."""
        end = self.real & self.done
        end[-1] |= self.real[-1]
        return end

    @functools.cached_property
    def chunk_start(self) -> np.ndarray:
        start = self.real.copy()
        start[1:] &= ~self.real[:-1]
        return start

    @functools.cached_property
    def ongoing(self) -> np.ndarray:
        """[T, N] bool: the slot belongs to the env's last chunk and that episode goes on after the rollout."""
        slots = np.arange(self.num_slots)[:, None]
        last_done = np.where(self.done.any(0), self.num_slots - 1 - np.argmax(self.done[::-1], axis=0), -1)
        return self.real & (slots > last_done)

    def __len__(self) -> int:
        """Sampled env steps (RLlib's `len(episode)`, summed over the chunks)."""
        return int(self.real.sum())

    def env_steps(self) -> int:
        return len(self)

    def agent_steps(self) -> int:
        return len(self)

    def chunk_order(self) -> tuple[np.ndarray, np.ndarray]:
        """(slot, env) of every real step in the order RLlib's batch has them: chunk by chunk, the chunks of
        finished episodes first (env by env, in time order), then the ongoing chunks, env by env."""
        env_major = np.flatnonzero(self.real.T)  # env i, slot t -> i * T + t
        ongoing = self.ongoing.T.ravel()[env_major]
        flat = env_major[np.argsort(ongoing, kind="stable")]
        return flat % self.num_slots, flat // self.num_slots

    def to_episodes(self):
        """The `SingleAgentEpisode` chunks (numpy, as RLlib's env runner returns them): the chunks of finished
        episodes env by env, then the ongoing ones. Episodes that start and end inside the rollout get fresh ids."""
        from ray.rllib.env.single_agent_episode import SingleAgentEpisode
        from ray.rllib.utils.metrics import WEIGHTS_SEQ_NO

        done_chunks, ongoing_chunks = [], []
        for i in range(self.observations.shape[1]):
            starts = np.flatnonzero(self.chunk_start[:, i])
            ends = np.flatnonzero(self.chunk_end[:, i])
            for first, last in zip(starts, ends):
                first, last = int(first), int(last)
                continued = first == 0  # slot 0 is real: the episode began in an earlier rollout
                finished = bool(self.done[last, i])
                if finished:
                    episode_id = self.episode_ids_in[i] if continued else uuid.uuid4().hex
                else:
                    episode_id = self.episode_ids_out[i]
                steps = slice(first, last + 1)
                length = last - first + 1
                extra = {key: value[steps, i] for key, value in self.extra_model_outputs.items()}
                extra[WEIGHTS_SEQ_NO] = np.full(length, self.weights_seq_no)
                episode = SingleAgentEpisode(
                    episode_id,
                    observations=self.observations[first:last + 2, i],
                    observation_space=self.observation_space,
                    actions=self.actions[steps, i],
                    action_space=self.action_space,
                    rewards=self.rewards[steps, i],
                    infos=[{} for _ in range(length + 1)],
                    terminated=finished and bool(self.terminated[last, i]),
                    truncated=finished and bool(self.truncated[last, i]),
                    extra_model_outputs=extra,
                    t_started=int(self.t_in[i]) if continued else 0,
                    len_lookback_buffer=0,
                )
                episode._start_time, episode._last_step_time = self.step_times[first], self.step_times[last + 1]
                (done_chunks if finished else ongoing_chunks).append(episode)
        return done_chunks + ongoing_chunks


def in_global_env_order(rollouts: Sequence[Rollout]) -> list[Rollout]:
    """The rollouts of one synchronous sampling round as one rollout whose envs are in global index order, so that the
    train batch's rows (and hence GAE's standardisation and the minibatches) do not depend on how the envs were split
    over runners. Rollouts that are not one round of disjoint envs with the same slots (several rounds of a runner,
    an interrupted runner) are returned as they are: no layout-free order exists for them."""
    rollouts = sorted(rollouts, key=lambda rollout: rollout.env_offset)
    widths = [rollout.observations.shape[1] for rollout in rollouts]
    contiguous = all(a.env_offset + width == b.env_offset for a, b, width in zip(rollouts, rollouts[1:], widths))
    if len(rollouts) < 2 or not contiguous or len({rollout.num_slots for rollout in rollouts}) != 1:
        return list(rollouts)

    def stack(name: str, axis: int = 1) -> np.ndarray:
        return np.concatenate([getattr(rollout, name) for rollout in rollouts], axis=axis)

    first = rollouts[0]
    return [Rollout(
        observations=stack("observations"), actions=stack("actions"), rewards=stack("rewards"),
        terminated=stack("terminated"), truncated=stack("truncated"),
        extra_model_outputs={key: np.concatenate([rollout.extra_model_outputs[key] for rollout in rollouts], axis=1)
                             for key in first.extra_model_outputs},
        starts_resetting=stack("starts_resetting", axis=0),
        step_times=first.step_times,  # runners' clocks differ: only the env runner's own metrics read them
        weights_seq_no=min(rollout.weights_seq_no for rollout in rollouts),
        episode_ids_in=[i for rollout in rollouts for i in rollout.episode_ids_in],
        t_in=stack("t_in", axis=0),
        episode_ids_out=[i for rollout in rollouts for i in rollout.episode_ids_out],
        observation_space=first.observation_space, action_space=first.action_space, env_offset=first.env_offset)]


def expand(samples: Sequence[Any]) -> list:
    """Episodes as RLlib's code expects them: every Rollout replaced by its episode chunks."""
    out = []
    for sample in samples:
        out.extend(sample.to_episodes() if isinstance(sample, Rollout) else [sample])
    return out


def finished_episodes(rollout: Rollout, carried: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Length, return and duration (s) of every episode that ended in `rollout`, env by env in time order (the
    order the env runner's episode list has them), counting the steps each had in earlier rollouts (`carried`:
    per env "length", "return", "duration" of the ongoing episode's earlier chunks). Updates `carried` for the
    next rollout."""
    real, done, ongoing = rollout.real, rollout.done & rollout.real, rollout.ongoing
    rewards = np.where(real, rollout.rewards, 0.0).astype(np.float64)
    # Per env, cumulative sums over the rollout; an episode's figures are the differences between its end and
    # the previous episode's end, plus what it carried in from earlier rollouts (its first episode only).
    cum_return = np.cumsum(rewards, axis=0)
    cum_length = np.cumsum(real, axis=0)
    slot, env = np.nonzero(done.T)[::-1]  # env-major order: (slot, env) of each episode end
    first_of_env = np.ones(len(env), dtype=bool)
    first_of_env[1:] = env[1:] != env[:-1]
    previous = np.roll(slot, 1)
    base_return = np.where(first_of_env, -carried["return"][env], cum_return[previous, env])
    base_length = np.where(first_of_env, -carried["length"][env], cum_length[previous, env])
    # Durations: each chunk counts from the clock before its first slot to the clock after its last one.
    starts = rollout.chunk_start & ~ongoing
    start_slot = np.nonzero(starts.T)[1]  # one start per finished chunk, same env-major order
    times = rollout.step_times
    duration = times[slot + 1] - times[start_slot] + np.where(first_of_env, carried["duration"][env], 0.0)
    out = {"length": cum_length[slot, env] - base_length, "return": cum_return[slot, env] - base_return,
           "duration": duration}

    # What the ongoing episodes carry into the next rollout.
    num_envs = rollout.observations.shape[1]
    ended = done.any(0)
    keep = ~ended & ~rollout.starts_resetting  # the episode carried in is still going: add to it
    on_length, on_return = ongoing.sum(0), np.where(ongoing, rewards, 0.0).sum(0)
    on_first = np.where(ongoing.any(0), np.argmax(ongoing, axis=0), rollout.num_slots)
    on_duration = np.where(ongoing.any(0), times[-1] - times[np.minimum(on_first, rollout.num_slots)], 0.0)
    for key, value in (("length", on_length), ("return", on_return), ("duration", on_duration)):
        carried[key] = np.where(keep, carried[key] + value, value).astype(carried[key].dtype)
    assert len(carried["length"]) == num_envs
    return out


def new_carried(num_envs: int) -> dict[str, np.ndarray]:
    return {"length": np.zeros(num_envs, dtype=np.int64), "return": np.zeros(num_envs),
            "duration": np.zeros(num_envs)}


def advantages_in_chunks(rollout: Rollout, values: np.ndarray, gamma: float, lambda_: float,
                         rewards: np.ndarray | None = None) -> np.ndarray:
    """[T, N] float64 GAE advantages of the real steps (0 on reset slots), from values [T + 1, N] = V(observations)
    and the rewards [T, N] (default: the rollout's). Several streams at once: values [T + 1, N, K], rewards
    [T, N, K], advantages [T, N, K]."""
    v = values.astype(np.float64)
    rewards = (rollout.rewards if rewards is None else rewards).astype(np.float32)  # RLlib's batch holds float32
    streams = (slice(None), slice(None)) + (None,) * (v.ndim - 2)  # [T, N] flags broadcast over the streams
    delta = rewards + gamma * (1.0 - rollout.terminated[streams]) * v[1:] - v[:-1]
    carry = gamma * lambda_ * ~rollout.chunk_end[streams]
    advantages = np.empty_like(delta)
    running = np.zeros(delta.shape[1:])
    for t in range(len(delta) - 1, -1, -1):
        running = delta[t] + carry[t] * running
        advantages[t] = running
    advantages[~rollout.real] = 0.0
    return advantages


def train_batch(rollouts: Sequence[Rollout], values: Sequence[np.ndarray], gamma: float, lambda_: float,
                rewards: Sequence[np.ndarray] | None = None,
                weights: Sequence[np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """PPO's train batch from rollouts and their values V(observations) ([T + 1, N] each): the real steps in
    RLlib's row order with "obs", "actions", the extra model outputs, "advantages" (standardised as RLlib does,
    see the module doc), "value_targets" and "weights_seq_no".

    Several value streams (a policy with K value streams, connectors.MultiStreamAdvantages): values
    [T + 1, N, K], `rewards` [T, N, K] per rollout (stream k's reward) and `weights` [T, N, K] per rollout (each
    slot's stream weights). GAE runs per stream, the advantage is Σ_k w_k A_k (RLlib's artificial step after a
    chunk takes the weights of the chunk's last step, as the connector's row for it does), then the same
    standardisation; "value_targets" is then [rows, K]."""
    columns: dict[str, list[np.ndarray]] = {}
    chunk_parts: dict[str, list[np.ndarray]] = {"rows": [], "v_last": [], "v_first": [], "a_first": [], "w_last": []}
    for index, (rollout, v) in enumerate(zip(rollouts, values)):
        slot, env = rollout.chunk_order()
        if not len(slot):
            continue
        v = np.asarray(v, dtype=np.float32)
        streams = v.ndim == 3
        v = v if streams else v[..., None]
        r = rewards[index] if rewards is not None else rollout.rewards[..., None]
        w = weights[index].astype(np.float32) if weights is not None else np.ones(r.shape, dtype=np.float32)
        advantages = advantages_in_chunks(rollout, v, gamma, lambda_, r)
        # RLlib stores advantages as float32, then targets = (A + V) in float32, then advantages = targets - V.
        targets = (advantages[slot, env].astype(np.float32) + v[slot, env]).astype(np.float32)
        put = columns.setdefault
        put("obs", []).append(rollout.observations[slot, env])
        put("actions", []).append(rollout.actions[slot, env])
        for key, value in rollout.extra_model_outputs.items():
            put(key, []).append(value[slot, env])
        put("value_targets", []).append(targets if streams else targets[:, 0])
        put("advantages", []).append(mixed_advantages(targets, v[slot, env], w[slot, env]))
        put("weights_seq_no", []).append(np.full(len(slot), rollout.weights_seq_no))
        # Per chunk, in the same order: its number of rows, V of its last observation, and V and A at its start.
        is_end = rollout.chunk_end[slot, env]
        ends = np.flatnonzero(is_end)
        starts = np.concatenate([[0], ends[:-1] + 1])
        chunk_parts["rows"].append(ends - starts + 1)
        chunk_parts["v_last"].append(v[slot[ends] + 1, env[ends]].astype(np.float64))
        chunk_parts["v_first"].append(v[slot[starts], env[starts]].astype(np.float64))
        chunk_parts["a_first"].append(advantages[slot[starts], env[starts]])
        chunk_parts["w_last"].append(w[slot[ends], env[ends]])
    batch = {key: np.concatenate(parts) for key, parts in columns.items()}
    rows, v_last, v_first, a_first, w_last = (np.concatenate(chunk_parts[key])
                                              for key in ("rows", "v_last", "v_first", "a_first", "w_last"))

    # RLlib's artificial step after each chunk (see the module doc), then the standardisation over all rows in
    # RLlib's order: real rows of chunk 0, its artificial row, real rows of chunk 1, ...
    phantom = -v_last
    phantom[:-1] += gamma * v_first[1:] + gamma * lambda_ * a_first[1:]
    phantom_targets = (phantom.astype(np.float32) + v_last.astype(np.float32)).astype(np.float32)
    phantom_advantages = mixed_advantages(phantom_targets, v_last.astype(np.float32), w_last)
    num_real, num_chunks = len(batch["advantages"]), len(rows)
    padded = np.empty(num_real + num_chunks, dtype=np.float32)
    chunk_of_row = np.repeat(np.arange(num_chunks), rows)
    padded[np.arange(num_real) + chunk_of_row] = batch["advantages"]
    padded[np.cumsum(rows) + np.arange(num_chunks)] = phantom_advantages
    batch["advantages"] = ((batch["advantages"] - padded.mean()) / max(1e-4, padded.std())).astype(np.float32)
    return batch
