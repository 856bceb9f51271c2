"""Settings of the CLIP reward model: how it scores (RewardConfig), is fine-tuned (FinetuneConfig) and is served
(ServeConfig), each documented with its paper symbol. The RL algorithm's own hyperparameters are config.py.

Invalid values are refused at construction (pydantic), with the field named.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from armillary.core.strict import StrictModel


class _Config(StrictModel):
    pass


class RewardConfig(_Config):
    """r = 1[P(goal | x) > β], P a softmax over the goal and its negatives at temperature τ."""

    threshold: float = Field(
        0.5, gt=0.0, lt=1.0, description="β: the reward fires when P(goal | frame) exceeds it (unverified in the paper)."
    )
    temperature: float | None = Field(
        None,
        gt=0.0,
        description="τ: softmax temperature over cosine similarities; None uses the model's learned one, "
        "1 / exp(logit_scale).",
    )
    extra_negatives: tuple[str, ...] = Field(
        (),
        description="Texts added to every goal set as negatives, e.g. the env's 'nothing reached' caption. The other "
        "goals of the set are always negatives.",
    )
    resize_frames: bool = Field(
        False,
        description="Resize frames to the model's input size (a hub model at 224 px); False refuses frames of another "
        "size, which catches a wrong env/model pairing early.",
    )

    @model_validator(mode="after")
    def _negatives_are_texts(self):
        if any(not text.strip() for text in self.extra_negatives):
            raise ValueError("extra_negatives must be non-empty texts")
        if len(set(self.extra_negatives)) != len(self.extra_negatives):
            raise ValueError("extra_negatives has duplicates")
        return self


class FinetuneConfig(_Config):
    """Contrastive fine-tuning on rendered (frame, caption) pairs. CPU-sized defaults."""

    size: Literal["tiny", "small", "medium", "large"] = Field("tiny", description="Model size (models.MODEL_SIZES).")
    patch_size: int = Field(
        16,
        ge=1,
        description="ViT patch side in pixels (models built from scratch). 16 on 8-pixel cells: each patch spans 2x2 "
        "cells, so a model must resolve where in its patch the agent stands — one cell per patch is trivial.",
    )
    steps: int = Field(1500, ge=1, description="Optimiser steps.")
    batch_size: int = Field(128, ge=2, description="Pairs per step.")
    lr: float = Field(
        3e-4, gt=0, description="AdamW learning rate (cosine decay after a linear warm-up). At 1e-3 the medium model sat "
        "on the caption-frequency plateau for ~1000 of 1500 steps."
    )
    warmup_steps: int = Field(50, ge=0, description="Linear warm-up of the learning rate.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    num_train: int = Field(20_000, ge=2, description="Rendered training pairs (drawn once, seeded).")
    on_object_fraction: float = Field(0.6, gt=0, lt=1, description="Share of training frames with the agent on an object.")
    seed: int = Field(0, description="Seeds the data and the initial weights.")
    threads: int = Field(1, ge=1, description="torch threads (1 on the shared 2-core machine).")

    @model_validator(mode="after")
    def _warmup_fits(self):
        if self.warmup_steps >= self.steps:
            raise ValueError(f"warmup_steps={self.warmup_steps} must be below steps={self.steps}")
        return self


class ServeConfig(_Config):
    """The Ray Serve application hosting one reward model, shared by every trial of a sweep."""

    model: str = Field(..., min_length=1, description="A saved model folder or a hub name (same loader).")
    app_name: str = Field("clip-reward", min_length=1, description="Serve application name; clients find it by this.")
    num_replicas: int = Field(1, ge=1, description="Replicas of the one deployment.")
    num_cpus: float = Field(
        0.0, ge=0, description="CPUs reserved per replica. 0 on a 2-core machine: a replica holding a whole CPU "
        "beside 2 env runners makes RLlib's build hang (STACK-NOTES)."
    )
    num_gpus: float = Field(0.0, ge=0, description="GPUs per replica (fractional shares one GPU).")
    torch_threads: int = Field(1, ge=1, description="torch intra-op threads in each replica.")
    max_batch_size: int = Field(32, ge=1, description="Most requests @serve.batch merges into one forward pass.")
    batch_wait_timeout_s: float = Field(0.005, ge=0, description="Longest wait for a batch to fill.")
    max_ongoing_requests: int = Field(128, ge=1, description="Requests a replica accepts at once (≥ max_batch_size to let batches form).")
    http: bool = Field(False, description="Start Serve's HTTP proxy (bound to 127.0.0.1); handles work without it.")
    http_port: int = Field(8000, ge=1, le=65535, description="Port of the HTTP proxy when http is on.")
    reward: RewardConfig = Field(default_factory=RewardConfig, description="β, τ, negatives.")

    @model_validator(mode="after")
    def _batches_can_form(self):
        if self.max_ongoing_requests < self.max_batch_size:
            raise ValueError(
                f"max_ongoing_requests={self.max_ongoing_requests} < max_batch_size={self.max_batch_size}: "
                "a replica would never hold enough requests to fill a batch"
            )
        return self
