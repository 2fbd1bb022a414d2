"""xltransfer: a benchmark harness for cross-lingual transfer with parameter-efficient modules.

The Python API: ``xltransfer.plan(grid)``, ``xltransfer.run(grid)``, ``xltransfer.results()``,
``xltransfer.records()`` and ``xltransfer.report(grid)``, plain functions of :mod:`xltransfer.api`
(which imports nothing heavy until one is called, so ``import xltransfer`` stays light).
"""

from xltransfer.api import plan, records, report, results, run
from xltransfer.version import __version__

__all__ = ["__version__", "plan", "records", "report", "results", "run"]
