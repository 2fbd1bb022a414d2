"""Built-in tasks (installed as ``xltransfer.tasks``), registered through entry points."""
