"""The outcome of a run with arms: its comparison, in the run folder and (when the spec names one) in results/.

A spec with `arms` is one comparison (e.g. DISDAIN against its two baselines): every arm × seed is a trial of
one Tune run under one MLflow parent run. When all trials finished, the runner calls `write_outcome`, which
writes into `<run>/comparison/`:

    table.md          compare's table: final IQM, mean, median with 95% stratified-bootstrap intervals per arm,
                      P(X > Y) per pair, the resolved-spec fields in which the arms differ; the paper's figures
                      (spec.results.paper) above it
    plot.png          every arm's IQM learning curve with its 95% band against env steps
    profiles.png      performance profiles of the final scores
    final_scores.json the per-seed final values behind the table
    per_seed.csv      the raw per-seed results: every iteration of every trial (arm, seed, env steps, metrics)
    spec.yaml         the resolved spec of the whole experiment (arms included)
    command.txt       the command that made it
    run.json          wall time, load average before and after, CPU count, run folder, git commit

and, with spec.results, copies that folder to `results/<spec.results.folder>/` ($ARMILLARY_RESULTS_DIR instead
of the repository's results/ when set), replacing the previous outcome there: a rerun replaces, never mixes.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import time
from pathlib import Path

from armillary.platform import compare, console, metrics, report
from armillary.platform.spec import ExperimentSpec, trial_spec
from armillary.platform.trainable import _stop_reached

REPO_ROOT = Path(__file__).resolve().parents[1]
TABLE = "table.md"
PLOT = "plot.png"


def results_root() -> Path:
    return Path(os.environ.get("ARMILLARY_RESULTS_DIR") or REPO_ROOT / "results").resolve()


def command_line(argv: list[str] | None = None) -> str:
    """The command as a reader would type it: `armillary run ...` rather than the venv's path to the script."""
    argv = list(sys.argv if argv is None else argv)
    if argv and (Path(argv[0]).name == "armillary" or argv[0].endswith("platform/cli.py")):
        argv[0] = "armillary"
    return " ".join(argv)


def write_per_seed(path: Path, run_dir: Path, keys: list[str]) -> Path:
    columns = ["arm", "seed", "training_iteration", metrics.ENV_STEPS, "time_total_s", *keys]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        arms = compare.collect_arms([run_dir])
        compare.resolve_templates(arms, keys)  # {algorithm}/... columns: each trial's own algorithm's figure
        for trial in sorted((t for arm in arms for t in arm.trials), key=lambda t: (report.arm_label(t["config"]),
                                                                                     t["config"].get("seed", 0))):
            label = report.arm_label(trial["config"])
            for row in trial["rows"]:
                values = [console.lookup(row, key) for key in columns[2:]]
                writer.writerow([label, trial["config"].get("seed"), *["" if v is None else v for v in values]])
    return path


def unfinished_trials(run_dir: Path, num_trials: int) -> list[str]:
    """Trials that did not reach their stop criterion (Tune returns normally after Ctrl-C, its trials cut short), or
    that never reported: an outcome from them would compare arms at different budgets."""
    trials = report.trial_results(run_dir)
    missing = [f"{num_trials - len(trials)} trial(s) without results"] if len(trials) < num_trials else []
    for trial in trials:
        last = trial["rows"][-1] if trial["rows"] else {}
        done = last and _stop_reached(trial_spec(trial["config"]["spec"], trial["config"]), last,
                                      int(last.get("training_iteration", 0)), float(last.get("time_total_s", 0.0)))
        if not done:
            missing.append(f"{report.arm_label(trial['config'])}, seed {trial['config'].get('seed')}")
    return missing


def write_outcome(run_dir: Path, spec: ExperimentSpec, *, wall_s: float, load_before: tuple[float, ...],
                  resumed: bool, num_trials: int) -> Path:
    """The comparison of the run's arms in `run_dir/comparison/`, copied over results/<folder>/ if the spec keeps
    it. Returns the folder that holds the outcome. Refuses (RuntimeError) while a trial is short of its stop."""
    unfinished = unfinished_trials(run_dir, num_trials)
    if unfinished:
        raise RuntimeError(f"not every trial reached its stop criterion ({'; '.join(unfinished[:5])}); no outcome "
                           f"from it: finish the run (`armillary resume {run_dir}`) or run the experiment again")
    out = run_dir / "comparison"
    if out.exists():
        shutil.rmtree(out)
    requested = list(spec.results.metrics) if spec.results and spec.results.metrics else None
    written = compare.compare_runs([run_dir], out=out, metrics=requested, table_name=TABLE, plot_name=PLOT)
    table = out / TABLE
    if spec.results and spec.results.paper:
        table.write_text(f"# {spec.name}\n\nThe paper: {spec.results.paper}\n\n" + table.read_text())
    keys = list(json.loads((out / "final_scores.json").read_text()).values())[0]
    write_per_seed(out / "per_seed.csv", run_dir, [k for k in keys if k != "run"])
    (out / "spec.yaml").write_text(spec.to_yaml())
    (out / "command.txt").write_text(command_line() + "\n")
    provenance = json.loads((run_dir / "provenance.json").read_text()) if (run_dir / "provenance.json").exists() else {}
    (out / "run.json").write_text(json.dumps({
        "wall_s": round(wall_s, 1), "resumed": resumed,  # a resumed run's wall time is the last attempt's only
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()], "cpu_count": os.cpu_count(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "run_dir": str(run_dir),
        "git_commit": provenance.get("git_commit"), "git_dirty": provenance.get("git_dirty"),
    }, indent=1) + "\n")
    print(f"Comparison of the arms: {table}" + (f" (+{len(written) - 1} files)" if len(written) > 1 else ""))
    if spec.results is None:
        return out
    destination = results_root() / spec.results.folder
    staging = destination.with_name(destination.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(out, staging)
    shutil.rmtree(destination, ignore_errors=True)
    staging.rename(destination)
    print(f"Outcome kept in {destination} (replacing the previous one)")
    return destination
