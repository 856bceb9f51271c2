"""clip-reward presets: PPO on the VLM reward only, and the same run with shuffled goal texts (the control)."""

from armillary.core.presets import register, register_job
from armillary.envs.language_goals import FLOOR_CAPTION

# The model `clip-reward/fit` trains (small: 0.98 PR-AUC, see the README) and how it is served.
REWARD_MODEL = {
    "model": "runs/clip_reward/models/small-seed0",
    "max_batch_size": 8,
    "reward": {"threshold": 0.5, "extra_negatives": [FLOOR_CAPTION]},
}

_PPO_LANGUAGE_GOALS = {
    "algorithm": {
        "name": "clip-reward-ppo",
        "config": {
            "lr": 3e-4, "gamma": 0.95, "gae_lambda": 0.95, "entropy_coeff": 0.01, "train_batch_size": 4000,
            "minibatch_size": 250, "num_epochs": 6, "hidden_sizes": [64, 64], "activation": "tanh",
            "reward_model": REWARD_MODEL,
        },
    },
    "env": {"name": "language-goals", "config": {"reward": "external", "observation": "objects", "max_episode_steps": 20}},
    "seeds": [0, 1, 2],
    "stop": {"env_steps": 150_000},
    "checkpoint": {"every_iterations": 10},
}

register(
    "clip-reward/ppo-language-goals",
    _PPO_LANGUAGE_GOALS,
    "PPO on language-goals with the served CLIP reward only (ground truth logged, never learned from), 3 seeds.",
)

register(
    "clip-reward/ppo-language-goals-shuffled",
    {**_PPO_LANGUAGE_GOALS,
     "algorithm": {"name": "clip-reward-ppo", "config": {**_PPO_LANGUAGE_GOALS["algorithm"]["config"], "shuffled_goals": True}}},
    "The control: the same run, the reward model asked about a fixed other goal (success should stay at random level).",
)


# The jobs: fine-tune (the model the PPO presets load) and the offline precision/recall evaluation per size.
MODELS = "runs/clip_reward/models"

register_job(
    "clip-reward/fit",
    "armillary.algorithms.clip_reward.finetune",
    ["--size", "small", "--seed", "0", "--out", f"{MODELS}/small-seed0"],
    "Fine-tune a CLIP model on rendered (frame, caption) pairs (default: the small one the PPO presets use; "
    "size=tiny|medium|large seed=N out=PATH).",
    smoke_args=["--size", "tiny", "--steps", "8", "--warmup-steps", "2", "--num-train", "256", "--batch-size", "32",
                "--out", f"{MODELS}/smoke"],
)

register_job(
    "clip-reward/eval",
    "armillary.algorithms.clip_reward.evaluate",
    [f"tiny={MODELS}/tiny-seed0", f"small={MODELS}/small-seed0", f"medium={MODELS}/medium-seed0"],
    "Precision/recall of the reward against ground-truth success per model size; PR curves to MLflow "
    "(fit each size first: clip-reward/fit size=tiny out=runs/clip_reward/models/tiny-seed0, ...).",
    smoke_args=[f"smoke={MODELS}/smoke", "--num", "200", "--out", "runs/clip_reward/eval-smoke"],
)

# The headline comparison as one experiment: the CLIP reward vs the shuffled-goal control, every arm × seed one
# trial of one Tune run (one deployment of the reward model serves both), kept in results/clip_reward/reproduce/.
register(
    "clip-reward/reproduce",
    {
        **_PPO_LANGUAGE_GOALS,
        "arms": [
            {"name": "clip-reward", "overrides": {}},
            {"name": "shuffled-goals", "overrides": {"algorithm.config.shuffled_goals": True}},
        ],
        "results": {"folder": "clip_reward/reproduce",
                    "paper": "Rocamonde et al. 2023 style VLM reward (PAPERS.md §6): the agent learns the goal from "
                             "the reward model alone; a reward about another goal should not teach it."},
    },
    "PPO on the served CLIP reward vs the shuffled-goal control, 3 seeds, 150k steps (fit the model first: "
    "clip-reward/fit); the table and plot go to results/clip_reward/reproduce/.",
)
