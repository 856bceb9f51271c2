"""DOMiNO's state as a learner-only RLModule beside the policy (a ppo MultiValuePPOModule) in a MultiRLModule.

The module holds a DominoState (networks.py): ψ, v̄, λ and λ's Adam moments, all buffers, and with
successor_features="network" the successor-feature head ψ̃_θ(s, i), the module's only parameters. As an
RLModule it is part of the learner's state, so RLlib checkpoints (and PBT's exploit, which copies checkpoints)
carry it; `learner_only` keeps it off the env runners. Its training forward pass (network mode only) evaluates
the head on the rows the reward connector wrote for it (SF_* columns).
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.core.rl_module.torch import TorchRLModule

from armillary.algorithms.domino.env import DominoLayout
from armillary.algorithms.domino.networks import DominoState

DOMINO_MODULE_ID = "domino_state"
# The successor-feature head's training rows (written by DominoRewardConnector, network mode only):
SF_OBS = "domino_sf_obs"  # s_t, the full DOMiNO observation (one-hot i included)
SF_NEXT_OBS = "domino_sf_next_obs"  # s_{t+1}
SF_NEXT_PHI = "domino_sf_next_phi"  # φ(s_{t+1})
SF_TERMINATED = "domino_sf_terminated"  # 1.0 where s_{t+1} is terminal (no bootstrap)
SF_MASK = "domino_sf_mask"  # 1.0 on real rows (not RLlib's bootstrap rows)


class DominoStateModule(TorchRLModule):
    """model_config: {"hyperparameters": the DominoHyperparameters, "layout": DominoLayout dict}."""

    def setup(self):
        self.layout = DominoLayout(**self.model_config["layout"])
        self.state = DominoState(self.model_config["hyperparameters"], feature_dim=self.layout.feature_dim,
                                 observation_dim=self.layout.size)

    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return {}

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        if self.state.sf_network is None or SF_OBS not in batch:
            return {}
        rows = batch[SF_OBS].shape[0]
        both = self.state.sf_network(torch.cat((batch[SF_OBS], batch[SF_NEXT_OBS]), dim=0))
        return {"psi": both[:rows], "psi_next": both[rows:]}
