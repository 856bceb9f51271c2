"""The scale study's report (issue 22 item 3) from the per-run rows that `armillary run dqn/cartpole-scale`
(algorithms/dqn/scale_job.py) wrote: curves with 95% intervals over seeds per actor count, a summary table, and the
samples per insert measured in every run.

    python benchmarks/dqn_scale_report.py results/dqn/scale

Statistics: the interquartile mean over seeds with its 95% percentile-bootstrap interval, the platform's
(platform/aggregates.py: rliable's IQM, scipy's vectorised bootstrap, tested against rliable's own functions in
tests/test_report.py). Each run's return (mean of its last 20 finished episodes, logged every 50 learner updates) is
interpolated linearly onto a common grid of env steps (and of wall-clock seconds, up to the shortest run of that
actor count) before the seeds are aggregated.

Writes into the folder: return.png (return vs env steps and vs wall clock, IQM and 95% band per actor count),
samples_per_insert.png (the measured ratio of every run against the target and the limiter's bound), summary.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from armillary.platform.aggregates import CURVE_RESAMPLES, interval

CHECKPOINTS = (5_000, 10_000, 15_000, 20_000)
GRID_POINTS = 60


def load(folder: Path) -> dict[int, list[dict]]:
    runs: dict[int, list[dict]] = {}
    for path in sorted(folder.glob("actors*-seed*.json")):
        run = json.loads(path.read_text())
        runs.setdefault(run["config"]["num_actors"], []).append(run)
    if not runs:
        raise SystemExit(f"{folder}: no actors*-seed*.json rows (run `armillary run dqn/cartpole-scale` first)")
    return dict(sorted(runs.items()))


def _points(run: dict, x: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [row for row in run["rows"] if row["return_mean"] is not None]
    return np.array([row[x] for row in rows], float), np.array([row["return_mean"] for row in rows], float)


def on_grid(runs: list[dict], x: str, grid: np.ndarray) -> np.ndarray:
    """(seeds, points): each run's return interpolated at the grid (held flat past its last logged point)."""
    return np.stack([np.interp(grid, *_points(run, x)) for run in runs])


def final_return(run: dict) -> float:
    return float(_points(run, "env_steps")[1][-1])


def spi_bound(run: dict) -> float:
    """The limiter's guarantee on the measured ratio: |S / (I − min) − spi| ≤ error_buffer / (I − min)."""
    counted = run["final"]["inserts"] - run["config"]["limiter"]["min_size_to_sample"]
    return run["error_buffer"] / counted


def summary(runs: dict[int, list[dict]]) -> str:
    target = next(iter(runs.values()))[0]["config"]["limiter"]["samples_per_insert"]
    lines = ["| actors | seeds | " + " | ".join(f"return at {c // 1000}k steps, IQM [95% CI]" for c in CHECKPOINTS)
             + " | wall s, median [min, max] | env steps/s, median | measured spi, [min, max] (target "
             f"{target:g}) | max |spi − target| / bound | limiter s / learner s, max |",
             "|---:|---:|" + "---|" * len(CHECKPOINTS) + "---|---:|---|---:|---:|"]
    for count, group in runs.items():
        grid = on_grid(group, "env_steps", np.array(CHECKPOINTS, float))
        cells = []
        for column in grid.T:
            point, low, high = interval(column)
            cells.append(f"{float(point):.0f} [{float(low):.0f}, {float(high):.0f}]")
        wall = np.array([run["wall_s"] for run in group])
        rate = np.array([run["final"]["inserts"] / run["wall_s"] for run in group])
        spi = np.array([run["final"]["samples_per_insert_measured"] for run in group])
        worst = max(abs(run["final"]["samples_per_insert_measured"] - target) / spi_bound(run) for run in group)
        limiter = max(run["final"]["limiter_seconds"] / max(run["update_seconds"], 1e-9) for run in group)
        lines.append(f"| {count} | {len(group)} | " + " | ".join(cells)
                     + f" | {np.median(wall):.0f} [{wall.min():.0f}, {wall.max():.0f}] | {np.median(rate):.0f} | "
                     f"{spi.min():.3f}, {spi.max():.3f} | {worst:.2f} | {limiter:.4f} |")
    return "\n".join(lines) + "\n"


def plot(runs: dict[int, list[dict]], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    figure, (by_steps, by_time) = plt.subplots(1, 2, figsize=(11, 4.2))
    last_step = max(run["final"]["inserts"] for group in runs.values() for run in group)
    for colour, (count, group) in zip(colours, runs.items()):
        label = f"{count} actor{'s' if count > 1 else ''} ({len(group)} seeds)"
        first = max(_points(run, "env_steps")[0][0] for run in group)
        for axis, x, end in ((by_steps, "env_steps", last_step),
                             (by_time, "time_s", min(run["wall_s"] for run in group))):
            start = first if x == "env_steps" else max(_points(run, "time_s")[0][0] for run in group)
            grid = np.linspace(start, end, GRID_POINTS)
            point, low, high = interval(on_grid(group, x, grid), reps=CURVE_RESAMPLES)
            axis.plot(grid, point, color=colour, lw=1.8, label=label)
            axis.fill_between(grid, low, high, color=colour, alpha=0.18, lw=0)
    by_steps.set(xlabel="env steps (inserted transitions)", ylabel="return (mean of the last 20 episodes)",
                 title="vs env steps")
    by_time.set(xlabel="wall clock (s), loaded shared 2-core machine", title="vs wall clock")
    by_steps.legend(fontsize=8)
    figure.suptitle("Asynchronous DQN, CartPole, samples per insert fixed by the limiter: IQM over seeds, 95% bootstrap band",
                    fontsize=10)
    figure.tight_layout()
    paths = [folder / "return.png"]
    figure.savefig(paths[0], dpi=100)

    figure, axis = plt.subplots(figsize=(6, 3.6))
    target = next(iter(runs.values()))[0]["config"]["limiter"]["samples_per_insert"]
    for colour, (count, group) in zip(colours, runs.items()):
        xs = count * (1 + 0.06 * (np.arange(len(group)) - (len(group) - 1) / 2))
        axis.errorbar(xs, [run["final"]["samples_per_insert_measured"] for run in group],
                      yerr=[spi_bound(run) for run in group], fmt="o", color=colour, ms=4, capsize=2)
    axis.axhline(target, color="k", lw=0.8)
    axis.set_xscale("log", base=2)
    axis.set_xticks(list(runs), [str(c) for c in runs])
    axis.set(xlabel="actors", ylabel="measured samples per insert",
             title=f"every run (one point per seed; bars: the limiter's bound; line: target {target:g})")
    axis.title.set_fontsize(9)
    figure.tight_layout()
    paths.append(folder / "samples_per_insert.png")
    figure.savefig(paths[1], dpi=100)
    return paths


def main(folder: Path) -> None:
    runs = load(folder)
    (folder / "summary.md").write_text(summary(runs))
    for path in plot(runs, folder):
        print(path)
    print((folder / "summary.md").read_text())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
