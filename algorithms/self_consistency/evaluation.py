"""Policy evaluation with the latent model: v̂(h(s)) against Monte Carlo v^π(s) in the real environment, as one job.

    python -m armillary.algorithms.self_consistency.evaluation --env CartPole-v1 --out results/self_consistency/cartpole-evaluation

A fixed softmax policy π (fixed_policy) generates the data; held-out on-policy states get their true value by
Monte Carlo rollouts of π from that exact simulator state (the unwrapped environment, no time limit, rollouts cut at
H with γ^H ≤ mc_tolerance). Every method × dataset size × seed trains a fresh LatentModel on the same data with
the grounded losses + sc_weight × its consistency loss; the figure is the RMSE of v̂(h(s)) against the MC values.
Writes rows.csv, table.md, plot.png, config.json, command.txt to --out, and logs them to MLflow like study.py.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from armillary.algorithms.self_consistency.config import EvaluationEnv, LatentEvaluationConfig, Method
from armillary.algorithms.self_consistency.losses import Segments, grounded_losses, imagine, latent_consistency_loss
from armillary.algorithms.self_consistency.networks import LatentModel
from armillary.algorithms.self_consistency.study import interval, report, size_header, table_sections, write_records

LABELS = {Method.TD: "none (grounded only)", Method.DYNA: "Dyna", Method.SC_DIRECT: "SC-Direct",
          Method.SC_REVERSE: "SC-Reverse", Method.SC_RESIDUAL: "SC-Residual"}
EVAL_STATE_SEED = 10_000  # the held-out states and their MC values do not depend on the training seeds


def fixed_policy(env: EvaluationEnv, observation: np.ndarray, temperature: float) -> np.ndarray:
    """π(·|s): a mediocre stabilising heuristic softened by the temperature, so episodes and values vary.

    CartPole: push toward the side the pole falls to, score 10 (θ + 0.5 θ̇). MountainCar: push along the velocity
    (energy pumping), scores 100 (−v, 0, v)."""
    if env is EvaluationEnv.CARTPOLE:
        score = 10.0 * (observation[2] + 0.5 * observation[3])
        logits = np.array([-score, score])
    else:
        logits = 100.0 * np.array([-observation[1], 0.0, observation[1]])
    logits = logits / temperature
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()


@dataclass
class Dataset:
    """Real transitions in episode order; last[i]: the episode ends after transition i (terminated or truncated)."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    last: np.ndarray
    next_observations: np.ndarray
    states: np.ndarray  # the simulator state behind each observation (for Monte Carlo from it)


def collect(config: LatentEvaluationConfig, size: int, seed: int) -> Dataset:
    """`size` transitions of π from fresh episodes (truncated at max_episode_steps)."""
    env = gym.make(config.env.value).unwrapped
    rng = np.random.default_rng(seed)
    columns = {name: [] for name in Dataset.__dataclass_fields__}
    observation, _ = env.reset(seed=seed)
    steps = 0
    while len(columns["actions"]) < size:
        columns["states"].append(np.array(env.state, dtype=np.float64))
        action = int(rng.choice(len(env_probs := fixed_policy(config.env, observation, config.policy_temperature)), p=env_probs))
        next_observation, reward, terminated, _, _ = env.step(action)
        steps += 1
        end = terminated or steps >= config.max_episode_steps or len(columns["actions"]) + 1 == size
        for name, value in (("observations", observation), ("actions", action), ("rewards", reward),
                            ("terminated", terminated), ("last", end), ("next_observations", next_observation)):
            columns[name].append(value)
        observation = next_observation
        if end:
            observation, _ = env.reset(seed=int(rng.integers(2**31)))
            steps = 0
    env.close()
    return Dataset(**{name: np.asarray(values, dtype=np.float32 if name != "states" else np.float64)
                      for name, values in columns.items()})


