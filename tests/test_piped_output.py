"""Off a terminal (a pipe, a file, a log) the CLI's tables keep their natural width: no word broken
across lines, no value cut to "quic…" (rich squeezes tables into 80 columns by default)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from xltransfer import registry
from xltransfer.reporting.units import format_score
from xltransfer.store import FIELDS, ResultStore, now


def _piped(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")}
    result = subprocess.run(
        [sys.executable, "-m", "xltransfer.cli", *args],
        capture_output=True,  # stdout is a pipe, as in `xlt results | head`
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_describe_through_a_pipe_keeps_every_parameter_default_and_source_whole():
    text = _piped("describe", "hyper-x")
    cls = registry.methods.get("hyper-x")
    assert cls.summary in text and cls.citation in text
    for name, value in cls.defaults.items():
        row = next((line for line in text.splitlines() if f" {name} " in line), None)
        assert row is not None, name  # the parameter's name, whole, on one line
        assert json.dumps(value) in row, name
        assert cls.parameter_source(name) in row, name


def test_results_through_a_pipe_keep_every_value_whole(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    record = {field: None for field in FIELDS}
    record.update(
        schema_version=1,
        run_id="r1",
        cell_id="c1",
        grid="quickstart-with-a-long-name",
        method="multilingual-adapter",
        variant="default",
        method_params={},
        task="pos",
        setting="zero-shot",
        shots=0,
        source_languages=["qaa", "qab"],
        target_language="qae",
        split="test",
        metric="accuracy",
        value=0.86354,
        seed=1,
        backbone="quickstart",
        backbone_revision="local",
        dtype="float32",
        device="cpu",
        xltransfer_version="0.1.0",
        created_at=now(),
        status="ok",
        extra={"fingerprint": "a" * 40},
    )
    store.write_cell("quickstart-with-a-long-name", "c1", [record])
    text = _piped("results", "--results", str(tmp_path / "r.sqlite"))
    row = next(line for line in text.splitlines() if "quickstart-with-a-long-name" in line)
    for value in ("multilingual-adapter", "zero-shot", "qaa+qab", "qae", "accuracy", "ok"):
        assert value in row.split(), value
    assert format_score("accuracy", 0.86354) in row.split()
    assert "…" not in text
