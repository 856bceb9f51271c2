"""The tabular study: random MDPs, a few real transitions, and every method trained on the same data.

Everything is batched over [draws, S, A, S] tensors (a draw = one seed's MDP, policy and dataset at one dataset
size), so a whole figure is a few hundred small batched gradient steps per method. Pure torch, no Ray.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from armillary.algorithms.self_consistency.config import Method, Setting, TabularStudyConfig
from armillary.algorithms.self_consistency.losses import (
    Counts,
    consistency_loss,
    imagined_rollout,
    model_grounding_loss,
    policy_model,
    q_learning_loss,
    td_grounding_loss,
)

DTYPE = torch.float32  # the learners; exact values are solved in float64 (policy_values)


@dataclass(frozen=True)
class RandomMdps:
    """A batch of MDPs: P[b, s, a, s'], r[b, s, a] (mean reward), and π[b, s, a] (the evaluated or data policy)."""

    transitions: torch.Tensor
    rewards: torch.Tensor
    policy: torch.Tensor


def random_mdp(seed: int, config: TabularStudyConfig) -> tuple[RandomMdps, torch.Generator]:
    """One random MDP: each (s, a) leads to `branching` distinct states with Dirichlet(1) probabilities; r ~ N(0, 1).

    π is a random stochastic policy (Dirichlet(1) over actions) for evaluation, the uniform policy for control (it
    collects the data; the learner's greedy policy is what is measured). Returns the generator, to draw data from.
    """
    S, A, b = config.num_states, config.num_actions, config.branching
    gen = torch.Generator().manual_seed(seed)
    successors = torch.rand(S, A, S, generator=gen).argsort(-1)[..., :b]
    weights = -torch.log(torch.rand(S, A, b, generator=gen, dtype=DTYPE))  # Exp(1) → Dirichlet(1) once normalised
    transitions = torch.zeros(S, A, S, dtype=DTYPE).scatter_(-1, successors, weights / weights.sum(-1, keepdim=True))
    rewards = torch.randn(S, A, generator=gen, dtype=DTYPE)
    if config.setting is Setting.EVALUATION:
        policy = -torch.log(torch.rand(S, A, generator=gen, dtype=DTYPE))
        policy = policy / policy.sum(-1, keepdim=True)
    else:
        policy = torch.full((S, A), 1.0 / A, dtype=DTYPE)
    return RandomMdps(transitions[None], rewards[None], policy[None]), gen


def sample_counts(mdp: RandomMdps, sizes: tuple[int, ...], reward_noise: float, gen: torch.Generator) -> Counts:
    """Nested datasets of the given sizes from one MDP (batch of 1): s uniform, a ~ π(s), s' ~ P, r ~ N(r(s,a), σ²).

    Returns the counts of each prefix, batched over sizes: transitions [len(sizes), S, A, S].
    """
    P, r, pi = mdp.transitions[0], mdp.rewards[0], mdp.policy[0]
    S, A, _ = P.shape
    n = sizes[-1]
    s = torch.randint(S, (n,), generator=gen)
    a = torch.multinomial(pi[s], 1, generator=gen).squeeze(-1)
    s_next = torch.multinomial(P[s, a], 1, generator=gen).squeeze(-1)
    reward = r[s, a] + reward_noise * torch.randn(n, generator=gen, dtype=DTYPE)
    flat = (s * A + a) * S + s_next
    one_hot = torch.zeros(n, S * A * S, dtype=DTYPE).scatter_(1, flat[:, None], 1.0)
    reward_hot = torch.zeros(n, S * A, dtype=DTYPE).scatter_(1, (s * A + a)[:, None], reward[:, None])
    ends = torch.tensor(sizes) - 1
    return Counts(one_hot.cumsum(0)[ends].view(-1, S, A, S), reward_hot.cumsum(0)[ends].view(-1, S, A))


def policy_values(transitions: torch.Tensor, rewards: torch.Tensor, policy: torch.Tensor, gamma: float) -> torch.Tensor:
    """Exact v^π [B, S] (float64): the solution of (I − γ P_π) v = r_π."""
    transitions, rewards, policy = transitions.double(), rewards.double(), policy.double()
    P_pi = torch.einsum("bsa,bsat->bst", policy, transitions)
    r_pi = (policy * rewards).sum(-1)
    eye = torch.eye(P_pi.shape[-1], dtype=P_pi.dtype).expand_as(P_pi)
    return torch.linalg.solve(eye - gamma * P_pi, r_pi.unsqueeze(-1)).squeeze(-1)


def optimal_values(transitions: torch.Tensor, rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """Exact v* [B, S] by policy iteration (terminates in a few iterations at these sizes)."""
    B, S, A, _ = transitions.shape
    transitions, rewards = transitions.double(), rewards.double()
    greedy = torch.zeros(B, S, dtype=torch.long)
    for _ in range(10 * S * A):
        policy = torch.nn.functional.one_hot(greedy, A).to(transitions.dtype)
        v = policy_values(transitions, rewards, policy, gamma)
        q = rewards + gamma * torch.einsum("bsat,bt->bsa", transitions, v)
        improved = torch.where(q.max(-1).values > (q * policy).sum(-1) + 1e-10, q.argmax(-1), greedy)
        if torch.equal(improved, greedy):
            return v
        greedy = improved
    raise RuntimeError("policy iteration did not converge")


@dataclass(frozen=True)
class Problems:
    """The batch every method learns on: D draws (seed × dataset size) of an MDP and its dataset."""

    mdps: RandomMdps
    counts: Counts
    seeds: torch.Tensor  # [D]
    sizes: torch.Tensor  # [D]


def make_problems(config: TabularStudyConfig) -> Problems:
    mdps, counts, seeds, sizes = [], [], [], []
    k = len(config.dataset_sizes)
    for seed in range(config.first_seed, config.first_seed + config.seeds):
        mdp, gen = random_mdp(seed, config)
        mdps.append(mdp)
        counts.append(sample_counts(mdp, config.dataset_sizes, config.reward_noise, gen))
        seeds += [seed] * k
        sizes += list(config.dataset_sizes)
    repeat = lambda t: torch.cat([x.expand(k, *x.shape[1:]) for x in t])  # noqa: E731  one MDP per dataset size
    return Problems(
        RandomMdps(repeat([m.transitions for m in mdps]), repeat([m.rewards for m in mdps]), repeat([m.policy for m in mdps])),
        Counts(torch.cat([c.transitions for c in counts]), torch.cat([c.reward_sums for c in counts])),
        torch.tensor(seeds), torch.tensor(sizes),
    )


@dataclass
class Learner:
    """The learned tables of one method on a batch of problems: v̂ (or Q), and the model m̂ (logits, r̂)."""

    value: torch.Tensor  # [B, S] (v̂), or [B, S, A] (Q) for model-free control
    logits: torch.Tensor  # [B, S, A, S]
    reward: torch.Tensor  # [B, S, A]

    def model_q(self, gamma: float) -> torch.Tensor:
        """q̂(s, a) = r̂(s, a) + γ Σ_s' P̂(s'|s, a) v̂(s'): the one-step look-ahead with the learned model."""
        return self.reward + gamma * torch.einsum("bsat,bt->bsa", torch.softmax(self.logits, -1), self.value)


def greedy(q: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.one_hot(q.argmax(-1), q.shape[-1]).to(q.dtype)


def train(method: Method, problems: Problems, config: TabularStudyConfig, value_step: float | torch.Tensor) -> Learner:
    """`config.steps` full-batch SGD steps of the method's losses (losses.py) on every problem at once.

    value_step: the value table's step, one for all problems or one per problem [B]; the model's tables take
    config.model_step_ratio times it.
    """
    B = problems.counts.transitions.shape[0]
    S, A = config.num_states, config.num_actions
    control = config.setting is Setting.CONTROL
    model_free_q = control and method is Method.TD
    learner = Learner(
        value=torch.zeros((B, S, A) if model_free_q else (B, S), dtype=DTYPE, requires_grad=True),
        logits=torch.zeros(B, S, A, S, dtype=DTYPE, requires_grad=True),
        reward=torch.zeros(B, S, A, dtype=DTYPE, requires_grad=True),
    )
    counts, gamma = problems.counts, config.gamma
    value_step = torch.as_tensor(value_step, dtype=DTYPE).expand(B)
    model_step = value_step * config.model_step_ratio
    step_of = lambda step, param: step.view(-1, *[1] * (param.dim() - 1))  # noqa: E731  per problem, broadcast
    for _ in range(config.steps):
        if model_free_q:
            loss, params = q_learning_loss(learner.value, counts, gamma), [learner.value]
        else:
            # Control: the agent's policy is greedy in the model's look-ahead; the real data (uniform actions) is
            # re-weighted to it (importance weights 1[a = greedy] / μ(a|s), the 1/μ cancels in the mean).
            policy = greedy(learner.model_q(gamma).detach()) if control else problems.mdps.policy
            loss = td_grounding_loss(learner.value, counts, gamma, action_weights=policy if control else None)
            params = [learner.value]
            if method is not Method.TD:
                log_transition = torch.log_softmax(learner.logits, -1)
                P_pi, r_pi = policy_model(log_transition.exp(), learner.reward, policy)
                states = imagined_rollout(P_pi, config.rollout_depth)
                loss = (loss + model_grounding_loss(log_transition, learner.reward, counts)
                        + config.sc_weight * consistency_loss(method, states, r_pi, learner.value, gamma))
                params = [learner.value, learner.logits, learner.reward]
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        with torch.no_grad():
            for param, grad in zip(params, grads):
                if grad is not None:
                    param -= step_of(value_step if param is learner.value else model_step, param) * grad
    return Learner(learner.value.detach(), learner.logits.detach(), learner.reward.detach())


def evaluate(learner: Learner, problems: Problems, config: TabularStudyConfig) -> dict[str, torch.Tensor]:
    """Per-problem figures [B]. Evaluation: RMSE of v̂ against v^π over states. Control: the greedy policy's
    regret mean_s (v*(s) − v^{π_greedy}(s)) in the true MDP, and its fraction of v*'s mean over v^uniform's."""
    mdps, gamma = problems.mdps, config.gamma
    if config.setting is Setting.EVALUATION:
        true = policy_values(mdps.transitions, mdps.rewards, mdps.policy, gamma)
        return {"value_error": ((learner.value.double() - true) ** 2).mean(-1).sqrt()}
    q = (learner.value if learner.value.dim() == 3 else learner.model_q(gamma)).double()
    achieved = policy_values(mdps.transitions, mdps.rewards, greedy(q), gamma).mean(-1)
    optimal = optimal_values(mdps.transitions, mdps.rewards, gamma).mean(-1)
    uniform = policy_values(mdps.transitions, mdps.rewards, mdps.policy, gamma).mean(-1)
    return {"regret": optimal - achieved, "normalised_return": (achieved - uniform) / (optimal - uniform)}


# The figure each setting is judged by (lower is better for both).
PRIMARY = {Setting.EVALUATION: "value_error", Setting.CONTROL: "regret"}


def choose_steps(config: TabularStudyConfig) -> tuple[dict, dict]:
    """For each method and dataset size, the step of config.step_grid with the lowest mean primary figure on the
    validation draws (diverged runs count as +inf). Returns (chosen {method: {size: step}},
    validation means {method: {step: {size: mean}}})."""
    if len(config.step_grid) == 1:
        step = config.step_grid[0]
        return {m.value: {n: step for n in config.dataset_sizes} for m in config.methods}, {}
    validation = config.model_copy(update={"first_seed": config.validation_first_seed, "seeds": config.validation_seeds})
    problems, primary = make_problems(validation), PRIMARY[config.setting]
    means: dict = {}
    for method in config.methods:
        means[method.value] = {}
        for step in config.step_grid:
            figure = evaluate(train(method, problems, validation, step), problems, validation)[primary]
            figure = torch.nan_to_num(figure, nan=float("inf"))
            means[method.value][step] = {n: float(figure[problems.sizes == n].mean()) for n in config.dataset_sizes}
    chosen = {m: {n: min(config.step_grid, key=lambda s: by_step[s][n]) for n in config.dataset_sizes}
              for m, by_step in means.items()}
    return chosen, means


def run_study(config: TabularStudyConfig) -> tuple[list[dict], dict, dict]:
    """One row per (method, dataset size, seed) with the setting's figures, at the steps chosen on validation draws.

    Returns (rows, chosen steps, validation means) — see choose_steps.
    """
    chosen, validation = choose_steps(config)
    problems = make_problems(config)
    rows = []
    for method in config.methods:
        steps = torch.tensor([chosen[method.value][int(n)] for n in problems.sizes], dtype=DTYPE)
        figures = evaluate(train(method, problems, config, steps), problems, config)
        for i in range(len(problems.seeds)):
            rows.append({"setting": config.setting.value, "method": method.value, "dataset_size": int(problems.sizes[i]),
                         "seed": int(problems.seeds[i]), "step_size": chosen[method.value][int(problems.sizes[i])],
                         **{k: float(v[i]) for k, v in figures.items()}})
    return rows, chosen, validation
