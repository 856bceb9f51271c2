"""The study's plot from the rows scale_job wrote: return vs env steps and vs wall clock, one colour per actor count.

    python -m armillary.algorithms.dqn.scale_plot results/dqn/scale
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def plot(folder: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [json.loads(path.read_text()) for path in sorted(folder.glob("actors*-seed*.json"))]
    counts = sorted({run["config"]["num_actors"] for run in runs})
    figure, (by_steps, by_time) = plt.subplots(1, 2, figsize=(10, 4))
    for colour, count in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], counts):
        for i, run in enumerate(r for r in runs if r["config"]["num_actors"] == count):
            rows = [row for row in run["rows"] if row["return_mean"] is not None]
            label = f"{count} actor{'s' if count > 1 else ''}" if i == 0 else None
            by_steps.plot([r["env_steps"] for r in rows], [r["return_mean"] for r in rows], color=colour, lw=1,
                          label=label)
            by_time.plot([r["time_s"] for r in rows], [r["return_mean"] for r in rows], color=colour, lw=1)
    by_steps.set(xlabel="env steps (inserted transitions)", ylabel="return (last 20 episodes)")
    by_time.set(xlabel="wall clock (s)")
    by_steps.legend()
    figure.suptitle("Asynchronous DQN, CartPole, fixed samples per insert (one line per seed)")
    figure.tight_layout()
    path = folder / "return.png"
    figure.savefig(path, dpi=100)
    return path


if __name__ == "__main__":
    print(plot(Path(sys.argv[1])))
