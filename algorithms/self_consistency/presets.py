"""Self-consistency presets: the tabular figures and the latent-model evaluation are jobs (torch programs, no RLlib)."""

import json

from armillary.core.presets import register_job

STUDY = "armillary.algorithms.self_consistency.study"
EVALUATION = "armillary.algorithms.self_consistency.evaluation"
# Smoke: 3 seeds, 3 dataset sizes, 60 steps; written under runs/ so it never overwrites the real results.
SMOKE = ["--seeds", "3", "--sizes", "10,40,160", "--steps", "60"]
# Latent-model smoke: 2 seeds, 2 methods, 50 steps, 16 held-out states × 4 MC rollouts.
# The measured figures' budget (a shared, heavily loaded 2-core machine): 400 Adam steps at 3e-3, 8 MC rollouts.
BUDGET = {"steps": 400, "learning_rate": 3e-3, "mc_rollouts": 8}
EVALUATION_SMOKE = {"seeds": 2, "methods": ["td", "sc_direct"], "steps": 50, "eval_states": 16, "mc_rollouts": 4}


def _register_figure(name: str, setting: str, description: str) -> None:
    register_job(f"self-consistency/{name}", STUDY, ["--setting", setting, "--out", f"results/self_consistency/{name}"],
                 description, smoke_args=["--setting", setting, "--out", f"runs/self_consistency/{name}-smoke", *SMOKE])


def _register_evaluation(name: str, env: str, fields: dict, description: str) -> None:
    register_job(f"self-consistency/{name}", EVALUATION,
                 ["--env", env, "--out", f"results/self_consistency/{name}", "--config", json.dumps(fields)], description,
                 smoke_args=["--env", env, "--out", f"runs/self_consistency/{name}-smoke",
                             "--config", json.dumps({**fields, **EVALUATION_SMOKE})])


_register_figure(
    "random-mdp", "evaluation",
    "Tabular policy evaluation on random MDPs: TD, Dyna, SC-Direct/Reverse/Residual × 7 dataset sizes × 30 seeds; "
    "value error against the exact v^π, table and plot to results/ and MLflow.")
_register_figure(
    "random-mdp-control", "control",
    "Tabular control on random MDPs from uniform-policy data: Q-learning vs the model-based methods acting greedily "
    "in the model's look-ahead; regret of the greedy policy in the true MDP, 7 dataset sizes × 30 seeds.")
_register_evaluation(
    "cartpole-evaluation", "CartPole-v1", {**BUDGET, "gamma": 0.95, "policy_temperature": 8.0},
    "Latent value-equivalent model, policy evaluation on CartPole (fixed softmax policy, ~70-step episodes): none, "
    "Dyna, SC-Direct/Reverse/Residual × 5 seeds; RMSE of v̂(h(s)) against Monte Carlo v^π on 128 held-out states.")
_register_evaluation(
    "mountain-car-evaluation", "MountainCar-v0", {**BUDGET, "gamma": 0.98, "policy_temperature": 1.0},
    "Latent value-equivalent model, policy evaluation on MountainCar (energy-pumping softmax policy): none, Dyna, "
    "SC-Direct/Reverse/Residual × 5 seeds; RMSE of v̂(h(s)) against Monte Carlo v^π on 128 held-out states.")
