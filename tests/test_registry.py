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


LORA_METHOD = """methods:
  - name: mad-x-lora
    params: {{la_lora_r: {rank}, la_steps: 4, la_batch_size: 8, la_eval_every: 2,
             ta_steps: 4, ta_batch_size: 16, ta_eval_every: 2}}
"""


def test_plugin_subclass_retrains_its_language_adapters_when_its_new_parameter_changes(
    plugin_site, tmp_path, tiny_prebuilt
):
    """Issue 14, acceptance 5: MAD-X with LoRA language adapters (tests/plugin_package) run with
    la_lora_r 8, then 4, in one workdir: the second run trains new LAs, not the first run's."""
    import json

    from conftest import seeded_workdir, write_tiny_grid

    workdir = seeded_workdir(tiny_prebuilt, tmp_path / "w")

    def run(rank: int) -> None:
        grid = write_tiny_grid(tmp_path / f"g{rank}", targets="[qab]")
        text = grid.read_text()
        methods = LORA_METHOD.format(rank=rank)
        grid.write_text(text[: text.index("methods:")] + methods + text[text.index("tasks:") :])
        result = xlt_with_plugin(plugin_site, tmp_path, "run", str(grid), "--workdir", str(workdir))
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]

    def language_adapters() -> list[tuple]:
        infos = [json.loads(p.read_text()) for p in (workdir / "artifacts").glob("*/*/info.json")]
        return sorted(
            (info["languages"][0], info["params"].get("la_lora_r"))
            for info in infos
            if info.get("method") == "mad-x-lora" and info["kind"] == "language-adapter"
        )

    run(8)
    assert len(language_adapters()) == 2  # qaa (source) and qab (target)
    run(4)
    assert len(language_adapters()) == 4, "the rank-4 run reused the rank-8 language adapters"
    assert language_adapters() == [("qaa", 4), ("qaa", 8), ("qab", 4), ("qab", 8)]
