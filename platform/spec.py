"""The experiment spec: the single source of truth for what an experiment is.

algorithm (+ its typed hyperparameters), environment (+ its typed options), resources profile, seeds,
stopping, Tune search space and scheduler, checkpointing, failure handling and tracking.

A spec is assembled in layers — preset (by name) or YAML file, then dotted command-line overrides —
and validated as a whole before anything starts. Every problem is reported with the dotted path of
the field and what was expected (`SpecError`); the CLI turns that into exit code 2 with no Ray started.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from armillary.algorithms import registry as algorithms
from armillary.core.entries import EnvOptions
from armillary.core.hyperparameters import Hyperparameters
from armillary.envs import registry as environments
from armillary.platform import presets
from armillary.core.strict import StrictModel

Profile = Literal["local-cpu", "local-gpu", "cluster-cpu", "cluster-gpu"]
PROFILES: tuple[str, ...] = ("local-cpu", "local-gpu", "cluster-cpu", "cluster-gpu")


# What reading a spec may cost: a spec is a page of YAML, so anything far larger is a mistake or an attack (a
# "billion laughs" of nested aliases is a few hundred bytes that expand to gigabytes once walked).
MAX_SPEC_BYTES = 1 << 20
MAX_SPEC_NODES = 100_000  # values after expanding aliases
MAX_SPEC_DEPTH = 32  # nesting of mappings and lists
MAX_PROBLEMS_SHOWN = 20
MAX_PROBLEM_CHARS = 500


class SpecError(ValueError):
    """A spec that cannot run. `problems` holds one 'dotted.field: what was expected' line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = [f"  - {p[:MAX_PROBLEM_CHARS]}" for p in problems[:MAX_PROBLEMS_SHOWN]]
        if len(problems) > MAX_PROBLEMS_SHOWN:
            shown.append(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more problem(s)")
        super().__init__("invalid experiment spec:\n" + "\n".join(shown))

    def __reduce__(self):  # rebuilt from its problems, not its message, when Ray ships it from a trial
        return (SpecError, (self.problems,))


class _Strict(StrictModel):
    pass


class _FieldProblem(ValueError):
    """Raised inside a section validator: a problem with one named sub-field (and maybe its own errors)."""

    def __init__(self, field: str, problem: str | ValidationError):
        super().__init__(str(problem))
        self.field = field
        self.problem = problem


def _typed_section(data: Any, lookup, model_of) -> Any:
    """Swap a section's raw `config` dict for the registered entry's own typed model."""
    if not (isinstance(data, dict) and isinstance(data.get("name"), str)):
        return data
    try:
        entry = lookup(data["name"])
    except KeyError as err:
        raise _FieldProblem("name", err.args[0]) from None
    raw = data.get("config") or {}
    model = model_of(entry)
    if isinstance(raw, model):
        return data
    if not isinstance(raw, dict):
        raise _FieldProblem("config", f"expected a mapping of {model.__name__} fields, got {type(raw).__name__}")
    try:
        return {**data, "config": model.model_validate(raw)}
    except ValidationError as err:
        raise _FieldProblem("config", err) from None


class AlgorithmSection(_Strict):
    name: str = Field(description="A registered algorithm (armillary list).")
    config: Hyperparameters = Field(description="The algorithm's hyperparameters.")

    @model_validator(mode="before")
    @classmethod
    def _typed_config(cls, data: Any) -> Any:
        # Swap the raw dict for the algorithm's own typed model; a nested ValidationError is expanded
        # back into per-field messages by _format_errors.
        return _typed_section(data, algorithms.get, lambda entry: entry.hyperparameters)

    def model_dump(self, **kwargs):  # the config field is typed by the base class; dump the real one
        return {"name": self.name, "config": self.config.model_dump(**kwargs)}


class EnvSection(_Strict):
    name: str = Field(description="A registered environment (armillary list).")
    config: EnvOptions = Field(description="The environment's options.")

    @model_validator(mode="before")
    @classmethod
    def _typed_config(cls, data: Any) -> Any:
        return _typed_section(data, environments.get, lambda entry: entry.options)

    def model_dump(self, **kwargs):
        return {"name": self.name, "config": self.config.model_dump(**kwargs)}


class Resources(_Strict):
    """Where the work runs. Never changes what is learned: batch sizes live in the algorithm config."""

    profile: Profile = "local-cpu"
    num_env_runners: int | None = Field(None, ge=0, description="Sampling actors (0: sample in the trial's own process).")
    num_envs_per_env_runner: int | None = Field(None, ge=1, description="Vectorised envs per runner.")
    num_cpus_per_env_runner: float | None = Field(None, gt=0)
    num_learners: int | None = Field(None, ge=0, description="Learner actors (0: learn in the trial's own process).")
    num_gpus_per_learner: float | None = Field(None, ge=0)
    max_concurrent_trials: int | None = Field(None, ge=1)


# Defaults per profile, chosen with benchmarks/throughput.py (see benchmarks/README.md). local-cpu: PPO on
# cheap envs is bound by per-step Python overhead, not by the env, so the trial's own process samples a
# vector of envs (one batched forward per 16 env steps) instead of an env-runner actor: PPO samples and
# learns in turn, so a second process idles half the time, and a trial asking for one CPU lets Tune run two
# seeds at once on a 2-core laptop. Not wider than 16: RLlib gives each env train_batch / num_envs steps per
# iteration, so a wide vector shortens the rollouts that small (smoke-sized) batches learn from; 64 envs was
# ~1.3x faster on CartPole with RLlib's generic env runner (~1.15x with the `ppo` entry's lean one, quiet
# machine) but a 128-step batch then gave each env 2 steps. Other profiles: unmeasured here.
PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    "local-cpu": {"num_env_runners": 0, "num_envs_per_env_runner": 16, "num_cpus_per_env_runner": 1,
                  "num_learners": 0, "num_gpus_per_learner": 0},
    "local-gpu": {"num_env_runners": 2, "num_envs_per_env_runner": 8, "num_cpus_per_env_runner": 1,
                  "num_learners": 0, "num_gpus_per_learner": 1},
    "cluster-cpu": {"num_env_runners": 8, "num_envs_per_env_runner": 8, "num_cpus_per_env_runner": 1,
                    "num_learners": 1, "num_gpus_per_learner": 0},
    "cluster-gpu": {"num_env_runners": 16, "num_envs_per_env_runner": 8, "num_cpus_per_env_runner": 1,
                    "num_learners": 1, "num_gpus_per_learner": 1},
}


