"""PPO's hyperparameters → an RLlib AlgorithmConfig's PPO semantics (losses, batches, network); no Ray import.

Every PPO-based method (skills, domino, clip_reward) starts from this `apply` on its own config class.
"""

from __future__ import annotations

from armillary.algorithms.ppo.config import PPOHyperparameters
from armillary.algorithms.registry import split_batch


def apply(config, hp: PPOHyperparameters, env_entry, num_learners: int):
    config.training(
        lr=[list(point) for point in hp.lr_schedule] if hp.lr_schedule else hp.lr,
        gamma=hp.gamma,
        lambda_=hp.gae_lambda,
        clip_param=hp.clip_param,
        vf_loss_coeff=hp.vf_loss_coeff,
        vf_clip_param=hp.vf_clip_param,
        entropy_coeff=hp.entropy_coeff,
        use_kl_loss=hp.use_kl_loss,
        grad_clip=hp.grad_clip,
        grad_clip_by="global_norm",
        train_batch_size_per_learner=split_batch(hp.train_batch_size, num_learners),
        minibatch_size=hp.minibatch_size,
        num_epochs=hp.num_epochs,
    )
    model = {"fcnet_hiddens": hp.hidden_sizes, "fcnet_activation": hp.activation, "head_fcnet_hiddens": []}
    model.update(env_entry.model_config)  # e.g. conv filters for pixel observations
    config.rl_module(model_config=model)
    return config
