"""`armillary run dqn/cartpole-scale`: the asynchronous DQN (scale.py) for each actor count × seed, one JSON file of rows
per run (env steps, wall clock, return, measured samples per insert) and a table, under --out.

    python -m armillary.algorithms.dqn.scale_job --actors 1,2 --seeds 0,1 --env-steps 3000 --out runs/dqn/scale-smoke
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from armillary.algorithms.dqn.config import ScaleDQNConfig


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m armillary.algorithms.dqn.scale_job", description=__doc__)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--actors", type=_ints, default=[1, 2, 4, 8], help="actor counts, e.g. 1,2,4,8")
    parser.add_argument("--seeds", type=_ints, default=[0, 1, 2, 3, 4])
    parser.add_argument("--env-steps", type=int, default=20_000)
    parser.add_argument("--samples-per-insert", type=float, default=8.0)
    parser.add_argument("--min-size", type=int, default=1_000)
    parser.add_argument("--error-buffer", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--replay-capacity", type=int, default=50_000)
    parser.add_argument("--hidden-sizes", type=_ints, default=[128, 128])
    parser.add_argument("--cpus-per-actor", type=float, default=None,
                        help="Ray CPUs per actor (default: what fits the actors on the machine's cores)")
    parser.add_argument("--address", default=None, help="a Ray cluster to join (default: a local Ray)")
    parser.add_argument("--out", default="runs/dqn/scale")
    return parser.parse_args(argv)


def configs(args: argparse.Namespace, cores: float) -> list[ScaleDQNConfig]:
    """One validated config per actor count × seed (a bad value stops here, before any Ray work)."""
    out = []
    for actors in args.actors:
        cpus = args.cpus_per_actor or min(1.0, max(cores - 1, 1) / actors)
        for seed in args.seeds:
            out.append(ScaleDQNConfig(
                env=args.env, num_actors=actors, cpus_per_actor=cpus, seed=seed, env_steps=args.env_steps,
                batch_size=args.batch_size, replay_capacity=args.replay_capacity, hidden_sizes=args.hidden_sizes,
                limiter={"samples_per_insert": args.samples_per_insert, "min_size_to_sample": args.min_size,
                         "error_buffer": args.error_buffer}))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse(argv if argv is not None else [])
    import ray

    started_ray = not ray.is_initialized()
    if started_ray:
        if args.address or os.environ.get("RAY_ADDRESS"):  # a cluster (ray.init reads RAY_ADDRESS)
            ray.init(address=args.address, log_to_driver=False)
        else:
            ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    try:
        return _study(args, argv)
    finally:
        if started_ray:
            ray.shutdown()


def _study(args: argparse.Namespace, argv: list[str] | None) -> int:
    import ray

    from armillary.algorithms.dqn.scale import learn

    runs = configs(args, ray.cluster_resources().get("CPU", 1.0))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = ["| actors | seed | env steps | updates | wall s | env steps/s | final return (last 20 ep.) | "
             "measured spi | limiter s / learner s |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for config in runs:
        result = learn(config)
        name = f"actors{config.num_actors}-seed{config.seed}"
        (out / f"{name}.json").write_text(json.dumps({"config": config.model_dump(), **result}, indent=1))
        final, rows = result["final"], result["rows"]
        last = next((row["return_mean"] for row in reversed(rows) if row["return_mean"] is not None), float("nan"))
        table.append(f"| {config.num_actors} | {config.seed} | {final['inserts']} | {result['updates']} | "
                     f"{result['wall_s']:.1f} | {final['inserts'] / result['wall_s']:.0f} | {last:.1f} | "
                     f"{final['samples_per_insert_measured']:.3f} | "
                     f"{final['limiter_seconds'] / max(result['update_seconds'], 1e-9):.4f} |")
        print(table[-1], flush=True)
    (out / "table.md").write_text("\n".join(table) + "\n")
    (out / "command.txt").write_text("python -m armillary.algorithms.dqn.scale_job " + " ".join(argv or []) + "\n")
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
