"""Time `armillary compare` on synthetic finished runs in the runner's layout (tests/test_report.py's fake_run).

    python benchmarks/compare_speed.py                       # 3 runs x 5 seeds x 300 iterations, 3 repeats
    python benchmarks/compare_speed.py --runs 3 --seeds 5 --iterations 300 --repeats 3

Prints the wall time of each repeat (the PNGs, the table, the profiles; MLflow off), the median, and the load
average before and after, since the development machine is shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_report import RETURN, fake_run  # noqa: E402  (the test suite's run-folder builder)

from armillary.platform.compare import compare_runs  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        runs = []
        for r in range(args.runs):
            curves = {s: {RETURN: list(np.clip(np.linspace(10, 100 + 100 * r, args.iterations)
                                               + rng.normal(0, 20, args.iterations), 0, 500)),
                          "learners/default_policy/vf_loss": list(rng.uniform(0, 1, args.iterations))}
                      for s in range(args.seeds)}
            runs.append(fake_run(Path(folder) / f"run{r}", "ppo/cartpole", curves, [f"algorithm.config.lr={10 ** -(r + 2)}"]))
        print(f"load average before: {os.getloadavg()}")
        times = []
        for repeat in range(args.repeats):
            start = time.perf_counter()
            compare_runs(runs, out=Path(folder) / f"out{repeat}", log_to_mlflow=False)
            times.append(time.perf_counter() - start)
            print(f"repeat {repeat}: {times[-1]:.2f} s")
        print(f"{args.runs} runs x {args.seeds} seeds x {args.iterations} iterations: median {statistics.median(times):.2f} s "
              f"(load average after: {os.getloadavg()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
