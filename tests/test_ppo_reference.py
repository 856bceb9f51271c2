"""The benchmark's reference PPO (benchmarks/ppo_reference.py) is a real PPO: it learns CartPole quickly.

A uniformly random CartPole policy averages ~22; the reference reaches well above 100 within 48k env steps
(about 10-15 s on the shared 2-core machine).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "ppo_reference.py"


def _reference():
    spec = importlib.util.spec_from_file_location("ppo_reference", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


def test_reference_ppo_learns_cartpole():
    ppo = _reference()
    args = ppo.Args(env_id="CartPole-v1", seed=0, total_steps=48_000)  # 12 iterations of 4000 steps
    result = ppo.train(args)
    returns = result["episode_returns"]
    assert result["env_steps"] == 48_000
    assert result["seconds"] < 60
    early, late = np.mean(returns[:20]), np.mean(returns[-20:])
    assert early < 40, f"the untrained policy should be about random (~22), got {early:.1f}"
    assert late > 100, f"mean return of the last 20 episodes {late:.1f}: not learning (random is ~22)"
