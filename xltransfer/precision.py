"""Numeric precision of training and prediction: fp32, or mixed precision with autocast.

A grid's ``precision:`` names it: ``auto`` (the default) is bf16 autocast on a GPU that supports
it, fp16 autocast with a gradient scaler on older GPUs, and plain fp32 on a CPU, so CPU runs are
bit-for-bit what they were before mixed precision existed. Weights and optimiser states stay in
fp32 in every mode (autocast only lowers the matmuls), so a stored piece loads the same way
whatever trained it.

The executor activates the run's precision around each piece and each cell (``using``); the one
training loop and the evaluation helpers read it (``current``). Methods and plugins therefore get
mixed precision without passing anything through their calls to ``fit``.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

CHOICES = ("auto", "fp32", "bf16", "fp16")
DTYPE_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


@dataclass(frozen=True)
class Precision:
    """A resolved precision (never ``auto``) on one kind of device."""

    name: str  # "fp32" | "bf16" | "fp16"
    device_type: str = "cpu"  # torch device type: "cpu", "cuda", ...

    @property
    def dtype_name(self) -> str:
        """What result records carry in ``dtype``: the dtype the matmuls ran in."""
        return DTYPE_NAMES[self.name]

    @property
    def mixed(self) -> bool:
        return self.name != "fp32"

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward pass's context: nothing in fp32, else autocast to the low dtype."""
        if not self.mixed:
            return contextlib.nullcontext()
        import torch

        dtype = torch.bfloat16 if self.name == "bf16" else torch.float16
        return torch.autocast(self.device_type, dtype=dtype)

    def grad_scaler(self) -> Any:
        """fp16 needs its losses scaled so small gradients do not underflow (bf16 has fp32's range)."""
        if self.name != "fp16":
            return None
        import torch

        return torch.amp.GradScaler(self.device_type)


FP32 = Precision("fp32")
_active: contextvars.ContextVar[Precision] = contextvars.ContextVar("xlt_precision", default=FP32)


def resolve(declared: str, device) -> Precision:
    """The precision a run uses on ``device`` for the grid's ``precision:`` value."""
    import torch

    device = torch.device(device)
    if declared not in CHOICES:
        raise ValueError(f"unknown precision '{declared}' (choose {', '.join(CHOICES)})")
    if declared == "auto":
        if device.type != "cuda":
            return Precision("fp32", device.type)
        return Precision("bf16" if torch.cuda.is_bf16_supported() else "fp16", "cuda")
    return Precision(declared, device.type)


def current() -> Precision:
    """The precision activated by the executor (fp32 outside any run)."""
    return _active.get()


@contextlib.contextmanager
def using(precision: Precision) -> Iterator[Precision]:
    """Train and predict in ``precision`` inside the block. On CUDA, mixed precision also lets the
    matmuls left in fp32 use TF32 tensor cores; an explicit fp32 run keeps true fp32 matmuls."""
    token = _active.set(precision)
    restore = None
    if precision.device_type == "cuda":
        import torch

        restore = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("high" if precision.mixed else "highest")
    try:
        yield precision
    finally:
        _active.reset(token)
        if restore is not None:
            import torch

            torch.set_float32_matmul_precision(restore)
