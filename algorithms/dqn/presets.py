"""DQN presets."""

from armillary.core.presets import register, register_job

register(
    "dqn/cartpole",
    {
        "algorithm": {"name": "dqn", "config": {"lr": 5e-4, "train_batch_size": 32, "n_step": 3}},
        "env": {"name": "CartPole-v1"},
        "seeds": [0, 1, 2],
        "stop": {"env_steps": 50_000},
        "checkpoint": {"every_iterations": 20},
    },
    "DQN (double, dueling, 3-step, prioritized replay) on CartPole-v1.",
)

register(
    "dqn/atari-pong",
    {
        "algorithm": {
            "name": "dqn",
            "config": {"lr": 1e-4, "train_batch_size": 32, "replay_capacity": 100_000, "learning_starts": 10_000,
                       "target_network_update_freq": 8_000, "epsilon_steps": 250_000, "epsilon_end": 0.01,
                       "hidden_sizes": [512]},
        },
        "env": {"name": "atari-pong"},
        "resources": {"profile": "cluster-gpu"},
        "seeds": [0, 1, 2],
        "stop": {"env_steps": 10_000_000},
        "checkpoint": {"every_iterations": 100},
    },
    "DQN on Pong from pixels: a cluster-scale run.",
    cluster_scale=True,
)

SCALE_JOB = "armillary.algorithms.dqn.scale_job"

register_job(
    "dqn/cartpole-scale", SCALE_JOB, ["--env", "CartPole-v1", "--actors", "1,2,4,8", "--seeds", "0,1,2,3,4",
                                      "--env-steps", "20000", "--out", "results/dqn/scale"],
    "Asynchronous DQN on CartPole with 1, 2, 4, 8 actors × 5 seeds at 8 samples per insert (Acme's limiter): return "
    "vs env steps and wall clock, measured samples per insert; `actors=4` runs one count.",
    smoke_args=["--env", "CartPole-v1", "--actors", "1,2", "--seeds", "0", "--env-steps", "600", "--min-size", "200",
                "--samples-per-insert", "2", "--hidden-sizes", "32", "--out", "runs/dqn/scale-smoke"])

register_job(
    "dqn/atari-pong-scale", SCALE_JOB, ["--env", "atari-pong", "--actors", "64", "--seeds", "0", "--env-steps",
                                        "10000000", "--samples-per-insert", "8", "--min-size", "20000",
                                        "--replay-capacity", "200000", "--hidden-sizes", "512",
                                        "--cpus-per-actor", "1", "--out", "results/dqn/atari-pong-scale"],
    "Asynchronous DQN on Pong from pixels with 64 actors on a cluster (Ray address from RAY_ADDRESS or --address): "
    "Acme's Atari DQN replay ratio (8 samples per insert, 20k min size; a 200k replay, not Acme's 1M: obs and next obs are stored apart, ~6.5 GB on the replay's node).",
    smoke_args=["--env", "atari-pong", "--actors", "1", "--seeds", "0", "--env-steps", "300", "--min-size", "100",
                "--samples-per-insert", "1", "--batch-size", "8", "--replay-capacity", "1000", "--hidden-sizes", "32",
                "--out", "runs/dqn/atari-pong-scale-smoke"])
