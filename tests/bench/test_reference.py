"""pftlab's fast path and the usual per-client loop (benchmarks/reference_loop.py) give the same matrices."""

from __future__ import annotations

import numpy as np

from pftlab.bench import metrics, pftlab_work, reference_module
from pftlab.core.seeding import numpy_rng
from pftlab.data.benchmarks import build_federation
from pftlab.experiment.checkpoint import global_model
from pftlab.experiment.config import from_dict
from pftlab.models import build_model


def test_pftlab_and_the_reference_loop_agree_on_a_real_federation() -> None:
    cfg = from_dict(
        {
            "data": {"num_clients": 6},
            "federated": {"rounds": 5},
            "personalize": {"methods": ["ft", "lp", "lp-ft"], "epochs": 3},
            "method": {"lp-ft": {"lp_epochs": 1}},
        }
    )
    fed = build_federation(cfg.data, cfg.seed)
    model = build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed)
    weights, _, _ = global_model(model, fed, cfg)
    ours = pftlab_work(model, weights, fed, cfg)
    model.load_state_dict(weights)
    params = {m: cfg.method_params(m).model_dump() for m in ("ft", "lp", "lp-ft")}
    order = lambda c, e, n: numpy_rng(cfg.seed, "personalize", c, e).permutation(n)  # noqa: E731
    ref = reference_module().run(model, fed, params, cfg.personalize, order)
    assert ours.keys() == ref.keys()
    for m in ours:
        assert ours[m].shape == ref[m].shape == (6, 6)
        # float rounding may flip a prediction or two; the matrices must agree nearly everywhere
        assert np.abs(ours[m] - ref[m]).sum() <= 2, m
    assert not np.array_equal(ours["ft"], ours["global-model"])  # personalization did something
    sizes = np.array([len(c.test) for c in fed.clients])
    a, b = metrics(ours, sizes), metrics(ref, sizes)
    assert max(abs(a[m][k] - b[m][k]) for m in a for k in a[m]) < 1.0
