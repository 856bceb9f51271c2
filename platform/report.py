"""Learning curves of one run, and the resolved-spec differences between runs.

`report_run` reads every trial of a run from Tune's own results (result.json per trial), groups trials that
differ only by seed into arms, and draws each arm's interquartile mean over seeds with its 95%
stratified-bootstrap interval (armillary.platform.aggregates) against env steps. Two sheets:
`headline.png`, the method's own figures (the algorithm entry's `progress_metrics`) and the episode return,
and `other.png` (then `other-2.png`, ...) for the rest, a grid of legible panels each. Intervals are clipped to
the metric's declared range (`declared_ranges`). The sheets are also logged to the experiment's parent MLflow run.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import yaml

from armillary.algorithms import registry as algorithms
from armillary.envs import registry as environments
from armillary.platform import aggregates
from armillary.platform import metrics as metric_names
from armillary.platform.spec import load_run_spec

LOSS_KEYS = ("policy_loss", "vf_loss", "entropy", "total_loss")
EPISODE_LENGTH = "env_runners/episode_len_mean"
WALL_CLOCK = "time_total_s"
X_AXES = {"steps": (metric_names.ENV_STEPS, "env steps"), "time": (WALL_CLOCK, "wall clock (s)")}
COLUMNS = 3
ROWS_PER_SHEET = 6  # 18 panels: every DISDAIN figure besides the headline fits one second sheet
PANEL_INCHES = (5.2, 3.6)
DPI = 100
CURVE_POINTS = 100

# Last part of a metric key → the unit on its y axis (the first rule that matches wins).
_UNITS = ((re.compile(r"episode_return"), "return (sum of rewards)"), (re.compile(r"episode_len"), "steps"),
          (re.compile(r"_bits$"), "bits"), (re.compile(r"(accuracy|(^|_)acc(_|$))"), "fraction"),
          (re.compile(r"entropy"), "nats"), (re.compile(r"effective_skills"), "skills"),
          (re.compile(r"steps_per_second"), "env steps / s"), (re.compile(r"loss"), "loss"),
          (re.compile(r"(reward|bonus)"), "reward"), (re.compile(r"^(finished|distinct|num)_"), "count"))


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


def arm_label(config: Mapping[str, Any]) -> str:
    """Trials of the same spec arm with equal search-space values are one arm: 'disdain', 'lr=0.001, gamma=0.9',
    'disdain, lr=0.001', or 'all seeds'."""
    overrides = config.get("overrides") or {}
    parts = [config["arm"]] if config.get("arm") is not None else []
    parts += [f"{k.split('.')[-1]}={v}" for k, v in sorted(overrides.items())]
    return ", ".join(parts) or "all seeds"


def arms_of(trials: Iterable[dict]) -> dict[str, list[dict]]:
    arms: dict[str, list[dict]] = defaultdict(list)
    for trial in trials:
        arms[arm_label(trial["config"])].append(trial)
    return dict(sorted(arms.items()))


def numeric_keys(trials: Iterable[dict]) -> set[str]:
    return {k for t in trials for row in t["rows"] for k, v in row.items() if _finite(v)}


def headline_metrics(algorithm: str | None) -> dict[str, str]:
    """The method's own figures first (its entry's progress_metrics, key → title), then the episode return."""
    own = (algorithms.get(algorithm).progress_metrics or {}) if algorithm else {}
    return {**own, metric_names.EPISODE_RETURN: "episode return"}


def other_metrics(keys: Iterable[str], algorithm: str | None, headline: Iterable[str]) -> list[str]:
    """Episode length, PPO's losses and every other figure of the method, in that order, minus the headline."""
    keys, headline = set(keys), set(headline)
    ordered = [EPISODE_LENGTH] if EPISODE_LENGTH in keys else []
    ordered += sorted(k for k in keys if k.startswith("learners/") and k.rsplit("/", 1)[-1] in LOSS_KEYS)
    if algorithm:
        ordered += sorted(k for k in keys if k.startswith(f"{algorithm}/"))
    return [k for k in ordered if k not in headline]


