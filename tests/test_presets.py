"""Every registered preset, cluster-scale ones included, builds and trains here on smoke sizes."""

import math

import pytest

from armillary.platform import presets
from armillary.platform.metrics import ENV_STEPS, summarize
from armillary.platform.rllib_config import build_algorithm_config
from armillary.platform.spec import load_spec

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"MUJOCO_GL": "egl"}})
    yield
    ray.shutdown()


def test_the_issue_presets_exist():
    assert {"ppo/cartpole", "ppo/atari-pong", "ppo/dmc-walker-walk", "dqn/cartpole"} <= set(presets.names())


@pytest.mark.parametrize("name", presets.names())
def test_preset_builds_and_trains_on_smoke_sizes(name, local_ray):
    spec = load_spec(name, smoke=True)
    algo = build_algorithm_config(spec, seed=0).build_algo()
    try:
        before = {k: v.detach().clone() for k, v in algo.get_module().state_dict().items()}
        summary = {}
        for _ in range(2):
            summary = summarize(algo.train())
        assert summary[ENV_STEPS] > 0
        after = algo.get_module().state_dict()
        changed = [k for k, v in before.items() if v.dtype.is_floating_point and not (after[k] == v).all()]
        assert changed, f"{name}: no parameter changed after two iterations"
        assert all(math.isfinite(v) for v in summary.values() if not math.isnan(v))
    finally:
        algo.stop()
