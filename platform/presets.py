"""The presets this platform knows, by name: the lookups over armillary.core.presets' catalog.

Each algorithm folder registers its presets in its `presets.py` (armillary.core.presets.register); the
modules below are imported on the first lookup.
"""

from __future__ import annotations

import copy
from typing import Any

from armillary.core.presets import CATALOG, Preset

CATALOG.include(
    (
        "armillary.algorithms.ppo.presets",
        "armillary.algorithms.dqn.presets",
        "armillary.algorithms.vic.presets",
        "armillary.algorithms.disdain.presets",
        "armillary.algorithms.rvic.presets",
        "armillary.algorithms.domino.presets",
        "armillary.algorithms.score.presets",
        "armillary.algorithms.clip_reward.presets",
        "armillary.algorithms.self_consistency.presets",
        "armillary.algorithms.long_context.presets",
    )
)


def names() -> list[str]:
    return CATALOG.names()


def get(name: str) -> Preset:
    return CATALOG.get(name)


def experiment_names() -> list[str]:
    """The presets that are experiment specs (not jobs)."""
    return [name for name in names() if get(name).job is None]


def spec_dict(name: str) -> dict[str, Any]:
    """A fresh copy of a preset's spec dict, safe to modify."""
    preset = get(name)
    if preset.job is not None:
        raise KeyError(f"{name!r} is a job preset (python -m {preset.job}), not an experiment spec: run it with `armillary run {name}`")
    return copy.deepcopy(preset.spec)
