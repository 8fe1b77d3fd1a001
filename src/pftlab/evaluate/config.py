"""The [evaluate] table: the whole cross-client matrix, or a fixed sample of it with stated error.

The full matrix runs N models over every client's test set: its cost grows as N x (all test
images), so it cannot be computed for thousands of clients. `sampled` scores each model on a
fixed systematic sample of the pooled test images and on the whole test sets of a fixed sample
of clients (for `worst`), both drawn once per seed and shared by every method; `local` stays
exact. Worst's clients are half those the global model does worst on, half a random audit.
`auto` is `full` while N x (pooled test images) is at most `auto_limit` model-image
evaluations per method, `sampled` above (docs/evaluation.md).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pftlab.core.schema import Strict

Mode = Literal["full", "sampled", "auto"]


class EvaluateConfig(Strict):
    mode: Mode = Field(
        "auto", description="full: the whole matrix; sampled: a fixed sample with stated error; auto: by auto_limit"
    )
    sample_images: int = Field(
        1000, ge=10, le=10_000_000, description="pooled test images every model is scored on (sampled mode)"
    )
    sample_clients: int = Field(
        32,
        ge=1,
        le=1_000_000,
        description="clients whose whole test sets are scored for `worst`: half screened, half audit (sampled mode)",
    )
    auto_limit: int = Field(
        4_000_000, ge=0, le=10**15, description="auto: full while clients x pooled test images is at most this"
    )
    bootstrap: int = Field(
        1000, ge=100, le=100_000, description="resamples of the clients for the across-client intervals"
    )

    def resolve(self, num_clients: int, pool_size: int) -> Literal["full", "sampled"]:
        """The mode a federation of this size gets; sampled never covers more than the pool itself."""
        if self.mode == "auto":
            return "full" if num_clients * pool_size <= self.auto_limit else "sampled"
        return self.mode
