"""Named experiment presets: partial experiment specs registered under `<algorithm>/<setting>`.

A preset is a plain dict in the experiment-spec shape; YAML files and command-line overrides are
layered on top of it, and the result is validated as a whole (armillary.platform.spec). Each algorithm
folder registers its own presets in its `presets.py` with `register`/`register_job` from here; the
lookups (and the list of modules that register presets) are armillary.platform.presets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from armillary.core.catalog import Catalog


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
    # An experiment preset's own `--smoke` layer, merged over the algorithm's and the environment's smoke sizes where
    # those are not small enough for this preset (e.g. Pong's 64 skills of 32 steps): spec fields, nested.
    smoke: dict[str, Any] = field(default_factory=dict)

    def job_argv(self, overrides: list[str] | tuple[str, ...] = (), smoke: bool = False) -> list[str]:
        argv = list(self.smoke_args if smoke else self.job_args)
        for text in overrides:
            key, sep, value = text.partition("=")
            if not sep or not key or "." in key:
                raise ValueError(f"override {text!r}: a job preset takes option=value (e.g. size=medium), "
                                 f"the options of `python -m {self.job} --help`")
            argv += ["--" + key.replace("_", "-"), value]
        return argv


# Filled by the modules armillary.platform.presets includes (imported on first lookup).
CATALOG: Catalog[Preset] = Catalog("preset", ())


def register(name: str, spec: dict[str, Any], description: str, *, cluster_scale: bool = False,
             smoke: dict[str, Any] | None = None) -> Preset:
    preset = Preset(name=name, spec={"name": name, **spec}, description=description, cluster_scale=cluster_scale,
                    smoke=dict(smoke or {}))
    return CATALOG.add(name, preset)


def register_job(name: str, module: str, args: list[str], description: str, *, smoke_args: list[str] = ()) -> Preset:
    preset = Preset(name=name, spec={}, description=description, job=module, job_args=tuple(args),
                    smoke_args=tuple(smoke_args))
    return CATALOG.add(name, preset)
