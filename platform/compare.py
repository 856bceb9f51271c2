"""`armillary compare`: finished runs, or the arms of one run, side by side.

An arm is a set of trials that differ only by seed: each run's trials grouped by their search-space values
(one arm for a run without a search space). For the compared metrics (by default the headline metrics of the
runs' algorithms, see report.headline_metrics; `--metric` to choose) it writes into one folder:

    curves.png     every arm's IQM learning curve and 95% band against env steps (or wall clock, x="time")
    profiles.png   performance profiles of the final scores: fraction of seeds above τ, with 95% bands
    compare.md     per metric, a table of final IQM, mean and median with 95% intervals; the probability of
                   improvement for each pair of arms; the resolved-spec fields in which the runs differ
    final_scores.json   the per-seed final values behind the tables

A seed's final score is the last finite value of the metric in its results. The statistics are
armillary.platform.aggregates's. The folder is logged to each compared run's parent MLflow run as artifacts
under `compare/<folder name>`, so every run's MLflow page shows the comparisons it took part in.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from armillary.platform import aggregates
from armillary.platform import metrics as metric_names
from armillary.platform import report, spec
from armillary.platform.spec import load_run_spec

PROFILE_POINTS = 101
LABEL_CHARS = 60
NOT_IN_LABELS = ("spec.resources.", "spec.checkpoint.", "spec.failure.", "spec.tracking.", "spec.seeds")


class CompareError(ValueError):
    """Input that cannot be compared: the message names the run and what is wrong."""


@dataclass
class Arm:
    label: str
    run_dir: Path
    trials: list[dict]
    final: dict[str, np.ndarray] = field(default_factory=dict)  # metric → final value per seed
    final_x: dict[str, float] = field(default_factory=dict)  # metric → median env steps of those final values


def check_run(run_dir: Path) -> None:
    if not (run_dir / "spec.yaml").is_file():
        raise CompareError(f"{run_dir}: not an Armillary run folder (no spec.yaml)")
    if not (run_dir / "COMPLETED").exists():
        raise CompareError(f"{run_dir}: the run has not finished (no COMPLETED marker); finish it with "
                           f"`armillary resume {run_dir}` or compare finished runs only")


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[:LABEL_CHARS - 1] + "…"


def spec_differences(run_dirs: list[Path]) -> tuple[list[str], dict[Path, dict[str, Any]]]:
    """The flattened spec and provenance fields (report.flat_run) whose values differ between the runs."""
    flats = {run: report.flat_run(run) for run in run_dirs}
    keys = sorted(set().union(*flats.values()))
    differing = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flats.values()}) > 1]
    return differing, flats


def collect_arms(run_dirs: list[Path]) -> list[Arm]:
    """Every arm of every run; labelled by the spec fields in which the runs differ, then the arm's search values."""
    for run in run_dirs:
        check_run(run)
    differing, flats = spec_differences(run_dirs)
    # Where the work ran, how often it saved and which seeds ran do not tell arms apart (the table gives n).
    label_fields = [k for k in differing if k.startswith("spec.") and not k.startswith(NOT_IN_LABELS)]
    arms: list[Arm] = []
    for run in run_dirs:
        trials = report.trial_results(run)
        if not trials:
            raise CompareError(f"{run}: no trial results under {run / 'tune'}")
        run_label = ", ".join(f"{k.rsplit('.', 1)[-1]}={flats[run].get(k, '—')}" for k in label_fields) or run.name
        groups = report.arms_of(trials)
        for group, members in groups.items():
            if len(run_dirs) == 1:
                label = group
            else:
                label = run_label if len(groups) == 1 else f"{run_label} | {group}"
            arms.append(Arm(_short(label), run, members))
    labels = [a.label for a in arms]
    for arm in arms:  # equal labels (runs with equal specs): tell them apart by their folder
        if labels.count(arm.label) > 1:
            arm.label = _short(f"{arm.run_dir.name} | {arm.label}")
    return arms


