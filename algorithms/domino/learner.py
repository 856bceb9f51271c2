"""PPO learner for DOMiNO: the policy's loss is PPO's with two value heads (r_e and r_d); after each
iteration's gradient updates the multipliers λ take one step on the Lagrangian.

Connector pipeline (PPO's, edited in build): ... NumpyToTensor → DominoRewardConnector → ... →
MultiStreamAdvantages (../ppo/connectors.py, instead of RLlib's GAE). The state module has no parameters and so no optimizer, except
with successor_features="network": then its successor-feature head has an Adam optimizer (lr sf_lr) and a TD loss
(losses.successor_feature_td_loss) on the rows the connector wrote, minimised in the same minibatch loop as PPO's.

With ψ from the moving average (the default) the learner takes the `ppo` algorithm's lean path
(../ppo/learner.py): the lean env runner's rollout arrays go straight to the train batch — the same three steps
as the connector (connectors.domino_rewards) on the flattened [T, envs] slots, both value heads in one forward, GAE
per stream mixed with each row's weights (rollout.train_batch) — and PPO's minibatch loop runs with the two-stream
loss (../ppo/losses.py). The successor-feature head (a second trained module) takes RLlib's generic update, whose
policy loss is the same function (ppo.learner.multi_stream_loss_for_module).
"""

from __future__ import annotations

import torch
from ray.rllib.connectors.common.numpy_to_tensor import NumpyToTensor
from ray.rllib.core import ALL_MODULES, DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.utils.metrics import CONNECTOR_PIPELINE_TIMER, LEARNER_CONNECTOR

from armillary.algorithms.domino import losses
from armillary.algorithms.domino.connectors import DominoRewardConnector, domino_rewards
from armillary.algorithms.domino.module import DOMINO_MODULE_ID, SF_MASK, SF_NEXT_PHI, SF_TERMINATED
from armillary.algorithms.domino.config import DominoHyperparameters
from armillary.algorithms.ppo.connectors import MultiStreamAdvantages
from armillary.algorithms.ppo.learner import LeanPPOTorchLearner
from armillary.algorithms.ppo.rollout import train_batch


def domino_hyperparameters(config) -> DominoHyperparameters:
    """The DominoHyperparameters the entry's apply() put on the RLlib config (learner_config_dict["domino"])."""
    hp = config.learner_config_dict.get("domino")
    if not isinstance(hp, DominoHyperparameters):
        raise TypeError(f"learner_config_dict['domino'] must be the DominoHyperparameters (set by the domino entry's "
                        f"apply), got {type(hp).__name__}")
    return hp


class DominoPPOLearner(LeanPPOTorchLearner):
    def build(self) -> None:
        self.hp = domino_hyperparameters(self.config)
        super().build()
        if self.config.add_default_connectors_to_learner_pipeline:
            self._learner_connector.insert_after(NumpyToTensor, DominoRewardConnector())
            self._learner_connector.remove("GeneralAdvantageEstimation")
            self._learner_connector.append(MultiStreamAdvantages(gamma=self.config.gamma, lambda_=self.config.lambda_))

    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        if module_id != DOMINO_MODULE_ID:
            return super().configure_optimizers_for_module(module_id, config)
        network = self._module[module_id].unwrapped().state.sf_network
        if network is None:
            return  # buffers only: moving averages and λ's own Adam step (networks.DominoState)
        params = self.get_parameters(network)
        self.register_optimizer(module_id=module_id, optimizer=torch.optim.Adam(params), params=params,
                                lr_or_lr_schedule=self.hp.sf_lr)

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        if module_id == DOMINO_MODULE_ID:
            return self._successor_feature_loss(batch, fwd_out)
        if module_id != DEFAULT_MODULE_ID:
            raise ValueError(f"DOMiNO trains only the policy module by gradient, got a batch for {module_id!r}")
        return super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)

    # --- the lean path (moving-average ψ) ----------------------------------------------------------------------
    def _trained_module_id(self) -> str | None:
        # The state module holds buffers only, unless it has the successor-feature head to train.
        return DEFAULT_MODULE_ID if self.module[DOMINO_MODULE_ID].unwrapped().state.sf_network is None else None

    def _columns_from_rollouts(self, module_id, rollouts) -> dict[str, torch.Tensor]:
        """The connector pipeline's train batch from the rollout arrays: connectors.domino_rewards on every slot
        (s_t, s_{t+1}, r_e), both value heads on every observation, then GAE per stream and the weighted mix."""
        config = self.config.get_config_for_module(module_id)
        module = self.module[module_id].unwrapped()
        domino = self.module[DOMINO_MODULE_ID].unwrapped()
        values, shapes, current, following, extrinsic, real = [], [], [], [], [], []
        with self.metrics.log_time((ALL_MODULES, LEARNER_CONNECTOR, CONNECTOR_PIPELINE_TIMER)), torch.no_grad():
            for rollout in rollouts:
                observations = torch.as_tensor(rollout.observations, device=self._device).float()
                slots, envs = rollout.rewards.shape
                shapes.append((slots, envs))
                flat = observations.reshape(-1, observations.shape[-1])
                values.append(module.compute_values({Columns.OBS: flat}).reshape(slots + 1, envs, -1).cpu().numpy())
                current.append(observations[:-1].reshape(slots * envs, -1))
                following.append(observations[1:].reshape(slots * envs, -1))
                extrinsic.append(torch.as_tensor(rollout.rewards, device=self._device).float().reshape(-1))
                real.append(torch.as_tensor(rollout.real, device=self._device).reshape(-1))
            # All rollouts' rows at once: one moving-average step of ψ and v̄ per update, as the connector takes one
            # batch.
            extrinsic = torch.cat(extrinsic)
            bonus, weight = domino_rewards(domino, torch.cat(current), torch.cat(following), extrinsic, torch.cat(real),
                                           self.metrics)
            sizes = [slots * envs for slots, envs in shapes]
            rewards = [torch.stack(parts, -1).reshape(*shape, 2).cpu().numpy()
                       for *parts, shape in zip(extrinsic.split(sizes), bonus.split(sizes), shapes)]
            weights = [part.reshape(*shape, 2).cpu().numpy() for part, shape in zip(weight.split(sizes), shapes)]
            batch = train_batch(rollouts, values, gamma=config.gamma, lambda_=config.lambda_, rewards=rewards,
                                weights=weights)
        return self._columns_of_train_batch(module_id, rollouts, batch)

    def _successor_feature_loss(self, batch, fwd_out):
        state = self.module[DOMINO_MODULE_ID].unwrapped().state
        if state.sf_network is None or "psi" not in fwd_out:
            raise ValueError("DOMiNO got a batch for its state module without a successor-feature head to train")
        loss = losses.successor_feature_td_loss(
            fwd_out["psi"], fwd_out["psi_next"], batch[SF_NEXT_PHI], batch[SF_TERMINATED], batch[SF_MASK], self.hp.sf_discount
        )
        self.metrics.log_value((DOMINO_MODULE_ID, "sf_td_loss"), float(loss.detach()), window=1)
        return loss

    def after_gradient_based_update(self, *, timesteps) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        state = self.module[DOMINO_MODULE_ID].unwrapped().state
        state.update_multipliers()
        for name, value in state.figures().items():
            self.metrics.log_value((DOMINO_MODULE_ID, name), value, window=1)
