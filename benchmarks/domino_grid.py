"""DOMiNO vs its baselines on the multi-goal room: constraint satisfaction and diversity, over seeds.

    python benchmarks/domino_grid.py --seeds 0 1 2 --out runs/domino_grid        # each preset's budget (800k env steps)
    python benchmarks/domino_grid.py --variants domino --alphas 0.5 0.7 0.9 0.99 --seeds 0 1 2   # the α sweep
    python benchmarks/domino_grid.py --variants domino ppo --seeds 0 --steps 200000            # throughput ratio
    python benchmarks/domino_grid.py --report --out runs/domino_grid --plot curves.png        # table + σ(λ_i) curves
    python benchmarks/domino_grid.py --report --out runs/fixed --alphas 0.5 0.7 0.9 0.99      # a fixed mix judged at each α
    python benchmarks/domino_grid.py --report runs/vdw/results.jsonl runs/rep/results.jsonl --distances --plot-distances d.png
                                                  # ‖ψ_i − ψ_j*‖ over training per run: VdW vs pure repulsion

Variants (same env, PPO settings and env-step budget, from the presets through the platform):
    domino        preset domino/grid (Lagrange multipliers, v_i ≥ α v_0)
    no-diversity  preset domino/grid-no-diversity (every policy extrinsic only)
    fixed-mix     preset domino/grid-fixed-mix (½ r_e + ½ r_d for i ≥ 1)
    ppo           plain PPO on the same env and PPO settings, one policy (for the throughput ratio)
Each (variant, α, seed) runs in its own process (OMP_NUM_THREADS=1, sampling in-process; --parallel N at a
time). Per iteration: σ(λ_i) and v̄_i/v̄_0 (weight_trace, ratio_trace), ‖ψ_i − ψ_j*‖ (nearest_trace). At the end: the learner's moving averages
(ψ, v̄, σ(λ)) and greedy rollouts of every policy (which corner each one goes to).
Writes results.jsonl and table.md into --out. Not part of the test suite.

Reported per variant (mean [95% bootstrap interval] over seeds, armillary.platform.aggregates):
    constraints met   fraction of policies i ≥ 1 with v̄_i / v̄_0 ≥ α − tolerance (--tolerance, default 0.05)
    met, 2nd-half mean the same for the mean of v̄_i / v̄_0 over the second half of the iterations (what a
                      primal-dual method guarantees: the average, not the last iterate)
    dip last 25%      each policy's lowest v̄_i / v̄_0 over the last quarter: median (range) over all policies i ≥ 1
    σ(λ) inside       fraction of policies i ≥ 1 with 0.02 < σ(λ_i) < 0.98 at the end
    std σ(λ) last 25% std of σ(λ_i) over the last quarter of the iterations, mean over i ≥ 1 (0: settled)
    min ‖ψ_i − ψ_j‖   the smallest pairwise successor-feature distance (the learner's ψ: moving averages, or the
                      successor-feature head's estimate with successor_features=network)
    greedy min ‖ψ‖    the same from the mean φ(s') of each policy's greedy rollouts (one yardstick for both estimators)
    distinct goals    how many different corners the N greedy policies go to (1 = collapsed to one route)
    v̄ mean / v̄_0      average extrinsic reward per step over the policies, and policy 0's
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from armillary.platform import aggregates

PRESETS = {"domino": "domino/grid", "no-diversity": "domino/grid-no-diversity", "fixed-mix": "domino/grid-fixed-mix"}


def ppo_spec_file(steps: int) -> str:
    """A spec for plain PPO with domino/grid's PPO settings and env (written to a temporary YAML file)."""
    import yaml

    from armillary.algorithms.ppo.config import PPOHyperparameters
    from armillary.platform import presets

    grid = presets.spec_dict("domino/grid")
    config = {k: v for k, v in grid["algorithm"]["config"].items() if k in PPOHyperparameters.model_fields}
    spec = {"name": "ppo/multi-goal-room", "algorithm": {"name": "ppo", "config": config}, "env": grid["env"],
            "stop": {"env_steps": steps}}
    handle = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    yaml.safe_dump(spec, handle)
    handle.close()
    return handle.name


