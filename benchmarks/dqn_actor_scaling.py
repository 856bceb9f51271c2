"""Sampling-bound throughput of the asynchronous DQN's actors (algorithms/dqn/scale.py; issue 22's speed clause:
env steps/s with N actors ≥ 0.8 × N × the one-actor rate, up to the number of cores).

The learner is taken out of the loop: the replay's min_size_to_sample and capacity are above anything the actors
insert in the measurement, so every insert passes the limiter's stage 1 without waiting and no sample is drawn. What
is measured is the real acting path: N `Actor`s (one env each, ε-greedy with the Q-network's forward pass, ε fixed
at --epsilon) inserting chunks of --insert-chunk transitions into the `ReplayServer` actor and pulling weights after
every insert, as in the study. Each N runs for --warmup s (processes start, first weights) and then --seconds s;
its rate is the replay's insert count over the measured window. All Ns run one after the other in one process, so
the one-actor baseline is measured next to the others.

    OMP_NUM_THREADS=1 python benchmarks/dqn_actor_scaling.py --actors 1,2 --seconds 20

Prints one JSON line per N (env steps/s, and the efficiency N-actor rate / (N × one-actor rate)); default Ns are
1, 2, 4, ... up to the machine's core count.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import ray

from armillary.algorithms.dqn.config import ScaleDQNConfig
from armillary.algorithms.dqn.networks import QNetwork
from armillary.algorithms.dqn.scale import Actor, ReplayServer
from armillary.envs import registry as environments

NEVER_SAMPLED = 10_000_000  # replay capacity = min size: stage 1 for the whole measurement, inserts never wait


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def default_counts(cores: int) -> list[int]:
    counts, n = [], 1
    while n < cores:
        counts.append(n)
        n *= 2
    return counts + [cores]


def actor_rate(num_actors: int, args: argparse.Namespace) -> dict:
    """Env steps/s of num_actors actors inserting into one replay actor (the learner out of the loop)."""
    config = ScaleDQNConfig(env=args.env, num_actors=num_actors, cpus_per_actor=1.0, env_steps=NEVER_SAMPLED,
                            replay_capacity=NEVER_SAMPLED, insert_chunk=args.insert_chunk,
                            epsilon_start=args.epsilon, epsilon_end=args.epsilon, hidden_sizes=args.hidden_sizes,
                            limiter={"samples_per_insert": 8.0, "min_size_to_sample": NEVER_SAMPLED})
    replay = ReplayServer.remote(config)
    probe = environments.make(config.env)
    network = QNetwork(probe.observation_space.shape, int(probe.action_space.n), config.hidden_sizes)
    ray.get(replay.set_weights.remote(network.state_dict(), 0))
    actors = [Actor.options(num_cpus=1.0).remote(config, index, 0, replay) for index in range(num_actors)]
    running = [actor.run.remote() for actor in actors]
    try:
        time.sleep(args.warmup)
        first, started = ray.get(replay.stats.remote())["inserts"], time.perf_counter()
        time.sleep(args.seconds)
        last, ended = ray.get(replay.stats.remote())["inserts"], time.perf_counter()
        ray.get(replay.stop.remote())
        steps = ray.get(running)  # each actor's own count: all ran (no actor sat idle while others inserted)
    finally:
        for actor in actors:
            ray.kill(actor)
        ray.kill(replay)
    return {"actors": num_actors, "env_steps_per_s": (last - first) / (ended - started), "window_s": ended - started,
            "per_actor_steps_total": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--actors", type=_ints, default=None, help="actor counts (default 1, 2, 4, ... cores)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per actor count")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured start per actor count")
    parser.add_argument("--insert-chunk", type=int, default=ScaleDQNConfig.model_fields["insert_chunk"].default)
    parser.add_argument("--epsilon", type=float, default=0.05, help="fixed ε (greedy steps run the Q-network)")
    parser.add_argument("--hidden-sizes", type=_ints, default=[128, 128])
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    counts = args.actors or default_counts(cores)
    if counts[0] != 1:
        parser.error(f"--actors: the first count must be 1 (the baseline), got {counts[0]}")
    if max(counts) > cores:
        parser.error(f"--actors: {max(counts)} actors ask for more than the machine's {cores} cores (one CPU each)")
    # one CPU per actor, and the replay actor (num_cpus=0) and the driver besides: what the study's actors get
    ray.init(address="local", num_cpus=cores, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    try:
        base = None
        for count in counts:
            row = actor_rate(count, args)
            base = base or row["env_steps_per_s"]
            row["efficiency"] = row["env_steps_per_s"] / (count * base)
            row["cores"] = cores
            row["load_average"] = os.getloadavg()
            print(json.dumps({key: (round(v, 3) if isinstance(v, float) else v) for key, v in row.items()}), flush=True)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
