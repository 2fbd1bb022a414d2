"""The Python API is as quiet as the CLI: the adapters library's per-forward-pass warning about
inactive adapters (which the harness holds on purpose) is silenced at ``import xltransfer``."""

from __future__ import annotations

import subprocess
import sys

from conftest import write_tiny_grid


def test_plan_from_the_api_prints_no_adapter_warnings(tmp_path):
    grid = write_tiny_grid(tmp_path / "tiny")
    script = (
        "import xltransfer\n"
        f"summary = xltransfer.plan({str(grid)!r}, workdir={str(tmp_path / 'w')!r})\n"
        "print(len(summary['pieces']))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 0  # mad-x's pieces were counted (on models holding inactive adapters)
    assert "none are activated" not in result.stderr, result.stderr
