"""RLlib's PPO module with K value streams: one critic output per reward stream (algorithms/ppo/losses.py).

model_config: RLlib's PPO model config plus "value_streams", the streams' names in the order of the critic's
outputs (e.g. ["extrinsic", "diversity"]); compute_values returns [B, K]. Used by DISDAIN (skill reward and
bonus) and DOMiNO (extrinsic and diversity reward).
"""

from __future__ import annotations

from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule

VALUE_STREAMS = "value_streams"  # the model_config key naming the streams


class MultiValuePPOModule(DefaultPPOTorchRLModule):
    def setup(self):
        streams = self.model_config[VALUE_STREAMS]
        if len(streams) < 2:
            raise ValueError(f"model_config['{VALUE_STREAMS}'] must name at least two value streams, got {streams}")
        self.value_streams: tuple[str, ...] = tuple(streams)
        self.catalog.vf_head_config.output_layer_dim = len(self.value_streams)
        super().setup()
