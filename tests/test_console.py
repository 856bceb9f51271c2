"""The quiet console of `armillary run`: library messages go to the run log, the table shows headline figures."""

import logging

import pytest

from armillary.platform import console


@pytest.fixture(autouse=True)
def restore_logging():
    """quiet_libraries() changes process-wide logging: put it back for the tests that follow."""
    loggers = [logging.getLogger(name) for name in [*console.LIBRARY_LOGGERS, *logging.root.manager.loggerDict]]
    saved = [(logger, list(logger.handlers), logger.propagate) for logger in loggers]
    yield
    for logger, handlers, propagate in saved:
        logger.handlers[:] = handlers
        logger.propagate = propagate
    logging.captureWarnings(False)
    console._RUN_LOG = None


def test_trial_table_shows_seed_search_values_status_and_figures():
    columns = {"env_runners/num_env_steps_sampled_lifetime": "env steps", "vic/effective_skills_train": "skills"}
    trials = [({"seed": 0, "overrides": {"algorithm.config.lr": 0.0003}}, "RUNNING",
               {"training_iteration": 3, "env_runners": {"num_env_steps_sampled_lifetime": 12000},
                "vic/effective_skills_train": 7.25}),
              ({"seed": 1, "overrides": {"algorithm.config.lr": 0.001}}, "PENDING", None)]
    lines = console.trial_rows(trials, columns, {"algorithm.config.lr": "lr"})
    assert lines[0].split() == ["trial", "status", "iter", "env", "steps", "skills"]
    assert "seed 0, lr=0.0003" in lines[2] and "running" in lines[2] and "12,000" in lines[2] and "7.25" in lines[2]
    assert "seed 1, lr=0.001" in lines[3] and lines[3].rstrip().endswith("-")  # no result yet: dashes, not zeros
    assert len({len(line) for line in lines[:3]}) == 1  # aligned columns
    # a trial of one of the spec's arms starts with the arm's name
    assert console.trial_label({"seed": 2, "arm": "vic", "overrides": {}}, {}) == "vic, seed 2"


def test_library_messages_go_to_the_run_log_and_errors_still_reach_the_console(tmp_path, capsys):
    chatty = logging.getLogger("ray.tune.some_module")
    chatty.addHandler(logging.StreamHandler())  # a library's own console handler
    console.quiet_libraries()
    chatty.warning("snapshotting has been triggered multiple times")
    console.open_run_log(tmp_path)
    logging.getLogger("mlflow.store").warning("creating tables")
    logging.getLogger("ray").error("a trial failed: Traceback ...")
    captured = capsys.readouterr()
    assert "snapshotting" not in captured.out + captured.err and "creating tables" not in captured.out + captured.err
    assert "a trial failed: Traceback" in captured.err
    log = (tmp_path / console.RUN_LOG).read_text()
    assert "snapshotting" in log and "creating tables" in log and "a trial failed" in log


def test_durations_read_naturally():
    assert console.duration(42.4) == "42 s"
    assert console.duration(135) == "2 min 15 s"
    assert console.duration(3 * 3600 + 60) == "3 h 1 min"
