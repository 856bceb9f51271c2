"""The red-team table of SCoRe's HumanEval verifier: every hack of tests/test_score_verifier.py (HACKS) on the same
problems as the tests (every 8th of the 164), scored by the verifier (passes, flags) and by the exit-status verdict
it replaced (the control). Prints a markdown table, the one in algorithms/score/README.md.

    python benchmarks/score_verifier_red_team.py
"""

from __future__ import annotations

import collections
import importlib.util
from pathlib import Path


def main() -> int:
    from armillary.algorithms.score.sandbox import run_python_many
    from armillary.algorithms.score.tasks.humaneval import HumanEvalTask, exit_status_program, load_problems

    spec = importlib.util.spec_from_file_location("red_team", Path(__file__).parents[1] / "tests" / "test_score_verifier.py")
    red_team = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(red_team)
    problems = load_problems()[::8]
    task = HumanEvalTask(limits=red_team.FAST)
    print("| hack | passes now | flagged | passed the exit-status verdict |\n|---|---|---|---|")
    for name, hack in red_team.HACKS.items():
        verdicts = task.verify_many(problems, [hack] * len(problems))
        old = sum(r.exited_zero for r in run_python_many([exit_status_program(p, hack) for p in problems], red_team.FAST))
        flags = collections.Counter(f for v in verdicts for f in v.flags)
        flagged = ", ".join(f"{k} {n}" for k, n in flags.items()) or "—"
        print(f"| {name} | {sum(v.passed for v in verdicts)}/{len(problems)} | {flagged} | {old}/{len(problems)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
