"""What `armillary run` prints: a live table of each trial's headline figures, then a short summary.

Ray, Tune, RLlib and MLflow print many lines a user cannot act on: Tune's snapshot warning, RLlib's new-API-stack
notice in every trial, deprecation warnings, "Install gputil", a path per checkpoint. By default their loggers
write to `run.log` in the run folder instead (kept in memory until the folder exists), trial workers' output stays
in the trial folders and Ray's session logs, and only messages at ERROR or above still reach the console, in full.
`--verbose` prints everything as Tune and the libraries do.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import Any, Iterable, Mapping, TextIO

RUN_LOG = "run.log"

# The libraries whose own console output is replaced; their child loggers are included.
LIBRARY_LOGGERS = ("ray", "mlflow", "alembic", "py.warnings", "urllib3", "filelock", "absl")


class RunLog(logging.Handler):
    """Library log records → the run folder's log file; ERROR and above also to the console (stderr)."""

    MAX_PENDING = 20_000  # records kept before the run folder exists (the rest are counted, not kept)

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._pending: list[str] = []
        self._dropped = 0
        self._file: TextIO | None = None
        self.path = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a library's broken format string must not break the run
            line = f"{record.levelname} {record.name}: {record.msg!r}"
        if record.levelno >= logging.ERROR:
            print(line, file=sys.stderr, flush=True)
        if self._file is not None:
            self._file.write(line + "\n")
            self._file.flush()
        elif len(self._pending) < self.MAX_PENDING:
            self._pending.append(line)
        else:
            self._dropped += 1

    def open(self, path) -> None:
        """Write what was kept so far, and everything from now on, to `path`."""
        if self._file is not None:
            return
        self.path = path
        self._file = open(path, "a", encoding="utf-8")
        for line in self._pending:
            self._file.write(line + "\n")
        if self._dropped:
            self._file.write(f"({self._dropped} earlier records were not kept)\n")
        self._file.flush()
        self._pending.clear()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        super().close()


_RUN_LOG: RunLog | None = None


def quiet_libraries() -> RunLog:
    """Route the libraries' loggers (those that exist now) to the run log instead of the console.

    Call again after importing or initialising a library that adds its own console handler (Ray does in
    `ray.init`, Tune and MLflow on import): handlers already routed are left alone."""
    global _RUN_LOG
    if _RUN_LOG is None:
        _RUN_LOG = RunLog()
        logging.captureWarnings(True)  # Python warnings → the "py.warnings" logger → the run log
    names = set(LIBRARY_LOGGERS) | {name for name in logging.root.manager.loggerDict
                                   if name.split(".")[0] in LIBRARY_LOGGERS}
    for name in names:
        logger = logging.getLogger(name)
        console_handlers = [handler for handler in logger.handlers if isinstance(handler, logging.StreamHandler)
                            and not isinstance(handler, (logging.FileHandler, RunLog))]
        for handler in console_handlers:
            logger.removeHandler(handler)
        # A top-level library logger, or a child that does not pass its records up (RLlib's), writes to the run log.
        # (A logger left with no handler at all would print through logging's last-resort handler.)
        if (name in LIBRARY_LOGGERS or not logger.propagate) and _RUN_LOG not in logger.handlers:
            logger.addHandler(_RUN_LOG)
        if name in LIBRARY_LOGGERS:
            logger.propagate = False
    return _RUN_LOG


def open_run_log(run_dir) -> None:
    """Once the run folder exists: the library log goes to <run folder>/run.log (no-op with --verbose)."""
    if _RUN_LOG is not None:
        quiet_libraries()  # pick up loggers created since (Tune's, MLflow's)
        _RUN_LOG.open(run_dir / RUN_LOG)


def run_log_path():
    return None if _RUN_LOG is None else _RUN_LOG.path


def lookup(result: Mapping[str, Any], key: str) -> Any:
    """A figure from a Tune result, whether its keys are flat ("a/b") or nested ({"a": {"b": …}})."""
    if key in result:
        return result[key]
    node: Any = result
    for part in key.split("/"):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def format_figure(value: Any) -> str:
    if value is None:
        return "-"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "-"
    if number.is_integer() and abs(number) >= 1000:
        return f"{int(number):,}"
    if number.is_integer():
        return str(int(number))
    return f"{number:.4g}"


def table(header: list[str], rows: Iterable[list[str]]) -> list[str]:
    """Plain aligned columns: the first left-aligned, the rest right-aligned."""
    rows = [header, *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = [row[0].ljust(widths[0]), *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:]))]
        return "  " + "  ".join(cells).rstrip()

    return [line(rows[0]), "  " + "  ".join("-" * width for width in widths), *(line(row) for row in rows[1:])]


def trial_label(config: Mapping[str, Any], parameters: Mapping[str, str]) -> str:
    """A trial by its arm (of a spec with arms), seed and the search-space values it runs with, e.g. "seed 1,
    lr=0.0003" or "vic, seed 1"."""
    overrides = config.get("overrides") or {}
    values = [f"{short}={format_figure(lookup(overrides, path))}"
              for path, short in parameters.items()]
    arm = [str(config["arm"])] if config.get("arm") is not None else []
    return ", ".join([*arm, f"seed {config.get('seed', '?')}", *values])


def trial_rows(trials: Iterable[tuple[Mapping[str, Any], str, Mapping[str, Any]]], columns: Mapping[str, str],
               parameters: Mapping[str, str]) -> list[str]:
    """The table of (config, status, last result) per trial with the given result columns."""
    header = ["trial", "status", "iter", *columns.values()]
    rows = []
    for config, status, result in trials:
        result = result or {}
        rows.append([trial_label(config, parameters), status.lower(), format_figure(result.get("training_iteration")),
                     *(format_figure(lookup(result, key)) for key in columns)])
    return table(header, rows)


def live_table(columns: Mapping[str, str], parameters: Mapping[str, str]):
    """Tune's progress reporter for `armillary run`: the trials' headline figures as one compact table.

    On a terminal the table is redrawn in place every few seconds; into a file or pipe it is printed after a minute,
    then at doubling intervals (so a long run's log stays short), and only when a figure changed. The final figures
    are printed by the run's summary, not here."""
    from ray.tune import ProgressReporter

    class LiveTable(ProgressReporter):
        # No stream is kept: Tune pickles its reporter with the experiment's state (and restores it on resume).
        def __init__(self) -> None:
            self._last_time = time.monotonic()
            self._last_lines: list[str] = []
            self._height = 0
            self._log_interval_s = 60.0

        @property
        def tty(self) -> bool:
            return sys.stdout.isatty()

        @property
        def interval_s(self) -> float:
            return 2.0 if self.tty else self._log_interval_s

        def _lines(self, trials) -> list[str]:
            return trial_rows(((t.config, t.status, t.last_result) for t in trials), columns, parameters)

        def should_report(self, trials, done: bool = False) -> bool:
            if done:
                return self._height > 0  # erase the live table on a terminal
            return time.monotonic() - self._last_time >= self.interval_s and self._lines(trials) != self._last_lines

        def report(self, trials, done: bool, *sys_info: str) -> None:
            lines = [] if done else self._lines(trials)
            if self.tty and self._height:
                sys.stdout.write(f"\x1b[{self._height}F\x1b[J")  # back to the table's first line, clear below
            if lines:
                sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()
            self._height = len(lines) if self.tty else 0
            self._last_lines = lines
            self._last_time = time.monotonic()
            if not self.tty:
                self._log_interval_s = min(2 * self._log_interval_s, 900.0)

    return LiveTable()


def duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s" if minutes else f"{secs} s"
