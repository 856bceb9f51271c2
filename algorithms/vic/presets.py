"""VIC presets: the DISDAIN baseline on small Four Rooms, and the RVIC comparison on the open room."""

from armillary.algorithms.disdain.presets import FOUR_ROOMS_EXPERIMENT, FOUR_ROOMS_SMALL
from armillary.platform.presets import register

_VIC_FOUR_ROOMS = {k: v for k, v in FOUR_ROOMS_SMALL.items() if k not in ("ensemble_size", "bonus_weight")}

register(
    "vic/four-rooms",
    {
        "algorithm": {"name": "vic", "config": {**_VIC_FOUR_ROOMS, "clip_skill_reward_at_zero": True}},
        **FOUR_ROOMS_EXPERIMENT,
    },
    "VIC (one discriminator, no bonus) on DISDAIN's small Four Rooms: the E=1, λ=0 baseline.",
)

# Shared with rvic/open-room so the two differ only in the reward.
OPEN_ROOM = {
    "num_skills": 8, "skill_length": 5, "gamma": 0.99, "train_batch_size": 2000, "minibatch_size": 250,
    "num_epochs": 4, "lr": 3e-4, "entropy_coeff": 0.01, "discriminator_lr": 2e-3,
    "discriminator_hidden_sizes": [128, 128], "hidden_sizes": [128, 128], "evaluation_interval": 10,
}
OPEN_ROOM_ENV = {"name": "open-room", "config": {"size": 9, "max_episode_steps": 5, "start": "random", "observation": "xy"}}

register(
    "vic/open-room",
    {
        "algorithm": {"name": "vic", "config": dict(OPEN_ROOM)},
        "env": OPEN_ROOM_ENV,
        "seeds": [0, 1, 2],
        "stop": {"env_steps": 600_000},
        "checkpoint": {"every_iterations": 50},
    },
    "VIC with random starts in a 9x9 open room, q(z | s_0, s_f): the baseline RVIC is compared with.",
)
