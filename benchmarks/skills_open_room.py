"""RVIC vs VIC in the open room with random starts: are skills displacements or places?

    python benchmarks/skills_open_room.py --steps 300000 --seeds 0 1 2 --out runs/skills_open_room

Both from their presets (rvic/open-room, vic/open-room: same env, N, T, PPO and discriminator settings;
only the reward differs); "vic-end" is vic/open-room with condition_on_start=false (q(z | s_f)). After training, every skill is run from random starts (near-greedy) and the
end positions give, per skill, the entropy of the absolute end state H[S_f | z] and of the displacement
H[S_f − S_0 | z], and over all skills the plug-in I(Z; S_f) and I(Z; S_f − S_0) (bits). Expect RVIC:
low displacement entropy, high end-state entropy, I(Z; S_f − S_0) > I(Z; S_f); VIC the other way round.
Writes results.json and table.md; one process per (algorithm, seed), at most --parallel at a time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from parallel_runs import build_worker, run_jobs, stop_worker

# name → (preset, overrides). "vic-end" is VIC with q(z | s_f) (no start state), the DIAYN-like end-state variant.
PRESETS = {
    "rvic": ("rvic/open-room", []),
    "vic": ("vic/open-room", []),
    "vic-end": ("vic/open-room", ["algorithm.config.condition_on_start=false"]),
}
FIGURES = ("skill_entropy_final_bits", "skill_entropy_displacement_bits", "mutual_information_final_bits",
           "mutual_information_displacement_bits", "effective_skills")


def run_one(algorithm: str, seed: int, steps: int, extra: list[str], episodes_per_skill: int, artifacts: Path | None) -> None:
    preset, overrides = PRESETS[algorithm]
    _, algo = build_worker(preset, [*overrides, *extra, "algorithm.config.evaluation_interval=0"], seed)
    started, sampled = time.time(), 0
    while sampled < steps:
        sampled = int(algo.train()["env_runners"]["num_env_steps_sampled_lifetime"])
    _, figures = algo.evaluate_skills(episodes_per_skill=episodes_per_skill)
    print(json.dumps({"algorithm": algorithm, "seed": seed, "env_steps": sampled, "wall_s": round(time.time() - started, 1),
                      **{k: round(float(v), 4) for k, v in figures.items()}}), flush=True)
    if artifacts is not None:
        from armillary.algorithms.skills.artifacts import write_skill_artifacts

        write_skill_artifacts(algo, artifacts)
    stop_worker(algo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes-per-skill", type=int, default=200)
    parser.add_argument("--algorithms", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/skills_open_room"))
    parser.add_argument("--set", nargs="*", default=[], help="extra dotted spec overrides for both algorithms")
    parser.add_argument("--worker", nargs=2, metavar=("ALGORITHM", "SEED"), help=argparse.SUPPRESS)
    parser.add_argument("--artifacts", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_one(args.worker[0], int(args.worker[1]), args.steps, args.set, args.episodes_per_skill, args.artifacts)
        return

    args.out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for seed in args.seeds:
        for algorithm in args.algorithms:
            command = [sys.executable, __file__, "--worker", algorithm, str(seed), "--steps", str(args.steps),
                       "--episodes-per-skill", str(args.episodes_per_skill), "--set", *args.set]
            if seed == args.seeds[0]:
                command += ["--artifacts", str(args.out / f"{algorithm}_artifacts")]
            jobs.append((command, args.out / f"{algorithm}_seed{seed}.jsonl"))
    started = time.time()
    logs = run_jobs(jobs, args.parallel)
    rows = [json.loads(line) for path in logs for line in path.read_text().splitlines() if line.startswith("{")]
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))
    table = ["| algorithm | seeds | " + " | ".join(FIGURES) + " |", "|---|---|" + "---|" * len(FIGURES)]
    for algorithm in args.algorithms:
        mine = [r for r in rows if r["algorithm"] == algorithm]
        cells = []
        for name in FIGURES:
            values = [r[name] for r in mine]
            mean = sum(values) / len(values)
            spread = (max(values) - min(values)) / 2
            cells.append(f"{mean:.2f} ± {spread:.2f}")
        table.append(f"| {algorithm} | {len(mine)} | " + " | ".join(cells) + " |")
    (args.out / "table.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    print(f"wall time {time.time() - started:.0f} s ({args.steps:,} steps per run; ± is half the range over seeds)")


if __name__ == "__main__":
    main()
