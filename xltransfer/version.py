"""The package's version, in a module of its own: records carry it, and importing it imports nothing."""

__version__ = "0.1.0"
