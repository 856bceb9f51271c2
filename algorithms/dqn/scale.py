"""Asynchronous DQN at any scale (Acme's distributed layout, arXiv 2006.00979): N acting Ray actors insert
transitions into a replay Ray actor, one learner samples from it, and the samples-per-insert limiter
(rate_limiter.py) blocks whichever side runs ahead, so gradient steps per env step stay fixed whatever N is.

    ReplayServer (async Ray actor, num_cpus=0)  LimitedReplay + the limiter; insert() and sample() wait on a condition
                                                 until the limiter lets them go on; also holds the learner's weights
                                                 and the actors' finished-episode returns.
    Actor (Ray actor)                            one env, ε-greedy on the latest weights (in the reply to each insert), ε decays
                                                 over the replay's total inserts (not the actor's own steps).
    learn() (the calling process)                double-DQN updates (losses.py) on batches sampled under the limiter;
                                                 a dead actor is replaced by a new one with the same index.

Actor i's env seed and ε draws are keyed by (seed, i, generation): a replacement continues with fresh streams.
"""

from __future__ import annotations

import asyncio
import copy
import time

import numpy as np
import ray
import torch

from armillary.algorithms.dqn.config import ScaleDQNConfig
from armillary.algorithms.dqn.losses import double_dqn_loss
from armillary.algorithms.dqn.networks import QNetwork
from armillary.algorithms.dqn.rate_limiter import LimiterState
from armillary.algorithms.dqn.replay import LimitedReplay


@ray.remote(num_cpus=0)
class ReplayServer:
    def __init__(self, config: ScaleDQNConfig, use_limiter: bool = True):
        limiter = config.limiter
        # use_limiter=False: the same bookkeeping with a buffer no run reaches (only the min size gates): the
        # overhead comparison's baseline.
        buffer = limiter.effective_error_buffer if use_limiter else 1e18
        self.replay = LimitedReplay(config.replay_capacity, LimiterState(
            limiter.samples_per_insert, limiter.min_size_to_sample, buffer), seed=config.seed)
        self.condition = asyncio.Condition()
        self.weights, self.weights_version, self.returns, self.stopped = None, -1, [], False
        self.limiter_seconds = 0.0

    async def insert(self, transitions: dict, returns: list[float], have_version: int) -> tuple[int, dict | None, int]:
        """Insert every transition, waiting while the limiter holds the actors back, and keep the returns of the
        episodes the actor finished. Replies (the total inserted so far, or -1 once stopped; the learner's weights
        if newer than have_version, else None; their version): an actor's whole exchange with the replay is this
        one round trip per chunk (an actor's rate is bound by its calls to the replay, not by the env)."""
        count, done = len(transitions["rewards"]), 0
        async with self.condition:
            while done < count and not self.stopped:
                started = time.perf_counter()
                room = min(self.replay.insertable(), count - done)
                self.limiter_seconds += time.perf_counter() - started
                if room == 0:
                    await self.condition.wait()
                    continue
                self.replay.insert({key: value[done:done + room] for key, value in transitions.items()})
                done += room
                self.condition.notify_all()
            if self.stopped:
                return -1, None, have_version
            inserts = self.replay.limiter.inserts
        self.returns += [(inserts, value) for value in returns]
        if self.weights_version == have_version:
            return inserts, None, have_version
        return inserts, self.weights, self.weights_version

    async def sample(self, count: int) -> dict | None:
        """`count` transitions, taken as the limiter lets them go (None once stopped)."""
        parts = []
        async with self.condition:
            while count and not self.stopped:
                started = time.perf_counter()
                room = min(self.replay.sampleable(), count)
                self.limiter_seconds += time.perf_counter() - started
                if room == 0:
                    await self.condition.wait()
                    continue
                parts.append(self.replay.sample(room))
                count -= room
                self.condition.notify_all()
        if count:
            return None
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}

    async def stop(self) -> None:
        async with self.condition:
            self.stopped = True
            self.condition.notify_all()

    def set_weights(self, weights, version: int) -> None:
        self.weights, self.weights_version = weights, version

    def stats(self) -> dict:
        limiter = self.replay.limiter
        return {"inserts": limiter.inserts, "samples": limiter.samples, "size": limiter.size,
                "diff": limiter.diff(), "min_diff": limiter.min_diff, "max_diff": limiter.max_diff,
                "samples_per_insert_measured": limiter.samples_per_insert_measured(),
                "limiter_seconds": self.limiter_seconds, "returns": list(self.returns)}


def epsilon_at(config: ScaleDQNConfig, inserts: int) -> float:
    fraction = min(1.0, inserts / config.epsilon_steps)
    return config.epsilon_start + fraction * (config.epsilon_end - config.epsilon_start)


