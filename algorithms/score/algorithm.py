"""Score: the RLlib Algorithm of SCoRe. One training iteration:

1. the objective of this iteration: Stage I while `iteration < stage1_iterations`, then the configured variant
   (Stage II for SCoRe) — a function of the iteration counter, which checkpoints restore, so a resumed run is
   always in the right stage and continues from the same weights;
2. sample two-turn episodes with the current weights on the env runners (ScoreEnvRunner, batched generation);
3. cut the batch into one shard of whole problem groups per learner and update through the LearnerGroup
   (ScoreLearner: losses.score_loss; several learners average gradients with DDP);
4. push the new weights to the env runners;
5. every `eval_every` iterations (and at the first), greedy two-turn evaluation on held-out problems.

Result keys (flattened by the platform): `score/acc_t1`, `score/acc_t2`, `score/delta_t1_t2`, `score/delta_i_to_c`,
`score/delta_c_to_i`, `score/changed_answer_rate` (greedy, held-out); `score/kl_turn1`, `score/kl_turn2`,
`score/loss`, `score/return_turn1|2` (the learner's batch); `score/train/...` (the sampled batch's figures, at the
training temperature); `score/verifier_flags` (how many responses of the sampled batch, both turns, the verifier
flagged as gaming it: tasks.Verdict.flags); `score/stage` (1 during Stage I, else 2) and `score/variant` (index into
losses.Variant).
"""

from __future__ import annotations

import math

import numpy as np
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, LEARNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

from armillary.algorithms.score import losses
from armillary.algorithms.score.config import ScoreHyperparameters
from armillary.algorithms.score.run_settings import score_run
from armillary.algorithms.score.learner import NAMESPACE, variant_code
from armillary.algorithms.score.rollout import FLAGS

# The learner figures re-logged at the top level (they live under learners/default_policy/ otherwise).
LEARNER_FIGURES = ("score/loss", "score/kl_turn1", "score/kl_turn2", "score/return_turn1", "score/return_turn2",
                   "score/tokens_turn1", "score/tokens_turn2", "score/sft_kept_fraction")
# losses.self_correction_metrics name → result key (the change rate is logged under the name the issue uses).
EVAL_NAMES = {"score/acc_t1": "acc_t1", "score/acc_t2": "acc_t2", "score/delta_t1_t2": "delta_t1_t2",
              "score/delta_i_to_c": "delta_i_to_c", "score/delta_c_to_i": "delta_c_to_i",
              "score/change_rate": "changed_answer_rate"}


class ScoreConfig(AlgorithmConfig):
    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or Score)
        from armillary.algorithms.score.env_runner import ScoreEnvRunner

        self.env_runner_cls = ScoreEnvRunner
        # Batches arrive as ready tensors (token ids and masks); RLlib's episode → batch connectors have nothing to do.
        self.add_default_connectors_to_learner_pipeline = False

    def get_default_rl_module_spec(self):
        from ray.rllib.core.rl_module.rl_module import RLModuleSpec

        from armillary.algorithms.score.module import ScoreLMModule

        return RLModuleSpec(module_class=ScoreLMModule)

    def get_default_learner_class(self):
        from armillary.algorithms.score.learner import ScoreLearner

        return ScoreLearner


