"""The base class of every algorithm's hyperparameters."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Hyperparameters(BaseModel):
    """Base class of every algorithm's hyperparameters: typed, documented, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)
