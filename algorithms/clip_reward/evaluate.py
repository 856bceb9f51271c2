"""Offline evaluation of VLM rewards: precision/recall against ground-truth success on held-out frames.

    python -m armillary.algorithms.clip_reward.evaluate tiny=runs/clip_reward/models/tiny small=... medium=... \
        --out runs/clip_reward/eval

For every model: P(goal | frame) on held-out (frame, goal, success) triples of the language-goal world
(`success_triples`, a seed no training frame used), the thresholded reward r = 1[P > β], its precision,
recall, F1 and firing rate at β, the precision-recall curve over all thresholds and its area (PR-AUC, as
average precision: Σ_k (R_k − R_{k−1}) P_k). One PNG with every model's curve, results.json, and MLflow: a
parent run (the plot, the results) with one child run per model (its metrics), in the experiment
`clip-reward/eval` of $MLFLOW_TRACKING_URI, else the embedded sqlite store runs/mlflow.db.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from armillary.algorithms.clip_reward.model_settings import RewardConfig
from armillary.algorithms.clip_reward.models import load_clip
from armillary.algorithms.clip_reward.reward import ClipReward
from armillary.envs.language_goals import FLOOR_CAPTION, LanguageGoalOptions, World, success_triples
from armillary.core.mlflow_store import client as mlflow_client
from armillary.core.mlflow_store import default_tracking_uri, ensure_experiment

EVAL_SEED = 9_999_991  # held out: training uses seeds 0.. and 1_000_003 + seed
EXPERIMENT = "clip-reward/eval"


def precision_recall_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds), one point per distinct score, from the highest threshold down.

    Point k counts as positive every example with score ≥ thresholds[k].
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} must be matching 1-D arrays")
    if not labels.any():
        raise ValueError("no positive example: precision/recall are undefined")
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    true_positives = np.cumsum(labels)
    predicted = np.arange(1, len(scores) + 1)
    last_of_each_score = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1]  # ties move together
    tp, n = true_positives[last_of_each_score], predicted[last_of_each_score]
    return tp / n, tp / labels.sum(), scores[last_of_each_score]


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """PR-AUC as average precision: Σ_k (R_k − R_{k−1}) P_k (no interpolation)."""
    precision, recall, _ = precision_recall_curve(scores, labels)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def threshold_metrics(probability: np.ndarray, success: np.ndarray, threshold: float) -> dict[str, float]:
    fired = probability > threshold
    true_positives = float(np.sum(fired & success))
    precision = true_positives / fired.sum() if fired.any() else float("nan")
    recall = true_positives / success.sum() if success.any() else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if fired.any() and precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "firing_rate": float(fired.mean())}


def evaluate_model(
    path: str | Path,
    frames: np.ndarray,
    goals: Sequence[str],
    success: np.ndarray,
    goal_set: Sequence[str],
    config: RewardConfig,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Metrics and the PR curve of one model's reward on the given triples."""
    reward_model = ClipReward(load_clip(path), config)
    probability = np.concatenate(
        [
            reward_model(frames[i : i + batch_size], goals[i : i + batch_size], goal_set).probability
            for i in range(0, len(goals), batch_size)
        ]
    )
    precision, recall, thresholds = precision_recall_curve(probability, success)
    return {
        "path": str(path),
        "num_parameters": sum(p.numel() for p in reward_model.bundle.model.parameters()),
        "temperature": reward_model.temperature,
        "pr_auc": average_precision(probability, success),
        **threshold_metrics(probability, success, config.threshold),
        "curve": {"precision": precision.tolist(), "recall": recall.tolist(), "thresholds": thresholds.tolist()},
    }


