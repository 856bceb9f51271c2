"""The reward model as a Ray Serve application: one deployment, dynamic batching, shared by every trial.

    python -m armillary.algorithms.clip_reward.serve --model runs/clip_reward/models/small-seed0

This is the Ray edge of the package; the scoring itself is reward.ClipReward (pure torch). A replica loads
the model once; `score` calls from any number of clients (env runners of several Tune trials) are merged by
`@serve.batch` into one image forward pass, and text embeddings are cached per goal set inside ClipReward.

A bad request (wrong frame shape/dtype, empty goal set, unknown goal) is answered with its
RewardInputError, raised at the caller's `.result()`; the replica and the other requests of its batch are
untouched. `stats()` reports what the replica actually did (batch sizes formed, cache misses) so a sweep
can check that batches formed and that one deployment served every trial.

No HTTP by default: clients use a DeploymentHandle. With `http=True` the proxy binds to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import sys
import time
from dataclasses import asdict
from typing import Any, Sequence

import numpy as np
from ray import serve
from ray.serve.handle import DeploymentHandle

from armillary.algorithms.clip_reward.model_settings import RewardConfig, ServeConfig
from armillary.algorithms.clip_reward.reward import RewardInputError, RewardRequest

DEPLOYMENT_NAME = "ClipRewardModel"


@serve.deployment(name=DEPLOYMENT_NAME)
class ClipRewardModel:
    """Hosts one CLIP model; `score(frames, goals, goal_set)` → {"reward", "probability", "candidates"}."""

    def __init__(self, model: str, reward: dict[str, Any], max_batch_size: int, batch_wait_timeout_s: float,
                 torch_threads: int = 1):
        import torch

        from armillary.algorithms.clip_reward.models import load_clip
        from armillary.algorithms.clip_reward.reward import ClipReward

        torch.set_num_threads(torch_threads)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self._reward = ClipReward(load_clip(model, device=device), RewardConfig.model_validate(reward))
        self._score_batch.set_max_batch_size(max_batch_size)
        self._score_batch.set_batch_wait_timeout_s(batch_wait_timeout_s)
        self._batch_sizes: collections.Counter[int] = collections.Counter()
        self._frames = self._requests = self._errors = 0
        self._compute_s = 0.0  # seconds inside the model (validation + forward), to tell compute from transport
        self._model = model
        self._reward_config = reward
        self._started = time.time()

    async def score(self, frames: np.ndarray, goals: Sequence[str] | str, goal_set: Sequence[str]) -> dict[str, Any]:
        result = await self._score_batch(RewardRequest(frames, goals, goal_set))
        if isinstance(result, Exception):
            raise result
        return result

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
    async def _score_batch(self, requests: list[RewardRequest]) -> list[dict[str, Any] | RewardInputError]:
        self._batch_sizes[len(requests)] += 1
        # In a worker thread, so the event loop keeps queueing the next batch while this one computes.
        started = time.perf_counter()
        results = await asyncio.to_thread(self._reward.score_batch, requests)
        self._compute_s += time.perf_counter() - started
        answers: list[dict[str, Any] | RewardInputError] = []
        for result in results:
            if isinstance(result, Exception):
                self._errors += 1
                answers.append(result)
            else:
                self._requests += 1
                self._frames += len(result.reward)
                answers.append(asdict(result))
        return answers

    def stats(self) -> dict[str, Any]:
        """What this replica did: batches formed (request count → batches), frames, errors, text-cache misses."""
        context = serve.get_replica_context()
        return {
            "replica": context.replica_id.unique_id,
            "pid": os.getpid(),
            "model": self._model,
            "reward_config": self._reward_config,
            "temperature": self._reward.temperature,
            "batch_sizes": dict(self._batch_sizes),
            "requests": self._requests,
            "frames": self._frames,
            "errors": self._errors,
            "compute_s": self._compute_s,
            "text_cache_misses": self._reward.text_cache_misses,
            "uptime_s": time.time() - self._started,
        }


def build_app(config: ServeConfig):
    """The bound application for `config` (what `serve.run` or a Serve config file takes)."""
    deployment = ClipRewardModel.options(
        num_replicas=config.num_replicas,
        max_ongoing_requests=config.max_ongoing_requests,
        ray_actor_options={"num_cpus": config.num_cpus, "num_gpus": config.num_gpus},
        # Serve logs every request at INFO: thousands of lines per training iteration. Errors still show.
        logging_config={"log_level": "WARNING"},
    )
    return deployment.bind(
        model=config.model,
        reward=config.reward.model_dump(),
        max_batch_size=config.max_batch_size,
        batch_wait_timeout_s=config.batch_wait_timeout_s,
        torch_threads=config.torch_threads,
    )


def app_builder(args: dict[str, Any]):
    """Serve's application-builder entry point, for config files and KubeRay's RayService
    (`import_path: armillary.algorithms.clip_reward.serve:app_builder`, `args:` = ServeConfig fields).
    The args are validated like any ServeConfig, so a typo fails the deploy with the field named."""
    return build_app(ServeConfig.model_validate(args))


def start(config: ServeConfig) -> DeploymentHandle:
    """Deploy (or redeploy) the application on the connected Ray cluster; returns its handle."""
    if config.http:
        serve.start(http_options={"host": "127.0.0.1", "port": config.http_port})
    else:
        serve.start(proxy_location="Disabled")
    return serve.run(build_app(config), name=config.app_name, route_prefix=None)


def connect(app_name: str = "clip-reward") -> DeploymentHandle:
    """The handle of a running application; KeyError-like RayServeException if it is not running."""
    return serve.get_app_handle(app_name)


def ensure_running(config: ServeConfig) -> DeploymentHandle:
    """The running application's handle, starting it if needed (what an experiment that needs it calls)."""
    try:
        status = serve.status().applications.get(config.app_name)
    except Exception:  # Serve not started on this cluster yet
        status = None
    if status is not None and str(status.status).endswith("RUNNING"):
        handle = connect(config.app_name)
        running = handle.stats.remote().result(timeout_s=60)
        wanted = {"model": config.model, "reward_config": config.reward.model_dump()}
        found = {"model": running["model"], "reward_config": running["reward_config"]}
        if _comparable(found) != _comparable(wanted):
            # Scoring with another model or another β/τ/negatives than the experiment says would be silent.
            raise ValueError(
                f"algorithm.config.reward_model.app_name: application {config.app_name!r} already runs {found}, but this experiment "
                f"asks for {wanted}; stop it (serve.delete) or give this experiment another app_name"
            )
        return handle
    return start(config)


