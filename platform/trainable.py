"""What one Tune trial runs: build the algorithm from the spec, restore, train, checkpoint, export.

A trial's Tune config is {"spec": resolved spec dict, "seed": int, "overrides": {dotted field: value},
"tracking": {...}}; the search space and PBT mutate only "overrides", so every trial is an ordinary
valid spec (the same one its MLflow run records).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

from armillary.algorithms import registry as algorithms
from armillary.platform import metrics
from armillary.platform.spec import ExperimentSpec, trial_spec
from armillary.platform.tracking import log_trial_artifacts

ITERATION = "training_iteration"


def _stop_reached(spec: ExperimentSpec, summary: Mapping[str, float], iteration: int, elapsed_s: float) -> bool:
    stop = spec.stop
    if stop.iterations and iteration >= stop.iterations:
        return True
    if stop.env_steps and summary.get(metrics.ENV_STEPS, 0) >= stop.env_steps:
        return True
    if stop.time_s and elapsed_s >= stop.time_s:
        return True
    return any(summary.get(name, float("-inf")) >= target for name, target in stop.metric.items())


def export_policy(algo, spec: ExperimentSpec, folder: Path) -> None:
    """The trained weights as plain torch state_dicts + JSON metadata, loadable without Ray or RLlib."""
    import torch

    entry = algorithms.get(spec.algorithm.name)
    folder.mkdir(parents=True, exist_ok=True)
    modules = {}
    for module_id in entry.policy_modules:
        module = algo.get_module(module_id)
        state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        torch.save(state, folder / f"{module_id}.pt")
        modules[module_id] = {"class": f"{type(module).__module__}.{type(module).__qualname__}",
                              "parameters": int(sum(v.numel() for v in state.values()))}
    meta = {"spec": spec.to_dict(), "modules": modules, "iteration": algo.iteration,
            "env_steps": algo.metrics.peek(("env_runners", "num_env_steps_sampled_lifetime"), default=0)}
    (folder / "policy.json").write_text(json.dumps(meta, indent=2, default=str))


# Every iteration's summary up to a checkpoint, written into that checkpoint. Tune keeps each trial's result.json
# in a staging folder and copies it to the run folder in the background; a driver killed while that copy is behind
# (or half-written) restores an older result.json next to a newer checkpoint, and the iterations in between would
# be missing for good (the trial resumes after them). The runner fills them in from here (runner.reconcile_results).
RESULTS_FILE = "armillary_results.jsonl"


def write_results(folder: Path, rows: list[dict[str, Any]]) -> None:
    (folder / RESULTS_FILE).write_text("".join(json.dumps(row) + "\n" for row in rows))


def read_results(folder: Path) -> list[dict[str, Any]]:
    path = folder / RESULTS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _cuda_report() -> dict[str, Any]:
    """What the calling Ray worker was given and what torch sees there."""
    import ray
    import torch

    return {"gpu_ids": [str(i) for i in ray.get_gpu_ids()], "cuda": torch.cuda.is_available(),
            "torch": torch.__version__, "torch_cuda": torch.version.cuda,
            "node": ray.get_runtime_context().get_node_id()}


LEARNER_DEVICE_CHECK = "armillary-learner-device-check"  # the probe task's name, as Ray's state API lists it


def check_learner_devices(num_learners: int, num_gpus_per_learner: float) -> None:
    """Fail before the algorithm is built if the learner's GPU has no CUDA device behind it.

    Ray's GPU count is a scheduling label: a node started with `--num-gpus` (or a simulated cluster, or a GPU pod
    running a CPU-only image) is given GPU work whether or not CUDA works there. RLlib's get_device then hands the
    learner cuda:0, and moving its module there dies on torch's "not compiled with CUDA" assertion, deep in an actor's
    traceback. Falling back to the CPU instead would hold a (paid) GPU and train on the CPU without anyone noticing, so
    this fails instead, naming the field, the node and the torch build. The check runs where the learner will run: in
    this process for num_learners 0 (the local learner), else as a task with the learner's GPU request in the trial's
    placement group (the learner actors are created in that same group, on the bundle that holds the GPU).
    """
    if not num_gpus_per_learner:
        return
    import ray
    from ray.util import get_current_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    if num_learners == 0:
        report = _cuda_report()
    else:
        group = get_current_placement_group()
        strategy = PlacementGroupSchedulingStrategy(group) if group is not None else "DEFAULT"
        probe = ray.remote(_cuda_report).options(name=LEARNER_DEVICE_CHECK, num_cpus=0, num_gpus=num_gpus_per_learner,
                                                 scheduling_strategy=strategy)
        report = ray.get(probe.remote())
    if report["gpu_ids"] and not report["cuda"]:
        build = "a CPU-only build" if report["torch_cuda"] is None else f"built for CUDA {report['torch_cuda']}"
        raise RuntimeError(
            f"resources.num_gpus_per_learner={num_gpus_per_learner}: Ray gave the learner GPU {report['gpu_ids']} on "
            f"node {report['node']}, but torch {report['torch']} there ({build}) sees no CUDA device. That node "
            "advertises a GPU it cannot use (e.g. `ray start --num-gpus` without a driver, or a CPU image in a GPU "
            "pod): run GPU workers from the GPU image (armillary/ray-gpu), or use resources.profile=cluster-cpu."
        )


def train_trial(config: dict[str, Any]) -> None:
    from ray import tune

    spec = trial_spec(config["spec"], config)
    tracking = config.get("tracking") or {}
    if tracking.get("uri"):
        os.environ["MLFLOW_TRACKING_URI"] = tracking["uri"]

    from armillary.platform.rllib_config import build_algorithm_config, resolved_resources

    resources = resolved_resources(spec)
    check_learner_devices(resources["num_learners"], resources["num_gpus_per_learner"])
    algo = build_algorithm_config(spec, spec.seeds[0]).build_algo()
    context = tune.get_context()
    trial_id = context.get_trial_id() or "local"
    checkpoint = tune.get_checkpoint()
    history: list[dict[str, Any]] = []  # this trial's summaries so far, carried by every checkpoint
    done = False
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            algo.restore_from_path(folder)
            record = read_results(Path(folder))
            # Only this trial's own rows: after a PBT exploit the checkpoint (and its record) is another trial's.
            history = [row for row in record if row.get("trial_id") == trial_id]
            # A trial paused on its last iteration (synchronous PBT pauses every trial at a perturbation) comes back
            # from that iteration's checkpoint: finish it without training past its stop.
            done = bool(record) and _stop_reached(spec, record[-1], algo.iteration, 0.0)
    gauges = metrics.RayMetrics({"experiment": spec.name, "trial": trial_id, "algorithm": spec.algorithm.name,
                                 "env": spec.env.name})
    previous_steps = None
    started = time.monotonic()  # stop.time_s counts this attempt's wall-clock time
    while not done:
        result = algo.train()
        summary = metrics.summarize(result, previous_steps)
        previous_steps = summary[metrics.ENV_STEPS]
        gauges.publish(summary, spec.algorithm.name, algo.iteration)
        done = _stop_reached(spec, summary, algo.iteration, time.monotonic() - started)
        history.append({**summary, ITERATION: algo.iteration, "trial_id": trial_id})
        if done or algo.iteration % spec.checkpoint.every_iterations == 0:
            with tempfile.TemporaryDirectory() as folder:
                algo.save_to_path(folder)
                write_results(Path(folder), history)
                tune.report(summary, checkpoint=tune.Checkpoint.from_directory(folder))
        else:
            tune.report(summary)

    _finish(algo, spec, tracking, trial_id, Path(context.get_trial_dir() or tempfile.mkdtemp()))
    algo.stop()


def _finish(algo, spec: ExperimentSpec, tracking: Mapping[str, str], trial_id: str, trial_dir: Path) -> None:
    """Export the final weights (and method pictures) and log them into the trial's MLflow run."""
    export = trial_dir / "export"
    export_policy(algo, spec, export / "policy")
    hook = algorithms.get(spec.algorithm.name).final_artifacts
    if hook is not None:
        hook(algo, export / "figures")
    if tracking.get("uri") and not log_trial_artifacts(tracking, trial_id, export):
        print(f"warning: no MLflow run found for trial {trial_id}; artifacts stay in {export}")
