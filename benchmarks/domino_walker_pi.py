"""A short look at domino/walker's multiplier update: a few iterations at the preset's sizes, the DOMiNO figures of
every iteration (σ(λ_i), v̄_i/v̄_0, min ψ distance), wall time and steps/s. Not a learning result: walker needs
millions of steps; this checks that the update behaves (finite, inside (0, 1), moving the right way).

    OMP_NUM_THREADS=1 python benchmarks/domino_walker_pi.py --iterations 10 --out runs/domino_walker_pi.jsonl
    OMP_NUM_THREADS=1 python benchmarks/domino_walker_pi.py --iterations 10 --set algorithm.config.multiplier_optimizer=adam \\
        algorithm.config.multiplier_lr=0.01 algorithm.config.multiplier_proportional=0.0 --out runs/domino_walker_adam.jsonl

Sampling in the driver process (local-cpu, 0 env runners), one learner.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], dest="extra", help="extra spec overrides")
    parser.add_argument("--out", type=Path, help="append one JSON line per iteration here")
    args = parser.parse_args()

    import ray

    from armillary.platform.metrics import summarize
    from armillary.platform.rllib_config import build_algorithm_config
    from armillary.platform.spec import load_spec

    spec = load_spec("domino/walker", ["resources.profile=local-cpu", "resources.num_env_runners=0", *args.extra])
    hp = spec.algorithm.config
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    algo = build_algorithm_config(spec, seed=args.seed).build_algo()
    started = time.time()
    try:
        for iteration in range(1, args.iterations + 1):
            t = time.time()
            result = algo.train()
            figures = summarize(result)
            n = hp.num_policies
            line = {
                "iteration": iteration, "optimizer": hp.multiplier_optimizer, "seconds": round(time.time() - t, 1),
                "env_steps": int(figures.get("env_runners/num_env_steps_sampled_lifetime", 0)),
                "episode_return_mean": figures.get("env_runners/episode_return_mean"),
                "sigma": [round(figures[f"domino/lagrange/{i}"], 4) for i in range(1, n)],
                "value_ratio": [round(figures[f"domino/value_ratio/{i}"], 3) for i in range(1, n)],
                "value_0": round(figures["domino/value/0"], 4),
                "min_pairwise_sf_distance": round(figures["domino/min_pairwise_sf_distance"], 4),
                "constraints_met": figures["domino/constraints_met"],
                # where the iteration's time goes (RLlib's timers): sampling vs the learner's update
                **{name: round(float(value), 2) for name, value in result.get("timers", {}).items()
                   if isinstance(value, (int, float)) and ("sampl" in name or "learner" in name)},
            }
            print(json.dumps(line), flush=True)
            if args.out:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                with args.out.open("a") as handle:
                    handle.write(json.dumps(line) + "\n")
    finally:
        algo.stop()
        ray.shutdown()
    wall = time.time() - started
    steps = args.iterations * hp.train_batch_size
    print(f"{args.iterations} iterations, {steps} env steps, {wall:.0f} s wall, {steps / wall:.0f} env steps/s", flush=True)


if __name__ == "__main__":
    main()
