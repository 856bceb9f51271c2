"""The SCoRe results table: presets × seeds of the `score` algorithm, run side by side, one process each.

    python benchmarks/score_table.py run --out runs/score_table --seeds 0 1 2 --iterations 24 --parallel 2
    python benchmarks/score_table.py report runs/score_table

`armillary run score/arithmetic` (Tune, MLflow, checkpoints) is how a researcher runs one preset; this script
is for measuring the table of the issue across many presets at once on one machine — a GPU host in particular,
where a dozen tiny-model trials share one GPU — without MLflow. Each (preset, seed) trains the very algorithm
`armillary run` trains: the preset's spec (with the overrides below) → platform.rllib_config.build_algorithm_config
→ build_algo → train(), in its own process with its own local Ray (parallel_runs.build_worker), on the GPU when
there is one (the learner and the sampler) and on the CPU otherwise. Every evaluation (greedy, held-out problems) is appended to the
run's JSON file as soon as it is made, so a run cut short by a time limit still reports what it reached.

Overrides applied to every preset: `--iterations`, `--eval-every`, `--model`, and, for presets that run
Stage I first, `--stage1-iterations` (default: a third of the run, the presets' 8 of 24).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from parallel_runs import build_worker, run_jobs, stop_worker  # noqa: E402

PRESETS = ["score/arithmetic", "score/arithmetic-naive", "score/arithmetic-no-stage1", "score/arithmetic-no-shaping",
           "score/arithmetic-single-turn", "score/arithmetic-star", "score/arithmetic-pair-sft"]
FIGURES = ["acc_t1", "acc_t2", "delta_t1_t2", "delta_i_to_c", "delta_c_to_i", "changed_answer_rate"]


def _one(args) -> int:
    """Train one (preset, seed) and append each evaluation to args.out (a JSON file)."""
    import torch

    from armillary.platform.metrics import summarize
    from armillary.platform.spec import load_spec

    torch.set_num_threads(1)
    gpu = torch.cuda.is_available()
    overrides = [f"algorithm.config.model={args.model}", f"algorithm.config.eval_every={args.eval_every}",
                 f"stop.iterations={args.iterations}", *args.set]
    stage1 = 0
    if getattr(load_spec(args.preset, overrides[:1]).algorithm.config, "stage1_iterations", 0):
        stage1 = args.stage1_iterations if args.stage1_iterations is not None else args.iterations // 3
        overrides.append(f"algorithm.config.stage1_iterations={stage1}")
    spec, algo = build_worker(args.preset, overrides, args.seed, gpu=gpu)
    record = {"preset": args.preset, "seed": args.seed, "model": args.model, "iterations": args.iterations,
              "stage1_iterations": stage1, "eval_every": args.eval_every, "overrides": args.set,
              "device": "cuda" if gpu else "cpu", "torch": torch.__version__, "evaluations": [],
              "seconds_per_iteration": None}
    out = Path(args.out)
    start = time.monotonic()
    try:
        for iteration in range(1, args.iterations + 1):
            result = summarize(algo.train())
            if "score/acc_t1" in result and math.isfinite(result["score/acc_t1"]):
                record["evaluations"].append({"iteration": iteration, "stage": result["score/stage"],
                                              "seconds": round(time.monotonic() - start, 1),
                                              **{k: result[f"score/{k}"] for k in FIGURES}})
                record["seconds_per_iteration"] = round((time.monotonic() - start) / iteration, 3)
                out.write_text(json.dumps(record, indent=1))
                print(f"{args.preset} seed {args.seed} it {iteration}: "
                      + " ".join(f"{k} {result[f'score/{k}']:.3f}" for k in FIGURES[:4]), flush=True)
    finally:
        stop_worker(algo)
    return 0


def _run(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for preset in args.presets:
        for seed in args.seeds:
            name = f"{preset.replace('/', '__')}-seed{seed}"
            command = [sys.executable, __file__, "one", "--preset", preset, "--seed", str(seed), "--model", args.model,
                       "--iterations", str(args.iterations), "--eval-every", str(args.eval_every),
                       "--out", str(out / f"{name}.json")]
            if args.stage1_iterations is not None:
                command += ["--stage1-iterations", str(args.stage1_iterations)]
            if args.set:
                command += ["--set", *args.set]
            jobs.append((command, out / f"{name}.log"))
    print(f"{len(jobs)} runs, {args.parallel} at a time, {args.iterations} iterations each; logs in {out}", flush=True)
    run_jobs(jobs, args.parallel, time_limit_s=args.minutes * 60)
    return _report(argparse.Namespace(folder=str(out), last=1))


def _mean_sd(values: list[float]) -> str:
    pct = [100 * v for v in values]
    if len(pct) == 1:
        return f"{pct[0]:.1f}"
    return f"{statistics.mean(pct):.1f} ± {statistics.stdev(pct):.1f}"


def _report(args) -> int:
    runs = [json.loads(p.read_text()) for p in sorted(Path(args.folder).glob("*.json"))]
    if not runs:
        print(f"no run files in {args.folder}", file=sys.stderr)
        return 1
    by_preset: dict[str, list[dict]] = {}
    for run in runs:
        if run["evaluations"]:
            by_preset.setdefault(run["preset"], []).append(run)
    # Each preset's row compares its seeds at the same iteration: the last one every seed reached (runs cut short
    # by a time limit stop at different points).
    rows: dict[tuple[str, str], list[dict]] = {}
    for preset, preset_runs in by_preset.items():
        stage1 = preset_runs[0]["stage1_iterations"]
        if stage1:
            at = [e for r in preset_runs for e in r["evaluations"] if e["iteration"] == stage1]
            if len(at) == len(preset_runs):
                rows[(preset + " after Stage I", str(stage1))] = at
        common = min(r["evaluations"][-1]["iteration"] for r in preset_runs)
        at = [next(e for e in r["evaluations"] if e["iteration"] == common) for r in preset_runs
              if any(e["iteration"] == common for e in r["evaluations"])]
        rows[(preset, str(common))] = at
        if args.last > 1:  # one evaluation is 200 problems (0.5 % each): average each seed over its last few too
            windows = [[e for e in r["evaluations"] if e["iteration"] <= common][-args.last:] for r in preset_runs]
            first = max(w[0]["iteration"] for w in windows)
            rows[(f"{preset} (mean of last {args.last} evaluations)", f"{first}-{common}")] = [
                {k: statistics.mean(e[k] for e in w) for k in FIGURES} for w in windows]
    print("| run | iteration | seeds | " + " | ".join(FIGURES) + " |")
    print("|---|---|---|" + "---|" * len(FIGURES))
    for (name, iteration), evaluations in rows.items():
        cells = [_mean_sd([e[k] for e in evaluations]) for k in FIGURES]
        print(f"| {name} | {iteration} | {len(evaluations)} | " + " | ".join(cells) + " |")
    seconds = [r["seconds_per_iteration"] for r in runs if r["seconds_per_iteration"]]
    devices = sorted({r["device"] for r in runs})
    if seconds:
        print(f"\n{len(runs)} runs on {', '.join(devices)}; seconds per iteration (with evaluations): "
              f"median {statistics.median(seconds):.2f}, range {min(seconds):.2f}-{max(seconds):.2f}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", default="runs/score/tiny-base")
    common.add_argument("--iterations", type=int, default=24)
    common.add_argument("--stage1-iterations", type=int, default=None)
    common.add_argument("--eval-every", type=int, default=8)
    common.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="more spec overrides for every run")
    run = sub.add_parser("run", parents=[common], help="run presets × seeds and print the table")
    run.add_argument("--presets", nargs="+", default=PRESETS)
    run.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    run.add_argument("--parallel", type=int, default=2)
    run.add_argument("--minutes", type=float, default=600.0, help="stop every run still going after this long")
    run.add_argument("--out", required=True, help="folder for one JSON file and one log per run")
    one = sub.add_parser("one", parents=[common], help="(internal) one preset and seed")
    one.add_argument("--preset", required=True)
    one.add_argument("--seed", type=int, required=True)
    one.add_argument("--out", required=True)
    report = sub.add_parser("report", help="the table of a finished (or cut-short) run folder")
    report.add_argument("folder")
    report.add_argument("--last", type=int, default=1, help="also average each seed over its last N evaluations")
    args = parser.parse_args(argv)
    if args.command != "report":
        args.model = str(Path(args.model).resolve()) if Path(args.model).exists() else args.model
        if args.iterations < 1 or args.eval_every < 1:
            parser.error("--iterations and --eval-every must be ≥ 1")
    return {"run": _run, "one": _one, "report": _report}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