def compared_metrics(run_dirs: list[Path], arms: list[Arm], requested: list[str] | None) -> list[str]:
    keys = {run: report.numeric_keys(t for a in arms if a.run_dir == run for t in a.trials) for run in run_dirs}
    common = set.intersection(*keys.values())
    hint = f"metrics common to all runs: {', '.join(sorted(common)[:20]) or 'none'}"
    if requested:
        for key in requested:
            for run, present in keys.items():
                if key not in present:
                    raise CompareError(f"--metric {key}: {run} has no finite value of it; {hint}")
        return list(requested)
    wanted: dict[str, None] = {}
    for run in run_dirs:
        wanted.update(dict.fromkeys(report.headline_metrics(load_run_spec(run).algorithm.name)))
    for key in wanted:
        having = [run for run, present in keys.items() if key in present]
        if having and len(having) < len(run_dirs):
            lacking = [run for run in run_dirs if run not in having]
            raise CompareError(f"the runs have different metrics: {key} is in {having[0]} but not in {lacking[0]}; "
                               f"pass --metric KEY to compare on a common one ({hint})")
    # Arms of one run may be different algorithms (rvic/... vs vic/...): a default metric must be in every arm.
    per_arm = {arm.label: report.numeric_keys(arm.trials) for arm in arms}
    chosen = [k for k in wanted if k in common and all(k in present for present in per_arm.values())]
    lacking = [(arm, k) for k in wanted if k in common for arm in arms if k not in per_arm[arm.label]]
    if not chosen and lacking:
        arm, key = lacking[0]
        raise CompareError(f"{arm.run_dir}: arm {arm.label!r} has no finite value of {key}; {hint}")
    if not chosen:
        raise CompareError(f"no common headline metric to compare ({', '.join(wanted)}); {hint}")
    return chosen


def merged_ranges(run_dirs: list[Path], keys: list[str] = ()) -> dict[str, aggregates.Bounds]:
    """Each metric's declared range, widened to cover every run's and every arm's (e.g. two different time limits);
    a `{algorithm}` key (see resolve_templates) gets the union of its arms' ranges."""
    merged: dict[str, aggregates.Bounds] = {}

    def widen(key: str, low: float, high: float) -> None:
        old = merged.get(key, (low, high))
        merged[key] = (min(old[0], low), max(old[1], high))

    for run in run_dirs:
        run_spec = load_run_spec(run)
        for each in [run_spec, *spec.arm_specs(run_spec).values()]:
            declared = report.declared_ranges(each)
            for key, (low, high) in declared.items():
                widen(key, low, high)
            for template in keys:
                if ALGORITHM in template and template.format(algorithm=each.algorithm.name) in declared:
                    widen(template, *declared[template.format(algorithm=each.algorithm.name)])
    return merged


ALGORITHM = "{algorithm}"


def resolve_templates(arms: list[Arm], keys: list[str]) -> None:
    """A compared metric named with `{algorithm}` (e.g. `{algorithm}/effective_skills`) is, in each trial, the
    metric of that trial's own algorithm (vic/effective_skills in a VIC arm, rvic/... in an RVIC arm): arms of
    different algorithms of one family compared on the same figure. Added to the trials' rows under the template."""
    for arm in arms:
        for trial in arm.trials:
            config = trial["config"]
            overrides = {a["name"]: a["overrides"] for a in config["spec"].get("arms") or ()}.get(config.get("arm"), {})
            algorithm = spec.arm_dict(config["spec"], overrides)["algorithm"]["name"]
            for row in trial["rows"]:
                for key in keys:
                    if ALGORITHM in key:
                        row[key] = row.get(key.format(algorithm=algorithm))


def final_scores(arm: Arm, key: str) -> None:
    values, steps = [], []
    for x, y in report.seed_curves(arm.trials, key):
        values.append(y[-1])
        steps.append(x[-1])
    if not values:
        raise CompareError(f"{arm.run_dir}: arm {arm.label!r} has no finite value of {key}")
    arm.final[key] = np.asarray(values)
    arm.final_x[key] = float(np.median(steps))


