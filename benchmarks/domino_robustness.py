"""DOMiNO's robustness on the multi-goal room: is the best member of a diverse set more robust to a changed world
than the single optimal policy? (Zahavy et al. 2022, the perturbation experiments; algorithms/domino/robustness.py.)

    # 1. train (or reuse) DOMiNO and the no-diversity control, 5 seeds each, saving the policy modules
    python benchmarks/domino_grid.py --variants domino no-diversity --seeds 0 1 2 3 4 --parallel 2 \\
        --out runs/domino_robustness/train --save-modules runs/domino_robustness/modules
    # 2. evaluate every member in the room and its 8 perturbations; table, plot and rows into --out
    python benchmarks/domino_robustness.py --modules runs/domino_robustness/modules --out results/domino/robustness
    python benchmarks/domino_robustness.py --report --out results/domino/robustness     # table + plot from rows.jsonl
    # unequal goals: train with --set "env.config.goal_rewards=[1.0, 0.85, 0.7, 0.55]", evaluate with
    #   --preset domino/grid-unequal (the room, its goal rewards and N are read from the preset)

Per trained set (variant × seed) and action mode (greedy: argmax; stochastic: sampled from the policy), every member's
mean return over --selection-episodes and, on other episode seeds, over --evaluation-episodes, in the unperturbed room
and in each perturbation (goal k removed, corner k walled; k = 0..3). "Policy 0's corner" is the corner that the
greedy policy 0 reaches most in the unperturbed room. Reported, as the fraction of policy 0's unperturbed return
kept (IQM and mean over seeds, 95% stratified-bootstrap intervals, armillary.platform.aggregates):
    π0     the single optimal policy (policy 0) in the perturbed room
    best   the member chosen on the selection episodes, scored on the evaluation episodes
for no diversity and DOMiNO, and P(DOMiNO best > no-diversity π0), P(DOMiNO best > no-diversity best).
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from armillary.platform import aggregates

MODES = ("greedy", "stochastic")
# Rows of the table: (label, perturbation kind, targeted at policy 0's corner or averaged over the four corners).
ROWS = (
    ("unperturbed", None, None),
    ("policy 0's goal removed", "goal-removed", True),
    ("policy 0's corner walled", "corner-walled", True),
    ("a goal removed (mean of 4)", "goal-removed", False),
    ("a corner walled (mean of 4)", "corner-walled", False),
)
ARMS = (("no-diversity", "π0"), ("no-diversity", "best"), ("domino", "π0"), ("domino", "best"))


def evaluate_module(path: Path, variant: str, seed: int, selection: int, evaluation: int, preset: str) -> list[dict]:
    import torch
    from ray.rllib.core.rl_module.rl_module import RLModule

    from armillary.algorithms.domino import robustness
    from armillary.algorithms.domino.evaluation import greedy_actor, rollout_policies, sampling_actor
    from armillary.platform import presets

    torch.set_num_threads(1)
    grid = presets.spec_dict(preset)  # the room the set was trained in (the control's preset has the same one)
    hp = grid["algorithm"]["config"]
    env_config = {"env": grid["env"]["name"], "options": dict(grid["env"]["config"]),
                  "num_policies": hp["num_policies"], "features": hp["features"]}
    module = RLModule.from_checkpoint(str(path.resolve()))
    module.eval()
    greedy = rollout_policies(env_config, greedy_actor(module), 1, seed=seed)
    main_goals = [r.summary().get("main_goal", -1) for r in greedy]
    rows = []
    for mode in MODES:
        act = greedy_actor(module) if mode == "greedy" else sampling_actor(module, seed)
        worlds = robustness.evaluate_set(env_config, act, robustness.all_perturbations(),
                                         1 if mode == "greedy" else selection, 1 if mode == "greedy" else evaluation, seed)
        rows.append({"variant": variant, "seed": seed, "mode": mode, "module": str(path), "main_goals": main_goals,
                     "worlds": [{"world": w.world, "selection": w.selection, "evaluation": w.evaluation, "chosen": w.chosen}
                                for w in worlds]})
    return rows


def figures(row: dict) -> dict[str, dict[str, float]]:
    """Per table row label: {"π0": fraction kept, "best": fraction kept} for one trained set and mode."""
    from armillary.algorithms.domino.robustness import WorldResult, fraction_kept

    worlds = {w["world"]: WorldResult(w["world"], w["selection"], w["evaluation"]) for w in row["worlds"]}
    base = worlds["none"].policy0_return
    if base <= 0:
        return {}  # policy 0 never reaches a goal: there is no return to keep (listed under the table)
    target = row["main_goals"][0]
    out = {}
    for label, kind, targeted in ROWS:
        if kind is None:
            chosen = [worlds["none"]]
        elif targeted:
            if target < 0:
                continue  # the greedy policy 0 reaches no goal: nothing to target
            chosen = [worlds[f"{kind}/{target}"]]
        else:
            chosen = [worlds[f"{kind}/{k}"] for k in range(4)]
        out[label] = {"π0": float(np.mean([fraction_kept(w.policy0_return, base) for w in chosen])),
                      "best": float(np.mean([fraction_kept(w.best_return, base) for w in chosen]))}
    return out


def estimate(values: list[float]) -> str:
    if not values:
        return "–"
    iqm, low, high = aggregates.interval(np.asarray(values), "IQM")
    return f"{float(iqm):.2f} [{float(low):.2f}, {float(high):.2f}] (mean {np.mean(values):.2f})"


def collect(rows: list[dict], mode: str) -> dict[tuple[str, str, str], list[float]]:
    """(row label, variant, π0/best) → the per-seed fractions kept."""
    out: dict[tuple[str, str, str], list[float]] = {}
    for row in sorted((r for r in rows if r["mode"] == mode), key=lambda r: (r["variant"], r["seed"])):
        for label, cells in figures(row).items():
            for which, value in cells.items():
                out.setdefault((label, row["variant"], which), []).append(value)
    return out


def table(rows: list[dict]) -> str:
    lines = []
    for mode in MODES:
        data = collect(rows, mode)
        seeds = {v: sorted({r["seed"] for r in rows if r["variant"] == v and r["mode"] == mode}) for v in ("no-diversity", "domino")}
        lines += [f"**{mode} actions** (seeds: no diversity {seeds['no-diversity']}, DOMiNO {seeds['domino']}); fraction of "
                  "policy 0's unperturbed return kept, IQM [95% bootstrap interval] (mean) over seeds", "",
                  "| perturbation | no diversity π0 | no diversity best | DOMiNO π0 | DOMiNO best | P(DOMiNO best > no-div π0) | P(DOMiNO best > no-div best) |",
                  "|---|---|---|---|---|---|---|"]
        for label, _, _ in ROWS:
            cells = [estimate(data.get((label, v, w), [])) for v, w in ARMS]
            probs = []
            for other in (("no-diversity", "π0"), ("no-diversity", "best")):
                x, y = data.get((label, "domino", "best"), []), data.get((label, *other), [])
                probs.append(aggregates.probability_of_improvement({"x": x, "y": y})[("x", "y")].format(2) if x and y else "–")
            lines.append(f"| {label} | " + " | ".join(cells + probs) + " |")
        excluded = [f"{r['variant']} seed {r['seed']}" for r in rows if r["mode"] == mode and not figures(r)]
        lines += ["", f"Excluded (policy 0's unperturbed return is 0): {', '.join(excluded) or 'none'}.", ""]
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(MODES), figsize=(6.5 * len(MODES), 3.9), sharey=True)
    width = 0.2
    colours = {("no-diversity", "π0"): "#bbbbbb", ("no-diversity", "best"): "#666666",
               ("domino", "π0"): "#9ecae1", ("domino", "best"): "#2171b5"}
    for axis, mode in zip(axes, MODES):
        data = collect(rows, mode)
        for j, arm in enumerate(ARMS):
            points, lows, highs = [], [], []
            for label, _, _ in ROWS:
                values = data.get((label, *arm), [])
                iqm, low, high = aggregates.interval(np.asarray(values), "IQM") if values else (np.nan,) * 3
                points.append(float(iqm))
                lows.append(float(iqm) - float(low))
                highs.append(float(high) - float(iqm))
            x = np.arange(len(ROWS)) + (j - 1.5) * width
            axis.bar(x, points, width, yerr=[lows, highs], capsize=2, color=colours[arm],
                     label=f"{'DOMiNO' if arm[0] == 'domino' else 'no diversity'} {arm[1]}")
        axis.set_xticks(np.arange(len(ROWS)), [label for label, _, _ in ROWS], rotation=20, ha="right", fontsize=8)
        axis.set_title(f"{mode} actions", fontsize=10)
        axis.axhline(1.0, color="k", linewidth=0.6, linestyle="--")
    axes[0].set_ylabel("return kept (÷ π0's unperturbed return)\nIQM over seeds, 95% bootstrap")
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper center", ncol=len(ARMS), fontsize=8)
    figure.tight_layout(rect=(0, 0, 1, 0.93))
    figure.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modules", type=Path, help="folder of saved modules <variant>-a<α>-s<seed> (domino_grid.py --save-modules)")
    parser.add_argument("--variants", nargs="+", default=["domino", "no-diversity"])
    parser.add_argument("--preset", default="domino/grid",
                        help="the preset whose room and N the sets were trained with (domino/grid-unequal: unequal goals)")
    parser.add_argument("--selection-episodes", type=int, default=10, help="stochastic mode: episodes per member to choose the best")
    parser.add_argument("--evaluation-episodes", type=int, default=50, help="stochastic mode: episodes per member to score it")
    parser.add_argument("--out", type=Path, default=Path("results/domino/robustness"))
    parser.add_argument("--report", action="store_true", help="only the table and plot from --out/rows.jsonl")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows_path = args.out / "rows.jsonl"
    if not args.report:
        if args.modules is None:
            raise SystemExit("--modules: the folder of saved modules is required unless --report")
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        done = {(r["variant"], r["seed"]) for r in map(json.loads, rows_path.read_text().splitlines())} if rows_path.exists() else set()
        for path in sorted(args.modules.iterdir()):
            variant, _, seed = path.name.rpartition("-s")
            variant = variant.rsplit("-a", 1)[0]
            if variant not in args.variants or (variant, int(seed)) in done:
                continue
            for row in evaluate_module(path, variant, int(seed), args.selection_episodes, args.evaluation_episodes,
                                       args.preset):
                with rows_path.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
            print(f"evaluated {path.name}", file=sys.stderr, flush=True)
    rows = [json.loads(line) for line in rows_path.read_text().splitlines() if line.strip()]
    text = table(rows)
    (args.out / "table.md").write_text(text)
    plot(rows, args.out / "robustness.png")
    print(text)


if __name__ == "__main__":
    main()
