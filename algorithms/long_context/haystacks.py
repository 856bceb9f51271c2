"""Haystack sources, all offline and reproducible.

- `noise`: RULER's repeated-noise haystack (five short sentences repeated).
- `pyref`: running prose from the Python Language Reference as it ships in the standard library
  (`pydoc_data.topics`, the text `help()` shows), under the PSF License Version 2. Paragraphs of code, grammar
  and tables are dropped (tasks.prose_paragraphs); the rest is joined in sorted topic order and repeated if a
  context needs more. Its sha256 is recorded with every run, since it changes with the Python version.
- `file:PATH`: the prose paragraphs of any UTF-8 text file (e.g. a Project Gutenberg book you have locally).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from armillary.algorithms.long_context.tasks import noise_haystack_text, prose_paragraphs

BUILT_IN = ("noise", "pyref")


def _python_reference_text() -> str:
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


def source_text(name: str) -> str:
    """The raw text of a haystack source (before tokenisation); a ValueError if unknown, missing or empty."""
    if name == "noise":
        return noise_haystack_text(400_000)
    if name == "pyref":
        raw = _python_reference_text()
    elif name.startswith("file:"):
        path = Path(name.removeprefix("file:")).expanduser()
        if not path.is_file():
            raise ValueError(f"--haystacks {name}: no file at {path}")
        raw = path.read_text(encoding="utf-8")
    else:
        raise ValueError(f"--haystacks: unknown haystack {name!r}; expected one of {', '.join(BUILT_IN)} or file:PATH")
    paragraphs = prose_paragraphs(raw)
    if not paragraphs:
        raise ValueError(f"--haystacks {name}: the source has no paragraph of prose (empty, or only code/tables)")
    return " ".join(paragraphs)


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def repeated_to(text: str, min_chars: int) -> str:
    """The text repeated (whole) until it has at least min_chars characters."""
    copies = max(1, -(-min_chars // max(1, len(text))))
    return " ".join([text] * copies)
