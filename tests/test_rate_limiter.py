"""The samples-per-insert limiter (algorithms/dqn/rate_limiter.py): Reverb's semantics, pure code, no Ray."""

from __future__ import annotations

import random

import pytest

from armillary.algorithms.dqn.rate_limiter import LimiterState, limiter_problems

# (samples_per_insert, min_size_to_sample, error_buffer): ratios below, at and above 1, buffers at Reverb's bound.
SETTINGS = [(1.0, 1, 1.0), (0.25, 10, 1.0), (0.5, 7, 2.5), (2.0, 3, 2.0), (4.0, 20, 4.0), (32.0, 100, 32.0),
            (8.0, 50, 40.0), (1.5, 5, 1.5), (3.0, 1000, 300.0)]


def test_hand_checked_sequence():
    """spi 2, min size 3, buffer 2: min_diff 4, max_diff 8. Inserts are free to 3; then the diff 2I − S must stay
    within [4, 8]."""
    limiter = LimiterState(samples_per_insert=2.0, min_size_to_sample=3, error_buffer=2.0)
    assert (limiter.min_diff, limiter.max_diff) == (4.0, 8.0)
    for _ in range(2):
        assert not limiter.can_sample()
        limiter.insert()
    assert not limiter.can_sample()  # size 2 < 3
    limiter.insert()  # the third insert is free: diff 6
    assert limiter.can_sample() and limiter.can_insert()  # 6 − 1 ≥ 4; 8 − 0 ≤ 8
    limiter.insert()  # diff 8
    assert not limiter.can_insert()  # 10 > 8: the actors wait
    assert limiter.insertable() == 0 and limiter.sampleable() == 4
    for _ in range(4):
        limiter.sample()
    assert limiter.diff() == 4.0 and not limiter.can_sample()  # 3 < 4: the learner waits
    assert limiter.insertable() == 2
    with pytest.raises(RuntimeError, match="wait for the actors"):
        limiter.sample()
    limiter.insert()
    assert limiter.samples_per_insert_measured() == 4 / 2


@pytest.mark.parametrize("spi,min_size,buffer", SETTINGS)
def test_random_interleavings_hold_the_ratio_and_never_deadlock(spi, min_size, buffer):
    """Actors and learner racing in random order, each side at random speeds: after the min size the error
    I·spi − S stays within [min_diff, max_diff] (so the measured samples per insert is spi to within
    error_buffer / inserts), and in every state reached at least one side may go ahead."""
    rng = random.Random(f"{spi}-{min_size}-{buffer}")
    limiter = LimiterState(samples_per_insert=spi, min_size_to_sample=min_size, error_buffer=buffer)
    inserter_bias = rng.uniform(0.1, 0.9)
    blocked = {"insert": 0, "sample": 0}
    for _ in range(6_000):
        assert limiter.can_insert() or limiter.can_sample(), vars(limiter)
        if rng.random() < inserter_bias:
            if limiter.can_insert():
                limiter.insert()
            else:
                blocked["insert"] += 1
        elif limiter.can_sample():
            limiter.sample()
        else:
            blocked["sample"] += 1
        if limiter.size >= min_size:
            assert limiter.diff() <= limiter.max_diff + 1e-9
            if limiter.samples:
                assert limiter.diff() >= limiter.min_diff - 1e-9
        # insertable/sampleable agree with the one-step predicates
        assert (limiter.insertable() > 0) == limiter.can_insert()
        assert (limiter.sampleable() > 0) == limiter.can_sample()
    counted = limiter.inserts - min_size
    assert counted > 0 and limiter.samples > 0
    assert abs(limiter.samples - counted * spi) <= buffer + 1e-9
    assert blocked["insert"] + blocked["sample"] > 0  # the limiter did gate someone


@pytest.mark.parametrize("spi,min_size,buffer", SETTINGS)
def test_the_side_that_runs_ahead_is_blocked(spi, min_size, buffer):
    """Inserting only: blocked after min_size + buffer/spi inserts or so; then sampling only: blocked once the
    ratio is reached from the other side. insertable/sampleable count exactly how many single calls pass."""
    limiter = LimiterState(samples_per_insert=spi, min_size_to_sample=min_size, error_buffer=buffer)
    expected = limiter.insertable()
    while limiter.can_insert():
        limiter.insert()
    assert limiter.inserts == expected
    assert limiter.inserts >= min_size  # the learner can start
    assert limiter.inserts <= min_size + buffer / spi + 1
    expected = limiter.sampleable()
    while limiter.can_sample():
        limiter.sample()
    assert limiter.samples == expected
    assert limiter.can_insert()  # the actors may go on: no deadlock at the lower bound


def test_min_size_blocks_sampling_and_evictions_count():
    limiter = LimiterState(samples_per_insert=1.0, min_size_to_sample=5, error_buffer=1.0)
    for _ in range(4):
        limiter.insert()
        assert not limiter.can_sample()
    limiter.insert()
    assert limiter.can_sample()
    limiter.delete(3)  # a replay smaller than the minimum again (Reverb: back in stage 1): no samples
    assert not limiter.can_sample() and limiter.can_insert()


def test_a_buffer_below_reverbs_bound_can_deadlock():
    """Why the bound is checked: spi 4 with buffer 1 reaches a state where neither side may go ahead."""
    limiter = LimiterState.__new__(LimiterState)  # bypass the validation on purpose
    limiter.__dict__.update(samples_per_insert=4.0, min_size_to_sample=1, error_buffer=1.0, inserts=0, samples=0,
                            deletes=0)
    limiter.insert()
    limiter.sample()
    assert not limiter.can_insert() and not limiter.can_sample()
    with pytest.raises(ValueError, match="error_buffer"):
        LimiterState(samples_per_insert=4.0, min_size_to_sample=1, error_buffer=1.0)


@pytest.mark.parametrize("kwargs,field,words", [
    ({"samples_per_insert": 0.0}, "samples_per_insert", "must be > 0"),
    ({"samples_per_insert": -1.0}, "samples_per_insert", "must be > 0"),
    ({"error_buffer": 0.5}, "error_buffer", "max(1, samples_per_insert) = 1"),
    ({"samples_per_insert": 8.0, "error_buffer": 4.0}, "error_buffer", "max(1, samples_per_insert) = 8"),
    ({"min_size_to_sample": 0}, "min_size_to_sample", "≥ 1"),
    ({"min_size_to_sample": 2000, "replay_capacity": 1000}, "min_size_to_sample", "replay_capacity 1000"),
])
def test_problems_name_the_field(kwargs, field, words):
    args = {"samples_per_insert": 1.0, "min_size_to_sample": 10, "error_buffer": 2.0, **kwargs}
    problems = limiter_problems(**args)
    assert len(problems) == 1 and problems[0].startswith(f"algorithm.config.{field}:") and words in problems[0], problems
    assert not limiter_problems(1.0, 10, 2.0, replay_capacity=10)
