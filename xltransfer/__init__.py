"""xltransfer: a benchmark harness for cross-lingual transfer with parameter-efficient modules."""

__version__ = "0.1.0"
