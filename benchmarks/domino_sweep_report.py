"""The table of a DOMiNO Tune run (e.g. `armillary run domino/grid-alpha-sweep`), from its trials' result files.

    python benchmarks/domino_sweep_report.py runs/domino__grid-alpha-sweep/<run id>
    python benchmarks/domino_sweep_report.py runs/domino__grid-alpha-sweep/<run id> --tolerance 0.05 --json out.jsonl

Per trial it reads params.json (the resolved spec and seed) and result.json (one line per training iteration,
the `domino/*` figures the platform logs), and reports per α (mean [95% bootstrap interval] over seeds, armillary.platform.aggregates):
    constraints met   fraction of policies i ≥ 1 with v̄_i/v̄_0 ≥ α − tolerance at the last iteration
    σ(λ) std          std of σ(λ_i) over the last 25% of iterations, mean over i ≥ 1 (0: settled)
    min ‖ψ_i − ψ_j‖   the learner's moving-average successor features at the last iteration
    v̄ mean, v̄_0      extrinsic reward per step, mean over policies, and policy 0's
    greedy return      mean greedy-rollout return over policies (export/figures/domino_policies.json, if written)
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from armillary.platform.spec import trial_spec

sys.path.insert(0, str(Path(__file__).parent))
from domino_grid import last_quarter_std, mean_ci, plot_multiplier_traces  # noqa: E402  (a sibling script)


def trial_summary(trial: Path, tolerance: float) -> dict | None:
    lines = [json.loads(line) for line in (trial / "result.json").read_text().splitlines() if line.strip()]
    if not lines:
        return None
    params = json.loads((trial / "params.json").read_text())
    # The trial's own spec: the experiment's with the sampled overrides (α) applied, as the trainable builds it.
    config = trial_spec(params["spec"], params).algorithm.config.model_dump()
    alpha, n = config["optimality_ratio"], config["num_policies"]
    last = lines[-1]
    ratios = [last[f"domino/value_ratio/{i}"] for i in range(1, n)]
    weights = {i: [line[f"domino/lagrange/{i}"] for line in lines if f"domino/lagrange/{i}" in line] for i in range(1, n)}
    weight_trace = [list(column) for column in zip(*(weights[i] for i in range(1, n)))]
    values = [last[f"domino/value/{i}"] for i in range(n)]
    ratio_trace = [[line[f"domino/value_ratio/{i}"] for i in range(1, n)] for line in lines if "domino/value_ratio/1" in line]
    summary = {
        "trial": trial.name, "alpha": alpha, "seed": params["seed"], "iterations": len(lines),
        "env_steps": last.get("num_env_steps_sampled_lifetime"), "value_ratio": ratios, "value": values,
        "extrinsic_weight": [weights[i][-1] for i in range(1, n)],
        "weight_std_last_quarter": last_quarter_std(weight_trace),
        "constraints_met": sum(r >= alpha - tolerance for r in ratios) / len(ratios),
        "min_pairwise_sf_distance": last["domino/min_pairwise_sf_distance"],
        "episode_return_mean": last.get("env_runners/episode_return_mean"),
        "weight_trace": weight_trace, "ratio_trace": ratio_trace,
    }
    policies = trial / "export" / "figures" / "domino_policies.json"
    if policies.exists():
        rollouts = json.loads(policies.read_text())
        summary["greedy_return"] = [r.get("return_mean") for r in rollouts]
        summary["main_goals"] = [r.get("main_goal", -1) for r in rollouts]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="the run folder (holds tune/)")
    parser.add_argument("--tolerance", type=float, default=0.05, help="constraint met when v̄_i/v̄_0 ≥ α − tolerance")
    parser.add_argument("--json", type=Path, help="also write one JSON line per trial here")
    parser.add_argument("--plot", type=Path, help="save σ(λ_i) and v̄_i/v̄_0 against the iteration, one column per trial (PNG)")
    args = parser.parse_args()
    trials = sorted(p.parent for p in (args.run / "tune").glob("*/result.json"))
    if not trials:
        raise SystemExit(f"no trials with result.json under {args.run / 'tune'}")
    summaries = [s for s in (trial_summary(t, args.tolerance) for t in trials) if s]
    if args.json:
        args.json.write_text("".join(json.dumps(s) + "\n" for s in summaries))
    rows = [f"| α | seeds | iterations | constraints met (v̄_i/v̄_0 ≥ α − {args.tolerance}) | std σ(λ) last 25% | min ‖ψ_i − ψ_j‖ | v̄ mean | v̄_0 | greedy return mean | distinct greedy goals |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for alpha in sorted({s["alpha"] for s in summaries}):
        group = [s for s in summaries if s["alpha"] == alpha]
        greedy = [sum(s["greedy_return"]) / len(s["greedy_return"]) for s in group if s.get("greedy_return")]
        goals = [len({g for g in s["main_goals"] if g is not None and g >= 0}) for s in group if s.get("main_goals")]
        rows.append(
            f"| {alpha} | {len(group)} | {mean_ci([s['iterations'] for s in group])} | {mean_ci([s['constraints_met'] for s in group])} | "
            f"{mean_ci([sum(s['weight_std_last_quarter']) / len(s['weight_std_last_quarter']) for s in group])} | "
            f"{mean_ci([s['min_pairwise_sf_distance'] for s in group])} | {mean_ci([sum(s['value']) / len(s['value']) for s in group])} | "
            f"{mean_ci([s['value'][0] for s in group])} | {mean_ci(greedy)} | {mean_ci(goals)} |"
        )
    print("\n".join(rows))
    for s in summaries:
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else [round(x, 3) if isinstance(x, float) else x for x in v] if isinstance(v, list) else v)
                          for k, v in s.items() if not k.endswith("_trace")}))
    if args.plot:
        plot(sorted(summaries, key=lambda s: (s["seed"], s["alpha"])), args.plot)


def plot(summaries: list[dict], path: Path) -> None:
    """Rows: σ(λ_i), then v̄_i/v̄_0 with α dashed; one column per trial."""
    plot_multiplier_traces([(f"α={s['alpha']} seed {s['seed']}", s["weight_trace"], s["ratio_trace"], s["alpha"])
                            for s in summaries], path)


if __name__ == "__main__":
    main()
