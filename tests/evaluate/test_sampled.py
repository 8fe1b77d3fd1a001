"""Sampled evaluation: the sample's design, exactness at full size, and coverage of the stated
intervals against the full matrix on a real federation (sklearn digits, 40 clients, 5 domains)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from pftlab.data.benchmarks import build_federation
from pftlab.evaluate.intervals import method_intervals, resample_weights
from pftlab.evaluate.matrix import EvalPool, hits_per_image
from pftlab.evaluate.metrics import DOMAIN_SPLIT, summarize
from pftlab.evaluate.sampled import (
    Z95,
    SampledScores,
    _expected_min,
    draw_sample,
    estimates,
    interval,
    pack_bits,
    scores_from_hits,
    successive_difference_se,
    unpack_bits,
)
from pftlab.evaluate.scoring import domain_numbers
from pftlab.experiment.config import from_dict
from pftlab.federated.rounds import run_global_stage
from pftlab.models import build_model
from pftlab.personalize import personalize_client, recipe

SIZES = np.array([30, 5, 12, 40, 7, 19, 25, 2])
DOMAINS = np.array([0, 1, 0, 1, 2, 2, 0, 1])


def full_correct(hits: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return np.stack([hits[:, bounds[j] : bounds[j + 1]].astype(np.int64).sum(1) for j in range(len(sizes))], axis=1)


def test_the_sample_is_systematic_stratified_and_fixed_by_the_seed() -> None:
    s = draw_sample(SIZES, DOMAINS, 50, 3, seed=7)
    assert len(s.images) == 50 and len(set(s.images.tolist())) == 50
    assert len(s.clients) == 3 and len(set(s.clients.tolist())) == 3 and (np.diff(s.clients) > 0).all()
    # every client holds its share of the sample, within one image (implicit stratification)
    per_client = np.bincount(s.owner, minlength=len(SIZES))
    assert np.all(np.abs(per_client - 50 * SIZES / SIZES.sum()) <= 1)
    # successive images in the sample follow the ordered pool: domains are contiguous runs
    assert (np.diff(DOMAINS[s.owner]) >= 0).all()
    again, other = draw_sample(SIZES, DOMAINS, 50, 3, seed=7), draw_sample(SIZES, DOMAINS, 50, 3, seed=8)
    assert np.array_equal(s.images, again.images) and np.array_equal(s.clients, again.clients)
    assert not np.array_equal(s.images, other.images)
    whole = draw_sample(SIZES, DOMAINS, 10**6, 10**6, seed=0)
    assert sorted(whole.images.tolist()) == list(range(SIZES.sum())) and whole.fraction == 1
    assert whole.clients.tolist() == list(range(len(SIZES)))


def test_each_image_is_drawn_with_probability_m_over_p() -> None:
    counts = np.zeros(SIZES.sum())
    for seed in range(400):
        counts[draw_sample(SIZES, DOMAINS, 20, 2, seed).images] += 1
    assert np.allclose(counts / 400, 20 / SIZES.sum(), atol=0.1)


def test_bits_round_trip() -> None:
    hits = np.random.default_rng(0).integers(0, 2, 37).astype(np.uint8)
    assert np.array_equal(unpack_bits(pack_bits(hits), 37), hits)


def test_expected_minimum_matches_enumeration() -> None:
    values = np.sort(np.random.default_rng(1).uniform(0, 100, 9))
    for k in (1, 2, 4, 9):
        brute = np.mean([min(c) for c in itertools.combinations(values, k)])
        assert _expected_min(values, k) == pytest.approx(brute)


def test_successive_difference_se() -> None:
    assert successive_difference_se(np.array([1.0, 5.0, 2.0]), 1.0) == 0.0  # the whole population: exact
    z = np.array([0.0, 1.0, 0.0, 1.0])
    assert successive_difference_se(z, 0.5) == pytest.approx(math.sqrt(0.5 * (3 / 6) / 4))


def test_a_sample_of_everything_gives_the_full_metrics_and_no_sampling_error() -> None:
    rng = np.random.default_rng(3)
    hits = (rng.uniform(size=(len(SIZES), SIZES.sum())) < rng.uniform(0.2, 0.9, (len(SIZES), 1))).astype(np.uint8)
    sample = draw_sample(SIZES, DOMAINS, 10**6, 10**6, seed=0)
    _, ests = estimates(scores_from_hits(hits, sample), sample)
    full = summarize(full_correct(hits, SIZES), SIZES, digits=10, domains=DOMAINS)
    for metric, est in ests.items():
        assert est.value == pytest.approx(full[metric], abs=1e-9), metric
        se, lo, hi = interval(est, sample.fraction)
        assert se == 0 and est.gap == 0 and lo == hi == est.value
    assert set(DOMAIN_SPLIT) <= set(ests)


def test_failed_clients_are_left_out() -> None:
    rng = np.random.default_rng(4)
    hits = (rng.uniform(size=(len(SIZES), SIZES.sum())) < 0.6).astype(np.uint8)
    sample = draw_sample(SIZES, DOMAINS, 10**6, 10**6, seed=0)
    ok = np.ones(len(SIZES), bool)
    ok[2] = False
    values, ests = estimates(scores_from_hits(hits, sample, ok), sample)
    correct = full_correct(hits, SIZES)
    correct[2] = -1
    assert ests["global"].value == pytest.approx(summarize(correct, SIZES, digits=10)["global"])
    assert np.isnan(values["local"][2])


@pytest.fixture(scope="module")
def real_hits() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Every model's hits on every pooled test image: the global model, FT and LP on 40 digits clients."""
    cfg = from_dict(
        {
            "data": {"benchmark": "digits-quick", "num_clients": 40, "min_client_size": 20},
            "federated": {"rounds": 8},
            "personalize": {"epochs": 3, "methods": ["ft", "lp"]},
            "runtime": {"engine": "loop"},
        }
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the hits below are replayed many times; their numbers need no particular threads
    fed = build_federation(cfg.data, cfg.seed)
    model = build_model(cfg.model, fed.input_shape, fed.num_classes, cfg.seed)
    weights = run_global_stage(model, fed, cfg.federated, cfg.seed)[0]
    pool = EvalPool.of(fed)
    model.load_state_dict(weights)
    glob = hits_per_image(model, pool)
    out = {"global-model": np.tile(glob, (fed.num_clients, 1))}
    for method in ("ft", "lp"):
        rows = []
        for c in fed.clients:
            w = personalize_client(
                model,
                weights,
                recipe(method),
                cfg.method_params(method),
                cfg.personalize,
                c.train,
                0,
                c.client_id,
                "head",
            )
            model.load_state_dict(w)
            rows.append(hits_per_image(model, pool))
        out[method] = np.stack(rows).astype(np.uint8)
    torch.set_num_threads(threads)
    return out, pool.sizes, domain_numbers(fed)


DRAWS = 40
MIN_COVERAGE = 0.85  # nominal 95%; measured 0.95-1.0 over 40 draws (docs/evaluation.md)


def hardness(hits: dict[str, np.ndarray], sizes: np.ndarray) -> np.ndarray:
    """The global model's accuracy per client: what screens worst's clients."""
    return full_correct(hits["global-model"][:1], sizes)[0] / sizes


def test_worst_screens_the_global_models_hardest_clients_and_audits_the_rest(real_hits) -> None:
    hits, sizes, domains = real_hits
    hard = hardness(hits, sizes)
    sample = draw_sample(sizes, domains, 120, 8, seed=0, hardness=hard)
    assert sample.screened is not None and sample.screened.sum() == 4
    screened = set(sample.clients[sample.screened].tolist())
    assert screened == set(np.lexsort((np.arange(len(sizes)), hard))[:4].tolist())
    audits = {tuple(draw_sample(sizes, domains, 120, 8, seed=d, hardness=hard).clients.tolist()) for d in range(5)}
    assert len(audits) > 1  # the audit half is random
    for method, h in hits.items():  # a minimum over a subset of clients never lies below the full one
        full = summarize(full_correct(h, sizes), sizes, digits=10)["worst"]
        _, ests = estimates(scores_from_hits(h, sample), sample)
        assert ests["worst"].value >= full - 1e-9, method


def test_sampled_intervals_cover_the_full_matrix_on_a_real_federation(real_hits) -> None:
    hits, sizes, domains = real_hits
    n = len(sizes)
    covered: dict[tuple[str, str], int] = {}
    worst_deviation = 0.0
    hard = hardness(hits, sizes)
    for draw in range(DRAWS):
        sample = draw_sample(sizes, domains, 120, 8, seed=draw, hardness=hard)
        assert sample.fraction < 0.5 and len(sample.clients) < n - 1  # a real subsample, not the whole
        for method, h in hits.items():
            full = summarize(full_correct(h, sizes), sizes, digits=10, domains=domains)
            _, ests = estimates(scores_from_hits(h, sample), sample)
            for metric, est in ests.items():
                se, lo, hi = interval(est, sample.fraction)
                inside = lo - 1e-9 <= full[metric] <= hi + 1e-9
                covered[(method, metric)] = covered.get((method, metric), 0) + inside
                if se > 0 and est.gap == 0:
                    worst_deviation = max(worst_deviation, abs(est.value - full[metric]) / se)
    coverage = {k: v / DRAWS for k, v in covered.items()}
    print("coverage over", DRAWS, "draws:", {f"{m}/{k}": round(c, 3) for (m, k), c in sorted(coverage.items())})
    print("largest |estimate - full| in standard errors:", round(worst_deviation, 2))
    metrics = {k for _, k in coverage}
    assert {"global", "global_balanced", "worst", "average", "average3", *DOMAIN_SPLIT} <= metrics
    low = {k: c for k, c in coverage.items() if c < MIN_COVERAGE}
    assert not low, f"coverage below {MIN_COVERAGE}: {low}"


def test_a_wrong_variance_would_be_caught(real_hits) -> None:
    """The coverage check can fail: with the sampling error understated fourfold it does."""
    hits, sizes, domains = real_hits
    inside = 0
    for draw in range(DRAWS):
        sample = draw_sample(sizes, domains, 120, 8, seed=draw)
        full = summarize(full_correct(hits["ft"], sizes), sizes, digits=10, domains=domains)["global"]
        _, ests = estimates(scores_from_hits(hits["ft"], sample), sample)
        se = successive_difference_se(ests["global"].z, sample.fraction) / 4
        inside += abs(ests["global"].value - full) <= Z95 * se
    assert inside / DRAWS < MIN_COVERAGE


def test_client_intervals_come_from_resampling_clients(real_hits) -> None:
    hits, sizes, domains = real_hits
    correct = full_correct(hits["ft"], sizes)
    summary = summarize(correct, sizes, domains=domains)
    from pftlab.evaluate.metrics import per_client

    values = per_client(correct, sizes, domains)
    stated = method_intervals(summary, values, resample_weights(len(sizes), 1000, 0))
    local = values["local"]
    analytic = local.std(ddof=1) / math.sqrt(len(local))  # the bootstrap's large-sample value
    assert stated["local"]["se_clients"] == pytest.approx(analytic, rel=0.15)
    assert "se_sampling" not in stated["local"]  # full mode: no sampling error
    assert stated["worst"]["ci95"][0] <= summary["worst"] <= stated["worst"]["ci95"][1]


def test_sampled_scores_from_rows_match_replayed_hits(real_hits) -> None:
    """What a chunk stores (own hits, packed sample bits, sampled clients' counts) rebuilds the scores."""
    hits, sizes, domains = real_hits
    sample = draw_sample(sizes, domains, 120, 8, seed=0)
    replay = scores_from_hits(hits["ft"], sample)
    rebuilt = SampledScores.empty(len(sizes), len(sample.images), len(sample.clients))
    for i in range(len(sizes)):
        rebuilt.set_row(
            i,
            {
                "local": int(replay.local_hits[i]),
                "sample": pack_bits(replay.sample_hits[i]),
                "clients": replay.client_hits[i].tolist(),
            },
        )
    for name in ("local_hits", "sample_hits", "client_hits", "ok"):
        assert np.array_equal(getattr(rebuilt, name), getattr(replay, name)), name
