import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """An isolated runs folder and MLflow store for one test."""
    folder = tmp_path / "runs"
    monkeypatch.setenv("ARMILLARY_RUNS_DIR", str(folder))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return folder
