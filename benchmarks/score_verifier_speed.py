"""Speed of SCoRe's HumanEval verifier (tasks/code_verifier.py: tests on the trusted side, the function served from
the sandbox) against the exit-status verdict it replaced (humaneval.exit_status_program run by sandbox.run_python),
on the same batch of programs, in one run.

    python benchmarks/score_verifier_speed.py [--programs 64] [--rounds 5] [--workers 4] [--json out.json]

The batch: `--programs` HumanEval problems spread over the 164 (every 164 // N-th), each with its canonical
solution, and every `--wrong-every`-th one with a wrong body instead (`return None`), as a training batch mixes
both. Each round times the old verdict and then the new on the whole batch (alternating which goes first, so a
noisy machine slows both alike); the figure is programs per second, summed over rounds, and the ratio new / old
(goal of issue 19: ≥ 0.8 on 2 cores). The verdicts are checked to agree on every program (neither hack is in the
batch). Reports the load average before and after: this machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4, help="sandboxes at a time (HumanEvalTask's default is 4)")
    parser.add_argument("--wrong-every", type=int, default=4, help="every N-th program gets a wrong body (0: none)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    if not 1 <= args.programs <= 164:
        parser.error(f"--programs: between 1 and 164, got {args.programs}")
    if args.rounds < 1 or args.workers < 1:
        parser.error("--rounds, --workers: must be ≥ 1")

    from armillary.algorithms.score.sandbox import run_python_many
    from armillary.algorithms.score.tasks.humaneval import HumanEvalTask, exit_status_program, load_problems

    task = HumanEvalTask()
    problems = load_problems()[:: 164 // args.programs][: args.programs]
    responses = ["    return None\n" if args.wrong_every and i % args.wrong_every == args.wrong_every - 1
                 else p.metadata["canonical_solution"] for i, p in enumerate(problems)]

    def old() -> list[bool]:
        programs = [exit_status_program(p, r) for p, r in zip(problems, responses)]
        return [r.exited_zero for r in run_python_many(programs, task.limits, args.workers)]

    def new() -> list[bool]:
        return [v.passed for v in task.verify_many(problems, responses, args.workers)]

    old(), new()  # warm up: the interpreter probe, the page cache, compiled tests
    load_before = os.getloadavg()
    seconds = {"old": [], "new": []}
    for round_ in range(args.rounds):
        order = (("old", old), ("new", new)) if round_ % 2 == 0 else (("new", new), ("old", old))
        verdicts = {}
        for name, verdict in order:
            start = time.perf_counter()
            verdicts[name] = verdict()
            seconds[name].append(time.perf_counter() - start)
        if verdicts["old"] != verdicts["new"]:
            disagree = [p.problem_id for p, a, b in zip(problems, verdicts["old"], verdicts["new"]) if a != b]
            raise SystemExit(f"the verdicts disagree on {disagree}")
    load_after = os.getloadavg()

    rate = {name: args.programs * args.rounds / sum(times) for name, times in seconds.items()}
    per_round = [o / n for o, n in zip(seconds["old"], seconds["new"])]
    report = {
        "programs": args.programs, "rounds": args.rounds, "workers": args.workers, "wrong_every": args.wrong_every,
        "passed": sum(verdicts["new"]), "cpus": os.cpu_count(),
        "programs_per_s": {k: round(v, 2) for k, v in rate.items()},
        "ratio_new_over_old": round(rate["new"] / rate["old"], 3),
        "ratio_per_round_median": round(statistics.median(per_round), 3),
        "seconds_per_round": {k: [round(t, 2) for t in v] for k, v in seconds.items()},
        "load_average_before": [round(x, 2) for x in load_before], "load_average_after": [round(x, 2) for x in load_after],
    }
    print(f"{args.programs} programs ({report['passed']} correct) × {args.rounds} rounds, {args.workers} sandboxes at a time")
    print(f"  exit-status verdict (old)   {rate['old']:7.2f} programs/s")
    print(f"  trusted-test verdict (new)  {rate['new']:7.2f} programs/s")
    print(f"  new / old                   {report['ratio_new_over_old']:7.3f}  (per-round median {report['ratio_per_round_median']})")
    print(f"  load average before {load_before[0]:.2f} / after {load_after[0]:.2f} (1 min)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
