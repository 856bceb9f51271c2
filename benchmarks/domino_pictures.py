"""Per-policy occupancy pictures of DOMiNO and its no-diversity baseline on the multi-goal room.

    OMP_NUM_THREADS=1 python benchmarks/domino_pictures.py --seed 0 --out results/domino/grid_equal_800k

Trains each preset for --steps env steps (in-process sampling) and writes the algorithm's final artifacts
(occupancy_per_policy.png: greedy visit heat maps of the N policies side by side; domino_policies.json) into
<out>/<preset name>_seed<seed>/.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["domino/grid", "domino/grid-no-diversity"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, help="env steps (default: each preset's stop)")
    parser.add_argument("--out", type=Path, default=Path("runs/domino_pictures"))
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    import ray

    from armillary.algorithms import registry
    from armillary.platform.rllib_config import build_algorithm_config
    from armillary.platform.spec import load_spec

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    for preset in args.presets:
        spec = load_spec(preset, ["resources.num_env_runners=0"])
        algo = build_algorithm_config(spec, seed=args.seed).build_algo()
        steps, budget = 0, args.steps or spec.stop.env_steps
        while steps < budget:
            steps = algo.train()["env_runners"]["num_env_steps_sampled_lifetime"]
        folder = args.out / f"{preset.split('/')[-1]}_seed{args.seed}"
        registry.get("domino").final_artifacts(algo, folder)
        print(f"{preset}: {int(steps)} env steps → {folder}", flush=True)
        algo.stop()


if __name__ == "__main__":
    main()
