"""The samples-per-insert limiter's own cost, side by side in one process: the asynchronous DQN (algorithms/dqn/scale.py)
with the limiter on, then with it off (a buffer no run reaches; the min size still gates), same config and seed.

    OMP_NUM_THREADS=1 python benchmarks/dqn_limiter_overhead.py --actors 2 --env-steps 3000

Reports, per run: gradient updates, wall s, learner s per update (the DQN iteration: sample wait excluded), the
limiter's bookkeeping s (inside the replay actor) and its ratio to the learner's update time, and the measured
samples per insert."""

from __future__ import annotations

import argparse
import json
import os

import ray

from armillary.algorithms.dqn.config import ScaleDQNConfig
from armillary.algorithms.dqn.scale import learn


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--env-steps", type=int, default=3000)
    parser.add_argument("--samples-per-insert", type=float, default=4.0)
    args = parser.parse_args()
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    try:
        config = ScaleDQNConfig(num_actors=args.actors, cpus_per_actor=0.5, env_steps=args.env_steps,
                                limiter={"samples_per_insert": args.samples_per_insert, "min_size_to_sample": 500},
                                hidden_sizes=[64, 64])
        for use_limiter in (True, False):
            out = learn(config, use_limiter=use_limiter, log=lambda *_: None)
            final = out["final"]
            print(json.dumps({
                "limiter": use_limiter, "updates": out["updates"], "wall_s": round(out["wall_s"], 1),
                "learner_ms_per_update": round(1e3 * out["update_seconds"] / max(out["updates"], 1), 3),
                "limiter_s": round(final["limiter_seconds"], 4),
                "limiter_over_learner": round(final["limiter_seconds"] / max(out["update_seconds"], 1e-9), 4),
                "samples_per_insert_measured": final["samples_per_insert_measured"]}), flush=True)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