def _fmt(estimate: aggregates.Estimate) -> str:
    return estimate.format(4)


def markdown(run_dirs: list[Path], arms: list[Arm], keys: list[str], ranges: dict[str, aggregates.Bounds],
             x_axis: str, plot_name: str = "curves.png") -> str:
    lines = ["# Comparison", "", "Runs:", *[f"- `{run}`" for run in run_dirs], "",
             f"Final score of a seed: the last finite value of the metric. Intervals: 95% percentile intervals of "
             f"the stratified bootstrap over seeds ({aggregates.RESAMPLES} resamples, seed "
             f"{aggregates.DEFAULT_SEED}), clipped to the metric's declared range. IQM: mean of the middle 50% of "
             f"seeds. P(X > Y): probability that a seed of X ends above a seed of Y (ties ½). Curves: `{plot_name}` "
             f"(x: {report.X_AXES[x_axis][1]}); performance profiles: `profiles.png`.", ""]
    for key in keys:
        bounds = ranges.get(key)
        lines += [f"## {key}" + (f" (range [{bounds[0]:g}, {bounds[1]:g}])" if bounds else ""), "",
                  "| arm | seeds | env steps | IQM [95% CI] | mean [95% CI] | median [95% CI] |", "|---|---|---|---|---|---|"]
        for arm in arms:
            stats = aggregates.aggregates(arm.final[key], bounds)
            lines.append(f"| {arm.label} | {len(arm.final[key])} | {arm.final_x[key]:.0f} | "
                         + " | ".join(_fmt(stats[name]) for name in aggregates.AGGREGATES) + " |")
        lines.append("")
        if len(arms) > 1:
            improvement = aggregates.probability_of_improvement({a.label: a.final[key] for a in arms})
            lines += ["| X | Y | P(X > Y) [95% CI] |", "|---|---|---|"]
            lines += [f"| {x} | {y} | {_fmt(estimate)} |" for (x, y), estimate in improvement.items()]
            lines.append("")
    differing, flats = spec_differences(run_dirs)
    lines += ["## Differences between the runs' resolved specs and provenance", ""]
    arm_specs = spec.arm_specs(load_run_spec(run_dirs[0])) if len(run_dirs) == 1 else {}
    if arm_specs:
        lines += arm_differences(arm_specs)
    elif len(run_dirs) > 1:
        lines += ["| field | " + " | ".join(f"run {i + 1}" for i in range(len(run_dirs))) + " |",
                  "|---|" + "---|" * len(run_dirs)]
        for key in differing:
            lines.append(f"| `{key}` | " + " | ".join(f"{flats[run].get(key, '—')}" for run in run_dirs) + " |")
        lines.append(f"\n{len(differing)} field(s) differ; run i is the i-th run listed above.")
    else:
        lines.append("One run: its arms differ only by their search-space values (the arm labels).")
    return "\n".join(lines) + "\n"


def arm_differences(arm_specs: dict[str, spec.ExperimentSpec]) -> list[str]:
    """The resolved-spec fields in which the arms of one run differ (its arms' names and search values aside)."""
    flats = {name: metric_names.flatten(arm.to_dict(), sep=".") for name, arm in arm_specs.items()}
    keys = sorted(set().union(*flats.values()))
    differing = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True, default=str) for f in flats.values()}) > 1]
    lines = ["One run; its arms' resolved specs differ in:", "", "| field | " + " | ".join(flats) + " |",
             "|---|" + "---|" * len(flats)]
    lines += [f"| `{key}` | " + " | ".join(f"{flat.get(key, '—')}" for flat in flats.values()) + " |" for key in differing]
    lines.append(f"\n{len(differing)} field(s) differ; every other field (seeds, budget, resources) is the same.")
    return lines


