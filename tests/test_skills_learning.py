"""Learning test (slow, not in the default suite): on the small Four Rooms, DISDAIN's skills reach more
distinct end cells and more effective skills than plain VIC after the same 150k env steps (2 seeds).

Runs benchmarks/skills_four_rooms.py (two processes at a time, ~6 min on the shared 2-core machine).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray]

REPO = Path(__file__).resolve().parents[1]


def test_disdain_beats_vic_on_small_four_rooms(tmp_path):
    command = [sys.executable, str(REPO / "benchmarks" / "skills_four_rooms.py"), "--steps", "150000", "--seeds", "0", "1",
               "--variants", "disdain", "vic", "--eval-every", "50000", "--out", str(tmp_path)]
    subprocess.run(command, check=True, capture_output=True, timeout=1800)
    lines = json.loads((tmp_path / "curves.json").read_text())
    final = {}
    for line in lines:
        final[(line["variant"], line["seed"])] = line  # the last evaluation of each run

    def mean(variant, key):
        values = [v[key] for (name, _), v in final.items() if name == variant]
        return sum(values) / len(values)

    assert mean("disdain", "distinct_final_states") > mean("vic", "distinct_final_states")
    assert mean("disdain", "effective_skills") > mean("vic", "effective_skills")
