"""DOMiNO presets: the small multi-goal room (and its two baselines), DM Control walker at paper scale."""

from armillary.core.presets import register

# φ = the agent's normalised (x, y) (info["features"]): ψ_i is policy i's mean position, so ψ distances read
# as distances in the room (corners of the 7x7 room are 1 apart along an edge).
# Tuned by hand on one seed (algorithms/domino/EXPERIMENTS.md): ψ's decay 0.9 per iteration (0.99 averages over
# most of a short run), r_d scaled by 5 (φ·Δψ/2 is ~0.01 per step here, against r_e = 1 every ~6 steps).
# Multipliers: the PI update (K_I = 0.1, K_P = 2, |λ| ≤ 5) instead of the gradient step, whose σ(λ) swung with a
# period of ~100–150 iterations because the policies answer a weight change only tens of iterations later
# (EXPERIMENTS.md, "Multiplier dynamics"; the gains come from the closed-loop model in tests/test_domino_math.py).
# Last iterate (EXPERIMENTS.md, "The last iterate"): PPO's entropy bonus (0.05; 0.01 at first, then 0.03) makes
# each policy's answer to σ(λ) a graded one, so the policies settle around the target instead of swinging between
# the goals and r_d; the multipliers aim 0.05 above α (target_margin), the size of that remaining fluctuation, so
# it stays above α − 0.05.
GRID = {
    "num_policies": 4, "features": "features", "optimality_ratio": 0.9, "diversity": "vdw", "target_distance": 0.5,
    "diversity_scale": 5.0, "sf_decay": 0.9, "value_decay": 0.9, "target_margin": 0.05,
    "multiplier_optimizer": "pi", "multiplier_lr": 0.1, "multiplier_proportional": 2.0, "multiplier_bound": 5.0,
    "gamma": 0.97, "lr": 1e-3, "entropy_coeff": 0.05,
    "train_batch_size": 2000, "minibatch_size": 250, "num_epochs": 4, "hidden_sizes": [64, 64],
}
# A continuing task of fixed length (the goal sends the agent back to the start), as DOMiNO's average-reward
# setting assumes: with terminating goals a policy could collect more per-step diversity reward by never arriving.
GRID_ENV = {"name": "multi-goal-room", "config": {"size": 7, "max_episode_steps": 30, "observation": "onehot", "on_goal": "respawn"}}
# 800k env steps (400 iterations): at 400k some runs of the α sweep were still mid-swing after a slack
# multiplier's long drift; the last iterate met α − 0.05 for 134 of 144 policies there, 141 of 144 at 800k
# (README, "Measured").
GRID_RUN = {"seeds": [0, 1, 2], "stop": {"env_steps": 800_000}, "checkpoint": {"every_iterations": 20}}

