"""Walker-walk throughput of domino/walker vs ppo/dmc-walker-walk at equal PPO sizes (a quick check, not a benchmark).

    OMP_NUM_THREADS=1 python benchmarks/domino_walker_throughput.py domino/walker ppo/dmc-walker-walk

Each preset: local-cpu, 0 env runners, 8,000-step iterations, minibatch 256, 10 epochs; 3 iterations, the last two timed.
"""

import time, ray, sys, os
os.environ.setdefault("MUJOCO_GL", "egl")
from armillary.platform.rllib_config import build_algorithm_config
from armillary.platform.spec import load_spec
ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"MUJOCO_GL": "egl", "OMP_NUM_THREADS": "1"}})
common = ["resources.profile=local-cpu", "resources.num_env_runners=0", "algorithm.config.train_batch_size=8000",
          "algorithm.config.minibatch_size=256", "algorithm.config.num_epochs=10"]
for preset in sys.argv[1:]:
    spec = load_spec(preset, common)
    algo = build_algorithm_config(spec, seed=0).build_algo()
    times = []
    for it in range(3):
        t = time.time(); r = algo.train(); times.append(time.time() - t)
    steps = r["env_runners"]["num_env_steps_sampled_lifetime"]
    print(preset, "iteration seconds", [round(x, 1) for x in times], "env steps", steps, "steps/s (last 2 iterations)", round(16000 / sum(times[1:]), 1), flush=True)
    if "domino" in r:
        print({k: v for k, v in r["domino"].items() if not isinstance(v, dict)})
    algo.stop()
