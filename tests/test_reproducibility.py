"""The seed makes a run reproducible: two fresh processes running one grid on CPU store the same
bytes for every piece and the same records (run ids, timestamps and durations aside)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import keep_methods, seeded_workdir, write_tiny_grid

from xltransfer.artifacts import STATE_FILE
from xltransfer.workspace import Workspace

# Every kind of randomly initialised piece: a finetuned encoder with its head, language and task
# adapters, a layer-shared typology generator (MAD-G-LS) and a hypernetwork (Hyper-X).
METHODS = """methods:
  - majority
  - name: full-ft
    params: {epochs: 0.25, learning_rate: 5.0e-4, batch_size: 16}
  - name: mad-x
    params: {la_steps: 6, la_batch_size: 8, la_learning_rate: 1.0e-3, la_eval_every: 3,
             ta_steps: 6, ta_batch_size: 16, ta_learning_rate: 1.0e-3, ta_eval_every: 3}
  - name: mad-g
    variants: [ls]
    params: {train_languages: [qaa, qab], generator_steps: 6, la_batch_size: 8, la_learning_rate: 1.0e-3,
             la_eval_every: 3, ta_steps: 6, ta_batch_size: 16, ta_learning_rate: 1.0e-3, ta_eval_every: 3}
  - name: hyper-x
    variants: [small]
    params: {steps: 6, batch_size: 16, learning_rate: 1.0e-3, warmup_steps: 2, eval_every: 3}
"""
TIMING = {"run_id", "created_at", "train_seconds", "eval_seconds"}


def _run_twice(grid: Path, workdirs: list[Path]) -> None:
    """``xlt run`` in two fresh processes at once (one per workdir)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "xltransfer.cli", "run", str(grid), "--workdir", str(workdir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for workdir in workdirs
    ]
    for run in runs:
        out, err = run.communicate(timeout=900)  # a hang guard, not a speed check
        assert run.returncode == 0, out[-2000:] + err[-4000:]


def _pieces(workdir: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in (workdir / "artifacts").glob(f"*/*/{STATE_FILE}")}


def _records(workdir: Path) -> list[dict]:
    """The records without what differs by nature between two runs: ids, timestamps, seconds."""

    def strip(record: dict) -> dict:
        kept = {k: v for k, v in record.items() if k not in TIMING}
        extra = dict(kept.get("extra") or {})
        if "piece_costs" in extra:  # [trainable parameters, train seconds] per piece
            extra["piece_costs"] = {key: cost[0] for key, cost in extra["piece_costs"].items()}
        extra.pop("measured_under_load", None)  # the machine's load average while pieces trained
        kept["extra"] = extra
        return kept

    records = [strip(r) for r in Workspace.at(workdir).results.records()]
    return sorted(records, key=lambda r: (r["cell_id"], r["split"], r["metric"]))


def test_two_fresh_processes_store_identical_pieces_and_records(tmp_path, tiny_prebuilt):
    grid = write_tiny_grid(tmp_path / "g", targets="[qab]")
    text = grid.read_text()
    grid.write_text(text[: text.index("methods:")] + METHODS + text[text.index("tasks:") :])
    first, second = (seeded_workdir(tiny_prebuilt, tmp_path / name) for name in ("w1", "w2"))
    _run_twice(grid, [first, second])

    pieces_first, pieces_second = _pieces(first), _pieces(second)
    trained = set(pieces_first) - set(_pieces(tiny_prebuilt))
    assert len(trained) >= 7, sorted(trained)  # LAs, TAs, a generator, a hypernetwork, a finetuned model
    assert set(pieces_first) == set(pieces_second)
    differing = sorted(key for key in trained if pieces_first[key] != pieces_second[key])
    assert not differing, f"pieces trained twice from one seed differ: {differing}"

    records_first, records_second = _records(first), _records(second)
    assert len(records_first) > 0 and all(r["status"] == "ok" for r in records_first)
    assert records_first == records_second


