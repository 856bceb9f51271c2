"""PPO learner for DOMiNO: the policy's loss is PPO's with two value heads (r_e and r_d); after each
iteration's gradient updates the multipliers λ take one step on the Lagrangian.

Connector pipeline (PPO's, edited in build): ... NumpyToTensor → DominoRewardConnector → ... →
TwoStreamAdvantages (instead of RLlib's GAE). The state module has no parameters and so no optimizer.
"""

from __future__ import annotations

from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.connectors.common.numpy_to_tensor import NumpyToTensor
from ray.rllib.core import DEFAULT_MODULE_ID

from armillary.algorithms.domino.connectors import DominoRewardConnector
from armillary.algorithms.domino.module import DOMINO_MODULE_ID
from armillary.algorithms.skills.connectors import TwoStreamAdvantages
from armillary.algorithms.skills.learner import two_value_heads_ppo_loss


class DominoPPOLearner(PPOTorchLearner):
    def build(self) -> None:
        super().build()
        if self.config.add_default_connectors_to_learner_pipeline:
            self._learner_connector.insert_after(NumpyToTensor, DominoRewardConnector())
            self._learner_connector.remove("GeneralAdvantageEstimation")
            # bonus_weight is unused: the connector writes per-row stream weights.
            self._learner_connector.append(TwoStreamAdvantages(gamma=self.config.gamma, lambda_=self.config.lambda_, bonus_weight=0.0))

    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        if module_id == DOMINO_MODULE_ID:
            return  # buffers only: moving averages and λ's own Adam step (networks.DominoState)
        return super().configure_optimizers_for_module(module_id, config)

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        if module_id != DEFAULT_MODULE_ID:
            raise ValueError(f"DOMiNO trains only the policy module by gradient, got a batch for {module_id!r}")
        return two_value_heads_ppo_loss(self, module_id, config, batch, fwd_out, head_names=("extrinsic", "diversity"))

    def after_gradient_based_update(self, *, timesteps) -> None:
        super().after_gradient_based_update(timesteps=timesteps)
        state = self.module[DOMINO_MODULE_ID].unwrapped().state
        state.update_multipliers()
        for name, value in state.figures().items():
            self.metrics.log_value((DOMINO_MODULE_ID, name), value, window=1)
