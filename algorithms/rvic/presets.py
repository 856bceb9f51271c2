"""RVIC presets: the open room with random starts (the RVIC paper's small experiment)."""

from armillary.algorithms.vic.presets import OPEN_ROOM, OPEN_ROOM_ENV
from armillary.platform.presets import register

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
