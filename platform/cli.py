"""`armillary`: run, submit, resume, list, report, compare, diff, validate and render experiments.

Every command that takes an experiment validates it completely before doing anything else: a bad spec
prints one line per problem (field and what was expected) and exits with code 2, with no Ray started.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # dm_control (imported by RLlib) otherwise looks for a display
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's table with our columns, not a flood of dicts
# Ray 2.60 clusters use token authentication by default. Clients must say so before Ray is imported
# (the mode is read once); they then read the token file. Export RAY_AUTH_MODE=disabled to opt out.
os.environ.setdefault("RAY_AUTH_MODE", "token")

EXIT_INVALID = 2


def _experiment_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", help="a preset name (armillary list) or a YAML spec file")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. algorithm.config.lr=1e-4 seeds=[0,1]")
    parser.add_argument("--smoke", action="store_true", help="the real code path on tiny sizes (< 60 s)")


def _load(args):
    from armillary.platform.spec import load_spec

    return load_spec(args.experiment, args.overrides, smoke=getattr(args, "smoke", False))


def connect_ray(address: str | None = None, *, dashboard: bool = True, verbose: bool = True) -> None:
    """Join the cluster at `address` / $RAY_ADDRESS, else start a local Ray (with dashboard) for this process.

    verbose=False: Ray's own messages go to the run log and the workers' output stays in the trial folders and
    Ray's session logs (trial errors still reach the console through Tune, in full)."""
    if not verbose:
        from armillary.platform import console

        console.quiet_libraries()
    import ray

    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=verbose)
        _quiet_again(verbose)
        return
    kwargs = {}
    if os.environ.get("ARMILLARY_METRICS_EXPORT_PORT"):
        kwargs["_metrics_export_port"] = int(os.environ["ARMILLARY_METRICS_EXPORT_PORT"])
    # address="local": always a fresh Ray for this process. A bare ray.init() would join whatever cluster
    # `ray start` last recorded on this machine, even a dead one.
    # Loopback only: the embedded Ray is this process's, and its GCS, raylet, object manager, agents, dashboard and
    # metrics export (unauthenticated Prometheus) have no business on the laptop's other interfaces. Ray turns
    # 127.0.0.1 into the machine's address unless it runs as a single-machine Ray (its own switch, the default on
    # macOS and Windows); the variable reaches the processes it starts, the constant this already-imported Ray.
    from ray._private import ray_constants

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    context = ray.init(address="local", include_dashboard=dashboard, dashboard_host="127.0.0.1",
                       _node_ip_address="127.0.0.1", runtime_env={"env_vars": {"MUJOCO_GL": "egl"}},
                       log_to_driver=verbose, **kwargs)
    _quiet_again(verbose)
    if dashboard and context.dashboard_url:
        print(f"Ray dashboard: http://{context.dashboard_url}")


def _quiet_again(verbose: bool) -> None:
    """ray.init and the imports it triggers add console handlers of their own; RLlib adds its own on import (done
    here, before building a config logs its first notice)."""
    if not verbose:
        import mlflow  # noqa: F401
        import ray.rllib  # noqa: F401
        import ray.tune  # noqa: F401

        from armillary.platform import console

        console.quiet_libraries()


def _job_preset(name: str):
    """The preset `name` if it is a job preset (e.g. clip-reward/fit), else None."""
    from armillary.platform import presets

    try:
        preset = presets.get(name)
    except KeyError:
        return None
    return preset if preset.job else None


def _job_argv(preset, args) -> list[str] | None:
    """A job preset's arguments from the command line's overrides, or None after saying what is wrong (exit 2)."""
    try:
        return preset.job_argv(args.overrides, smoke=args.smoke)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return None


def run_job(preset, args) -> int:
    import importlib

    argv = _job_argv(preset, args)
    if argv is None:
        return EXIT_INVALID
    print(f"{preset.name}: python -m {preset.job} {' '.join(argv)}", flush=True)
    return importlib.import_module(preset.job).main(argv)


def cmd_run(args) -> int:
    job = _job_preset(args.experiment)
    if job is not None:
        return run_job(job, args)
    spec = _load(args)
    from armillary.platform.runner import run_experiment

    started = time.monotonic()
    connect_ray(args.address, dashboard=not args.no_dashboard, verbose=args.verbose)
    outcome = run_experiment(spec, fresh=args.fresh, verbose=args.verbose)
    return _summarize(spec, outcome, time.monotonic() - started)


