"""Throughput of DISDAIN vs plain PPO on the same env, machine and process (env steps per second).

    OMP_NUM_THREADS=1 python benchmarks/skills_throughput.py --rounds 5 --iterations 20

Both algorithms are built from the disdain/four-rooms preset: PPO gets the very same env (the skill-wrapped
small Four Rooms, same observation width), network sizes, batch and epochs, and learns from the env's own
(zero) reward; DISDAIN adds the ensemble discriminator, the reward connector and the two value heads.
The periodic skill evaluation is switched off (it is not part of training; its cost is reported apart).
Blocks of iterations alternate between the two so that load from other processes hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=20, help="training iterations per block")
    parser.add_argument("--preset", default="disdain/four-rooms")
    parser.add_argument("--set", nargs="*", default=[], help="extra dotted spec overrides")
    args = parser.parse_args()

    os.environ.setdefault("MUJOCO_GL", "egl")
    import ray
    from ray.rllib.algorithms.ppo import PPOConfig

    from armillary.algorithms.ppo.configure import apply as apply_ppo
    from armillary.envs import registry as environments
    from armillary.platform.rllib_config import build_algorithm_config
    from armillary.platform.spec import load_spec

    spec = load_spec(args.preset, [*args.set, "algorithm.config.evaluation_interval=0", "resources.num_env_runners=0", "resources.num_envs_per_env_runner=8"])
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    disdain_config = build_algorithm_config(spec, seed=0)
    ppo_config = PPOConfig().framework("torch").environment(env=disdain_config.env, env_config=disdain_config.env_config)
    ppo_config.env_runners(num_env_runners=0, num_envs_per_env_runner=disdain_config.num_envs_per_env_runner)
    ppo_config.debugging(seed=0)
    apply_ppo(ppo_config, spec.algorithm.config, environments.get(spec.env.name), 0)

    algos = {"ppo": ppo_config.build_algo(), "disdain": disdain_config.build_algo()}
    rates: dict[str, list[float]] = {name: [] for name in algos}

    def block(name: str, iterations: int) -> float:
        algo = algos[name]
        before = algo.train()["env_runners"]["num_env_steps_sampled_lifetime"]  # also warms up
        started = time.perf_counter()
        for _ in range(iterations):
            after = algo.train()["env_runners"]["num_env_steps_sampled_lifetime"]
        return (after - before) / (time.perf_counter() - started)

    for _ in range(args.rounds):
        for name in algos:
            rates[name].append(block(name, args.iterations))
    evaluation_started = time.perf_counter()
    algos["disdain"].evaluate_skills()
    evaluation_s = time.perf_counter() - evaluation_started

    summary = {name: round(statistics.median(values), 1) for name, values in rates.items()}
    summary["ratio_disdain_over_ppo"] = round(summary["disdain"] / summary["ppo"], 3)
    summary["per_block"] = {name: [round(v) for v in values] for name, values in rates.items()}
    summary["one_evaluation_s"] = round(evaluation_s, 2)
    summary["train_batch_size"] = spec.algorithm.config.train_batch_size
    print(json.dumps(summary, indent=2))
    for algo in algos.values():
        algo.stop()
    ray.shutdown()


if __name__ == "__main__":
    main()
