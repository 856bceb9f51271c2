"""Score any SCoRe policy on any task: greedy two-turn episodes on held-out problems → Acc@t1, Acc@t2, Δ, Δi→c,
Δc→i and the changed-answer rate.

    python -m armillary.algorithms.score.evaluate --model runs/score/tiny-base --task arithmetic --problems 500
    python -m armillary.algorithms.score.evaluate --model <trial>/checkpoint_000009 --task arithmetic
    python -m armillary.algorithms.score.evaluate --model <trial>/export/figures/model --task math-jsonl --path data.jsonl
    python -m armillary.algorithms.score.evaluate --model runs/score/tiny-base --task humaneval --problems 20

--model takes a transformers folder, a hub name, a built-in quick model (builtin:tiny-1digit), or an RLlib
checkpoint of the `score` algorithm (a folder holding learner_group/; the policy's weights are read from it
without starting Ray). --mlflow-uri (and --experiment) log the figures and the arguments as one MLflow run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # unpickling a checkpoint's module class imports RLlib (→ dm_control)

TASKS = {"arithmetic": "arithmetic", "math-jsonl": "math_jsonl", "humaneval": "humaneval"}
MODULE_STATE = Path("learner_group") / "learner" / "rl_module" / "default_policy"


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
    parser.add_argument("--path", help="math-jsonl: the JSONL file")
    parser.add_argument("--min-digits", type=int, default=3, help="arithmetic: fewest digits of an operand")
    parser.add_argument("--max-digits", type=int, default=4, help="arithmetic: most digits of an operand")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: 53 for arithmetic, 512 otherwise")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--mlflow-uri", help="log the figures to this MLflow tracking URI")
    parser.add_argument("--experiment", default="score/evaluate", help="MLflow experiment name")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.problems < 1:
        parser.error(f"--problems: must be ≥ 1, got {args.problems}")
    if args.task == "math-jsonl" and not args.path:
        parser.error("--path: the math-jsonl task needs the JSONL file")

    import torch

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
    started = time.monotonic()
    figures = evaluate_greedy(model, tokenizer, task, problems, max_new_tokens=max_new_tokens, batch_size=args.batch_size)
    figures = {("score/changed_answer_rate" if k == "score/change_rate" else k): v for k, v in figures.items()}
    seconds = time.monotonic() - started

    print(f"{described} on {args.task} ({len(problems)} {args.split} problems, greedy, {seconds:.1f} s)")
    labels = {"score/acc_t1": "Acc@t1", "score/acc_t2": "Acc@t2", "score/delta_t1_t2": "Δ(t1,t2)",
              "score/delta_i_to_c": "Δi→c", "score/delta_c_to_i": "Δc→i", "score/changed_answer_rate": "changed answers"}
    for key, label in labels.items():
        print(f"  {label:<16} {100 * figures[key]:6.1f} %")
    report = {"model": args.model, "task": args.task, "split": args.split, "problems": len(problems),
              "seconds": round(seconds, 1), **figures}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
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
