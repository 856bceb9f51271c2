"""Self-consistency presets: the tabular figures are jobs (one vectorised torch program per figure, no RLlib)."""

from armillary.core.presets import register_job

STUDY = "armillary.algorithms.self_consistency.study"
# Smoke: 3 seeds, 3 dataset sizes, 60 steps; written under runs/ so it never overwrites the real results.
SMOKE = ["--seeds", "3", "--sizes", "10,40,160", "--steps", "60"]


def _register_figure(name: str, setting: str, description: str) -> None:
    register_job(f"self-consistency/{name}", STUDY, ["--setting", setting, "--out", f"results/self_consistency/{name}"],
                 description, smoke_args=["--setting", setting, "--out", f"runs/self_consistency/{name}-smoke", *SMOKE])


_register_figure(
    "random-mdp", "evaluation",
    "Tabular policy evaluation on random MDPs: TD, Dyna, SC-Direct/Reverse/Residual × 7 dataset sizes × 30 seeds; "
    "value error against the exact v^π, table and plot to results/ and MLflow.")
_register_figure(
    "random-mdp-control", "control",
    "Tabular control on random MDPs from uniform-policy data: Q-learning vs the model-based methods acting greedily "
    "in the model's look-ahead; regret of the greedy policy in the true MDP, 7 dataset sizes × 30 seeds.")
