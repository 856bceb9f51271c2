"""Statistics (rliable), report sheets and `armillary compare`, on run folders in the runner's layout (no Ray)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import yaml
from rliable import metrics as rly_metrics

from armillary.platform import aggregates, cli, compare, report
from armillary.platform import metrics as metric_names
from armillary.platform.spec import load_spec

RETURN = metric_names.EPISODE_RETURN
STEPS = metric_names.ENV_STEPS


def fake_run(folder: Path, preset: str, curves: dict, overrides: list[str] = (), search: dict | None = None,
             completed: bool = True, steps_per_iteration: int = 1000) -> Path:
    """A run folder as the runner writes it. curves: seed, or (seed, ((override, value), ...)) for an arm of a
    search space, or (seed, (), arm name) for a trial of one of the spec's arms → {metric: [value per iteration]}."""
    spec = load_spec(preset, list(overrides))
    folder.mkdir(parents=True)
    (folder / "spec.yaml").write_text(spec.to_yaml())
    (folder / "provenance.json").write_text(json.dumps({"git_commit": "abc", "versions": {"ray": "2.60.0"}}))
    for index, (trial_key, metrics) in enumerate(curves.items()):
        seed, arm, *spec_arm = trial_key if isinstance(trial_key, tuple) else (trial_key, ())
        trial = folder / "tune" / f"trial_{index:05d}"
        trial.mkdir(parents=True)
        params = {"seed": seed, "overrides": dict(arm), "spec": yaml.safe_load(spec.to_yaml())}
        (trial / "params.json").write_text(json.dumps({**params, **({"arm": spec_arm[0]} if spec_arm else {})}))
        length = len(next(iter(metrics.values())))
        rows = [{"training_iteration": i + 1, STEPS: steps_per_iteration * (i + 1), "time_total_s": 2.0 * (i + 1),
                 **{k: v[i] for k, v in metrics.items()}} for i in range(length)]
        (trial / "result.json").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    if completed:
        (folder / "COMPLETED").write_text("2026-12-07")
    return folder


# --- statistics --------------------------------------------------------------------------------------------------


def test_aggregates_are_rliables_and_curves_aggregate_point_by_point():
    rng = np.random.default_rng(0)
    curves = rng.normal(size=(7, 5))
    for name, rliable_function in (("IQM", rly_metrics.aggregate_iqm), ("mean", rly_metrics.aggregate_mean)):
        per_point = aggregates.AGGREGATES[name](curves, 0)
        expected = [rliable_function(curves[:, None, j]) for j in range(curves.shape[1])]  # (runs, tasks = 1)
        assert per_point == pytest.approx(expected)
    # rliable's median is over tasks (of per-task means): with one task it is the mean; ours is over seeds
    assert aggregates.AGGREGATES["median"](curves, 0) == pytest.approx(np.median(curves, axis=0))
    # the IQM of 8 seeds is the mean of the middle four
    assert aggregates.AGGREGATES["IQM"](np.arange(8.0), 0) == pytest.approx(3.5)
    x, y = rng.normal(size=6), np.append(rng.normal(size=3), 0.0)
    x[0] = 0.0  # a tie
    assert aggregates._improvement(x, y) == pytest.approx(rly_metrics.probability_of_improvement(x[:, None], y[:, None]))


def test_intervals_agree_with_rliables_stratified_bootstrap():
    from rliable import library as rly

    values = np.array([0.05, 0.3, 0.35, 0.6, 0.9, 0.95])
    np.random.seed(0)  # rliable 1.2.0 resamples with NumPy's global generator
    _, rliable_intervals = rly.get_interval_estimates(
        {"arm": values[:, None]}, lambda s: np.array([rly_metrics.aggregate_iqm(s), rly_metrics.aggregate_mean(s),
                                                      np.median(s)]), reps=4000)
    for column, name in enumerate(aggregates.AGGREGATES):
        _, low, high = aggregates.interval(values, name)
        # both are percentile intervals of the same resampling: equal up to Monte Carlo error (4000 resamples there)
        assert low == pytest.approx(rliable_intervals["arm"][0][column], abs=0.03)
        assert high == pytest.approx(rliable_intervals["arm"][1][column], abs=0.03)


