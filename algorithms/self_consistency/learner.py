"""The control agent's learner: PPO's lean learner plus, on PPO's minibatches, the latent model's grounded losses
and the method's self-consistency loss on rollouts imagined under the current policy (thin wrapper).

Per minibatch of real steps s_t (one optimizer, one Adam step on all of the module's parameters):

    loss = PPO(actor π(·|h(s)), critic v̂(h(s)))                                    RLlib's PPO loss, unchanged
         + n × [ model_loss_coeff × grounded(K real steps from s_t; value at k ≥ 1, reward, continuation)
                 + sc_weight × consistency_method(K imagined steps from h(s_t), a_k ~ π(·|z_k)) ]

with the bracket on every n-th minibatch (n = model_every; 1: every one) and on its first model_row_fraction of
rows. The math is in losses.py (control_losses: grounded_losses, imagine and latent_consistency_loss fused); the
segments come with the train batch (segments.py). The agent needs the lean learner's array path (one learner, the
lean env runner, no KL penalty, …): anywhere else it stops with an error instead of training PPO without the model.
"""

from __future__ import annotations

import contextlib

import torch
from ray.rllib.core.columns import Columns

from armillary.algorithms.ppo.learner import LeanPPOTorchLearner, minibatch_loss
from armillary.algorithms.self_consistency import segments as seg
from armillary.algorithms.self_consistency.config import Method, SelfConsistentPPOHyperparameters
from armillary.algorithms.self_consistency.losses import Segments, control_losses

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

    def model_losses(self, model, minibatch: dict[str, torch.Tensor], *, z0: torch.Tensor | None = None,
                     first_logits: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The grounded model terms and the method's consistency term on a minibatch (no PPO terms), computed by
        losses.control_losses. z0, first_logits: h(s_t) and π's logits at it, when PPO's forward has them."""
        segments = minibatch_segments(minibatch)
        if z0 is None:
            z0 = model.encode(segments.observations[:, 0])
        terms = control_losses(model, segments, z0, self.hp.method, self.config.gamma, self._imagination, first_logits)
        figures = {f"model_{name}_loss": terms[name] for name in ("value", "reward", "continuation")}
        figures["consistency_loss"] = terms["consistency"] if "consistency" in terms else z0.new_zeros(())
        return figures

    def _train_module(self, module_id, columns, **kwargs):
        self._minibatch_index = 0  # hp.model_every counts the minibatches of each update
        super()._train_module(module_id, columns, **kwargs)

    _minibatch_index = 0

    def _minibatch_loss(self, module, minibatch, **loss_args):
        hp = self.hp
        with_model = self._minibatch_index % hp.model_every == 0
        self._minibatch_index += 1
        # One train forward for PPO and the model: z_0 = h(s_t) and π's logits at it are the same tensors in both.
        fwd_out = module._forward_train(minibatch)
        loss, stats = minibatch_loss(module, minibatch, fwd_out=fwd_out, **loss_args)
        if not (with_model or loss_args.get("with_stats")):
            return loss, stats
        # The model terms on the minibatch's first model_rows rows: the minibatch is a shuffled slice of the train
        # batch, so they are a uniform random subset of it (hp.model_row_fraction). A minibatch without them
        # (hp.model_every) that reports the figures computes them without gradient, outside the loss.
        rows = hp.model_rows(len(fwd_out[Columns.EMBEDDINGS]))
        with contextlib.nullcontext() if with_model else torch.no_grad():
            figures = self.model_losses(module.model, {key: value[:rows] for key, value in minibatch.items()},
                                        z0=fwd_out[Columns.EMBEDDINGS][:rows],
                                        first_logits=fwd_out[Columns.ACTION_DIST_INPUTS][:rows])
        model_loss = figures["model_value_loss"] + figures["model_reward_loss"] + figures["model_continuation_loss"]
        if with_model:
            terms = hp.model_loss_coeff * model_loss
            if hp.method is not Method.TD:
                terms = terms + hp.sc_weight * figures["consistency_loss"]
            loss = loss + hp.model_every * terms
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
