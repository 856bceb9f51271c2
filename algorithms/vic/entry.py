"""VIC registered with the platform: `armillary run vic/four-rooms`."""

from armillary.algorithms.skills.registration import register_skill_algorithm
from armillary.algorithms.vic.config import VicHyperparameters

ENTRY = register_skill_algorithm(
    name="vic",
    hyperparameters=VicHyperparameters,
    method="armillary.algorithms.vic.losses:VicMethod",
    include_start=lambda hp: hp.condition_on_start,  # q(z | s_0, s_T), or q(z | s_T) as in DIAYN-like variants
    description="VIC: skills that maximise log q(z | s_0, s_T) − log p(z) at the final state (PPO learner).",
)