def run_one(variant: str, alpha: float | None, seed: int, steps: int, extra: list[str], save_module: Path | None = None) -> dict:
    """One training run; with save_module, the trained policy module is saved there (RLModule.save_to_path), for
    evaluations after training (benchmarks/domino_robustness.py)."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    import ray
    import torch

    from armillary.algorithms.domino import losses
    from armillary.algorithms.domino.evaluation import greedy_actor, rollout_policies
    from armillary.algorithms.domino.module import DOMINO_MODULE_ID
    from armillary.platform.rllib_config import build_algorithm_config
    from armillary.platform.spec import load_spec

    overrides = list(extra) + ["resources.num_env_runners=0", f"stop.env_steps={steps}"]
    if variant == "ppo":
        spec = load_spec(ppo_spec_file(steps), overrides)
    else:
        if alpha is not None:
            overrides.append(f"algorithm.config.optimality_ratio={alpha}")
        spec = load_spec(PRESETS[variant], overrides)
    config = build_algorithm_config(spec, seed)
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    algo = config.build_algo()
    num_policies = spec.algorithm.config.num_policies if variant != "ppo" else 0
    started, sampled, iterations = time.time(), 0, 0
    weight_trace, ratio_trace = [], []  # per iteration: σ(λ_i) and v̄_i/v̄_0 for i ≥ 1 (the settling figures)
    gap_trace = []  # successor_features="network": ‖ψ_i(head) − batch mean of φ‖ per iteration
    nearest_trace = []  # per iteration: ‖ψ_i − ψ_j*‖ of every policy (VdW holds it near ℓ0, repulsion pushes it up)
    while sampled < steps:
        result = algo.train()
        sampled = int(result["env_runners"]["num_env_steps_sampled_lifetime"])
        iterations += 1
        figures = result.get("domino", {})
        if "lagrange" in figures:
            weight_trace.append([round(float(figures["lagrange"][str(i)]), 4) for i in range(1, num_policies)])
            ratio_trace.append([round(float(figures["value_ratio"][str(i)]), 4) for i in range(1, num_policies)])
        if "sf_network_gap" in figures:
            gap_trace.append(round(float(figures["sf_network_gap"]), 4))
        if "nearest_sf_distance" in figures:
            nearest_trace.append([round(float(figures["nearest_sf_distance"][str(i)]), 4) for i in range(num_policies)])
    wall = time.time() - started
    line = {"variant": variant, "alpha": alpha, "seed": seed, "env_steps": sampled, "iterations": iterations,
            "wall_s": round(wall, 1), "steps_per_s": round(sampled / wall, 1),
            "episode_return_mean": float(result["env_runners"].get("episode_return_mean", float("nan")))}
    if variant != "ppo":
        weights = algo.learner_group.get_weights()[DOMINO_MODULE_ID]
        psi, value, lagrange = (torch.as_tensor(weights[f"state.{k}"]) for k in ("psi", "value", "lagrange"))
        hp = spec.algorithm.config
        sigma = losses.mixing_weights(lagrange, hp.mixing, hp.extrinsic_weight, hp.diversity_weight)[1:, 0]
        rollouts = rollout_policies(algo.config.env_config, greedy_actor(algo.get_module()), 4, seed=seed)
        greedy_psi = torch.tensor([r.summary()["sf_estimate"] for r in rollouts])
        line.update({
            "optimality_ratio": hp.optimality_ratio, "successor_features": hp.successor_features,
            "diversity": hp.diversity, "target_distance": hp.target_distance,
            # The same yardstick for either ψ estimator: mean φ(s') of each policy's greedy rollouts.
            "greedy_min_pairwise_sf_distance": float(losses.min_pairwise_distance(greedy_psi)),
            "sf_network_gap_trace": gap_trace,
            "value": value.tolist(), "value_ratio": (value[1:] / value[0]).tolist(), "extrinsic_weight": sigma.tolist(),
            "min_pairwise_sf_distance": float(losses.min_pairwise_distance(psi)),
            "nearest_sf_distance": losses.nearest_neighbours(psi)[1].tolist(),
            "main_goals": [r.summary().get("main_goal", -1) for r in rollouts],
            "greedy_return": [r.summary()["return_mean"] for r in rollouts],
            "weight_trace": weight_trace, "ratio_trace": ratio_trace, "nearest_trace": nearest_trace,
            "weight_std_last_quarter": last_quarter_std(weight_trace),
        })
    if save_module is not None:
        algo.get_module().save_to_path(str(save_module.resolve()))
        line["module_path"] = str(save_module)
    algo.stop()
    ray.shutdown()
    return line


def last_quarter_std(trace: list[list[float]]) -> list[float]:
    """Per policy: the standard deviation of a per-iteration trace over the last 25% of iterations (how far the
    curve still moves at the end; 0 for a settled curve)."""
    tail = trace[len(trace) - max(1, len(trace) // 4):]
    if not tail:
        return []
    stds = []
    for column in zip(*tail):
        mean = sum(column) / len(column)
        stds.append(math.sqrt(sum((x - mean) ** 2 for x in column) / len(column)))
    return stds


def last_quarter_min(trace: list[list[float]]) -> list[float]:
    """Per policy: the lowest value of a per-iteration trace over the last 25% of iterations."""
    tail = trace[len(trace) - max(1, len(trace) // 4):]
    return [min(column) for column in zip(*tail)]


def second_half_mean(trace: list[list[float]]) -> list[float]:
    """Per policy: the mean of a per-iteration trace over the second half of the iterations."""
    tail = trace[len(trace) // 2:]
    return [sum(column) / len(column) for column in zip(*tail)]


def mean_ci(values: list[float]) -> str:
    """'mean [low, high]': the mean over seeds and its 95% bootstrap interval (via
    armillary.platform.aggregates)."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "–"
    mean, low, high = aggregates.interval(np.asarray(values, dtype=float), "mean")
    return f"{mean:.3f}" if len(values) < 2 else f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def median_range(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})" if values else "–"


