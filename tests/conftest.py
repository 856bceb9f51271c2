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


@pytest.fixture(scope="module")
def local_ray():
    """A fresh local Ray for one test module (2 CPUs, one torch thread per worker); Serve is shut down with it."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"MUJOCO_GL": "egl", "OMP_NUM_THREADS": "1"}})
    try:
        yield
    finally:
        from ray import serve

        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="session")
def tiny_clip_model(tmp_path_factory) -> Path:
    """An untrained tiny CLIP model at the language-goal frame size (48 px), saved in the standard format: what
    reward tests serve and load where the trained models of `clip-reward/fit` do not exist (a fresh clone)."""
    from armillary.algorithms.clip_reward.models import build_clip, build_tokenizer, save_clip
    from armillary.envs.language_goals import LanguageGoalOptions, World

    tokenizer = build_tokenizer(World(LanguageGoalOptions()).vocabulary())
    return save_clip(build_clip("tiny", 48, 16, len(tokenizer), seed=0), tokenizer, tmp_path_factory.mktemp("clip") / "tiny")
