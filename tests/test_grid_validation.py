"""Values that would fail late or mislead are refused when the grid is read: `xlt run` exits with code 2
naming the field, before anything trains."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_tiny_grid
from typer.testing import CliRunner

from xltransfer.cli import app

# case -> (text replaced in the tiny grid, or YAML appended to it; the field the error names)
FULL_FT = "methods[1].params"
FEW_SHOT = "settings: [zero-shot, few-shot]\n"  # (without the majority baseline, which has no few-shot)
CASES = {
    "shots 0": ({"+": f"{FEW_SHOT}shots: [5, 0]\n", "  - majority\n": ""}, "shots[1]"),
    "shots < 0": ({"+": f"{FEW_SHOT}shots: [-5]\n", "  - majority\n": ""}, "shots[0]"),
    "batch_size 0": ({"batch_size: 16}": "batch_size: 0}"}, f"{FULL_FT}.batch_size"),
    "learning_rate < 0": ({"rate: 5.0e-4": "rate: -5.0e-4"}, f"{FULL_FT}.learning_rate"),
    "epochs < 0": ({"epochs: 1.0": "epochs: -1.0"}, f"{FULL_FT}.epochs"),
    "warmup over 1": ({"epochs: 1.0": "epochs: 1.0, warmup_ratio: 1.5"}, f"{FULL_FT}.warmup_ratio"),
    "steps < 0": ({"la_steps: 40": "la_steps: -40"}, "methods[2].params.la_steps"),
    "backbone option 0": ({"batch_size: 32,": "batch_size: 0,"}, "quickstart.batch_size"),
    "max_length 0": ({"+": "max_length: 0\n"}, "max_length"),
    "seed 2**63": ({"seeds: [1]": f"seeds: [{2**63}]"}, "seeds[0]"),
    "seed < 0": ({"seeds: [1]": "seeds: [-1]"}, "seeds[0]"),
    "device banana": ({"+": "device: banana\n"}, "device"),
    "repeated seed": ({"seeds: [1]": "seeds: [1, 2, 1]"}, "seeds[2]"),
    "repeated target": ({"target: [qab, qac]": "target: [qab, qac, QAB]"}, "languages.target[2]"),
    "repeated variant": ({"- majority": "- {name: mad-x, variants: [no-inv, no-inv]}"}, "variants[1]"),
    "repeated YAML key": ({"+": "seeds: [2]\n"}, "key 'seeds' appears twice"),
}


def _grid(tmp_path: Path, changes: dict[str, str]) -> Path:
    grid = write_tiny_grid(tmp_path / "g", extra=changes.get("+", ""))
    text = grid.read_text()
    for old, new in changes.items():
        if old != "+":
            assert old in text, old
            text = text.replace(old, new)
    grid.write_text(text)
    return grid


def _run(grid: Path, workdir: Path, *more: str):
    return CliRunner().invoke(app, ["run", str(grid), "--workdir", str(workdir), "--quiet", *more])


def _nothing_written(workdir: Path) -> bool:
    return not workdir.exists() or not any(workdir.rglob("*.safetensors"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_invalid_value_stops_the_run_naming_its_field(case, tmp_path):
    changes, field = CASES[case]
    result = _run(_grid(tmp_path, changes), tmp_path / "w")
    assert result.exit_code == 2, result.output
    assert field in result.output, result.output
    assert "Traceback" not in result.output
    assert _nothing_written(tmp_path / "w")


def test_a_non_utf8_grid_is_one_line(tmp_path):
    grid = write_tiny_grid(tmp_path / "g")
    grid.write_bytes("# r\xe9sum\xe9\n".encode("latin-1") + grid.read_bytes())
    result = _run(grid, tmp_path / "w")
    assert result.exit_code == 2 and f"{grid}: not UTF-8" in result.output, result.output


def test_a_selection_of_no_cell_is_an_error(tmp_path):
    result = _run(write_tiny_grid(tmp_path / "g"), tmp_path / "w", "--only", "target=qzz")
    assert result.exit_code == 2 and "--only target=qzz: selects no cell" in result.output, result.output


def test_the_majority_baselines_train_file_is_read_before_anything_runs(tmp_path):
    good = "1\tA\ta\tNOUN\t_\t_\t0\troot\t_\t_\n\n"
    (tmp_path / "train.conllu").write_text(good + "1\tB\tb\tNOUNY\t_\t_\t0\troot\t_\t_\n\n")
    (tmp_path / "test.conllu").write_text(good)
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        "backbone: quickstart\n"
        "data: {pos: {type: files, files: {qaa: {train: train.conllu}, qab: {test: test.conllu}}}}\n"
        "methods: [majority]\ntasks: [pos]\nlanguages: {source: qaa, target: [qab]}\n"
    )
    result = _run(grid, tmp_path / "w")
    assert result.exit_code == 2, result.output
    assert "train.conllu:3" in result.output and "NOUNY" in result.output
    assert _nothing_written(tmp_path / "w")


def test_a_device_the_machine_lacks_stops_the_run_before_training(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = _run(_grid(tmp_path, {"+": "device: cuda:0\n"}), tmp_path / "w")
    assert result.exit_code == 2, result.output
    assert "field 'device'" in result.output and "not on this machine" in result.output
    assert _nothing_written(tmp_path / "w")