def cmd_resume(args) -> int:
    from armillary.platform.runner import load_run_spec, run_experiment

    run_dir = Path(args.run_dir).resolve()
    if not (run_dir / "spec.yaml").is_file():
        print(f"error: {run_dir} is not an Armillary run folder (no spec.yaml)", file=sys.stderr)
        return EXIT_INVALID
    if (run_dir / "COMPLETED").exists():
        print(f"{run_dir} already completed; nothing to resume")
        return 0
    spec = load_run_spec(run_dir)
    started = time.monotonic()
    connect_ray(args.address, dashboard=not args.no_dashboard, verbose=args.verbose)
    outcome = run_experiment(spec, resume_dir=run_dir, root=run_dir.parents[1], verbose=args.verbose)
    return _summarize(spec, outcome, time.monotonic() - started)


def _summarize(spec, outcome, wall_s: float) -> int:
    """Each trial's final figures, the wall time, and where the results, the MLflow run and the report are."""
    from armillary.platform import console
    from armillary.platform.runner import progress_columns

    state = "finished" if outcome.ok else f"finished with {outcome.num_errors} failed trial(s)"
    print(f"\nExperiment {state}: {outcome.num_trials} trial(s){' (resumed)' if outcome.resumed else ''} "
          f"in {console.duration(wall_s)}")
    if outcome.trials:
        columns, parameters = progress_columns(spec)
        print("\n".join(console.trial_rows(outcome.trials, columns, parameters)))
    print(f"  results:  {outcome.run_dir}")
    print(f"  MLflow:   run {outcome.parent_run_id} at {outcome.tracking_uri}")
    if outcome.report_paths:
        print(f"  report:   {outcome.report_paths[0]}" + (f" (+{len(outcome.report_paths) - 1} more)"
                                                         if len(outcome.report_paths) > 1 else ""))
    else:
        print(f"  curves:   armillary report {outcome.run_dir}")
    if console.run_log_path() is not None:
        print(f"  log:      {console.run_log_path()} (library messages; --verbose prints them)")
    return 0 if outcome.ok else 1


def cmd_submit(args) -> int:
    job = _job_preset(args.experiment)
    if job is not None:
        from armillary.platform.submit import submit_job_preset

        argv = _job_argv(job, args)
        if argv is None:
            return EXIT_INVALID
        return submit_job_preset(job.name, job.job, argv, address=args.address, wait=args.wait)
    spec = _load(args)
    from armillary.platform.submit import submit

    return submit(spec, address=args.address, wait=args.wait)


def cmd_validate(args) -> int:
    job = _job_preset(args.experiment)
    if job is not None:
        argv = _job_argv(job, args)
        if argv is None:
            return EXIT_INVALID
        print(f"{args.experiment}: a job preset; runs python -m {job.job} {' '.join(argv)}")
        return 0
    spec = _load(args)
    print(f"{args.experiment}: valid ({spec.algorithm.name} on {spec.env.name}, {len(spec.seeds)} seed(s), "
          f"profile {spec.resources.profile}, spec hash {spec.spec_hash()})")
    if args.show:
        print(spec.to_yaml())
    return 0


def cmd_list(args) -> int:
    from armillary.algorithms import registry as algorithms
    from armillary.envs import registry as environments
    from armillary.platform import presets

    print("Presets:")
    for name in presets.names():
        preset = presets.get(name)
        tag = "[cluster] " if preset.cluster_scale else "[job] " if preset.job else ""
        print(f"  {name:<32} {tag}{preset.description}")
    print("\nAlgorithms:")
    for name in algorithms.names():
        print(f"  {name:<32} {algorithms.get(name).description}")
    print("\nEnvironments:")
    for name in environments.names():
        print(f"  {name:<32} {environments.get(name).description}")
    return 0


def cmd_report(args) -> int:
    from armillary.platform.report import report_run

    paths = report_run(Path(args.run_dir).resolve(), metrics=args.metric or None, log_to_mlflow=not args.no_mlflow)
    for path in paths:
        print(path)
    return 0


def cmd_diff(args) -> int:
    from armillary.platform.report import diff_runs

    print(diff_runs(Path(args.run_a).resolve(), Path(args.run_b).resolve()))
    return 0


def cmd_compare(args) -> int:
    from armillary.platform.compare import CompareError, compare_runs

    try:
        paths = compare_runs([Path(r) for r in args.run_dirs], out=Path(args.out) if args.out else None,
                             metrics=args.metric or None, x_axis=args.x, log_to_mlflow=not args.no_mlflow)
    except CompareError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INVALID
    for path in paths:
        print(path)
    return 0


