"""Env steps per second of several built RLlib algorithms, timed round by round back to back, so machine load hits
them alike (used by domino_throughput.py and self_consistency_throughput.py)."""

from __future__ import annotations

import time


def interleaved_rates(algos: dict, rounds: int, iterations: int) -> dict[str, list[float]]:
    """{name: [env steps/s of each round]}: one warm-up iteration each, then per round `iterations` timed training
    iterations of each algorithm in turn (printed as they come)."""
    rates: dict[str, list[float]] = {name: [] for name in algos}
    for algo in algos.values():
        algo.train()  # warm-up
    for round_ in range(rounds):
        for name, algo in algos.items():
            before = algo.train()["env_runners"]["num_env_steps_sampled_lifetime"]
            started = time.perf_counter()
            for _ in range(iterations):
                after = algo.train()["env_runners"]["num_env_steps_sampled_lifetime"]
            rates[name].append((after - before) / (time.perf_counter() - started))
            print(f"round {round_}: {name} {rates[name][-1]:.0f} env steps/s", flush=True)
    return rates
