"""Turn an experiment spec into a Ray Tune run: trials = arms × seeds × search space.

Layout of one experiment on disk (the runs folder is $ARMILLARY_RUNS_DIR, default ./runs):

    runs/mlflow.db                         the embedded MLflow store (unless a tracking URI is given)
    runs/<experiment>/<run id>/spec.yaml   the resolved spec          (diffable: `armillary diff`)
    runs/<experiment>/<run id>/provenance.json   git commit, versions, command
    runs/<experiment>/<run id>/tune/       Tune's experiment folder: trials, checkpoints, results
    runs/<experiment>/<run id>/COMPLETED   written when every trial finished
    runs/<experiment>/<run id>/comparison/ a spec with arms: their comparison (platform.outcome), also kept in
                                           results/<spec.results.folder>/

Running the same spec again after a crash resumes the unfinished run (Tuner.restore) instead of
starting over; a finished run is never touched again.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray.tune import Callback

from armillary.platform import console, metrics, tracking
from armillary.platform.rllib_config import build_algorithm_config
from armillary.platform.outcome import unfinished_trials, write_outcome
from armillary.platform.spec import (ExperimentSpec, SpecError, arm_specs, load_run_spec, tracking_uri_problem,
                                     validate)

REPO_ROOT = Path(__file__).resolve().parents[1]


def runs_root() -> Path:
    return Path(os.environ.get("ARMILLARY_RUNS_DIR", "runs")).resolve()


def experiment_folder(spec: ExperimentSpec, root: Path | None = None) -> Path:
    return (root or runs_root()) / re.sub(r"[^a-z0-9._-]+", "__", spec.name)


@dataclass
class RunOutcome:
    run_dir: Path
    ok: bool
    resumed: bool
    num_trials: int
    num_errors: int
    parent_run_id: str
    tracking_uri: str
    # Per trial: (Tune's trial config, "done" or "error", the last result), for the summary's table.
    trials: list[tuple[dict[str, Any], str, dict[str, Any]]] = field(default_factory=list)
    report_paths: list[Path] = field(default_factory=list)


def find_resumable(spec: ExperimentSpec, root: Path | None = None) -> Path | None:
    """The newest unfinished run of this exact spec that Tune can restore, if any."""
    from ray.tune import Tuner

    folder = experiment_folder(spec, root)
    if not folder.is_dir():
        return None
    for run_dir in sorted(folder.iterdir(), reverse=True):
        spec_file = run_dir / "spec.yaml"
        if (run_dir / "COMPLETED").exists() or not spec_file.is_file():
            continue
        try:
            previous = load_run_spec(run_dir)
        except SpecError:
            continue
        if previous.spec_hash() == spec.spec_hash() and Tuner.can_restore(str(run_dir / "tune")):
            return run_dir
    return None


def _search_space(spec: ExperimentSpec) -> dict[str, Any]:
    from ray import tune

    samplers = {"grid": tune.grid_search, "choice": tune.choice}
    space = {}
    for path, dim in spec.tune.search_space.items():
        if dim.grid is not None:
            space[path] = samplers["grid"](dim.grid)
        elif dim.choice is not None:
            space[path] = samplers["choice"](dim.choice)
        elif dim.uniform is not None:
            space[path] = tune.uniform(*dim.uniform)
        elif dim.loguniform is not None:
            space[path] = tune.loguniform(*dim.loguniform)
        else:
            space[path] = tune.randint(*dim.randint)
    return space


def _scheduler(spec: ExperimentSpec):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining

    sched, metric, mode = spec.tune.scheduler, spec.tune.metric, spec.tune.mode
    if sched.kind == "asha":
        return ASHAScheduler(metric=metric, mode=mode, time_attr="training_iteration", grace_period=sched.grace_period,
                             reduction_factor=sched.reduction_factor, max_t=sched.max_t)
    if sched.kind == "pbt":
        # PBT resamples from distributions or picks from lists; a grid axis becomes a list to pick from.
        mutations = {"overrides": {
            path: (dim.grid or dim.choice) if (dim.grid or dim.choice) else _search_space(spec)[path]
            for path, dim in spec.tune.search_space.items()
        }}
        # Synchronous: every trial waits at each perturbation, so the weaker ones copy the stronger ones'
        # checkpoint of that same iteration (asynchronous PBT copies whatever checkpoint the stronger trial last
        # reported, which it may have deleted by the time the weaker one restores it).
        return PopulationBasedTraining(metric=metric, mode=mode, time_attr="training_iteration",
                                       perturbation_interval=sched.perturbation_interval,
                                       quantile_fraction=sched.quantile_fraction, hyperparam_mutations=mutations,
                                       synch=True)
    return FIFOScheduler()


def param_space(spec: ExperimentSpec, tracking_info: dict[str, str]) -> dict[str, Any]:
    from ray import tune

    space = {"spec": spec.to_dict(), "seed": tune.grid_search(list(spec.seeds)), "overrides": _search_space(spec),
             "tracking": tracking_info}
    if spec.arms:  # arms are one more grid axis: every arm × seed (× search point) is a trial
        space["arm"] = tune.grid_search([arm.name for arm in spec.arms])
    return space


def trial_resources(spec: ExperimentSpec):
    """Tune's placement group for one trial, from RLlib's own resource request for the built config."""
    config = build_algorithm_config(spec, spec.seeds[0])
    return config.algo_class.default_resource_request(config)


def trial_resources_or_refuse(spec: ExperimentSpec):
    """trial_resources, with an algorithm's refusal to build this config (ValueError 'field: why') as a spec problem."""
    try:
        return trial_resources(spec)
    except ValueError as err:
        raise SpecError([str(err)]) from None


