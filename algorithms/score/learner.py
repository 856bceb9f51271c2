"""The SCoRe learner: a TorchLearner whose loss is losses.score_loss.

Per batch: the module's per-token log-probs of both turns (with gradient), the frozen reference model's (without),
both laid side by side (losses.join_turns), then the variant's shaped rewards → KL-penalised per-turn returns →
leave-one-out advantages → per-turn credit → REINFORCE. The variant of each batch travels in the batch itself
(column `variant`, the index into losses.Variant), so a learner never needs to know the schedule: the algorithm
decides Stage I or Stage II per iteration, and a restored or restarted learner cannot be in the wrong stage.
The SFT baselines switch the loss to losses.sft_loss: `sft_correction` (STaR-style) on the policy's accepted second
attempts, `pair_sft` on the runner's (wrong attempt → correct sibling) pairs, whose rows the batch marks (`sft_kept`).

Each learner gets whole problem groups (the leave-one-out baseline needs all k samples of a problem); with
several learners, DDP averages the gradients, which equals the gradient of the mean loss over all of them
because the shards are equally sized (the algorithm checks).
"""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.core.learner.torch.torch_learner import TorchLearner

from armillary.algorithms.score import losses
from armillary.algorithms.score.run_settings import NAMESPACE, score_run
from armillary.algorithms.score.module import turn_columns

VARIANTS = tuple(losses.Variant)


def variant_code(variant: losses.Variant) -> int:
    return VARIANTS.index(losses.Variant(variant))


class ScoreLearner(TorchLearner):
    def build(self) -> None:
        super().build()
        from armillary.algorithms.score.model import load_policy

        run = score_run(self.config)
        # π_ref: the initial weights, frozen. Loaded from the same source as the policy rather than copied from it,
        # so a learner restored from a checkpoint still has the *initial* model as its reference.
        self._reference, _ = load_policy(run.model_source, device=self._device)
        self._reference.eval().requires_grad_(False)
        self._loss_kwargs = run.loss_kwargs
        self._only_corrections = run.hp.sft_only_corrections

    def compute_loss_for_module(self, *, module_id, config, batch: dict[str, Any], fwd_out: dict[str, torch.Tensor]):
        codes = batch["variant"].unique()
        if codes.numel() != 1:
            raise ValueError(f"variant: one objective per batch expected, got codes {codes.tolist()}")
        variant = VARIANTS[int(codes.item())]

        reference = []
        with torch.no_grad():
            for turn in ("turn1", "turn2"):
                ids, attention, response = (batch[c] for c in turn_columns(turn))
                positions = (attention.long().cumsum(-1) - 1).clamp(min=0)
                logits = self._reference(input_ids=ids, attention_mask=attention, position_ids=positions).logits
                reference.append(losses.response_log_probs(logits, ids, response))
        log_probs, mask1, mask2 = losses.join_turns(fwd_out["turn1_log_probs"], batch["turn1_response_mask"],
                                                    fwd_out["turn2_log_probs"], batch["turn2_response_mask"])
        ref_log_probs, _, _ = losses.join_turns(reference[0], batch["turn1_response_mask"],
                                                reference[1], batch["turn2_response_mask"])
        if variant in losses.SFT_VARIANTS:
            if variant is losses.Variant.PAIR_SFT:
                kept = batch["sft_kept"].float()
                loss = losses.sft_loss(log_probs, mask2, kept)
            else:
                loss, kept = losses.correction_sft_loss(log_probs, mask2, batch["correct_turn1"], batch["correct_turn2"],
                                                        only_corrections=self._only_corrections)
            estimator = self._loss_kwargs["kl_estimator"]
            figures = {"score/loss": float(loss.detach()), "score/sft_kept_fraction": float(kept.mean()),
                       "score/kl_turn1": float(losses.sequence_kl(log_probs.detach(), ref_log_probs, mask1, estimator).mean()),
                       "score/kl_turn2": float(losses.sequence_kl(log_probs.detach(), ref_log_probs, mask2, estimator).mean())}
        else:
            out = losses.score_loss(log_probs, ref_log_probs, mask1, mask2, batch["correct_turn1"], batch["correct_turn2"],
                                    variant=variant, **self._loss_kwargs)
            loss, figures = out.loss, out.metrics()
        for name, value in figures.items():
            self.metrics.log_value((module_id, name), value, window=1)
        self.metrics.log_value((module_id, "score/tokens_turn1"), float(mask1.sum(-1).float().mean()), window=1)
        self.metrics.log_value((module_id, "score/tokens_turn2"), float(mask2.sum(-1).float().mean()), window=1)
        return loss
