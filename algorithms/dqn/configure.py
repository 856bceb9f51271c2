"""DQN's hyperparameters → RLlib's DQNConfig (see README.md for the field-by-field map); no Ray import."""

from __future__ import annotations

from armillary.algorithms.dqn.config import DQNHyperparameters
from armillary.algorithms.registry import split_batch


def apply(config, hp: DQNHyperparameters, env_entry, num_learners: int):
    config.training(
        lr=hp.lr,
        gamma=hp.gamma,
        train_batch_size_per_learner=split_batch(hp.train_batch_size, num_learners),
        replay_buffer_config={"type": "PrioritizedEpisodeReplayBuffer", "capacity": hp.replay_capacity,
                              "alpha": 0.6, "beta": 0.4},
        num_steps_sampled_before_learning_starts=hp.learning_starts,
        target_network_update_freq=hp.target_network_update_freq,
        n_step=hp.n_step,
        double_q=hp.double_q,
        dueling=hp.dueling,
        epsilon=[(0, hp.epsilon_start), (hp.epsilon_steps, hp.epsilon_end)],
        training_intensity=hp.training_intensity,
    )
    model = {"fcnet_hiddens": hp.hidden_sizes, "fcnet_activation": "relu"}
    model.update(env_entry.model_config)
    config.rl_module(model_config=model)
    return config