def cmd_render_k8s(args) -> int:
    if args.profile:
        args.overrides = [*args.overrides, f"resources.profile={args.profile}"]
    spec = _load(args)
    from armillary.platform.k8s import render_rayjob

    sys.stdout.write(render_rayjob(spec, image=args.image, namespace=args.namespace, existing_cluster=args.existing_cluster))
    return 0


SERVICES = {"reward-model": "armillary.algorithms.clip_reward.serve"}


def cmd_serve(args) -> int:
    """Start a shared service (today: the CLIP reward model) and keep it up until Ctrl-C."""
    import importlib

    return importlib.import_module(SERVICES[args.service]).main(args.options)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="armillary", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run an experiment (resumes an unfinished run of the same spec)")
    _experiment_args(p)
    p.add_argument("--fresh", action="store_true", help="start a new run even if an unfinished one exists")
    p.add_argument("--address", help="join this Ray cluster instead of starting a local one")
    p.add_argument("--no-dashboard", action="store_true", help="start the local Ray without its dashboard")
    p.add_argument("--verbose", action="store_true", help="print every library message and Tune's full status")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("resume", help="resume an unfinished run from its folder")
    p.add_argument("run_dir")
    p.add_argument("--address")
    p.add_argument("--no-dashboard", action="store_true")
    p.add_argument("--verbose", action="store_true", help="print every library message and Tune's full status")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("submit", help="submit an experiment to a Ray cluster as a Ray job")
    _experiment_args(p)
    p.add_argument("--address", required=True, help="the cluster's dashboard address, e.g. http://127.0.0.1:8265")
    p.add_argument("--wait", action="store_true", help="follow the job's logs until it ends")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("validate", help="check a spec without running it")
    _experiment_args(p)
    p.add_argument("--show", action="store_true", help="print the resolved spec")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("list", help="presets, algorithms and environments")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("report", help="learning curves (IQM and 95%% bootstrap CI over seeds vs env steps)")
    p.add_argument("run_dir")
    p.add_argument("--metric", action="append", help="metric to plot (repeatable); default: return and method figures")
    p.add_argument("--no-mlflow", action="store_true", help="do not log the plots to MLflow")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("diff", help="resolved specs and provenance of two runs side by side")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("compare", help="finished runs (or the arms of one run) side by side: curves, IQM table, P(X > Y)")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--metric", action="append", help="metric to compare (repeatable); default: the headline metrics")
    p.add_argument("--x", choices=["steps", "time"], default="steps", help="x axis of the curves: env steps or wall clock")
    p.add_argument("--out", help="folder for the PNGs and compare.md (default: RUN_DIR/compare of the first run)")
    p.add_argument("--no-mlflow", action="store_true", help="do not log the comparison to the runs' MLflow runs")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("serve", help="start a shared service, e.g. `armillary serve reward-model --model PATH`")
    p.add_argument("service", choices=sorted(SERVICES), help="reward-model: the CLIP reward as a Ray Serve application")
    p.add_argument("options", nargs=argparse.REMAINDER, help="the service's options (--help lists them)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("render-k8s", help="a KubeRay RayJob manifest for an experiment")
    _experiment_args(p)
    p.add_argument("--profile", choices=["cluster-cpu", "cluster-gpu"], help="resources profile for the cluster")
    p.add_argument("--image", help="container image with Armillary installed")
    p.add_argument("--namespace", default="armillary")
    p.add_argument("--existing-cluster", help="run on this RayCluster instead of an ephemeral one")
    p.set_defaults(func=cmd_render_k8s)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Flags and positionals in any order on every subcommand (`run ppo/cartpole --smoke seeds=[0]` as well as
    `run --smoke ppo/cartpole seeds=[0]`): plain argparse stops collecting `nargs="*"` positionals at the first
    flag, so each subcommand's own arguments are parsed intermixed."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    command = argv[0] if argv else None
    sub = subparsers.choices.get(command)
    # `serve` passes its remaining arguments through untouched (REMAINDER), which intermixed parsing cannot do.
    if sub is None or command == "serve":
        return parser.parse_args(argv)
    args = sub.parse_intermixed_args(argv[1:])
    args.command = command
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from armillary.platform.spec import SpecError

    try:
        return args.func(args)
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
