"""RVIC registered with the platform: `armillary run rvic/open-room`."""

from armillary.algorithms.rvic.config import RvicHyperparameters
from armillary.algorithms.skills.registration import register_skill_algorithm

ENTRY = register_skill_algorithm(
    name="rvic",
    hyperparameters=RvicHyperparameters,
    method="armillary.algorithms.rvic.losses:RvicMethod",
    include_start=True,  # q_rel(z | s_0, s_f) and a policy that knows where the skill started
    description="RVIC: skills that change the agent's relation to its surroundings, reward log q_rel − log q_abs (PPO learner).",
)
