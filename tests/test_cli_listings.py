"""`pftlab models` and `pftlab data list`: every registered component, with the package it comes from."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator

import pytest
from torch import nn

from pftlab.cli import main
from pftlab.data.benchmarks import BENCHMARKS, digits_quick, register_benchmark
from pftlab.models import MODELS, ModelSpec, register_model


def _lines(text: str) -> dict[str, str]:
    """Each model's two lines joined, by model name."""
    rows = text.splitlines()
    return {r.split()[0]: r + "\n" + rows[k + 1] for k, r in enumerate(rows) if r.split() and r.split()[0] in MODELS}


@pytest.fixture
def plugin_models() -> Iterator[None]:
    """Two models as a plugin would add them: one that takes any input, one that refuses every input."""
    register_model(
        ModelSpec("tiny-linear", "one linear layer", lambda cfg, shape, k: _Linear(shape, k)), origin="my-plugin"
    )
    register_model(
        ModelSpec("seq-only", "wants sequences", lambda cfg, shape, k: nn.Identity(), lambda s: "needs (T, D) input"),
        origin="my-plugin",
    )
    yield
    MODELS.unregister("tiny-linear")
    MODELS.unregister("seq-only")


class _Linear(nn.Module):
    def __init__(self, shape: tuple[int, ...], k: int) -> None:
        super().__init__()
        self.flat, self.head = nn.Flatten(), nn.Linear(math.prod(shape), k)

    def forward(self, x):
        return self.head(self.flat(x))


def test_models_lists_every_model_with_origin_parameters_and_flops(
    plugin_models: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("on digits-quick (quick size): input (1, 8, 8), 10 classes; forward FLOPs per image")
    lines = _lines(out)
    assert set(lines) == set(MODELS.names())
    # MLP on 8x8 digits: 64 -> 128 -> 128 -> 10; a multiply-add is 2 FLOPs
    assert "from pftlab; 26,122 parameters, 51,712 FLOPs" in lines["mlp"]
    assert "from pftlab;" in lines["cnn"] and "FLOPs" in lines["cnn"]
    assert "from my-plugin; 650 parameters, 1,280 FLOPs" in lines["tiny-linear"]
    assert "from my-plugin; does not take this input: needs (T, D) input" in lines["seq-only"]
    assert "'auto' (the default) picks cnn" in out


def test_models_follows_the_benchmark_and_model_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--benchmark", "digits-quick", "--set", "model.hidden=16", "--set", "model.layers=1"]) == 0
    assert "from pftlab; 1,210 parameters, 2,368 FLOPs" in _lines(capsys.readouterr().out)["mlp"]  # 64 -> 16 -> 10


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["models", "--benchmark", "bogus"], "unknown benchmark 'bogus'"),
        (["models", "--set", "model.bogus=1"], "unknown key 'model.bogus'"),
        (["models", "--benchmark", "image-folder"], "data.path is required"),
    ],
)
def test_models_mistakes_are_one_line(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("pftlab: error: ") and err.count("\n") == 1 and says in err


def test_data_list_shows_each_benchmarks_origin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # one line per benchmark
    register_benchmark(dataclasses.replace(digits_quick.BENCHMARK, name="plug-digits"), origin="my-plugin")
    try:
        assert main(["data", "list"]) == 0
        out = capsys.readouterr().out
    finally:
        BENCHMARKS.unregister("plug-digits")
    assert "origin" in out
    out, sources = out.split("sources 'pftlab data fetch' downloads")  # the benchmarks, then the fetchable sources
    assert "heart" in sources and "cifar100" in sources
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}
    assert rows["plug-digits"][1] == "my-plugin"
    assert rows["digits-quick"][1] == "pftlab"
    for name in BENCHMARKS.names():  # installed plugins' benchmarks too
        assert rows[name][1] == BENCHMARKS.origin(name)
