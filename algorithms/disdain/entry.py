"""DISDAIN registered with the platform: `armillary run disdain/four-rooms`."""

from armillary.algorithms.disdain.config import DisdainHyperparameters
from armillary.algorithms.skills.registration import register_skill_algorithm

ENTRY = register_skill_algorithm(
    name="disdain",
    hyperparameters=DisdainHyperparameters,
    method="armillary.algorithms.disdain.losses:DisdainMethod",
    include_start=False,
    description="DISDAIN: VIC-style skills with an ensemble discriminator and a disagreement bonus (PPO learner).",
)
