"""DOMiNO's state as a learner-only RLModule beside the policy (a TwoValuePPOModule) in a MultiRLModule.

The module holds a DominoState (networks.py): ψ, v̄, λ and λ's Adam moments, all buffers. As an RLModule it
is part of the learner's state, so RLlib checkpoints (and PBT's exploit, which copies checkpoints) carry it;
`learner_only` keeps it off the env runners. It has no parameters and no forward computation of its own.
"""

from __future__ import annotations

from typing import Any

from ray.rllib.core.rl_module.torch import TorchRLModule

from armillary.algorithms.domino.env import DominoLayout
from armillary.algorithms.domino.networks import DominoSettings, DominoState

DOMINO_MODULE_ID = "domino_state"


class DominoStateModule(TorchRLModule):
    """model_config: {"settings": DominoSettings fields, "layout": DominoLayout dict}."""

    def setup(self):
        self.layout = DominoLayout(**self.model_config["layout"])
        self.state = DominoState(DominoSettings(**self.model_config["settings"]))

    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return {}
