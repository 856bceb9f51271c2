"""Contract of the SCoRe algorithm: builds from a preset through the platform, trains two iterations with a tiny
model made in the test run (builtin:tiny-1digit, seconds; no runs/ folder needed), switches Stage I → Stage II
from the same weights, logs the self-correction figures, changes every parameter, keeps its stage across
checkpoint → restore → continue, and trains on 2 CPU learners with their weights kept in sync."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

ray = pytest.importorskip("ray")
torch = pytest.importorskip("torch")

from armillary.algorithms.score import losses  # noqa: E402
from armillary.algorithms.score.algorithm import concat_columns, shard_by_problem  # noqa: E402
from armillary.platform.metrics import summarize  # noqa: E402
from armillary.platform.spec import SpecError, load_spec, validate  # noqa: E402

REQUIRED = ("score/acc_t1", "score/acc_t2", "score/delta_t1_t2", "score/delta_i_to_c", "score/delta_c_to_i",
            "score/changed_answer_rate", "score/kl_turn1")
# The smoke sizes (built-in quick model, single digits), Stage I for the first iteration only.
TWO_STAGES = ["algorithm.config.stage1_iterations=1"]


def _spec(overrides=(), **resources):
    data = load_spec("score/arithmetic", [*TWO_STAGES, *overrides], smoke=True).to_dict()
    data["resources"].update(resources)
    return validate(data)


def _build(spec):
    from armillary.platform.rllib_config import build_algorithm_config

    return build_algorithm_config(spec, seed=0).build_algo()


def _learner_weights(algo) -> dict[str, np.ndarray]:
    weights = algo.learner_group.get_weights()["default_policy"]
    return {k: np.array(v, copy=True) for k, v in weights.items()}


# ---- pure helpers (no Ray actors) ---------------------------------------------------------------------------


def test_shards_hold_whole_problem_groups_and_are_trimmed():
    rows, k = 8, 2
    ids = np.arange(rows * 6).reshape(rows, 6)
    attention = np.zeros((rows, 6), dtype=np.int64)
    for i in range(rows):
        attention[i, : 2 + i % 4] = 1  # rows 0..3 use ≤ 5 tokens, like rows 4..7
    columns = {"turn1_input_ids": ids, "turn1_attention_mask": attention, "turn1_response_mask": attention,
               "turn2_input_ids": ids, "turn2_attention_mask": attention, "turn2_response_mask": attention,
               "correct_turn1": np.arange(rows, dtype=np.float32), "correct_turn2": np.zeros(rows, np.float32),
               "variant": np.zeros(rows, np.int64)}
    shards = shard_by_problem(columns, group_size=k, num_shards=2)
    assert [s["correct_turn1"].tolist() for s in shards] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert shards[0]["turn1_input_ids"].shape == (4, 5)  # trimmed to the shard's longest row
    with pytest.raises(ValueError, match="problems_per_iteration"):
        shard_by_problem(columns, group_size=k, num_shards=3)


def test_concat_pads_each_runner_to_the_widest():
    a = {"x": np.ones((2, 3), np.int64), "c": np.ones(2)}
    b = {"x": np.ones((1, 5), np.int64), "c": np.zeros(1)}
    out = concat_columns([a, b])
    assert out["x"].shape == (3, 5) and out["x"][0, 3:].tolist() == [0, 0] and out["c"].tolist() == [1, 1, 0]


def test_missing_model_is_refused_before_any_trial_naming_the_field_and_the_build_command(tmp_path):
    from armillary.platform.runner import prepare

    # Valid as a spec (it may be rendered or submitted for a cluster that has the model) ...
    spec = load_spec("score/arithmetic", [f"algorithm.config.model={tmp_path}/tiny-base"])
    # ... but a run where the model is missing stops before any folder, MLflow run or trial.
    with pytest.raises(SpecError) as err:
        prepare(spec)
    message = str(err.value)
    assert "algorithm.config.model" in message and "python -m armillary.algorithms.score.pretrain" in message


def test_schedule_and_baseline_fields_are_checked():
    with pytest.raises(SpecError, match="stage1_iterations"):
        load_spec("score/arithmetic-naive", ["algorithm.config.stage1_iterations=3"])
    with pytest.raises(SpecError, match="algorithm.config.model"):
        load_spec("score/arithmetic", ["algorithm.config.model=builtin:nope"])
    with pytest.raises(SpecError, match="max_digits"):
        load_spec("score/arithmetic", ["env.config.min_digits=4", "env.config.max_digits=3"])


def test_the_task_env_is_an_honest_two_turn_gym_env():
    from armillary.envs.registry import make

    env = make("score-arithmetic", {"min_digits": 2, "max_digits": 2})
    prompt, info = env.reset(seed=0)
    a, b = (int(x) for x in prompt.split("Q: ")[1].split("\n")[0].split("+"))
    from armillary.algorithms.score.tasks.arithmetic import solve

    second, r1, done, _, _ = env.step("#0")  # wrong
    assert (r1, done) == (0.0, False) and second.startswith(prompt) and "There may be an error" in second
    _, r2, done, _, _ = env.step(solve(a, b))
    assert (r2, done) == (1.0, True)


# ---- through RLlib ---------------------------------------------------------------------------------------------


def test_two_stages_metrics_every_parameter_and_checkpoint_keeps_the_stage(local_ray, tmp_path):
    algo = _build(_spec())
    try:
        before = _learner_weights(algo)
        first = summarize(algo.train())
        second = summarize(algo.train())
        for key in REQUIRED:
            assert key in first and key in second and np.isfinite(second[key]), key
        assert (first["score/stage"], second["score/stage"]) == (1.0, 2.0)
        assert second["score/variant"] == float(list(losses.Variant).index(losses.Variant.STAGE2))
        assert first["score/kl_turn1"] == pytest.approx(0.0, abs=1e-5)  # π_θ = π_ref before the first step
        assert second["score/kl_turn1"] != pytest.approx(0.0, abs=1e-5)
        assert second["env_runners/num_env_steps_sampled_lifetime"] == 2 * 2 * 4 * 4  # iterations × turns × episodes
        assert second["score/verifier_flags"] == 0.0  # the arithmetic checker flags nothing
        after = _learner_weights(algo)
        unchanged = [name for name in before if np.array_equal(before[name], after[name])]
        assert not unchanged, f"parameters that did not train: {unchanged}"
        # The sampler got the new weights.
        sampler = {k: v.numpy() for k, v in algo.get_module().state_dict().items()}
        assert all(np.array_equal(sampler[k], after[k]) for k in after)

        # Stop after Stage I, restore into a fresh algorithm: it must continue in Stage II from the same weights.
        algo.stop()
        algo = _build(_spec(["algorithm.config.stage1_iterations=2"]))
        algo.train()
        saved = _learner_weights(algo)
        algo.save_to_path(str(tmp_path / "checkpoint"))
        algo.stop()
        # The evaluate job reads the same weights straight from the checkpoint, without Ray.
        from armillary.algorithms.score.evaluate import load_for_evaluation

        model, _, _ = load_for_evaluation(str(tmp_path / "checkpoint"))
        loaded = {f"lm.{k}": v.numpy() for k, v in model.state_dict().items()}
        assert set(loaded) == set(saved) and all(np.array_equal(loaded[k], saved[k]) for k in saved)
        algo = _build(_spec(["algorithm.config.stage1_iterations=2"]))
        algo.restore_from_path(str(tmp_path / "checkpoint"))
        assert algo.iteration == 1
        restored = _learner_weights(algo)
        assert all(np.array_equal(saved[k], restored[k]) for k in saved)
        assert summarize(algo.train())["score/stage"] == 1.0
        assert summarize(algo.train())["score/stage"] == 2.0
    finally:
        algo.stop()


def test_pair_sft_baseline_trains_turn2_on_pairs_only(local_ray):
    algo = _build(_spec(["algorithm.config.stage1_iterations=0", "algorithm.config.variant=pair_sft"]))
    try:
        before = _learner_weights(algo)
        result = summarize(algo.train())
        assert result["score/variant"] == float(list(losses.Variant).index(losses.Variant.PAIR_SFT))
        assert 0.0 <= result["score/sft_kept_fraction"] <= 1.0 and "score/return_turn2" not in result
        after = _learner_weights(algo)
        changed = [n for n in before if not np.array_equal(before[n], after[n])]
        # Trained iff some group had both a wrong and a right first attempt to pair.
        assert bool(changed) == (result["score/sft_kept_fraction"] > 0)
    finally:
        algo.stop()


def test_two_cpu_learners_train_in_step(local_ray):
    algo = _build(_spec(num_learners=2))
    try:
        before = _learner_weights(algo)
        for _ in range(2):
            result = summarize(algo.train())
        assert result["score/stage"] == 2.0 and np.isfinite(result["score/loss"])
        states = algo.learner_group.foreach_learner(lambda learner: learner.module["default_policy"].unwrapped().state_dict())
        per_learner = [{k: v.detach().cpu().numpy() for k, v in result.get().items()} for result in states]
        assert len(per_learner) == 2
        # Each learner trains on a different half of the problems: only all-reduced gradients keep them equal.
        assert all(np.array_equal(per_learner[0][k], per_learner[1][k]) for k in per_learner[0])
        after = _learner_weights(algo)
        assert not [n for n in before if np.array_equal(before[n], after[n])]
    finally:
        algo.stop()


def test_evaluate_job_prints_and_writes_the_figures(tmp_path, capsys):
    import json

    from armillary.algorithms.score.evaluate import main

    assert main(["--model", "builtin:tiny-1digit", "--task", "arithmetic", "--min-digits", "1", "--max-digits", "1",
                 "--problems", "4", "--json", str(tmp_path / "figures.json")]) == 0
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["problems"] == 4
    assert figures["score/delta_t1_t2"] == pytest.approx(figures["score/acc_t2"] - figures["score/acc_t1"])
    assert "Acc@t1" in capsys.readouterr().out
