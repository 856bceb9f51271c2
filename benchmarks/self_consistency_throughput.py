"""The self-consistent control agent vs plain PPO throughput on CartPole, interleaved so machine load hits all alike.

    OMP_NUM_THREADS=1 python benchmarks/self_consistency_throughput.py --iterations 10 --rounds 3

The contenders are the arms of the self-consistency/cartpole-comparison preset (sc-direct, none = the same agent
without the SC term, ppo = plain PPO), the same PPO settings and env, each built through the platform
(`build_algorithm_config`) with sampling in-process (0 env runners) in one Ray. Each round times --iterations
training iterations of each after one warm-up iteration. Prints env steps per second per round, the ratio of the
means over rounds and the median (and range) of the per-round ratios against ppo (the issue asks ≥ 0.8), and the
1-minute load average at the start and the end.

--variant NAME=FIELD:VALUE,FIELD:VALUE adds a contender: the sc-direct arm with those fields of the agent's config
changed (e.g. `--variant every4=model_every:4` for the speed levers), timed in the same rounds, after the --arms
unless --arms names it (then in that place: `--arms every4 sc-direct ppo --variant every4=model_every:4`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--arms", nargs="+", default=["sc-direct", "none", "ppo"])
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME=FIELD:VALUE[,FIELD:VALUE…]: the sc-direct arm with these config fields changed")
    args = parser.parse_args()
    import ray

    from armillary.platform.rllib_config import build_algorithm_config
    from armillary.platform.spec import arm_specs, load_spec
    from interleaved import interleaved_rates

    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    preset, base = "self-consistency/cartpole-comparison", ["resources.num_env_runners=0"]
    specs = arm_specs(load_spec(preset, base))
    for variant in args.variant:
        name, fields = variant.split("=", 1)
        overrides = [f"algorithm.config.{field.replace(':', '=', 1)}" for field in fields.split(",")]
        specs[name] = arm_specs(load_spec(preset, base + overrides))["sc-direct"]
        if name not in args.arms:  # a variant named in --arms is timed in that place of each round
            args.arms.append(name)
    algos = {name: build_algorithm_config(specs[name], seed=0).build_algo() for name in args.arms}
    rates = interleaved_rates(algos, args.rounds, args.iterations)
    mean = {name: sum(values) / args.rounds for name, values in rates.items()}
    print("mean: " + ", ".join(f"{name} {rate:.0f}" for name, rate in mean.items()) + " env steps/s")
    if "ppo" in rates:
        for name in rates:
            if name == "ppo":
                continue
            # A round times every contender back to back, so its ratio sees (nearly) the same machine load.
            per_round = sorted(a / b for a, b in zip(rates[name], rates["ppo"]))
            print(f"{name}/ppo = {mean[name] / mean['ppo']:.3f}; per round: median {statistics.median(per_round):.3f}, "
                  f"range {per_round[0]:.3f}–{per_round[-1]:.3f}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    for algo in algos.values():
        algo.stop()
    ray.shutdown()


if __name__ == "__main__":
    main()