def specs_by_arm(spec: ExperimentSpec) -> dict[str | None, ExperimentSpec]:
    """The spec each trial builds from, by arm name (one entry, None, for a run without arms)."""
    return dict(arm_specs(spec)) if spec.arms else {None: spec}


def arm_resources(spec: ExperimentSpec):
    """Each arm's placement group (arms may use different algorithms, hence different actors): what
    tune.with_resources takes, a factory of the trial's config when the arms differ."""
    by_arm = {name: trial_resources_or_refuse(arm) for name, arm in specs_by_arm(spec).items()}
    first = next(iter(by_arm.values()))
    if all(resources == first for resources in by_arm.values()):
        return first, list(by_arm.values())
    return (lambda config: by_arm[config["arm"]]), list(by_arm.values())


def cluster_autoscales() -> bool:
    """Whether Ray's v2 autoscaler (what KubeRay runs for `autoscalerOptions.version: v2`, as k8s/ asks) manages the
    connected cluster: it reports its state to the GCS. Ray's v1 autoscaler is not detected: its status looks like
    the read-only monitor that every local Ray runs, so a v1 cluster is judged by its present size."""
    import ray
    from ray._raylet import GcsClient
    from ray.core.generated.autoscaler_pb2 import GetClusterStatusReply

    reply = GetClusterStatusReply()
    reply.ParseFromString(GcsClient(ray.get_runtime_context().gcs_address).get_cluster_status(timeout_s=30))
    return reply.HasField("autoscaling_state") and reply.autoscaling_state.autoscaler_state_version > 0


def check_cluster_fits(spec: ExperimentSpec, resources) -> None:
    """Refuse a trial the connected Ray cluster can never place: Tune would keep it PENDING for ever with a warning.

    A cluster with an autoscaler counts what it may grow to (its node groups' maxima) where Ray publishes them; where
    it does not (Ray's open-source autoscalers, whose groups may start at 0 nodes), the autoscaler decides: nothing
    is refused here, and the run says so."""
    import ray

    try:
        from ray._private.state import state as ray_state

        can_grow_to = ray_state.get_max_resources_from_cluster_config() or {}
        autoscales = cluster_autoscales()
    except Exception:  # private APIs: without them, the cluster's present size is what counts
        can_grow_to, autoscales = {}, False
    if autoscales and not can_grow_to:
        print("note: the Ray cluster has an autoscaler whose maximum size Ray does not publish: the trials' "
              "resources are left to it (a request no node group can hold waits for the autoscaler)")
        return
    total = ray.cluster_resources()
    largest_node = {key: max((node["Resources"].get(key, 0.0) for node in ray.nodes() if node.get("Alive")), default=0.0)
                    for key in ("CPU", "GPU")}
    fields = {"CPU": "resources.num_env_runners × num_cpus_per_env_runner + resources.num_learners + 1",
              "GPU": "resources.num_learners × num_gpus_per_learner (resources.profile "
                     f"{spec.resources.profile})"}
    problems = []
    for key, field in fields.items():
        needed = sum(bundle.get(key, 0.0) for bundle in resources.bundles)
        offered = max(total.get(key, 0.0), float(can_grow_to.get(key, 0) or 0))
        if needed > offered:
            problems.append(f"resources: a trial needs {needed:g} {key}s ({field}) but the Ray cluster offers "
                            f"{offered:g}; use fewer or a larger cluster")
        elif not can_grow_to.get(key) and any(bundle.get(key, 0.0) > largest_node[key] for bundle in resources.bundles):
            biggest = max(bundle.get(key, 0.0) for bundle in resources.bundles)
            problems.append(f"resources: one actor of a trial needs {biggest:g} {key}s on one node ({field}) but the "
                            f"largest node has {largest_node[key]:g}")
    if problems:
        raise SpecError(problems)


