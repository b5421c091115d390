"""The base of every request model a service accepts."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    # NaN and Infinity (1e400 parses as Infinity) are no dose, score or percentage: a 422
    # naming the field, never a stored Infinity that JSON cannot carry.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
