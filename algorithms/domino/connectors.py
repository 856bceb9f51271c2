"""Learner connector: DOMiNO's rewards into the policy's batch before GAE.

Placed right after NumpyToTensor (PPO appends GAE after it). For each row it reads the policy index i and
φ(s_{t+1}) (the observation after the row's step: RLlib appends one bootstrap row to every episode chunk, so
the next row always holds it, and the bootstrap rows carry LOSS_MASK False). It then

1. folds the batch into the moving averages ψ_i (of φ) and v̄_i (of r_e per step), real rows only;
2. computes r_d = c(d_i) φ(s_{t+1})·(ψ_i − ψ_j*) / dim φ with the updated ψ, into BONUS_REWARDS (the second
   value head's stream), leaving r_e in REWARDS (the first head's);
3. writes each row's stream weights (σ(λ_i), 1 − σ(λ_i)) — (1, 0) for policy 0 — into STREAM_WEIGHTS, which
   TwoStreamAdvantages uses to mix the two GAE advantages: A = σ(λ_i) A_e + (1 − σ(λ_i)) A_d, the advantage of
   the mixed reward σ(λ_i) r_e + (1 − σ(λ_i)) r_d.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns

from armillary.algorithms.domino.module import DOMINO_MODULE_ID
from armillary.algorithms.skills.connectors import BONUS_REWARDS, STREAM_WEIGHTS


class DominoRewardConnector(ConnectorV2):
    def __call__(self, *, rl_module, batch: dict[str, Any], episodes, metrics=None, **kwargs) -> Any:
        policy = batch[DEFAULT_MODULE_ID]
        if Columns.LOSS_MASK not in policy:
            raise RuntimeError("DOMiNO needs RLlib's LOSS_MASK column to tell real rows from bootstrap rows")
        real = policy[Columns.LOSS_MASK].bool()
        obs = policy[Columns.OBS]
        domino = rl_module[DOMINO_MODULE_ID].unwrapped()
        _, index = domino.layout.split(obs)
        phi_next, _ = domino.layout.split(obs.roll(-1, dims=0))
        extrinsic = policy[Columns.REWARDS]

        domino.state.observe(phi_next[real], extrinsic[real], index[real])
        out = domino.state.rewards(phi_next, extrinsic, index)
        dtype = extrinsic.dtype
        policy[BONUS_REWARDS] = torch.where(real, out["diversity"].to(dtype), torch.zeros_like(extrinsic))
        policy[STREAM_WEIGHTS] = out["weights"].to(dtype)

        if metrics is not None and bool(real.any()):
            figures = {
                "diversity_reward_mean": out["diversity"][real].mean(),
                "mixed_reward_mean": out["mixed"][real].mean(),
                "extrinsic_reward_mean": extrinsic[real].mean(),
            }
            for name, value in figures.items():
                metrics.log_value((DOMINO_MODULE_ID, name), float(value), window=1)
        return batch