def declared_ranges(spec) -> dict[str, aggregates.Bounds]:
    """Metric key → (low, high) the metric can take: the env entry's return range for these env options and the
    algorithm entry's metric ranges for these hyperparameters. Metrics without a declared range are absent."""
    ranges: dict[str, aggregates.Bounds] = {}
    env = environments.get(spec.env.name)
    if env.return_range is not None:
        ranges[metric_names.EPISODE_RETURN] = tuple(env.return_range(spec.env.config))
    algorithm = algorithms.get(spec.algorithm.name)
    if algorithm.metric_ranges is not None:
        ranges.update({k: tuple(v) for k, v in algorithm.metric_ranges(spec.algorithm.config).items()})
    return ranges


def unit(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    return next((label for pattern, label in _UNITS if pattern.search(name)), name)


def seed_curves(trials: Iterable[dict], key: str, x_key: str = metric_names.ENV_STEPS) -> list[tuple[np.ndarray, np.ndarray]]:
    """(x, y) per seed, finite points only; seeds without any point are left out."""
    curves = []
    for trial in trials:
        pts = [(r.get(x_key), r.get(key)) for r in trial["rows"]]
        pts = [(x, y) for x, y in pts if _finite(x) and _finite(y)]
        if pts:
            xs, ys = map(np.asarray, zip(*pts))
            curves.append((xs.astype(float), ys.astype(float)))
    return curves


def curve_band(curves: list[tuple[np.ndarray, np.ndarray]], bounds: aggregates.Bounds | None = None,
               points: int = CURVE_POINTS, seed: int | None = aggregates.DEFAULT_SEED):
    """Each seed's curve interpolated onto common x (where every seed has data); the IQM over seeds and its 95%
    stratified-bootstrap band at every x. Returns (x, iqm, low, high)."""
    start = max(x[0] for x, _ in curves)
    end = min(x[-1] for x, _ in curves)
    grid = np.linspace(start, end, points) if end > start else np.array([end])
    values = np.stack([np.interp(grid, x, y) for x, y in curves])
    point, low, high = aggregates.interval(values, "IQM", bounds, reps=aggregates.CURVE_RESAMPLES, seed=seed)
    return grid, point, low, high


def draw_sheet(path: Path, keys: list[str], arms: Mapping[str, list[dict]], *, ranges: Mapping[str, aggregates.Bounds],
               titles: Mapping[str, str] | None = None, x_axis: str = "steps", heading: str = "") -> Path:
    """A grid of panels (COLUMNS wide), one per metric, every arm's IQM curve and band in each panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    titles = titles or {}
    x_key, x_label = X_AXES[x_axis]
    columns = min(COLUMNS, len(keys))
    rows = math.ceil(len(keys) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(PANEL_INCHES[0] * columns, PANEL_INCHES[1] * rows + 0.6),
                             squeeze=False, layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, key in zip(axes.flat, keys):
        bounds = ranges.get(key)
        for index, (label, trials) in enumerate(arms.items()):
            curves = seed_curves(trials, key, x_key)
            if not curves:
                continue
            grid, point, low, high = curve_band(curves, bounds)
            color = colors[index % len(colors)]
            ax.plot(grid, point, color=color, label=f"{label} (n={len(curves)})")
            ax.fill_between(grid, low, high, color=color, alpha=0.2, linewidth=0)
        title = titles.get(key)
        ax.set_title(f"{title}\n{key}" if title else key, fontsize=10)
        ax.set_xlabel(x_label, fontsize=10)
        ax.set_ylabel(unit(key) + (f" in [{bounds[0]:g}, {bounds[1]:g}]" if bounds else ""), fontsize=10)
        ax.tick_params(labelsize=9)
        ax.grid(alpha=0.3)
        if not ax.has_data():
            ax.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=ax.transAxes, color="gray")
        elif len(arms) == 1:
            ax.legend(fontsize=8, loc="best")
    if len(arms) > 1:  # one legend under the grid: arm labels are long and would cover the curves
        handles = [Line2D([], [], color=colors[i % len(colors)], label=f"{label} (n={len(trials)} seeds)")
                   for i, (label, trials) in enumerate(arms.items())]
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 2), fontsize=9)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    caption = (f"{heading}IQM over seeds (n in the legend), band: 95% bootstrap CI over seeds "
               f"({aggregates.CURVE_RESAMPLES} resamples)")
    fig.suptitle(textwrap.fill(caption, 60 * columns), fontsize=11)  # wrapped to the figure's width
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def report_run(run_dir: Path, metrics: list[str] | None = None, log_to_mlflow: bool = True) -> list[Path]:
    """Draw the run's sheets into run_dir/report/ (see the module docstring); returns the PNG paths."""
    trials = trial_results(run_dir)
    if not trials:
        raise FileNotFoundError(f"no trial results under {run_dir / 'tune'}")
    spec = load_run_spec(run_dir)
    algorithm = spec.algorithm.name
    keys = numeric_keys(trials)
    titles = headline_metrics(algorithm)
    if metrics:
        sheets = {"selected": list(metrics)}
    else:
        headline = [k for k in titles if k in keys]
        sheets = {"headline": headline}
        rest = other_metrics(keys, algorithm, headline)
        per_sheet = COLUMNS * ROWS_PER_SHEET
        for page, start in enumerate(range(0, len(rest), per_sheet), 1):
            sheets["other" if page == 1 else f"other-{page}"] = rest[start:start + per_sheet]
    out_dir = run_dir / "report"
    out_dir.mkdir(exist_ok=True)
    for stale in out_dir.glob("*.png"):  # this folder holds the sheets only; a rerun may draw fewer of them
        stale.unlink()
    arms = arms_of(trials)
    ranges = declared_ranges(spec)
    written = [draw_sheet(out_dir / f"{name}.png", members, arms, ranges=ranges, titles=titles,
                          heading=f"{spec.name} ({name}): ")
               for name, members in sheets.items() if members]
    if log_to_mlflow:
        log_to_parent_run(run_dir, out_dir, "report")
    return written


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def log_to_parent_run(run_dir: Path, folder: Path, artifact_path: str) -> None:
    """Log a folder into the experiment's parent MLflow run (found by its run-dir tag)."""
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
        client.log_artifacts(found[0].info.run_id, str(folder), artifact_path)


def flat_run(run: Path) -> dict[str, Any]:
    """A run's resolved spec and provenance as one flat mapping: 'spec.algorithm.config.lr' → value."""
    spec = yaml.safe_load((run / "spec.yaml").read_text())
    prov_file = run / "provenance.json"
    prov = json.loads(prov_file.read_text()) if prov_file.exists() else {}
    return {**{f"spec.{k}": v for k, v in metric_names.flatten(spec, sep=".").items()},
            **{f"provenance.{k}": v for k, v in metric_names.flatten(prov, sep=".").items()}}


def diff_runs(run_a: Path, run_b: Path) -> str:
    """Resolved specs and provenance of two runs, side by side: the differing fields first."""
    a, b = flat_run(run_a), flat_run(run_b)
    keys = sorted(set(a) | set(b))
    differing = [k for k in keys if a.get(k) != b.get(k)]
    width = max([len(k) for k in keys] + [10])
    lines = [f"A: {run_a}", f"B: {run_b}", "", f"{'field':<{width}}  {'A':<30}  B", "-" * (width + 64)]
    for key in differing:
        lines.append(f"{key:<{width}}  {str(a.get(key, '—')):<30}  {b.get(key, '—')}")
    lines.append("")
    lines.append(f"{len(differing)} field(s) differ, {len(keys) - len(differing)} equal")
    return "\n".join(lines)
