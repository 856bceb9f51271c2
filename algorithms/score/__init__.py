"""SCoRe: self-correction by two-stage multi-turn RL (Kumar et al., 2024, arXiv 2409.12917).

Without Ray: losses (the learner math), config (hyperparameters), tasks (problems and verifiers), sandbox
(untrusted code execution), model (the tiny transformers policy), quick_model (built-in quick models), rollout
(two-turn sampling, greedy evaluation, learner tensors). The RLlib wrappers import Ray: module, learner,
env_runner, algorithm, entry (registration), task_env (the tasks as env entries), presets. See README.md.
"""
