"""The machine behind a measured time: training seconds mean little without it.

Recorded with every trained piece and shown beside the efficiency table's seconds, so a reader
compares seconds measured on the same hardware only.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path


def describe_hardware(device) -> str:
    """A GPU's name ("NVIDIA H100 80GB HBM3"); for a CPU its model, the cores this process may use and
    torch's thread count, e.g. "CPU Intel(R) Xeon(R) Gold 6338, 2 cores, 2 torch threads"."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type != "cpu":
        return device.type
    return f"CPU {_cpu_model()}, {_usable_cores()} cores, {torch.get_num_threads()} torch threads"


@functools.cache
def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            name, _, value = line.partition(":")
            if name.strip() in ("model name", "Processor", "cpu model") and value.strip():
                return " ".join(value.split())
    return platform.processor() or platform.machine() or "unknown"


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def load_average() -> float | None:
    """The machine's one-minute load average (None where the OS gives none): recorded at the start
    and end of a piece's training, so a report can say which seconds were measured on a busy machine."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def usable_cores() -> int:
    """The cores this process may run on."""
    return _usable_cores()


# A run's own training keeps up to one thread per core busy, so on an idle machine the load average
# sits near the core count (1.9-2.6 on 2 cores with 2 torch threads, rendering a board alone); other
# jobs show as load beyond half as many again, which slows a piece's wall-clock time by a third or more.
BUSY_LOAD_PER_CORE = 1.5


def under_load(loads: list[float | None], cores: int) -> bool:
    """Whether the load average at the start or end of a measurement exceeded 1.5x the core count:
    other jobs shared the cores, and wall-clock seconds overstate the cost."""
    return any(load is not None and load > BUSY_LOAD_PER_CORE * cores for load in loads)