def table(lines: list[dict], tolerance: float) -> str:
    """Lines from this script's runs, or from domino_sweep_report.py --json (a Tune run: variant domino, "alpha")."""
    rows = ["| variant | α | seeds | constraints met | met, 2nd-half mean | dip last 25% | σ(λ) inside (0,1) | std σ(λ) last 25% | min ‖ψ_i − ψ_j‖ | greedy min ‖ψ_i − ψ_j‖ | distinct goals | v̄ mean | v̄_0 | steps/s | wall s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple, list[dict]] = {}
    for line in lines:
        groups.setdefault((line.get("variant", "domino"), line.get("optimality_ratio", line.get("alpha"))), []).append(line)
    for (variant, alpha), group in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or 0)):
        if variant == "ppo":
            rows.append(f"| ppo | – | {len(group)} | – | – | – | – | – | – | – | – | – | – | {mean_ci([g['steps_per_s'] for g in group])} | {mean_ci([g['wall_s'] for g in group])} |")
            continue
        met = [sum(r >= alpha - tolerance for r in g["value_ratio"]) / len(g["value_ratio"]) for g in group]
        met_mean = [sum(r >= alpha - tolerance for r in second_half_mean(g["ratio_trace"])) / len(g["value_ratio"])
                    for g in group if g.get("ratio_trace")]
        dips = [d for g in group if g.get("ratio_trace") for d in last_quarter_min(g["ratio_trace"])]
        inside = [sum(0.02 < w < 0.98 for w in g["extrinsic_weight"]) / len(g["extrinsic_weight"]) for g in group]
        inside_text = mean_ci(inside) if variant == "domino" else "– (fixed)"
        stds = [sum(g["weight_std_last_quarter"]) / len(g["weight_std_last_quarter"]) for g in group if g.get("weight_std_last_quarter")]
        std_text = mean_ci(stds) if variant == "domino" and stds else "–"
        rows.append(
            f"| {variant} | {alpha} | {len(group)} | {mean_ci(met)} | {mean_ci(met_mean)} | {median_range(dips)} | {inside_text} | {std_text} | "
            f"{mean_ci([g['min_pairwise_sf_distance'] for g in group])} | "
            f"{mean_ci([g.get('greedy_min_pairwise_sf_distance') for g in group])} | "
            f"{mean_ci([len({x for x in g['main_goals'] if x >= 0}) for g in group])} | "
            f"{mean_ci([sum(g['value']) / len(g['value']) for g in group])} | {mean_ci([g['value'][0] for g in group])} | "
            f"{mean_ci([g.get('steps_per_s') for g in group])} | {mean_ci([g.get('wall_s') for g in group])} |"
        )
    return "\n".join(rows) + "\n"


