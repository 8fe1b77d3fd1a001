"""Head-swap controls: FT's model with the global head put back, or the global backbone with FT's head.

A loss of global accuracy after FT has two possible sources: the head, fitted to the client's
labels, and the features, distorted by training the backbone. LP (only the head trains, at its
own learning rate) answers a different question. These two swap one part of FT's own model back
to the global one, so at FT's settings they split FT's change exactly: `ft-global-head` keeps
FT's features with the global head, `ft-global-body` the global features with FT's head. They
train exactly what FT trains (same phases, data order and `[method.ft]` learning rate: they follow
FT's parameters and take none of their own). When FT has a grid, each client trains at the point
FT chose for it under each choice rule (a choice of their own would pick other models than FT's);
the runner hands them FT's choices, so `ft` runs first.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pftlab.personalize.ft import Params
from pftlab.personalize.recipe import Method, single
from pftlab.training.phase import Phase


def _control(name: str, summary: str, keep: Literal["head", "body"]) -> Method:
    """FT's recipe at FT's parameters, then the global `keep` put back."""
    return Method(
        name,
        summary,
        Params,
        lambda p, budget: replace(single(Phase("all", budget.epochs, p.lr)), keep_global=keep),
        follows="ft",
    )


FT_WITH_GLOBAL_HEAD = _control(
    "ft-global-head", "control: FT's features with the global head (FT, then the global head put back)", "head"
)
GLOBAL_WITH_FT_HEAD = _control(
    "ft-global-body", "control: the global features with FT's head (FT, then the global backbone put back)", "body"
)
METHODS = (FT_WITH_GLOBAL_HEAD, GLOBAL_WITH_FT_HEAD)
