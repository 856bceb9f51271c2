"""Learning test (slow, not in the default suite): on the small Four Rooms, DISDAIN's skills reach more
distinct end cells and more effective skills than plain VIC after the same 150k env steps (2 seeds).

Runs `armillary run disdain/reproduce` with two of its arms, 2 seeds and 150k steps (one Tune run, two trials at a
time, ~6 min on the shared 2-core machine), and reads the comparison's per-seed final scores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def test_disdain_beats_vic_on_small_four_rooms(tmp_path):
    arms = ('arms=[{name: disdain, overrides: {}}, {name: vic, overrides: {algorithm.config.ensemble_size: 1, '
            'algorithm.config.bonus_weight: 0.0}}]')
    env = dict(os.environ, ARMILLARY_RUNS_DIR=str(tmp_path / "runs"), ARMILLARY_RESULTS_DIR=str(tmp_path / "results"),
               OMP_NUM_THREADS="1")
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, "-m", "armillary.platform.cli", "run", "disdain/reproduce", "stop.env_steps=150000",
               "seeds=[0,1]", arms, "--no-dashboard"]
    out = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    finals = json.loads((tmp_path / "results" / "disdain" / "reproduce" / "final_scores.json").read_text())

    def mean(arm, key):
        values = finals[arm][f"disdain/{key}"]
        assert len(values) == 2
        return sum(values) / len(values)

    assert mean("disdain", "distinct_final_states") > mean("vic", "distinct_final_states")
    assert mean("disdain", "effective_skills") > mean("vic", "effective_skills")
