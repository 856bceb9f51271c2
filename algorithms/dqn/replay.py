"""A uniform replay buffer guarded by the samples-per-insert limiter: pure numpy, no Ray (scale.py serves it)."""

from __future__ import annotations

import numpy as np

from armillary.algorithms.dqn.rate_limiter import LimiterState

FIELDS = ("obs", "actions", "rewards", "discounts", "next_obs")


class LimitedReplay:
    """A ring buffer of transitions; every insert and every sampled item goes through `limiter` (a full buffer evicts
    its oldest item per insert, which the limiter counts as a delete, as Reverb does)."""

    def __init__(self, capacity: int, limiter: LimiterState, seed: int):
        self.capacity, self.limiter = capacity, limiter
        self.rng = np.random.default_rng(seed)
        self.storage: dict[str, np.ndarray] | None = None
        self.next_slot = 0

    @property
    def size(self) -> int:
        return self.limiter.size

    def insertable(self) -> int:
        return self.limiter.insertable()

    def sampleable(self) -> int:
        return self.limiter.sampleable()

    def insert(self, transitions: dict[str, np.ndarray]) -> None:
        """Insert all of `transitions` (the caller checked insertable() ≥ their number)."""
        count = len(transitions["rewards"])
        if self.storage is None:
            self.storage = {key: np.zeros((self.capacity, *np.shape(value)[1:]), dtype=np.asarray(value).dtype)
                            for key, value in transitions.items()}
        self.limiter.insert(count)  # raises if the limiter refuses
        slots = (self.next_slot + np.arange(count)) % self.capacity
        for key, value in transitions.items():
            self.storage[key][slots] = value
        evicted = max(0, self.limiter.size - self.capacity)
        if evicted:
            self.limiter.delete(evicted)
        self.next_slot = int((self.next_slot + count) % self.capacity)

    def sample(self, count: int) -> dict[str, np.ndarray]:
        """`count` items drawn uniformly (the caller checked sampleable() ≥ count)."""
        self.limiter.sample(count)
        index = self.rng.integers(0, self.size, size=count)
        return {key: value[index] for key, value in self.storage.items()}
