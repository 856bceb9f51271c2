"""The one place that turns an experiment spec into an RLlib AlgorithmConfig (new API stack).

The spec's resources profile decides where work runs (env runners, vector envs, learners, GPUs); the
algorithm entry decides what is learned. The two never mix: the algorithm sees only the number of
learners, to split its total batch evenly, so the effective batch is the same on every profile.
"""

from __future__ import annotations

import functools
import os
from typing import Any

# `import ray.rllib` imports dm_control, which otherwise looks for a display (GLFW) and warns.
os.environ.setdefault("MUJOCO_GL", "egl")

from armillary.algorithms import registry as algorithms  # noqa: E402
from armillary.envs import registry as environments  # noqa: E402
# The profiles' defaults live with the spec, which checks the algorithm's batches against them.
from armillary.platform.spec import PROFILE_DEFAULTS, ExperimentSpec, resolved_resources  # noqa: E402, F401

def _make_env(name: str, env_config: dict[str, Any]):
    # RLlib passes an EnvContext (a dict plus worker/vector indices); only the options are ours.
    return environments.make(name, dict(env_config))


def register_env_with_ray(name: str) -> str:
    """Register an Armillary environment under `armillary/<name>` so every Ray worker can build it."""
    from ray.tune.registry import register_env

    env_id = environments.rllib_env_id(name)
    register_env(env_id, functools.partial(_make_env, name))
    return env_id


def _torch_threads_for_main_process(algorithm, **_) -> None:
    """Give torch in the algorithm's own process only the CPUs that process was granted."""
    import torch

    torch.set_num_threads(max(1, int(algorithm.config.num_cpus_for_main_process)))


def build_algorithm_config(spec: ExperimentSpec, seed: int):
    """The RLlib AlgorithmConfig for one trial of `spec` with `seed`."""
    entry = algorithms.get(spec.algorithm.name)
    env_entry = environments.get(spec.env.name)
    resources = resolved_resources(spec)

    config = entry.config_class()()
    config.framework("torch")
    config.environment(env=register_env_with_ray(spec.env.name), env_config=spec.env.config.model_dump())
    config.env_runners(
        num_env_runners=resources["num_env_runners"],
        num_envs_per_env_runner=resources["num_envs_per_env_runner"],
        num_cpus_per_env_runner=resources["num_cpus_per_env_runner"],
    )
    config.learners(num_learners=resources["num_learners"], num_gpus_per_learner=resources["num_gpus_per_learner"])
    config.debugging(seed=seed)
    # The local learner (and, with 0 env runners, the sampler) runs in the algorithm's process. Ray caps a
    # worker's threads at its CPUs; a plain driver gets torch's default (every core), which oversubscribes a
    # small machine: PPO's learner update went from 0.5 s to 9 s per iteration on the shared 2-core box.
    config.callbacks(on_algorithm_init=_torch_threads_for_main_process)
    return entry.apply(config, spec.algorithm.config, env_entry, resources["num_learners"])