VOCABULARY = """
import hashlib, random
from xltransfer.pretrain import train_wordpiece
rng = random.Random(0)
syllables = [c + v for c in "bdfgklmnprstvzšž" for v in "aeiouáö"]
words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(3000)]
lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) + "." for _ in range(3000)]
tokenizer = train_wordpiece(lines, 1500)
ids = [i for line in lines for i in tokenizer(line)["input_ids"]]
assert tokenizer.unk_token_id not in ids, "a character of the text became [UNK]"
print(hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest())
"""


def test_the_quickstart_vocabulary_is_the_same_in_two_processes():
    """The backbone's WordPiece vocabulary, learned twice from the same text in fresh processes, is
    the same file (tokenizers' own trainer broke ties by per-process hash seeds: 280 of 4,000 ids
    differed between two builds of the quickstart backbone)."""
    digests = {
        subprocess.run(
            [sys.executable, "-c", VOCABULARY], capture_output=True, text=True, check=True, timeout=600
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(digests) == 1, digests


# Trains the pieces of the given labels, in that order, in one process; prints each one's key.
TRAIN_IN_ORDER = """
import sys
from xltransfer.api import load
from xltransfer.context import RunContext
from xltransfer.execute.cells import ensure_piece

grid, workdir, *labels = sys.argv[1:]
_, plan, workspace = load(grid, workdir)
ctx = RunContext(plan, workspace)
ctx.prepare()
by_label = {planned.piece.label: key for key, planned in plan.pieces.items()}
for label in labels:
    ensure_piece(ctx, by_label[label])
    print(by_label[label])
"""


def _train_in_order(grid: Path, workdir: Path, *labels: str) -> list[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, "-c", TRAIN_IN_ORDER, str(grid), str(workdir), *labels],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,  # a hang guard, not a speed check
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    return run.stdout.split()


def _static_mlm_backbone(prebuilt: Path, folder: Path) -> Path:
    """The tiny backbone's architecture and vocabulary as a static ``BertForMaskedLM`` checkpoint (as
    mBERT is published): loading it builds the flexible MLM head, which draws from torch's generator."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    (config,) = (prebuilt / "artifacts").glob("backbone-*/config.json")
    quickstart = config.parent
    BertForMaskedLM(BertConfig.from_pretrained(quickstart)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(quickstart).save_pretrained(folder)
    return folder


def test_a_piece_stores_the_same_bytes_first_in_a_process_or_after_another(tmp_path, tiny_prebuilt):
    """A piece's bytes depend on its key only: trained first in a fresh process (which then loads the
    backbone, and adapters' head construction draws from torch's generator) or after another piece
    (the backbone already loaded), a language and a task adapter store the same tensors. Before, the
    first piece a process trained drew other initial weights (a resumed run or an ``--only`` split
    stored others under one key)."""
    import yaml

    from xltransfer.api import load

    grid = keep_methods(write_tiny_grid(tmp_path / "g", targets="[qab]", la_steps=4), "mad-x")
    raw = yaml.safe_load(grid.read_text())
    del raw["quickstart"]
    raw["backbone"] = str(_static_mlm_backbone(tiny_prebuilt, tmp_path / "bert"))
    raw["methods"][0]["params"].update(ta_steps=4, ta_eval_every=2)
    grid.write_text(yaml.safe_dump(raw, sort_keys=False))
    _, plan, _ = load(grid, tmp_path / "plan")
    pieces = {planned.piece.label: planned.piece for planned in plan.pieces.values()}
    la, other, ta = (
        next(label for label, p in pieces.items() if p.kind == kind and p.languages == (language,))
        for kind, language in (
            ("language-adapter", "qaa"),
            ("language-adapter", "qab"),
            ("task-adapter", "qaa"),
        )
    )

    first, second = (seeded_workdir(tiny_prebuilt, tmp_path / name) for name in ("w1", "w2"))
    keys_first = _train_in_order(grid, first, other, la, ta)  # the LA and TA after another piece
    keys_second = _train_in_order(grid, second, la)  # the LA first in its process
    keys_second += _train_in_order(grid, second, ta)  # the TA first in its process
    pieces_first, pieces_second = _pieces(first), _pieces(second)
    assert len(keys_second) == 2 and set(keys_second) < set(keys_first)
    for key in keys_second:
        assert pieces_first[key] == pieces_second[key], f"{key}: other bytes when first in its process"
