"""A named catalog of entries (algorithms, environments, presets), filled by importing its modules.

Lookup fails with the registered names and close matches, so a typo in a spec reads as one. The
modules are imported on first use, keeping `import armillary...` cheap and free of Ray. A catalog
names its modules by string; a layer above may add its own (`include`), so a lower layer never
names a module above it.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Generic, TypeVar

Entry = TypeVar("Entry")


class Catalog(Generic[Entry]):
    def __init__(self, kind: str, modules: tuple[str, ...]):
        self.kind = kind
        self._modules = modules
        self._entries: dict[str, Entry] = {}
        self._loaded = False

    def add(self, name: str, entry: Entry) -> Entry:
        if name in self._entries and self._entries[name] is not entry:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def include(self, modules: tuple[str, ...]) -> None:
        """Also import these modules (by a layer above the catalog's own) before the next lookup."""
        self._modules += tuple(m for m in modules if m not in self._modules)
        self._loaded = False

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._modules:
                importlib.import_module(module)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def get(self, name: str) -> Entry:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise KeyError(f"unknown {self.kind} {name!r}{hint}; registered: {', '.join(sorted(self._entries))}") from None
