"""The same bytes from a CPU run on any x86-64 machine: pin what the math libraries pick per machine.

Three choices change float rounding from one CPU to another, and with it every trained weight and
score (the quickstart gave a backbone dev perplexity of 150.7 on an Intel Xeon, 142.5 on an AMD
EPYC): PyTorch's vectorised kernels are chosen by the CPU's instruction set (AVX-512 or AVX2), MKL's
GEMM code path by vendor and instruction set, and reductions are split by the number of threads.
``import xltransfer`` (which the ``xlt`` entry point does first) pins the first two before torch
initialises them: ``ATEN_CPU_CAPABILITY=avx2``, ``MKL_CBWR=AVX2`` (MKL's conditional numerical
reproducibility) and ``ONEDNN_MAX_CPU_ISA=AVX2`` -- AVX2 being what every x86-64 CPU of the last
decade runs (Intel since Haswell, AMD since Zen). A run on the CPU then uses ``XLT_CPU_THREADS``
intra-op threads (default 2), whatever the core count. ``XLT_CPU_NATIVE=1`` leaves all of it to the
libraries: possibly faster, bytes tied to the machine. GPU kernels are untouched.
"""

from __future__ import annotations

import logging
import os
import platform

log = logging.getLogger(__name__)

PINNED = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
KERNELS = "AVX2"  # what torch.backends.cpu.get_cpu_capability() reports under the pin
DEFAULT_THREADS = 2  # the machine the README's figures were measured on has 2 cores


def native() -> bool:
    """``XLT_CPU_NATIVE=1``: the libraries choose kernels and threads for this machine."""
    return os.environ.get("XLT_CPU_NATIVE", "") not in ("", "0")


def pin_dispatch() -> None:
    """Set the kernel choices in the environment; effective if torch has not computed yet."""
    if native() or platform.machine().lower() not in ("x86_64", "amd64"):
        return
    os.environ.update(PINNED)


def threads() -> int:
    """The intra-op thread count of a CPU run (``XLT_CPU_THREADS``)."""
    from xltransfer.errors import XltError

    value = os.environ.get("XLT_CPU_THREADS", str(DEFAULT_THREADS))
    if not value.isdigit() or int(value) < 1:
        raise XltError(f"XLT_CPU_THREADS={value!r}: give a number of threads (1 or more)")
    return int(value)


def pin_threads(device) -> None:
    """Before a run on ``device`` trains: on the CPU, the fixed thread count, and a warning when the
    kernels were chosen before the pin (torch computed before ``import xltransfer``)."""
    import torch

    if native() or torch.device(device).type != "cpu":
        return
    torch.set_num_threads(threads())
    chosen = torch.backends.cpu.get_cpu_capability()
    if os.environ.get("ATEN_CPU_CAPABILITY") == PINNED["ATEN_CPU_CAPABILITY"] and chosen != KERNELS:
        log.warning(
            "torch runs %s kernels, not %s (the CPU lacks them, or torch computed before `import "
            "xltransfer`): this run's numbers may differ from other machines'",
            chosen,
            KERNELS,
        )
