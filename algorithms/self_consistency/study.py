"""The tabular figure as one job: every method × dataset size × seed, logged to MLflow with the plot.

    python -m armillary.algorithms.self_consistency.study --setting evaluation --out results/self_consistency/random-mdp

Each method's value step is chosen per dataset size from config.step_grid on validation draws that are never
reported (tabular.choose_steps). Writes to --out: rows.csv (one row per method × dataset size × seed), table.md
(means with 95% intervals over seeds, and paired differences), step_sizes.md (the validation means behind each
chosen step), plot.png, config.json and command.txt. MLflow: one parent run (the config and
those files) and one child run per method whose metric is logged with step = dataset size, so MLflow's chart
of a child run is the figure's line.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shlex
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

from armillary.algorithms.self_consistency.config import LatentEvaluationConfig, Method, Setting, TabularStudyConfig
from armillary.algorithms.self_consistency.tabular import PRIMARY, run_study
from armillary.core.mlflow_store import client as mlflow_client
from armillary.core.mlflow_store import default_tracking_uri, ensure_experiment

LABELS = {Method.TD: "TD (model-free)", Method.DYNA: "Dyna", Method.SC_DIRECT: "SC-Direct",
          Method.SC_REVERSE: "SC-Reverse", Method.SC_RESIDUAL: "SC-Residual"}


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% Student-t interval over seeds."""
    from scipy.stats import t

    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    sd = math.sqrt(sum((x - mean) ** 2 for x in values) / (n - 1))
    return mean, float(t.ppf(0.975, n - 1)) * sd / math.sqrt(n)


def summarise(rows: list[dict], config: TabularStudyConfig) -> dict:
    """{metric: {method: {size: (mean, ci)}}} and the paired differences {(a, b): {size: (mean, ci)}} on the primary."""
    metrics = [k for k in rows[0] if k not in ("setting", "method", "dataset_size", "seed", "step_size")]
    by = defaultdict(dict)
    for row in rows:
        for metric in metrics:
            by[(metric, row["method"], row["dataset_size"])][row["seed"]] = row[metric]
    table = {m: {meth.value: {n: interval(list(by[(m, meth.value, n)].values())) for n in config.dataset_sizes}
                 for meth in config.methods} for m in metrics}
    primary = PRIMARY[config.setting]
    pairs = [(Method.SC_DIRECT, Method.DYNA), (Method.DYNA, Method.TD), (Method.SC_DIRECT, Method.TD),
             (Method.SC_REVERSE, Method.SC_DIRECT), (Method.SC_RESIDUAL, Method.SC_DIRECT)]
    differences = {}
    for a, b in pairs:
        if a in config.methods and b in config.methods:
            differences[f"{a.value} − {b.value}"] = {
                n: interval([by[(primary, a.value, n)][s] - by[(primary, b.value, n)][s] for s in by[(primary, a.value, n)]])
                for n in config.dataset_sizes}
    return {"metrics": table, "differences": differences}


def size_header(sizes: tuple[int, ...]) -> str:
    return "| method | " + " | ".join(f"n = {n}" for n in sizes) + " |\n|---|" + "---|" * len(sizes) + "\n"


def table_sections(summary: dict, labels: dict, header: str, differences_title: str) -> list[str]:
    """Markdown sections: one table per metric (a row per method), then the paired differences."""
    lines = []
    for metric, methods in summary["metrics"].items():
        lines.append(f"\n### {metric}\n\n" + header)
        for method, cells in methods.items():
            lines.append(f"| {labels[Method(method)]} | " + " | ".join(f"{m:.3f} ± {c:.3f}" for m, c in cells.values()) + " |\n")
    lines.append(f"\n### {differences_title}\n\n" + header.replace("| method |", "| difference |"))
    for name, cells in summary["differences"].items():
        lines.append(f"| {name} | " + " | ".join(f"{m:+.3f} ± {c:.3f}" for m, c in cells.values()) + " |\n")
    return lines


def write_table(summary: dict, config: TabularStudyConfig, seconds: float, path: Path) -> None:
    path.write_text("".join([f"Setting: {config.setting.value}; {config.seeds} seeds; mean ± 95% t-interval over seeds; "
                             f"{seconds:.0f} s for the whole figure.\n"]
                            + table_sections(summary, LABELS, size_header(config.dataset_sizes),
                                             f"paired differences of {PRIMARY[config.setting]} (same MDP and data; "
                                             "< 0: the first is better)")))


