"""PPO on the served CLIP reward vs the shuffled-goal control, one deployment for every trial, and a replica
killed mid-training — the RL claims of issue 7, measured in one run.

    OMP_NUM_THREADS=1 python benchmarks/clip_reward_rl.py                # 3 seeds x 2 conditions, 400k steps each
    OMP_NUM_THREADS=1 python benchmarks/clip_reward_rl.py --steps 100000 --seeds 0 1 --kill-after-s 30

Needs the small model (`armillary run clip-reward/fit`). Both experiments run through the platform
(`run_experiment`: Tune trials, MLflow, checkpoints), on one local Ray, in turn: first the VLM-reward preset
`clip-reward/ppo-language-goals`, then the control `clip-reward/ppo-language-goals-shuffled`. Both use the same
Serve application (the second finds it running), so one deployment serves all six trials, two at a time.

While they run, a monitor polls the replicas' own stats every few seconds (replica ids, batch sizes formed,
frames scored). `--kill-after-s` seconds into the first experiment it kills the replica (`ray.kill`), and the
iteration that met the dead replica shows in the trial's metrics (clip-reward-ppo/reward_wait_s,
reward_retries). A random policy on the same env gives the random level of ground-truth success.

Writes benchmarks/results/clip-reward-rl-<UTC time>.json and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

import numpy as np  # noqa: E402

PRESETS = {"vlm": "clip-reward/ppo-language-goals", "shuffled": "clip-reward/ppo-language-goals-shuffled"}
FIGURES = ("gt_success_rate", "gt_on_goal_at_end", "gt_on_goal_rate", "firing_rate", "reward_precision", "reward_recall")


def random_policy_level(env_config: dict, episodes: int = 2000, seed: int = 0) -> dict[str, float]:
    """Ground-truth success of uniformly random actions on the same env."""
    from armillary.envs.language_goals import LanguageGoalEnv, LanguageGoalOptions

    env = LanguageGoalEnv(LanguageGoalOptions.model_validate(env_config))
    rng = np.random.default_rng(seed)
    reached = at_end = 0
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        done, info = False, {}
        while not done:
            _, _, terminated, truncated, info = env.step(int(rng.integers(5)))
            done = terminated or truncated
        reached += info["reached"]
        at_end += info["success"]
    return {"gt_success_rate": reached / episodes, "gt_on_goal_at_end": at_end / episodes}


class ReplicaMonitor(threading.Thread):
    """Polls replica_stats every `period_s`; keeps the latest stats of every replica ever seen. Optionally kills
    the replica once, `kill_after_s` after start."""

    def __init__(self, app_name: str, period_s: float = 5.0, kill_after_s: float | None = None):
        super().__init__(daemon=True)
        self.app_name, self.period_s, self.kill_after_s = app_name, period_s, kill_after_s
        self.replicas: dict[str, dict] = {}
        self.killed: dict | None = None
        self._stop_event = threading.Event()
        self._t0 = time.time()

    def run(self) -> None:
        from ray import serve

        from armillary.algorithms.clip_reward.serve import replica_stats

        handle = serve.get_app_handle(self.app_name)
        while not self._stop_event.wait(self.period_s):
            try:
                self.replicas.update(replica_stats(handle, calls=4))
            except Exception as error:  # the replica is being replaced: poll again later
                print(f"monitor: {type(error).__name__}")
            if self.kill_after_s is not None and self.killed is None and time.time() - self._t0 > self.kill_after_s:
                self.killed = self._kill()

    def _kill(self) -> dict:
        import ray

        actors = [a for a in ray.util.list_named_actors(all_namespaces=True)
                  if self.app_name in a["name"] and "REPLICA" in a["name"]]
        ray.kill(ray.get_actor(actors[0]["name"], namespace=actors[0]["namespace"]), no_restart=True)
        print(f"monitor: killed {actors[0]['name']}", flush=True)
        return {"actor": actors[0]["name"], "unix_time": time.time()}

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def trial_rows(run_dir: Path) -> list[dict]:
    rows = []
    for result_file in sorted((run_dir / "tune").glob("*/result.json")):
        results = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
        last = results[-1]
        waits = [r["clip-reward-ppo/reward_wait_s"] for r in results if "clip-reward-ppo/reward_wait_s" in r]
        per_step = [r["clip-reward-ppo/reward_wait_ms_per_step"] for r in results if "clip-reward-ppo/reward_wait_ms_per_step" in r]
        rows.append({
            "trial": result_file.parent.name,
            "seed": last.get("config", {}).get("seed"),
            "env_steps": last["env_runners/num_env_steps_sampled_lifetime"],
            "vlm_return": last["env_runners/episode_return_mean"],
            **{name: last.get(f"clip-reward-ppo/{name}") for name in FIGURES},
            "retries_total": sum(r.get("clip-reward-ppo/reward_retries", 0) for r in results),
            "wait_s_median": statistics.median(waits) if waits else None,
            "wait_s_max": max(waits) if waits else None,
            "wait_ms_per_step_median": statistics.median(per_step) if per_step else None,
            "iterations": len(results),
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400_000, help="env steps per trial")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--kill-after-s", type=float, default=90.0, help="kill the replica this long into the first experiment (<0: never)")
    parser.add_argument("--conditions", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    import ray

    from armillary.platform.runner import run_experiment
    from armillary.platform.spec import load_spec

    ray.init(address="local", include_dashboard=False, runtime_env={"env_vars": {"MUJOCO_GL": "egl", "OMP_NUM_THREADS": "1"}})
    report: dict = {"settings": vars(args), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "conditions": {}}
    started = time.time()
    for i, condition in enumerate(args.conditions):
        spec = load_spec(PRESETS[condition], [f"stop.env_steps={args.steps}", f"seeds={args.seeds}"])
        if i == 0:
            report["random_policy"] = random_policy_level(spec.env.config.model_dump())
        monitor_app = spec.algorithm.config.reward_model.app_name
        from armillary.platform.runner import prepare

        prepare(spec)  # run_experiment does it too; the monitor needs the app up first
        monitor = ReplicaMonitor(monitor_app, kill_after_s=args.kill_after_s if i == 0 and args.kill_after_s >= 0 else None)
        monitor.start()
        t0 = time.time()
        outcome = run_experiment(spec, fresh=True)
        monitor.stop()
        report["conditions"][condition] = {
            "preset": PRESETS[condition], "run_dir": str(outcome.run_dir), "ok": outcome.ok, "seconds": time.time() - t0,
            "trials": trial_rows(outcome.run_dir), "replicas": monitor.replicas, "killed": monitor.killed,
        }
    report["seconds"] = time.time() - started
    report["load_average_end"] = os.getloadavg()

    out = Path(args.out or f"benchmarks/results/clip-reward-rl-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))

    print(f"\nrandom policy: {report['random_policy']}")
    for condition, data in report["conditions"].items():
        print(f"\n{condition} ({data['preset']}, {data['seconds']:.0f} s, ok={data['ok']})")
        for row in data["trials"]:
            print("  " + "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items() if k != "trial"))
        for name in ("gt_success_rate", "gt_on_goal_at_end"):
            values = [row[name] for row in data["trials"] if row[name] is not None]
            if values:
                print(f"  {name}: {np.mean(values):.3f} ± {np.std(values):.3f} over {len(values)} seeds")
        for replica, stats in data["replicas"].items():
            print(f"  replica {replica}: frames {stats['frames']}, requests {stats['requests']}, batches formed {stats['batch_sizes']}")
        if data["killed"]:
            print(f"  killed: {data['killed']['actor']}")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