def draw_profiles(path: Path, arms: list[Arm], keys: list[str], ranges: dict[str, aggregates.Bounds]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(report.COLUMNS, len(keys))
    rows = -(-len(keys) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(report.PANEL_INCHES[0] * columns, report.PANEL_INCHES[1] * rows + 0.6),
                             squeeze=False, layout="constrained")
    for ax, key in zip(axes.flat, keys):
        finals = np.concatenate([a.final[key] for a in arms])
        # τ over the observed final scores (with a margin), inside the declared range: the steps stay readable
        low, high = float(finals.min()), float(finals.max())
        margin = 0.05 * (high - low) or 0.05 * max(abs(high), 1.0)
        low, high = low - margin, high + margin
        if key in ranges:
            low, high = max(low, ranges[key][0]), min(high, ranges[key][1])
        thresholds = np.linspace(low, high, PROFILE_POINTS) if high > low else np.array([low])
        profiles = aggregates.performance_profile({a.label: a.final[key] for a in arms}, thresholds)
        for arm in arms:
            profile, band_low, band_high = profiles[arm.label]
            line, = ax.plot(thresholds, profile, label=f"{arm.label} (n={len(arm.final[key])})")
            ax.fill_between(thresholds, band_low, band_high, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_title(f"performance profile: {key}", fontsize=10)
        ax.set_xlabel(f"final {report.unit(key)} threshold τ", fontsize=10)
        ax.set_ylabel("fraction of seeds with score > τ", fontsize=10)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(handles), 2), fontsize=9)
    fig.suptitle(f"Performance profiles of the final scores, band: 95% bootstrap CI over seeds "
                 f"({aggregates.CURVE_RESAMPLES} resamples)", fontsize=11)
    fig.savefig(path, dpi=report.DPI)
    plt.close(fig)
    return path


def compare_runs(run_dirs: list[Path], *, out: Path | None = None, metrics: list[str] | None = None,
                 x_axis: str = "steps", log_to_mlflow: bool = True, table_name: str = "compare.md",
                 plot_name: str = "curves.png") -> list[Path]:
    """Write the comparison of `run_dirs` (see the module docstring) into `out` (default: the first run's
    compare/ folder); returns the files written. Raises CompareError for input that cannot be compared."""
    if x_axis not in report.X_AXES:
        raise CompareError(f"--x must be one of {', '.join(report.X_AXES)} (got {x_axis!r})")
    run_dirs = [Path(r).resolve() for r in run_dirs]
    if len(set(run_dirs)) < len(run_dirs):
        raise CompareError("a run folder is given twice")
    arms = collect_arms(run_dirs)
    if len(arms) < 2:
        raise CompareError(f"{run_dirs[0]}: one arm only (no search space); give two or more runs, or a run with "
                           "a search-space axis")
    resolve_templates(arms, metrics or [])
    keys = compared_metrics(run_dirs, arms, metrics)
    ranges = merged_ranges(run_dirs, keys)
    for arm in arms:
        for key in keys:
            final_scores(arm, key)
    out = (out or run_dirs[0] / "compare").resolve()
    out.mkdir(parents=True, exist_ok=True)
    by_label = {arm.label: arm.trials for arm in arms}
    written = [report.draw_sheet(out / plot_name, keys, by_label, ranges=ranges, x_axis=x_axis,
                                 titles=report.headline_metrics(load_run_spec(run_dirs[0]).algorithm.name),
                                 heading="Comparison: "),
               draw_profiles(out / "profiles.png", arms, keys, ranges)]
    table = out / table_name
    table.write_text(markdown(run_dirs, arms, keys, ranges, x_axis, plot_name))
    raw = out / "final_scores.json"
    raw.write_text(json.dumps({arm.label: {"run": str(arm.run_dir), **{k: v.tolist() for k, v in arm.final.items()}}
                               for arm in arms}, indent=1))
    written += [table, raw]
    if log_to_mlflow:
        for run in run_dirs:
            report.log_to_parent_run(run, out, f"compare/{out.name}")
    return written
