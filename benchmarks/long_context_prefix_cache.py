"""Shared-prefix KV-cache reuse vs independent per-cell forwards, side by side on the same cells.

    OMP_NUM_THREADS=1 python benchmarks/long_context_prefix_cache.py --lengths 1000,2000 --depths 10 --draws 3 \
        --out results/long_context/prefix_cache

Builds the cells of the `long-context/smollm2-niah` sweep for the given lengths (single needle at `depths` depths ×
`draws` draws, plus the needle-absent control; noise haystack) and plans them with the job's own `group_plan`,
then answers every cell twice in this one process: (a) `cached`: per (haystack, length) group, the shared prefix
is run once and each cell continues from a cropped copy of its KV cache, as a sweep worker does; (b)
`independent`: every cell's whole prompt from scratch (`--no-prefix-cache`). Both modes answer the same batches
(the draws of one depth, `--batch-size`, as the job does). The rounds alternate which mode goes first. It checks
that both give identical answers, and reports
the sweep time of each, the speed-up, and prompt tokens per second of each mode against a plain forward of the
model over one prompt of the same length (the same chunked prefill, no cache to reuse). The load average
(`uptime`) is recorded before and after: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from armillary.core.model_source import resolve_model
from armillary.algorithms.long_context import engine
from armillary.algorithms.long_context.job import group_plan, load_haystacks
from armillary.algorithms.long_context.tasks import Task, build_prompt, cell_grid

MAX_NEW_TOKENS = 26  # the job's cap for one asked needle (16 + 10)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_mode(answerer: engine.Answerer, prompts: dict, head: int, haystacks: dict, cached: bool,
             batch_size: int) -> tuple[float, dict]:
    """Seconds for the whole sweep in one mode (the job's plan for one worker), and each cell's answer tokens."""
    (plan,) = group_plan(list(prompts), prompts, head, haystacks, workers=1, use_prefix=cached, batch_size=batch_size)
    answers, current = {}, None
    started = time.perf_counter()
    for batch, key, prefix in plan:
        if key is not None and key != current:
            answerer.set_prefix(prefix)
            current = key
        generated = answerer.answer_batch([prompts[cell].ids for cell in batch],
                                          [prompts[cell].shared_prefix for cell in batch], MAX_NEW_TOKENS,
                                          use_prefix=cached)
        answers.update({cell.key: tokens for cell, tokens in zip(batch, generated)})
    return time.perf_counter() - started, answers


def plain_forward_seconds(answerer: engine.Answerer, ids: tuple[int, ...]) -> float:
    with torch.inference_mode():
        started = time.perf_counter()
        answerer._extend(ids, None)
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--lengths", default="1000,2000")
    parser.add_argument("--depths", type=int, default=10)
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="rounds of (cached, independent), alternating order")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=8, help="the job's --batch-size (1: one cell at a time)")
    parser.add_argument("--out", default="results/long_context/prefix_cache")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    lengths = [int(x) for x in args.lengths.split(",")]

    load_before = load_average()
    model, tokenizer = engine.load_model(resolve_model(args.model), engine.pick_device("cpu"))
    frame = engine.prompt_frame(tokenizer)
    haystacks, _ = load_haystacks(["noise"], tokenizer, max(lengths))
    haystack = haystacks["noise"]
    cells = cell_grid([Task.SINGLE, Task.ABSENT], ["noise"], lengths, args.depths, args.draws)
    prompts = {cell: build_prompt(cell, haystack, frame, 0, 1) for cell in cells}
    first_prompt = {length: next(p for c, p in prompts.items() if c.length == length) for length in lengths}
    answerer = engine.Answerer(model, tokenizer, chunk=args.chunk)

    rounds = []
    for index in range(args.rounds):
        order = [True, False] if index % 2 == 0 else [False, True]
        results = {}
        for cached in order:
            results["cached" if cached else "independent"] = run_mode(answerer, prompts, len(frame.head), haystacks,
                                                                      cached, args.batch_size)
        plain = {length: plain_forward_seconds(answerer, first_prompt[length].ids) for length in lengths}
        rounds.append({"cached_s": results["cached"][0], "independent_s": results["independent"][0],
                       "identical_answers": results["cached"][1] == results["independent"][1],
                       "plain_forward_s": plain, "order": ["cached" if c else "independent" for c in order]})
        print(json.dumps(rounds[-1]), flush=True)
    prompt_tokens = sum(len(p.ids) for p in prompts.values())
    cached_s = statistics.median(r["cached_s"] for r in rounds)
    independent_s = statistics.median(r["independent_s"] for r in rounds)
    plain = {length: statistics.median(r["plain_forward_s"][length] for r in rounds) for length in lengths}
    report = {
        "command": "OMP_NUM_THREADS=1 python benchmarks/long_context_prefix_cache.py " + " ".join(argv or sys.argv[1:]),
        "model": resolve_model(args.model).describe(), "threads": args.threads, "lengths": lengths,
        "depths": args.depths, "draws": args.draws, "batch_size": args.batch_size, "cells": len(cells),
        "prompt_tokens": prompt_tokens, "rounds": rounds,
        "cached_s": round(cached_s, 2), "independent_s": round(independent_s, 2),
        "speedup": round(independent_s / cached_s, 3),
        "identical_answers": all(r["identical_answers"] for r in rounds),
        "tokens_per_s": {"cached": round(prompt_tokens / cached_s, 1), "independent": round(prompt_tokens / independent_s, 1),
                         **{f"plain_forward_L{length}": round(length / plain[length], 1) for length in lengths}},
        "load_average_before": load_before, "load_average_after": load_average(),
        "torch": torch.__version__,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark.json").write_text(json.dumps(report, indent=2) + "\n")
    # The answer tokens (both modes gave these when identical_answers), to compare with a sweep's cell files.
    (out / "answers.json").write_text(json.dumps(results["cached"][1], indent=1, sort_keys=True) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "rounds"}, indent=2))
    return 0 if report["identical_answers"] else 1


if __name__ == "__main__":
    sys.exit(main())
