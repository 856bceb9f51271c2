"""Built-in quick reward models, for smoke runs on a machine without the `clip-reward/fit` model.

`builtin:tiny-untrained` is a tiny CLIP at the language-goal frame size (48 px, 16 px patches) with the world's
tokenizer, randomly initialised and saved in the standard format: a smoke run then goes the real way (a Serve
deployment that loads a saved folder with from_pretrained, batched requests, the reward callback, PPO updates),
but its rewards mean nothing. It is built once per machine (about a second) into a cache folder. No Ray.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path

BUILTIN_PREFIX = "builtin:"
BUILTIN_MODELS = {"tiny-untrained": "v1"}  # name → version (bump it when the recipe changes)


def cache_root() -> Path:
    return Path(os.environ.get("ARMILLARY_CACHE_DIR", Path.home() / ".cache" / "armillary")) / "clip_reward"


def check_builtin(source: str) -> None:
    name = source[len(BUILTIN_PREFIX):]
    if name not in BUILTIN_MODELS:
        raise ValueError(f"algorithm.config.reward_model.model: unknown built-in model {source!r}; known: "
                         f"{', '.join(BUILTIN_PREFIX + n for n in BUILTIN_MODELS)}")


def resolve_model(source: str) -> str:
    """A loadable model source: a built-in name becomes its cache folder (built on first use); others pass through."""
    if not source.startswith(BUILTIN_PREFIX):
        return source
    check_builtin(source)
    name = source[len(BUILTIN_PREFIX):]
    folder = cache_root() / f"{name}-{BUILTIN_MODELS[name]}"
    if (folder / "config.json").is_file():
        return str(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{name}.lock", "w") as lock:  # one builder per machine
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "config.json").is_file():
            scratch = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{name}-"))
            try:
                _build_untrained(scratch)
                os.replace(scratch, folder)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
    return str(folder)


def _build_untrained(out: Path) -> None:
    from armillary.algorithms.clip_reward.models import build_clip, build_tokenizer, save_clip
    from armillary.envs.language_goals import LanguageGoalOptions, World

    world = World(LanguageGoalOptions())
    tokenizer = build_tokenizer(world.vocabulary())
    save_clip(build_clip("tiny", world.frame_shape[0], 16, len(tokenizer), seed=0), tokenizer, out)