register(
    "domino/grid",
    {"algorithm": {"name": "domino", "config": dict(GRID)}, "env": GRID_ENV, **GRID_RUN},
    "DOMiNO on the 7x7 multi-goal room (4 equally good corners), N=4, α=0.9, Van der Waals ℓ0=0.5 in (x, y) space.",
)
register(
    "domino/grid-no-diversity",
    {"algorithm": {"name": "domino", "config": {**GRID, "mixing": "none"}}, "env": GRID_ENV, **GRID_RUN},
    "Baseline of domino/grid: every policy maximises the extrinsic reward only (ψ still tracked).",
)
register(
    "domino/grid-fixed-mix",
    {"algorithm": {"name": "domino", "config": {**GRID, "mixing": "fixed", "extrinsic_weight": 0.5, "diversity_weight": 0.5}},
     "env": GRID_ENV, **GRID_RUN},
    "Baseline of domino/grid: policies i ≥ 1 maximise the fixed mix ½ r_e + ½ r_d (no constraint).",
)
# Unequal goals: corner k pays goal_rewards[k], so a policy at corner 1, 2, 3 reaches v_i/v_0 = 0.85, 0.7, 0.55 at
# best and the constraint v_i ≥ α v_0 decides which corners (and routes) a policy may take.
GRID_UNEQUAL_ENV = {"name": "multi-goal-room", "config": {**GRID_ENV["config"], "goal_rewards": [1.0, 0.85, 0.7, 0.55]}}
register(
    "domino/grid-unequal",
    {"algorithm": {"name": "domino", "config": dict(GRID)}, "env": GRID_UNEQUAL_ENV, **GRID_RUN},
    "domino/grid with unequal goals (1, 0.85, 0.7, 0.55): the constraint binds, α sets the trade-off.",
)
register(
    "domino/grid-alpha-sweep",
    {
        "algorithm": {"name": "domino", "config": dict(GRID)},
        "env": GRID_UNEQUAL_ENV,
        **GRID_RUN,
        # One trial per (α, seed): 4 × 3 = 12; two at a time, each sampling in its own process.
        "tune": {"search_space": {"algorithm.config.optimality_ratio": {"grid": [0.5, 0.7, 0.9, 0.99]}}},
        "resources": {"num_env_runners": 0, "max_concurrent_trials": 2},
    },
    "The α sweep of domino/grid-unequal as a Tune grid: α ∈ {0.5, 0.7, 0.9, 0.99} × 3 seeds (diversity vs return).",
)
register(
    "domino/walker",
    {
        "algorithm": {
            "name": "domino",
            "config": {
                "num_policies": 10, "features": "observation", "optimality_ratio": 0.9, "diversity": "vdw",
                "target_distance": 1.0, "sf_decay": 0.99, "value_decay": 0.9,
                # The PI update with the grid's gains: they act on the normalised violation α − v̄_i/v̄_0, so they
                # do not depend on the scale of walker's reward (README, "Walker"; checked for 10 and 50 iterations).
                "multiplier_optimizer": "pi", "multiplier_lr": 0.1, "multiplier_proportional": 2.0, "multiplier_bound": 5.0,
                "lr": 3e-4, "gamma": 0.99, "gae_lambda": 0.95, "clip_param": 0.2, "entropy_coeff": 0.0,
                "train_batch_size": 16000, "minibatch_size": 512, "num_epochs": 10, "hidden_sizes": [256, 256],
            },
        },
        "env": {"name": "dmc-walker-walk"},
        "resources": {"profile": "cluster-cpu"},
        "seeds": [0, 1, 2],
        "stop": {"env_steps": 20_000_000},
        "checkpoint": {"every_iterations": 10},
    },
    "DOMiNO on DM Control walker-walk, N=10 policies, φ = proprioceptive state, α=0.9: distinct gaits. A cluster job.",
    cluster_scale=True,
)

# The headline comparisons as one experiment each (`armillary run domino/reproduce`, `domino/reproduce-alpha`): every
# arm × seed one trial of one Tune run, the comparison kept in results/domino/<preset>/.
_REPRODUCE_METRICS = ["domino/min_pairwise_sf_distance", "domino/constraints_met", "env_runners/episode_return_mean"]
register(
    "domino/reproduce",
    {
        "algorithm": {"name": "domino", "config": dict(GRID)}, "env": GRID_ENV, **GRID_RUN,
        "arms": [
            {"name": "domino", "overrides": {}},
            {"name": "no-diversity", "overrides": {"algorithm.config.mixing": "none"}},
            {"name": "fixed-mix", "overrides": {"algorithm.config.mixing": "fixed", "algorithm.config.extrinsic_weight": 0.5,
                                                "algorithm.config.diversity_weight": 0.5}},
        ],
        "results": {"folder": "domino/reproduce", "metrics": _REPRODUCE_METRICS,
                    "paper": "Zahavy et al. 2022 (DOMiNO): near-optimal (v_i ≥ α v_0) and more diverse than policies "
                             "that maximise the reward alone; the paper's figures are on DM Control and its own "
                             "grid, no table to match."},
    },
    "DOMiNO vs its controls (no diversity; fixed ½ r_e + ½ r_d) on the equal-goal room, 3 seeds, 800k steps; "
    "the table and plot go to results/domino/reproduce/.",
)
register(
    "domino/reproduce-alpha",
    {
        "algorithm": {"name": "domino", "config": dict(GRID)}, "env": GRID_UNEQUAL_ENV, **GRID_RUN,
        "arms": [{"name": f"alpha-{alpha}", "overrides": {"algorithm.config.optimality_ratio": alpha}}
                 for alpha in (0.5, 0.7, 0.9, 0.99)],
        "results": {"folder": "domino/reproduce-alpha", "metrics": _REPRODUCE_METRICS,
                    "paper": "Zahavy et al. 2022 (DOMiNO), Fig. 4-5: a lower α buys diversity with return."},
    },
    "DOMiNO's α sweep (0.5, 0.7, 0.9, 0.99) on unequal goals, 3 seeds, 800k steps: diversity vs return; "
    "the table and plot go to results/domino/reproduce-alpha/.",
)