def monte_carlo_values(config: LatentEvaluationConfig, states: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, standard error) of the discounted return of π from each simulator state, mc_rollouts each, cut at H."""
    env = gym.make(config.env.value).unwrapped
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    horizon = math.ceil(math.log(config.mc_tolerance) / math.log(config.gamma))
    returns = np.zeros((len(states), config.mc_rollouts))
    for i, state in enumerate(states):
        for m in range(config.mc_rollouts):
            env.state = state.copy()
            if hasattr(env, "steps_beyond_terminated"):
                env.steps_beyond_terminated = None
            observation = env._get_ob() if hasattr(env, "_get_ob") else np.array(state, dtype=np.float32)
            discount = 1.0
            for _ in range(horizon):
                probs = fixed_policy(config.env, observation, config.policy_temperature)
                observation, reward, terminated, _, _ = env.step(int(rng.choice(len(probs), p=probs)))
                returns[i, m] += discount * reward
                discount *= config.gamma
                if terminated:
                    break
    env.close()
    return returns.mean(1), returns.std(1, ddof=1) / math.sqrt(config.mc_rollouts) if config.mc_rollouts > 1 else np.zeros(len(states))


def evaluation_states(config: LatentEvaluationConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out on-policy states (observations, MC values, their standard errors), the same for every seed."""
    held_out = collect(config, 20 * config.eval_states, EVAL_STATE_SEED)
    pick = np.random.default_rng(EVAL_STATE_SEED).choice(len(held_out.actions), config.eval_states, replace=False)
    values, errors = monte_carlo_values(config, held_out.states[pick], EVAL_STATE_SEED + 1)
    return held_out.observations[pick], values, errors


class SegmentSampler:
    """Draws Segments of K steps from a Dataset; the n-step value targets bootstrap on the current (stopped) v̂."""

    def __init__(self, data: Dataset, config: LatentEvaluationConfig):
        n, gamma, size = config.td_steps, config.gamma, len(data.actions)
        self.depth, self.size = config.rollout_depth, size
        # n-step partial returns R_j, the bootstrap observation and its discount γ^m (0 after a termination).
        partial, bootstrap_discount = np.zeros(size, np.float32), np.zeros(size, np.float32)
        bootstrap_obs = np.zeros_like(data.observations)
        for j in range(size):
            total, discount, i = 0.0, 1.0, j
            while True:
                total += discount * data.rewards[i]
                discount *= gamma
                if data.last[i] or i - j + 1 == n:
                    break
                i += 1
            partial[j] = total
            bootstrap_obs[j] = data.next_observations[i]
            bootstrap_discount[j] = 0.0 if data.terminated[i] else discount
        # s_{t+k} is a real state of t's episode iff no episode ends among t … t+k−1 (and t + k is in the data).
        offsets = np.arange(self.depth + 1)
        self.index = np.minimum(np.arange(size)[:, None] + offsets, size - 1)
        ends_before = np.concatenate([np.zeros((size, 1), bool), np.cumsum(data.last[self.index[:, :-1]] > 0, 1) > 0], 1)
        self.valid = torch.as_tensor(~ends_before & (np.arange(size)[:, None] + offsets < size), dtype=torch.float32)
        as_tensor = lambda x: torch.as_tensor(x, dtype=torch.float32)  # noqa: E731
        self.observations, self.actions = as_tensor(data.observations), torch.as_tensor(data.actions).long()
        self.rewards, self.continues = as_tensor(data.rewards), 1.0 - as_tensor(data.terminated)
        self.partial, self.bootstrap_obs, self.bootstrap_discount = as_tensor(partial), as_tensor(bootstrap_obs), as_tensor(bootstrap_discount)

    def sample(self, model: LatentModel, batch_size: int, generator: torch.Generator) -> Segments:
        start = torch.randint(self.size, (batch_size,), generator=generator)
        index = torch.as_tensor(self.index)[start]  # [B, K+1]
        with torch.no_grad():
            bootstrap = model.predict_value(model.encode(self.bootstrap_obs[index]))
        step = index[:, :-1]
        return Segments(observations=self.observations[index], actions=self.actions[step], rewards=self.rewards[step],
                        continues=self.continues[step], valid=self.valid[start],
                        value_targets=self.partial[index] + self.bootstrap_discount[index] * bootstrap)


def make_model(config: LatentEvaluationConfig, observation_dim: int, num_actions: int, seed: int) -> LatentModel:
    torch.manual_seed(seed)
    return LatentModel(observation_dim, num_actions, config.latent_dim, config.hidden)


