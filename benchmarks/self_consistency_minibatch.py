"""The control agent's cost per PPO minibatch (250 rows, K = 3, CartPole-shaped), its parts side by side in one process:

    OMP_NUM_THREADS=1 python benchmarks/self_consistency_minibatch.py --rounds 3 [--profile]

Each contender is one minibatch step of the built `self-consistency/cartpole` Learner (loss, backward, global-norm
clip, Adam), timed in rounds back to back so machine load hits all alike:
  ppo-loss     PPO's loss alone on the agent's module (latent actor-critic, no model terms)
  unfused      PPO's loss + the model terms as separate calls: a second encoding of s_t, grounded_losses, imagine,
               latent_consistency_loss (the learner's composition before losses.control_losses)
  fused        the learner's minibatch loss (one forward for PPO and the model, control_losses)
  every4, rows50   fused with model_every = 4 (per-minibatch mean over 4 minibatches), model_row_fraction = 0.5
Prints ms per minibatch per round and the means as multiples of ppo-loss; --profile adds torch.profiler's top ops of
the fused step.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40, help="timed minibatch steps per contender and round")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    import ray
    import torch

    from armillary.algorithms.ppo.learner import minibatch_loss
    from armillary.algorithms.self_consistency import segments as seg
    from armillary.algorithms.self_consistency.learner import minibatch_segments
    from armillary.algorithms.self_consistency.losses import grounded_losses, imagine, latent_consistency_loss
    from armillary.platform.rllib_config import build_algorithm_config
    from armillary.platform.spec import load_spec

    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    spec = load_spec("self-consistency/cartpole", ["resources.num_env_runners=0"])
    algo = build_algorithm_config(spec, seed=0).build_algo()
    learner = algo.learner_group._learner
    module = learner.module["default_policy"].unwrapped()
    hp = learner.hp
    depth, rows = hp.rollout_depth, hp.minibatch_size
    generator = torch.Generator().manual_seed(0)
    obs = torch.randn(rows, depth + 1, 4, generator=generator)
    actions = torch.randint(2, (rows, depth + 1), generator=generator)
    minibatch = {"obs": obs[:, 0], "actions": actions[:, 0], "action_logp": torch.full((rows,), -0.7),
                 "advantages": torch.randn(rows, generator=generator),
                 "value_targets": torch.randn(rows, generator=generator), seg.SEGMENT_OBS: obs,
                 seg.SEGMENT_ACTIONS: actions[:, :depth], seg.SEGMENT_REWARDS: torch.ones(rows, depth),
                 seg.SEGMENT_CONTINUES: torch.ones(rows, depth), seg.SEGMENT_VALID: torch.ones(rows, depth + 1),
                 seg.SEGMENT_TARGETS: torch.randn(rows, depth + 1, generator=generator)}
    loss_args = dict(clip_param=hp.clip_param, vf_clip_param=hp.vf_clip_param, vf_loss_coeff=hp.vf_loss_coeff,
                     entropy_coeff=0.0, use_critic=True)
    (_, optimizer), = learner.get_optimizers_for_module("default_policy")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    module.train()

    def unfused(module, batch, **kwargs):
        loss, stats = minibatch_loss(module, batch, **kwargs)
        model, segments = module.model, minibatch_segments(batch)
        z0 = model.encode(segments.observations[:, 0])
        terms = grounded_losses(model, segments, z0=z0, include_policy=False, first_value_step=1)
        states, imagined = imagine(model, z0, depth, learner._imagination)
        consistency = latent_consistency_loss(hp.method, model, states, imagined, learner.config.gamma)
        return loss + hp.model_loss_coeff * sum(terms.values()) + hp.sc_weight * consistency, stats

    def learner_with(**fields):
        def loss(module, batch, **kwargs):
            learner.hp = hp.model_copy(update=fields)
            return learner._minibatch_loss(module, batch, **kwargs)
        return loss

    contenders = {"ppo-loss": minibatch_loss, "unfused": unfused, "fused": learner_with(),
                  "every4": learner_with(model_every=4), "rows50": learner_with(model_row_fraction=0.5)}

    def step(loss_fn):
        loss, _ = loss_fn(module, minibatch, with_stats=False, **loss_args)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        learner._clip_and_sanitise(params, hp.grad_clip)
        optimizer.step()

    def milliseconds(loss_fn) -> float:
        learner._minibatch_index = 0
        for _ in range(4):
            step(loss_fn)
        started = time.perf_counter()
        for _ in range(args.steps):
            step(loss_fn)
        return (time.perf_counter() - started) / args.steps * 1e3

    times = {name: [] for name in contenders}
    for round_ in range(args.rounds):
        for name, loss_fn in contenders.items():
            times[name].append(milliseconds(loss_fn))
        print(f"round {round_}: " + ", ".join(f"{name} {ms[-1]:.2f}" for name, ms in times.items()) + " ms", flush=True)
    mean = {name: sum(ms) / len(ms) for name, ms in times.items()}
    print("mean ms per minibatch: " + ", ".join(f"{name} {ms:.2f} ({ms / mean['ppo-loss']:.2f}x ppo-loss)"
                                                for name, ms in mean.items()))
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            for _ in range(20):
                step(contenders["fused"])
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    learner.hp = hp
    algo.stop()
    ray.shutdown()


if __name__ == "__main__":
    main()
