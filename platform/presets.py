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
    # A job preset runs a module's `main(argv)` (a fine-tuning or evaluation job) instead of an RLlib experiment:
    # `armillary run NAME key=value` → main([*job_args, "--key", "value"]); with --smoke, smoke_args replace
    # job_args (tiny sizes, and outputs that never overwrite the real run's).
    job: str | None = None
    job_args: tuple[str, ...] = ()
    smoke_args: tuple[str, ...] = ()

    def job_argv(self, overrides: list[str] | tuple[str, ...] = (), smoke: bool = False) -> list[str]:
        argv = list(self.smoke_args if smoke else self.job_args)
        for text in overrides:
            key, sep, value = text.partition("=")
            if not sep or not key or "." in key:
                raise ValueError(f"override {text!r}: a job preset takes option=value (e.g. size=medium), "
                                 f"the options of `python -m {self.job} --help`")
            argv += ["--" + key.replace("_", "-"), value]
        return argv


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
        "armillary.algorithms.score.presets",
        "armillary.algorithms.clip_reward.presets",
        "armillary.algorithms.long_context.presets",
    ),
)


def register(name: str, spec: dict[str, Any], description: str, *, cluster_scale: bool = False) -> Preset:
    preset = Preset(name=name, spec={"name": name, **spec}, description=description, cluster_scale=cluster_scale)
    return _CATALOG.add(name, preset)


def register_job(name: str, module: str, args: list[str], description: str, *, smoke_args: list[str] = ()) -> Preset:
    preset = Preset(name=name, spec={}, description=description, job=module, job_args=tuple(args),
                    smoke_args=tuple(smoke_args))
    return _CATALOG.add(name, preset)


def names() -> list[str]:
    return _CATALOG.names()


def get(name: str) -> Preset:
    return _CATALOG.get(name)


def experiment_names() -> list[str]:
    """The presets that are experiment specs (not jobs)."""
    return [name for name in names() if get(name).job is None]


def spec_dict(name: str) -> dict[str, Any]:
    """A fresh copy of a preset's spec dict, safe to modify."""
    preset = get(name)
    if preset.job is not None:
        raise KeyError(f"{name!r} is a job preset (python -m {preset.job}), not an experiment spec: run it with `armillary run {name}`")
    return copy.deepcopy(preset.spec)
