"""xltransfer: a benchmark harness for cross-lingual transfer with parameter-efficient modules.

The Python API: ``xltransfer.plan(grid)``, ``xltransfer.run(grid)``, ``xltransfer.results()``,
``xltransfer.records()`` and ``xltransfer.report(grid)``, plain functions of :mod:`xltransfer.api`
(which imports nothing heavy until one is called, so ``import xltransfer`` stays light).
"""

import logging as _logging

from xltransfer import cpu as _cpu

# before torch initialises: the same CPU kernels on every x86-64 machine (xltransfer.cpu)
_cpu.pin_dispatch()
# the adapters library warns on every forward pass of a model that holds inactive adapters, which
# the harness does on purpose (pieces for other languages stay loaded but inactive; plan counts
# parameters on such models): silenced for the CLI and the API alike
_logging.getLogger("adapters.model_mixin").setLevel(_logging.ERROR)

from xltransfer.api import plan, records, report, results, run  # noqa: E402
from xltransfer.version import __version__  # noqa: E402

__all__ = ["__version__", "plan", "records", "report", "results", "run"]