@ray.remote
class Actor:
    def __init__(self, config: ScaleDQNConfig, index: int, generation: int, replay):
        from armillary.envs import registry as environments

        torch.set_num_threads(1)
        self.config, self.replay = config, replay
        self.env = environments.make(config.env)
        stream = np.random.SeedSequence([config.seed, index, generation])
        env_seed, noise_seed = stream.generate_state(2)
        self.rng = np.random.default_rng(int(noise_seed))
        self.obs, _ = self.env.reset(seed=int(env_seed))
        self.network = QNetwork(self.env.observation_space.shape, int(self.env.action_space.n), config.hidden_sizes)
        self.version = -1

    def run(self) -> int:
        """Act and insert until the replay stops; the env steps taken."""
        config, steps, inserts, episode_return, returns = self.config, 0, 0, 0.0, []
        chunk: dict[str, list] = {key: [] for key in ("obs", "actions", "rewards", "discounts", "next_obs")}
        while True:
            if self.rng.random() < epsilon_at(config, inserts) or self.version < 0:
                action = int(self.rng.integers(self.env.action_space.n))
            else:
                with torch.no_grad():
                    q = self.network(torch.as_tensor(np.asarray(self.obs)[None]))
                action = int(q.argmax(1).item())
            next_obs, reward, terminated, truncated, _ = self.env.step(action)
            steps += 1
            episode_return += float(reward)
            for key, value in (("obs", self.obs), ("actions", action), ("rewards", float(reward)),
                               ("discounts", 0.0 if terminated else config.gamma), ("next_obs", next_obs)):
                chunk[key].append(np.asarray(value))
            self.obs = next_obs
            if terminated or truncated:
                returns.append(episode_return)
                episode_return = 0.0
                self.obs, _ = self.env.reset()
            if len(chunk["rewards"]) == config.insert_chunk:
                batch = {key: np.stack(values) for key, values in chunk.items()}
                batch["rewards"] = batch["rewards"].astype(np.float32)
                batch["discounts"] = batch["discounts"].astype(np.float32)
                # Waits while the limiter holds actors back; brings the learner's newer weights back.
                inserts, weights, version = ray.get(self.replay.insert.remote(batch, returns, self.version))
                if inserts < 0:  # the learner stopped the run
                    return steps
                if weights is not None:
                    self.network.load_state_dict(weights)
                    self.version = version
                chunk, returns = {key: [] for key in chunk}, []


def learn(config: ScaleDQNConfig, *, use_limiter: bool = True, log=print) -> dict:
    """Run until the actors have inserted config.env_steps transitions; rows of (time, inserts, samples, return) and
    the limiter's final figures."""
    torch.manual_seed(config.seed)
    from armillary.envs import registry as environments

    probe = environments.make(config.env)
    online = QNetwork(probe.observation_space.shape, int(probe.action_space.n), config.hidden_sizes)
    target = copy.deepcopy(online)
    optimizer = torch.optim.Adam(online.parameters(), lr=config.lr)
    replay = ReplayServer.remote(config, use_limiter)
    ray.get(replay.set_weights.remote({k: v.clone() for k, v in online.state_dict().items()}, 0))
    generations = [0] * config.num_actors

    def start(index: int):
        actor = Actor.options(num_cpus=config.cpus_per_actor).remote(config, index, generations[index], replay)
        return actor, actor.run.remote()

    def replace_dead(actors: list) -> int:
        """Start a new actor (same index, next generation) for each one whose run() ended with the actor dead."""
        replaced = 0
        for index, (_, running) in enumerate(actors):
            ready, _ = ray.wait([running], timeout=0)
            if not ready:
                continue
            try:
                ray.get(ready[0])
            except ray.exceptions.RayActorError:
                generations[index] += 1
                replaced += 1
                log(f"actor {index} died; starting its generation {generations[index]}")
                actors[index] = start(index)
        return replaced

    actors = [start(i) for i in range(config.num_actors)]
    started, updates, replaced, killed, rows, update_seconds = time.perf_counter(), 0, 0, False, [], 0.0
    while True:
        stats = ray.get(replay.stats.remote()) if updates % 50 == 0 else None
        if stats is not None:
            recent = [r for _, r in stats["returns"][-20:]]
            rows.append({"time_s": time.perf_counter() - started, "env_steps": stats["inserts"],
                         "samples": stats["samples"], "updates": updates,
                         "return_mean": float(np.mean(recent)) if recent else None,
                         "samples_per_insert_measured": stats["samples_per_insert_measured"]})
            if stats["inserts"] >= config.env_steps:
                break
        if config.fail_actor_at is not None and updates == config.fail_actor_at and not killed:
            ray.kill(actors[0][0])  # a fault: the actor dies mid-run
            killed = True
        pending = replay.sample.remote(config.batch_size)  # waits while the limiter holds the learner back
        while not ray.wait([pending], timeout=0.5)[0]:
            replaced += replace_dead(actors)  # meanwhile, a dead actor must not stall the run
        replaced += replace_dead(actors)
        batch = ray.get(pending)
        if batch is None:
            break
        tick = time.perf_counter()
        tensors = {key: torch.as_tensor(np.array(value)) for key, value in batch.items()}  # writable copies
        q = online(tensors["obs"])
        with torch.no_grad():
            q_next_online, q_next_target = online(tensors["next_obs"]), target(tensors["next_obs"])
        loss, _ = double_dqn_loss(q, tensors["actions"], tensors["rewards"], tensors["discounts"], q_next_online,
                                  q_next_target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        updates += 1
        if updates % config.target_update_period == 0:
            target.load_state_dict(online.state_dict())
        if updates % config.weights_push_period == 0:
            replay.set_weights.remote({k: v.clone() for k, v in online.state_dict().items()}, updates)
        update_seconds += time.perf_counter() - tick
    final = ray.get(replay.stats.remote())
    ray.get(replay.stop.remote())
    for actor, running in actors:
        ray.kill(actor)
    ray.kill(replay)
    return {"rows": rows, "final": {key: value for key, value in final.items() if key != "returns"},
            "returns": final["returns"], "updates": updates, "replaced": replaced,
            "wall_s": time.perf_counter() - started, "update_seconds": update_seconds,
            "error_buffer": config.limiter.effective_error_buffer if use_limiter else None}