def resolved_resources(spec: ExperimentSpec) -> dict[str, Any]:
    """The profile's defaults with the spec's explicit resource fields on top."""
    resources = dict(PROFILE_DEFAULTS[spec.resources.profile])
    for key, value in spec.resources.model_dump().items():
        if key in resources and value is not None:
            resources[key] = value
    return resources


class Stop(_Strict):
    env_steps: int | None = Field(None, gt=0, description="Stop after this many sampled env steps.")
    iterations: int | None = Field(None, gt=0, description="Stop after this many training iterations.")
    time_s: float | None = Field(None, gt=0, description="Stop after this much wall-clock time per trial.")
    metric: dict[str, float] = Field(default_factory=dict, description="Stop when a reported metric reaches a value.")

    @model_validator(mode="after")
    def _some_criterion(self) -> Stop:
        if not (self.env_steps or self.iterations or self.time_s or self.metric):
            raise ValueError("at least one of env_steps, iterations, time_s or metric is required")
        return self


class SearchDimension(_Strict):
    """One axis of a Tune search space. Exactly one of the fields is set."""

    grid: list[Any] | None = Field(None, min_length=1)
    choice: list[Any] | None = Field(None, min_length=1)
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    randint: tuple[int, int] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SearchDimension:
        set_fields = [k for k in ("grid", "choice", "uniform", "loguniform", "randint") if getattr(self, k) is not None]
        if len(set_fields) != 1:
            raise ValueError(f"give exactly one of grid, choice, uniform, loguniform, randint (got {set_fields or 'none'})")
        for kind in ("uniform", "loguniform", "randint"):
            bounds = getattr(self, kind)
            if bounds is not None and not bounds[0] < bounds[1]:
                raise ValueError(f"{kind} bounds must be [low, high] with low < high (got {list(bounds)})")
        if self.loguniform is not None and self.loguniform[0] <= 0:
            raise ValueError("loguniform bounds must be > 0")
        return self

    def candidates(self) -> list[Any]:
        """Values that must all make a valid spec (used to validate the space before running)."""
        if self.grid is not None:
            return list(self.grid)
        if self.choice is not None:
            return list(self.choice)
        if self.randint is not None:
            return [self.randint[0], self.randint[1] - 1]
        return list(self.uniform or self.loguniform or ())