def summarise_by_group(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and spread of each metric over the models of a group: names `<group>-seed<k>` form one group."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for name, result in results.items():
        groups.setdefault(name.split("-seed")[0], []).append(result)
    summary = {}
    for group, members in groups.items():
        row: dict[str, float] = {"seeds": len(members), "num_parameters": members[0]["num_parameters"]}
        for metric in ("pr_auc", "precision", "recall", "f1", "firing_rate"):
            values = np.array([m[metric] for m in members], dtype=np.float64)
            row[metric] = float(np.mean(values))
            row[f"{metric}_min"], row[f"{metric}_max"] = float(np.min(values)), float(np.max(values))
        summary[group] = row
    return summary


def plot_pr_curves(results: dict[str, dict[str, Any]], base_rate: float, path: Path, threshold: float) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 4.2))
    for name, result in results.items():
        curve = result["curve"]
        axes.step(curve["recall"], curve["precision"], where="post",
                  label=f"{name} ({result['num_parameters'] / 1e6:.2f}M): AUC {result['pr_auc']:.3f}")
        axes.plot(result["recall"], result["precision"], "o", color=axes.lines[-1].get_color(), markersize=5)
    axes.axhline(base_rate, color="grey", linestyle=":", label=f"chance ({base_rate:.2f})")
    axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1.01), ylim=(max(0.0, base_rate - 0.05), 1.005),
             title=f"VLM reward vs ground-truth success (dots: β = {threshold})")
    axes.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def log_to_mlflow(uri: str, runs_root: Path, results: dict[str, dict[str, Any]], settings: dict[str, Any],
                  artifacts: Sequence[Path], summary: dict[str, dict[str, float]] | None = None) -> str:
    """A parent run (settings, artifacts) with one child run per model; returns the parent's id."""
    client = mlflow_client(uri)
    experiment_id = ensure_experiment(uri, EXPERIMENT, runs_root)
    parent = client.create_run(experiment_id, run_name="clip-eval", tags={"armillary.kind": "clip-eval"}).info.run_id
    for key, value in settings.items():
        client.log_param(parent, key, json.dumps(value) if isinstance(value, (list, dict, tuple)) else str(value))
    for name, result in results.items():
        child = client.create_run(experiment_id, run_name=name, tags={"mlflow.parentRunId": parent, "armillary.model": name}).info.run_id
        client.log_param(child, "model_path", result["path"])
        client.log_param(child, "num_parameters", result["num_parameters"])
        for metric in ("pr_auc", "precision", "recall", "f1", "firing_rate", "temperature"):
            value = result[metric]
            if value == value:  # NaN (never fired) is not loggable
                client.log_metric(parent, f"clip_reward/{name}/{metric}", value)
                client.log_metric(child, f"clip_reward/{metric}", value)
        client.set_terminated(child)
    for group, row in (summary or {}).items():
        if row["seeds"] > 1:
            client.log_metric(parent, f"clip_reward/{group}/pr_auc_mean", row["pr_auc"])
    for artifact in artifacts:
        client.log_artifact(parent, str(artifact))
    client.set_terminated(parent)
    return parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="NAME=PATH (or a hub name) per model, in order of size")
    parser.add_argument("--out", default="runs/clip_reward/eval", help="folder for the plot and results.json")
    parser.add_argument("--num", type=int, default=4000, help="held-out triples")
    parser.add_argument("--seed", type=int, default=EVAL_SEED)
    parser.add_argument("--threshold", type=float, default=RewardConfig().threshold, help="β")
    parser.add_argument("--temperature", type=float, default=None, help="τ (default: each model's learned one)")
    parser.add_argument("--no-floor-negative", action="store_true", help="leave the floor caption out of the negatives")
    parser.add_argument("--mlflow-uri", default=None, help="default: $MLFLOW_TRACKING_URI, else runs/mlflow.db")
    parser.add_argument("--no-mlflow", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    models = dict(spec.split("=", 1) if "=" in spec else (Path(spec).name, spec) for spec in args.models)
    config = RewardConfig(threshold=args.threshold, temperature=args.temperature,
                          extra_negatives=() if args.no_floor_negative else (FLOOR_CAPTION,))
    env_options = LanguageGoalOptions()
    world = World(env_options)
    frames, goals, success = success_triples(args.num, args.seed, env_options)
    start = time.perf_counter()
    results = {name: evaluate_model(path, frames, goals, success, world.goals, config) for name, path in models.items()}
    for name, result in results.items():
        print(f"{name:>8}: {result['num_parameters']:>10,} params  PR-AUC {result['pr_auc']:.3f}  "
              f"P {result['precision']:.3f}  R {result['recall']:.3f}  F1 {result['f1']:.3f}  "
              f"fires {result['firing_rate']:.3f}  τ {result['temperature']:.4f}")
    summary = summarise_by_group(results)
    if len(summary) < len(results):
        for group, row in summary.items():
            print(f"{group:>8}: mean over {row['seeds']} seeds  PR-AUC {row['pr_auc']:.3f} "
                  f"[{row['pr_auc_min']:.3f}, {row['pr_auc_max']:.3f}]  P {row['precision']:.3f}  R {row['recall']:.3f}  "
                  f"fires {row['firing_rate']:.3f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"num": args.num, "seed": args.seed, "threshold": config.threshold, "temperature": args.temperature,
                "extra_negatives": list(config.extra_negatives), "base_rate": float(success.mean()),
                "models": models, "seconds": time.perf_counter() - start}
    plot = plot_pr_curves(results, float(success.mean()), out / "pr_curves.png", config.threshold)
    (out / "results.json").write_text(json.dumps({"settings": settings, "summary": summary, "results": results}, indent=2))
    print(f"wrote {plot} and {out / 'results.json'}")
    if not args.no_mlflow:
        runs_root = Path(os.environ.get("ARMILLARY_RUNS_DIR", "runs")).resolve()
        uri = args.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(runs_root)
        parent = log_to_mlflow(uri, runs_root, results, settings, [plot, out / "results.json"], summary)
        print(f"MLflow: experiment {EXPERIMENT!r}, run {parent} in {uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
