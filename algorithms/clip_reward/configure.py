"""From `clip-reward-ppo`'s hyperparameters to a run.

apply(): PPO's semantics (ppo/configure.py), the reward callback and its settings, and the env options the
method needs (frames in the infos; the env's own reward off). prepare(): deploy the reward model once,
from the driver, before any trial starts — every trial (and every env runner) then calls the same deployment.
"""

from __future__ import annotations

from pathlib import Path

from armillary.algorithms.clip_reward.config import ClipRewardPPOHyperparameters
from armillary.algorithms.clip_reward.quick_model import BUILTIN_PREFIX, check_builtin, resolve_model
from armillary.core.hub import check_hub_model
from armillary.algorithms.ppo.configure import apply as apply_ppo

FIT_COMMAND = "armillary run clip-reward/fit"
# What the callback reads from each step's info: the rendered frame, the goal text, and the ground truth it logs.
REQUIRED_INFO = ("frame", "goal", "success", "reached")


def apply(config, hp: ClipRewardPPOHyperparameters, env_entry, num_learners: int):
    from armillary.algorithms.clip_reward.algorithm import ClipRewardCallback

    not_language_goals = ValueError(
        f"env.name: {env_entry.name} is not a language-goal env: clip-reward-ppo needs options `reward` and "
        f"`info_frame`, a `goals` list and infos with {', '.join(REQUIRED_INFO)}"
    )
    if not {"reward", "info_frame"} <= set(env_entry.options.model_fields):
        raise not_language_goals
    options = dict(config.env_config or {})
    if options.get("reward", "external") != "external":
        raise ValueError(
            f"env.config.reward: clip-reward-ppo learns from the reward model only; set it to 'external' "
            f"(got {options.get('reward')!r}, which would hand the learner the ground-truth success)"
        )
    options.update(reward="external", info_frame=True)
    probe = env_entry.build(options)  # validates the options now, on the driver, and gives the goal set
    goal_set = list(getattr(probe.unwrapped, "goals", ()))
    _, info = probe.reset(seed=0)
    probe.close()
    if not goal_set or any(key not in info for key in REQUIRED_INFO):
        raise not_language_goals
    apply_ppo(config, hp, env_entry, num_learners)
    config.environment(env_config=options)
    config.callbacks(ClipRewardCallback)
    config.clip_reward = {
        "app_name": hp.reward_model.app_name, "frames_per_request": hp.frames_per_request,
        "retry_window_s": hp.reward_retry_window_s, "timeout_s": hp.reward_timeout_s, "shuffled_goals": hp.shuffled_goals,
        "goal_set": goal_set,
    }
    return config


def check_model_exists(model: str) -> None:
    """A model given as a local path must be a folder here, a built-in one must exist, and a hub name ("org/name")
    must be in the Hugging Face cache or confirmed by the hub in bounded time (core/hub.py)."""
    if model.startswith(BUILTIN_PREFIX):
        check_builtin(model)
        return
    looks_like_path = model.startswith((".", "/", "~")) or model.count("/") > 1 or Path(model).expanduser().exists()
    if looks_like_path and not Path(model).expanduser().is_dir():
        raise ValueError(
            f"algorithm.config.reward_model.model: no saved model at {model!r} (train one with `{FIT_COMMAND}`, "
            "or point this field at a saved CLIP model folder)"
        )
    if not looks_like_path:  # a hub id: the Serve replica's from_pretrained would retry an unreachable hub for ever
        check_hub_model(model, "algorithm.config.reward_model.model",
                        f"train a model with `{FIT_COMMAND}` and give its folder, or {BUILTIN_PREFIX}tiny-untrained")


def prepare(hp: ClipRewardPPOHyperparameters) -> None:
    """Deploy the reward model on the connected Ray cluster unless the application already runs."""
    from armillary.algorithms.clip_reward.serve import ensure_running

    check_model_exists(hp.reward_model.model)
    # A built-in model is made here, on the driver, and the deployment loads its saved folder.
    ensure_running(hp.reward_model.model_copy(update={"model": resolve_model(hp.reward_model.model)}))
