"""PPO's learning curves across resources layouts, same seed (issue 22 item 1, shown in the scale study's report).

`ppo/cartpole` (the preset's hyperparameters: train batch 2000, minibatch 250, 6 epochs) with the same 16 envs held
as 0 runners × 16 envs, 2 × 8, 4 × 4 and 16 × 1, seed --seed, --iterations training iterations each, one layout
after the other in one local Ray of the machine's cores. Layouts with more runner CPUs than the machine has are
fitted with fractional CPUs, as a user fits them (`resources.num_cpus_per_env_runner`; the platform refuses a layout
that does not fit, platform/runner.py check_cluster_fits): every runner asks for min(1, (cores − 1) / runners)
CPUs, so 1 CPU for the algorithm's process + the runners fit the machine; the check is run for each layout.

    OMP_NUM_THREADS=1 python benchmarks/ppo_layouts.py --iterations 8 --out results/dqn/scale/ppo-layouts

Writes curves.json (per layout and iteration: env steps, episodes, episode return mean, policy/vf loss, entropy),
table.md (each layout's max |difference| from 0 × 16 over the iterations, per metric, and over the final weights),
curves.png (return vs env steps, the layouts on top of each other, and the per-iteration |difference|) and
command.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import ray

from armillary.platform.rllib_config import build_algorithm_config
from armillary.platform.runner import check_cluster_fits, trial_resources_or_refuse
from armillary.platform.spec import load_spec

LAYOUTS = [(0, 16), (2, 8), (4, 4), (16, 1)]
METRICS = ("episode_return_mean", "policy_loss", "vf_loss", "entropy")


def runner_cpus(runners: int, cores: float) -> float:
    return 1.0 if runners == 0 else min(1.0, (cores - 1) / runners)


def curve(runners: int, envs: int, iterations: int, seed: int, cores: float) -> dict:
    spec = load_spec("ppo/cartpole", [f"resources.num_env_runners={runners}",
                                      f"resources.num_envs_per_env_runner={envs}",
                                      f"resources.num_cpus_per_env_runner={runner_cpus(runners, cores)}"])
    check_cluster_fits(spec, trial_resources_or_refuse(spec))  # what `armillary run` would refuse
    algo = build_algorithm_config(spec, seed=seed).build_algo()
    try:
        rows = []
        for _ in range(iterations):
            result = algo.train()
            learner, runners_ = result["learners"]["default_policy"], result["env_runners"]
            rows.append({"env_steps": int(runners_["num_env_steps_sampled_lifetime"]),
                         "episodes": int(runners_["num_episodes_lifetime"]),
                         "episode_return_mean": float(runners_.get("episode_return_mean", float("nan"))),
                         "policy_loss": float(learner["policy_loss"]), "vf_loss": float(learner["vf_loss"]),
                         "entropy": float(learner["entropy"])})
            print(json.dumps({"layout": f"{runners}x{envs}", **rows[-1]}), flush=True)
        module = algo.learner_group._learner.module["default_policy"]
        weights = {name: p.detach().cpu().numpy().tolist() for name, p in module.named_parameters()}
        return {"runners": runners, "envs_per_runner": envs, "cpus_per_runner": runner_cpus(runners, cores),
                "rows": rows, "weights": weights}
    finally:
        algo.stop()


def differences(curves: dict[str, dict]) -> dict[str, dict[str, float]]:
    """Per layout: max over iterations of |metric − the reference layout's|, and max |Δ| over the final weights."""
    names = list(curves)
    reference = curves[names[0]]
    out = {}
    for name in names[1:]:
        ours = curves[name]
        row = {"same env steps and episodes": all(
            (a["env_steps"], a["episodes"]) == (b["env_steps"], b["episodes"])
            for a, b in zip(ours["rows"], reference["rows"], strict=True))}
        for metric in METRICS:
            row[metric] = max(abs(a[metric] - b[metric]) for a, b in zip(ours["rows"], reference["rows"]))
        row["weights"] = max(float(np.max(np.abs(np.asarray(ours["weights"][key]) - np.asarray(value))))
                             for key, value in reference["weights"].items())
        out[name] = row
    return out


def table(curves: dict[str, dict], diffs: dict[str, dict]) -> str:
    reference = next(iter(curves))
    last = curves[reference]["rows"][-1]
    lines = [f"Max |difference| from the {reference} layout over {len(curves[reference]['rows'])} iterations "
             f"({last['env_steps']} env steps; its final episode return mean {last['episode_return_mean']:.1f}):", "",
             "| layout (runners × envs) | CPUs per runner | same env steps & episodes | "
             + " | ".join(METRICS) + " | final weights |",
             "|---|---:|---|" + "---:|" * (len(METRICS) + 1)]
    for name, row in diffs.items():
        lines.append(f"| {name} | {curves[name]['cpus_per_runner']:.4g} | {'yes' if row['same env steps and episodes'] else 'NO'} | "
                     + " | ".join(f"{row[m]:.2e}" for m in METRICS) + f" | {row['weights']:.2e} |")
    return "\n".join(lines) + "\n"


def plot(curves: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(curves)
    figure, (returns, gaps) = plt.subplots(1, 2, figsize=(10, 4))
    styles = ["-", "--", ":", "-."]
    for (name, data), style, width in zip(curves.items(), styles, (4, 2.5, 2, 1)):
        rows = data["rows"]
        returns.plot([r["env_steps"] for r in rows], [r["episode_return_mean"] for r in rows], style, lw=width,
                     label=f"{name} (runners × envs)")
    for name in names[1:]:
        gap = [max(abs(a["episode_return_mean"] - b["episode_return_mean"]), 1e-12)
               for a, b in zip(curves[name]["rows"], curves[names[0]]["rows"])]
        loss = [max(abs(a["policy_loss"] - b["policy_loss"]), 1e-12)
                for a, b in zip(curves[name]["rows"], curves[names[0]]["rows"])]
        steps = [r["env_steps"] for r in curves[name]["rows"]]
        line, = gaps.semilogy(steps, gap, label=f"{name}: return")
        gaps.semilogy(steps, loss, "--", color=line.get_color(), label=f"{name}: policy loss")
    returns.set(xlabel="env steps", ylabel="episode return mean", title="PPO, CartPole, same seed, 4 layouts")
    gaps.set(xlabel="env steps", ylabel=f"|difference| from {names[0]} (floor 1e-12)", title="differences")
    returns.legend(fontsize=8)
    gaps.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/dqn/scale/ppo-layouts")
    args = parser.parse_args(argv)
    if args.iterations < 1:
        parser.error(f"--iterations: must be ≥ 1, got {args.iterations}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1
    ray.init(address="local", num_cpus=cores, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    try:
        curves = {f"{r}x{e}": curve(r, e, args.iterations, args.seed, cores) for r, e in LAYOUTS}
    finally:
        ray.shutdown()
    diffs = differences(curves)
    (out / "curves.json").write_text(json.dumps(
        {name: {k: v for k, v in data.items() if k != "weights"} for name, data in curves.items()}, indent=1))
    (out / "table.md").write_text(table(curves, diffs))
    plot(curves, out / "curves.png")
    (out / "command.txt").write_text("OMP_NUM_THREADS=1 python benchmarks/ppo_layouts.py " + " ".join(argv) + "\n")
    print(table(curves, diffs))


if __name__ == "__main__":
    main(sys.argv[1:])
