"""DQN presets."""

from armillary.core.presets import register

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
