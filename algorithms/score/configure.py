"""From SCoRe's hyperparameters to a run, and what a finished run leaves behind.

apply(): the policy module (the transformers LM from `model`), the learner (losses.score_loss against a frozen
reference loaded from the same `model`), the env runner that samples two-turn episodes, and the `ScoreRun` the
algorithm, learner and runners read (learner_config_dict["score"]): the typed hyperparameters and what apply()
resolved on the driver. Where the work runs (learners, runners, GPUs) stays the platform's.
"""

from __future__ import annotations

from armillary.algorithms.score.config import ScoreHyperparameters, check_model
from armillary.algorithms.score.run_settings import NAMESPACE, ScoreRun

def apply(config, hp: ScoreHyperparameters, env_entry, num_learners: int):
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from armillary.algorithms.score.module import ScoreLMModule
    from armillary.algorithms.score.quick_model import resolve_model
    from armillary.algorithms.score.task_env import build_task_from_env, splits_of

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
    train_split, eval_split = splits_of(env_options)
    run = ScoreRun(hp=hp, model_source=source, env_name=env_entry.name, env_options=env_options,
                   train_split=train_split, eval_split=eval_split, seed=int(config.seed or 0))
    config.learners(learner_config_dict={NAMESPACE: run})
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
    figures = algo.evaluate_greedy(algo.hp.eval_problems)
    named = {f"score/{EVAL_NAMES[k]}": v for k, v in figures.items() if k in EVAL_NAMES}
    (folder / "final_metrics.json").write_text(json.dumps({"iteration": algo.iteration, **named}, indent=2))
