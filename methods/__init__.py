"""Built-in methods (installed as ``xltransfer.methods``), registered through entry points."""
