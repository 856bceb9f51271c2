"""Built-in quick models: tiny policies made in seconds, for smoke runs and tests on a machine without
runs/score/tiny-base (which takes ~14 minutes to pre-train; `python -m armillary.algorithms.score.pretrain`).

`builtin:tiny-1digit` is a 2-layer, 64-wide Llama model SFT-trained for a few hundred steps on single-digit
addition in the arithmetic task's format (turn-1 examples, and turn-2 examples that repeat a correct first
attempt, as the real pre-training job does). It answers some problems right and some wrong when sampled,
which is what an RL smoke run needs: an untrained model never earns a reward, so REINFORCE has no gradient
and a smoke run could not show that the weights move. It is built once per machine into a cache folder and
then loaded like any other model, with `from_pretrained` from that folder. No Ray.
"""

from __future__ import annotations

import fcntl
import os
import random
import shutil
import tempfile
from pathlib import Path

import torch

from armillary.algorithms.score.config import BUILTIN_MODELS, BUILTIN_PREFIX


def cache_root() -> Path:
    return Path(os.environ.get("ARMILLARY_CACHE_DIR", Path.home() / ".cache" / "armillary")) / "score"


def resolve_model(source: str) -> str:
    """A loadable model source: built-in names become their (built on first use) cache folder; others pass through."""
    if not source.startswith(BUILTIN_PREFIX):
        return source
    name = source[len(BUILTIN_PREFIX):]
    if name not in BUILTIN_MODELS:
        raise ValueError(f"model: unknown built-in model {source!r}; known: {', '.join(BUILTIN_PREFIX + n for n in BUILTIN_MODELS)}")
    version, digits, steps = BUILTIN_MODELS[name]
    folder = cache_root() / f"{name}-{version}"
    if (folder / "config.json").is_file():
        return str(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # One builder per machine: concurrent trials wait for the first one instead of training the same model twice.
    with open(folder.parent / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "config.json").is_file():
            scratch = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{name}-"))
            try:
                build_quick_model(scratch, digits=digits, steps=steps)
                os.replace(scratch, folder)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
    return str(folder)


def build_quick_model(out: str | Path, *, digits: int = 1, steps: int = 240, seed: int = 0, batch_size: int = 32) -> Path:
    """SFT a 2-layer model on `digits`-digit addition for `steps` steps (about 8 s on one CPU thread) and save it."""
    from armillary.algorithms.score.model import TinyModelConfig, build_char_tokenizer, build_tiny_model, save_policy
    from armillary.algorithms.score.tasks.base import Problem
    from armillary.algorithms.score.tasks.arithmetic import ArithmeticTask, solve, split_of

    tokenizer = build_char_tokenizer()
    model = build_tiny_model(TinyModelConfig(hidden_size=64, intermediate_size=128, num_layers=2, num_heads=2,
                                             max_positions=256), tokenizer, seed=seed)
    task = ArithmeticTask(min_digits=digits, max_digits=digits, seed=seed)
    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def batch(count: int, second_turn: bool):
        rows, labels = [], []
        while len(rows) < count:
            a, b = task._operand(rng), task._operand(rng)
            if split_of(f"{a}+{b}") != "train":  # held-out problems are never trained on
                continue
            p = Problem(problem_id="", question=f"{a}+{b}", answer=str(a + b), metadata={"a": a, "b": b})
            target = solve(a, b)
            prompt = task.second_turn_prompt(p, target) if second_turn else task.first_turn_prompt(p)
            prompt_ids = tokenizer(prompt)["input_ids"]
            target_ids = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            rows.append(prompt_ids + target_ids)
            labels.append([-100] * len(prompt_ids) + target_ids)
        width = max(map(len, rows))
        ids = torch.full((count, width), tokenizer.pad_token_id)
        target = torch.full((count, width), -100)
        attention = torch.zeros((count, width), dtype=torch.long)
        for i, (row, label) in enumerate(zip(rows, labels)):
            ids[i, : len(row)], target[i, : len(row)], attention[i, : len(row)] = torch.tensor(row), torch.tensor(label), 1
        return dict(input_ids=ids, attention_mask=attention, labels=target)

    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for step in range(1, steps + 1):
            optimizer.zero_grad(set_to_none=True)
            model(**batch(batch_size, second_turn=False)).loss.backward()
            if step % 2 == 0:
                model(**batch(batch_size // 2, second_turn=True)).loss.backward()
            optimizer.step()
    model.eval()
    return save_policy(model, tokenizer, out)
