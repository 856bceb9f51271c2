"""Learning curves and run comparison.

`report_run` reads every trial of a run from Tune's own results (result.json per trial), groups trials
that differ only by seed, and draws mean ± 95% confidence interval (Student t over seeds) against env
steps: one PNG per metric family, also logged to the experiment's parent MLflow run.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from armillary.platform import metrics as metric_names
from armillary.platform.spec import load_run_spec

LOSS_KEYS = ("policy_loss", "vf_loss", "entropy", "total_loss")


def trial_results(run_dir: Path) -> list[dict[str, Any]]:
    """One record per trial: its Tune config and its results in order (each training iteration once)."""
    trials = []
    for result_file in sorted((run_dir / "tune").glob("*/result.json")):
        rows: dict[int, dict] = {}
        for line in result_file.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                rows.setdefault(int(row.get("training_iteration", len(rows) + 1)), row)  # first-logged wins, as in MLflow
        params_file = result_file.parent / "params.json"
        config = json.loads(params_file.read_text()) if params_file.exists() else {}
        trials.append({"dir": result_file.parent, "config": config, "rows": [rows[k] for k in sorted(rows)]})
    return trials


def _group_key(config: dict) -> str:
    overrides = config.get("overrides") or {}
    return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in sorted(overrides.items())) or "all seeds"


def _families(keys: Iterable[str], algorithm: str | None) -> dict[str, list[str]]:
    keys = set(keys)
    families: dict[str, list[str]] = {"return": [k for k in (metric_names.EPISODE_RETURN,) if k in keys]}
    families["episode_length"] = [k for k in ("env_runners/episode_len_mean",) if k in keys]
    families["losses"] = sorted(k for k in keys if k.startswith("learners/") and k.rsplit("/", 1)[-1] in LOSS_KEYS)
    if algorithm:
        families[algorithm] = sorted(k for k in keys if k.startswith(f"{algorithm}/"))
    return {name: members for name, members in families.items() if members}


def mean_ci(curves: list[tuple[np.ndarray, np.ndarray]], points: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interpolate each seed's curve onto common env steps; mean and 95% t-interval half-width."""
    from scipy import stats

    end = min(x[-1] for x, _ in curves)
    start = max(x[0] for x, _ in curves)
    grid = np.linspace(start, end, points) if end > start else np.array([end])
    values = np.stack([np.interp(grid, x, y) for x, y in curves])
    mean = values.mean(axis=0)
    if len(curves) < 2:
        return grid, mean, np.zeros_like(mean)
    sem = values.std(axis=0, ddof=1) / np.sqrt(len(curves))
    return grid, mean, sem * stats.t.ppf(0.975, len(curves) - 1)


def report_run(run_dir: Path, metrics: list[str] | None = None, log_to_mlflow: bool = True) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trials = trial_results(run_dir)
    if not trials:
        raise FileNotFoundError(f"no trial results under {run_dir / 'tune'}")
    algorithm = trials[0]["config"].get("spec", {}).get("algorithm", {}).get("name")
    all_keys = {k for t in trials for row in t["rows"] for k, v in row.items() if isinstance(v, (int, float))}
    families = {"selected": metrics} if metrics else _families(all_keys, algorithm)
    groups: dict[str, list[dict]] = defaultdict(list)
    for trial in trials:
        groups[_group_key(trial["config"])].append(trial)

    out_dir = run_dir / "report"
    out_dir.mkdir(exist_ok=True)
    written = []
    for family, keys in families.items():
        fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.6), squeeze=False)
        for ax, key in zip(axes[0], keys):
            for label, members in sorted(groups.items()):
                curves = []
                for trial in members:
                    pts = [(r.get(metric_names.ENV_STEPS), r.get(key)) for r in trial["rows"]]
                    pts = [(x, y) for x, y in pts if _finite(x) and _finite(y)]
                    if pts:
                        xs, ys = map(np.asarray, zip(*pts))
                        curves.append((xs, ys))
                if not curves:
                    continue
                grid, mean, half = mean_ci(curves)
                ax.plot(grid, mean, label=f"{label} (n={len(curves)})")
                ax.fill_between(grid, mean - half, mean + half, alpha=0.25)
            ax.set_title(key, fontsize=9)
            ax.set_xlabel("env steps")
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / f"{family.replace('/', '_')}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    if log_to_mlflow:
        _log_report(run_dir, out_dir)
    return written


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and np.isfinite(value)


def _log_report(run_dir: Path, out_dir: Path) -> None:
    """Log the plots into the experiment's parent MLflow run (found by its run-dir tag)."""
    from armillary.platform import tracking

    spec = load_run_spec(run_dir)
    root = run_dir.parents[1]
    uri = tracking.resolve_tracking_uri(spec, root)
    client = tracking._client(uri)
    experiment = client.get_experiment_by_name(spec.tracking.experiment or spec.name)
    if experiment is None:
        return
    found = client.search_runs([experiment.experiment_id],
                               filter_string=f"tags.`{tracking.TAG_RUN_DIR}` = '{run_dir}' and tags.`armillary.kind` = 'experiment'")
    if found:
        client.log_artifacts(found[0].info.run_id, str(out_dir), "report")


def diff_runs(run_a: Path, run_b: Path) -> str:
    """Resolved specs and provenance of two runs, side by side: the differing fields first."""
    import yaml

    def load(run: Path) -> dict[str, Any]:
        spec = yaml.safe_load((run / "spec.yaml").read_text())
        prov_file = run / "provenance.json"
        prov = json.loads(prov_file.read_text()) if prov_file.exists() else {}
        return {**{f"spec.{k}": v for k, v in metric_names.flatten(spec, sep=".").items()},
                **{f"provenance.{k}": v for k, v in metric_names.flatten(prov, sep=".").items()}}

    a, b = load(run_a), load(run_b)
    keys = sorted(set(a) | set(b))
    differing = [k for k in keys if a.get(k) != b.get(k)]
    width = max([len(k) for k in keys] + [10])
    lines = [f"A: {run_a}", f"B: {run_b}", "", f"{'field':<{width}}  {'A':<30}  B", "-" * (width + 64)]
    for key in differing:
        lines.append(f"{key:<{width}}  {str(a.get(key, '—')):<30}  {b.get(key, '—')}")
    lines.append("")
    lines.append(f"{len(differing)} field(s) differ, {len(keys) - len(differing)} equal")
    return "\n".join(lines)
