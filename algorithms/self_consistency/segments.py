"""K-step real segments from the train batch's rollouts, one per train-batch row (numpy; no Ray).

The control agent's learner takes PPO's train batch straight from the env runner's time-major rollouts
(algorithms/ppo/rollout.py: slot t of env i holds observations[t] → actions[t] → observations[t + 1]). Each row of
that batch is a real step (t, i); its segment is s_{t} … s_{t+K} with a_{t+k}, r_{t+k}, 1 − terminated_{t+k} and
the value targets G_{t+k} of the same rows (PPO's λ-returns), so the model's grounded losses and the imagined
rollouts take the same shuffled minibatches as PPO. s_{t+k} is valid iff slot t + k is in the rollout, real (not
an env's reset) and no episode ended at t … t+k−1; a segment cut by the rollout's end is masked there (its last
steps are not seen again: a deviation of at most K − 1 steps per env and rollout).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# The train-batch columns a segment adds (each [rows, K] or [rows, K + 1, ...]).
SEGMENT_OBS = "sc_segment_obs"  # [rows, K + 1, obs]
SEGMENT_ACTIONS = "sc_segment_actions"  # [rows, K]
SEGMENT_REWARDS = "sc_segment_rewards"  # [rows, K]
SEGMENT_CONTINUES = "sc_segment_continues"  # [rows, K]: 1 − terminated
SEGMENT_VALID = "sc_segment_valid"  # [rows, K + 1]
SEGMENT_TARGETS = "sc_segment_value_targets"  # [rows, K + 1]: G_{t+k} (0 where invalid)


def rollout_segments(rollout, value_targets: np.ndarray, depth: int) -> dict[str, np.ndarray]:
    """The segments of one rollout's real steps, in its train-batch row order (`rollout.chunk_order()`).

    value_targets: [rows] the value targets of those rows, in the same order."""
    slot, env = rollout.chunk_order()
    num_slots = rollout.num_slots
    if len(value_targets) != len(slot):
        raise ValueError(f"value_targets has {len(value_targets)} rows, the rollout {len(slot)} real steps")
    grid = np.zeros(rollout.rewards.shape, dtype=np.float32)
    grid[slot, env] = value_targets
    steps = slot[:, None] + np.arange(depth + 1)  # [rows, K + 1]
    inside = steps < num_slots
    clipped = np.minimum(steps, num_slots - 1)
    column = env[:, None]
    done = rollout.done[clipped, column] & inside
    ended_before = np.concatenate([np.zeros((len(slot), 1), bool), np.cumsum(done[:, :-1], axis=1) > 0], axis=1)
    valid = inside & rollout.real[clipped, column] & ~ended_before
    transitions = clipped[:, :-1]
    return {
        SEGMENT_OBS: rollout.observations[clipped, column],
        SEGMENT_ACTIONS: rollout.actions[transitions, column],
        SEGMENT_REWARDS: rollout.rewards[transitions, column].astype(np.float32),
        SEGMENT_CONTINUES: 1.0 - rollout.terminated[transitions, column].astype(np.float32),
        SEGMENT_VALID: valid.astype(np.float32),
        SEGMENT_TARGETS: np.where(valid, grid[clipped, column], 0.0).astype(np.float32),
    }


def batch_segments(rollouts: Sequence, value_targets: np.ndarray, depth: int) -> dict[str, np.ndarray]:
    """The segments of every row of `rollout.train_batch(rollouts, …)`: rollouts in the same order, their rows
    concatenated as there (rollouts without real steps add none)."""
    parts, offset = [], 0
    for rollout in rollouts:
        rows = int(rollout.real.sum())
        if not rows:
            continue
        parts.append(rollout_segments(rollout, value_targets[offset:offset + rows], depth))
        offset += rows
    if offset != len(value_targets):
        raise ValueError(f"the rollouts have {offset} real steps, the train batch {len(value_targets)} rows")
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
