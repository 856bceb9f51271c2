"""PPO throughput, side by side: Armillary vs plain RLlib vs a single-process reference vs the raw env.

    python benchmarks/throughput.py            # 3 rounds, both envs, Tune path included (~8-10 min)
    python benchmarks/throughput.py --quick    # 1 round, fewer steps (~2 min)

Contenders (one subprocess each, all started by this script, all on one Ray cluster it starts for itself):

  raw-env         gymnasium SyncVectorEnv, uniformly random actions: the ceiling no learner can pass.
  reference       benchmarks/ppo_reference.py: plain torch + gymnasium vector envs, one process (CleanRL style).
  plain-rllib     PPOConfig written out by hand below: the same PPO semantics, RLlib's defaults for
                  everything a typical user leaves alone (where it runs and how it samples).
  armillary       the platform path: armillary.platform.rllib_config.build_algorithm_config(spec, seed),
                  then build_algo() and train() in this worker process (like a notebook or a script).
  armillary-tune  the full `armillary run` path: armillary.platform.runner.run_experiment (Tune trial,
                  MLflow tracking, checkpoints at the spec's default cadence) in its own Ray worker.

Every contender runs the same PPO: train batch 4000 env steps, minibatches of 128, 4 epochs, separate
64-64 tanh actor and critic MLPs, lr 3e-4, gamma 0.99, lambda 0.95, clip 0.2, value-loss weight 0.5 with
the squared error clipped at 10, no entropy bonus, no KL penalty, global gradient-norm clip 0.5. The
reference and the raw env use as many parallel envs as the Armillary profile does (runners x envs each),
so the comparison is about execution, not about how many envs step together.

Method: build everything, run one warm-up training iteration per contender (the first iteration pays
for lazy initialisation), then for each round run every contender for a fixed number of env steps, one
after the other, and time it. The machine is shared (2 cores, other people's tests), so rounds interleave
the contenders and the table reports the median over rounds with the min-max spread.

Results go to benchmarks/results/throughput-<UTC date>.json (ignored by git) and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")  # `import ray.rllib` imports dm_control

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
_MARK = "@@bench "  # result lines of a worker start with this; everything else on its stdout is Ray noise

ENVS = {"cartpole": "CartPole-v1", "four-rooms": "four-rooms-small"}
CONTENDERS = ("raw-env", "reference", "plain-rllib", "plain-rllib-1thread", "armillary", "armillary-tune")

# The PPO every contender runs (Armillary's PPOHyperparameters defaults, written out).
PPO = {"train_batch_size": 4000, "minibatch_size": 128, "num_epochs": 4, "hidden_sizes": [64, 64],
       "activation": "tanh", "lr": 3e-4, "gamma": 0.99, "gae_lambda": 0.95, "clip_param": 0.2,
       "vf_loss_coeff": 0.5, "vf_clip_param": 10.0, "entropy_coeff": 0.0, "use_kl_loss": False, "grad_clip": 0.5}
SEED = 0


# ---------------------------------------------------------------------------------------------------------
# The contenders. Each is built (and warmed up) once, then measured once per round.


def armillary_spec(env_name: str, profile: str = "local-cpu", stop_env_steps: int = 10**9,
                   resources: dict[str, Any] | None = None):
    from armillary.platform.spec import validate

    return validate({
        "name": f"bench/ppo-{env_name.lower()}",
        "algorithm": {"name": "ppo", "config": PPO},
        "env": {"name": env_name},
        "resources": {"profile": profile, **(resources or {})},
        "seeds": [SEED],
        "stop": {"env_steps": stop_env_steps},
    })


def parallel_envs(env_name: str, profile: str) -> int:
    """How many envs step together on the Armillary profile (what the reference and raw env get too)."""
    from armillary.platform.rllib_config import resolved_resources

    res = resolved_resources(armillary_spec(env_name, profile))
    return max(1, res["num_env_runners"]) * res["num_envs_per_env_runner"]


def plain_rllib_config(env_name: str):
    """PPO as a user would write it by hand: our PPO semantics, RLlib's defaults for everything else.

    Left at RLlib 2.60's defaults: 2 env runners (1 CPU each) x 1 env, gymnasium sync vectorisation,
    rollout_fragment_length "auto" (2000 per runner here), the learner in the driver (num_learners=0)
    with torch's default thread count, batch_mode truncate_episodes.
    """
    from ray.rllib.algorithms.ppo import PPOConfig

    if env_name == "CartPole-v1":
        env = "CartPole-v1"
    else:  # a custom env needs registering, as any RLlib user does
        from ray.tune.registry import register_env

        from armillary.envs import registry

        env = f"plain/{env_name}"
        register_env(env, lambda _config: registry.make(env_name))
    return (
        PPOConfig()
        .environment(env)
        .training(lr=PPO["lr"], gamma=PPO["gamma"], lambda_=PPO["gae_lambda"], clip_param=PPO["clip_param"],
                  vf_loss_coeff=PPO["vf_loss_coeff"], vf_clip_param=PPO["vf_clip_param"],
                  entropy_coeff=PPO["entropy_coeff"], use_kl_loss=PPO["use_kl_loss"], grad_clip=PPO["grad_clip"],
                  grad_clip_by="global_norm", train_batch_size_per_learner=PPO["train_batch_size"],
                  minibatch_size=PPO["minibatch_size"], num_epochs=PPO["num_epochs"])
        .rl_module(model_config={"fcnet_hiddens": PPO["hidden_sizes"], "fcnet_activation": PPO["activation"],
                                 "head_fcnet_hiddens": []})
        .debugging(seed=SEED)
    )


class RawEnv:
    def __init__(self, env_name: str, num_envs: int):
        from ppo_reference import make_vector_env

        from armillary.envs import registry

        self.envs = make_vector_env(lambda: registry.make(env_name), num_envs, SEED)
        self.envs.action_space.seed(SEED)
        self.num_envs = num_envs
        self.measure(10_000)  # warm-up

    def measure(self, env_steps: int) -> tuple[int, float]:
        env_steps = max(env_steps, 100_000)  # a short run of a fast env is mostly timer noise
        actions = [self.envs.action_space.sample() for _ in range(env_steps // self.num_envs)]
        start = time.perf_counter()
        for action in actions:
            self.envs.step(action)
        return len(actions) * self.num_envs, time.perf_counter() - start


class Reference:
    def __init__(self, env_name: str, num_envs: int):
        import ppo_reference

        from armillary.envs import registry

        self.ppo = ppo_reference
        self.make_env = lambda: registry.make(env_name)
        self.num_envs = num_envs
        self.env_name = env_name
        self.round = 0
        self.measure(PPO["train_batch_size"])  # warm-up

    def measure(self, env_steps: int) -> tuple[int, float]:
        # Each round is a fresh short run of whole iterations (its setup, a few ms, is not timed). Like RLlib's
        # rollout_fragment_length "auto", each env steps ceil(batch / envs) times (64 envs: 63 x 64 = 4032 steps).
        args = self.ppo.Args(env_id=self.env_name, seed=SEED + self.round, total_steps=env_steps,
                             num_envs=self.num_envs, num_steps=-(-PPO["train_batch_size"] // self.num_envs),
                             minibatch_size=PPO["minibatch_size"], num_epochs=PPO["num_epochs"], lr=PPO["lr"],
                             gamma=PPO["gamma"], gae_lambda=PPO["gae_lambda"], clip_coef=PPO["clip_param"],
                             vf_coef=PPO["vf_loss_coeff"], vf_clip=PPO["vf_clip_param"], ent_coef=PPO["entropy_coeff"],
                             max_grad_norm=PPO["grad_clip"], hidden_sizes=PPO["hidden_sizes"])
        self.round += 1
        result = self.ppo.train(args, make_env=self.make_env)
        return result["env_steps"], result["seconds"]


class RLlibAlgo:
    """An RLlib Algorithm trained in this process: plain-rllib or the armillary library path."""

    def __init__(self, config):
        self.algo = config.build_algo()
        self.steps = 0
        self.measure(PPO["train_batch_size"])  # warm-up: one iteration

    def measure(self, env_steps: int) -> tuple[int, float]:
        before = self.steps
        start = time.perf_counter()
        while self.steps - before < env_steps:
            result = self.algo.train()
            self.steps = result["env_runners"]["num_env_steps_sampled_lifetime"]
        return self.steps - before, time.perf_counter() - start


class ArmillaryTune:
    """The full `armillary run` path. Each measure() is one complete run_experiment (Tune trial in a Ray
    worker, MLflow tracking, checkpoints). Tune hands results to its driver in bursts, so the timed window is
    the trial's own: the sum of its iteration times (RLlib's time_this_iter_s, the same span the other RLlib
    contenders time around train()) after the first, warm-up, iteration. tune.report and checkpoint writes
    between iterations fall outside it; `end_to_end_s`, the whole run with startup, is recorded beside it."""

    def __init__(self, env_name: str, profile: str):
        self.env_name, self.profile = env_name, profile
        self.root = Path(tempfile.mkdtemp(prefix="armillary-bench-"))

    def measure(self, env_steps: int) -> tuple[int, float, dict[str, float]]:
        from armillary.platform.runner import run_experiment

        spec = armillary_spec(self.env_name, self.profile, stop_env_steps=PPO["train_batch_size"] + env_steps)
        root = Path(tempfile.mkdtemp(dir=self.root))
        started = time.perf_counter()
        outcome = run_experiment(spec, fresh=True, root=root)
        end_to_end = time.perf_counter() - started
        found = sorted(root.glob("*/*/tune/*/result.json"))
        rows = [json.loads(line) for line in found[0].read_text().splitlines() if line.strip()] if found else []
        if not outcome.ok or len(rows) < 2:
            raise RuntimeError(f"Tune run failed or reported too little ({len(rows)} results): {outcome}")
        steps = rows[-1][_STEPS] - rows[0][_STEPS]
        seconds = sum(row["time_this_iter_s"] for row in rows[1:])
        return int(steps), seconds, {"end_to_end_s": end_to_end, "end_to_end_env_steps": rows[-1][_STEPS]}


_STEPS = "env_runners/num_env_steps_sampled_lifetime"


def variant_resources(kind: str) -> dict[str, int]:
    """`armillary@1x32` -> 1 env runner x 32 envs each: the platform path with other resource settings."""
    runners, envs = kind.split("@", 1)[1].split("x")
    return {"num_env_runners": int(runners), "num_envs_per_env_runner": int(envs)}


def build_contender(kind: str, env_name: str, profile: str):
    if kind.startswith("armillary@"):
        from armillary.platform.rllib_config import build_algorithm_config

        spec = armillary_spec(env_name, profile, resources=variant_resources(kind))
        return RLlibAlgo(build_algorithm_config(spec, SEED))
    if kind == "raw-env":
        return RawEnv(env_name, parallel_envs(env_name, profile))
    if kind == "reference":
        return Reference(env_name, parallel_envs(env_name, profile))
    if kind == "plain-rllib":
        return RLlibAlgo(plain_rllib_config(env_name))
    if kind == "plain-rllib-1thread":  # the same, with torch held to one thread: how much is the thread fix
        import torch

        torch.set_num_threads(1)
        return RLlibAlgo(plain_rllib_config(env_name))
    if kind == "armillary":
        from armillary.platform.rllib_config import build_algorithm_config

        return RLlibAlgo(build_algorithm_config(armillary_spec(env_name, profile), SEED))
    if kind == "armillary-tune":
        return ArmillaryTune(env_name, profile)
    raise ValueError(kind)


# ---------------------------------------------------------------------------------------------------------
# Worker side: one contender per process, driven over stdin/stdout.


def _emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(_MARK + json.dumps(payload) + "\n")
    sys.stdout.flush()


def worker(kind: str, env_name: str, profile: str) -> None:
    sys.path.insert(0, str(HERE))
    if kind not in ("raw-env", "reference"):
        import ray

        ray.init(address=os.environ["ARMILLARY_BENCH_RAY"], log_to_driver=False)
    try:
        contender = build_contender(kind, env_name, profile)
    except Exception as err:  # reported, not fatal to the other contenders
        _emit({"error": f"{type(err).__name__}: {err}"})
        raise
    _emit({"ready": True})
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "stop":
            break
        try:
            steps, seconds, *extra = contender.measure(command["env_steps"])
            _emit({"env_steps": steps, "seconds": seconds, **(extra[0] if extra else {})})
        except Exception as err:
            _emit({"error": f"{type(err).__name__}: {err}"})


# ---------------------------------------------------------------------------------------------------------
# Coordinator side.


class Worker:
    def __init__(self, kind: str, env_name: str, profile: str, ray_address: str, log_dir: Path):
        self.kind = kind
        env = {**os.environ, "ARMILLARY_BENCH_RAY": ray_address, "PYTHONUNBUFFERED": "1"}
        self.log = open(log_dir / f"{kind}-{env_name.replace('/', '_')}.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", kind, "--env", env_name, "--profile", profile],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)

    def reply(self) -> dict[str, Any]:
        for line in self.proc.stdout:
            if line.startswith(_MARK):
                return json.loads(line[len(_MARK):])
            self.log.write(line)
        return {"error": f"worker exited with code {self.proc.wait()} (see {self.log.name})"}

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self.reply()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"op": "stop"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=60)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
        self.log.close()


def bench_env(env_name: str, contenders: list[str], rounds: int, env_steps: int, profile: str, ray_address: str,
              log_dir: Path) -> dict[str, Any]:
    print(f"\n== {env_name}: building {', '.join(contenders)} ...", flush=True)
    workers: dict[str, Worker] = {}
    measured: dict[str, list[dict[str, Any]]] = {kind: [] for kind in contenders}
    errors: dict[str, str] = {}
    try:
        # Build one at a time: building is CPU-heavy and the machine has 2 cores.
        for kind in contenders:
            worker_ = Worker(kind, env_name, profile, ray_address, log_dir)
            ready = worker_.reply()
            if "error" in ready:
                errors[kind] = ready["error"]
                print(f"   {kind}: FAILED to build: {ready['error']}", flush=True)
                worker_.close()
                continue
            workers[kind] = worker_
        for round_ in range(rounds):
            # Rotate the order each round so no contender always runs right after the same neighbour.
            order = [k for k in contenders if k in workers]
            order = order[round_ % len(order):] + order[:round_ % len(order)] if order else order
            for kind in order:
                reply = workers[kind].ask({"op": "measure", "env_steps": env_steps})
                if "error" in reply:
                    errors[kind] = reply["error"]
                    print(f"   round {round_ + 1} {kind}: FAILED: {reply['error']}", flush=True)
                    continue
                rate = reply["env_steps"] / reply["seconds"]
                measured[kind].append({**reply, "env_steps_per_s": rate, "load_avg_1m": os.getloadavg()[0]})
                print(f"   round {round_ + 1} {kind:<15} {rate:>10,.0f} env steps/s  "
                      f"({reply['env_steps']} steps in {reply['seconds']:.1f} s, load {os.getloadavg()[0]:.1f})",
                      flush=True)
    finally:
        for worker_ in workers.values():
            worker_.close()
    return {"rounds": measured, "errors": errors}


def summarize(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    summary = {}
    for kind, runs in rounds.items():
        rates = [r["env_steps_per_s"] for r in runs]
        if rates:
            summary[kind] = {"median": statistics.median(rates), "min": min(rates), "max": max(rates), "n": len(rates)}
    return summary


def ratios(summary: dict[str, dict[str, float]]) -> dict[str, float]:
    out = {}
    for ours in [k for k in summary if k.startswith("armillary")]:
        for peer in ("plain-rllib", "reference"):
            if ours in summary and peer in summary:
                out[f"{ours}/{peer}"] = summary[ours]["median"] / summary[peer]["median"]
    return out


def print_table(results: dict[str, Any]) -> None:
    print("\nPPO env steps/s (sampling + learning), median over rounds [min-max]:")
    header = f"{'contender':<16}" + "".join(f"{env:>28}" for env in results["envs"])
    print(header)
    kinds = list(dict.fromkeys(k for env in results["envs"].values() for k in env["summary"]))
    for kind in kinds:
        cells = []
        for env in results["envs"].values():
            s = env["summary"].get(kind)
            cells.append(f"{s['median']:>10,.0f} [{s['min']:,.0f}-{s['max']:,.0f}]" if s else "-")
        if any(c != "-" for c in cells):
            print(f"{kind:<16}" + "".join(f"{c:>28}" for c in cells))
    print("ratios of medians:")
    names = sorted({name for env in results["envs"].values() for name in env["ratios"]})
    for name in names:
        print(f"{name:<32}" + "".join(f"{env['ratios'].get(name, float('nan')):>11.2f}x"
                                      for env in results["envs"].values()))


def main() -> None:
    parser = argparse.ArgumentParser(description="PPO throughput: Armillary vs plain RLlib vs reference vs raw env.")
    parser.add_argument("--quick", action="store_true",
                        help="1 round of 1 iteration, without the Tune path and the 1-thread plain RLlib (~2-4 min)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--iterations", type=int, default=None, help="training iterations timed per round")
    parser.add_argument("--envs", nargs="+", default=list(ENVS), choices=list(ENVS))
    parser.add_argument("--contenders", nargs="+", default=None, choices=CONTENDERS)
    parser.add_argument("--profile", default="local-cpu")
    parser.add_argument("--variants", nargs="*", default=[], metavar="RxE",
                        help="extra Armillary contenders with R env runners x E envs each, e.g. 0x32 1x16")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--env", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.env, args.profile)
        return

    rounds = args.rounds or (1 if args.quick else 3)
    iterations = args.iterations or (1 if args.quick else 3)
    skipped_when_quick = ("armillary-tune", "plain-rllib-1thread")
    contenders = args.contenders or [k for k in CONTENDERS if not (args.quick and k in skipped_when_quick)]
    contenders += [f"armillary@{v}" for v in args.variants]
    env_steps = iterations * PPO["train_batch_size"]

    import ray

    # Our own local Ray, never someone else's: address="local" always starts a new instance. Its logical
    # CPU count lets every contender's actors exist at once (only one contender runs at a time).
    context = ray.init(address="local", num_cpus=8, include_dashboard=False, log_to_driver=False,
                       runtime_env={"env_vars": {"MUJOCO_GL": "egl"}})
    from armillary.platform.rllib_config import PROFILE_DEFAULTS

    started = time.time()
    log_dir = Path(tempfile.mkdtemp(prefix="armillary-bench-logs-"))
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "load_avg_1m_before": os.getloadavg()[0]},
        "ppo": PPO, "profile": args.profile, "profile_defaults": PROFILE_DEFAULTS[args.profile],
        "rounds": rounds, "env_steps_per_round": env_steps, "envs": {},
    }
    try:
        for key in args.envs:
            env_name = ENVS[key]
            measured = bench_env(env_name, contenders, rounds, env_steps, args.profile, context.address_info["gcs_address"],
                                 log_dir)
            summary = summarize(measured["rounds"])
            results["envs"][env_name] = {**measured, "summary": summary, "ratios": ratios(summary),
                                         "parallel_envs": parallel_envs(env_name, args.profile)}
    finally:
        ray.shutdown()
    results["machine"]["load_avg_1m_after"] = os.getloadavg()[0]
    results["wall_s"] = time.time() - started
    print_table(results)
    out = args.out or RESULTS / f"throughput-{time.strftime('%Y-%m-%d', time.gmtime())}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out} ({results['wall_s']:.0f} s; worker logs in {log_dir})")


if __name__ == "__main__":
    main()
