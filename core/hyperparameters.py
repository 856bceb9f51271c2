"""The base class of every algorithm's hyperparameters."""

from __future__ import annotations

from armillary.core.strict import StrictModel


class Hyperparameters(StrictModel):
    """Base class of every algorithm's hyperparameters: typed, documented, unknown fields, booleans for numbers and
    non-finite floats rejected."""

    def layout_problems(self, num_learners: int, num_env_runners: int) -> list[str]:
        """What cannot run with this many learners and env runners (e.g. a batch that does not split over the
        learners), one 'algorithm.config.field: what is wrong' line each. Checked when the spec is validated."""
        return []


def batch_problems(train_batch_size: int, num_learners: int, minibatch_size: int | None = None) -> list[str]:
    """A total batch must split evenly over the learners, and a minibatch fit in one learner's share (RLlib refuses
    both, but only once Ray runs)."""
    learners = max(1, num_learners)
    if train_batch_size % learners:
        return [f"algorithm.config.train_batch_size: {train_batch_size} does not split evenly over {learners} learners "
                "(resources.num_learners); use a multiple of the number of learners"]
    if minibatch_size is not None and minibatch_size > train_batch_size // learners:
        share = "" if learners == 1 else f" / {learners} learners = {train_batch_size // learners}"
        return [f"algorithm.config.minibatch_size: {minibatch_size} is larger than a learner's train batch "
                f"(train_batch_size {train_batch_size}{share}); use at most that"]
    return []
