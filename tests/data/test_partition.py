"""Partitioners on scikit-learn's bundled digits (1,797 samples, 10 classes, ~180 per class)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pftlab.core.errors import UserError
from pftlab.core.seeding import numpy_rng
from pftlab.data.partition import dirichlet, iid, pathological, split_indices
from pftlab.data.sources import sklearn_digits

Y: np.ndarray = sklearn_digits().y
N = len(Y)
GLOBAL = np.bincount(Y, minlength=10) / N
Parts = list[np.ndarray]


def rng(seed: int = 0) -> np.random.Generator:
    return numpy_rng(seed, "partition")


def assert_disjoint_cover(parts: Parts, n: int = N) -> None:
    counts = np.bincount(np.concatenate(parts), minlength=n)
    assert len(counts) == n and (counts == 1).all(), "every sample must belong to exactly one client"


def tv(part: np.ndarray) -> float:
    """Total-variation distance between a client's label distribution and the pool's."""
    return 0.5 * float(np.abs(np.bincount(Y[part], minlength=10) / len(part) - GLOBAL).sum())


PARTITIONERS: dict[str, Callable[[int], Parts]] = {
    "iid": lambda seed: iid(Y, 10, rng(seed)),
    "dirichlet-0.3": lambda seed: dirichlet(Y, 10, 0.3, rng(seed)),
    "dirichlet-1e4": lambda seed: dirichlet(Y, 25, 1e4, rng(seed)),
    "pathological-7x3": lambda seed: pathological(Y, 7, 3, rng(seed)),
    "pathological-5x2": lambda seed: pathological(Y, 5, 2, rng(seed)),
}


@pytest.mark.parametrize("name", PARTITIONERS)
def test_disjoint_cover_and_deterministic(name: str) -> None:
    parts = PARTITIONERS[name](0)
    assert_disjoint_cover(parts)
    again, other = PARTITIONERS[name](0), PARTITIONERS[name](1)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other, strict=True))


@given(
    num_clients=st.integers(1, 60),
    alpha=st.floats(0.01, 1000.0),
    seed=st.integers(0, 2**31),
)
@settings(max_examples=50, deadline=None)
def test_dirichlet_disjoint_cover_property(num_clients: int, alpha: float, seed: int) -> None:
    try:
        parts = dirichlet(Y, num_clients, alpha, rng(seed))
    except UserError:
        return
    assert len(parts) == num_clients and min(map(len, parts)) >= 1
    assert_disjoint_cover(parts)


@pytest.mark.parametrize("num_clients", [3, 7, 10, 100, 1797])
def test_iid_sizes_differ_by_at_most_one(num_clients: int) -> None:
    sizes = [len(p) for p in iid(Y, num_clients, rng())]
    assert len(sizes) == num_clients and max(sizes) - min(sizes) <= 1


def test_dirichlet_huge_alpha_is_near_global_and_small_alpha_is_skewed() -> None:
    # With alpha=1e4 each share is 1/10 with std ~1e-3, i.e. ~0.2 of a sample of a ~180-sample class;
    # only the rounding of the cut points moves a class count (by <= 1 of ~18), so a client's TV is
    # about 0.5 * 10 / 180 ~ 0.03 at worst. 0.05 holds that with margin, yet a plain random split
    # (iid) of the same sizes reaches TV ~0.15, so the bound does test the stratified behaviour.
    near = [tv(p) for seed in range(5) for p in dirichlet(Y, 10, 1e4, rng(seed))]
    assert max(near) < 0.05
    skewed = [tv(p) for seed in range(5) for p in dirichlet(Y, 10, 0.1, rng(seed))]
    assert np.mean(skewed) > 0.3 and np.mean(skewed) > 10 * np.mean(near)


@pytest.mark.parametrize(("num_clients", "k"), [(10, 1), (5, 2), (7, 3), (4, 10), (30, 4)])
def test_pathological_classes_per_client(num_clients: int, k: int) -> None:
    parts = pathological(Y, num_clients, k, rng())
    assert_disjoint_cover(parts)
    held = [set(np.unique(Y[p]).tolist()) for p in parts]
    assert all(len(h) == k for h in held), "each client holds exactly k distinct classes"
    assert set().union(*held) == set(range(10)), "every class has at least one holder"
    for c in range(10):  # a class is shared evenly by its holders
        shares = [int((Y[p] == c).sum()) for p in parts if c in set(Y[p].tolist())]
        assert max(shares) - min(shares) <= 1


def test_min_client_size_respected() -> None:
    assert min(map(len, iid(Y, 10, rng(), min_size=179))) >= 179
    first_draw = dirichlet(Y, 10, 0.5, rng(0), min_size=1)
    assert min(map(len, first_draw)) < 100  # so min_size=100 below forces at least one redraw
    redrawn = dirichlet(Y, 10, 0.5, rng(0), min_size=100)
    assert min(map(len, redrawn)) >= 100
    assert_disjoint_cover(redrawn)
    assert min(map(len, pathological(Y, 10, 2, rng(), min_size=150))) >= 150
    with pytest.raises(UserError, match="min_client_size=250"):  # 7 * 250 <= 1797, but the client sharing
        pathological(Y, 7, 3, rng(), min_size=250)  # one class three ways gets only ~240 samples


INFEASIBLE: list[tuple[str, Callable[[], Parts], str]] = [
    ("iid-more-clients", lambda: iid(Y, N + 1, rng()), f"{N + 1} clients.*{N} samples"),
    ("iid-min-size", lambda: iid(Y, 10, rng(), min_size=200), "at least 200 samples"),
    ("dirichlet-more-clients", lambda: dirichlet(Y, N + 1, 1.0, rng()), f"{N + 1} clients.*{N} samples"),
    ("pathological-min-size", lambda: pathological(Y, 10, 2, rng(), min_size=180), "at least 180 samples"),
    ("dirichlet-tiny-alpha", lambda: dirichlet(Y, 20, 1e-3, rng(), min_size=50), "alpha=0.001.*min_client_size=50"),
    ("dirichlet-alpha-0", lambda: dirichlet(Y, 10, 0.0, rng()), "alpha must be > 0"),
    ("dirichlet-alpha-neg", lambda: dirichlet(Y, 10, -1.0, rng()), "alpha must be > 0"),
    ("dirichlet-alpha-nan", lambda: dirichlet(Y, 10, float("nan"), rng()), "alpha must be > 0"),
    ("pathological-k-too-big", lambda: pathological(Y, 10, 11, rng()), r"classes_per_client.*\[1, 10\].*11"),
    ("pathological-k-0", lambda: pathological(Y, 10, 0, rng()), r"classes_per_client.*\[1, 10\].*got 0"),
    ("pathological-no-cover", lambda: pathological(Y, 3, 3, rng()), "cannot cover 10 classes"),
]


@pytest.mark.parametrize(("call", "message"), [c[1:] for c in INFEASIBLE], ids=[c[0] for c in INFEASIBLE])
def test_infeasible_requests_raise_fast(call: Callable[[], Parts], message: str) -> None:
    start = time.perf_counter()
    with pytest.raises(UserError, match=message):
        call()
    assert time.perf_counter() - start < 2.0


def digits_clients() -> Parts:
    return dirichlet(Y, 10, 1.0, rng(0))  # clients of ~180 samples with several, unevenly sized classes


@pytest.mark.parametrize(("val", "test"), [(0.1, 0.2), (0.2, 0.2), (0.15, 0.15), (0.0, 0.3), (0.25, 0.0)])
def test_split_indices_disjoint_cover_and_sizes(val: float, test: float) -> None:
    for i, client in enumerate(digits_clients()):
        tr, va, te = split_indices(client, Y, val, test, numpy_rng(0, "split", i))
        n = len(client)
        assert len(te) == round(n * test) and len(va) == round(n * val)
        assert np.array_equal(np.sort(np.concatenate([tr, va, te])), np.sort(client))
        assert len(np.unique(np.concatenate([tr, va, te]))) == n
        for c in np.unique(Y[client]):  # val is spread over what test left: within ~2 of its share
            n_c = int((Y[client] == c).sum())
            assert abs(int((Y[va] == c).sum()) - n_c * len(va) / n) <= 2


@pytest.mark.parametrize(("val", "test"), [(0.1, 0.2), (0.15, 0.3), (0.2, 0.1)])
def test_split_indices_test_split_is_stratified(val: float, test: float) -> None:
    for i, client in enumerate(digits_clients()):
        assert len(np.unique(Y[client])) >= 3
        _, _, te = split_indices(client, Y, val, test, numpy_rng(0, "split", i))
        for c in np.unique(Y[client]):
            n_c = int((Y[client] == c).sum())
            n_test_c = int((Y[te] == c).sum())
            assert abs(n_test_c - n_c * test) <= 1, f"client {i} class {c}: {n_test_c} of {n_c} in test"