def _comparable(settings: dict[str, Any]) -> str:
    import json

    return json.dumps(settings, sort_keys=True, default=list)


def replica_stats(handle: DeploymentHandle, calls: int = 16) -> dict[str, dict[str, Any]]:
    """stats() of the replicas that answer `calls` probes, by replica id (the router spreads probes over them)."""
    answers = [handle.stats.remote() for _ in range(calls)]
    return {stats["replica"]: stats for stats in (answer.result() for answer in answers)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="armillary serve reward-model",
                                     description="Serve a CLIP reward model with Ray Serve until interrupted.")
    parser.add_argument("--model", required=True)
    parser.add_argument("--address", default=None, help="Ray address (default: start a local Ray)")
    for name, field in ServeConfig.model_fields.items():
        if name not in ("model", "reward"):
            parser.add_argument("--" + name.replace("_", "-"), dest=name, default=None, help=field.description)
    parser.add_argument("--threshold", type=float, default=None, help="β")
    parser.add_argument("--temperature", type=float, default=None, help="τ")
    parser.add_argument("--extra-negative", dest="extra_negatives", action="append", default=None,
                        help="a text added to every goal set as a negative (repeatable), e.g. 'the agent is on the floor'")
    args = vars(parser.parse_args(argv))
    reward = {key: args.pop(key) for key in ("threshold", "temperature", "extra_negatives")}
    address = args.pop("address")
    try:
        config = ServeConfig.model_validate(
            {**{k: v for k, v in args.items() if v is not None}, "reward": {k: v for k, v in reward.items() if v is not None}}
        )
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2

    import ray

    ray.init(address=address, include_dashboard=False) if address else ray.init(include_dashboard=False)
    start(config)
    print(f"serving {config.model} as application {config.app_name!r}; Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        serve.delete(config.app_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