class Scheduler(_Strict):
    kind: Literal["fifo", "asha", "pbt"] = "fifo"
    # ASHA
    grace_period: int = Field(1, ge=1, description="ASHA: iterations before a trial can be stopped.")
    reduction_factor: float = Field(3.0, gt=1)
    max_t: int = Field(100, ge=1, description="ASHA: the most iterations a trial runs.")
    # PBT
    perturbation_interval: int = Field(5, ge=1, description="PBT: iterations between exploit/explore steps.")
    quantile_fraction: float = Field(0.25, gt=0, le=0.5)


class TuneSection(_Strict):
    search_space: dict[str, SearchDimension] = Field(
        default_factory=dict, description="Dotted spec field → axis, e.g. algorithm.config.lr: {loguniform: [1e-4, 1e-3]}."
    )
    num_samples: int = Field(1, ge=1, description="Samples of the random axes (grid axes multiply).")
    scheduler: Scheduler = Field(default_factory=Scheduler)
    metric: str = Field("env_runners/episode_return_mean", min_length=1)
    mode: Literal["max", "min"] = "max"


    @model_validator(mode="after")
    def _pbt_has_something_to_mutate(self) -> TuneSection:
        if self.scheduler.kind == "pbt" and not self.search_space:
            raise ValueError("scheduler pbt needs a search_space to mutate")
        return self


class Checkpointing(_Strict):
    every_iterations: int = Field(10, ge=1, description="Checkpoint cadence in training iterations.")
    num_to_keep: int | None = Field(2, ge=1, description="Checkpoints kept per trial (None: all).")


class Failure(_Strict):
    max_failures: int = Field(2, ge=-1, description="Restarts of a crashed trial from its last checkpoint (-1: unlimited).")


class Tracking(_Strict):
    mlflow_uri: str | None = Field(None, description="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else a sqlite store in the runs folder).")
    experiment: str | None = Field(None, description="MLflow experiment name (default: the spec name).")


_NAME = re.compile(r"^[a-z0-9][a-z0-9._/-]*$")
_ARM_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_RESULTS_FOLDER = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$")
# What an arm may change: the method and the task. Seeds, budget, resources and the search are the experiment's,
# the same for every arm, so the arms are compared on equal terms.
ARM_SECTIONS = ("algorithm", "env")


class Arm(_Strict):
    """One arm of a comparison: a name and dotted overrides of the base spec's algorithm.* and env.* fields.

    An arm may use another algorithm: override `algorithm` as a whole ({name: vic, config: {...}}); an override of
    `algorithm.name` alone keeps the base's config, which the other algorithm's hyperparameters must then accept."""

    name: str = Field(description="The arm's label in the tables and plots, e.g. disdain or vic.")
    overrides: dict[str, Any] = Field(default_factory=dict, description="Dotted field → value, e.g. algorithm.config.bonus_weight: 0.")

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not _ARM_NAME.match(value):
            raise ValueError(f"use lower-case letters, digits and . _ - (got {value!r}, e.g. no-bonus)")
        return value

    @field_validator("overrides")
    @classmethod
    def _only_method_and_task(cls, value: dict[str, Any]) -> dict[str, Any]:
        for path in value:
            if not isinstance(path, str) or not path or any(not part for part in path.split(".")):
                raise ValueError(f"{path!r}: expected a dotted field such as algorithm.config.lr")
            if path.split(".")[0] not in ARM_SECTIONS:
                raise ValueError(f"{path}: an arm may override only algorithm.* and env.* fields (seeds, stop, resources "
                                 "and tune are the experiment's, the same for every arm)")
        return value


class ResultsSection(_Strict):
    """Where a comparison's outcome is kept: results/<folder>/ (replaced by every finished rerun)."""

    folder: str = Field(description="Folder under results/, e.g. disdain/four-rooms.")
    metrics: list[str] = Field(default_factory=list, description="Metrics compared (default: the algorithm's headline "
                               "metrics); `{algorithm}/effective_skills` is each arm's own algorithm's figure.")
    paper: str = Field("", description="What the paper reports for this comparison, printed beside our table.")

    @field_validator("folder")
    @classmethod
    def _folder_shape(cls, value: str) -> str:
        if not _RESULTS_FOLDER.match(value):
            raise ValueError(f"expected a relative folder of lower-case names such as disdain/four-rooms (got {value!r})")
        return value


