"""SCoRe: self-correction by two-stage multi-turn RL (Kumar et al., 2024, arXiv 2409.12917).

Every module here imports without Ray: losses (the learner math), config (hyperparameters), tasks (problems
and verifiers), sandbox (untrusted code execution), model (the tiny transformers policy), rollout (two-turn
sampling, greedy evaluation, learner tensors). See README.md.
"""
