"""Every method parameter is range-checked by its Params, and what the config accepts, training can take.

The reliability issue found a parameter whose range nothing checked (soup-ft's `lrs`: a negative or huge
learning rate passed `--check` and broke torch's optimizer after the global stage). Here: every numeric
field of every registered method (list items included) has a lower and an upper bound; and for every
bound of every field, a config that accepts the value gives a method that trains on a tiny federation to
the end (finite weights), or stops the way a run handles (a non-finite loss, `FloatingPointError`, makes
the client a named failed client; a `UserError` is one line) - never another exception.
"""

from __future__ import annotations

import math
import typing
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from tests.tiny_federation import tiny_federation, tiny_model

from pftlab.core.errors import UserError
from pftlab.experiment.config import from_dict
from pftlab.personalize import METHODS, personalize_client
from pftlab.personalize.baselines import Baseline, train_baseline

BUDGET_EPOCHS = 5  # lss-ft's default pool (3) and LP-FT's default lp_epochs (5) fit


def numeric_fields() -> list[tuple[str, str, Any, type]]:
    """(method, field, FieldInfo-like metadata holder, number type), list items as their own entries."""
    found = []
    for name, spec in METHODS.items():
        for key, field in spec.Params.model_fields.items():
            ann = field.annotation
            if ann in (int, float):
                found.append((name, key, field.metadata, ann))
            elif typing.get_origin(ann) is list:
                (item,) = typing.get_args(ann)
                inner = typing.get_args(item)
                if typing.get_origin(item) is typing.Annotated and inner[0] in (int, float):
                    metadata = [m for extra in inner[1:] for m in getattr(extra, "metadata", [extra])]
                    found.append((name, f"{key}[]", metadata, inner[0]))
                elif item in (int, float):
                    found.append((name, f"{key}[]", [], item))
    return found


def bounds(metadata: list[Any]) -> tuple[float | None, bool, float | None, bool]:
    lo = hi = None
    lo_open = hi_open = False
    for m in metadata:
        if getattr(m, "ge", None) is not None:
            lo = m.ge
        if getattr(m, "gt", None) is not None:
            lo, lo_open = m.gt, True
        if getattr(m, "le", None) is not None:
            hi = m.le
        if getattr(m, "lt", None) is not None:
            hi, hi_open = m.lt, True
    return lo, lo_open, hi, hi_open


FIELDS = numeric_fields()


@pytest.mark.parametrize(("method", "key", "metadata", "kind"), FIELDS, ids=[f"{m}.{k}" for m, k, _, _ in FIELDS])
def test_every_numeric_parameter_has_both_bounds(method: str, key: str, metadata: list[Any], kind: type) -> None:
    lo, _, hi, _ = bounds(metadata)
    assert lo is not None and hi is not None, f"method.{method}.{key} must have a lower and an upper bound"
    assert math.isfinite(lo) and math.isfinite(hi) and lo < hi


def test_the_issues_unchecked_parameter_is_refused() -> None:
    for lrs in ([-1.0], [0.0], [1e300], [0.01, math.inf]):
        with pytest.raises(UserError, match=r"method\.soup-ft\.lrs\.\d"):
            from_dict({"personalize": {"methods": ["soup-ft"]}, "method": {"soup-ft": {"lrs": lrs}}})


def edge_cases() -> list[tuple[str, str, Any]]:
    """(method, field, value): every bound (or the nearest value inside an open one) and just past it."""
    cases = []
    for method, key, metadata, kind in FIELDS:
        lo, lo_open, hi, hi_open = bounds(metadata)
        step = 1 if kind is int else 1e-6
        for b, open_, sign in ((lo, lo_open, 1), (hi, hi_open, -1)):
            if b is None:
                continue
            inside = b + sign * step if open_ else b
            outside = b if open_ else b - sign * step
            cases += [(method, key, kind(inside)), (method, key, kind(outside))]
    return cases


CASES = edge_cases()


@pytest.fixture(scope="module")
def fed():
    return tiny_federation(num_clients=3, n=24)


@pytest.mark.parametrize(("method", "key", "value"), CASES, ids=[f"{m}.{k}={v!r}" for m, k, v in CASES])
def test_what_the_config_accepts_at_the_edges_trains(method: str, key: str, value: Any, fed) -> None:
    field = key.removesuffix("[]")
    table = {field: [value] if key.endswith("[]") else value}
    raw = {
        "personalize": {"methods": [method], "epochs": BUDGET_EPOCHS},
        "federated": {"rounds": 1},
        "method": {method: table},
    }
    try:
        cfg = from_dict(raw)
    except UserError as err:
        assert "\n" not in str(err)
        return  # refused by the config, as --check would: nothing reaches training
    if field.endswith(("epochs", "iter")) and value > 50:
        return  # a long schedule is allowed and merely long: 10,000 epochs per round would take minutes here
    spec = METHODS[method]
    params = cfg.method_params(method)
    torch.manual_seed(0)
    model = tiny_model()
    try:
        if isinstance(spec, Baseline):
            train_baseline(spec, model, fed, cfg.federated, cfg.seed, params)
            weights = model.state_dict()
        else:
            start = {k: v.detach().clone() for k, v in model.state_dict().items()}
            client = fed.clients[0]
            weights = personalize_client(model, start, spec, params, cfg.personalize, client.train, 0, client.client_id)
    except FloatingPointError:
        return  # a non-finite loss: the run names the client as failed and goes on
    except UserError as err:  # e.g. surgical-ft's block is not in this model: one line, exit 2
        assert "\n" not in str(err)
        return
    except (ValidationError, ValueError, RuntimeError, TypeError) as err:  # pragma: no cover - the failure
        pytest.fail(f"method.{method}.{key}={value!r} passed the config but training raised {err!r}")
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())
