"""Named experiment presets: partial experiment specs registered under `<algorithm>/<setting>`.

A preset is a plain dict in the experiment-spec shape; YAML files and command-line overrides are
layered on top of it, and the result is validated as a whole (armillary.platform.spec). Each algorithm
folder registers its own presets in its `presets.py`; the catalog below imports them on first use.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from armillary.platform.catalog import Catalog


@dataclass(frozen=True)
class Preset:
    name: str
    spec: dict[str, Any]
    description: str
    # Cluster-scale presets still build and run a few iterations locally, but their full run is a cluster job.
    cluster_scale: bool = False


# Modules whose import registers presets (imported on first lookup).
_CATALOG: Catalog[Preset] = Catalog(
    "preset",
    (
        "armillary.algorithms.ppo.presets",
        "armillary.algorithms.dqn.presets",
        "armillary.algorithms.vic.presets",
        "armillary.algorithms.disdain.presets",
        "armillary.algorithms.rvic.presets",
        "armillary.algorithms.domino.presets",
    ),
)


def register(name: str, spec: dict[str, Any], description: str, *, cluster_scale: bool = False) -> Preset:
    preset = Preset(name=name, spec={"name": name, **spec}, description=description, cluster_scale=cluster_scale)
    return _CATALOG.add(name, preset)


def names() -> list[str]:
    return _CATALOG.names()


def get(name: str) -> Preset:
    return _CATALOG.get(name)


def spec_dict(name: str) -> dict[str, Any]:
    """A fresh copy of a preset's spec dict, safe to modify."""
    return copy.deepcopy(get(name).spec)
