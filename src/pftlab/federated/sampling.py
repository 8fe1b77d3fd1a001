"""Client sampling, drawn up front from the seed so a run's schedule is known before it starts."""

from __future__ import annotations

import numpy as np

from pftlab.core.seeding import numpy_rng


def participation_schedule(num_clients: int, per_round: int, rounds: int, seed: int) -> list[np.ndarray]:
    """The sorted client ids taking part in each round; per_round = 0 (or >= num_clients) means all."""
    if per_round <= 0 or per_round >= num_clients:
        return [np.arange(num_clients) for _ in range(rounds)]
    rng = numpy_rng(seed, "participation")
    return [np.sort(rng.choice(num_clients, size=per_round, replace=False)) for _ in range(rounds)]