def nearest_distance_profile(lines: list[dict]) -> str:
    """Van der Waals against pure repulsion: per run, the nearest-neighbour distance ‖ψ_i − ψ_j*‖ averaged over the
    policies at 25 / 50 / 75 / 100% of training (VdW should hold it near ℓ0; repulsion should keep raising it)."""
    rows = ["| c(d) | ℓ0 | α | seed | mean ‖ψ_i − ψ_j*‖ at 25 / 50 / 75 / 100% | change over the 2nd half | per policy at the end |",
            "|---|---|---|---|---|---|---|"]
    for line in sorted((l for l in lines if l.get("nearest_trace")),
                       key=lambda l: (l.get("diversity", ""), l.get("target_distance", 0), l["optimality_ratio"], l["seed"])):
        means = [sum(row) / len(row) for row in line["nearest_trace"]]
        marks = [means[max(0, round(len(means) * q) - 1)] for q in (0.25, 0.5, 0.75, 1.0)]
        ell0 = line.get("target_distance", "?") if line.get("diversity") == "vdw" else "–"
        rows.append(f"| {line.get('diversity', '?')} | {ell0} | {line['optimality_ratio']} | {line['seed']} | "
                    + " / ".join(f"{m:.2f}" for m in marks) + f" | {marks[3] - marks[1]:+.2f} | "
                    + ", ".join(f"{d:.2f}" for d in line["nearest_trace"][-1]) + " |")
    return "\n".join(rows) + "\n"


def plot_nearest_distances(lines: list[dict], path: Path) -> None:
    """One panel per (c(d), ℓ0, α): the policies' mean ‖ψ_i − ψ_j*‖ per iteration, one curve per seed, ℓ0 dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[tuple, list[dict]] = {}
    for line in lines:
        if line.get("nearest_trace"):
            groups.setdefault((line.get("diversity", "?"), line.get("target_distance"), line["optimality_ratio"]), []).append(line)
    figure, axes = plt.subplots(1, len(groups), figsize=(3.4 * len(groups), 3), sharey=True, squeeze=False)
    for axis, ((diversity, ell0, alpha), group) in zip(axes[0], sorted(groups.items())):
        for line in sorted(group, key=lambda l: l["seed"]):
            axis.plot([sum(row) / len(row) for row in line["nearest_trace"]], label=f"seed {line['seed']}")
        if diversity == "vdw":
            axis.axhline(ell0, color="k", linestyle="--", linewidth=0.8)
        axis.set_title(f"{diversity}" + (f" ℓ0={ell0}" if diversity == "vdw" else "") + f", α={alpha}", fontsize=9)
        axis.set_xlabel("iteration")
    axes[0][0].set_ylabel("mean ‖ψ_i − ψ_j*‖ (dashed: ℓ0)")
    axes[0][-1].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=80)


def constraints_per_alpha(lines: list[dict], alphas: list[float], tolerance: float) -> str:
    """The fixed-mix baselines do not depend on α (nothing in them reads it), so one set of runs answers for every
    α: per (variant, c_e) and α, the fraction of policies i ≥ 1 with v̄_i/v̄_0 ≥ α − tolerance, next to the
    (α-independent) min ‖ψ_i − ψ_j‖."""
    groups: dict[str, list[dict]] = {}
    for line in lines:
        if line["variant"] in ("fixed-mix", "no-diversity"):
            label = f"{line['variant']} c_e={line['extrinsic_weight'][0]:.2f}"
            groups.setdefault(label, []).append(line)
    rows = ["| baseline | seeds | min ‖ψ_i − ψ_j‖ | " + " | ".join(f"met at α={a}" for a in alphas) + " |",
            "|---|---|---|" + "---|" * len(alphas)]
    for label, group in sorted(groups.items()):
        cells = [mean_ci([sum(r >= a - tolerance for r in g["value_ratio"]) / len(g["value_ratio"]) for g in group]) for a in alphas]
        rows.append(f"| {label} | {len(group)} | {mean_ci([g['min_pairwise_sf_distance'] for g in group])} | " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def plot_multiplier_traces(panels: list[tuple[str, list, list, float]], path: Path) -> None:
    """One column per run (title, σ(λ) trace, v̄_i/v̄_0 trace, α): σ(λ_i) on top, v̄_i/v̄_0 with α dashed below,
    against the training iteration. Also used by domino_sweep_report.py."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, len(panels), figsize=(3.2 * len(panels), 5), sharex=True, sharey="row", squeeze=False)
    for column, (title, weight_trace, ratio_trace, alpha) in enumerate(panels):
        for i, (weights, ratios) in enumerate(zip(zip(*weight_trace), zip(*ratio_trace)), start=1):
            axes[0][column].plot(weights, label=f"σ(λ_{i})")
            axes[1][column].plot(ratios, label=f"v̄_{i}/v̄_0")
        axes[1][column].axhline(alpha, color="k", linestyle="--", linewidth=0.8)
        axes[0][column].set_title(title, fontsize=8)
        axes[1][column].set_xlabel("iteration")
        axes[1][column].set_ylim(0, 1.1)
    axes[0][0].set_ylabel("σ(λ_i): weight of r_e")
    axes[1][0].set_ylabel("v̄_i / v̄_0 (dashed: α)")
    axes[0][-1].legend(fontsize=7)
    axes[1][-1].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=80)


