"""Learning test (slow, not in the default suite): DOMiNO's small experiment on the equal-goal room (`domino/grid`,
α = 0.9, the preset's 800k env steps, seeds 1 and 3) against the no-diversity control (seed 0). Two of the five seeds
in the README keep it to a few minutes; their lowest v̄_i/v̄_0 (0.92) and smallest ψ distance (0.27) are clear of the
bounds.

What a real implementation must show there (README, "Measured"): every policy i ≥ 1 ends with v̄_i/v̄_0 ≥ α − 0.05,
its σ(λ_i) ends strictly inside (0, 1) and has settled (small spread over the last quarter), and the smallest ψ
distance is far above the control's, whose policies share a route. A constant weight, a multiplier that runs to its
bound or a diversity reward that does nothing each fail one of these.

And (README, "Measured": Van der Waals vs pure repulsion), at α = 0.5 where the constraint leaves room: Van der Waals
holds the nearest-neighbour ψ distance near ℓ0 while pure repulsion keeps pushing it up, well past ℓ0. A coefficient
c(d) that ignores ℓ0, or a Van der Waals term that never attracts, fails it.

Runs benchmarks/domino_grid.py (two processes at a time; both tests together took 2.5 min on the shared 2-core machine).
"""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray]

REPO = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, variant: str, seeds: list[int], *extra: str, name: str = "") -> list[dict]:
    out = tmp_path / (name or variant)
    command = [sys.executable, str(REPO / "benchmarks" / "domino_grid.py"), "--variants", variant,  # the preset's 800k steps
               "--seeds", *map(str, seeds), "--parallel", "2", "--out", str(out), *extra]
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


def _mean_nearest(run: dict, start: float, stop: float) -> float:
    """The policies' mean ‖ψ_i − ψ_j*‖, averaged over the iterations in [start, stop) of training (fractions)."""
    trace = run["nearest_trace"]
    rows = trace[int(len(trace) * start):int(len(trace) * stop)]
    return sum(sum(row) / len(row) for row in rows) / len(rows)


def test_van_der_waals_holds_the_target_distance_and_repulsion_keeps_pushing(tmp_path):
    ell0 = 0.2
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        vdw = pool.submit(_run, tmp_path, "domino", [0], "--alphas", "0.5",
                          "--set", f"algorithm.config.target_distance={ell0}", name="vdw")
        repulsion = pool.submit(_run, tmp_path, "domino", [0], "--alphas", "0.5",
                                "--set", "algorithm.config.diversity=repulsion", name="repulsion")
        vdw, repulsion = vdw.result()[0], repulsion.result()[0]
    held = _mean_nearest(vdw, 0.5, 1.0)
    assert 0.7 * ell0 < held < 1.3 * ell0, held
    # Past ℓ0 early (iterations 20–40: 40k–80k env steps of the 800k), and still pushing: it gains more than 0.1
    # after that.
    early, late = _mean_nearest(repulsion, 0.05, 0.1), _mean_nearest(repulsion, 0.9, 1.0)
    assert late > 2 * ell0 and late > 1.8 * held, (late, held)
    assert late > early + 0.1, (early, late)
