"""PPO presets: the baselines on each environment family."""

from armillary.core.presets import register

register(
    "ppo/cartpole",
    {
        "algorithm": {"name": "ppo", "config": {"train_batch_size": 2000, "minibatch_size": 250, "num_epochs": 6, "lr": 3e-4}},
        "env": {"name": "CartPole-v1"},
        "seeds": [0, 1, 2],
        # Stop when solved (smoothed return ≥ 475 of the maximum 500), or after 150k env steps.
        "stop": {"env_steps": 150_000, "metric": {"env_runners/episode_return_mean": 475.0}},
        "checkpoint": {"every_iterations": 5},
    },
    "PPO on CartPole-v1, 3 seeds, until solved (return ≥ 475) or 150k env steps.",
)

register(
    "ppo/atari-pong",
    {
        "algorithm": {
            "name": "ppo",
            "config": {
                "lr": 2.5e-4, "gamma": 0.99, "gae_lambda": 0.95, "clip_param": 0.1, "entropy_coeff": 0.01,
                "vf_loss_coeff": 0.5, "train_batch_size": 4096, "minibatch_size": 256, "num_epochs": 4,
                "hidden_sizes": [256], "activation": "relu",
            },
        },
        "env": {"name": "atari-pong"},
        "resources": {"profile": "cluster-gpu"},
        "seeds": [0, 1, 2],
        "stop": {"env_steps": 10_000_000},
        "checkpoint": {"every_iterations": 20},
    },
    "PPO on Pong from pixels (64x64, 4-frame stack): a cluster-scale run (~10M frames).",
    cluster_scale=True,
)

register(
    "ppo/dmc-walker-walk",
    {
        "algorithm": {
            "name": "ppo",
            "config": {
                "lr": 3e-4, "gamma": 0.99, "gae_lambda": 0.95, "clip_param": 0.2, "entropy_coeff": 0.0,
                "train_batch_size": 8000, "minibatch_size": 256, "num_epochs": 10, "hidden_sizes": [256, 256],
            },
        },
        "env": {"name": "dmc-walker-walk"},
        "resources": {"profile": "cluster-cpu"},
        "seeds": [0, 1, 2],
        "stop": {"env_steps": 2_000_000},
        "checkpoint": {"every_iterations": 10},
    },
    "PPO on DeepMind Control walker-walk from proprioceptive state.",
    cluster_scale=True,
)
