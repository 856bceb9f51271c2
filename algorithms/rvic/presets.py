"""RVIC presets: the open room with random starts (the RVIC paper's small experiment)."""

from armillary.algorithms.skills.presets import OPEN_ROOM, OPEN_ROOM_ENV
from armillary.core.presets import register

def open_room_run(env_steps: int) -> dict:
    """RVIC in the open room with random starts, 3 seeds: the experiment and its comparison share this."""
    return {
        "algorithm": {"name": "rvic", "config": dict(OPEN_ROOM)},
        "env": OPEN_ROOM_ENV,
        "seeds": [0, 1, 2],
        "stop": {"env_steps": env_steps},
        "checkpoint": {"every_iterations": 50},
    }


register(
    "rvic/open-room",
    open_room_run(600_000),
    "RVIC in a 9x9 open room with random starts (N=8, T=5): skills that are displacements, not places.",
)

# Downstream use (the RVIC paper's test of skills): PPO as a meta-controller over frozen skills + primitives,
# reaching a random goal from a random start in the same room. Without `env.config.skills` (a library written
# by armillary.envs.skill_options.export_skill_library) it is the primitives-only control.
# benchmarks/skills_downstream.py runs the comparison RVIC skills vs VIC skills vs primitives.
register(
    "rvic/open-room-downstream",
    {
        "algorithm": {"name": "ppo", "config": {"lr": 3e-4, "gamma": 0.95, "train_batch_size": 1000, "minibatch_size": 125,
                                                "num_epochs": 4, "entropy_coeff": 0.01, "hidden_sizes": [128, 128]}},
        "env": {"name": "open-room-skill-options", "config": {"size": 9, "max_episode_steps": 30, "skills": None}},
        "seeds": [0, 1, 2],
        "stop": {"env_steps": 100_000},
        "checkpoint": {"every_iterations": 20},
    },
    "Goal reaching in the 9x9 open room with frozen skills (env.config.skills=<library>) + primitives as actions.",
)

# The headline comparison as one experiment: RVIC vs VIC, q(z | s_0, s_f) and q(z | s_f) (the vic algorithm as a
# whole: another reward, the same settings), compared on each arm's own figures ({algorithm}/...), measured by the
# in-training evaluation (every 10 iterations, ε-greedy). The README's budget (200k steps), 3 seeds.
register(
    "rvic/reproduce",
    {
        **open_room_run(200_000),
        "arms": [
            {"name": "rvic", "overrides": {}},
            {"name": "vic", "overrides": {"algorithm": {"name": "vic", "config": dict(OPEN_ROOM)}}},
            # VIC with q(z | s_f) (no start state): the DIAYN-like end-state variant, skills as places
            {"name": "vic-end", "overrides": {"algorithm": {"name": "vic", "config": {**OPEN_ROOM, "condition_on_start": False}}}},
        ],
        "results": {
            "folder": "rvic/reproduce",
            "metrics": ["{algorithm}/skill_entropy_displacement_bits", "{algorithm}/skill_entropy_final_bits",
                        "{algorithm}/mutual_information_displacement_bits", "{algorithm}/mutual_information_final_bits"],
            "paper": "Baumli et al. 2021 (RVIC): RVIC's skills are displacements (low H[S_f − S_0 | z], high "
                     "H[S_f | z]); VIC's are places. Qualitative in the paper (skill pictures), no table to match.",
        },
    },
    "RVIC vs VIC (q(z|s_0,s_f) and q(z|s_f)) in the 9x9 open room with random starts, 3 seeds, 200k steps: "
    "displacement vs end-state entropy per skill; the table and plot go to results/rvic/reproduce/.",
)
