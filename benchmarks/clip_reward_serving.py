"""Frames/s of the reward model: in-process vs through the deployment, batched vs one request per frame.

    OMP_NUM_THREADS=1 python benchmarks/clip_reward_serving.py --model runs/clip_reward/models/small-seed0

Four figures, in one run, on the same frames:
  in_process   ClipReward called directly, at several batch sizes (the best is the ceiling)
  unbatched    one frame per request, each awaited before the next (what a blocking per-step call costs)
  batched      `concurrency` single-frame requests in flight at once, merged by @serve.batch
  vector       requests of `frames_per_request` frames each (one env runner's vector of envs per call),
               `vector_concurrency` in flight (several env runners), also merged by @serve.batch
Prints a JSON record, with the batch sizes the replica actually formed and the latency of one request.
Starts its own local Ray (address="local"), never touching another Ray on the machine.

The ratio that matters (vector vs the in-process model) is measured in `--rounds` alternating pairs — the
in-process model at its best batch size, then the deployment — and reported as the median of the per-round
ratios: on a shared machine the load moves by 2-3x within a minute, and only figures taken side by side
compare.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--frames", type=int, default=512)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--frames-per-request", type=int, default=16, help="vector contender: frames per call")
    parser.add_argument("--vector-concurrency", type=int, default=4, help="vector contender: calls in flight")
    parser.add_argument("--rounds", type=int, default=5, help="alternating in-process / vector measurements")
    args = parser.parse_args(argv)

    import numpy as np
    import ray
    import torch

    from armillary.algorithms.clip_reward.model_settings import RewardConfig, ServeConfig
    from armillary.algorithms.clip_reward.models import load_clip
    from armillary.algorithms.clip_reward.reward import ClipReward
    from armillary.algorithms.clip_reward.serve import replica_stats, start
    from armillary.envs.language_goals import FLOOR_CAPTION, LanguageGoalOptions, World, success_triples

    torch.set_num_threads(1)
    world = World(LanguageGoalOptions())
    frames, goals, _ = success_triples(args.frames, seed=123)
    reward_config = RewardConfig(extra_negatives=(FLOOR_CAPTION,))
    record: dict = {"model": args.model, "frames": args.frames}

    local = ClipReward(load_clip(args.model), reward_config)
    local(frames[:8], goals[:8], world.goals)  # warm-up, text cache

    def measure_in_process(batches=(1, 8, 32, 128, 512)) -> dict[int, float]:
        rates = {}
        for batch in batches:
            n = min(args.frames, 128 if batch == 1 else args.frames)
            start_time = time.perf_counter()
            for i in range(0, n, batch):
                local(frames[i : i + batch], goals[i : i + batch], world.goals)
            rates[batch] = n / (time.perf_counter() - start_time)
        return rates

    in_process = measure_in_process()
    record["in_process_frames_per_s"] = in_process

    ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        config = ServeConfig(model=args.model, app_name="clip-reward-bench", max_batch_size=args.max_batch_size,
                             max_ongoing_requests=max(args.max_batch_size, args.concurrency) * 2,
                             batch_wait_timeout_s=0.005, reward=reward_config)
        handle = start(config)
        handle.score.remote(frames[:1], goals[:1], world.goals).result()  # warm-up

        n = min(args.frames, 128)
        latencies = []
        for i in range(n):
            t = time.perf_counter()
            handle.score.remote(frames[i : i + 1], goals[i : i + 1], world.goals).result()
            latencies.append(time.perf_counter() - t)
        record["unbatched_frames_per_s"] = n / sum(latencies)
        record["unbatched_latency_ms_median"] = 1000 * float(np.median(latencies))

        before = next(iter(replica_stats(handle).values()))["batch_sizes"]
        start_time = time.perf_counter()
        pending = []
        for i in range(args.frames):
            pending.append(handle.score.remote(frames[i : i + 1], goals[i : i + 1], world.goals))
            if len(pending) >= args.concurrency:
                pending.pop(0).result()
        for response in pending:
            response.result()
        record["batched_frames_per_s"] = args.frames / (time.perf_counter() - start_time)
        after = next(iter(replica_stats(handle).values()))["batch_sizes"]
        record["batch_sizes_formed"] = {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}

        def measure_vector() -> float:
            step = args.frames_per_request
            start_time = time.perf_counter()
            pending = []
            for i in range(0, args.frames, step):
                pending.append(handle.score.remote(frames[i : i + step], goals[i : i + step], world.goals))
                if len(pending) >= args.vector_concurrency:
                    pending.pop(0).result()
            for response in pending:
                response.result()
            return args.frames / (time.perf_counter() - start_time)

        best_batch = max(in_process, key=in_process.get)
        compute_before = next(iter(replica_stats(handle).values()))["compute_s"]
        rounds = []
        for _ in range(args.rounds):
            local_rate = measure_in_process(batches=(best_batch,))[best_batch]
            vector_rate = measure_vector()
            rounds.append({"in_process": local_rate, "vector": vector_rate, "ratio": vector_rate / local_rate})
        record["rounds"] = rounds
        # Frames/s counting only the replica's time inside the model: the gap to vector_frames_per_s is transport
        # (serialisation, routing, scheduling of the processes), the gap to in-process is the model itself.
        compute_s = next(iter(replica_stats(handle).values()))["compute_s"] - compute_before
        record["vector_replica_compute_frames_per_s"] = args.rounds * args.frames / compute_s
        record["in_process_best_batch"] = best_batch
        record["vector_frames_per_s"] = float(np.median([r["vector"] for r in rounds]))
        record["in_process_best_frames_per_s"] = float(np.median([r["in_process"] for r in rounds]))
    finally:
        from ray import serve

        serve.shutdown()
        ray.shutdown()
    best = record["in_process_best_frames_per_s"]
    record["batched_vs_unbatched"] = record["batched_frames_per_s"] / record["unbatched_frames_per_s"]
    record["batched_vs_best_in_process"] = record["batched_frames_per_s"] / best
    record["vector_vs_unbatched"] = record["vector_frames_per_s"] / record["unbatched_frames_per_s"]
    record["vector_vs_best_in_process_median_of_rounds"] = float(np.median([r["ratio"] for r in record["rounds"]]))
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
