"""Learning test (slow, not in the default suite): DOMiNO's small experiment on the equal-goal room (`domino/grid`,
α = 0.9, 400k env steps, seeds 1 and 3) against the no-diversity control (seed 0). Seed 0 is left out because one of
its policies ends at v̄_i/v̄_0 = 0.855, 0.005 above the tolerance: too close for a regression check (all five seeds
are in the README).

What a real implementation must show there (README, "Today's grid presets"): every policy i ≥ 1 ends with
v̄_i/v̄_0 ≥ α − 0.05, its σ(λ_i) ends strictly inside (0, 1) and has settled (small spread over the last quarter),
and the smallest ψ distance is far above the control's, whose policies share a route. A constant weight, a
multiplier that runs to its bound or a diversity reward that does nothing each fail one of these.

Runs benchmarks/domino_grid.py (two processes at a time, ~2–3 min on the shared 2-core machine).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray]

REPO = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, variant: str, seeds: list[int]) -> list[dict]:
    out = tmp_path / variant
    command = [sys.executable, str(REPO / "benchmarks" / "domino_grid.py"), "--steps", "400000", "--variants", variant,
               "--seeds", *map(str, seeds), "--parallel", "2", "--out", str(out)]
    subprocess.run(command, check=True, capture_output=True, timeout=1800)
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_domino_meets_the_constraint_and_stays_diverse_on_the_equal_goal_room(tmp_path):
    domino = _run(tmp_path, "domino", [1, 3])
    control = _run(tmp_path, "no-diversity", [0])
    for run in domino:
        alpha = run["optimality_ratio"]
        assert min(run["value_ratio"]) >= alpha - 0.05, run["value_ratio"]
        assert all(0.05 < weight < 0.95 for weight in run["extrinsic_weight"]), run["extrinsic_weight"]
        assert max(run["weight_std_last_quarter"]) < 0.05, run["weight_std_last_quarter"]
        assert run["min_pairwise_sf_distance"] > 0.15 > 3 * control[0]["min_pairwise_sf_distance"], (
            run["min_pairwise_sf_distance"], control[0]["min_pairwise_sf_distance"])
    assert len({goal for goal in domino[0]["main_goals"] if goal >= 0}) >= 3, domino[0]["main_goals"]
