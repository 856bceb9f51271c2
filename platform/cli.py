"""`armillary`: run, submit, resume, list, report, diff, validate and render experiments.

Every command that takes an experiment validates it completely before doing anything else: a bad spec
prints one line per problem (field and what was expected) and exits with code 2, with no Ray started.
"""

from __future__ import annotations

import argparse
import os
import sys
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


def connect_ray(address: str | None = None, *, dashboard: bool = True) -> None:
    """Join the cluster at `address` / $RAY_ADDRESS, else start a local Ray (with dashboard) for this process."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
        return
    kwargs = {}
    if os.environ.get("ARMILLARY_METRICS_EXPORT_PORT"):
        kwargs["_metrics_export_port"] = int(os.environ["ARMILLARY_METRICS_EXPORT_PORT"])
    # address="local": always a fresh Ray for this process. A bare ray.init() would join whatever cluster
    # `ray start` last recorded on this machine, even a dead one.
    context = ray.init(address="local", include_dashboard=dashboard, dashboard_host="127.0.0.1",
                       runtime_env={"env_vars": {"MUJOCO_GL": "egl"}}, **kwargs)
    if dashboard and context.dashboard_url:
        print(f"Ray dashboard: http://{context.dashboard_url}")


def _job_preset(name: str):
    """The preset `name` if it is a job preset (e.g. clip-reward/fit), else None."""
    from armillary.platform import presets

    try:
        preset = presets.get(name)
    except KeyError:
        return None
    return preset if preset.job else None


def run_job(preset, args) -> int:
    import importlib

    try:
        argv = preset.job_argv(args.overrides, smoke=args.smoke)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INVALID
    print(f"{preset.name}: python -m {preset.job} {' '.join(argv)}", flush=True)
    return importlib.import_module(preset.job).main(argv)


def cmd_run(args) -> int:
    job = _job_preset(args.experiment)
    if job is not None:
        return run_job(job, args)
    spec = _load(args)
    from armillary.platform.runner import run_experiment

    connect_ray(args.address, dashboard=not args.no_dashboard)
    outcome = run_experiment(spec, fresh=args.fresh)
    return _summarize(outcome)


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
    connect_ray(args.address, dashboard=not args.no_dashboard)
    return _summarize(run_experiment(spec, resume_dir=run_dir, root=run_dir.parents[1]))


def _summarize(outcome) -> int:
    state = "finished" if outcome.ok else f"finished with {outcome.num_errors} failed trial(s)"
    print(f"\nExperiment {state}: {outcome.num_trials} trial(s){' (resumed)' if outcome.resumed else ''}")
    print(f"  results:  {outcome.run_dir}")
    print(f"  MLflow:   run {outcome.parent_run_id} at {outcome.tracking_uri}")
    print(f"  curves:   armillary report {outcome.run_dir}")
    return 0 if outcome.ok else 1


def cmd_submit(args) -> int:
    job = _job_preset(args.experiment)
    if job is not None:
        from armillary.platform.submit import submit_job_preset

        try:
            argv = job.job_argv(args.overrides, smoke=args.smoke)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_INVALID
        return submit_job_preset(job.name, job.job, argv, address=args.address, wait=args.wait)
    spec = _load(args)
    from armillary.platform.submit import submit

    return submit(spec, address=args.address, wait=args.wait)


def cmd_validate(args) -> int:
    job = _job_preset(args.experiment)
    if job is not None:
        print(f"{args.experiment}: a job preset; runs python -m {job.job} {' '.join(job.job_argv(args.overrides, smoke=args.smoke))}")
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
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("resume", help="resume an unfinished run from its folder")
    p.add_argument("run_dir")
    p.add_argument("--address")
    p.add_argument("--no-dashboard", action="store_true")
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

    p = sub.add_parser("report", help="learning curves (mean ± 95%% CI over seeds vs env steps)")
    p.add_argument("run_dir")
    p.add_argument("--metric", action="append", help="metric to plot (repeatable); default: return and method figures")
    p.add_argument("--no-mlflow", action="store_true", help="do not log the plots to MLflow")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("diff", help="resolved specs and provenance of two runs side by side")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.set_defaults(func=cmd_diff)

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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from armillary.platform.spec import SpecError

    try:
        return args.func(args)
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
