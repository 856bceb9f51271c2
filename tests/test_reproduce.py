"""One command per paper result: each `<method>/reproduce` preset's smoke runs every arm × seed as one Tune run and
ends in the comparison (table, plot, per-seed results, spec, command, wall time), in the run folder only."""

import json
import os
import subprocess
import sys

import pytest

from armillary.platform import presets

pytestmark = pytest.mark.ray

REPRODUCE = sorted(n for n in presets.experiment_names() if presets.get(n).spec.get("arms"))
# Every comparison's smoke runs all its arms (~100 s for the cheapest on 2 cores): slow, to keep the default suite
# under 15 minutes. The default suite covers arms through tests/test_spec.py and tests/test_report.py.
COMPARISON = {"table.md", "plot.png", "profiles.png", "final_scores.json", "per_seed.csv", "spec.yaml", "command.txt",
              "run.json"}


@pytest.mark.slow
@pytest.mark.parametrize("name", REPRODUCE)
def test_reproduce_smoke_writes_the_comparison_of_every_arm(name, tmp_path):
    env = dict(os.environ, ARMILLARY_RUNS_DIR=str(tmp_path / "runs"), ARMILLARY_RESULTS_DIR=str(tmp_path / "results"),
               OMP_NUM_THREADS="1", ARMILLARY_CACHE_DIR=os.environ.get("ARMILLARY_CACHE_DIR", str(tmp_path / "cache")))
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("RAY_ADDRESS", None)
    out = subprocess.run([sys.executable, "-m", "armillary.platform.cli", "run", name, "--smoke", "--no-dashboard"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    [run] = [p.parent for p in (tmp_path / "runs").glob("*/*/COMPLETED")]
    comparison = run / "comparison"
    assert {p.name for p in comparison.iterdir()} == COMPARISON, out.stdout[-3000:] + out.stderr[-3000:]
    arms = [arm["name"] for arm in presets.get(name).spec["arms"]]
    finals = json.loads((comparison / "final_scores.json").read_text())
    assert sorted(finals) == sorted(arms)  # every arm ran (one smoke seed each) and has a final score
    table = (comparison / "table.md").read_text()
    assert all(f"| {arm} | 1 |" in table for arm in arms) and "P(X > Y)" in table
    assert f"run {name} --smoke" in (comparison / "command.txt").read_text()
    assert json.loads((comparison / "run.json").read_text())["wall_s"] > 0
    assert not (tmp_path / "results").exists()  # a smoke never replaces a kept outcome
