"""Personalization methods: recipes of the shared loop (one small file each) and process-integrated baselines.

`METHODS` is the registry every name in `personalize.methods` is checked against. A method from
another package is added with `register_method(METHOD)` or through the `pftlab.methods` entry
point group; either way the CLI, the config and the study see it.
"""

from __future__ import annotations

from pftlab.core.errors import UserError
from pftlab.core.registry import Registry, caller_package
from pftlab.personalize import controls, flood, ft, lp, lpft, lpft_kumar, lss, proximal, soup, sparse, surgical, wise
from pftlab.personalize.baselines import BUILTIN as BUILTIN_BASELINES
from pftlab.personalize.baselines import Baseline
from pftlab.personalize.config import PersonalizeConfig
from pftlab.personalize.engine import personalize_batch, personalize_client, supports
from pftlab.personalize.recipe import Method, Plan, Run, single
from pftlab.personalize.spec import MethodSpec
from pftlab.training.phase import Phase

# Every caller sees the MethodSpec protocol (name, summary, Params, integrated, check); the pipeline
# runs the two kinds it knows, so a registered method must be one of them.
METHODS: Registry[MethodSpec] = Registry("method", "pftlab.methods", (Method, Baseline))
for _m in (ft, lp, lpft, proximal, sparse, soup, lss, wise, surgical, lpft_kumar, flood):
    METHODS.register(_m.METHOD)
for _b in BUILTIN_BASELINES:
    METHODS.register(_b)
for _c in controls.METHODS:  # after the baselines: the study's default method list ends with the controls
    METHODS.register(_c)


def recipe(name: str) -> Method:
    """The recipe method `name`; a process-integrated baseline (which has no recipe) is refused."""
    spec = METHODS[name]
    if not isinstance(spec, Method):
        raise UserError(f"method {name!r} is a process-integrated baseline, not a recipe of the shared loop")
    return spec


def register_method(
    method: Method | Baseline, *, origin: str | None = None, replace: bool = False
) -> Method | Baseline:
    """Make `method` available by name to configs, the CLI and the study (from a plugin's code)."""
    METHODS.register(method, origin or caller_package(), replace=replace)
    return method


__all__ = [
    "METHODS",
    "Baseline",
    "Method",
    "MethodSpec",
    "PersonalizeConfig",
    "Phase",
    "Plan",
    "Run",
    "personalize_batch",
    "personalize_client",
    "recipe",
    "register_method",
    "single",
    "supports",
]