def train(method: Method, model: LatentModel, sampler: SegmentSampler, config: LatentEvaluationConfig, seed: int) -> dict:
    """config.steps Adam steps of grounded + sc_weight × consistency loss; returns the last step's loss terms."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(seed)
    terms = {"consistency": torch.tensor(float("nan"))}  # none (TD) has no consistency term
    for _ in range(config.steps):
        segments = sampler.sample(model, config.batch_size, generator)
        terms.update(grounded_losses(model, segments))
        loss = sum(terms[name] for name in ("value", "reward", "continuation", "policy"))
        if method is not Method.TD:
            states, actions = imagine(model, model.encode(segments.observations[:, 0]), config.rollout_depth, generator)
            terms["consistency"] = latent_consistency_loss(method, model, states, actions, config.gamma)
            loss = loss + config.sc_weight * terms["consistency"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {name: float(term.detach()) for name, term in terms.items()}


def run_study(config: LatentEvaluationConfig) -> list[dict]:
    """One row per method × dataset size × seed: RMSE (and normalised RMSE) of v̂(h(s)) against the MC values."""
    observations, values, mc_errors = evaluation_states(config)
    eval_obs, truth = torch.as_tensor(observations), torch.as_tensor(values, dtype=torch.float32)
    env = gym.make(config.env.value)
    observation_dim, num_actions = env.observation_space.shape[0], env.action_space.n
    rows = []
    for seed in range(config.first_seed, config.first_seed + config.seeds):
        data = collect(config, config.dataset_sizes[-1], seed)
        for size in config.dataset_sizes:
            prefix = Dataset(**{name: getattr(data, name)[:size].copy() for name in Dataset.__dataclass_fields__})
            prefix.last[-1] = True  # the prefix's last episode is truncated there (a copy: the full data is untouched)
            sampler = SegmentSampler(prefix, config)
            for method in config.methods:
                model = make_model(config, observation_dim, num_actions, seed)
                terms = train(method, model, sampler, config, seed)
                with torch.no_grad():
                    estimate = model.predict_value(model.encode(eval_obs))
                rmse = float(((estimate - truth) ** 2).mean().sqrt())
                rows.append({"env": config.env.value, "method": method.value, "dataset_size": size, "seed": seed,
                             "value_error": rmse, "normalised_error": rmse / float(truth.std()),
                             **{f"loss_{name}": value for name, value in terms.items()}})
                print(f"{method.value:12s} n={size:6d} seed={seed}: RMSE {rmse:.3f}", flush=True)
    rows_extra = {"mc_value_mean": float(values.mean()), "mc_value_std": float(values.std()),
                  "mc_standard_error_rms": float(np.sqrt((mc_errors ** 2).mean()))}
    for row in rows:
        row.update(rows_extra)
    return rows


def read_rows(paths: list[str], config: LatentEvaluationConfig) -> list[dict]:
    """The rows of several rows.csv files; they must hold exactly config's methods × sizes × seeds, once each."""
    rows = []
    for path in paths:
        with open(path, newline="") as f:
            rows += [{key: value if key in ("env", "method") else int(value) if key in ("seed", "dataset_size")
                      else float(value) for key, value in row.items()} for row in csv.DictReader(f)]
    found = sorted((r["method"], r["dataset_size"], r["seed"]) for r in rows)
    expected = sorted((m.value, n, s) for m in config.methods for n in config.dataset_sizes
                      for s in range(config.first_seed, config.first_seed + config.seeds))
    if found != expected or any(r["env"] != config.env.value for r in rows):
        raise ValueError(f"--rows-from: the rows are not exactly {config.env.value} × methods × dataset_sizes × seeds "
                         f"{config.first_seed}…{config.first_seed + config.seeds - 1} of --config (got {len(rows)} rows)")
    return rows