class ExperimentSpec(_Strict):
    name: str = Field(description="Experiment name, e.g. ppo/cartpole.")
    description: str = ""
    algorithm: AlgorithmSection
    env: EnvSection
    resources: Resources = Field(default_factory=Resources)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, description="One trial per seed (a sweep axis).")
    stop: Stop
    tune: TuneSection = Field(default_factory=TuneSection)
    checkpoint: Checkpointing = Field(default_factory=Checkpointing)
    failure: Failure = Field(default_factory=Failure)
    tracking: Tracking = Field(default_factory=Tracking)
    arms: list[Arm] = Field(default_factory=list, description="Arms compared in one run: each arm × seed is a trial.")
    results: ResultsSection | None = Field(None, description="Keep the arms' comparison in results/<folder>/.")

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use lower-case letters, digits and . _ / - (e.g. ppo/cartpole)")
        return value

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError(f"seeds must be distinct (got {value})")
        if any(s < 0 for s in value):
            raise ValueError(f"seeds must be >= 0 (got {value})")
        return value

    def model_dump(self, **kwargs):
        data = super().model_dump(**kwargs)
        data["algorithm"] = self.algorithm.model_dump(**kwargs)
        data["env"] = self.env.model_dump(**kwargs)
        # A spec without arms reads (and hashes) as before arms existed: its resumable runs and snapshots stay valid.
        if not self.arms:
            data.pop("arms", None)
        if self.results is None:
            data.pop("results", None)
        return data

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def spec_hash(self) -> str:
        """Hash of everything that defines the experiment (its name and description excluded)."""
        payload = {k: v for k, v in self.to_dict().items() if k not in ("name", "description")}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------------
# Layering: preset or YAML file, then dotted overrides.


def parse_override(text: str) -> tuple[str, Any]:
    """`a.b.c=value` → ("a.b.c", value); the value is parsed as YAML (numbers, lists, true/null...)."""
    if "=" not in text:
        raise SpecError([f"override {text!r}: expected dotted.field=value"])
    path, _, raw = text.partition("=")
    path = path.strip()
    if not path or any(not part for part in path.split(".")):
        raise SpecError([f"override {text!r}: expected dotted.field=value"])
    value = load_yaml_text(raw, where=f"the override of {path}", field=path) if raw.strip() else ""
    return path, _float_if_numeric(value)


def _float_if_numeric(value: Any) -> Any:
    """YAML 1.1 reads `1e-4` (no dot) as a string; researchers mean a number."""
    if isinstance(value, str):
        try:
            return float(value) if _SCIENTIFIC.match(value) else value
        except ValueError:
            return value
    if isinstance(value, list):
        return [_float_if_numeric(v) for v in value]
    if isinstance(value, dict):
        return {k: _float_if_numeric(v) for k, v in value.items()}
    return value


_SCIENTIFIC = re.compile(r"^[-+]?\d+(\.\d*)?[eE][-+]?\d+$")


def set_dotted(data: dict[str, Any], path: str, value: Any) -> None:
    """Set data[a][b][c] = value for path a.b.c, creating dicts on the way."""
    keys = path.split(".")
    node = data
    for i, key in enumerate(keys[:-1]):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            raise SpecError([f"{'.'.join(keys[: i + 1])}: is a {type(child).__name__}, cannot set {path} inside it"])
        node = child
    node[keys[-1]] = value


def get_dotted(data: dict[str, Any], path: str) -> Any:
    node: Any = data
    for key in path.split("."):
        node = node[key]
    return node


def load_yaml_text(text: str, *, where: str, field: str = "") -> Any:
    """YAML → Python values, within bounded size, nesting and alias expansion, refusing a key given twice in one
    mapping (YAML keeps the last silently). `where` names the file or override in messages; `field` is the dotted
    spec field the text is the value of ("" for a whole spec)."""
    label = field or where
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError([f"{label}: {len(text)} characters; a spec may have at most {MAX_SPEC_BYTES}"])
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_yaml_nodes(node, where, field)
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        raise SpecError([f"{label}: not valid YAML: {err}"]) from None
    except RecursionError:
        raise SpecError([f"{label}: nested too deeply (a spec nests at most {MAX_SPEC_DEPTH} levels)"]) from None
    finally:
        loader.dispose()


