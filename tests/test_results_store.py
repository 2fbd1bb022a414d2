"""The results store: one transaction per cell, schema-valid records, failed cells replaced on retry."""

from __future__ import annotations

import sqlite3

import jsonschema
import pytest

from xltransfer.store import FIELDS, ResultStore, json_schema, now

FP = "a" * 40  # a cell fingerprint (Plan.cell_fingerprint)


def _record(cell: str, metric: str = "accuracy", value: float | None = 0.5, status: str = "ok") -> dict:
    return {
        "schema_version": 1,
        "run_id": "r1",
        "cell_id": cell,
        "grid": "g",
        "method": "mad-x",
        "variant": "default",
        "method_params": {"la_steps": 10},
        "task": "pos",
        "setting": "zero-shot",
        "shots": 0,
        "partition": None,
        "source_languages": ["en"],
        "target_language": "mt",
        "split": "test",
        "metric": metric,
        "value": value,
        "seed": 1,
        "backbone": "mbert",
        "backbone_revision": "main",
        "trainable_params": 10,
        "total_params": 20,
        "train_seconds": 1.0,
        "eval_seconds": 0.1,
        "batch_size": 8,
        "dtype": "float32",
        "device": "cpu",
        "xltransfer_version": "0.1.0",
        "created_at": now(),
        "status": status,
        "error": None if status == "ok" else "boom",
        "extra": {"fingerprint": FP} if status == "ok" else {},
    }


def test_roundtrip_validates(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    store.write_cell("g", "c1", [_record("c1"), _record("c1", "f1")])
    records = store.records(grid="g")
    assert len(records) == 2 and set(records[0]) == set(FIELDS)
    for r in records:
        jsonschema.validate(r, json_schema())
    assert store.finished_cells("g", {"c1": FP}) == {"c1"}
    assert store.finished_cells("g", {"c1": "0" * 40}) == set()


def test_a_failing_write_leaves_nothing_of_the_cell(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    store.write_cell("g", "c1", [_record("c1")])
    broken = _record("c2")
    del broken["value"]
    with pytest.raises(ValueError):
        store.write_cell("g", "c2", [_record("c2", "f1"), broken])
    assert {r["cell_id"] for r in store.records()} == {"c1"}


def test_duplicate_metric_in_one_cell_rolls_back(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    with pytest.raises(sqlite3.IntegrityError):
        store.write_cell("g", "c1", [_record("c1"), _record("c1")])
    assert store.records() == []


def test_failed_cell_is_replaced_by_its_retry(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    failed = _record("c1", metric="-", value=None, status="failed")
    failed["split"] = "-"
    jsonschema.validate(failed, json_schema())
    store.write_cell("g", "c1", [failed])
    assert store.finished_cells("g", {"c1": FP}) == set()
    store.write_cell("g", "c1", [_record("c1")])
    assert [r["status"] for r in store.records()] == ["ok"]


def test_schema_rejects_ok_record_without_value():
    bad = _record("c1", value=None)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, json_schema())


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_results_export_for_pandas(tmp_path, fmt):
    """`xlt results --format jsonl|csv|parquet --out FILE`: one row per record, read back by pandas
    with the same values (the flat formats: a column per method parameter and per fact in extra)."""

    import pandas as pd
    from typer.testing import CliRunner

    from xltransfer.cli import app

    store = ResultStore(tmp_path / "r.sqlite")
    store.write_cell("g", "c1", [_record("c1"), _record("c1", "f1", 0.25)])
    store.write_cell("g", "c2", [_record("c2", value=None, status="failed")])
    out = tmp_path / f"results.{fmt}"
    args = ["results", "--results", str(tmp_path / "r.sqlite"), "--format", fmt, "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    frame = {"jsonl": lambda p: pd.read_json(p, lines=True), "csv": pd.read_csv, "parquet": pd.read_parquet}[
        fmt
    ](out)
    assert len(frame) == 3
    flat = [f for f in FIELDS if f not in ("method_params", "extra")] + [
        "params.la_steps",
        "extra.fingerprint",
    ]
    assert list(frame.columns) == (list(FIELDS) if fmt == "jsonl" else flat)
    ok = frame[frame["status"] == "ok"].sort_values("metric")
    assert ok["value"].tolist() == [0.5, 0.25] and ok["metric"].tolist() == ["accuracy", "f1"]
    if fmt == "jsonl":
        assert ok["method_params"].iloc[0] == {"la_steps": 10}
    else:
        assert ok["params.la_steps"].tolist() == [10, 10]
    if fmt != "parquet":  # text formats also go to standard output
        printed = CliRunner().invoke(app, args[:-2])
        assert printed.exit_code == 0 and printed.stdout == out.read_text()
    else:
        refused = CliRunner().invoke(app, args[:-2])
        assert refused.exit_code == 2 and "--out" in refused.output


def test_flat_rows_give_every_fact_of_extra_its_own_column():
    """The source-test score, the adapters' perplexity by role, the few-shot sample's hash: columns
    of their own in CSV and Parquet (not JSON text inside one ``extra`` column)."""
    from xltransfer.reporting.tabular import flat_rows

    record = {
        **_record("c1"),
        "source_languages": ["en", "de"],
        "extra": {
            "source_test": {"language": "en", "accuracy": 0.9},
            "adapter_perplexity": {
                "mad-x:language-adapter[en]": 12.5,
                "mad-x:language-adapter[mt]": 40.0,
                "mad-g:generator[en+mt+de]": 30.0,
            },
            "few_shot_sample": {"shots": 5, "ids": ["a", "b"], "content_sha256": "abc123", "pool": 100},
            "pieces": ["k1", "k2"],
        },
    }
    columns, (row,) = flat_rows([record])
    assert row["source_languages"] == "en+de"
    assert row["extra.source_test.accuracy"] == 0.9 and row["extra.source_test.language"] == "en"
    assert row["extra.adapter_perplexity.source"] == 12.5  # the most specific adapter covering en
    assert row["extra.adapter_perplexity.target"] == 40.0
    assert row["extra.few_shot_sample.content_sha256"] == "abc123" and row["extra.few_shot_sample.shots"] == 5
    assert row["extra.few_shot_sample.ids"] == '["a", "b"]' and row["params.la_steps"] == 10
    assert "extra" not in columns and "method_params" not in columns
    assert columns.index("params.la_steps") < columns.index("extra.adapter_perplexity")


def test_flat_rows_leave_parameters_of_other_tasks_empty():
    """A full-ft POS row carries no `params.mt_batch_tokens` (full-ft's MT parameters), an MT row
    no `params.nli_ta_epochs`; parameters of every task (`mlm_packing`, `batch_size`) stay."""
    from xltransfer.reporting.tabular import flat_rows

    params = {"batch_size": 32, "mt_batch_tokens": 256_000, "nli_ta_epochs": 2, "mlm_packing": True}
    pos = {**_record("c1"), "method": "full-ft", "method_params": params}
    mt = {**_record("c2", "bleu", 0.3), "task": "mt", "method_params": params}
    columns, rows = flat_rows([pos, mt])
    assert "params.mt_batch_tokens" not in rows[0] and "params.nli_ta_epochs" not in rows[0]
    assert rows[0]["params.batch_size"] == 32 and rows[0]["params.mlm_packing"] is True
    assert rows[1]["params.mt_batch_tokens"] == 256_000 and "params.nli_ta_epochs" not in rows[1]
    assert "params.mt_batch_tokens" in columns  # the column exists; the POS row leaves it empty
