"""Pre-train the tiny SCoRe policy by SFT on the synthetic addition task, to about 50% first-attempt accuracy.

    OMP_NUM_THREADS=1 python -m armillary.algorithms.score.pretrain --out runs/score/tiny-base --max-minutes 30

The model sees two kinds of examples (loss on the response only):
- turn 1: "Q: a+b\\nA: " → the worked solution (a batch of 64 every step);
- turn 2 (a batch of 32 every 2nd step): the turn-2 format with a CORRECT first attempt in the context →
  the same solution again. By default the base thus knows the turn-2 format but has never been shown a
  correction: what it does after a wrong first attempt (copy it, re-solve, or break) is left to the RL stages
  to change. With --turn2-corrections F, a share F of the turn-2 contexts hold a wrong first attempt instead
  (one misread digit or one wrong column sum) and the target is the right solution: a base with some weak
  intrinsic ability to fix, like the paper's base models (MATH: Δi→c 4.6% of problems).

Training stops as soon as greedy Acc@t1 on held-out problems reaches --target-accuracy (or the time budget
runs out), keeping whichever of the last two evaluated checkpoints is nearer the target; the model is saved
in transformers format with the tokenizer, and pretrain_metrics.json holds the learning curve and the
greedy two-turn metrics of the saved model on held-out problems. No Ray: this runs anywhere torch does.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time

import torch


def _examples(task, rng: random.Random, count: int, second_turn: bool, corrections: float = 0.0) -> list[tuple[str, str]]:
    """(prompt, target) pairs of training-split problems. Turn 2: the context holds a correct first attempt, or,
    with probability `corrections`, a wrong one (a misread digit or a wrong column sum, arithmetic.wrong_solution);
    the target is the correct solution either way."""
    from armillary.algorithms.score.tasks.base import Problem
    from armillary.algorithms.score.tasks.arithmetic import ERROR_KINDS, solve, split_of, wrong_solution

    out = []
    while len(out) < count:
        a, b = task._operand(rng), task._operand(rng)
        question = f"{a}+{b}"
        if split_of(question) != "train":
            continue
        problem = Problem(problem_id=question, question=question, answer=str(a + b), metadata={"a": a, "b": b})
        solution = solve(a, b)
        if second_turn:
            shown = wrong_solution(a, b, rng, kind=rng.choice(ERROR_KINDS)) if rng.random() < corrections else solution
            out.append((task.second_turn_prompt(problem, shown), solution))
        else:
            out.append((task.first_turn_prompt(problem), solution))
    return out


def _batch(tokenizer, examples: list[tuple[str, str]], device: torch.device):
    rows, labels = [], []
    eos = tokenizer.eos_token_id
    for prompt, response in examples:
        p = tokenizer(prompt)["input_ids"]
        r = tokenizer(response, add_special_tokens=False)["input_ids"] + [eos]
        rows.append(p + r)
        labels.append([-100] * len(p) + r)
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    target = torch.full((len(rows), width), -100, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row, label) in enumerate(zip(rows, labels)):
        ids[i, : len(row)] = torch.tensor(row)
        target[i, : len(row)] = torch.tensor(label)
        attention[i, : len(row)] = 1
    return ids.to(device), attention.to(device), target.to(device)


def first_turn_accuracy(model, tokenizer, task, problems, max_new_tokens: int, batch_size: int = 128) -> float:
    from armillary.algorithms.score.rollout import generate

    model.eval()
    correct = 0
    for start in range(0, len(problems), batch_size):
        chunk = problems[start : start + batch_size]
        out = generate(model, tokenizer, [task.first_turn_prompt(p) for p in chunk], max_new_tokens=max_new_tokens, greedy=True)
        correct += sum(task.is_correct(p, y) for p, y in zip(chunk, out.texts))
    model.train()
    return correct / len(problems)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the saved model, tokenizer and metrics")
    parser.add_argument("--min-digits", type=int, default=3)
    parser.add_argument("--max-digits", type=int, default=4)
    parser.add_argument("--target-accuracy", type=float, default=0.5, help="stop once held-out greedy Acc@t1 ≥ this")
    parser.add_argument("--max-minutes", type=float, default=20.0)
    parser.add_argument("--max-steps", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup-steps", type=int, default=50)
    parser.add_argument("--turn2-every", type=int, default=2, help="a turn-2 batch every this many steps (0: never)")
    parser.add_argument("--turn2-batch-size", type=int, default=32)
    parser.add_argument("--turn2-corrections", type=float, default=0.0,
                        help="share of turn-2 examples whose context holds a WRONG first attempt (target: the right "
                             "solution); 0 (default): the base has never been shown a correction")
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--fine-eval-every", type=int, default=10,
                        help="evaluate this often once Acc@t1 passes half the target (accuracy rises steeply there)")
    parser.add_argument("--eval-problems", type=int, default=200)
    parser.add_argument("--final-eval-problems", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="torch device: auto (cuda when present, else cpu), cpu, cuda, cuda:1 …")
    args = parser.parse_args(argv)
    if not 0 < args.target_accuracy <= 1:
        parser.error(f"--target-accuracy: must be in (0, 1], got {args.target_accuracy}")
    if not 0 <= args.turn2_corrections <= 1:
        parser.error(f"--turn2-corrections: a share in [0, 1], got {args.turn2_corrections}")
    if args.turn2_every < 0 or args.turn2_batch_size < 1:
        parser.error("--turn2-every must be ≥ 0 and --turn2-batch-size ≥ 1")
    if args.batch_size < 1 or args.max_minutes <= 0 or args.eval_every < 1 or args.fine_eval_every < 1:
        parser.error("--batch-size, --max-minutes, --eval-every and --fine-eval-every must be positive")

    from armillary.algorithms.score.model import build_char_tokenizer, build_tiny_model, count_parameters, save_policy
    from armillary.algorithms.score.rollout import evaluate_greedy
    from armillary.algorithms.score.tasks.arithmetic import ArithmeticTask

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    task = ArithmeticTask(min_digits=args.min_digits, max_digits=args.max_digits, seed=args.seed)
    # Response length: one 9-character step per column plus '#', the answer and <eos>.
    max_new_tokens = 9 * (args.max_digits + 1) + args.max_digits + 4
    held_out = task.problems("test", args.eval_problems)
    tokenizer = build_char_tokenizer()
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    model = build_tiny_model(tokenizer=tokenizer, seed=args.seed).to(device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.98))
    print(f"tiny model: {count_parameters(model):,} parameters; task {args.min_digits}-{args.max_digits} digits", flush=True)

    history, start, step, accuracy, previous, kept_step = [], time.monotonic(), 0, 0.0, None, None
    budget_s = args.max_minutes * 60
    while step < args.max_steps:
        step += 1
        lr = args.lr * min(1.0, step / args.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        # Turn-1 and turn-2 examples in separate batches: padding a short turn-1 row to a turn-2 row's length
        # would quadruple the cost of the step.
        optimizer.zero_grad(set_to_none=True)
        ids, attention, labels = _batch(tokenizer, _examples(task, rng, args.batch_size, second_turn=False), device)
        loss = model(input_ids=ids, attention_mask=attention, labels=labels).loss
        loss.backward()
        if args.turn2_every and step % args.turn2_every == 0:
            ids, attention, labels = _batch(tokenizer, _examples(task, rng, args.turn2_batch_size, second_turn=True,
                                                                corrections=args.turn2_corrections), device)
            model(input_ids=ids, attention_mask=attention, labels=labels).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        elapsed = time.monotonic() - start
        every = args.fine_eval_every if accuracy >= args.target_accuracy / 2 else args.eval_every
        if step % every == 0 or elapsed > budget_s:
            accuracy = first_turn_accuracy(model, tokenizer, task, held_out, max_new_tokens)
            elapsed = time.monotonic() - start
            history.append({"step": step, "loss": loss.item(), "acc_t1": accuracy, "elapsed_s": round(elapsed, 1)})
            print(f"step {step:5d}  loss {loss.item():.4f}  held-out greedy Acc@t1 {accuracy:.3f}  {elapsed:6.0f}s", flush=True)
            if accuracy >= args.target_accuracy or elapsed > budget_s:
                # Accuracy jumps between evaluations here: keep whichever of the last two is nearer the target.
                if previous is not None and abs(previous[0] - args.target_accuracy) < abs(accuracy - args.target_accuracy):
                    accuracy, kept_step, state = previous
                    model.load_state_dict(state)
                    print(f"keeping step {kept_step} (Acc@t1 {accuracy:.3f}), nearer the target", flush=True)
                break
            previous = (accuracy, step, {k: v.detach().clone() for k, v in model.state_dict().items()})
        if not math.isfinite(loss.item()):
            print("error: the loss diverged", file=sys.stderr)
            return 1

    out = save_policy(model, tokenizer, args.out)
    final_problems = task.problems("test", args.final_eval_problems)
    final = evaluate_greedy(model, tokenizer, task, final_problems, max_new_tokens=max_new_tokens)
    report = {
        "command": "python -m armillary.algorithms.score.pretrain " + " ".join(sys.argv[1:] if argv is None else argv),
        "parameters": count_parameters(model),
        "steps": step,
        "kept_step": kept_step or step,
        "train_seconds": round(time.monotonic() - start, 1),
        "reached_target": any(h["acc_t1"] >= args.target_accuracy for h in history),
        "kept_checkpoint_acc_t1": accuracy,  # on the --eval-problems held-out problems
        "held_out_greedy_two_turn": final,
        "final_eval_problems": len(final_problems),
        "history": history,
        "args": vars(args),
        "device": str(device),
    }
    (out / "pretrain_metrics.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("steps", "kept_step", "train_seconds", "reached_target", "held_out_greedy_two_turn")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
