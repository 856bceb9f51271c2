"""RVIC presets: the open room with random starts (the RVIC paper's small experiment)."""

from armillary.algorithms.skills.presets import OPEN_ROOM, OPEN_ROOM_ENV
from armillary.core.presets import register

register(
    "rvic/open-room",
    {
        "algorithm": {"name": "rvic", "config": dict(OPEN_ROOM)},
        "env": OPEN_ROOM_ENV,
        "seeds": [0, 1, 2],
        "stop": {"env_steps": 600_000},
        "checkpoint": {"every_iterations": 50},
    },
    "RVIC in a 9x9 open room with random starts (N=8, T=5): skills that are displacements, not places.",
)

# Downstream use (the RVIC paper's test of skills): PPO as a meta-controller over frozen skills + primitives,
# reaching a random goal from a random start in the same room. Without `env.config.skills` (a library written
# by armillary.envs.skill_options.export_skill_library) it is the primitives-only control.
# benchmarks/skills_downstream.py runs the comparison RVIC skills vs VIC skills vs primitives.
register(
    "rvic/open-room-downstream",
    {
        "algorithm": {"name": "ppo", "config": {"lr": 3e-4, "gamma": 0.95, "train_batch_size": 1000, "minibatch_size": 125,
                                                "num_epochs": 4, "entropy_coeff": 0.01, "hidden_sizes": [128, 128]}},
        "env": {"name": "open-room-skill-options", "config": {"size": 9, "max_episode_steps": 30, "skills": None}},
        "seeds": [0, 1, 2],
        "stop": {"env_steps": 100_000},
        "checkpoint": {"every_iterations": 20},
    },
    "Goal reaching in the 9x9 open room with frozen skills (env.config.skills=<library>) + primitives as actions.",
)
