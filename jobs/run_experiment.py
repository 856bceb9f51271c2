"""Ray Jobs entrypoint: run one fully resolved experiment spec on the cluster this job runs in.

`armillary submit` and the KubeRay RayJob both start this module; it connects to the job's cluster
(RAY_ADDRESS is set by Ray Jobs) and runs the spec exactly as `armillary run` would on a laptop.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--spec-json", help="the resolved spec as JSON")
    source.add_argument("--spec-file", help="a resolved spec YAML/JSON file")
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args(argv)

    from armillary.platform.cli import EXIT_INVALID, connect_ray
    from armillary.platform.runner import run_experiment
    from armillary.platform.spec import SpecError, validate

    try:
        if args.spec_json:
            data = json.loads(args.spec_json)
        else:
            import yaml

            with open(args.spec_file) as handle:
                data = yaml.safe_load(handle)
        spec = validate(data)
    except (SpecError, json.JSONDecodeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INVALID

    connect_ray()
    outcome = run_experiment(spec, fresh=args.fresh)
    print(f"armillary: run_dir={outcome.run_dir} ok={outcome.ok} trials={outcome.num_trials} "
          f"mlflow_run={outcome.parent_run_id}")
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
