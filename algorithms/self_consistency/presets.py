"""Self-consistency presets: the tabular figures are jobs (one vectorised torch program per figure, no RLlib)."""

from armillary.platform.presets import register_job

STUDY = "armillary.algorithms.self_consistency.study"
# Smoke: 3 seeds, 3 dataset sizes, 60 steps; written under runs/ so it never overwrites the real results.
SMOKE = ["--seeds", "3", "--sizes", "10,40,160", "--steps", "60"]

register_job(
    "self-consistency/random-mdp",
    STUDY,
    ["--setting", "evaluation", "--out", "results/self_consistency/random-mdp"],
    "Tabular policy evaluation on random MDPs: TD, Dyna, SC-Direct/Reverse/Residual × 7 dataset sizes × 30 seeds; "
    "value error against the exact v^π, table and plot to results/ and MLflow.",
    smoke_args=["--setting", "evaluation", "--out", "runs/self_consistency/random-mdp-smoke", *SMOKE],
)

register_job(
    "self-consistency/random-mdp-control",
    STUDY,
    ["--setting", "control", "--out", "results/self_consistency/random-mdp-control"],
    "Tabular control on random MDPs from uniform-policy data: Q-learning vs the model-based methods acting greedily "
    "in the model's look-ahead; regret of the greedy policy in the true MDP, 7 dataset sizes × 30 seeds.",
    smoke_args=["--setting", "control", "--out", "runs/self_consistency/random-mdp-control-smoke", *SMOKE],
)
