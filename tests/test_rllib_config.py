"""One spec → one AlgorithmConfig; the resources profile never changes what is learned."""

import pytest

from armillary.platform.rllib_config import PROFILE_DEFAULTS, build_algorithm_config, resolved_resources
from armillary.platform.runner import _scheduler, param_space
from armillary.platform.spec import load_spec

SEMANTIC_FIELDS = ("lr", "gamma", "lambda_", "clip_param", "num_epochs", "minibatch_size", "entropy_coeff",
                   "vf_loss_coeff", "grad_clip", "model_config")


def _effective_batch(config) -> int:
    return config.train_batch_size_per_learner * max(1, config.num_learners)


@pytest.mark.parametrize("profile,overrides", [
    ("cluster-cpu", []),
    ("cluster-cpu", ["resources.num_learners=4", "resources.num_env_runners=32"]),
    ("cluster-gpu", ["resources.num_learners=2"]),
])
def test_profile_changes_resources_not_semantics(profile, overrides, monkeypatch):
    monkeypatch.setattr("armillary.platform.spec._has_gpu", lambda: True)
    laptop = build_algorithm_config(load_spec("ppo/cartpole"), seed=7)
    cluster = build_algorithm_config(load_spec("ppo/cartpole", [f"resources.profile={profile}", *overrides]), seed=7)
    for field in SEMANTIC_FIELDS:
        assert getattr(laptop, field) == getattr(cluster, field), field
    assert _effective_batch(laptop) == _effective_batch(cluster) == 2000
    assert laptop.seed == cluster.seed == 7
    assert (laptop.num_env_runners, laptop.num_learners) != (cluster.num_env_runners, cluster.num_learners)


def test_explicit_resources_override_the_profile():
    spec = load_spec("ppo/cartpole", ["resources.num_env_runners=0", "resources.num_envs_per_env_runner=3"])
    resources = resolved_resources(spec)
    assert resources["num_env_runners"] == 0 and resources["num_envs_per_env_runner"] == 3
    assert resources["num_learners"] == PROFILE_DEFAULTS["local-cpu"]["num_learners"]
    config = build_algorithm_config(spec, seed=0)
    assert config.num_env_runners == 0 and config.num_envs_per_env_runner == 3


def test_batch_that_does_not_split_over_learners_is_refused():
    with pytest.raises(ValueError, match="does not split evenly"):
        build_algorithm_config(load_spec("ppo/cartpole", ["resources.profile=cluster-cpu", "resources.num_learners=3"]), 0)


def test_env_is_registered_under_its_armillary_name():
    config = build_algorithm_config(load_spec("ppo/cartpole"), seed=0)
    assert config.env == "armillary/CartPole-v1"
    from ray.tune.registry import ENV_CREATOR, _global_registry

    env = _global_registry.get(ENV_CREATOR, config.env)(config.env_config)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4,)


def test_seeds_and_search_space_become_tune_axes():
    spec = load_spec("ppo/cartpole", ["seeds=[0,1,2]", "tune.search_space={algorithm.config.lr: {grid: [1.0e-3, 1.0e-4]}}"])
    space = param_space(spec, {"uri": "x"})
    assert space["seed"] == {"grid_search": [0, 1, 2]}
    assert space["overrides"]["algorithm.config.lr"] == {"grid_search": [1e-3, 1e-4]}
    assert space["spec"]["name"] == "ppo/cartpole"


def test_schedulers():
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining

    assert isinstance(_scheduler(load_spec("ppo/cartpole")), FIFOScheduler)
    asha = _scheduler(load_spec("ppo/cartpole", ["tune.scheduler.kind=asha", "tune.scheduler.max_t=20"]))
    assert isinstance(asha, ASHAScheduler)
    pbt = _scheduler(load_spec("ppo/cartpole", ["tune.scheduler.kind=pbt", "checkpoint.every_iterations=5",
                                                "tune.search_space={algorithm.config.lr: {loguniform: [1.0e-5, 1.0e-3]}, algorithm.config.num_epochs: {grid: [2, 4]}}"]))
    assert isinstance(pbt, PopulationBasedTraining)
    assert pbt._hyperparam_mutations["overrides"]["algorithm.config.num_epochs"] == [2, 4]
    assert pbt._synch  # every trial waits at the perturbation, so the copied checkpoint is of that iteration
