"""PPO learner for DOMiNO: the policy's loss is PPO's with two value heads (r_e and r_d); after each
iteration's gradient updates the multipliers λ take one step on the Lagrangian.

Connector pipeline (PPO's, edited in build): ... NumpyToTensor → DominoRewardConnector → ... →
TwoStreamAdvantages (instead of RLlib's GAE). The state module has no parameters and so no optimizer, except
with successor_features="network": then its successor-feature head has an Adam optimizer (lr sf_lr) and a TD loss
(losses.successor_feature_td_loss) on the rows the connector wrote, minimised in the same minibatch loop as PPO's.
"""

from __future__ import annotations

import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.connectors.common.numpy_to_tensor import NumpyToTensor
from ray.rllib.core import DEFAULT_MODULE_ID

from armillary.algorithms.domino import losses
from armillary.algorithms.domino.connectors import DominoRewardConnector
from armillary.algorithms.domino.module import DOMINO_MODULE_ID, SF_MASK, SF_NEXT_PHI, SF_TERMINATED
from armillary.algorithms.ppo.learner import set_learning_rate
from armillary.algorithms.skills.connectors import TwoStreamAdvantages
from armillary.algorithms.skills.learner import two_value_heads_ppo_loss


class DominoPPOLearner(PPOTorchLearner):
    _set_optimizer_lr = staticmethod(set_learning_rate)  # lr_schedule on a GPU (algorithms/ppo/learner.py)

    def build(self) -> None:
        super().build()
        if self.config.add_default_connectors_to_learner_pipeline:
            self._learner_connector.insert_after(NumpyToTensor, DominoRewardConnector())
            self._learner_connector.remove("GeneralAdvantageEstimation")
            # bonus_weight is unused: the connector writes per-row stream weights.
            self._learner_connector.append(TwoStreamAdvantages(gamma=self.config.gamma, lambda_=self.config.lambda_, bonus_weight=0.0))

    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        if module_id != DOMINO_MODULE_ID:
            return super().configure_optimizers_for_module(module_id, config)
        network = self._module[module_id].unwrapped().state.sf_network
        if network is None:
            return  # buffers only: moving averages and λ's own Adam step (networks.DominoState)
        params = self.get_parameters(network)
        lr = float(self.config.learner_config_dict["domino"]["sf_lr"])
        self.register_optimizer(module_id=module_id, optimizer=torch.optim.Adam(params), params=params, lr_or_lr_schedule=lr)

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        if module_id == DOMINO_MODULE_ID:
            return self._successor_feature_loss(batch, fwd_out)
        if module_id != DEFAULT_MODULE_ID:
            raise ValueError(f"DOMiNO trains only the policy module by gradient, got a batch for {module_id!r}")
        return two_value_heads_ppo_loss(self, module_id, config, batch, fwd_out, head_names=("extrinsic", "diversity"))

    def _successor_feature_loss(self, batch, fwd_out):
        state = self.module[DOMINO_MODULE_ID].unwrapped().state
        if state.sf_network is None or "psi" not in fwd_out:
            raise ValueError("DOMiNO got a batch for its state module without a successor-feature head to train")
        loss = losses.successor_feature_td_loss(
            fwd_out["psi"], fwd_out["psi_next"], batch[SF_NEXT_PHI], batch[SF_TERMINATED], batch[SF_MASK], state.settings.sf_discount
        )
        self.metrics.log_value((DOMINO_MODULE_ID, "sf_td_loss"), float(loss.detach()), window=1)
        return loss

    def after_gradient_based_update(self, *, timesteps) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        state = self.module[DOMINO_MODULE_ID].unwrapped().state
        state.update_multipliers()
        for name, value in state.figures().items():
            self.metrics.log_value((DOMINO_MODULE_ID, name), value, window=1)
