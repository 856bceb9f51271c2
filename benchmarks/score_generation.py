"""Generation throughput of SCoRe's rollout path (rollout.generate) against plain `model.generate`, in one run:
the same model, the same left-padded prompts, the same max_new_tokens, both with a KV cache.

    OMP_NUM_THREADS=1 python benchmarks/score_generation.py [--model runs/score/tiny-base] [--batch 64 256]

Greedy decoding is the like-for-like case: both produce exactly the same tokens (checked), so tokens/s compare the
same work. Sampling (temperature 1.0) is reported too; there each side counts the tokens it actually produced,
since rows stop at <eos> at different steps, and a batch runs until its longest row stops: each side's rate is its
tokens over its time, both summed over --repeats calls (fresh seeds), alternating the two paths so a noisy machine
(this one is shared) slows both alike. The goal of issue #6: rollout ≥ 0.90 × generate.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/score/tiny-base",
                        help="transformers folder; falls back to builtin:tiny-1digit-sized random weights if missing")
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--max-new-tokens", type=int, default=53)
    parser.add_argument("--turn", choices=["1", "2"], default="2", help="prompt of turn 1 (short) or turn 2 (long)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto", help="auto (cuda when present, else cpu), cpu, cuda …")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)

    import torch

    from armillary.algorithms.score.model import build_char_tokenizer, build_tiny_model, load_policy
    from armillary.algorithms.score.rollout import _left_pad, _prompt_ids, generate
    from armillary.algorithms.score.tasks.arithmetic import ArithmeticTask, solve

    torch.set_num_threads(args.threads)
    if (Path(args.model) / "config.json").is_file():
        model, tokenizer = load_policy(args.model)
        model_name = args.model
    else:  # no pre-trained base here: the default tiny architecture with random weights (same cost per token)
        tokenizer = build_char_tokenizer()
        tokenizer.padding_side = "left"
        model, model_name = build_tiny_model(tokenizer=tokenizer), "random tiny (TinyModelConfig defaults)"
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    model.to(device).eval()
    task = ArithmeticTask(3, 4)

    rows = []
    for batch in args.batch:
        problems = task.problems("test", batch)
        prompts = [task.first_turn_prompt(p) if args.turn == "1" else
                   task.second_turn_prompt(p, solve(p.metadata["a"], p.metadata["b"])) for p in problems]
        ids, attention = _left_pad(_prompt_ids(tokenizer, prompts), tokenizer.pad_token_id, device)

        seeds = itertools.count()

        def ours(greedy: bool):
            # A fresh seed per call, like plain's unseeded sampling: a batch runs until its longest row stops, so one
            # fixed seed would time one draw of that longest row over and over.
            out = generate(model, tokenizer, prompts, max_new_tokens=args.max_new_tokens, greedy=greedy, temperature=1.0,
                           generator=torch.Generator(device=device).manual_seed(next(seeds)))
            return out.token_ids, sum(len(t) for t in out.token_ids)

        def plain(greedy: bool):
            with torch.inference_mode():
                out = model.generate(input_ids=ids, attention_mask=attention, max_new_tokens=args.max_new_tokens,
                                     do_sample=not greedy, temperature=1.0 if not greedy else None, top_k=0 if not greedy else None,
                                     top_p=1.0 if not greedy else None, pad_token_id=tokenizer.pad_token_id,
                                     eos_token_id=tokenizer.eos_token_id, use_cache=True)
            new = out[:, ids.shape[1]:]
            token_ids = []
            for row in new.tolist():
                cut = row.index(tokenizer.eos_token_id) + 1 if tokenizer.eos_token_id in row else len(row)
                token_ids.append(row[:cut])
            return token_ids, sum(len(t) for t in token_ids)

        for mode, greedy in (("greedy", True), ("sample T=1", False)):
            ours(greedy), plain(greedy)  # warm-up
            times = {"rollout": [], "generate": []}
            tokens = {"rollout": [], "generate": []}
            outputs = {}
            for _ in range(args.repeats):
                for name, fn in (("rollout", ours), ("generate", plain)):
                    start = time.perf_counter()
                    token_ids, count = fn(greedy)  # ends in .tolist(): the device's work is done when it returns
                    times[name].append(time.perf_counter() - start)
                    tokens[name].append(count)
                    outputs[name] = token_ids
            if greedy and outputs["rollout"] != outputs["generate"]:
                raise SystemExit("greedy outputs differ between rollout.generate and model.generate: not the same work")
            # tokens produced over time taken, both summed over the repeats (sampled calls differ in length)
            rate = {name: sum(tokens[name]) / sum(times[name]) for name in times}
            row = {"batch": batch, "mode": mode, "tokens_rollout": round(statistics.mean(tokens["rollout"])),
                   "tokens_generate": round(statistics.mean(tokens["generate"])),
                   "tok_s_rollout": round(rate["rollout"]), "tok_s_generate": round(rate["generate"]),
                   "ratio": round(rate["rollout"] / rate["generate"], 3)}
            rows.append(row)
            print(json.dumps(row), flush=True)

    print(f"model: {model_name}; turn-{args.turn} prompts; max_new_tokens {args.max_new_tokens}; torch threads {args.threads}; "
          f"device {device}")
    print(f"{'batch':>5} {'mode':>10} {'rollout tok/s':>14} {'generate tok/s':>15} {'ratio':>6}")
    for r in rows:
        print(f"{r['batch']:>5} {r['mode']:>10} {r['tok_s_rollout']:>14} {r['tok_s_generate']:>15} {r['ratio']:>6}")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": model_name, "args": vars(args), "device": str(device), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
