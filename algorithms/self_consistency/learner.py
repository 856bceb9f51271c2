"""The control agent's learner: PPO's lean learner plus, on every PPO minibatch, the latent model's grounded losses
and the method's self-consistency loss on rollouts imagined under the current policy (thin wrapper).

Per minibatch of real steps s_t (one optimizer, one Adam step on all of the module's parameters):

    loss = PPO(actor π(·|h(s)), critic v̂(h(s)))                                    RLlib's PPO loss, unchanged
         + model_loss_coeff × grounded(K real steps from s_t; value at k ≥ 1, reward, continuation)
         + sc_weight × consistency_method(K imagined steps from h(s_t), a_k ~ π(·|z_k))

The math is in losses.py (grounded_losses, imagine, latent_consistency_loss); the segments come with the train
batch (segments.py). The agent needs the lean learner's array path (one learner, the lean env runner, no KL
penalty, …): anywhere else it stops with an error instead of training PPO without the model.
"""

from __future__ import annotations

import torch

from armillary.algorithms.ppo.learner import LeanPPOTorchLearner
from armillary.algorithms.self_consistency import segments as seg
from armillary.algorithms.self_consistency.config import Method, SelfConsistentPPOHyperparameters
from armillary.algorithms.self_consistency.losses import Segments, grounded_losses, imagine, latent_consistency_loss

CONFIG_KEY = "self_consistency"  # learner_config_dict key of the typed hyperparameters
# Figures of the last minibatch of each update, logged under the module's learner results (and re-logged by the
# algorithm as `self-consistency-ppo/<name>`).
FIGURES = ("model_value_loss", "model_reward_loss", "model_continuation_loss", "consistency_loss", "model_loss")


def hyperparameters(config) -> SelfConsistentPPOHyperparameters:
    hp = config.learner_config_dict.get(CONFIG_KEY)
    if not isinstance(hp, SelfConsistentPPOHyperparameters):
        raise TypeError(f"learner_config_dict['{CONFIG_KEY}'] must be the SelfConsistentPPOHyperparameters (set by "
                        f"self_consistency/configure.apply), got {type(hp).__name__}")
    return hp


def minibatch_segments(minibatch: dict[str, torch.Tensor]) -> Segments:
    return Segments(observations=minibatch[seg.SEGMENT_OBS].float(), actions=minibatch[seg.SEGMENT_ACTIONS],
                    rewards=minibatch[seg.SEGMENT_REWARDS], continues=minibatch[seg.SEGMENT_CONTINUES],
                    valid=minibatch[seg.SEGMENT_VALID], value_targets=minibatch[seg.SEGMENT_TARGETS])


class SelfConsistentPPOLearner(LeanPPOTorchLearner):
    def build(self) -> None:
        self.hp = hyperparameters(self.config)
        super().build()
        self._imagination = torch.Generator(device=self._device)
        seed = self.config.seed
        self._imagination.manual_seed((seed if seed is not None else 0) + 7919)

    def model_losses(self, model, minibatch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The grounded model terms and the method's consistency term on a minibatch (no PPO terms)."""
        hp = self.hp
        segments = minibatch_segments(minibatch)
        z0 = model.encode(segments.observations[:, 0])
        terms = grounded_losses(model, segments, z0=z0, include_policy=False, first_value_step=1)
        figures = {f"model_{name}_loss": term for name, term in terms.items()}
        if hp.method is Method.TD:
            figures["consistency_loss"] = z0.new_zeros(())
        else:
            states, actions = imagine(model, z0, hp.rollout_depth, self._imagination)
            figures["consistency_loss"] = latent_consistency_loss(hp.method, model, states, actions, self.config.gamma)
        return figures

    def _minibatch_loss(self, module, minibatch, **loss_args):
        loss, stats = super()._minibatch_loss(module, minibatch, **loss_args)
        figures = self.model_losses(module.model, minibatch)
        model_loss = figures["model_value_loss"] + figures["model_reward_loss"] + figures["model_continuation_loss"]
        loss = loss + self.hp.model_loss_coeff * model_loss
        if self.hp.method is not Method.TD:
            loss = loss + self.hp.sc_weight * figures["consistency_loss"]
        if loss_args.get("with_stats"):
            stats = {**stats, **{name: value.detach() for name, value in figures.items()}, "model_loss": model_loss.detach()}
        return loss, stats

    def _columns_from_rollouts(self, module_id, rollouts):
        columns = super()._columns_from_rollouts(module_id, rollouts)
        targets = columns["value_targets"].cpu().numpy()
        for key, value in seg.batch_segments(rollouts, targets, self.hp.rollout_depth).items():
            columns[key] = torch.as_tensor(value, device=self._device)
        return columns

    def _loss_columns(self, module_batch):
        raise RuntimeError(
            "self-consistency-ppo trains its model on K-step segments of the env runner's rollouts: it needs the lean "
            "learner's array path (the lean env runner, one learner, no custom learner connector)")

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        raise RuntimeError(
            "self-consistency-ppo has no RLlib generic update path (it would train PPO without the model): use one "
            "learner, the lean env runner, no KL penalty, no torch.compile, grad_clip_by global_norm")
