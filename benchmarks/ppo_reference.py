"""A minimal single-process PPO in plain torch + gymnasium vector envs: the reference peer of the benchmark.

CleanRL style: one file, read top to bottom, no Ray. It is the yardstick benchmarks/throughput.py holds the
Armillary path against, so its PPO semantics are RLlib's (the ones armillary.algorithms.ppo sets), not
CleanRL's where the two differ:

  rollout   `num_envs` envs step together; `num_steps` steps each make a train batch of num_envs * num_steps.
  networks  separate actor and critic MLPs (RLlib's vf_share_layers=False), `hidden_sizes` tanh, linear heads.
  GAE       A_t = sum_l (gamma * lambda)^l * delta_{t+l},  delta_t = r_t + gamma * V(s_{t+1}) * (1 - term_t) - V(s_t);
            value targets are A_t + V(s_t). A truncated episode (time limit) is bootstrapped from the value of
            its final observation, as RLlib does; only a terminated one ends with value 0.
            Advantages are standardised over the whole train batch (RLlib), not per minibatch (CleanRL).
  policy    L_clip = -mean(min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A)),  ratio = pi(a|s) / pi_old(a|s).
  value     L_vf = mean(min((V(s) - target)^2, vf_clip)) -- RLlib clips the squared error, CleanRL the value.
  total     L_clip + vf_coef * L_vf - ent_coef * entropy; Adam; global gradient-norm clip; no lr annealing.
  epochs    `num_epochs` passes over the shuffled batch in minibatches of `minibatch_size`.

Run it:  python benchmarks/ppo_reference.py --env CartPole-v1 --total-steps 100000
Logged figures use CleanRL's names: charts/episodic_return, charts/SPS, losses/policy_loss, losses/value_loss.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Callable

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
from torch.distributions import Categorical


@dataclass
class Args:
    env_id: str = "CartPole-v1"
    seed: int = 0
    total_steps: int = 100_000
    num_envs: int = 8
    num_steps: int = 500  # per env per iteration: train batch = num_envs * num_steps = 4000
    minibatch_size: int = 128
    num_epochs: int = 4
    lr: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_coef: float = 0.2
    vf_coef: float = 0.5
    vf_clip: float = 10.0
    ent_coef: float = 0.0
    max_grad_norm: float | None = 0.5
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])
    torch_threads: int = 1  # tiny networks: more threads only add synchronisation (and oversubscribe 2 cores)

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps


def mlp(sizes: list[int], out: int, out_gain: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [_orthogonal(nn.Linear(fan_in, fan_out), np.sqrt(2)), nn.Tanh()]
    layers.append(_orthogonal(nn.Linear(sizes[-1], out), out_gain))
    return nn.Sequential(*layers)


def _orthogonal(layer: nn.Linear, gain: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class Agent(nn.Module):
    def __init__(self, obs_size: int, num_actions: int, hidden_sizes: list[int]):
        super().__init__()
        self.actor = mlp([obs_size, *hidden_sizes], num_actions, out_gain=0.01)
        self.critic = mlp([obs_size, *hidden_sizes], 1, out_gain=1.0)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs).squeeze(-1)

    def policy(self, obs: torch.Tensor) -> Categorical:
        return Categorical(logits=self.actor(obs))


def make_vector_env(make_env: Callable[[], gym.Env], num_envs: int, seed: int) -> gym.vector.VectorEnv:
    """Sync vector env that resets a finished env in the same step (its last observation goes to info)."""
    envs = gym.vector.SyncVectorEnv([make_env] * num_envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    envs = gym.wrappers.vector.RecordEpisodeStatistics(envs)
    envs.reset(seed=seed)
    return envs


def train(args: Args, make_env: Callable[[], gym.Env] | None = None, log: Callable[[str, float, int], None] | None = None) -> dict:
    """Train for args.total_steps env steps; returns throughput and the recent episode returns."""
    torch.set_num_threads(args.torch_threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    make_env = make_env or (lambda: gym.make(args.env_id))
    envs = make_vector_env(make_env, args.num_envs, args.seed)
    obs_size = int(np.prod(envs.single_observation_space.shape))
    agent = Agent(obs_size, int(envs.single_action_space.n), args.hidden_sizes)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.lr, eps=1e-5)

    # Rollout storage, [num_steps, num_envs].
    shape = (args.num_steps, args.num_envs)
    obs_buf = torch.zeros(shape + (obs_size,))
    actions_buf = torch.zeros(shape, dtype=torch.long)
    logprobs_buf = torch.zeros(shape)
    rewards_buf = torch.zeros(shape)
    ended_buf = torch.zeros(shape)  # 1 where the episode ended at this step (terminated or truncated)
    values_buf = torch.zeros(shape)

    next_obs = torch.as_tensor(envs.reset(seed=args.seed)[0], dtype=torch.float32).reshape(args.num_envs, -1)
    returns: list[float] = []
    global_step = 0
    started = time.perf_counter()
    num_iterations = max(1, -(-args.total_steps // args.batch_size))  # whole iterations, at least total_steps
    for iteration in range(num_iterations):
        # --- collect num_steps x num_envs transitions with the current policy ---
        for step in range(args.num_steps):
            obs_buf[step] = next_obs
            with torch.inference_mode():
                dist = agent.policy(next_obs)
                action = dist.sample()
                logprobs_buf[step] = dist.log_prob(action)
                values_buf[step] = agent.value(next_obs)
            actions_buf[step] = action
            raw_obs, reward, terminated, truncated, info = envs.step(action.numpy())
            reward = torch.as_tensor(reward, dtype=torch.float32)
            # Time-limit truncation is not a real end: bootstrap from the value of the last observation.
            if truncated.any():
                final_obs = np.stack([info["final_obs"][i] for i in np.flatnonzero(truncated)]).astype(np.float32)
                with torch.inference_mode():
                    bootstrap = agent.value(torch.as_tensor(final_obs).reshape(len(final_obs), -1))
                reward[torch.as_tensor(truncated)] += args.gamma * bootstrap
            rewards_buf[step] = reward
            ended_buf[step] = torch.as_tensor(terminated | truncated, dtype=torch.float32)
            next_obs = torch.as_tensor(raw_obs, dtype=torch.float32).reshape(args.num_envs, -1)
            global_step += args.num_envs
            if "episode" in info:
                for i in np.flatnonzero(info["_episode"]):
                    returns.append(float(info["episode"]["r"][i]))
                    if log:
                        log("charts/episodic_return", returns[-1], global_step)

        # --- GAE over the rollout. An episode that ended at step t does not continue into t + 1 (that env
        # was reset); a truncated one has its bootstrap in the reward already. ---
        with torch.inference_mode():
            next_value = agent.value(next_obs)
        advantages = torch.zeros(shape)
        last_gae = torch.zeros(args.num_envs)
        for t in reversed(range(args.num_steps)):
            value_after = next_value if t == args.num_steps - 1 else values_buf[t + 1]
            not_ended = 1.0 - ended_buf[t]
            delta = rewards_buf[t] + args.gamma * value_after * not_ended - values_buf[t]
            last_gae = delta + args.gamma * args.gae_lambda * not_ended * last_gae
            advantages[t] = last_gae
        targets = advantages + values_buf

        # --- num_epochs passes of minibatch SGD on the clipped objective ---
        b_obs = obs_buf.reshape(-1, obs_size)
        b_actions, b_logprobs = actions_buf.reshape(-1), logprobs_buf.reshape(-1)
        b_advantages, b_targets = advantages.reshape(-1), targets.reshape(-1)
        b_advantages = (b_advantages - b_advantages.mean()) / (b_advantages.std() + 1e-8)
        for _ in range(args.num_epochs):
            order = torch.randperm(args.batch_size)
            for start in range(0, args.batch_size, args.minibatch_size):
                idx = order[start:start + args.minibatch_size]
                dist = agent.policy(b_obs[idx])
                ratio = (dist.log_prob(b_actions[idx]) - b_logprobs[idx]).exp()
                adv = b_advantages[idx]
                policy_loss = -torch.min(ratio * adv, ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef) * adv).mean()
                value_loss = ((agent.value(b_obs[idx]) - b_targets[idx]) ** 2).clamp(max=args.vf_clip).mean()
                entropy = dist.entropy().mean()
                loss = policy_loss + args.vf_coef * value_loss - args.ent_coef * entropy
                optimizer.zero_grad()
                loss.backward()
                if args.max_grad_norm is not None:
                    nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()
        if log:
            log("losses/policy_loss", policy_loss.item(), global_step)
            log("losses/value_loss", value_loss.item(), global_step)
            log("charts/SPS", global_step / (time.perf_counter() - started), global_step)
    envs.close()
    elapsed = time.perf_counter() - started
    return {"env_steps": global_step, "seconds": elapsed, "env_steps_per_s": global_step / elapsed,
            "episode_returns": returns, "agent": agent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Args()
    parser.add_argument("--env", dest="env_id", default=defaults.env_id)
    for name in ("seed", "total_steps", "num_envs", "num_steps", "minibatch_size", "num_epochs", "torch_threads"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    for name in ("lr", "gamma", "gae_lambda", "clip_coef", "vf_coef", "ent_coef"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(defaults, name))
    args = Args(**vars(parser.parse_args()))
    last: dict[str, float] = {}

    def log(name: str, value: float, step: int) -> None:
        last[name] = value
        if name == "charts/SPS":
            print(f"step {step:>8}  return {last.get('charts/episodic_return', float('nan')):7.1f}  "
                  f"SPS {value:8.0f}  policy_loss {last.get('losses/policy_loss', float('nan')):+.4f}")

    result = train(args, log=log)
    print(f"{result['env_steps']} env steps in {result['seconds']:.1f} s ({result['env_steps_per_s']:.0f}/s); "
          f"mean return of the last 20 episodes: {np.mean(result['episode_returns'][-20:]):.1f}")


if __name__ == "__main__":
    main()
