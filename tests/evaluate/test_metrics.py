"""Cross-client metrics on hand-made hit-count matrices, with every expected value worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pftlab.evaluate.distortion import KEYS as DISTORTION_KEYS
from pftlab.evaluate.metrics import DEFINITIONS, DOMAIN_SPLIT, accuracy_matrix, per_client, summarize

# Three clients with unequal test sizes; row i = model i, column j = client j's test set.
SIZES = np.array([10, 20, 50])
CORRECT = np.array(
    [
        [8, 10, 20],  # A = [80, 50, 40]
        [5, 18, 30],  # A = [50, 90, 60]
        [4, 12, 45],  # A = [40, 60, 90]
    ]
)


def test_accuracy_matrix_is_percent_of_column_size() -> None:
    expected = np.array([[80.0, 50.0, 40.0], [50.0, 90.0, 60.0], [40.0, 60.0, 90.0]])
    np.testing.assert_allclose(accuracy_matrix(CORRECT, SIZES), expected)


def test_per_client_by_hand() -> None:
    pc = per_client(CORRECT, SIZES)
    np.testing.assert_allclose(pc["local"], [80.0, 90.0, 90.0])
    # global: hits on the other clients' samples / their number
    np.testing.assert_allclose(
        pc["global"],
        [100 * (10 + 20) / (20 + 50), 100 * (5 + 30) / (10 + 50), 100 * (4 + 12) / (10 + 20)],
    )
    np.testing.assert_allclose(pc["global_balanced"], [(50 + 40) / 2, (50 + 60) / 2, (40 + 60) / 2])
    np.testing.assert_allclose(pc["worst"], [40.0, 50.0, 40.0])


def test_summarize_by_hand_unequal_sizes() -> None:
    local = (80 + 90 + 90) / 3  # 86.6667
    global_ = (100 * 30 / 70 + 100 * 35 / 60 + 100 * 16 / 30) / 3  # (42.857 + 58.333 + 53.333) / 3 = 51.5079
    global_balanced = (45 + 55 + 50) / 3  # 50.0
    worst = (40 + 50 + 40) / 3  # 43.3333
    c_std = math.sqrt(((80 - local) ** 2 + (90 - local) ** 2 + (90 - local) ** 2) / 3)  # sqrt(200 / 9) = 4.7140
    expected = {
        "local": local,
        "global": global_,
        "global_balanced": global_balanced,
        "worst": worst,
        "c_std": c_std,
        "local_min": 80.0,  # the worst-off client's own accuracy
        "global_std": math.sqrt(((45 - 50) ** 2 + (55 - 50) ** 2 + 0) / 3),  # balanced 45, 55, 50: 4.0825
        "average_balanced": (local + global_balanced) / 2,  # 68.3333
        "average": (local + global_) / 2,  # 69.0873
        "average3": (local + global_ + worst) / 3,  # 60.5026
    }
    out = summarize(CORRECT, SIZES)
    assert set(out) == set(expected) == set(DEFINITIONS) - set(DISTORTION_KEYS) - set(DOMAIN_SPLIT)
    for key, value in expected.items():
        assert out[key] == pytest.approx(value, abs=1e-3), key
    # sample weighting matters here: client 0's 50-sample neighbour outweighs its 20-sample one
    assert abs(out["global"] - out["global_balanced"]) > 1.0
    assert out["average"] != pytest.approx(out["average3"], abs=1e-3)


def test_summarize_equal_sizes_global_equals_balanced() -> None:
    sizes = np.array([20, 20])
    correct = np.array([[18, 10], [5, 15]])  # A = [[90, 50], [25, 75]]
    out = summarize(correct, sizes)
    # with two clients "the others" is one client, so global, balanced and worst all equal A[i, j != i]
    assert out["local"] == pytest.approx((90 + 75) / 2, abs=1e-3)  # 82.5
    assert out["global"] == pytest.approx((50 + 25) / 2, abs=1e-3)  # 37.5
    assert out["global_balanced"] == pytest.approx(out["global"], abs=1e-3)
    assert out["worst"] == pytest.approx(out["global"], abs=1e-3)
    assert out["c_std"] == pytest.approx(7.5, abs=1e-3)  # |90 - 82.5| = |75 - 82.5| = 7.5
    assert out["average"] == pytest.approx((82.5 + 37.5) / 2, abs=1e-3)  # 60.0
    assert out["average3"] == pytest.approx((82.5 + 37.5 + 37.5) / 3, abs=1e-3)  # 52.5


def test_summarize_four_clients_equal_sizes() -> None:
    sizes = np.array([10, 10, 10, 10])
    correct = np.array(
        [
            [9, 5, 6, 7],  # others: 50, 60, 70
            [2, 8, 4, 6],  # others: 20, 40, 60
            [3, 3, 10, 3],  # others: 30, 30, 30
            [1, 5, 9, 6],  # others: 10, 50, 90
        ]
    )
    out = summarize(correct, sizes)
    local = (90 + 80 + 100 + 60) / 4  # 82.5
    balanced = (60 + 40 + 30 + 50) / 4  # 45.0; equal sizes, so global is the same
    worst = (50 + 20 + 30 + 10) / 4  # 27.5
    c_std = math.sqrt((7.5**2 + 2.5**2 + 17.5**2 + 22.5**2) / 4)  # sqrt(875 / 4) = 14.7902
    assert out["local"] == pytest.approx(local, abs=1e-3)
    assert out["global"] == pytest.approx(balanced, abs=1e-3)
    assert out["global_balanced"] == pytest.approx(balanced, abs=1e-3)
    assert out["worst"] == pytest.approx(worst, abs=1e-3)
    assert out["c_std"] == pytest.approx(c_std, abs=1e-3)
    assert out["local_min"] == 60.0  # client 3
    assert out["global_std"] == pytest.approx(math.sqrt((15**2 + 5**2 + 15**2 + 5**2) / 4), abs=1e-3)  # 11.1803
    assert out["average"] == pytest.approx((local + balanced) / 2, abs=1e-3)  # 63.75
    assert out["average3"] == pytest.approx((local + balanced + worst) / 3, abs=1e-3)  # 51.6667


def test_summarize_rounds_to_digits() -> None:
    out = summarize(CORRECT, SIZES, digits=2)
    assert out["local"] == 86.67 and out["average3"] == 60.5


@pytest.mark.parametrize(
    ("correct", "sizes"),
    [
        (np.ones((2, 3)), np.array([10, 10, 10])),  # non-square
        (np.ones((3, 2)), np.array([10, 10])),  # non-square, other way
        (np.ones((3, 3)), np.array([10, 10])),  # one size short
        (np.ones((1, 1)), np.array([10])),  # a single client has no "others"
    ],
    ids=["2x3", "3x2", "sizes-short", "single-client"],
)
def test_bad_shapes_raise_value_error(correct: np.ndarray, sizes: np.ndarray) -> None:
    with pytest.raises(ValueError, match="square matrix over >= 2 clients"):
        per_client(correct, sizes)
    with pytest.raises(ValueError):
        summarize(correct, sizes)
