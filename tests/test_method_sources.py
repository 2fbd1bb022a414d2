"""Every default of every registered method says where it comes from (`xlt describe` prints it)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from xltransfer import registry
from xltransfer.cli import app


@pytest.mark.parametrize("name", registry.methods.names())
def test_every_parameter_of_every_method_has_a_source(name):
    method = registry.methods.get(name)
    missing = [p for p in method.defaults if not method.parameter_source(p)]
    assert not missing, f"{name}: no parameter_sources entry for {missing}"
    stray = sorted(set(method.parameter_sources) - set(method.defaults))
    assert not stray, f"{name}: sources for parameters it does not have: {stray}"


def test_describe_lists_every_parameter_with_default_variants_and_source():
    from xltransfer.methods.mad_x import MadX

    result = CliRunner().invoke(app, ["describe", "mad-x"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for name, value in MadX.defaults.items():
        row = next((line for line in lines if line.startswith(f"│ {name} ")), None)
        assert row is not None, name
        cells = [cell.strip() for cell in row.strip("│").split("│")]
        assert cells[1] == str(value).lower() if isinstance(value, bool) else cells[1] == str(value)
        assert cells[-1] == MadX.parameter_source(name)
    invertible = next(line for line in lines if line.startswith("│ la_invertible "))
    assert [c.strip() for c in invertible.strip("│").split("│")][2] == "false"  # the no-inv variant
    assert "Pfeiffer, Vulić, Gurevych, Ruder 2020" in result.stdout


def test_describe_an_unknown_method_is_one_line_and_exit_2():
    result = CliRunner().invoke(app, ["describe", "madx"])
    assert result.exit_code == 2 and "did you mean 'mad-x'" in result.output
    assert "Traceback" not in result.output
