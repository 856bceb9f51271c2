"""The resolved spec of every preset, as `armillary validate NAME --show` prints it, written to one file per preset.

A restructuring must not change what any preset runs: tests/test_resolved_specs.py compares today's resolved
specs with the snapshot in tests/data/resolved_specs/ byte for byte. Each file holds the spec hash and resolved
YAML of the preset as registered and of its `--smoke` form (with no GPU visible, so the snapshot does not depend
on the machine); a job preset's file holds the module and the argument lists it runs.

    python tests/resolved_specs.py            # rewrite the snapshot (only for an intended change of a preset)
"""

from __future__ import annotations

import sys
from pathlib import Path
from unittest import mock

SNAPSHOT = Path(__file__).resolve().parent / "data" / "resolved_specs"


def file_name(preset: str) -> str:
    return preset.replace("/", "__") + ".yaml"


def render(preset: str) -> str:
    """What a preset resolves to, in the text `armillary validate NAME --show` prints (plus its smoke form)."""
    from armillary.platform import presets, spec

    entry = presets.get(preset)
    if entry.job is not None:
        return (f"job: python -m {entry.job}\n"
                f"args: {list(entry.job_argv())}\n"
                f"smoke_args: {list(entry.job_argv(smoke=True))}\n")
    parts = []
    with mock.patch.object(spec, "_has_gpu", return_value=False):
        for smoke in (False, True):
            resolved = spec.load_spec(preset, smoke=smoke)
            parts.append(f"# {'--smoke' if smoke else 'as registered'}: spec hash {resolved.spec_hash()}\n"
                         f"{resolved.to_yaml()}")
    return "".join(parts)


def main() -> int:
    from armillary.platform import presets

    SNAPSHOT.mkdir(parents=True, exist_ok=True)
    for old in SNAPSHOT.glob("*.yaml"):
        old.unlink()
    for name in presets.names():
        (SNAPSHOT / file_name(name)).write_text(render(name))
    print(f"wrote {len(presets.names())} resolved specs to {SNAPSHOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
