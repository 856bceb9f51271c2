"""SCoRe registered with the platform: `armillary run score/arithmetic`.

apply(): the policy module (the transformers LM from `model`), the learner (losses.score_loss against a frozen
reference loaded from the same `model`), the env runner that samples two-turn episodes, and the settings both
read back (learner_config_dict["score"]). Where the work runs (learners, runners, GPUs) stays the platform's.
"""

from __future__ import annotations

from armillary.algorithms.registry import register
from armillary.core.entries import AlgorithmEntry
from armillary.algorithms.score.config import ScoreHyperparameters, check_model


def _config_class():
    from armillary.algorithms.score.algorithm import ScoreConfig

    return ScoreConfig


def settings_from(hp: ScoreHyperparameters, model_source: str, env_name: str, env_options: dict, seed: int) -> dict:
    from armillary.algorithms.score.task_env import splits_of

    train_split, eval_split = splits_of(env_options)
    loss = hp.loss_kwargs()
    loss.pop("variant")  # chosen per iteration by the algorithm (Stage I → `variant`) and sent with each batch
    return {
        "model": model_source, "variant": hp.variant.value, "stage1_iterations": hp.stage1_iterations, "loss": loss,
        "group_size": hp.group_size, "temperature": hp.temperature, "max_new_tokens": hp.max_new_tokens,
        "problems_per_iteration": hp.problems_per_iteration, "eval_every": hp.eval_every, "eval_problems": hp.eval_problems,
        "env_name": env_name, "env_options": dict(env_options), "train_split": train_split, "eval_split": eval_split,
        "seed": int(seed or 0), "sft_only_corrections": hp.sft_only_corrections,
    }


def apply(config, hp: ScoreHyperparameters, env_entry, num_learners: int):
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from armillary.algorithms.score.module import ScoreLMModule
    from armillary.algorithms.score.quick_model import resolve_model
    from armillary.algorithms.score.task_env import build_task_from_env

    env_options = dict(config.env_config or {})
    build_task_from_env(env_entry.name, env_options)  # a wrong env or task option fails here, on the driver
    for problem in hp.layout_problems(num_learners, config.num_env_runners):  # checked by validate, too
        raise ValueError(problem)
    # Built-in quick models are made (once per machine, seconds) here on the driver, so every learner and runner
    # then loads the same saved folder with from_pretrained.
    check_model(hp.model)
    source = resolve_model(hp.model)
    config.training(lr=hp.lr, grad_clip=hp.grad_clip, grad_clip_by="global_norm")
    config.rl_module(rl_module_spec=RLModuleSpec(module_class=ScoreLMModule, model_config={"model": source}))
    config.learners(learner_config_dict={"score": settings_from(hp, source, env_entry.name, env_options, config.seed)})
    return config


def prepare(hp: ScoreHyperparameters) -> None:
    """Before any trial, where the run runs: the policy's model must be there (see config.check_model)."""
    check_model(hp.model)


def final_artifacts(algo, folder) -> None:
    """The trained policy in transformers format (loadable by `score_evaluate --model` and any HF tooling) and
    its greedy two-turn metrics on the held-out problems."""
    import json
    from pathlib import Path

    from armillary.algorithms.score.algorithm import EVAL_NAMES
    from armillary.algorithms.score.model import save_policy

    folder = Path(folder)
    module = algo.get_module()
    save_policy(module.lm, module.tokenizer, folder / "model")
    figures = algo.evaluate_greedy(algo.settings["eval_problems"])
    named = {f"score/{EVAL_NAMES[k]}": v for k, v in figures.items() if k in EVAL_NAMES}
    (folder / "final_metrics.json").write_text(json.dumps({"iteration": algo.iteration, **named}, indent=2))


ENTRY = register(
    AlgorithmEntry(
        name="score",
        hyperparameters=ScoreHyperparameters,
        config_class=_config_class,
        apply=apply,
        description="SCoRe: self-correction of a transformers LM by two-stage multi-turn RL (REINFORCE + per-turn KL; "
        "Stage I then Stage II with the progress bonus).",
        # A smoke run trains the built-in quick model (made in seconds) on single-digit sums (the env's smoke options).
        smoke={"model": "builtin:tiny-1digit", "problems_per_iteration": 4, "group_size": 4, "max_new_tokens": 16,
               "eval_problems": 4, "eval_every": 1, "lr": 1e-3},
        final_artifacts=final_artifacts,
        prepare=prepare,
        # An episode's "return" is meaningless here; the sampled batch's accuracies are in every result (the greedy
        # figures only every eval_every iterations).
        progress_metrics={"score/train/acc_t1": "acc@t1 (sampled)", "score/train/acc_t2": "acc@t2 (sampled)"},
        metric_ranges=lambda hp: {"score/train/acc_t1": (0.0, 1.0), "score/train/acc_t2": (0.0, 1.0)},
        metrics=("score/*",),
    )
)