def plot(summary: dict, config: TabularStudyConfig, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = PRIMARY[config.setting]
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, cells in summary["metrics"][metric].items():
        sizes = list(cells)
        mean = [cells[n][0] for n in sizes]
        ci = [cells[n][1] if cells[n][1] == cells[n][1] else 0.0 for n in sizes]
        ax.plot(sizes, mean, marker="o", label=LABELS[Method(method)])
        ax.fill_between(sizes, [m - c for m, c in zip(mean, ci)], [m + c for m, c in zip(mean, ci)], alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("real transitions in the dataset")
    ax.set_ylabel({"value_error": "RMSE of v̂ against v^π", "regret": "mean_s v*(s) − v^greedy(s)"}[metric])
    ax.set_title(f"Random MDPs, |S|={config.num_states}, |A|={config.num_actions}, γ={config.gamma}: "
                 f"{config.setting.value} ({config.seeds} seeds, 95% CI)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def log_to_mlflow(uri: str, runs_root: Path, experiment: str, config: TabularStudyConfig | LatentEvaluationConfig,
                  summary: dict, chosen: dict | None, files: list[Path], kind: str = "self-consistency-tabular") -> str:
    """A parent run (config, files) and one child run per method with its figures at step = dataset size
    (and the chosen value step, where steps were chosen)."""
    client = mlflow_client(uri)
    experiment_id = ensure_experiment(uri, experiment, runs_root)
    parent = client.create_run(experiment_id, run_name=experiment, tags={"armillary.kind": kind}).info.run_id
    for key, value in config.model_dump(mode="json").items():
        client.log_param(parent, key, json.dumps(value) if isinstance(value, (list, dict)) else str(value))
    for method in config.methods:
        child = client.create_run(experiment_id, run_name=method.value,
                                  tags={"mlflow.parentRunId": parent, "armillary.method": method.value}).info.run_id
        for metric, methods in summary["metrics"].items():
            for n, (mean, ci) in methods[method.value].items():
                client.log_metric(child, f"self_consistency/{metric}", mean, step=n)
                if ci == ci:
                    client.log_metric(child, f"self_consistency/{metric}_ci95", ci, step=n)
        for n, step in (chosen[method.value] if chosen is not None else {}).items():
            client.log_metric(child, "self_consistency/step_size", step, step=n)
        client.set_terminated(child)
    for path in files:
        client.log_artifact(parent, str(path))
    client.set_terminated(parent)
    return parent


def write_steps(chosen: dict, validation: dict, config: TabularStudyConfig, path: Path) -> None:
    """The validation means of every method × step × dataset size, the chosen step marked with *."""
    sizes = config.dataset_sizes
    lines = [f"Mean {PRIMARY[config.setting]} on {config.validation_seeds} validation draws (seeds "
             f"{config.validation_first_seed}…{config.validation_first_seed + config.validation_seeds - 1}, never "
             f"reported); * = the step used for the reported seeds; inf = diverged.\n\n"
             "| method | step | " + " | ".join(f"n = {n}" for n in sizes) + " |\n|---|---|" + "---|" * len(sizes) + "\n"]
    for method, by_step in validation.items():
        for step, cells in by_step.items():
            lines.append(f"| {LABELS[Method(method)]} | {step} | " + " | ".join(
                f"{cells[n]:.3f}{'*' if chosen[method][n] == step else ''}" for n in sizes) + " |\n")
    path.write_text("".join(lines))


def write_records(rows: list[dict], config, seconds: float, cpu_seconds: float, module: str, argv: list[str] | None,
                  out: Path) -> None:
    """rows.csv, config.json (with the seconds and the load average) and command.txt in out."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "rows.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "config.json").write_text(json.dumps({**config.model_dump(mode="json"), "seconds": seconds,
                                                 "cpu_seconds": cpu_seconds, "load_average": os.getloadavg()}, indent=2))
    command = f"python -m armillary.algorithms.self_consistency.{module} " + " ".join(
        shlex.quote(a) for a in (argv or sys.argv[1:]))
    (out / "command.txt").write_text(command + "\n")


def report(args, out: Path, config, summary: dict, chosen: dict | None, num_rows: int, seconds: float,
           cpu_seconds: float, kind: str) -> None:
    """Print the table and the timing; log out's files to MLflow unless --no-mlflow."""
    print((out / "table.md").read_text())
    print(f"{num_rows} rows in {seconds:.1f} s wall, {cpu_seconds:.1f} s CPU (load average {os.getloadavg()[0]:.1f}); "
          f"wrote {out}")
    if not args.no_mlflow:
        runs_root = Path(os.environ.get("ARMILLARY_RUNS_DIR", "runs")).resolve()
        uri = args.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(runs_root)
        experiment = args.experiment or f"self-consistency/{out.name}"
        files = [out / name for name in ("rows.csv", "table.md", "step_sizes.md", "plot.png", "config.json", "command.txt")]
        run = log_to_mlflow(uri, runs_root, experiment, config, summary, chosen, [f for f in files if f.exists()], kind)
        print(f"MLflow: experiment {experiment!r}, run {run} in {uri}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=[s.value for s in Setting], default=Setting.EVALUATION.value)
    parser.add_argument("--out", default="results/self_consistency/random-mdp", help="folder for rows, table and plot")
    parser.add_argument("--experiment", default=None, help="MLflow experiment (default: self-consistency/<out's name>)")
    parser.add_argument("--config", default="{}", help="JSON of TabularStudyConfig fields, e.g. '{\"seeds\": 5}'")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--sizes", default=None, help="comma-separated dataset sizes")
    parser.add_argument("--mlflow-uri", default=None, help="default: $MLFLOW_TRACKING_URI, else runs/mlflow.db")
    parser.add_argument("--no-mlflow", action="store_true")
    args = parser.parse_args(argv)
    fields = {"setting": args.setting, **json.loads(args.config)}
    if args.seeds is not None:
        fields["seeds"] = args.seeds
    if args.steps is not None:
        fields["steps"] = args.steps
    if args.sizes is not None:
        fields["dataset_sizes"] = tuple(int(n) for n in args.sizes.split(","))
    config = TabularStudyConfig(**fields)  # rejects bad values, naming the field, before anything runs
    torch.set_num_threads(1)

    start, cpu_start = time.perf_counter(), time.process_time()
    rows, chosen, validation = run_study(config)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    out = Path(args.out)
    write_records(rows, config, seconds, cpu_seconds, "study", argv, out)
    summary = summarise(rows, config)
    write_table(summary, config, seconds, out / "table.md")
    if validation:
        write_steps(chosen, validation, config, out / "step_sizes.md")
    plot(summary, config, out / "plot.png")
    report(args, out, config, summary, chosen, len(rows), seconds, cpu_seconds, "self-consistency-tabular")
    return 0


if __name__ == "__main__":
    sys.exit(main())
