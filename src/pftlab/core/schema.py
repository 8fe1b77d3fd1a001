"""The base of every params schema, and the one-line message for a value it refuses.

Each component (a benchmark, a model, an algorithm, a method, the training loop) owns a `Strict`
model of its own keys; the experiment config composes them. Unknown keys, wrong types (no silent
coercion), NaN / inf and out-of-range values are refused with one line naming the key.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class Strict(BaseModel):
    """Base of every config table: no unknown keys, no type coercion, no NaN or inf."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


def allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the (nested) table at `loc` accepts."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = field.annotation if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)


def validation_message(err: ValidationError, model: type[BaseModel], prefix: str = "") -> str:
    """The first error as 'config: KEY: what is wrong (got VALUE)'."""
    e = err.errors(include_url=False)[0]
    loc = tuple(e["loc"])
    msg = e["msg"].removeprefix("Value error, ")
    if msg.startswith("config: "):  # already formatted by a nested validation
        return msg
    key = prefix + ".".join(str(p) for p in loc) if loc else prefix.rstrip(".")
    if e["type"] == "extra_forbidden":
        allowed = allowed_keys(model, loc)
        return f"config: unknown key {key!r}; allowed here: {', '.join(allowed) or '(none)'}"
    got = e.get("input")
    shown = "" if isinstance(got, dict) or not loc else f" (got {got!r})"
    return f"config: {key}: {msg}{shown}" if key else f"config: {msg}"