def prepare(spec: ExperimentSpec) -> None:
    """The algorithm's checks and shared services (one per experiment, not per trial), before the trials."""
    from armillary.algorithms import registry as algorithms

    prepared = set()
    for arm in specs_by_arm(spec).values():
        hook = algorithms.get(arm.algorithm.name).prepare
        key = (arm.algorithm.name, json.dumps(arm.algorithm.config.model_dump(mode="json"), sort_keys=True))
        if hook is None or key in prepared:
            continue
        prepared.add(key)
        try:
            hook(arm.algorithm.config)
        except ValueError as err:  # "field: what is wrong" — reported like any other spec problem (exit 2)
            raise SpecError([str(err)]) from None


def progress_columns(spec: ExperimentSpec) -> tuple[dict[str, str], dict[str, str]]:
    """The live table's result columns (env steps, the algorithm's headline figures, steps/s) and its parameter
    columns (search-space path → short name)."""
    from armillary.algorithms import registry as algorithms

    own = algorithms.get(spec.algorithm.name).progress_metrics or {metrics.EPISODE_RETURN: "return"}
    columns = {metrics.ENV_STEPS: "env steps", **own, metrics.STEPS_PER_SECOND: "steps/s"}
    return columns, {path: path.split(".")[-1] for path in spec.tune.search_space}


def _progress_reporter(spec: ExperimentSpec, verbose: bool):
    from ray.tune import CLIReporter

    columns, parameters = progress_columns(spec)
    if not verbose:
        return console.live_table(columns, parameters)
    arm = {"arm": "arm"} if spec.arms else {}
    return CLIReporter(metric_columns=columns, parameter_columns={**arm, "seed": "seed", **{f"overrides/{p}": short
                       for p, short in parameters.items()}}, max_report_frequency=15, sort_by_metric=False)


