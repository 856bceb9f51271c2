"""DISDAIN vs its baselines on the authors' small Four Rooms: effective skills vs env steps.

    python benchmarks/skills_four_rooms.py --steps 500000 --seeds 0 1 2 --out runs/skills_four_rooms

Variants (same env-step budget, same PPO/discriminator settings from the preset, differing only in E and λ):
    disdain        E=2, λ=20      (preset disdain/four-rooms)
    ensemble       E=2, λ=0       (preset disdain/four-rooms-baseline)
    vic            E=1, λ=0       (plain VIC with a fixed start)
Each (variant, seed) runs in its own process (at most --parallel at a time, OMP_NUM_THREADS=1), built from
the preset through the platform (load_spec → build_algorithm_config), sampling in-process. Writes
curves.json, curves.png (mean, 95% stratified-bootstrap CI over seeds), table.md, and for one DISDAIN seed the bonus plot.
Marked slow: not part of the default test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from parallel_runs import build_worker, run_jobs, stop_worker

from armillary.platform import aggregates

VARIANTS = {
    "disdain": ("disdain/four-rooms", []),
    "ensemble": ("disdain/four-rooms-baseline", []),
    "vic": ("disdain/four-rooms", ["algorithm.config.ensemble_size=1", "algorithm.config.bonus_weight=0"]),
}


def run_one(variant: str, seed: int, steps: int, eval_every_steps: int, extra: list[str], artifacts: Path | None) -> None:
    """One trial in this process; prints one JSON line per evaluation."""
    preset, overrides = VARIANTS[variant]
    _, algo = build_worker(preset, [*overrides, *extra, "algorithm.config.evaluation_interval=0"], seed)
    started, sampled, next_eval = time.time(), 0, 0
    while sampled < steps:
        result = algo.train()
        sampled = int(result["env_runners"]["num_env_steps_sampled_lifetime"])
        if sampled >= next_eval or sampled >= steps:
            next_eval += eval_every_steps
            _, figures = algo.evaluate_skills()
            line = {"variant": variant, "seed": seed, "env_steps": sampled, "wall_s": round(time.time() - started, 1),
                    **{k: round(float(v), 4) for k, v in figures.items()},
                    "effective_skills_train": round(float(result["disdain"]["effective_skills_train"]), 4),
                    "bonus_mean_train": round(float(result["disdain"]["bonus_mean"]), 5)}
            print(json.dumps(line), flush=True)
    if artifacts is not None:
        from armillary.algorithms.skills.artifacts import write_skill_artifacts

        write_skill_artifacts(algo, artifacts)
    stop_worker(algo)


def mean_ci(values: list[float]) -> tuple[float, float, float]:
    """Mean over seeds and its 95% bootstrap interval (armillary.platform.aggregates)."""
    mean, low, high = aggregates.interval(np.asarray(values, dtype=float), "mean")
    return float(mean), float(low), float(high)


def _per_seed(lines: list[dict], variant: str) -> dict[int, list[tuple[int, float]]]:
    return {seed: [(line["env_steps"], line["effective_skills"]) for line in mine]
            for seed, mine in _lines_per_seed(lines, variant).items()}


def summarise(lines: list[dict], out: Path, eval_every_steps: int) -> str:
    from matplotlib.figure import Figure

    curves: dict[str, dict[int, dict[int, float]]] = {}
    for line in lines:
        bucket = round(line["env_steps"] / eval_every_steps) * eval_every_steps
        curves.setdefault(line["variant"], {}).setdefault(bucket, {})[line["seed"]] = line["effective_skills"]
    figure = Figure(figsize=(7, 4.5))
    axes = figure.subplots()
    for variant, points in curves.items():
        xs = sorted(points)
        means, lows, highs = zip(*[mean_ci(list(points[x].values())) for x in xs])
        axes.plot(xs, means, label=variant)
        axes.fill_between(xs, lows, highs, alpha=0.2)
    axes.set_xlabel("env steps")
    axes.set_ylabel("effective skills exp(E[log q̄(z|s_T) + log N])")
    axes.set_title("Four Rooms small, N=24, T=8 (mean, 95% stratified-bootstrap CI over seeds)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(out / "curves.png", dpi=100)

    checkpoints = sorted({x for points in curves.values() for x in points})
    marks = [x for x in checkpoints if x in (checkpoints[len(checkpoints) // 2], checkpoints[-1])]
    rows = ["| variant | " + " | ".join(f"{x:,} steps" for x in marks) + " | mean of each seed's last 3 evaluations |",
            "|---|" + "---|" * (len(marks) + 1)]
    for variant, points in curves.items():
        cells = []
        for x in marks:
            values = list(points.get(x, {}).values())
            if values:
                mean, low, high = mean_ci(values)
                cells.append(f"{mean:.1f} [{low:.1f}, {high:.1f}] (n={len(values)})")
            else:
                cells.append("–")
        last = [sum(e for _, e in sorted(v)[-3:]) / 3 for v in _per_seed(lines, variant).values()]
        mean, low, high = mean_ci(last)
        cells.append(f"{mean:.1f} [{low:.1f}, {high:.1f}]")
        rows.append(f"| {variant} | " + " | ".join(cells) + " |")
    # The same comparison without the discriminator: what the near-greedy skills do at the last evaluation.
    rows += ["", "| variant | distinct end cells of the 24 skills | plug-in I(Z; S_T), bits | 2^I |", "|---|---|---|---|"]
    for variant in curves:
        finals = [max(v, key=lambda line: line["env_steps"]) for v in _lines_per_seed(lines, variant).values()]
        cells = mean_ci([f["distinct_final_states"] for f in finals])
        bits = mean_ci([f["mutual_information_final_bits"] for f in finals])
        rows.append(f"| {variant} | {cells[0]:.1f} [{cells[1]:.1f}, {cells[2]:.1f}] (n={len(finals)}) | "
                    f"{bits[0]:.2f} [{bits[1]:.2f}, {bits[2]:.2f}] | {2 ** bits[0]:.1f} |")
    table = "\n".join(rows)
    (out / "table.md").write_text(table + "\n")
    return table


def _lines_per_seed(lines: list[dict], variant: str) -> dict[int, list[dict]]:
    seeds: dict[int, list[dict]] = {}
    for line in lines:
        if line["variant"] == variant:
            seeds.setdefault(line["seed"], []).append(line)
    return seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=500_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--eval-every", type=int, default=25_000, help="env steps between evaluations")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/skills_four_rooms"))
    parser.add_argument("--set", nargs="*", default=[], help="extra dotted spec overrides for every variant")
    parser.add_argument("--summarise", action="store_true", help="only redo the table and plot of an --out folder")
    parser.add_argument("--worker", nargs=2, metavar=("VARIANT", "SEED"), help=argparse.SUPPRESS)
    parser.add_argument("--artifacts", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_one(args.worker[0], int(args.worker[1]), args.steps, args.eval_every, args.set, args.artifacts)
        return

    if args.summarise:
        lines = [json.loads(row) for path in sorted(args.out.glob("*.jsonl")) for row in path.read_text().splitlines() if row.startswith("{")]
        print(summarise(lines, args.out, args.eval_every))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for seed in args.seeds:
        for variant in args.variants:
            command = [sys.executable, __file__, "--worker", variant, str(seed), "--steps", str(args.steps),
                       "--eval-every", str(args.eval_every), "--set", *args.set]
            if variant == "disdain" and seed == args.seeds[0]:
                command += ["--artifacts", str(args.out / "disdain_artifacts")]
            jobs.append((command, args.out / f"{variant}_seed{seed}.jsonl"))
    started = time.time()
    log_paths = run_jobs(jobs, args.parallel)
    lines = [json.loads(row) for path in log_paths for row in path.read_text().splitlines() if row.startswith("{")]
    (args.out / "curves.json").write_text(json.dumps(lines))
    print(summarise(lines, args.out, args.eval_every))
    print(f"wall time {time.time() - started:.0f} s for {len(log_paths)} runs of {args.steps:,} steps")


if __name__ == "__main__":
    main()
