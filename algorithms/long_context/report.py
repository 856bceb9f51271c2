"""The sweep's results from its per-cell rows: recall tables (markdown), heatmaps (PNG), rows.csv, summary.json."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from armillary.algorithms.long_context.tasks import RecallTable, Task


def heatmap(table: RecallTable, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = np.full((len(table.lengths), len(table.depths)), np.nan)
    for i, length in enumerate(table.lengths):
        for j, depth in enumerate(table.depths):
            if (length, depth) in table.mean:
                grid[i, j] = 100 * table.mean[(length, depth)]
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(table.depths), 1.2 + 0.5 * len(table.lengths)))
    image = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(table.depths)), ["—" if d is None else f"{100 * d:.0f}" for d in table.depths])
    ax.set_yticks(range(len(table.lengths)), [str(n) for n in table.lengths])
    ax.set_xlabel("needle depth (% of the context)")
    ax.set_ylabel("context length (tokens)")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="recall (%)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(rows: list[dict], out: Path, settings: dict, args: dict, timing: dict) -> dict:
    """Write rows.csv, recall.md, summary.json and one heatmap per (task, haystack); return the summary."""
    out.mkdir(parents=True, exist_ok=True)
    columns = ["key", "task", "haystack", "length", "depth", "draw", "cities", "references", "output", "recall",
               "hits", "any_number", "needle_depths", "seconds", "prefix_seconds", "computed_tokens", "prompt_tokens"]
    with open(out / "rows.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    model = settings["model_name"]
    sections, metrics, recall_by_length = [], {}, {}
    for task in Task:
        for haystack in dict.fromkeys(r["haystack"] for r in rows):
            members = [r for r in rows if r["task"] == task.value and r["haystack"] == haystack]
            if not members:
                continue
            table = RecallTable.from_rows(members)
            name = f"{task.value}__{haystack}"
            label = "needle-absent control: how often the answer has the (never shown) number" if task == Task.ABSENT \
                else ("single needle" if task == Task.SINGLE else f"{task.value} task")
            sections.append(table.markdown(f"{label}, {haystack} haystack"))
            by_length = table.by_length()
            recall_by_length[name] = {str(k): v for k, v in by_length.items()}
            for length, value in by_length.items():
                metrics[f"long_context/{task.value}/{haystack}/recall_L{length}"] = value
            if task == Task.ABSENT:
                for length in table.lengths:
                    numbers = [r["any_number"] for r in members if r["length"] == length]
                    metrics[f"long_context/absent/{haystack}/any_number_L{length}"] = sum(numbers) / len(numbers)
                sections.append("Answers stating some 7-digit number anyway (confabulated): " + ", ".join(
                    f"{length}: {100 * metrics[f'long_context/absent/{haystack}/any_number_L{length}']:.0f}%"
                    for length in table.lengths) + "\n")
            else:
                heatmap(table, f"{model}\n{label}, {haystack} haystack", out / f"heatmap_{name}.png")
    header = f"# Needle-in-a-haystack recall: {model}\n\nCells: {len(rows)}; recall = exact containment of each " \
             f"asked number in the greedy answer, averaged over draws.\n"
    (out / "recall.md").write_text(header + "\n" + "\n".join(sections))
    summary = {"model": model, "cells": len(rows), "recall_by_length": recall_by_length, "metrics": metrics,
               "timing": timing, "args": {k: v for k, v in args.items()}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print((out / "recall.md").read_text())
    return summary