def plot_traces(lines: list[dict], path: Path) -> None:
    runs = [line for line in lines if line.get("weight_trace")]
    if not runs:
        raise SystemExit("no weight_trace in these results (runs made before the traces were recorded)")
    plot_multiplier_traces([(f"{line['variant']} α={line['optimality_ratio']} seed {line['seed']}", line["weight_trace"],
                             line["ratio_trace"], line["optimality_ratio"]) for line in runs], path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=["domino", "no-diversity", "fixed-mix"], choices=[*PRESETS, "ppo"])
    parser.add_argument("--alphas", nargs="*", type=float, default=[], help="α values for the domino variant (default: the preset's)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, help="env steps per run (default: the domino/grid preset's stop, 800k)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="constraint met when v̄_i/v̄_0 ≥ α − tolerance")
    parser.add_argument("--set", nargs="*", default=[], dest="extra", help="extra spec overrides, e.g. algorithm.config.lr=1e-3")
    parser.add_argument("--out", type=Path, default=Path("runs/domino_grid"))
    parser.add_argument("--report", nargs="*", type=Path, metavar="RESULTS",
                        help="only print the table of these results files (default --out/results.jsonl)")
    parser.add_argument("--parallel", type=int, default=1, help="runs at a time (one process each)")
    parser.add_argument("--plot", type=Path, help="with --report: save the σ(λ_i) and v̄_i/v̄_0 curves of every run here (PNG)")
    parser.add_argument("--distances", action="store_true",
                        help="with --report: also the nearest-neighbour distance over training, per run (VdW vs repulsion)")
    parser.add_argument("--plot-distances", type=Path, help="with --report: save those distance curves here (PNG)")
    parser.add_argument("--save-modules", type=Path,
                        help="save each run's trained policy module under this folder (<variant>-a<α>-s<seed>)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.report is not None:
        lines = [json.loads(line) for path in (args.report or [args.out / "results.jsonl"])
                 for line in path.read_text().splitlines() if line.strip()]
        print(table(lines, args.tolerance))
        if args.alphas:
            print(constraints_per_alpha(lines, args.alphas, args.tolerance))
        if args.distances:
            print(nearest_distance_profile(lines))
        if args.plot:
            plot_traces(lines, args.plot)
        if args.plot_distances:
            plot_nearest_distances(lines, args.plot_distances)
        return

    if args.steps is None:
        from armillary.platform.spec import load_spec

        args.steps = load_spec("domino/grid").stop.env_steps
    if args.child:
        variant, alpha, seed = json.loads(args.child)
        module = None if args.save_modules is None else args.save_modules / f"{variant}-a{alpha}-s{seed}"
        print("RESULT " + json.dumps(run_one(variant, alpha, seed, args.steps, args.extra, module)), flush=True)
        return

    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(v, a, s) for v in args.variants for a in ((args.alphas or [None]) if v == "domino" else [None]) for s in args.seeds]
    lines = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": "egl"}

    def child(job):
        command = [sys.executable, __file__, "--child", json.dumps(job), "--steps", str(args.steps), "--set", *args.extra]
        if args.save_modules is not None:
            command[2:2] = ["--save-modules", str(args.save_modules)]
        return job, subprocess.run(command, env=env, capture_output=True, text=True)

    # Threads only wait on the child processes; each child is one single-threaded training run.
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.parallel) as pool:
        for job, output in pool.map(child, jobs):
            found = [line[7:] for line in output.stdout.splitlines() if line.startswith("RESULT ")]
            if not found:
                print(f"{job} failed:\n{output.stderr[-3000:]}", file=sys.stderr)
                continue
            line = json.loads(found[0])
            lines.append(line)
            print(json.dumps({k: v for k, v in line.items() if not k.endswith("_trace")}), flush=True)
            with (args.out / "results.jsonl").open("a") as handle:
                handle.write(json.dumps(line) + "\n")
    text = table(lines, args.tolerance)
    (args.out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
