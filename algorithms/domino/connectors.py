"""Learner connector: DOMiNO's rewards into the policy's batch before GAE.

Placed right after NumpyToTensor (PPO appends GAE after it). For each row it reads the policy index i and
φ(s_{t+1}) (the observation after the row's step: RLlib appends one bootstrap row to every episode chunk, so
the next row always holds it, and the bootstrap rows carry LOSS_MASK False). It then

1. folds the batch into the moving averages ψ_i (of φ) and v̄_i (of r_e per step), real rows only; with
   successor_features="network" ψ_i is instead the mean of the successor-feature head ψ̃_θ(s_t, i) over policy
   i's real rows, and the rows (s_t, s_{t+1}, φ(s_{t+1}), terminal) go to the state module's batch for its TD
   loss (the learner trains the head in the same minibatch loop as the policy);
2. computes r_d = c(d_i) φ(s_{t+1})·(ψ_i − ψ_j*) / dim φ with the updated ψ, and writes the two value streams'
   rewards (r_e, r_d) into STREAM_REWARDS (r_e stays in REWARDS too);
3. writes each row's stream weights (σ(λ_i), 1 − σ(λ_i)) — (1, 0) for policy 0 — into STREAM_WEIGHTS, with which
   the ppo algorithm's MultiStreamAdvantages mixes the two GAE advantages: A = σ(λ_i) A_e + (1 − σ(λ_i)) A_d, the
   advantage of the mixed reward σ(λ_i) r_e + (1 − σ(λ_i)) r_d.
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns

from armillary.algorithms.domino import losses
from armillary.algorithms.domino.module import DOMINO_MODULE_ID, SF_MASK, SF_NEXT_OBS, SF_NEXT_PHI, SF_OBS, SF_TERMINATED
from armillary.algorithms.ppo.connectors import STREAM_REWARDS, STREAM_WEIGHTS


def domino_rewards(domino, obs: torch.Tensor, next_obs: torch.Tensor, extrinsic: torch.Tensor, real: torch.Tensor,
                   metrics=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Steps 1–3 above on rows (s_t, s_{t+1}, r_e) of any origin (this connector's batch, or the lean learner's
    rollout arrays flattened): fold the real rows into ψ (unless the head estimates it) and v̄, then return
    (r_d, 0 on rows that are not real; the stream weights [rows, 2]) and log the batch's reward figures."""
    state = domino.state
    _, index = domino.layout.split(obs)
    phi_next, _ = domino.layout.split(next_obs)
    successor_features = None
    if state.sf_network is not None:
        with torch.no_grad():
            successor_features = state.sf_network(obs[real].to(state.psi.dtype))
    state.observe(phi_next[real], extrinsic[real], index[real], successor_features)
    out = state.rewards(phi_next, extrinsic, index)
    dtype = extrinsic.dtype
    bonus = torch.where(real, out["diversity"].to(dtype), torch.zeros_like(extrinsic))
    if metrics is not None and bool(real.any()):
        figures = {
            "diversity_reward_mean": out["diversity"][real].mean(),
            "mixed_reward_mean": out["mixed"][real].mean(),
            "extrinsic_reward_mean": extrinsic[real].mean(),
        }
        if successor_features is not None:
            # How far the head's ψ_i is from this batch's plain mean of φ(s') per policy (the moving
            # average's input): mean over the policies present. Near 0 once the head has caught up.
            phi_means, counts = losses.per_policy_means(phi_next[real].to(state.psi.dtype), index[real], state.hp.num_policies)
            present = counts > 0
            figures["sf_network_gap"] = (state.psi[present] - phi_means[present]).norm(dim=-1).mean()
        for name, value in figures.items():
            metrics.log_value((DOMINO_MODULE_ID, name), float(value), window=1)
    return bonus, out["weights"].to(dtype)


class DominoRewardConnector(ConnectorV2):
    def __call__(self, *, rl_module, batch: dict[str, Any], episodes, metrics=None, **kwargs) -> Any:
        policy = batch[DEFAULT_MODULE_ID]
        if Columns.LOSS_MASK not in policy:
            raise RuntimeError("DOMiNO needs RLlib's LOSS_MASK column to tell real rows from bootstrap rows")
        real = policy[Columns.LOSS_MASK].bool()
        obs = policy[Columns.OBS]
        domino = rl_module[DOMINO_MODULE_ID].unwrapped()
        if domino.state.sf_network is not None:
            phi_next, _ = domino.layout.split(obs.roll(-1, dims=0))
            batch[DOMINO_MODULE_ID] = {
                SF_OBS: obs, SF_NEXT_OBS: obs.roll(-1, dims=0), SF_NEXT_PHI: phi_next,
                SF_TERMINATED: policy[Columns.TERMINATEDS].float(), SF_MASK: real.float(),
            }
        extrinsic = policy[Columns.REWARDS]
        diversity, policy[STREAM_WEIGHTS] = domino_rewards(domino, obs, obs.roll(-1, dims=0), extrinsic, real, metrics)
        policy[STREAM_REWARDS] = torch.stack((extrinsic, diversity), dim=-1)
        return batch
