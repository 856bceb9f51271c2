"""Self-consistency losses for a tabular model, pure torch (no Ray).

The tabular model m̂ is a table of transition logits ℓ[s, a, s'] (P̂ = softmax over s') and a reward table
r̂[s, a]; the value v̂ is a table over states. Under a policy π they give the policy's model

    P̂_π[s, s'] = Σ_a π(a|s) P̂(s'|s, a)          r̂_π[s] = Σ_a π(a|s) r̂(s, a).

An imagined rollout is the model's *expected* one: its latent state is the distribution over states
z_0 = e_s (a real start state), z_{k+1} = z_k P̂_π, with r̂_k = z_k · r̂_π and v̂_k = z_k · v̂ — a linear
latent model whose states z_k depend on the transition logits, so a gradient "through the imagined state"
reaches the model exactly as it does through a learned latent state in the deep agent.

With δ_k = r̂_k + γ v̂_{k+1} − v̂_k and ⊥ the stop-gradient, the losses on an imagined rollout (k = 0 … K−1):

    Dyna         ½ Σ_k (⊥(r̂_k + γ v̂_{k+1}) − ⊥(z_k) · v̂)²    only the value table moves
    SC-Direct    ½ Σ_k (⊥(r̂_k + γ v̂_{k+1}) − v̂_k)²           v̂ and, through z_k (k ≥ 1), the transitions
    SC-Reverse   ½ Σ_k (r̂_k + γ v̂_{k+1} − ⊥(v̂_k))²           r̂, v̂ at z_{k+1}, and the transitions via z_k, z_{k+1}
    SC-Residual  ½ Σ_k (r̂_k + γ v̂_{k+1} − v̂_k)²              all of the above

At k = 0 the start state is real (z_0 carries no gradient), so SC-Direct moves the model only from k = 1 on:
with K = 1 it is exactly Dyna (a test holds this).

Grounded updates fit both to the real transitions, summarised by counts n[s, a, s'] and reward sums:

    model   Σ_{(s,a) seen} [ CE(p̃(·|s,a), P̂(·|s,a)) + ½ (r̂(s,a) − r̃(s,a))² ]    (maximum likelihood)
    value   ½ Σ_{s seen} (⊥(r̃(s) + γ Σ_s' p̃(s'|s) v̂(s')) − v̂(s))²            (batch TD(0) on the data)

with p̃, r̃ the empirical next-state distribution and mean reward of the transitions from (s, a) or from s.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from armillary.algorithms.self_consistency.config import Method


@dataclass(frozen=True)
class Counts:
    """The real transitions of a batch of datasets as sufficient statistics.

    transitions[b, s, a, s']: how often (s, a) → s' was seen; reward_sums[b, s, a]: the sum of their rewards.
    """

    transitions: torch.Tensor
    reward_sums: torch.Tensor

    @property
    def visits(self) -> torch.Tensor:  # n(s, a)
        return self.transitions.sum(-1)


def policy_model(transition: torch.Tensor, reward: torch.Tensor, policy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(P̂_π [B, S, S], r̂_π [B, S]) from P̂ [B, S, A, S] (softmax of the logits), r̂ [B, S, A] and π [B, S, A]."""
    return (policy.unsqueeze(-1) * transition).sum(-2), (policy * reward).sum(-1)


def imagined_rollout(transition_pi: torch.Tensor, depth: int) -> list[torch.Tensor]:
    """The latent states z_0 … z_depth of the expected rollouts from every state: z_k[b, start, s] = (P̂_π^k)[start, s]."""
    num_states = transition_pi.shape[-1]
    start = torch.eye(num_states, dtype=transition_pi.dtype).expand_as(transition_pi)
    states = [start]
    for _ in range(depth):
        states.append(states[-1] @ transition_pi)
    return states


def bellman_consistency(method: Method, rewards: list[torch.Tensor] | torch.Tensor,
                        values: list[torch.Tensor] | torch.Tensor,
                        discounts: float | list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """½ Σ_k Σ_batch (target_k − prediction_k)², target_k = r̂_k + γ_k v̂_{k+1}, prediction_k = v̂_k, with the
    method's stop-gradient: Dyna and SC-Direct stop the target, SC-Reverse the prediction, SC-Residual nothing.

    The one place the variants differ, shared by the tabular and the latent model. rewards r̂_0 … r̂_{K−1},
    values v̂_0 … v̂_K (same shapes), each a list over k or one tensor stacked along a leading k axis; discounts γ_k:
    a float, or one tensor per step (γ × the model's continuation), listed or stacked likewise. All K steps are
    computed at once on the stacked tensors. Dyna's "the model is fixed" is the caller's job (it stops the imagined
    states before the heads see them).
    """
    if method is Method.TD:
        raise ValueError("model-free TD has no model rollouts: it takes no consistency loss")
    if len(values) != len(rewards) + 1:
        raise ValueError(f"need one more value than rewards (v̂_0 … v̂_K), got {len(values)} and {len(rewards)}")
    rewards, values = _stacked(rewards), _stacked(values)
    discounts = discounts if isinstance(discounts, float) else _stacked(discounts)
    target, prediction = rewards + discounts * values[1:], values[:-1]
    if method in (Method.DYNA, Method.SC_DIRECT):
        target = target.detach()
    elif method is Method.SC_REVERSE:
        prediction = prediction.detach()
    return 0.5 * ((target - prediction) ** 2).sum()


def _stacked(steps: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    return steps if isinstance(steps, torch.Tensor) else torch.stack(steps)


def consistency_loss(method: Method, states: list[torch.Tensor], reward_pi: torch.Tensor, value: torch.Tensor,
                     gamma: float) -> torch.Tensor:
    """Σ_b Σ_start ½ Σ_k (target_k − prediction_k)² with the method's stop-gradients (module docstring).

    states: z_0 … z_K [B, starts, S]; reward_pi r̂_π [B, S]; value v̂ [B, S]. Returns a scalar.
    """
    if method is Method.DYNA:  # the model is fixed: only the value table receives gradient
        states = [z.detach() for z in states]
        reward_pi = reward_pi.detach()
    rewards = [torch.einsum("bns,bs->bn", z, reward_pi) for z in states[:-1]]
    values = [torch.einsum("bns,bs->bn", z, value) for z in states]
    return bellman_consistency(method, rewards, values, float(gamma))


def model_grounding_loss(log_transition: torch.Tensor, reward: torch.Tensor, counts: Counts) -> torch.Tensor:
    """Maximum-likelihood fit of m̂ (log P̂ = log_softmax of the logits, r̂) to the real transitions, each seen
    (s, a) weighted once."""
    visits = counts.visits
    seen = (visits > 0).to(reward.dtype)
    empirical = counts.transitions / visits.clamp(min=1).unsqueeze(-1)
    cross_entropy = -(empirical * log_transition).sum(-1)
    mean_reward = counts.reward_sums / visits.clamp(min=1)
    return (seen * (cross_entropy + 0.5 * (reward - mean_reward) ** 2)).sum()


def td_grounding_loss(value: torch.Tensor, counts: Counts, gamma: float, action_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Batch TD(0) of the value table on the real transitions: ½ Σ_s (⊥ mean(r + γ v̂(s')) − v̂(s))².

    action_weights[b, s, a] (optional) re-weights the transitions of each action (importance weights of an
    off-policy target policy, e.g. 1[a = greedy(s)]); a state whose weighted count is zero is not updated.
    """
    transitions, reward_sums = counts.transitions, counts.reward_sums
    if action_weights is not None:
        transitions = transitions * action_weights.unsqueeze(-1)
        reward_sums = reward_sums * action_weights
    state_visits = transitions.sum((-1, -2))
    target_sum = reward_sums.sum(-1) + gamma * torch.einsum("bsat,bt->bs", transitions, value.detach())
    target = target_sum / state_visits.clamp(min=1e-12)
    seen = (state_visits > 0).to(value.dtype)
    return 0.5 * (seen * (target - value) ** 2).sum()


def q_learning_loss(q: torch.Tensor, counts: Counts, gamma: float) -> torch.Tensor:
    """Batch Q-learning on the real transitions: ½ Σ_{(s,a) seen} (⊥ mean(r + γ max_a' Q(s', a')) − Q(s, a))²."""
    visits = counts.visits
    next_value = q.detach().max(-1).values
    target = (counts.reward_sums + gamma * torch.einsum("bsat,bt->bsa", counts.transitions, next_value)) / visits.clamp(min=1)
    return 0.5 * ((visits > 0).to(q.dtype) * (target - q) ** 2).sum()


# ---- The latent model (function approximation): the same variants on learned latent states ----------------------
#
# Imagined rollouts start from real states, z_0 = h(s), and follow the model under its policy head:
# a_k ~ π̂(·|z_k), z_{k+1} = g(z_k, a_k), with r̂_k = r̂(z_k, a_k), γ_k = γ ĉ(z_k, a_k), v̂_k = v̂(z_k). The losses are
# bellman_consistency's on these; Dyna stops the imagined states (so only the value head moves), the SC variants
# let the gradient reach the model through z_k. Unlike the table's z_0 = e_s, z_0 = h(s) has parameters (the
# encoder), so SC-Direct moves the encoder from k = 0 on and the transition from k = 1 on; it never moves the
# reward or continuation heads (they are only in its stopped target).


@dataclass(frozen=True)
class Segments:
    """A batch of B real trajectory segments of K steps from a start state s_t.

    observations [B, K+1, obs] (s_t … s_{t+K}); actions, rewards, continues [B, K] (continues = 1 − terminated);
    valid [B, K+1]: s_{t+k} is a real state of the same episode; value_targets [B, K+1]: the n-step return targets
    of s_{t+k}, already holding the stopped bootstrap value.
    """

    observations: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    continues: torch.Tensor
    valid: torch.Tensor
    value_targets: torch.Tensor


def grounded_losses(model, segments: Segments, *, z0: torch.Tensor | None = None, include_policy: bool = True,
                    first_value_step: int = 0) -> dict[str, torch.Tensor]:
    """Value-equivalent grounding along the real actions, z_0 = h(s_t), z_{k+1} = g(z_k, a_{t+k}), means over B:

        value         ½ Σ_{k≤K} (v̂(z_k) − G_{t+k})²                      G: the given targets (n-step return, …)
        reward        ½ Σ_{k<K} (r̂(z_k, a_{t+k}) − r_{t+k})²
        continuation  Σ_{k<K} BCE(ĉ(z_k, a_{t+k}), 1 − terminated_{t+k})
        policy        Σ_{k<K} CE(π̂(·|z_k), a_{t+k})                       (behaviour cloning of the data's policy)

    each term masked where s_{t+k} is not a real state of the episode. Every parameter it reaches moves.
    z0: h(s_t) when the caller has it already. The control agent leaves out the policy term (its policy head is PPO's
    actor) and the value at k = 0 (first_value_step=1: PPO's critic loss already grounds v̂(h(s_t))); the dict then
    has no "policy" key. (The control agent computes these terms fused with its consistency term: `control_losses`.)
    """
    batch, depth = segments.actions.shape
    actions = segments.actions.T  # [K, B]
    states = [model.encode(segments.observations[:, 0]) if z0 is None else z0]
    for k in range(depth):
        states.append(model.step(states[-1], actions[k]))
    states = torch.stack(states)  # [K+1, B, latent]
    values = model.predict_value(states[first_value_step:].flatten(0, 1)).view(-1, batch)
    heads = {"reward": model.predict_reward(states[:-1].flatten(0, 1), actions.flatten()).view(depth, batch),
             "continuation": model.continuation_logit(states[:-1].flatten(0, 1), actions.flatten()).view(depth, batch)}
    terms = _grounded_sums(segments, values, heads["reward"], heads["continuation"], first_value_step)
    if include_policy:
        logits = model.policy_logits(states[:-1].flatten(0, 1))
        cross_entropy = torch.nn.functional.cross_entropy(logits, actions.flatten().long(), reduction="none")
        terms["policy"] = (segments.valid.T[:-1] * cross_entropy.view(depth, batch)).sum()
    return {name: term / batch for name, term in terms.items()}


def _grounded_sums(segments: Segments, values: torch.Tensor, rewards: torch.Tensor, continuation_logits: torch.Tensor,
                   first_value_step: int) -> dict[str, torch.Tensor]:
    """The grounded value, reward and continuation terms (summed over steps and rows, masked by `valid`) from the
    heads on the real unrolled states: values [K+1−first_value_step, B] (v̂(z_k), k ≥ first_value_step), rewards and
    continuation logits [K, B]."""
    valid = segments.valid.T  # [K+1, B]
    value_error = values - segments.value_targets.T[first_value_step:]
    continuation = torch.nn.functional.binary_cross_entropy_with_logits(
        continuation_logits, segments.continues.T, reduction="none")
    return {"value": 0.5 * (valid[first_value_step:] * value_error ** 2).sum(),
            "reward": 0.5 * (valid[:-1] * (rewards - segments.rewards.T) ** 2).sum(),
            "continuation": (valid[:-1] * continuation).sum()}


def sample_action(model, z: torch.Tensor, generator: torch.Generator | None, logits: torch.Tensor | None = None) -> torch.Tensor:
    """a ~ π̂(·|z) without gradient; logits: π̂'s logits at z when the caller has them already (the same draw)."""
    with torch.no_grad():
        probabilities = torch.softmax(model.policy_logits(z) if logits is None else logits.detach(), -1)
        return torch.multinomial(probabilities, 1, generator=generator).squeeze(-1)


def imagine(model, z0: torch.Tensor, depth: int, generator: torch.Generator | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """z_0 … z_K and a_0 … a_{K−1} of rollouts in the model from z0 [B, latent], a_k ~ π̂(·|z_k) (sampling has no
    gradient; the policy head is not moved by the rollout)."""
    states, actions = [z0], []
    for _ in range(depth):
        actions.append(sample_action(model, states[-1], generator))
        states.append(model.step(states[-1], actions[-1]))
    return states, actions


def latent_consistency_loss(method: Method, model, states: list[torch.Tensor], actions: list[torch.Tensor],
                            gamma: float) -> torch.Tensor:
    """The method's consistency loss on imagined latent rollouts, mean over the batch of start states:
    ½ Σ_k (r̂(z_k, a_k) + γ ĉ(z_k, a_k) v̂(z_{k+1}) − v̂(z_k))² with bellman_consistency's stop-gradients."""
    states, actions = torch.stack(states), torch.stack(actions)  # [K+1, B, latent], [K, B]
    depth, batch = actions.shape
    if method is Method.DYNA:  # the model is fixed: the imagined states (hence all model heads) carry no gradient
        states = states.detach()
    rewards = model.predict_reward(states[:-1].flatten(0, 1), actions.flatten()).view(depth, batch)
    logits = model.continuation_logit(states[:-1].flatten(0, 1), actions.flatten()).view(depth, batch)
    values = model.predict_value(states.flatten(0, 1)).view(depth + 1, batch)
    return _imagined_consistency(method, rewards, logits, values, gamma) / batch


def _imagined_consistency(method: Method, rewards: torch.Tensor, continuation_logits: torch.Tensor,
                          values: torch.Tensor, gamma: float) -> torch.Tensor:
    """bellman_consistency on the heads of imagined states: r̂_k, ĉ_k [K, B] and v̂_k [K+1, B], γ_k = γ ĉ_k; Dyna's
    fixed model also stops r̂ and ĉ (the caller has stopped the states)."""
    discounts = gamma * torch.sigmoid(continuation_logits)
    if method is Method.DYNA:
        rewards, discounts = rewards.detach(), discounts.detach()
    return bellman_consistency(method, rewards, values, discounts)


def control_losses(model, segments: Segments, z0: torch.Tensor, method: Method, gamma: float,
                   generator: torch.Generator | None = None, first_logits: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The control agent's model terms on a minibatch, in as few calls as the math allows:
    `grounded_losses(model, segments, z0=z0, include_policy=False, first_value_step=1)` and, unless method is TD,
    "consistency": `latent_consistency_loss(method, model, *imagine(model, z0, K, generator), gamma)`.

    The same numbers (up to the floating-point order of the sums) and gradients, and the same imagined actions from
    the same generator: the real and the imagined chain share one transition call per step (their rows stacked),
    each head (value, reward, continuation) is called once on every state of both chains (reward and continuation on
    one shared (z, onehot(a)) input: model.reward_and_continuation_logit), and π̂'s logits at z0 can
    come from the caller (PPO's forward has them: first_logits), so imagination calls the policy K − 1 times.
    """
    batch, depth = segments.actions.shape
    real_actions = segments.actions.T  # [K, B]
    imagined = method is not Method.TD
    states, actions = [torch.cat([z0, z0]) if imagined else z0], []
    for k in range(depth):
        step_actions = real_actions[k]
        if imagined:
            current = states[-1][batch:]
            step_actions = torch.cat([step_actions, sample_action(model, current, generator,
                                                                  first_logits if k == 0 else None)])
        actions.append(step_actions)
        states.append(model.step(states[-1], step_actions))
    states, actions = torch.stack(states), torch.stack(actions)  # [K+1, C·B, latent], [K, C·B]; C chains
    if method is Method.DYNA:  # the model is fixed for the imagined chain only
        states = torch.cat([states[:, :batch], states[:, batch:].detach()], 1)
    width = states.shape[1]
    rewards, logits = (head.view(depth, width) for head in
                       model.reward_and_continuation_logit(states[:-1].flatten(0, 1), actions.flatten()))
    # Every state's value but the real z_0's (PPO's critic term grounds it): the first B rows of the flattened states.
    values = model.predict_value(states.flatten(0, 1)[batch:])
    values = torch.cat([values.new_zeros(batch), values]).view(depth + 1, width)
    terms = _grounded_sums(segments, values[1:, :batch], rewards[:, :batch], logits[:, :batch], first_value_step=1)
    if imagined:
        terms["consistency"] = _imagined_consistency(method, rewards[:, batch:], logits[:, batch:], values[:, batch:], gamma)
    return {name: term / batch for name, term in terms.items()}
