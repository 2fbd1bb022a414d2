"""xltransfer: a benchmark harness for cross-lingual transfer with parameter-efficient modules.

The Python API, ``xltransfer.plan(grid)``, ``xltransfer.run(grid)`` and ``xltransfer.results()``,
lives in :mod:`xltransfer.api` (with ``records`` and ``report``); it is imported on first use, so
``import xltransfer`` stays light. ``plan`` and ``results`` are also the harness's modules of those
names, made callable (``xltransfer.api.make_callable``).
"""

import logging as _logging

from xltransfer import cpu as _cpu

__version__ = "0.1.0"

# before torch initialises: the same CPU kernels on every x86-64 machine (xltransfer.cpu)
_cpu.pin_dispatch()
# the adapters library warns on every forward pass of a model that holds inactive adapters, which
# the harness does on purpose (pieces for other languages stay loaded but inactive; plan counts
# parameters on such models): silenced for the CLI and the API alike
_logging.getLogger("adapters.model_mixin").setLevel(_logging.ERROR)

_API = ("plan", "run", "results")
_MODULES = ("plan", "results")


def __getattr__(name: str):
    if name in _MODULES:
        import importlib

        return importlib.import_module(f"xltransfer.{name}")
    if name in _API:
        from xltransfer import api

        return getattr(api, name)
    raise AttributeError(f"module 'xltransfer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
