"""Restructuring must not change behaviour: every preset resolves to the same spec as in the committed snapshot."""

import pytest
from resolved_specs import SNAPSHOT, file_name, render

from armillary.platform import presets


def test_the_snapshot_names_exactly_the_registered_presets():
    assert sorted(p.name for p in SNAPSHOT.glob("*.yaml")) == sorted(file_name(n) for n in presets.names())


@pytest.mark.parametrize("name", presets.names())
def test_preset_resolves_byte_for_byte_as_in_the_snapshot(name):
    assert render(name) == (SNAPSHOT / file_name(name)).read_text(), (
        f"{name} now resolves differently from tests/data/resolved_specs/{file_name(name)}; if the change is "
        "intended, rewrite the snapshot with `python tests/resolved_specs.py` and say why in the commit")
