"""The JSON Schema of grid.yaml comes from the declaration grids are validated with
(`xltransfer/grid_spec.py`): the committed file is what `xlt schema` generates, every committed
leaderboard grid passes it, and the invalid values `xlt run` refuses are refused by it too."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from test_grid_validation import CASES, _grid
from typer.testing import CliRunner

from xltransfer import registry
from xltransfer.cli import app
from xltransfer.grid_spec import grid_json_schema

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "xltransfer" / "schema" / "grid.schema.json"
# refused by `xlt run`, beyond what a schema can say: whether torch knows a device string, YAML
# keys repeated (the YAML loader sees them, JSON never does), codes equal once normalised (QAB = qab)
RUN_ONLY = {"device banana", "repeated YAML key", "repeated target"}


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(COMMITTED.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_schema_is_the_generated_one():
    assert json.loads(COMMITTED.read_text()) == grid_json_schema(registry, builtin_only=True), (
        "regenerate: python -c 'import json; from xltransfer import registry; from xltransfer.grid_spec "
        "import grid_json_schema; print(json.dumps(grid_json_schema(registry, builtin_only=True), indent=2))'"
        " > xltransfer/schema/grid.schema.json"
    )


@pytest.mark.parametrize(
    "grid", sorted(ROOT.glob("leaderboards/*/grid*.yaml")), ids=lambda p: p.parent.name + "/" + p.name
)
def test_every_leaderboard_grid_passes_the_schema(grid):
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in validator().iter_errors(yaml.safe_load(grid.read_text()))
    ]
    assert not errors, errors


def test_the_tiny_grid_passes_and_an_unknown_parameter_does_not(tmp_path):
    check = validator()
    grid = yaml.safe_load(_grid(tmp_path, {}).read_text())
    assert not list(check.iter_errors(grid))
    grid["methods"][1]["params"]["batch_sise"] = 16
    assert not check.is_valid(grid)


@pytest.mark.parametrize("case", sorted(set(CASES) - RUN_ONLY))
def test_what_xlt_run_refuses_the_schema_refuses(case, tmp_path):
    changes, field = CASES[case]
    grid = yaml.safe_load(_grid(tmp_path, changes).read_text())
    errors = list(validator().iter_errors(grid))
    assert errors, f"{case}: the schema accepts what `xlt run` refuses"
    top = "methods" if field.startswith("variants") else field.split(".")[0].split("[")[0]  # in methods[i]
    assert any(e.absolute_path and e.absolute_path[0] == top for e in errors), [e.message for e in errors]


def test_xlt_schema_prints_it_with_the_installed_methods(tmp_path):
    result = CliRunner().invoke(app, ["schema", "--out", str(tmp_path / "grid.schema.json")])
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "grid.schema.json").read_text())
    methods = written["properties"]["methods"]["items"]["anyOf"][0]["enum"]
    assert set(registry.methods.names()) == set(methods) and "mad-x" in methods