def test_intervals_are_reproducible_and_stable_to_a_hundredth_of_the_range():
    """Same data, same default seed: the same interval. Another bootstrap seed (standing for an unseeded call, but
    deterministic, so the test cannot flake) moves an endpoint by < 0.01 of the range at RESAMPLES resamples."""
    rng = np.random.default_rng(7)
    for n in (5, 10):
        values = rng.uniform(0.0, 1.0, n)
        for name in aggregates.AGGREGATES:
            first = aggregates.interval(values, name, (0.0, 1.0))
            again = aggregates.interval(values, name, (0.0, 1.0))
            other = aggregates.interval(values, name, (0.0, 1.0), seed=1)
            assert [float(v) for v in first] == [float(v) for v in again]
            assert abs(first[1] - other[1]) < 0.01 and abs(first[2] - other[2]) < 0.01, (n, name, first, other)
            assert first[1] < first[0] < first[2]


def test_curve_band_of_three_cartpole_seeds_stays_within_the_return_bounds():
    x = np.arange(1.0, 11.0)
    curves = [(x, np.minimum(500.0, 50.0 * x + offset)) for offset in (-30.0, 0.0, 20.0)]
    grid, point, low, high = report.curve_band(curves, (0.0, 500.0), points=10)
    assert high.max() <= 500.0 and low.min() >= 0.0
    assert np.all(low <= point) and np.all(point <= high)
    # the hand-written Student-t interval this replaces leaves the range here
    end = np.array([c[1][-1] for c in curves])  # 470, 500, 500
    t_high = end.mean() + scipy.stats.t.ppf(0.975, 2) * end.std(ddof=1) / np.sqrt(3)
    assert t_high > 500.0
    # three seeds: the 95% percentile interval of the mean is the seeds' range
    assert (low[-1], high[-1]) == pytest.approx((470.0, 500.0))


def test_bounds_clip_the_interval():
    point, low, high = aggregates.interval(np.array([0.2, 0.9, 1.4, 1.5]), "mean", (0.0, 1.0))
    assert high == 1.0 and 0.0 <= low <= point <= 1.0


def test_probability_of_improvement_matches_a_hand_count():
    # X = [1, 2, 3] vs Y = [0, 2, 2]: of the 9 pairs, X wins 5 and ties 2 → (5 + 2 · ½) / 9
    result = aggregates.probability_of_improvement({"X": np.array([1.0, 2.0, 3.0]), "Y": np.array([0.0, 2.0, 2.0])})
    assert list(result) == [("X", "Y")]
    estimate = result[("X", "Y")]
    assert estimate.point == pytest.approx(6 / 9)
    assert 0.0 <= estimate.low < estimate.point < estimate.high <= 1.0
    separated = aggregates.probability_of_improvement({"a": np.array([5.0, 6.0]), "b": np.array([1.0, 2.0])})
    assert separated[("a", "b")].point == 1.0 and separated[("a", "b")].low == 1.0


def test_performance_profile_counts_seeds_above_each_threshold():
    profiles = aggregates.performance_profile({"arm": np.array([0.1, 0.5, 0.9, 0.9])}, np.array([0.0, 0.5, 0.95]))
    profile, low, high = profiles["arm"]
    assert profile.tolist() == [1.0, 0.5, 0.0]
    assert np.all(low <= profile) and np.all(profile <= high)


# --- declared ranges and report sheets ---------------------------------------------------------------------------


def test_declared_ranges_follow_the_env_options_and_the_hyperparameters():
    assert report.declared_ranges(load_spec("ppo/cartpole", []))[RETURN] == (0.0, 500.0)
    assert report.declared_ranges(load_spec("ppo/cartpole", ["env.config.max_episode_steps=200"]))[RETURN] == (0.0, 200.0)
    disdain = report.declared_ranges(load_spec("disdain/four-rooms", ["algorithm.config.num_skills=16"]))
    assert disdain["disdain/effective_skills"] == (0.0, 16.0)
    assert disdain["disdain/mutual_information_final_bits"] == (0.0, 4.0)
    assert disdain[RETURN] == (0.0, 1.0)