def run_experiment(spec: ExperimentSpec, *, fresh: bool = False, resume_dir: Path | None = None,
                   root: Path | None = None, verbose: bool = True) -> RunOutcome:
    """Run (or resume) an experiment on the Ray cluster this process is connected to.

    verbose=False: the compact live table, and library logs in the run folder's run.log (platform.console)."""
    from ray import tune

    root = root or runs_root()
    started, load_before = time.monotonic(), os.getloadavg()
    # First, before any folder, MLflow run or trial: the layout must fit the cluster (Tune would wait forever), the
    # algorithm's config must build, and a missing model or a failing deployment stops the run here.
    resources, each_arm = arm_resources(spec)
    for needs in each_arm:
        check_cluster_fits(spec, needs)
    uri = tracking.resolve_tracking_uri(spec, root)
    problem = tracking_uri_problem(uri)  # validate checked it where the spec was loaded; this is where it runs
    if problem:
        raise SpecError([f"{'tracking.mlflow_uri' if spec.tracking.mlflow_uri else 'MLFLOW_TRACKING_URI'}: {problem}"])
    prepare(spec)
    resumed_from = resume_dir or (None if fresh else find_resumable(spec, root))
    if resumed_from is not None:
        run_dir = resumed_from
        print(f"Resuming the unfinished run {run_dir}")
    else:
        run_dir = experiment_folder(spec, root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{spec.spec_hash()[:8]}"
        run_dir.mkdir(parents=True, exist_ok=False)
        (run_dir / "spec.yaml").write_text(spec.to_yaml())
        (run_dir / "provenance.json").write_text(json.dumps(tracking.provenance(spec, REPO_ROOT), indent=2))
    if not verbose:
        console.open_run_log(run_dir)

    parent_run_id = None
    try:
        prov = json.loads((run_dir / "provenance.json").read_text())
        experiment_id = tracking.ensure_experiment(uri, spec.tracking.experiment or spec.name, root)
        parent_run_id = tracking.start_parent_run(uri, experiment_id, run_dir, spec, prov)
        tracking_info = {"uri": uri, "experiment_id": experiment_id, "parent_run_id": parent_run_id}
        print(f"MLflow: run {parent_run_id} in experiment {experiment_id!r} at {uri}")
        if uri.startswith("sqlite:"):
            print(f"  open the UI with: mlflow ui --backend-store-uri {uri}")
        outcome = _run_trials(spec, run_dir, resumed_from, resources, uri, experiment_id, parent_run_id, tracking_info,
                              prov, verbose)
        if outcome.ok and spec.arms:
            try:
                outcome.report_paths.insert(0, write_outcome(run_dir, spec, wall_s=time.monotonic() - started,
                                                             load_before=load_before, resumed=resumed_from is not None,
                                                             num_trials=outcome.num_trials))
            except Exception as err:  # the trials finished: the run stays COMPLETED, the comparison can be redone
                print(f"warning: no comparison of the arms ({type(err).__name__}: {err})", file=sys.stderr)
        return outcome
    except BaseException as err:  # Ctrl-C included: nothing is left looking as if it still ran
        _mark_failed(run_dir, uri, parent_run_id, err)
        raise


def _mark_failed(run_dir: Path, uri: str, parent_run_id: str | None, err: BaseException) -> None:
    """A run that stopped before its trials finished: the folder gets a FAILED file and the MLflow parent run the
    status FAILED with the error as a tag (else it stays RUNNING for ever), and the user is told where."""
    error = f"{type(err).__name__}: {err}".strip()
    (run_dir / "FAILED").write_text(error + "\n")
    where = f"run folder {run_dir} (see FAILED)"
    if parent_run_id is not None:
        try:
            tracking.fail_parent_run(uri, parent_run_id, error)
            where += f", MLflow run {parent_run_id}"
        except Exception as mlflow_err:  # the store itself may be what failed
            print(f"warning: could not mark MLflow run {parent_run_id} FAILED: {mlflow_err}", file=sys.stderr)
    print(f"The experiment stopped before its trials finished ({error.splitlines()[0][:300]}); marked FAILED: {where}.",
          file=sys.stderr)


def _run_trials(spec: ExperimentSpec, run_dir: Path, resumed_from: Path | None, resources, uri: str, experiment_id: str,
                parent_run_id: str, tracking_info: dict[str, str], prov: dict[str, Any], verbose: bool) -> RunOutcome:
    from ray import tune

    trainable = tune.with_resources(_trainable(), resources)
    space = param_space(spec, tracking_info)
    tune_dir = run_dir / "tune"
    if resumed_from is not None:
        tuner = tune.Tuner.restore(str(tune_dir), trainable=trainable, resume_errored=True, param_space=space)
    else:
        callback = tracking.MlflowTrialCallback(uri, experiment_id, parent_run_id, run_dir, spec.to_dict(),
                                                tracking.run_tags(spec, prov))
        tuner = tune.Tuner(
            trainable,
            param_space=space,
            tune_config=tune.TuneConfig(scheduler=_scheduler(spec), num_samples=spec.tune.num_samples,
                                        max_concurrent_trials=spec.resources.max_concurrent_trials),
            run_config=tune.RunConfig(
                name="tune",
                storage_path=str(run_dir),
                callbacks=[callback, ForgetDeletedCheckpoints()],
                progress_reporter=_progress_reporter(spec, verbose),
                verbose=1,
                checkpoint_config=tune.CheckpointConfig(num_to_keep=spec.checkpoint.num_to_keep),
                failure_config=tune.FailureConfig(max_failures=spec.failure.max_failures),
            ),
        )
    results = tuner.fit()
    reconcile_results(tune_dir)
    errors = results.num_errors
    # Tune returns normally after Ctrl-C with its trials cut short: such a run is not COMPLETED (so rerunning the
    # command resumes it). ASHA stops trials early by design, so its trials are not held to the stop criterion.
    short = [] if spec.tune.scheduler.kind == "asha" else unfinished_trials(run_dir, len(results))
    if errors == 0 and short:
        print(f"{len(short)} trial(s) stopped before their stop criterion ({'; '.join(short[:3])}): the run is not "
              f"complete; rerun the same command (or `armillary resume {run_dir}`) to continue it", file=sys.stderr)
    ok = errors == 0 and not short
    report_paths: list[Path] = []
    if ok:
        (run_dir / "COMPLETED").write_text(time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        (run_dir / "FAILED").unlink(missing_ok=True)  # from an earlier attempt this run recovered from
        try:
            from armillary.platform.report import report_run

            report_paths = report_run(run_dir, log_to_mlflow=True)
        except Exception as err:  # a plot must never turn a finished experiment into a failed one
            print(f"warning: learning-curve report failed: {err}")
    tracking.finish_parent_run(uri, parent_run_id, ok)
    trials = [(dict(result.config or {}), "error" if result.error else "done", dict(result.metrics or {}))
              for result in results]
    return RunOutcome(run_dir=run_dir, ok=ok, resumed=resumed_from is not None, num_trials=len(results),
                      num_errors=errors, parent_run_id=parent_run_id, tracking_uri=uri, trials=trials,
                      report_paths=list(report_paths))


def reconcile_results(tune_dir: Path) -> None:
    """Keep each training iteration exactly once in Tune's result files, as in MLflow.

    Replayed: a trial restored from a checkpoint (after a crash of its worker or of the driver) re-runs the
    iterations after that checkpoint, and Tune appends their results again. MLflow cannot delete a metric point,
    so the first-logged value stays there; Tune's files keep the same first value.
    Missing: a driver killed while Tune was copying result.json from its staging folder to the run folder restores
    an older copy next to a newer checkpoint, and the trial resumes after iterations the copy lacks. Those rows
    are taken from the trial's checkpoints' own records (trainable.RESULTS_FILE) and put in order, marked
    `armillary/recovered` = 1 (they carry the trial's figures, not Tune's bookkeeping keys). The same happens to a
    trial that PBT restarts: Tune copies its result.json back from the run folder, which can lag behind.
    progress.csv is rewritten as the same rows in a table.
    """
    from armillary.platform.trainable import ITERATION, read_results

    for trial_dir in tune_dir.glob("*/"):
        result_file = trial_dir / "result.json"
        if result_file.is_file():
            rows: dict[int, str] = {}
            trial_ids = set()
            for line in result_file.read_text().splitlines():
                try:
                    row = json.loads(line)
                    rows.setdefault(int(row[ITERATION]), line)
                    if row.get("trial_id"):
                        trial_ids.add(row["trial_id"])
                except (ValueError, KeyError, TypeError):
                    continue  # blank, or half a line from an interrupted copy: the checkpoint's record has the row
            # Every checkpoint kept, newest first: after a PBT exploit the newest one's record starts at the copied
            # checkpoint, and this trial's rows before it are in its own earlier checkpoints (only its own rows:
            # a record can hold the rows of the trial it was copied from).
            for checkpoint in sorted(trial_dir.glob("checkpoint_*/"), reverse=True):
                for row in read_results(checkpoint):
                    iteration = int(row[ITERATION])
                    if iteration not in rows and (not trial_ids or row.get("trial_id") in trial_ids):
                        rows[iteration] = json.dumps({**row, "armillary/recovered": 1})
            result_file.write_text("".join(f"{rows[i]}\n" for i in sorted(rows)))
            _write_progress_csv(trial_dir / "progress.csv", [json.loads(rows[i]) for i in sorted(rows)])


def _write_progress_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """progress.csv as the table of the reconciled result.json. Tune's own file cannot be mended: after a resume Tune
    appends rows under the old header with the columns of the first resumed result (more of them, in another order),
    so every row from the resume on is misread."""
    import csv

    table = [metrics.flatten({k: v for k, v in row.items() if k != "config"}) for row in rows]
    columns = list(dict.fromkeys(key for row in table for key in row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, restval="")
        writer.writeheader()
        writer.writerows(table)


class ForgetDeletedCheckpoints(Callback):
    """A resumed trial forgets the checkpoints keep-N deleted after Tune last saved its state.

    Tune deletes a trial's oldest checkpoint as soon as a new one is registered (checkpoint.num_to_keep), but saves the
    list of checkpoints only every few seconds; after a crash the restored list still holds some already deleted, and
    Tune's next deletion of one of them logged a FileNotFoundError traceback at level ERROR on every resume."""

    def on_trial_start(self, iteration, trials, trial, **info):
        manager = getattr(trial.run_metadata, "checkpoint_manager", None)
        kept = getattr(manager, "_checkpoint_results", None)  # Tune's own list (no public API for it)
        if kept:
            latest = manager.latest_checkpoint_result
            manager._checkpoint_results = [r for r in kept if r is latest or _checkpoint_exists(r.checkpoint)]


def _checkpoint_exists(checkpoint) -> bool:
    from pyarrow.fs import FileType

    return checkpoint.filesystem.get_file_info(checkpoint.path).type != FileType.NotFound


def _trainable():
    from armillary.platform.trainable import train_trial

    return train_trial
