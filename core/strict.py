"""The base of every typed section a user writes (spec sections, hyperparameters, env options).

Pydantic's lax mode takes `true` for a number (1.0) and accepts `.inf` / `.nan` for a float: in an experiment spec
both are mistakes that would otherwise run. Unknown fields are refused and models are frozen.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


def _numeric(annotation: Any) -> bool:
    """Whether a field typed `annotation` holds a number only (int, float, or one of them or None)."""
    if isinstance(annotation, type):
        return issubclass(annotation, (int, float)) and not issubclass(annotation, bool)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return bool(members) and all(_numeric(arg) for arg in members)
    return False


def _bool_where_number(annotation: Any, value: Any) -> bool:
    """A bool given for a field (or an item of a list/tuple field) that does not admit one."""
    if isinstance(value, bool):
        return _numeric(annotation)
    origin = typing.get_origin(annotation)
    if isinstance(value, dict) and origin is dict and len(typing.get_args(annotation)) == 2:
        return any(_bool_where_number(typing.get_args(annotation)[1], item) for item in value.values())
    if isinstance(value, (list, tuple)):
        if origin in (typing.Union, types.UnionType):
            sequences = [arg for arg in typing.get_args(annotation) if typing.get_origin(arg) in (list, tuple)]
            return bool(sequences) and all(_bool_where_number(arg, value) for arg in sequences)
        args = typing.get_args(annotation)
        if origin is list and args:
            return any(_bool_where_number(args[0], item) for item in value)
        if origin is tuple and args:
            item_types = [args[0]] * len(value) if (len(args) == 2 and args[1] is Ellipsis) else list(args)
            return any(_bool_where_number(t, item) for t, item in zip(item_types, value))
    return False


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        annotation = cls.model_fields[info.field_name].annotation
        if _bool_where_number(annotation, value):
            raise ValueError(f"expected a number, got a boolean ({value!r}; YAML reads true/false/yes/no/"
                             "on/off as booleans)")
        return value
