"""Downstream use of skills (RVIC paper): a meta-controller over frozen skills, RVIC vs VIC vs primitives.

    python benchmarks/skills_downstream.py --skill-steps 200000 --steps 100000 --seeds 0 1 2 --out runs/skills_downstream

1. Skills: for each seed, RVIC and VIC learn skills in the 9x9 open room with random starts (presets
   rvic/open-room and vic/open-room, --skill-steps env steps each) and export them as skill libraries.
2. Downstream: PPO (preset rvic/open-room-downstream) reaches a random goal from a random start within 30
   primitive steps; its actions are the 8 frozen skills of that seed's library + the 5 primitive moves
   ("rvic", "vic"), the skills alone ("rvic-skills-only", "vic-skills-only": is the skill set enough to reach
   any goal?), or the primitives alone ("primitives"). Each run trains for --steps *primitive* env steps
   (a skill action costs up to T=5 of them), so the curves compare the same amount of experience.

Writes curves.json (one line per iteration: variant, seed, primitive env steps, success rate = mean episode
return, mean episode length in primitive steps), table.md and downstream_success.png (mean ± 95% t-interval
over seeds vs primitive env steps). One process per run, at most --parallel at a time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from parallel_runs import build_worker, run_jobs, stop_worker

SKILL_PRESETS = {"rvic": "rvic/open-room", "vic": "vic/open-room"}
# variant → (whose skills, primitive moves offered too)
VARIANTS = {"rvic": ("rvic", True), "vic": ("vic", True), "primitives": (None, True),
            "rvic-skills-only": ("rvic", False), "vic-skills-only": ("vic", False)}


def _count_primitive_steps(*, episode, metrics_logger, **_) -> None:
    metrics_logger.log_value("primitive_steps", episode.get_infos(-1)["primitive_steps"], reduce="sum", clear_on_reduce=True)


def learn_skills(algorithm: str, seed: int, steps: int, folder: Path) -> None:
    from armillary.envs.skill_options import export_skill_library

    _, algo = build_worker(SKILL_PRESETS[algorithm], ["algorithm.config.evaluation_interval=0"], seed)
    started, sampled = time.time(), 0
    while sampled < steps:
        sampled = int(algo.train()["env_runners"]["num_env_steps_sampled_lifetime"])
    _, figures = algo.evaluate_skills(episodes_per_skill=100)
    export_skill_library(algo, folder)
    print(json.dumps({"skills": algorithm, "seed": seed, "env_steps": sampled, "wall_s": round(time.time() - started, 1),
                      **{k: round(float(v), 4) for k, v in figures.items()}}), flush=True)
    stop_worker(algo)


def learn_downstream(variant: str, seed: int, steps: int, library: Path | None) -> None:
    overrides = [f"env.config.include_primitives={str(VARIANTS[variant][1]).lower()}"]
    if library is not None:
        overrides.append(f"env.config.skills={library}")
    _, algo = build_worker("rvic/open-room-downstream", overrides, seed,
                           configure=lambda config: config.callbacks(on_episode_step=_count_primitive_steps))
    started, primitive_steps = time.time(), 0
    while primitive_steps < steps:
        result = algo.train()
        runners = result["env_runners"]
        primitive_steps += int(runners.get("primitive_steps", 0))
        print(json.dumps({"variant": variant, "seed": seed, "primitive_steps": primitive_steps,
                          "meta_steps": int(runners["num_env_steps_sampled_lifetime"]),
                          "success": float(runners.get("episode_return_mean", float("nan"))),
                          "episode_len_meta": float(runners.get("episode_len_mean", float("nan"))),
                          "wall_s": round(time.time() - started, 1)}), flush=True)
    stop_worker(algo)


def summarise(rows: list[dict], out: Path, steps: int, bin_size: int) -> str:
    import numpy as np

    import matplotlib

    from armillary.platform import aggregates

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.arange(bin_size, steps + 1, bin_size)
    table = ["| variant | seeds | " + " | ".join(f"{e // 1000}k" for e in edges) + " |", "|---|---|" + "---|" * len(edges)]
    figure, axis = plt.subplots(figsize=(6, 4))
    for variant in VARIANTS:
        seeds = sorted({r["seed"] for r in rows if r["variant"] == variant})
        if not seeds:
            continue
        curves = []
        for seed in seeds:
            mine = [r for r in rows if r["variant"] == variant and r["seed"] == seed]
            x = np.array([r["primitive_steps"] for r in mine])
            y = np.array([r["success"] for r in mine])
            curves.append([y[x <= e][-1] if (x <= e).any() else np.nan for e in edges])  # last value by each step count
        curves = np.array(curves)
        # mean over the seeds that have reached each step count, 95% bootstrap interval (armillary.platform.aggregates)
        mean, low, high = np.array([aggregates.interval(column[np.isfinite(column)], "mean", (0.0, 1.0))
                                    if np.isfinite(column).any() else (np.nan,) * 3 for column in curves.T]).T
        axis.plot(edges, mean, label=f"{variant} ({len(seeds)} seeds)")
        axis.fill_between(edges, low, high, alpha=0.2)
        table.append(f"| {variant} | {len(seeds)} | " + " | ".join(f"{m:.2f} [{lo:.2f}, {hi:.2f}]"
                                                                    for m, lo, hi in zip(mean, low, high)) + " |")
    axis.set_xlabel("primitive env steps")
    axis.set_ylabel("success rate (goal within 30 steps)")
    axis.set_ylim(0, 1.05)
    axis.set_title("Goal reaching with frozen skills, 9x9 room (mean, 95% bootstrap CI)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(out / "downstream_success.png", dpi=120)
    text = "\n".join(table) + "\n"
    (out / "table.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skill-steps", type=int, default=200_000, help="env steps of skill learning per library")
    parser.add_argument("--steps", type=int, default=100_000, help="primitive env steps of each downstream run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--bin", type=int, default=10_000, help="step spacing of the table and the plot")
    parser.add_argument("--out", type=Path, default=Path("runs/skills_downstream"))
    parser.add_argument("--skills-worker", nargs=3, metavar=("ALGORITHM", "SEED", "FOLDER"), help=argparse.SUPPRESS)
    parser.add_argument("--downstream-worker", nargs=3, metavar=("VARIANT", "SEED", "LIBRARY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.skills_worker:
        algorithm, seed, folder = args.skills_worker
        learn_skills(algorithm, int(seed), args.skill_steps, Path(folder))
        return
    if args.downstream_worker:
        variant, seed, library = args.downstream_worker
        learn_downstream(variant, int(seed), args.steps, None if library == "-" else Path(library))
        return

    started = time.time()
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    needed = {VARIANTS[v][0] for v in args.variants} - {None}
    libraries = {(a, s): args.out / "skills" / f"{a}_seed{s}" for a in needed for s in args.seeds}
    run_jobs([([sys.executable, __file__, "--skills-worker", a, str(s), str(folder), "--skill-steps", str(args.skill_steps)],
               args.out / f"skills_{a}_seed{s}.jsonl") for (a, s), folder in libraries.items()
              if not (folder / "skills.json").is_file()], args.parallel)  # libraries of an earlier run are reused
    jobs = []
    for seed in args.seeds:
        for variant in args.variants:
            owner = VARIANTS[variant][0]
            library = str(libraries[(owner, seed)]) if owner else "-"
            jobs.append(([sys.executable, __file__, "--downstream-worker", variant, str(seed), library, "--steps", str(args.steps)],
                         args.out / f"downstream_{variant}_seed{seed}.jsonl"))
    run_jobs(jobs, args.parallel)
    rows = [json.loads(line) for path in sorted(args.out.glob("downstream_*.jsonl")) for line in path.read_text().splitlines()
            if line.startswith("{")]
    (args.out / "curves.json").write_text(json.dumps(rows))
    print(summarise(rows, args.out, args.steps, args.bin))
    print(f"wall time {time.time() - started:.0f} s; success = mean episode return (1 if the goal is reached); ± is a 95% t-interval")


if __name__ == "__main__":
    main()
