"""GPU check of the paths that must use a GPU when one is present (run it on a GPU machine; CI has none).

    python benchmarks/gpu_check.py [--json FILE]

Through the platform (preset → spec with resources.profile=local-gpu → build_algorithm_config → build_algo):
1. SCoRe (`score/arithmetic`, smoke sizes, built-in quick model): the learner and the sampler on the GPU, two
   iterations (Stage I → Stage II), every parameter trained, the figures finite; checkpoint → restore into a fresh
   algorithm → same weights and iteration, and it trains on.
2. PPO (`ppo/cartpole`, smoke sizes): the learner's module on the GPU, one iteration, finite loss.
Prints one JSON line per check and exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback

os.environ.setdefault("OMP_NUM_THREADS", "1")
EXPECT = {"device": "cuda", "profile": "local-gpu"}  # --cpu: the same checks on the CPU (to try the script anywhere)


def _learner(algo):
    return algo.learner_group._learner  # the local learner (num_learners=0)


def _weights(algo):
    return {k: v.detach().cpu().clone() for k, v in _learner(algo).module["default_policy"].state_dict().items()}


def _build(name: str, overrides: list[str]):
    from armillary.platform.rllib_config import build_algorithm_config
    from armillary.platform.spec import load_spec

    spec = load_spec(name, [*overrides, f"resources.profile={EXPECT['profile']}", "resources.num_env_runners=0"], smoke=True)
    return build_algorithm_config(spec, seed=0).build_algo()


def check_score() -> dict:
    import torch

    from armillary.platform.metrics import summarize

    algo = _build("score/arithmetic", ["algorithm.config.stage1_iterations=1"])
    out: dict = {}
    try:
        learner = _learner(algo)
        sampler = algo.env_runner_group.local_env_runner
        out["learner_device"] = str(next(learner.module["default_policy"].parameters()).device)
        out["reference_device"] = str(next(learner._reference.parameters()).device)
        out["sampler_device"] = str(next(sampler.module.parameters()).device)
        for key in ("learner_device", "reference_device", "sampler_device"):
            assert out[key].startswith(EXPECT["device"]), out
        before = _weights(algo)
        start = time.monotonic()
        results = [summarize(algo.train()) for _ in range(2)]
        out["seconds_for_2_iterations"] = round(time.monotonic() - start, 2)
        assert [r["score/stage"] for r in results] == [1.0, 2.0], [r["score/stage"] for r in results]
        for key in ("score/loss", "score/kl_turn1", "score/acc_t1", "score/train/acc_t1"):
            assert key in results[1] or key in results[0], key
        after = _weights(algo)
        unchanged = [k for k in before if torch.equal(before[k], after[k])]
        assert not unchanged, f"parameters that did not train: {unchanged}"
        synced = {k: v.detach().cpu() for k, v in sampler.module.state_dict().items()}
        assert all(torch.equal(synced[k], after[k]) for k in after), "the sampler did not get the new weights"
        with tempfile.TemporaryDirectory() as folder:
            algo.save_to_path(folder)
            algo.stop()
            algo = _build("score/arithmetic", ["algorithm.config.stage1_iterations=1"])
            algo.restore_from_path(folder)
        restored = _weights(algo)
        assert algo.iteration == 2 and all(torch.equal(restored[k], after[k]) for k in after), "restore lost weights"
        out["after_restore"] = {k: round(v, 4) for k, v in summarize(algo.train()).items()
                                if k in ("score/stage", "score/loss", "score/train/acc_t1")}
        out["figures"] = {k: round(v, 4) for k, v in results[1].items() if k.startswith("score/") and "/train/" not in k}
    finally:
        algo.stop()
    return out


def check_ppo() -> dict:
    import math

    from armillary.platform.metrics import summarize

    algo = _build("ppo/cartpole", [])
    try:
        device = str(next(_learner(algo).module["default_policy"].parameters()).device)
        assert device.startswith(EXPECT["device"]), device
        result = summarize(algo.train())
        losses = [v for k, v in result.items() if k.endswith("total_loss")]
        assert losses and all(math.isfinite(v) for v in losses), losses
        return {"learner_device": device, "env_steps": result.get("env_runners/num_env_steps_sampled_lifetime"),
                "total_loss": losses[0]}
    finally:
        algo.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results here too")
    parser.add_argument("--cpu", action="store_true", help="run the checks on the CPU profile (to try the script)")
    args = parser.parse_args(argv)
    if args.cpu:
        EXPECT.update(device="cpu", profile="local-cpu")
    import ray
    import torch

    info = {"torch": torch.__version__, "cuda": torch.cuda.is_available(),
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "ray": ray.__version__}
    print(json.dumps(info), flush=True)
    if not torch.cuda.is_available() and not args.cpu:
        print("no GPU here: nothing to check", file=sys.stderr)
        return 1
    ray.init(num_cpus=4, num_gpus=0 if args.cpu else 1, include_dashboard=False, log_to_driver=False, object_store_memory=500 * 1024**2)
    results, failed = {"info": info}, False
    for name, check in (("score", check_score), ("ppo", check_ppo)):
        start = time.monotonic()
        try:
            results[name] = {"ok": True, **check()}
        except Exception as error:  # report every check, then fail
            failed = True
            results[name] = {"ok": False, "error": repr(error), "traceback": traceback.format_exc()[-3000:]}
        results[name]["seconds"] = round(time.monotonic() - start, 1)
        print(json.dumps({name: results[name]}), flush=True)
    ray.shutdown()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
