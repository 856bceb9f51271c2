"""VIC presets: the DISDAIN baseline on small Four Rooms, and the RVIC comparison on the open room."""

from armillary.algorithms.skills.presets import (
    FOUR_ROOMS_EXPERIMENT,
    FOUR_ROOMS_SMALL,
    OPEN_ROOM,
    OPEN_ROOM_ENV,
)
from armillary.core.presets import register

_VIC_FOUR_ROOMS = {k: v for k, v in FOUR_ROOMS_SMALL.items() if k not in ("ensemble_size", "bonus_weight")}

register(
    "vic/four-rooms",
    {
        "algorithm": {"name": "vic", "config": {**_VIC_FOUR_ROOMS, "clip_skill_reward_at_zero": True}},
        **FOUR_ROOMS_EXPERIMENT,
    },
    "VIC (one discriminator, no bonus) on DISDAIN's small Four Rooms: the E=1, λ=0 baseline.",
)

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
