"""Bad grids and bad data stop `xlt run` with exit code 2 and a message naming the field or file:line,
before anything trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import write_tiny_grid


def xlt(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "xltransfer.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )


def _assert_nothing_trained(workdir: Path) -> None:
    artifacts = workdir / "artifacts"
    assert not artifacts.exists() or not any(artifacts.rglob("info.json"))


def test_unknown_method(tmp_path):
    grid = write_tiny_grid(tmp_path / "g")
    grid.write_text(grid.read_text().replace("- majority", "- mad-y"))
    result = xlt("run", str(grid), "--workdir", str(tmp_path / "w"), cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "methods[0].name" in result.stderr
        and "mad-y" in result.stderr
        and "did you mean 'mad-x'" in result.stderr
    )
    assert "Traceback" not in result.stderr
    _assert_nothing_trained(tmp_path / "w")


def test_unknown_language_code(tmp_path):
    grid = write_tiny_grid(tmp_path / "g", targets="[qab, xx1]")
    result = xlt("run", str(grid), "--workdir", str(tmp_path / "w"), cwd=tmp_path)
    assert result.returncode == 2
    assert "languages.target[1]" in result.stderr and "xx1" in result.stderr
    _assert_nothing_trained(tmp_path / "w")


def test_wrong_type(tmp_path):
    grid = write_tiny_grid(tmp_path / "g")
    grid.write_text(grid.read_text().replace("seeds: [1]", "seeds: [one]"))
    result = xlt("plan", str(grid), "--workdir", str(tmp_path / "w"), cwd=tmp_path)
    assert result.returncode == 2 and "seeds[0]" in result.stderr


def test_missing_file(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        "backbone: quickstart\ndata:\n"
        "  pos: {type: files, files: {qaa: {train: nowhere.conllu}}}\n  mlm: synthetic\n"
        "methods: [full-ft]\ntasks: [pos]\nlanguages: {source: qaa, target: [qab]}\n"
    )
    result = xlt("run", str(grid), "--workdir", str(tmp_path / "w"), cwd=tmp_path)
    assert (
        result.returncode == 2
        and "data.pos.files.qaa.train" in result.stderr
        and "nowhere.conllu" in result.stderr
    )


def test_malformed_conllu_names_file_and_line(tmp_path):
    good = "# sent_id = 1\n1\tA\ta\tNOUN\t_\t_\t0\troot\t_\t_\n\n"
    bad = good + "# sent_id = 2\n1\tB\tb\tNOUN\t_\t_\t0\troot\t_\t_\n2\tc\tc\tVERB\t_\t_\t1\tobj\n\n"
    (tmp_path / "train.conllu").write_text(bad)
    (tmp_path / "test.conllu").write_text(good)
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        "backbone: quickstart\ndata:\n"
        "  pos: {type: files, files: {qaa: {train: train.conllu}, qab: {test: test.conllu}}}\n"
        "  mlm: synthetic\n"
        "methods: [full-ft]\ntasks: [pos]\nlanguages: {source: qaa, target: [qab]}\n"
    )
    result = xlt("run", str(grid), "--workdir", str(tmp_path / "w"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "train.conllu:6" in result.stderr and "10 tab-separated columns" in result.stderr
    _assert_nothing_trained(tmp_path / "w")


def test_offline_hub_backbone_fails_fast(tmp_path, shared_data):
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        f"backbone: bert-base-multilingual-cased\ndata:\n  pos: {{type: ud, root: {shared_data / 'ud'}}}\n"
        f"  mlm: {{type: ud, root: {shared_data / 'ud'}}}\n"
        "methods: [full-ft]\ntasks: [pos]\nlanguages: {source: tr, target: [mt]}\n"
    )
    # no wall-clock assertion (a busy machine is slow, not wrong): `xlt`'s subprocess timeout is the
    # hang guard that a run retrying an unreachable hub would hit
    result = xlt(
        "run",
        str(grid),
        "--workdir",
        str(tmp_path / "w"),
        cwd=tmp_path,
        env={"HF_HOME": str(tmp_path / "hf")},
    )
    assert result.returncode == 2
    assert "bert-base-multilingual-cased" in result.stderr and "local" in result.stderr
    assert "Traceback" not in result.stderr


def test_offline_hub_dataset_fails_fast_naming_it(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        "backbone: quickstart\ndata:\n"
        "  pos: {type: hub, dataset: some-org/universal-dependencies, config: '{lang}_ewt'}\n"
        "  mlm: synthetic\nmethods: [full-ft]\ntasks: [pos]\nlanguages: {source: qaa, target: [qab]}\n"
    )
    # HF_HUB_OFFLINE unset: the harness must find out by itself (the timeout is the hang guard)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    result = subprocess.run(
        [sys.executable, "-m", "xltransfer.cli", "run", str(grid), "--workdir", str(tmp_path / "w")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "HF_HOME": str(tmp_path / "hf")},
    )
    assert result.returncode == 2, result.stderr
    assert "some-org/universal-dependencies" in result.stderr and "local files" in result.stderr
    assert "Traceback" not in result.stderr
    _assert_nothing_trained(tmp_path / "w")


MT_GRID = (
    "backbone: quickstart\n"
    "data:\n  mt: {{type: files, files: {{en: {{train: {en}, test: {en}}},\n"
    "                               de: {{train: {de}, test: {de}}}}}}}\n"
    "methods: [full-ft]\ntasks: [mt]\nlanguages: {{source: en, target: [de]}}\n"
)


def _mt_grid(tmp_path: Path, de_lines: int, extra: str = "") -> Path:
    en = tmp_path / "en.txt"
    de = tmp_path / "de.txt"
    en.write_text("".join(f"sentence {i}\n" for i in range(5)), encoding="utf-8")
    de.write_text("".join(f"Satz {i}\n" for i in range(de_lines)), encoding="utf-8")
    grid = tmp_path / "grid.yaml"
    grid.write_text(MT_GRID.format(en=en, de=de) + extra)
    return grid


def test_parallel_files_of_unequal_length_stop_the_run(tmp_path):
    grid = _mt_grid(tmp_path, de_lines=4)
    result = xlt("run", str(grid), "--workdir", str(tmp_path / "w"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "de.txt" in result.stderr and "4 lines" in result.stderr
    assert "Traceback" not in result.stderr
    _assert_nothing_trained(tmp_path / "w")
    records = xlt("results", "--json", "--workdir", str(tmp_path / "w"), cwd=tmp_path).stdout
    assert json.loads(records) == []


def test_mt_is_a_zero_shot_task_and_its_options_are_checked(tmp_path):
    few_shot = _mt_grid(tmp_path, de_lines=5, extra="settings: [zero-shot, few-shot]\nshots: [5]\n")
    result = xlt("plan", str(few_shot), "--workdir", str(tmp_path / "w"), cwd=tmp_path)
    assert result.returncode == 2 and "settings[1]" in result.stderr and "few-shot" in result.stderr
    bad_model = _mt_grid(tmp_path, de_lines=5, extra="mt: {model: transformer-huge}\n")
    result = xlt("plan", str(bad_model), "--workdir", str(tmp_path / "w"), cwd=tmp_path)
    assert (
        result.returncode == 2 and "transformer-huge" in result.stderr and "transformer-big" in result.stderr
    )


def test_a_group_language_must_be_a_target_of_the_grid(tmp_path):
    # qaa is the tiny grid's source: zero-shot cells never test on it
    grid = write_tiny_grid(tmp_path / "g", extra="groups: {near: [qab], far: [qac, qaa]}\n")
    result = xlt("plan", str(grid), "--workdir", str(tmp_path / "w"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "groups.far[1]" in result.stderr and "'qaa' is not a target language" in result.stderr
    assert "Traceback" not in result.stderr
    grid.write_text(grid.read_text().replace("far: [qac, qaa]", "far: [qac, xx1]"))
    result = xlt("plan", str(grid), "--workdir", str(tmp_path / "w"), cwd=tmp_path)
    assert result.returncode == 2 and "groups.far[1]" in result.stderr and "xx1" in result.stderr


def test_groups_are_parsed_normalised_and_in_order(tmp_path):
    from xltransfer.grid import load_grid

    grid = write_tiny_grid(tmp_path / "g", extra="groups: {near: [QAB], all: [qab, qac]}\n")
    loaded = load_grid(grid, tmp_path / "w")
    assert loaded.groups == {"near": ("qab",), "all": ("qab", "qac")}
    assert list(loaded.groups) == ["near", "all"]
    assert loaded.group_of("qab") == ["near", "all"] and loaded.group_of("QAC") == ["all"]
    assert loaded.group_of("qaa") == []
    # MT: any language of the grid's directions (here de -> en too)
    mt = load_grid(_mt_grid(tmp_path, de_lines=5, extra="groups: {english: [eng]}\n"), tmp_path / "w")
    assert mt.groups == {"english": ("en",)} and mt.group_of("en") == ["english"]


def _grid_with_bad_source_test(tmp_path: Path, methods: str) -> Path:
    good = "# sent_id = 1\n1\tA\ta\tNOUN\t_\t_\t0\troot\t_\t_\n\n"
    bad = good + "# sent_id = 2\n1\tB\tb\tNOUN\t_\t_\t0\troot\t_\t_\n2\tc\tc\tVERB\t_\t_\t1\tobj\n\n"
    (tmp_path / "train.conllu").write_text(good * 3)
    (tmp_path / "source-test.conllu").write_text(bad)  # the source's test split: scored as extra.source_test
    (tmp_path / "test.conllu").write_text(good)
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        "backbone: quickstart\nquickstart: {steps: 5, eval_every: 5, warmup_steps: 1}\ndata:\n"
        "  pos: {type: files, files: {qaa: {train: train.conllu, test: source-test.conllu},"
        " qab: {test: test.conllu}}}\n  mlm: synthetic\n"
        f"methods: {methods}\ntasks: [pos]\nlanguages: {{source: qaa, target: [qab]}}\n"
    )
    return grid


def test_malformed_source_test_file_stops_a_majority_grid_without_a_backbone(tmp_path):
    """Every split a cell evaluates (the source's test split too) is read before anything else, and
    a grid that trains nothing (majority only) builds no backbone at all."""
    grid = _grid_with_bad_source_test(tmp_path, "[majority]")
    result = xlt("run", str(grid), "--workdir", str(tmp_path / "w"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "source-test.conllu:6" in result.stderr and "10 tab-separated columns" in result.stderr
    assert "backbone" not in result.stderr
    _assert_nothing_trained(tmp_path / "w")


def test_malformed_source_test_file_stops_a_trained_grid_before_anything_trains(tmp_path):
    grid = _grid_with_bad_source_test(tmp_path, "[majority, full-ft]")
    result = xlt("run", str(grid), "--workdir", str(tmp_path / "w"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "source-test.conllu:6" in result.stderr
    _assert_nothing_trained(tmp_path / "w")


def test_a_majority_only_grid_runs_without_building_a_backbone(tmp_path):
    grid = _grid_with_bad_source_test(tmp_path, "[majority]")
    (tmp_path / "source-test.conllu").write_text((tmp_path / "test.conllu").read_text())
    result = xlt("run", str(grid), "--workdir", str(tmp_path / "w"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "building the quickstart backbone" not in result.stderr
    _assert_nothing_trained(tmp_path / "w")
