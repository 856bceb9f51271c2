"""runner.reconcile_results: every iteration exactly once in a trial's result files, whatever a crash left."""

from __future__ import annotations

import csv
import json

from armillary.platform.runner import reconcile_results
from armillary.platform.trainable import read_results, write_results


def _row(iteration: int, value: float, **extra) -> dict:
    return {"training_iteration": iteration, "env_runners/episode_return_mean": value, **extra}


def test_replayed_rows_keep_the_first_value_and_missing_rows_come_from_the_checkpoints(tmp_path):
    trial = tmp_path / "tune" / "train_trial_0"
    trial.mkdir(parents=True)
    # result.json as a driver crash left it: rows 1-4, then (after the restore from checkpoint 6) rows 7-8, with
    # row 4 replayed once; rows 5 and 6 never reached the copy Tune restored.
    lines = [_row(1, 1.0), _row(2, 2.0), _row(3, 3.0), _row(4, 4.0), _row(4, 40.0), _row(7, 7.0), _row(8, 8.0)]
    text = "".join(json.dumps(r) + "\n" for r in lines)
    cut = text.index(json.dumps(_row(7, 7.0)))
    # … and a copy interrupted mid-line leaves half a row glued to the next one: that row is taken from the record.
    text = text[:cut] + json.dumps(_row(5, 5.0))[:20] + text[cut:].replace("\n", "", 0)
    (trial / "result.json").write_text(text)
    # progress.csv as Tune leaves it after a resume: the resumed rows appended under the old header with the columns
    # of the first resumed result (one more: iteration 7 is read as 0 under this header).
    with (trial / "progress.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows([["training_iteration", "x"], ["1", "a"], ["2", "b"], ["2", "c"], ["y", "7", "z"]])
    old, new = trial / "checkpoint_000001", trial / "checkpoint_000003"
    old.mkdir(), new.mkdir()
    write_results(old, [_row(i, -1.0, trial_id="t") for i in range(1, 5)])
    write_results(new, [_row(i, float(i) + 0.5, trial_id="t") for i in range(1, 9)])  # the trial's own record

    reconcile_results(tmp_path / "tune")

    rows = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
    assert [r["training_iteration"] for r in rows] == list(range(1, 9))
    assert rows[3]["env_runners/episode_return_mean"] == 4.0  # the first-logged value, as in MLflow
    # 5, 6 and the half-overwritten 7 from the checkpoints' records (the newest first):
    assert [r["env_runners/episode_return_mean"] for r in rows[4:7]] == [5.5, 6.5, 7.5]
    assert [r.get("armillary/recovered") for r in rows] == [None] * 4 + [1, 1, 1] + [None]
    with (trial / "progress.csv").open(newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [int(r["training_iteration"]) for r in table] == list(range(1, 9))  # the same rows as result.json
    assert [float(r["env_runners/episode_return_mean"]) for r in table] == [r["env_runners/episode_return_mean"] for r in rows]
    assert [r["armillary/recovered"] for r in table] == [""] * 4 + ["1"] * 3 + [""]
    reconcile_results(tmp_path / "tune")  # idempotent
    assert [json.loads(line) for line in (trial / "result.json").read_text().splitlines()] == rows


def test_a_trial_restarted_by_pbt_gets_its_own_rows_back_from_its_earlier_checkpoints(tmp_path):
    trial = tmp_path / "tune" / "train_trial_0"
    trial.mkdir(parents=True)
    # Trial "a" copied trial "b"'s checkpoint at iterations 2 and 6 (PBT). Tune restored a result.json that lags:
    # rows 5 and 6 (run after the first copy) are gone. Its newest checkpoint (iteration 7) holds row 7 only; its
    # checkpoint of iteration 6 holds 5 and 6, and "b"'s rows it was copied with must not come back as "a"'s.
    lines = [_row(i, float(i), trial_id="a") for i in (1, 2, 3, 4, 7)]
    (trial / "result.json").write_text("".join(json.dumps(r) + "\n" for r in lines))
    for name, record in [("checkpoint_000002", [_row(i, -1.0, trial_id="b") for i in (1, 2, 3, 4)] + [_row(i, i + 0.5, trial_id="a") for i in (5, 6)]),
                         ("checkpoint_000003", [_row(i, -1.0, trial_id="b") for i in range(1, 7)] + [_row(7, 7.5, trial_id="a")])]:
        (trial / name).mkdir()
        write_results(trial / name, record)

    reconcile_results(tmp_path / "tune")

    rows = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
    assert [r["training_iteration"] for r in rows] == list(range(1, 8))
    assert [r["env_runners/episode_return_mean"] for r in rows] == [1.0, 2.0, 3.0, 4.0, 5.5, 6.5, 7.0]
    assert {r["trial_id"] for r in rows} == {"a"}


def test_results_file_round_trip(tmp_path):
    rows = [_row(1, float("nan"), trial_id="t"), _row(2, 2.0, trial_id="t")]
    write_results(tmp_path, rows)
    back = read_results(tmp_path)
    assert back[1] == rows[1] and back[0]["training_iteration"] == 1
    assert read_results(tmp_path / "nowhere") == []