def concat_columns(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Stack the runners' columns row-wise; [B, T] columns are right-padded with 0 to the widest part."""
    out = {}
    for key in parts[0]:
        arrays = [p[key] for p in parts]
        if arrays[0].ndim == 2:
            width = max(a.shape[1] for a in arrays)
            arrays = [np.pad(a, ((0, 0), (0, width - a.shape[1]))) for a in arrays]
        out[key] = np.concatenate(arrays, axis=0)
    return out


def shard_by_problem(columns: dict[str, np.ndarray], group_size: int, num_shards: int) -> list[dict[str, np.ndarray]]:
    """Equal shards of whole problem groups (the leave-one-out baseline needs all k samples of a problem together),
    each [B, T] column trimmed to the shard's own longest row."""
    rows = len(columns["correct_turn1"])
    groups = rows // group_size
    if rows % group_size or groups % num_shards:
        raise ValueError(f"problems_per_iteration: {groups} problems do not split evenly over {num_shards} learners")
    per = rows // num_shards
    shards = []
    for start in range(0, rows, per):
        shard = {k: v[start : start + per] for k, v in columns.items()}
        for turn in ("turn1", "turn2"):
            width = int(shard[f"{turn}_attention_mask"].sum(-1).max())
            for suffix in ("input_ids", "attention_mask", "response_mask"):
                shard[f"{turn}_{suffix}"] = shard[f"{turn}_{suffix}"][:, :width]
        shards.append(shard)
    return shards


class Score(Algorithm):
    @classmethod
    def get_default_config(cls) -> ScoreConfig:
        return ScoreConfig()

    @property
    def hp(self) -> ScoreHyperparameters:
        return score_run(self.config).hp

    def current_variant(self) -> losses.Variant:
        hp = self.hp
        return losses.Variant.STAGE1 if self.iteration < hp.stage1_iterations else losses.Variant(hp.variant)

    def training_step(self) -> None:
        hp = self.hp
        variant = self.current_variant()
        runners = self.env_runner_group
        remote = runners.num_remote_workers()
        per_runner = hp.problems_per_iteration // max(1, remote)
        iteration = self.iteration
        pair_sft = variant is losses.Variant.PAIR_SFT
        sampled = runners.foreach_env_runner(
            lambda runner: (runner.sample(num_problems=per_runner, iteration=iteration, pair_sft=pair_sft),
                            runner.get_metrics()),
            local_env_runner=remote == 0,
        )
        columns = concat_columns([part for part, _ in sampled])
        rows = len(columns["correct_turn1"])
        columns["variant"] = np.full(rows, variant_code(variant), dtype=np.int64)
        self.metrics.log_value((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), 2 * rows, reduce="lifetime_sum")
        for name in sampled[0][1]:
            values = [m[name] for _, m in sampled]
            if name == FLAGS:  # a count over the whole batch: summed over the runners, at the top level
                self.metrics.log_value((NAMESPACE, name.split("/", 1)[1]), float(sum(values)), window=1)
                continue
            self.metrics.log_value((NAMESPACE, "train", name.split("/", 1)[1]), float(np.mean(values)), window=1)

        num_shards = max(1, self.config.num_learners)
        shards = shard_by_problem(columns, hp.group_size, num_shards)
        batches = [MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(shard)}, env_steps=2 * len(shard["variant"]))
                   for shard in shards]
        if self.learner_group.is_local:
            results = self.learner_group.update(batch=batches[0])
        else:
            results = self.learner_group.update(batches=batches)
        self.metrics.aggregate(results, key=LEARNER_RESULTS)
        for name in LEARNER_FIGURES:
            value = float(self.metrics.peek((LEARNER_RESULTS, DEFAULT_MODULE_ID, name), default=float("nan")))
            if not math.isnan(value):  # each objective logs its own figures (the SFT baseline has no returns)
                self.metrics.log_value((NAMESPACE, name.split("/", 1)[1]), value, window=1)
        self.metrics.log_value((NAMESPACE, "stage"), 1.0 if variant is losses.Variant.STAGE1 else 2.0, window=1)
        self.metrics.log_value((NAMESPACE, "variant"), float(variant_code(variant)), window=1)

        runners.sync_weights(from_worker_or_learner_group=self.learner_group, inference_only=True)
        if iteration == 0 or (iteration + 1) % hp.eval_every == 0:
            self.log_evaluation(self.evaluate_greedy(hp.eval_problems))

    def evaluate_greedy(self, num_problems: int) -> dict[str, float]:
        """Greedy two-turn metrics of the current weights on held-out problems (on the local runner if there is one)."""
        runners = self.env_runner_group
        if runners.local_env_runner is not None:
            return runners.local_env_runner.evaluate(num_problems=num_problems)
        return runners.foreach_env_runner(lambda runner: runner.evaluate(num_problems=num_problems),
                                          local_env_runner=False, remote_worker_ids=[1])[0]

    def log_evaluation(self, figures: dict[str, float]) -> None:
        for name, key in EVAL_NAMES.items():
            if name in figures:
                self.metrics.log_value((NAMESPACE, key), float(figures[name]), window=1)
