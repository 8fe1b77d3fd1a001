"""runtime.device and runtime.precision: resolution, one-line refusals, and the CPU path a run takes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode

from pftlab.cli import main
from pftlab.core import compute
from pftlab.core.errors import UserError
from pftlab.experiment.config import load_config
from pftlab.experiment.runner import run_experiment


def test_auto_is_the_cpu_without_an_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(compute, "_mps_available", lambda: False)
    assert compute.resolve_device("auto") == torch.device("cpu")
    assert compute.resolve_device(" CPU ") == torch.device("cpu")


def test_auto_prefers_cuda_then_mps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert compute.resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(compute, "_mps_available", lambda: True)
    assert compute.resolve_device("auto") == torch.device("mps")


@pytest.mark.parametrize(
    ("spec", "cuda", "count", "message"),
    [
        ("cuda", False, 0, "runtime.device = 'cuda' but this machine has no CUDA device; use 'auto' or 'cpu'"),
        ("cuda:2", True, 2, "runtime.device = 'cuda:2' but this machine has 2 CUDA device(s), cuda:0.."),
        ("mps", False, 0, "runtime.device = 'mps' but MPS is not available here; use 'auto' or 'cpu'"),
        ("tpu", False, 0, "runtime.device: unknown device 'tpu'; allowed: auto, cpu, cuda, cuda:N, mps"),
        ("meta", False, 0, "runtime.device: unsupported device 'meta'; allowed: auto, cpu, cuda, cuda:N, mps"),
    ],
)
def test_a_device_that_is_not_there_is_one_line(
    monkeypatch: pytest.MonkeyPatch, spec: str, cuda: bool, count: int, message: str
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(compute, "_mps_available", lambda: False)
    with pytest.raises(UserError) as err:
        compute.resolve_device(spec)
    assert str(err.value) == message


def test_tf32_needs_cuda() -> None:
    with pytest.raises(UserError, match=r"runtime.precision = 'tf32' needs a CUDA device; this run computes on cpu"):
        compute.resolve("cpu", "tf32")


def test_a_missing_device_stops_the_cli_before_any_compute(
    quickstart: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "run"
    assert main(["run", str(quickstart), "--set", 'runtime.device="cuda:0"', "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["pftlab: error: runtime.device = 'cuda:0' but this machine has no CUDA device; use 'auto' or 'cpu'"]
    assert not out.exists()


def test_the_context_sets_and_restores_the_setting() -> None:
    assert compute.current() == compute.CPU_FP32
    with compute.using(compute.Compute(torch.device("cpu"), "bf16")):
        assert compute.current().precision == "bf16"
        with compute.autocast():
            y = torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3))
        assert y.dtype == torch.bfloat16
    assert compute.current() == compute.CPU_FP32
    with compute.autocast():
        assert torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3)).dtype == torch.float32


class _Devices(TorchFunctionMode):
    """Every tensor any torch function returns during a run, by device type, and where the heavy ops ran."""

    COMPUTE = ("conv", "linear", "matmul", "mm", "cross_entropy", "softmax")

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, int] = {}
        self.compute: dict[str, set[str]] = {}

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        name = getattr(func, "__name__", "")
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor):
                self.seen[t.device.type] = self.seen.get(t.device.type, 0) + 1
                if any(k in name for k in self.COMPUTE):
                    self.compute.setdefault(t.device.type, set()).add(name)
        return out


def _tiny(quickstart: Path, tiny: list[str], *extra: str) -> Any:
    return load_config(quickstart, [*tiny, 'personalize.methods=["ft", "lp-ft"]', *extra])


DEVICE = os.environ.get("PFTLAB_TEST_DEVICE", "cpu")  # scripts/device_check.sh sets cuda


@pytest.mark.device
def test_every_tensor_of_a_run_lives_on_the_configured_device(
    quickstart: Path, tiny: list[str], tmp_path: Path
) -> None:
    """The heavy ops (convolutions, matmuls, losses) of a whole run, recipes and a baseline included, run
    on the configured device; on the CPU every tensor any torch function returns is a CPU tensor."""
    methods = 'personalize.methods=["ft", "lp-ft", "wise-ft", "soup-ft", "lss-ft", "sparse-ft", "fedrep"]'
    cfg = load_config(quickstart, [*tiny, methods, f'runtime.device="{DEVICE}"'])
    mode = _Devices()
    with mode:
        run_experiment(cfg, tmp_path / "run")
    device = torch.device(DEVICE).type
    assert mode.seen.get(device, 0) > 1000
    assert set(mode.compute) == {device} and {"conv2d", "linear"} <= mode.compute[device], mode.compute
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["device"].startswith(device) and info["precision"] == "fp32" and info["device_name"]
    if device == "cpu":
        assert set(mode.seen) == {"cpu"}


def test_explicit_cpu_and_auto_give_the_same_numbers_and_bf16_stays_close(
    quickstart: Path, tiny: list[str], tmp_path: Path
) -> None:
    auto = run_experiment(_tiny(quickstart, tiny), tmp_path / "auto")
    cpu = run_experiment(_tiny(quickstart, tiny, 'runtime.device="cpu"'), tmp_path / "cpu")
    assert auto["methods"] == cpu["methods"]
    bf16 = run_experiment(_tiny(quickstart, tiny, 'runtime.precision="bf16"'), tmp_path / "bf16")
    assert json.loads((tmp_path / "bf16" / "run.json").read_text())["precision"] == "bf16"
    for method, metrics in auto["methods"].items():
        assert abs(bf16["methods"][method]["local"] - metrics["local"]) < 15  # bf16 rounding, not a different model
    assert bf16["methods"] != auto["methods"]  # it did compute in bf16