def summarise(rows: list[dict], config: LatentEvaluationConfig) -> dict:
    """{metric: {method: {size: (mean, ci)}}} and paired differences of value_error against SC-Direct and none."""
    cell = lambda m, meth, n: {r["seed"]: r[m] for r in rows if r["method"] == meth.value and r["dataset_size"] == n}  # noqa: E731
    metrics = {m: {meth.value: {n: interval(list(cell(m, meth, n).values())) for n in config.dataset_sizes}
                   for meth in config.methods} for m in ("value_error", "normalised_error") if m in rows[0]}
    differences = {}
    for a, b in [(Method.SC_DIRECT, Method.TD), (Method.DYNA, Method.TD), (Method.SC_DIRECT, Method.DYNA),
                 (Method.SC_REVERSE, Method.SC_DIRECT), (Method.SC_RESIDUAL, Method.SC_DIRECT)]:
        if a in config.methods and b in config.methods:
            differences[f"{a.value} − {b.value}"] = {n: interval([cell("value_error", a, n)[s] - cell("value_error", b, n)[s]
                                                                  for s in cell("value_error", a, n)]) for n in config.dataset_sizes}
    return {"metrics": metrics, "differences": differences}


def write_table(summary: dict, rows: list[dict], config: LatentEvaluationConfig, seconds: float, path: Path) -> None:
    mc = (f"MC v^π: mean {rows[0]['mc_value_mean']:.2f}, std over states {rows[0]['mc_value_std']:.2f}, RMS standard "
          f"error of the MC means {rows[0]['mc_standard_error_rms']:.3f}" if "mc_value_std" in rows[0] else "MC statistics not in the rows")
    path.write_text("".join(
        [f"{config.env.value}, γ = {config.gamma}, {config.seeds} seeds; mean ± 95% t-interval over seeds; "
         f"{config.eval_states} held-out states, {mc}; {seconds:.0f} s.\n"]
        + table_sections(summary, LABELS, size_header(config.dataset_sizes),
                         "paired differences of value_error (same data and initialisation; < 0: the first is better)")))


def plot(summary: dict, config: LatentEvaluationConfig, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    cells = summary["metrics"]["value_error"]
    for i, (method, by_size) in enumerate(cells.items()):
        sizes = list(by_size)
        x = np.arange(len(sizes)) + (i - len(cells) / 2) * 0.12
        ax.errorbar(x, [by_size[n][0] for n in sizes], yerr=[0 if by_size[n][1] != by_size[n][1] else by_size[n][1] for n in sizes],
                    fmt="o", capsize=3, label=LABELS[Method(method)])
    ax.set_xticks(range(len(config.dataset_sizes)), [str(n) for n in config.dataset_sizes])
    ax.set_xlabel("real transitions in the dataset")
    ax.set_ylabel("RMSE of v̂(h(s)) against Monte Carlo v^π(s)")
    ax.set_title(f"{config.env.value}, latent model, K={config.rollout_depth}, γ={config.gamma} "
                 f"({config.seeds} seeds, 95% CI)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", choices=[e.value for e in EvaluationEnv], default=EvaluationEnv.CARTPOLE.value)
    parser.add_argument("--out", required=True, help="folder for rows, table and plot")
    parser.add_argument("--experiment", default=None, help="MLflow experiment (default: self-consistency/<out's name>)")
    parser.add_argument("--config", default="{}", help="JSON of LatentEvaluationConfig fields, e.g. '{\"seeds\": 3}'")
    parser.add_argument("--mlflow-uri", default=None, help="default: $MLFLOW_TRACKING_URI, else runs/mlflow.db")
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--rows-from", nargs="+", default=None, metavar="ROWS_CSV",
                        help="do not train: summarise rows.csv files of runs over disjoint seeds (e.g. one process per "
                             "seed with --config '{\"first_seed\": k, \"seeds\": 1}'); --config must give the merged seeds")
    args = parser.parse_args(argv)
    config = LatentEvaluationConfig(**{"env": args.env, **json.loads(args.config)})  # bad fields fail here, named
    torch.set_num_threads(1)

    start, cpu_start = time.perf_counter(), time.process_time()
    rows = run_study(config) if args.rows_from is None else read_rows(args.rows_from, config)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    out = Path(args.out)
    write_records(rows, config, seconds, cpu_seconds, "evaluation", argv, out)
    summary = summarise(rows, config)
    write_table(summary, rows, config, seconds, out / "table.md")
    plot(summary, config, out / "plot.png")
    report(args, out, config, summary, None, len(rows), seconds, cpu_seconds, "self-consistency-latent")
    return 0

if __name__ == "__main__":
    sys.exit(main())
