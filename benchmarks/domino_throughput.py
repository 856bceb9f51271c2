"""DOMiNO vs plain PPO throughput on the multi-goal room, interleaved so machine load hits both alike.

    OMP_NUM_THREADS=1 python benchmarks/domino_throughput.py --iterations 10 --rounds 2

Both are built from the domino/grid preset's PPO settings and env (plain PPO: the benchmarks/domino_grid.py
`ppo` variant, one policy, the bare env), sampling in-process (0 env runners). Plain PPO runs twice: as the
`ppo` algorithm is (its lean env runner and learner, algorithms/ppo/) and on RLlib's own env runner and
PPOTorchLearner ("ppo-rllib"), the code path DOMiNO's learner and env runner are built on. Each round times
--iterations training iterations of each after one warm-up iteration. Prints env steps per second per round, the
ratio of the means over rounds and the median (and range) of the per-round ratios.
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
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    import ray

    from armillary.platform.rllib_config import build_algorithm_config
    from armillary.platform.spec import load_spec
    from domino_grid import ppo_spec_file
    from interleaved import interleaved_rates

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    domino = load_spec("domino/grid", ["resources.num_env_runners=0"])
    ppo = load_spec(ppo_spec_file(10**9), ["resources.num_env_runners=0"])
    configs = {"domino": build_algorithm_config(domino, seed=0), "ppo": build_algorithm_config(ppo, seed=0),
               "ppo-rllib": build_algorithm_config(ppo, seed=0)}
    configs["ppo-rllib"].env_runners(env_runner_cls=SingleAgentEnvRunner).training(learner_class=PPOTorchLearner)
    algos = {name: config.build_algo() for name, config in configs.items()}
    rates = interleaved_rates(algos, args.rounds, args.iterations)
    mean = {name: sum(values) / args.rounds for name, values in rates.items()}
    print("mean: " + ", ".join(f"{name} {rate:.0f}" for name, rate in mean.items()) + " env steps/s")
    for baseline in ("ppo", "ppo-rllib"):
        ratio = mean["domino"] / mean[baseline]
        # Each round times DOMiNO and the baseline back to back, so a round's ratio sees (nearly) the same machine
        # load; the median over rounds is robust to a load spike that hits one of the two.
        per_round = sorted(d / b for d, b in zip(rates["domino"], rates[baseline]))
        print(f"domino/{baseline} = {ratio:.3f} (overhead {100 * (1 - ratio):.1f}%); per round: median "
              f"{statistics.median(per_round):.3f}, range {per_round[0]:.3f}–{per_round[-1]:.3f}")
    for algo in algos.values():
        algo.stop()


if __name__ == "__main__":
    main()