def _disdain_metrics(iterations: int, seed: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    names = [*report.headline_metrics("disdain"), "env_runners/episode_len_mean", "learners/default_policy/vf_loss",
             "learners/default_policy/policy_loss", "learners/default_policy/entropy",
             *[f"disdain/{n}" for n in ("bonus_mean", "skill_reward_mean", "intrinsic_reward_mean", "finished_skills",
                                        "discriminator_loss", "eval_bonus_mean", "eval_skill_reward_mean",
                                        "mutual_information_final_bits", "distinct_final_states")]]
    return {name: list(rng.uniform(0, 1, iterations).cumsum() / iterations) for name in names}


def test_report_puts_the_headline_first_on_a_legible_grid(tmp_path):
    import matplotlib.image

    run = fake_run(tmp_path / "run", "disdain/four-rooms", {s: _disdain_metrics(12, s) for s in range(3)})
    paths = report.report_run(run, log_to_mlflow=False)
    assert [p.name for p in paths] == ["headline.png", "other.png"]
    heights_widths = [matplotlib.image.imread(p).shape[:2] for p in paths]
    # 4 headline panels on a 3-wide grid, 13 more on a 3 x 5 grid (of at most 6 rows): no strip of tiny panels
    assert heights_widths[0] == (int(report.DPI * (2 * report.PANEL_INCHES[1] + 0.6)), int(report.DPI * 3 * report.PANEL_INCHES[0]))
    assert heights_widths[1][1] == int(report.DPI * 3 * report.PANEL_INCHES[0]) and heights_widths[1][0] > heights_widths[1][1] * 0.8
    assert report.headline_metrics("disdain") == {
        "disdain/effective_skills": "effective skills (eval)", "disdain/effective_skills_train": "effective skills (train)",
        "disdain/discriminator_accuracy": "discriminator acc", RETURN: "episode return"}
    assert report.unit("disdain/mutual_information_final_bits") == "bits"
    assert report.unit("score/train/acc_t1") == "fraction"


def test_arms_of_a_run_are_its_search_space_values(tmp_path):
    curves = {(s, (("algorithm.config.lr", lr),)): {RETURN: [1.0, 2.0]} for s in (0, 1) for lr in (0.1, 0.01)}
    run = fake_run(tmp_path / "run", "ppo/cartpole", curves)
    arms = report.arms_of(report.trial_results(run))
    assert {k: len(v) for k, v in arms.items()} == {"lr=0.01": 2, "lr=0.1": 2}


# --- compare -----------------------------------------------------------------------------------------------------


def _returns(level: float, seeds=range(5), iterations: int = 20) -> dict:
    return {s: {RETURN: list(np.minimum(500, level * np.arange(1, iterations + 1) / iterations + 5 * s))} for s in seeds}


def test_compare_two_runs_writes_curves_table_improvement_and_spec_differences(tmp_path):
    a = fake_run(tmp_path / "runs" / "a", "ppo/cartpole", _returns(200.0), ["algorithm.config.lr=0.001"])
    b = fake_run(tmp_path / "runs" / "b", "ppo/cartpole", _returns(450.0), ["algorithm.config.lr=0.0001"])
    assert cli.main(["compare", str(a), str(b), "--no-mlflow"]) == 0
    out = a / "compare"
    assert {p.name for p in out.iterdir()} == {"curves.png", "profiles.png", "compare.md", "final_scores.json"}
    text = (out / "compare.md").read_text()
    assert "## env_runners/episode_return_mean (range [0, 500])" in text
    assert "| lr=0.001 | 5 | 20000 |" in text and "| lr=0.0001 | 5 | 20000 |" in text
    assert "| lr=0.001 | lr=0.0001 | 0 [0, 0] |" in text  # every seed of b ends above every seed of a
    assert "`spec.algorithm.config.lr` | 0.001 | 0.0001 |" in text
    finals = json.loads((out / "final_scores.json").read_text())
    assert finals["lr=0.0001"][RETURN] == [450.0 + 5 * s for s in range(5)]
    row_b = [line for line in text.splitlines() if line.startswith("| lr=0.0001 | 5")][0]
    cells = [re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", c.strip()).groups() for c in row_b.strip("|").split("|")[3:]]
    (iqm, iqm_low, iqm_high), (mean, *_), (median, median_low, median_high) = [[float(v) for v in c] for c in cells]
    assert iqm == mean == median == 460.0  # seeds end at 450, 455, ..., 470
    assert 450.0 <= iqm_low < 460.0 < iqm_high <= 470.0
    assert (median_low, median_high) == (450.0, 470.0)


def test_compare_arms_of_one_run_against_wall_clock(tmp_path):
    curves = {(s, (("algorithm.config.lr", lr),)): {RETURN: [10.0 * lr * 1000 + s, 20.0 + s]} for s in range(3)
              for lr in (0.1, 0.01)}
    run = fake_run(tmp_path / "runs" / "sweep", "ppo/cartpole", curves)
    out = tmp_path / "elsewhere"
    paths = compare.compare_runs([run], out=out, x_axis="time", log_to_mlflow=False)
    assert out / "curves.png" in paths
    text = (out / "compare.md").read_text()
    assert "x: wall clock (s)" in text and "| lr=0.01 | lr=0.1 |" in text
    assert "search-space values" in text


@pytest.mark.parametrize("case, message", [
    ("not a run", "not an Armillary run folder"),
    ("in progress", "has not finished (no COMPLETED marker)"),
    ("different metrics", "different metrics"),
    ("missing metric", "--metric learners/x: "),
    ("one arm", "one arm only"),
    ("arm without values", "has no finite value of env_runners/episode_return_mean"),
    ("no common metric", "no common headline metric"),
    ("missing folder", "not an Armillary run folder"),
    ("given twice", "given twice"),
])
def test_compare_refuses_what_cannot_be_compared(tmp_path, capsys, case, message):
    a = fake_run(tmp_path / "a", "ppo/cartpole", _returns(100.0, seeds=(0, 1)))
    args = [str(a)]
    if case == "arm without values":
        args = [str(fake_run(tmp_path / "sweep", "ppo/cartpole", {(0, (("algorithm.config.lr", lr),)): {RETURN: [value]}
                                                                   for lr, value in ((0.1, 1.0), (0.01, float("nan")))}))]
    elif case == "not a run":
        (tmp_path / "empty").mkdir()
        args.append(str(tmp_path / "empty"))
    elif case == "in progress":
        args.append(str(fake_run(tmp_path / "b", "ppo/cartpole", _returns(100.0, seeds=(0, 1)), completed=False)))
    elif case == "different metrics":
        args.append(str(fake_run(tmp_path / "b", "disdain/four-rooms", {0: _disdain_metrics(4, 0)})))
    elif case == "no common metric":  # runs that logged none of the headline figures
        args = [str(fake_run(tmp_path / name, "ppo/cartpole", {0: {"learners/x": [1.0]}, 1: {"learners/x": [2.0]}}))
                for name in ("b", "c")]
    elif case == "missing folder":
        args.append(str(tmp_path / "nowhere"))
    elif case == "given twice":
        args.append(str(a))
    elif case == "missing metric":
        args += [str(fake_run(tmp_path / "b", "ppo/cartpole", _returns(100.0, seeds=(0, 1)))), "--metric", "learners/x"]
    assert cli.main(["compare", *args, "--no-mlflow"]) == cli.EXIT_INVALID
    assert message in capsys.readouterr().err


# --- a run with arms: its comparison and results/ ----------------------------------------------------------------


def _skill_arms_run(folder: Path, steps_per_iteration: int = 100_000) -> Path:
    """rvic/reproduce as the runner leaves it: an RVIC arm and a VIC arm (another algorithm), 3 seeds each; each
    trial reports its own algorithm's figures (rvic/..., vic/...)."""
    curves = {}
    for arm, offset in (("rvic", 1.0), ("vic", 3.0)):
        for seed in range(3):
            curves[(seed, (), arm)] = {f"{arm}/skill_entropy_displacement_bits": [offset + 0.1 * seed, offset + 0.2 * seed],
                                       **{f"{arm}/{name}": [0.5, 1.0 + seed] for name in (
                                           "skill_entropy_final_bits", "mutual_information_displacement_bits",
                                           "mutual_information_final_bits", "effective_skills")}}
    return fake_run(folder, "rvic/reproduce", curves, steps_per_iteration=steps_per_iteration)  # 2 iterations: 200k


def test_arms_of_different_algorithms_compare_on_each_arms_own_metric(tmp_path):
    run = _skill_arms_run(tmp_path / "runs" / "rvic")
    out = tmp_path / "cmp"
    template = "{algorithm}/skill_entropy_displacement_bits"
    compare.compare_runs([run], out=out, metrics=[template, "{algorithm}/mutual_information_final_bits"],
                         log_to_mlflow=False)
    finals = json.loads((out / "final_scores.json").read_text())
    assert finals["rvic"][template] == pytest.approx([1.0, 1.2, 1.4]) and finals["vic"][template] == pytest.approx([3.0, 3.2, 3.4])
    text = (out / "compare.md").read_text()
    assert "## {algorithm}/mutual_information_final_bits (range [0, 3])" in text  # log2 N of each arm's N = 8
    assert "| rvic | vic | 0 [0, 0] |" in text  # every VIC seed is above every RVIC seed
    # the resolved-spec differences between the arms: the algorithm and its own fields
    assert "| `algorithm.name` | rvic | vic | vic |" in text
    assert "`seeds`" not in text


def test_a_run_with_arms_keeps_its_outcome_in_results_and_a_rerun_replaces_it(tmp_path, monkeypatch):
    from armillary.platform import outcome
    from armillary.platform.spec import load_run_spec

    monkeypatch.setenv("ARMILLARY_RESULTS_DIR", str(tmp_path / "results"))
    run = _skill_arms_run(tmp_path / "runs" / "rvic")
    spec = load_run_spec(run)
    kept = tmp_path / "results" / "rvic" / "reproduce"
    kept.mkdir(parents=True)
    (kept / "stale.md").write_text("the previous outcome")
    assert outcome.write_outcome(run, spec, wall_s=12.3, load_before=(1.0, 2.0, 3.0), resumed=False,
                                 num_trials=6) == kept
    assert {p.name for p in kept.iterdir()} == {"table.md", "plot.png", "profiles.png", "final_scores.json",
                                                "per_seed.csv", "spec.yaml", "command.txt", "run.json"}
    table = (kept / "table.md").read_text()
    assert table.startswith("# rvic/reproduce\n\nThe paper: Baumli et al.")
    assert "{algorithm}/mutual_information_final_bits" in table and "Curves: `plot.png`" in table
    facts = json.loads((kept / "run.json").read_text())
    assert facts["wall_s"] == 12.3 and facts["load_average_before"] == [1.0, 2.0, 3.0] and facts["git_commit"] == "abc"
    rows = (kept / "per_seed.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 3 * 2 and rows[1].startswith("rvic,0,1,100000,2.0,1.0,0.5,0.5,0.5")
    assert yaml.safe_load((kept / "spec.yaml").read_text())["arms"][1]["name"] == "vic"


def test_an_outcome_is_never_made_of_trials_short_of_their_stop(tmp_path, monkeypatch):
    """Tune returns normally after Ctrl-C with its trials cut short, and a pending trial leaves no results: neither
    may replace the kept outcome."""
    from armillary.platform import outcome
    from armillary.platform.spec import load_run_spec

    monkeypatch.setenv("ARMILLARY_RESULTS_DIR", str(tmp_path / "results"))
    short = _skill_arms_run(tmp_path / "runs" / "short", steps_per_iteration=1000)  # 2k of 200k env steps
    with pytest.raises(RuntimeError, match=r"not every trial reached its stop criterion \(rvic, seed 0"):
        outcome.write_outcome(short, load_run_spec(short), wall_s=1.0, load_before=(0, 0, 0), resumed=False, num_trials=6)
    full = _skill_arms_run(tmp_path / "runs" / "full")
    with pytest.raises(RuntimeError, match="3 trial\\(s\\) without results"):
        outcome.write_outcome(full, load_run_spec(full), wall_s=1.0, load_before=(0, 0, 0), resumed=False, num_trials=9)
    assert not (tmp_path / "results").exists()
