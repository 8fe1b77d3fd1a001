"""Where tensors compute and in what precision: `runtime.device` and `runtime.precision`.

A run sets both once (`using(...)`); the code that makes tensors from arrays (`on_device`) and
the code that runs forward passes (`autocast()`) reads the current setting, so every stage —
FedAvg, personalization, the batched engine, features, evaluation, distortion — computes on the
same device without a device argument threaded through every call. Weights come back to the CPU
only to be saved. The default, `cpu` / `fp32`, is today's computation bit for bit: `on_device`
returns the CPU tensor itself and `autocast()` is a null context.

Precision: `fp32`; `bf16` runs forward passes (and so their backward) under
`torch.autocast(dtype=bfloat16)`, keeping fp32 weights, optimizer state and metric sums; `tf32`
lets CUDA matmuls and convolutions use TensorFloat-32 (CUDA only).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import torch

from pftlab.core.errors import UserError

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N, mps"
PRECISIONS = ("fp32", "bf16", "tf32")


@dataclass(frozen=True)
class Compute:
    device: torch.device
    precision: str = "fp32"

    def describe(self) -> dict[str, str]:
        """What run.json records: the device, its name, the precision."""
        return {"device": str(self.device), "device_name": device_name(self.device), "precision": self.precision}


CPU_FP32 = Compute(torch.device("cpu"))
_CURRENT: ContextVar[Compute | None] = ContextVar("pftlab_compute", default=None)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(spec: str) -> torch.device:
    """`auto` is CUDA if present, else MPS, else the CPU; a named device that is not there is a one-line error."""
    spec = spec.strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise UserError(f"runtime.device: unknown device {spec!r}; allowed: {DEVICE_CHOICES}") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserError(f"runtime.device = {spec!r} but this machine has no CUDA device; use 'auto' or 'cpu'")
        if device.index is not None and device.index >= count:
            raise UserError(f"runtime.device = {spec!r} but this machine has {count} CUDA device(s), cuda:0..")
        return device
    if device.type == "mps":
        if not _mps_available():
            raise UserError(f"runtime.device = {spec!r} but MPS is not available here; use 'auto' or 'cpu'")
        return device
    raise UserError(f"runtime.device: unsupported device {spec!r}; allowed: {DEVICE_CHOICES}")


def resolve(device: str, precision: str) -> Compute:
    """The setting a config asks for, checked against this machine before any compute."""
    dev = resolve_device(device)
    if precision not in PRECISIONS:
        raise UserError(f"runtime.precision: unknown {precision!r}; allowed: {', '.join(PRECISIONS)}")
    if precision == "tf32" and dev.type != "cuda":
        raise UserError(f"runtime.precision = 'tf32' needs a CUDA device; this run computes on {dev}")
    return Compute(dev, precision)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return str(torch.cuda.get_device_name(device))
    if device.type == "mps":
        return "Apple MPS"
    import platform

    return platform.processor() or platform.machine() or "cpu"


def current() -> Compute:
    """The setting of the enclosing `using` block; outside any, the CPU in fp32."""
    return _CURRENT.get() or CPU_FP32


@contextlib.contextmanager
def using(compute: Compute) -> Iterator[Compute]:
    """Compute on `compute.device` in `compute.precision` inside the block (TF32 flags restored after)."""
    token = _CURRENT.set(compute)
    matmul = torch.backends.cuda.matmul.allow_tf32
    cudnn = torch.backends.cudnn.allow_tf32
    if compute.precision == "tf32":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    try:
        yield compute
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = cudnn
        _CURRENT.reset(token)


def on_device(t: torch.Tensor) -> torch.Tensor:
    """`t` on the current device (the tensor itself when it is there already)."""
    device = current().device
    return t if t.device == device else t.to(device)


def autocast() -> contextlib.AbstractContextManager[object]:
    """The forward-pass context of the current precision: bf16 autocast, or nothing."""
    c = current()
    if c.precision == "bf16":
        return torch.autocast(device_type=c.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