def _check_yaml_nodes(root: yaml.Node, where: str, prefix: str) -> None:
    """Walk the document as it will be built, aliases expanded, before building it: stop at MAX_SPEC_NODES values
    or MAX_SPEC_DEPTH levels (a self-referencing alias never ends, so it stops there too)."""
    visited = 0
    pending: list[tuple[yaml.Node, int, str]] = [(root, 1, prefix)]
    while pending:
        node, depth, path = pending.pop()
        visited += 1
        if visited > MAX_SPEC_NODES:
            raise SpecError([f"{prefix or where}: more than {MAX_SPEC_NODES} values once YAML aliases are expanded"])
        if depth > MAX_SPEC_DEPTH:
            raise SpecError([f"{path or where}: nested too deeply (a spec nests at most {MAX_SPEC_DEPTH} levels)"])
        if isinstance(node, yaml.SequenceNode):
            pending.extend((item, depth + 1, f"{path}[{i}]") for i, item in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                if key.tag == "tag:yaml.org,2002:merge":
                    pending.append((value, depth + 1, path))
                    continue
                name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
                field = f"{path}.{name}" if path else name
                if isinstance(key, yaml.ScalarNode) and name in seen:
                    raise SpecError([f"{field}: given twice in one mapping ({where}, lines {seen[name]} and "
                                     f"{key.start_mark.line + 1}); YAML would keep only the last"])
                seen[name] = key.start_mark.line + 1
                pending.append((key, depth + 1, field))
                pending.append((value, depth + 1, field))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError([f"{path}: {size} bytes; a spec file may have at most {MAX_SPEC_BYTES}"])
        raw = path.read_bytes()
    except OSError as err:
        raise SpecError([f"{path}: cannot be read ({err.strerror})"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError([f"{path}: not a UTF-8 text file (byte {err.start}: {err.reason}); save the spec as UTF-8 YAML"]) from None
    if "\0" in text:
        raise SpecError([f"{path}: holds NUL bytes: a binary file, not a YAML spec"])
    data = _float_if_numeric(load_yaml_text(text, where=str(path)))
    if not isinstance(data, dict):
        raise SpecError([f"{path}: expected a mapping at the top level, got {type(data).__name__}"])
    return data


def base_dict(name_or_file: str) -> dict[str, Any]:
    """The starting layer: a YAML file (which may name a preset under `preset:`) or a preset name."""
    return _base(name_or_file)[0]


def _base(name_or_file: str) -> tuple[dict[str, Any], str | None]:
    """base_dict and the name of the preset it starts from (None for a YAML file without `preset:`)."""
    path = Path(name_or_file)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise SpecError([f"{name_or_file}: no such spec file"])
        data = _read_yaml(path)
        preset_name = data.pop("preset", None)
        if preset_name is None:
            return data, None
        merged = _preset_dict(preset_name, field="preset")
        _deep_merge(merged, data)
        return merged, preset_name
    return _preset_dict(name_or_file, field="experiment"), name_or_file


def _preset_dict(name: Any, *, field: str) -> dict[str, Any]:
    if not isinstance(name, str):
        raise SpecError([f"{field}: expected a preset name, got {name!r}"])
    try:
        return presets.spec_dict(name)
    except KeyError as err:
        raise SpecError([f"{field}: {err.args[0]}"]) from None


def _deep_merge(into: dict[str, Any], layer: dict[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def load_spec(name_or_file: str, overrides: list[str] | tuple[str, ...] = (), *, smoke: bool = False) -> ExperimentSpec:
    """Preset or file, then overrides, then (optionally) the smoke profile; validated as a whole."""
    data, preset_name = _base(name_or_file)
    for text in overrides:
        path, value = parse_override(text)
        set_dotted(data, path, value)
    if smoke:
        data = smoke_dict(data, presets.get(preset_name).smoke if preset_name else None)
    return validate(data)


def smoke_dict(data: dict[str, Any], preset_smoke: dict[str, Any] | None = None) -> dict[str, Any]:
    """The same experiment on tiny sizes: the real code path, done in well under a minute. preset_smoke: the preset's
    own smoke layer (Preset.smoke), over the algorithm's and the environment's."""
    data = copy.deepcopy(data)
    # Validate first so a broken spec is reported as such, not as a smoke problem.
    spec = validate(data)
    algo_smoke = algorithms.get(spec.algorithm.name).smoke
    env_smoke = environments.get(spec.env.name).smoke
    _deep_merge(data.setdefault("algorithm", {}).setdefault("config", {}), algo_smoke)  # nested: e.g. one model field
    data.setdefault("env", {})
    data["env"]["config"] = {**(data["env"].get("config") or {}), **copy.deepcopy(env_smoke)}
    _deep_merge(data, preset_smoke or {})
    data["seeds"] = spec.seeds[:1]
    data["stop"] = {"iterations": 2}
    data["checkpoint"] = {"every_iterations": 1, "num_to_keep": 1}
    # One trial: each search axis collapses to its first candidate value.
    for path, dim in spec.tune.search_space.items():
        set_dotted(data, path, dim.candidates()[0])
    data["tune"] = {**(data.get("tune") or {}), "search_space": {}, "num_samples": 1, "scheduler": {"kind": "fifo"}}
    profile = spec.resources.profile
    data["resources"] = {"profile": "local-gpu" if profile.endswith("gpu") and _has_gpu() else "local-cpu",
                         "num_env_runners": 0, "num_learners": 0}
    # Every arm stays (a comparison needs them), each on its own algorithm's and env's smoke sizes; the comparison
    # is written into the run folder only, never over results/.
    base = {k: v for k, v in spec.to_dict().items() if k not in ("arms", "results")}
    arms = []
    for arm in spec.arms:
        smoked = smoke_dict(arm_dict(base, arm.overrides))
        arms.append({"name": arm.name, "overrides": {section: smoked[section] for section in ARM_SECTIONS}})
    data["arms"] = arms
    data.pop("results", None)
    return data


def arm_dict(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The spec dict of one arm: the base (without its arms) with the arm's overrides."""
    data = {k: copy.deepcopy(v) for k, v in base.items() if k not in ("arms", "results")}
    for path, value in overrides.items():
        set_dotted(data, path, copy.deepcopy(value))
    return data


def arm_specs(spec: ExperimentSpec) -> dict[str, ExperimentSpec]:
    """Each arm's complete spec (all seeds, no arms), by arm name."""
    base = spec.to_dict()
    return {arm.name: validate(arm_dict(base, arm.overrides)) for arm in spec.arms}


def trial_spec(spec_dict: Mapping[str, Any], trial_config: Mapping[str, Any]) -> ExperimentSpec:
    """The complete spec of one trial: the experiment's spec with its arm's overrides, its seed and sampled overrides."""
    arms = {arm["name"]: arm["overrides"] for arm in spec_dict.get("arms") or ()}
    data = arm_dict(spec_dict, arms[trial_config["arm"]] if trial_config.get("arm") is not None else {})
    for path, value in (trial_config.get("overrides") or {}).items():
        set_dotted(data, path, value)
    data["seeds"] = [int(trial_config["seed"])]
    # One trial has no axes left to search and nothing to schedule (PBT, for one, insists on a search space).
    tune = data.setdefault("tune", {})
    tune["search_space"], tune["scheduler"] = {}, {"kind": "fifo"}
    return validate(data)


def load_run_spec(run_dir: Path) -> ExperimentSpec:
    """The resolved spec a run folder was started with (its spec.yaml)."""
    return validate(yaml.safe_load((run_dir / "spec.yaml").read_text()))


def validate(data: Any) -> ExperimentSpec:
    """Validate a whole spec dict, or raise SpecError listing every problem with its field path."""
    if not isinstance(data, dict):
        raise SpecError([f"spec: expected a mapping, got {type(data).__name__}"])
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(_format_errors(err)) from None
    problems = (_check_search_space(spec, data) + _check_resources(spec) + _check_layout(spec) + _check_pbt(spec)
                + _check_metrics(spec) + _check_tracking(spec) + _check_arms(spec))
    if problems:
        raise SpecError(problems)
    return spec


def _check_search_space(spec: ExperimentSpec, data: dict[str, Any]) -> list[str]:
    problems = []
    resolved = spec.to_dict()
    for path, dim in spec.tune.search_space.items():
        field = f"tune.search_space.{path}"
        if path.split(".")[0] in ("name", "description", "seeds", "tune", "arms", "results"):
            problems.append(f"{field}: cannot search over {path.split('.')[0]} (seeds and arms are each their own axis: "
                            "use `seeds` and `arms`)")
            continue
        try:
            get_dotted(resolved, path)
        except (KeyError, TypeError):
            problems.append(f"{field}: {path} is not a field of this spec")
            continue
        for value in dim.candidates():
            trial = copy.deepcopy(data)
            set_dotted(trial, path, value)
            trial.pop("tune", None)  # each candidate is checked as a plain spec
            try:
                layout = _check_layout(ExperimentSpec.model_validate(trial))
            except ValidationError as err:
                layout = _format_errors(err)
            if layout:
                problems.append(f"{field}: value {value!r} is invalid ({'; '.join(layout)})")
    return problems


def _check_arms(spec: ExperimentSpec) -> list[str]:
    """Arms: at least two, distinct names, each a valid spec of its own and different from the others, a scheduler
    that keeps trials apart, and the compared metrics reported by every arm's algorithm."""
    if not spec.arms:
        return ["results: a comparison kept in results/ needs `arms` (at least two)"] if spec.results else []
    problems = []
    if len(spec.arms) < 2:
        problems.append(f"arms: give at least 2 arms to compare (got {len(spec.arms)})")
    if spec.tune.scheduler.kind == "pbt":
        problems.append("tune.scheduler.kind: pbt copies one trial's weights into another, across arms too; use fifo "
                        "or asha with arms")
    base = spec.to_dict()
    seen: dict[str, str] = {}
    names: set[str] = set()
    for arm in spec.arms:
        field = f"arms.{arm.name}"
        if arm.name in names:
            problems.append(f"{field}: the arm name is given twice; arm names must be distinct")
            continue
        names.add(arm.name)
        for path in spec.tune.search_space:
            if any(path == o or path.startswith(o + ".") or o.startswith(path + ".") for o in arm.overrides):
                problems.append(f"tune.search_space.{path}: also set by {field}; an arm and a search axis cannot set "
                                "the same field")
        try:
            arm_spec = validate(arm_dict(base, arm.overrides))
        except SpecError as err:
            problems += [f"{field}: {problem}" for problem in err.problems]
            continue
        same_as = seen.setdefault(arm_spec.spec_hash(), arm.name)
        if same_as != arm.name:
            problems.append(f"{field}: resolves to the same spec as arms.{same_as}; the arms would not differ")
        entry = algorithms.get(arm_spec.algorithm.name)
        for name in spec.results.metrics if spec.results else ():
            if not entry.reports(name.replace("{algorithm}", arm_spec.algorithm.name)):
                problems.append(f"results.metrics: {name!r} is never reported by {arm_spec.algorithm.name} ({field}); "
                                "`{algorithm}/name` names each arm's own algorithm's metric")
    return problems


def _check_layout(spec: ExperimentSpec) -> list[str]:
    """The algorithm's batches against the learners and env runners the resources give it (RLlib refuses these only
    once Ray runs)."""
    resources = resolved_resources(spec)
    return spec.algorithm.config.layout_problems(resources["num_learners"], resources["num_env_runners"])


def _check_metrics(spec: ExperimentSpec) -> list[str]:
    """A metric named for Tune's scheduler or for stopping must be one the algorithm reports: otherwise ASHA/PBT
    fail once trials run, and a stop criterion never fires."""
    entry = algorithms.get(spec.algorithm.name)
    problems = []
    named = [("tune.metric", spec.tune.metric)] + [(f"stop.metric.{name}", name) for name in spec.stop.metric]
    for field, name in named:
        if not entry.reports(name):
            close = difflib.get_close_matches(name, entry.reported_metric_names(), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            own = f" and its own {', '.join(entry.metrics)}" if entry.metrics else ""
            problems.append(f"{field}: {spec.algorithm.name} never reports a metric {name!r}{hint} (it reports RLlib's "
                            f"env_runners/..., learners/... figures{own})")
    return problems


def _check_tracking(spec: ExperimentSpec) -> list[str]:
    """The tracking URI the run will use: the spec's, else $MLFLOW_TRACKING_URI of this process."""
    field, uri = "tracking.mlflow_uri", spec.tracking.mlflow_uri
    if not uri:
        field, uri = "MLFLOW_TRACKING_URI", os.environ.get("MLFLOW_TRACKING_URI")
    problem = tracking_uri_problem(uri) if uri else None
    return [f"{field}: {problem}"] if problem else []


def tracking_uri_problem(uri: str) -> str | None:
    """Why MLflow would refuse this tracking URI at run time, or None. MLflow 3 refuses a file store (`file:` or a
    plain path) unless MLFLOW_ALLOW_FILE_STORE=true."""
    scheme = uri.split(":", 1)[0].lower() if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", uri) else ""
    if scheme in ("", "file") and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() != "true":
        return (f"{uri!r} is a file store, which MLflow refuses; use a database URI such as sqlite:///runs/mlflow.db "
                "or a tracking server (http://host:5000)")
    if scheme.split("+")[0] not in ("", "file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks",
                                    "databricks-uc", "uc"):
        return f"{uri!r}: unknown scheme {scheme!r}; use sqlite:///path.db, postgresql://..., or http(s)://host:port"
    return None


def _check_pbt(spec: ExperimentSpec) -> list[str]:
    """PBT copies a trial's latest checkpoint into another trial, so there must be one at every perturbation, and it
    must still exist when the other trial restores it: the donor can save perturbation_interval / every_iterations
    newer checkpoints before the weaker trial restarts (synchronous PBT, runner._scheduler)."""
    sched, every, keep = spec.tune.scheduler, spec.checkpoint.every_iterations, spec.checkpoint.num_to_keep
    if sched.kind != "pbt":
        return []
    if sched.perturbation_interval % every:
        return [f"tune.scheduler.perturbation_interval: PBT copies the latest checkpoint, so {sched.perturbation_interval} "
                f"must be a multiple of checkpoint.every_iterations ({every})"]
    if keep is not None and keep <= sched.perturbation_interval // every:
        return [f"checkpoint.num_to_keep: with PBT it must be more than perturbation_interval / every_iterations "
                f"({sched.perturbation_interval // every}) or null, or a checkpoint can be deleted before another trial copies it"]
    return []


def _has_gpu() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # pragma: no cover - torch is a dependency; be safe in odd environments
        return False


def _check_resources(spec: ExperimentSpec) -> list[str]:
    res = spec.resources
    problems = []
    if res.profile == "local-gpu" and not _has_gpu():
        problems.append("resources.profile: local-gpu needs a CUDA GPU on this machine and none is visible (use local-cpu)")
    if res.num_gpus_per_learner and res.profile in ("local-cpu", "cluster-cpu"):
        problems.append(f"resources.num_gpus_per_learner: {res.profile} has no GPUs; use a *-gpu profile or 0")
    return problems


def _format_errors(err: ValidationError, prefix: tuple = ()) -> list[str]:
    lines = []
    model = _model_named(err.title)
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])
        inner = (e.get("ctx") or {}).get("error")
        if isinstance(inner, _FieldProblem):
            loc = loc + (inner.field,)
            if isinstance(inner.problem, ValidationError):
                lines.extend(_format_errors(inner.problem, prefix + loc))
                continue
            e = {**e, "msg": inner.problem}
        field = ".".join(str(p) for p in prefix + loc) or "spec"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = f"unknown field{_allowed_hint(model, loc)}"
        elif e["type"] == "missing":
            msg = "required field is missing"
        elif "input" in e and e["type"] not in ("value_error", "assertion_error"):
            msg = f"{msg} (got {e['input']!r})"
        lines.append(f"{field}: {msg}")
    return lines


def _model_named(title: str) -> Any:
    """The pydantic class a ValidationError came from (nested configs are validated on their own)."""
    pending = [BaseModel]
    while pending:
        cls = pending.pop()
        if cls.__name__ == title:
            return cls
        pending.extend(cls.__subclasses__())
    return None


def _allowed_hint(model: Any, loc: tuple) -> str:
    """For an unknown field, name the fields that are allowed at that place."""
    for key in loc[:-1]:
        field = getattr(model, "model_fields", {}).get(key)
        if field is None:
            return ""
        model = field.annotation
    fields = getattr(model, "model_fields", None)
    return f"; expected one of: {', '.join(fields)}" if fields else ""
