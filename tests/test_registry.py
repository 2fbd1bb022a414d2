"""Registries: entry points of installed packages, lazy loading, helpful unknown-name errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xltransfer import registry
from xltransfer.errors import UnknownNameError

PLUGIN = Path(__file__).parent / "plugin_package"


def test_builtin_methods_and_tasks_registered():
    assert {"full-ft", "mad-x", "majority"} <= set(registry.methods.names())
    assert {"pos", "mlm"} <= set(registry.tasks.names())


def test_unknown_name_suggests():
    with pytest.raises(UnknownNameError, match="did you mean 'mad-x'"):
        registry.methods.get("madx")


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """The test plugin installed as a real distribution into a private folder."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(PLUGIN),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return target


def xlt_with_plugin(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "xltransfer.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def test_plugin_method_listed(plugin_site, tmp_path):
    result = xlt_with_plugin(plugin_site, tmp_path, "list", "methods")
    assert result.returncode == 0, result.stderr
    assert "frozen-probe" in result.stdout and "xlt_demo_plugin:FrozenProbe" in result.stdout


def test_plugin_method_plans_in_a_grid(plugin_site, tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        textwrap.dedent("""
        backbone: quickstart
        data: {pos: synthetic, mlm: synthetic}
        methods: [frozen-probe]
        tasks: [pos]
        languages: {source: qaa, target: [qab, qac]}
    """)
    )
    result = xlt_with_plugin(
        plugin_site, tmp_path, "plan", str(grid), "--json", "--workdir", str(tmp_path / "w")
    )
    assert result.returncode == 0, result.stderr
    assert '"frozen-probe"' in result.stdout and '"probe"' in result.stdout
