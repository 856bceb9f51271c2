"""A samples-per-insert rate limiter (Reverb's `SampleToInsertRatio`, as Acme's agents use it): pure Python, no Ray.

Acme keeps learner updates per collected transition fixed whatever the number of actors with Reverb's limiter
(arXiv 2006.00979 §3; reverb/rate_limiters.py and reverb/cc/rate_limiter.cc). With I items inserted, S items
sampled and D items removed (evicted by the replay's capacity):

    stage 1 (I − D < min_size_to_sample): inserts always pass, samples are blocked;
    stage 2: with the error  diff = I · samples_per_insert − S,
             an insert may go ahead iff  (I + 1) · spi − S ≤ max_diff       (else the actors wait)
             a sample  may go ahead iff  I · spi − (S + 1) ≥ min_diff       (else the learner waits)
    where min_diff, max_diff = min_size_to_sample · spi ∓ error_buffer.

The offset min_size_to_sample · spi makes the error count only what happens after stage 1 (the first
min_size_to_sample inserts are "free"). While both sides keep running, diff stays in [min_diff, max_diff]: the
measured samples per insert after stage 1, (S / (I − min_size)), tends to spi with an error of at most
error_buffer / (I − min_size). Neither side can block the other for ever as long as
error_buffer ≥ max(1, spi) (Reverb raises below that): then from any reachable state at least one of the two calls
is allowed (`LimiterState.can_insert() or can_sample()`), tested in tests/test_rate_limiter.py.

`LimiterState` is the bookkeeping (can_insert / can_sample / commit); the replay actor (replay.py) owns one and
answers actors' inserts and the learner's samples from it.
"""

from __future__ import annotations

import dataclasses


def limiter_problems(samples_per_insert: float, min_size_to_sample: int, error_buffer: float,
                     replay_capacity: int | None = None, prefix: str = "algorithm.config.") -> list[str]:
    """What makes a limiter unusable, one 'field: why' line each (Reverb's checks, plus the replay's capacity)."""
    problems = []
    if not samples_per_insert > 0:
        problems.append(f"{prefix}samples_per_insert: must be > 0 (got {samples_per_insert}); it is the number of "
                        "times each inserted transition is sampled on average")
    if min_size_to_sample < 1:
        problems.append(f"{prefix}min_size_to_sample: must be ≥ 1 (got {min_size_to_sample})")
    if samples_per_insert > 0 and error_buffer < max(1.0, samples_per_insert):
        problems.append(f"{prefix}error_buffer: {error_buffer} can block sampling or inserting for ever; it must be "
                        f"≥ max(1, samples_per_insert) = {max(1.0, samples_per_insert):g} (Reverb's bound; Acme "
                        "uses about min_size_to_sample × samples_per_insert × 0.1)")
    if replay_capacity is not None and min_size_to_sample > replay_capacity:
        problems.append(f"{prefix}min_size_to_sample: {min_size_to_sample} is more than the replay holds "
                        f"(replay_capacity {replay_capacity}); the learner would never sample")
    return problems


@dataclasses.dataclass
class LimiterState:
    samples_per_insert: float
    min_size_to_sample: int
    error_buffer: float
    inserts: int = 0
    samples: int = 0
    deletes: int = 0

    def __post_init__(self):
        problems = limiter_problems(self.samples_per_insert, self.min_size_to_sample, self.error_buffer, prefix="")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def min_diff(self) -> float:
        return self.min_size_to_sample * self.samples_per_insert - self.error_buffer

    @property
    def max_diff(self) -> float:
        return self.min_size_to_sample * self.samples_per_insert + self.error_buffer

    @property
    def size(self) -> int:
        return self.inserts - self.deletes

    def diff(self) -> float:
        return self.inserts * self.samples_per_insert - self.samples

    def can_insert(self, num_inserts: int = 1) -> bool:
        if self.size + num_inserts <= self.min_size_to_sample:  # until the min size is reached inserts are free
            return True
        return (self.inserts + num_inserts) * self.samples_per_insert - self.samples <= self.max_diff

    def can_sample(self, num_samples: int = 1) -> bool:
        if self.size < self.min_size_to_sample:
            return False
        return self.inserts * self.samples_per_insert - self.samples - num_samples >= self.min_diff

    def insert(self, num_inserts: int = 1) -> None:
        if not self.can_insert(num_inserts):
            raise RuntimeError(f"the limiter refuses {num_inserts} inserts now (diff {self.diff():g}, max "
                               f"{self.max_diff:g}): wait for the learner")
        self.inserts += num_inserts

    def sample(self, num_samples: int = 1) -> None:
        if not self.can_sample(num_samples):
            raise RuntimeError(f"the limiter refuses {num_samples} samples now (size {self.size}, diff "
                               f"{self.diff():g}, min {self.min_diff:g}): wait for the actors")
        self.samples += num_samples

    def delete(self, num_deletes: int = 1) -> None:
        self.deletes += num_deletes

    def insertable(self) -> int:
        """How many inserts may go ahead now, one after the other, with no sample in between."""
        free = self.min_size_to_sample - self.size  # inserts that keep the size at or below the minimum
        paid = int((self.max_diff + self.samples) / self.samples_per_insert - self.inserts + 1e-9)
        return max(0, free, paid)

    def sampleable(self) -> int:
        """How many samples may go ahead now, one after the other, with no insert in between."""
        if self.size < self.min_size_to_sample:
            return 0
        return max(0, int(self.inserts * self.samples_per_insert - self.samples - self.min_diff + 1e-9))

    def samples_per_insert_measured(self) -> float | None:
        """Samples per insert after stage 1 (the ratio the limiter holds); None before any insert counts."""
        counted = self.inserts - self.min_size_to_sample
        return self.samples / counted if counted > 0 else None
