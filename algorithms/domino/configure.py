"""From DOMiNO's hyperparameters to a run, and what a finished run leaves behind.

apply(): PPO's semantics (ppo/configure.py), then the latent-conditioned env wrapper, a MultiRLModule with the
policy (two value streams: r_e and r_d) and the learner-only state module (ψ, v̄, λ), the learner that edits
PPO's connector pipeline, and the typed hyperparameters the learner reads (learner_config_dict["domino"]).
final_artifacts(): per-policy occupancy, clips and greedy figures.
"""

from __future__ import annotations

from armillary.algorithms.domino.config import DominoHyperparameters


def apply(config, hp: DominoHyperparameters, env_entry, num_learners: int):
    from ray.rllib.core import DEFAULT_MODULE_ID
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from armillary.algorithms.domino.env import DominoEnv
    from armillary.algorithms.domino.module import DOMINO_MODULE_ID, DominoStateModule
    from armillary.algorithms.ppo.configure import apply as apply_ppo
    from armillary.algorithms.ppo.module import VALUE_STREAMS, MultiValuePPOModule

    if num_learners > 1:
        # Each learner would keep its own ψ, v̄, λ from its shard of the batch (see README, deviations).
        raise ValueError(f"DOMiNO keeps its state on one learner; got num_learners={num_learners} (use a profile with ≤ 1)")
    apply_ppo(config, hp, env_entry, num_learners)
    env_config = {"env": env_entry.name, "options": dict(config.env_config or {}), "num_policies": hp.num_policies,
                  "features": hp.features}
    probe = DominoEnv(env_config)  # validates options and the feature source now, on the driver
    layout = probe.layout
    probe.close()
    config.environment(env=DominoEnv, env_config=env_config)
    config.learners(learner_config_dict={"domino": hp})
    policy_model = {**config.model_config, VALUE_STREAMS: ["extrinsic", "diversity"]}  # r_e, r_d
    config.rl_module(
        rl_module_spec=MultiRLModuleSpec(
            rl_module_specs={
                DEFAULT_MODULE_ID: RLModuleSpec(module_class=MultiValuePPOModule, model_config=policy_model),
                DOMINO_MODULE_ID: RLModuleSpec(
                    module_class=DominoStateModule,
                    learner_only=True,
                    observation_space=probe.observation_space,
                    action_space=probe.action_space,
                    model_config={"hyperparameters": hp, "layout": layout.to_dict()},
                ),
            }
        )
    )
    return config


# Final artifacts: `summary_episodes` greedy episodes per policy for the JSON figures; for rendered envs (walker)
# one GIF per policy from the first of them: `clip_steps` agent steps, every CLIP_EVERY-th frame (walker: 200
# steps = 5 s at 40 Hz, 100 frames of 128 px, ~17 ms per software-rendered frame here, so ~20 s for N = 10).
CLIP_EVERY = 2


def final_artifacts(algo, folder) -> None:
    """Per-policy occupancy side by side (gridworlds), one clip per policy (rendered envs: `policy_<i>.gif`) and
    each policy's greedy-rollout figures (JSON)."""
    import json
    from pathlib import Path

    from PIL import Image

    from armillary.algorithms.domino.env import DominoEnv
    from armillary.algorithms.domino.evaluation import greedy_actor, occupancy_side_by_side, records_clips, rollout_policies
    from armillary.algorithms.domino.learner import domino_hyperparameters
    from armillary.envs.render import write_clip

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    hp = domino_hyperparameters(algo.config)
    env_config = algo.config.env_config  # the DominoEnv's, as apply() set it
    clip_steps = hp.clip_steps if records_clips(env_config) else 0
    rollouts = rollout_policies(env_config, greedy_actor(algo.get_module()), hp.summary_episodes,
                                clip_steps=clip_steps, clip_every=CLIP_EVERY)
    (folder / "domino_policies.json").write_text(json.dumps([r.summary() for r in rollouts], indent=2))
    picture = occupancy_side_by_side(env_config, rollouts)
    if picture is not None:
        Image.fromarray(picture).save(folder / "occupancy_per_policy.png")
    if clip_steps:
        probe = DominoEnv(env_config)
        fps = probe.metadata.get("render_fps", 30) / CLIP_EVERY
        probe.close()
        for policy, r in enumerate(rollouts):
            write_clip(r.frames, folder / f"policy_{policy:02d}.gif", fps=fps)
