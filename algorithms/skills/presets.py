"""Settings the skill methods' presets share, so that the methods they compare differ only in the method.

Nothing is registered here: each method's presets.py registers its own presets from these.
"""

# Settings found with the (since removed) benchmarks/skills_four_rooms.py, now `disdain/reproduce` (see
# algorithms/disdain/README.md).
FOUR_ROOMS_SMALL = {
    "num_skills": 24, "skill_length": 8, "ensemble_size": 2, "bonus_weight": 20.0, "gamma": 0.99,
    "train_batch_size": 512, "minibatch_size": 128, "num_epochs": 4, "lr": 1e-3, "entropy_coeff": 0.01,
    "discriminator_lr": 1e-2, "discriminator_hidden_sizes": [64], "evaluation_interval": 20,
}
# Env, seeds and budget shared by DISDAIN and both baselines, so the variants differ only in E and λ.
FOUR_ROOMS_EXPERIMENT = {
    "env": {"name": "four-rooms-small", "config": {"max_episode_steps": 8, "start": "fixed", "observation": "onehot"}},
    "seeds": [0, 1, 2],
    "stop": {"env_steps": 1_000_000},
    "checkpoint": {"every_iterations": 50},
}

# The open room with random starts: vic/open-room and rvic/open-room, so the two differ only in the reward.
OPEN_ROOM = {
    "num_skills": 8, "skill_length": 5, "gamma": 0.99, "train_batch_size": 2000, "minibatch_size": 250,
    "num_epochs": 4, "lr": 3e-4, "entropy_coeff": 0.01, "discriminator_lr": 2e-3,
    "discriminator_hidden_sizes": [128, 128], "hidden_sizes": [128, 128], "evaluation_interval": 10,
}
OPEN_ROOM_ENV = {"name": "open-room", "config": {"size": 9, "max_episode_steps": 5, "start": "random", "observation": "xy"}}
