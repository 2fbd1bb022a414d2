"""Corpora on disk (issue 19): MLM text read once into a memory-mapped Arrow file, tokenised and
packed once per (corpus, tokenizer, max_length, packing), read by index; held-out sets bounded and
fixed; small corpora held out or refused; the prepared-data folders verified like pieces."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import fixed_vocab_tokenizer
from xltransfer.tasks.mlm import MaskedLanguageModelling

from xltransfer.cached_folder import cached_folder
from xltransfer.context import RunContext
from xltransfer.data import corpus
from xltransfer.errors import GridError
from xltransfer.grid import load_grid
from xltransfer.modules.mlm import mlm_features
from xltransfer.planning import build_plan
from xltransfer.workspace import Workspace

WORDS = [f"w{i}" for i in range(50)]


def _lines(count: int, start: int = 0) -> list[str]:
    return [
        " ".join(WORDS[(i * 7 + j) % 50] for j in range(3 + i % 5)) + f" s{i}" for i in range(start, count)
    ]


def _text_file(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _grid(tmp_path: Path, files: str, extra: str = "", method: str = "mad-x") -> Path:
    grid = tmp_path / "g" / "grid.yaml"
    grid.parent.mkdir(exist_ok=True)
    grid.write_text(
        textwrap.dedent(f"""
        backbone: quickstart
        data:
          pos: synthetic
          mlm: {{type: files, files: {files}{extra}}}
        methods: [{method}]
        tasks: [pos]
        languages: {{source: qaa, target: [qab]}}
        """)
    )
    return grid


def _context(grid: Path, workdir: Path, tokenizer=None) -> RunContext:
    workspace = Workspace.at(workdir)
    ctx = RunContext(build_plan(load_grid(grid, workspace.root)), workspace)
    ctx.__dict__["tokenizer"] = tokenizer or fixed_vocab_tokenizer([*WORDS, *(f"s{i}" for i in range(400))])
    return ctx


# -- cached folders ----------------------------------------------------------------------------------
def test_cached_folder_builds_once_and_rebuilds_a_damaged_one(tmp_path, caplog):
    builds = []

    def build(folder: Path) -> None:
        builds.append(folder)
        (folder / "a.bin").write_bytes(bytes(range(256)) * 10)
        (folder / "sub").mkdir()
        (folder / "sub" / "b.txt").write_text("b")

    first = cached_folder(tmp_path, "k", build, what="test data")
    assert first == tmp_path / "k" and len(builds) == 1
    assert cached_folder(tmp_path, "k", build, what="test data") == first and len(builds) == 1
    assert builds[0] != first, "built in a staging folder, then renamed into place"

    data = bytearray((first / "a.bin").read_bytes())
    data[100] ^= 1  # one changed byte, same size
    (first / "a.bin").write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="xltransfer.cached_folder"):
        again = cached_folder(tmp_path, "k", build, what="test data")
    assert len(builds) == 2 and (again / "a.bin").read_bytes() == bytes(range(256)) * 10
    assert "a.bin does not match its sha256" in caplog.text and "moved to" in caplog.text
    assert list((tmp_path / ".damaged").iterdir()), "the damaged folder is kept aside"

    (again / "sub" / "b.txt").unlink()
    cached_folder(tmp_path, "k", build, what="test data")
    assert len(builds) == 3


def test_a_failed_build_leaves_nothing(tmp_path):
    def build(folder: Path) -> None:
        (folder / "half").write_text("x")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        cached_folder(tmp_path, "k", build, what="test data")
    assert not (tmp_path / "k").exists() and not list((tmp_path / ".staging").iterdir())
    (tmp_path / ".staging" / "k.0123").mkdir()  # what a killed build leaves
    cached_folder(tmp_path, "k", lambda folder: (folder / "a").write_text("a"), what="test data")
    assert not list((tmp_path / ".staging").iterdir()) and (tmp_path / "k" / "a").read_text() == "a"


# -- prepared data: reused, invalidated ----------------------------------------------------------------
def _read(tmp_path: Path, lines: list[str], ledger, fingerprint: str = "corpus-a"):
    reads = []

    def source():
        reads.append(1)
        return iter(lines)

    text = corpus.read_text(source, fingerprint, tmp_path / "cache", ledger, "test corpus")
    return text, reads


def test_prepared_data_is_reused_across_pieces_and_runs_and_invalidated_by_its_inputs(tmp_path):
    lines = _lines(300)
    tokenizer = fixed_vocab_tokenizer([*WORDS, *(f"s{i}" for i in range(300))])
    ledger = corpus.PrepLedger()
    with ledger.piece() as first:
        text, reads = _read(tmp_path, lines, ledger)
        blocks = corpus.tokenized(text, tokenizer, 16, packed=True)
    assert not first["data_cached"] and first["data_prep_seconds"] > 0 and reads == [1]
    assert list(text) == lines
    # exactly the in-memory packing (what a piece trained on before: same bytes)
    assert [b["input_ids"] for b in blocks] == [
        b["input_ids"] for b in MaskedLanguageModelling().encode_packed(lines, tokenizer, 16)
    ]
    assert blocks.take([2, 0]) == [blocks[2], blocks[0]]

    # a second piece, and a second run (a new ledger, new objects, a new tokenizer object): nothing
    for new_ledger, new_tokenizer in ((ledger, tokenizer), (corpus.PrepLedger(), fixed_vocab_tokenizer(
            [*WORDS, *(f"s{i}" for i in range(300))]))):  # fmt: skip
        with new_ledger.piece() as again:
            text2, reads2 = _read(tmp_path, lines, new_ledger)
            corpus.tokenized(text2, new_tokenizer, 16, packed=True)
        assert again == {"data_prep_seconds": 0.0, "data_cached": True, "earlier_seconds": 0}
        assert reads2 == []

    def folders() -> int:
        return sum(not p.name.startswith(".") for p in (tmp_path / "cache" / "tokens").iterdir())

    before = folders()
    corpus.tokenized(text, tokenizer, 32, packed=True)  # max_length
    corpus.tokenized(text, tokenizer, 16, packed=False)  # packing
    corpus.tokenized(text, fixed_vocab_tokenizer(WORDS), 16, packed=True)  # tokenizer
    other, _ = _read(tmp_path, lines[:-1], ledger, fingerprint="corpus-b")  # corpus
    corpus.tokenized(other, tokenizer, 16, packed=True)
    assert folders() == before + 4


def test_line_marker_blocks_are_run_mlm_group_texts(tmp_path):
    """MAD-X's, BAD-X's and the MA's blocks as run_mlm.py's group_texts makes them (parovicm/badx
    run_bi_mlm.py): each line tokenized with its [CLS] … [SEP], the sequence cut into blocks of
    max_length, the remainder dropped; on disk exactly as in memory. MAD-G's TextDataset blocks
    (each between the markers) stay as they were, and the two are prepared apart."""
    lines = _lines(300)
    tokenizer = fixed_vocab_tokenizer([*WORDS, *(f"s{i}" for i in range(300))])
    sequence = [t for ids in tokenizer(lines)["input_ids"] for t in ids]  # markers per line
    expected = [sequence[i : i + 16] for i in range(0, len(sequence) // 16 * 16, 16)]
    in_memory = MaskedLanguageModelling().encode_packed(lines, tokenizer, 16, line_markers=True)
    assert [f["input_ids"] for f in in_memory] == expected
    assert sum(row.count(tokenizer.cls_token_id) for row in expected) > len(expected)  # many lines a block
    ledger = corpus.PrepLedger()
    text, _ = _read(tmp_path, lines, ledger)
    on_disk = corpus.tokenized(text, tokenizer, 16, packed=True, line_markers=True)
    assert [b["input_ids"] for b in on_disk] == expected
    text_dataset = corpus.tokenized(text, tokenizer, 16, packed=True)
    assert text_dataset.folder != on_disk.folder
    assert all(b["input_ids"][0] == tokenizer.cls_token_id for b in text_dataset)
    # one line shorter than a block is that line, with its markers
    assert MaskedLanguageModelling().encode_packed(lines[:1], tokenizer, 64, line_markers=True) == [
        {"input_ids": tokenizer(lines[0])["input_ids"]}
    ]


def test_unpacked_tokens_are_one_truncated_sentence_each(tmp_path):
    lines = _lines(40)
    tokenizer = fixed_vocab_tokenizer([*WORDS, *(f"s{i}" for i in range(40))])
    text, _ = _read(tmp_path, lines, corpus.PrepLedger())
    features = corpus.tokenized(text, tokenizer, 5, packed=False)
    expected = MaskedLanguageModelling().encode(lines, tokenizer, 5)
    assert [f["input_ids"] for f in features] == [f["input_ids"] for f in expected]
    assert list(features.lengths) == [len(f["input_ids"]) for f in expected]


def test_pieces_and_runs_share_a_corpus_and_count_its_preparation(tmp_path):
    text = _text_file(tmp_path / "qaa.txt", _lines(300))
    _text_file(tmp_path / "qab.txt", _lines(200))
    grid = _grid(tmp_path, f"{{qaa: {{train: {text}}}, qab: {{train: {tmp_path / 'qab.txt'}}}}}")
    ctx = _context(grid, tmp_path / "w")
    ctx.preflight()  # reads every corpus once, before any piece
    with ctx.data_prep.piece() as first:
        mlm_features(ctx, "qaa", "train", packed=True)
        mlm_features(ctx, "qaa", "dev", packed=True)
    assert not first["data_cached"] and first["earlier_seconds"] > 0  # the up-front read is its too
    with ctx.data_prep.piece() as second:  # another piece (e.g. another seed) on the same corpus
        mlm_features(ctx, "qaa", "train", packed=True)
    assert second["data_cached"] and second["data_prep_seconds"] == 0.0
    ctx2 = _context(grid, tmp_path / "w")  # a second run on the workdir
    ctx2.preflight()
    with ctx2.data_prep.piece() as third:
        features = mlm_features(ctx2, "qaa", "train", packed=True)
    assert third["data_cached"] and isinstance(features, corpus.TokenBlocks)


# -- held-out sets -------------------------------------------------------------------------------------
def test_held_out_sets_are_capped_contiguous_and_fixed():
    train, dev = corpus.held_out_ranges(10_000_000, None)
    assert len(dev) == 1 and dev[0][1] - dev[0][0] == corpus.HELD_OUT_CAP
    assert sum(b - a for a, b in train) == 10_000_000 - corpus.HELD_OUT_CAP
    assert corpus.held_out_ranges(10_000_000, None) == (train, dev)
    assert corpus.held_out_ranges(200, None)[1] == corpus.held_out_ranges(200, None)[1]
    assert sum(b - a for a, b in corpus.held_out_ranges(200, None)[1]) == 10  # 5% of a small corpus


def test_held_out_text_is_identical_across_runs_and_disjoint_from_training(tmp_path):
    lines = _lines(400)
    text = _text_file(tmp_path / "qaa.txt", lines)
    grid = _grid(tmp_path, f"{{qaa: {{train: {text}}}, qab: {{train: {text}}}}}")
    held = []
    for workdir in ("w1", "w2"):
        ctx = _context(grid, tmp_path / workdir)
        train, dev = ctx.examples("mlm", "qaa", "train"), ctx.examples("mlm", "qaa", "dev")
        assert len(dev) == 20 and len(train) == 380 and not set(train) & set(dev)
        start = lines.index(dev[0])
        assert list(dev) == lines[start : start + 20], "a contiguous slice"
        held.append(list(dev))
    assert held[0] == held[1]


def test_a_capped_source_trains_on_all_its_sentences_and_holds_out_more(tmp_path):
    """Hyper-X's 100K sentences (§4) are trained on; the held-out text comes on top (issue 20)."""
    lines = _lines(150)
    text = _text_file(tmp_path / "qaa.txt", lines)
    grid = _grid(tmp_path, f"{{qaa: {{train: {text}}}, qab: {{train: {text}}}}}", ", max_sentences: 100")
    ctx = _context(grid, tmp_path / "w")
    assert list(ctx.examples("mlm", "qaa", "train")) == lines[:100]
    assert list(ctx.examples("mlm", "qaa", "dev")) == lines[100:150]


def test_the_held_out_cap_is_a_grid_parameter_and_part_of_the_pieces_key(tmp_path):
    """A source's ``held_out_sentences`` caps the selection set (default corpus.HELD_OUT_CAP); the
    language adapters selected on another held-out set are other pieces, and `xlt plan` counts it."""
    from xltransfer.cost import LocalData

    lines = _lines(400)
    text = _text_file(tmp_path / "qaa.txt", lines)
    files = f"{{qaa: {{train: {text}}}, qab: {{train: {text}}}}}"
    default = _context(_grid(tmp_path, files), tmp_path / "w")
    capped_grid = tmp_path / "capped" / "grid.yaml"
    capped_grid.parent.mkdir()
    capped_grid.write_text(_grid(tmp_path, files, ", held_out_sentences: 7").read_text())
    capped = _context(capped_grid, tmp_path / "w")
    assert len(default.examples("mlm", "qaa", "dev")) == 20  # 5% of 400, under the default cap
    dev, train = capped.examples("mlm", "qaa", "dev"), capped.examples("mlm", "qaa", "train")
    assert len(dev) == 7 and len(train) == 393 and not set(dev) & set(train)
    mlm = MaskedLanguageModelling()
    assert mlm.data_fingerprint(capped.grid.source_for("mlm"), "qaa", "train") != mlm.data_fingerprint(
        default.grid.source_for("mlm"), "qaa", "train"
    )

    def language_adapter_keys(ctx):
        return {p.key for p in ctx.plan.pieces.values() if p.piece.kind == "language-adapter"}

    assert not language_adapter_keys(default) & language_adapter_keys(capped)
    assert LocalData(capped.plan).held_out("qaa") == 7 and LocalData(default.plan).held_out("qaa") == 20
    with pytest.raises(GridError, match="held_out_sentences"):
        _grid(tmp_path, files, ", held_out_sentences: 0")
        load_grid(tmp_path / "g" / "grid.yaml", tmp_path / "w")


# -- small corpora ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("count", [5, 19])
def test_a_few_lines_of_text_hold_out_one_sentence(tmp_path, count):
    lines = _lines(count)
    text = _text_file(tmp_path / "qaa.txt", lines)
    grid = _grid(tmp_path, f"{{qaa: {{train: {text}}}, qab: {{train: {text}}}}}")
    ctx = _context(grid, tmp_path / "w")
    ctx.preflight()
    train, dev = ctx.examples("mlm", "qaa", "train"), ctx.examples("mlm", "qaa", "dev")
    assert len(dev) == 1 and len(train) == count - 1
    for split in ("train", "dev"):
        for packed in (True, False):
            assert len(mlm_features(ctx, "qaa", split, packed)) >= 1


@pytest.mark.parametrize("text", ["one line of text s1\n", " ".join(WORDS * 40) + "\n"])
def test_one_line_of_text_is_refused_naming_the_file(tmp_path, text):
    path = tmp_path / "qaa.txt"
    path.write_text(text)
    grid = _grid(tmp_path, f"{{qaa: {{train: {path}}}, qab: {{train: {path}}}}}")
    with pytest.raises(GridError, match=rf"{path}: 1 line\(s\) of text.*at least 2"):
        _context(grid, tmp_path / "w").preflight()


def test_one_line_of_text_exits_2(tmp_path):
    path = _text_file(tmp_path / "qaa.txt", ["just one line"])
    grid = _grid(tmp_path, f"{{qaa: {{train: {path}}}, qab: {{train: {path}}}}}")
    xlt = Path(sys.executable).with_name("xlt")
    done = subprocess.run(
        [str(xlt), "run", str(grid), "--workdir", str(tmp_path / "w")], capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    assert f"{path}: 1 line(s) of text" in done.stderr and "at least 2" in done.stderr


# -- memory flat in corpus size --------------------------------------------------------------------------
def test_a_corpus_larger_than_the_memory_budget_trains_a_language_adapter_under_it(tmp_path):
    """Python allocations (tracemalloc) while a MAD-X language adapter reads, tokenises, packs and
    trains on a 6 MB corpus stay under a 5 MB budget: the corpus is never held as Python objects
    (read whole into lists, as before, its 750K tokens alone took ~45 MB of Python objects). Another
    language's adapter trains first, untraced: what any first piece loads (modules, the model's
    copy) is not the corpus's."""
    from conftest import python_memory, tiny_adapter_model

    vocabulary = [f"word{i:03d}" for i in range(400)]

    def write(path: Path, count: int) -> Path:
        with open(path, "w") as handle:
            for i in range(count):
                handle.write(" ".join(vocabulary[(i * 31 + j * 7) % 400] for j in range(10)) + "\n")
        return path

    big, small = write(tmp_path / "qaa.txt", 75_000), write(tmp_path / "qab.txt", 200)
    assert big.stat().st_size >= 6_000_000
    budget = 5_000_000
    method = "{name: mad-x, params: {la_steps: 3, la_eval_every: 3, la_batch_size: 4}}"
    grid = _grid(tmp_path, f"{{qaa: {{train: {big}}}, qab: {{train: {small}}}}}", method=method)
    tokenizer = fixed_vocab_tokenizer(vocabulary)
    tokenizer.mask_token = "[MASK]"
    ctx = _context(grid, tmp_path / "w", tokenizer)
    ctx.__dict__["_pristine_model"] = tiny_adapter_model(tmp_path / "model", len(tokenizer))
    adapters = {p.piece.languages: p for p in ctx.plan.pieces.values() if p.piece.kind == "language-adapter"}
    method = ctx.plan.trainers[adapters["qab",].key]
    method.train(adapters["qab",].piece, ctx)
    trained, _, peak = python_memory(lambda: method.train(adapters["qaa",].piece, ctx))
    assert trained.info["steps"] == 3
    assert 0 < trained.info["eval_seconds"] <= trained.info["train_seconds"]  # its selection passes
    assert len(ctx.examples("mlm", "qaa", "train")) == 75_000 - int(75_000 * corpus.HELD_OUT_FRACTION)
    assert peak < budget, f"{peak / 1e6:.1f} MB of Python objects for a 6 MB corpus"


def test_the_vocabulary_sample_is_capped_seeded_and_keeps_the_temperature_shares():
    from xltransfer.data.parallel import temperature_weights
    from xltransfer.data.vocabulary_text import temperature_sample

    texts = {"big": [f"b{i}" for i in range(5000)], "mid": [f"m{i}" for i in range(500)], "low": ["l1", "l2"]}
    sampled = temperature_sample(texts, 5.0, seed=3, cap=600)
    weights = temperature_weights({k: len(v) for k, v in texts.items()}, 5.0)
    assert abs(sum(map(len, sampled.values())) - 600) <= 3
    assert {k: len(v) for k, v in sampled.items()} == {k: round(w * 600) for k, w in weights.items()}
    assert sampled == temperature_sample(texts, 5.0, seed=3, cap=600)
    assert sampled != temperature_sample(texts, 5.0, seed=4, cap=600)


def test_prefetched_batches_are_the_streams_own_in_order_and_its_errors_come_through():
    from xltransfer.train import Prefetched

    def batches():
        yield from ({"i": n} for n in range(50))
        raise ValueError("a bad line")

    ahead = Prefetched(batches(), depth=3)
    assert [next(ahead)["i"] for _ in range(50)] == list(range(50))
    with pytest.raises(ValueError, match="a bad line"):
        next(ahead)
    ahead.close()


def test_closing_prefetched_batches_waits_for_the_thread():
    """After ``close`` no batch is made: the thread has ended (a daemon thread left inside torch at
    interpreter exit aborted a finished run with SIGABRT)."""
    import threading
    import time

    from xltransfer.train import Prefetched

    made: list[int] = []
    started = threading.Event()

    def batches():
        for n in range(1000):
            started.set()
            time.sleep(0.05)  # a batch being made when close is called
            made.append(n)
            yield {"i": n}

    ahead = Prefetched(batches(), depth=100)
    started.wait(timeout=60)
    ahead.close()
    count = len(made)
    time.sleep(0.3)
    assert len(made) == count, "a batch was made after close returned"


def test_fit_reports_the_time_its_steps_waited_for_batches():
    import torch

    from xltransfer.train import Schedule, Stream, fit

    model = torch.nn.Linear(2, 1)
    data = ({"x": torch.ones(4, 2)} for _ in iter(int, 1))
    stream = Stream("s", data, lambda m, b: m(b["x"]).pow(2).mean(), prefetch=True)
    result = fit(model, [stream], Schedule(3, 4, 0.1, eval_every=3))
    assert result.steps == 3 and 0.0 <= result.batch_wait_seconds < 60


def test_hub_text_is_streamed_capped_with_the_held_out_on_top_and_not_deduplicated(monkeypatch):
    from xltransfer.data.sources import HubSource

    read: list[int] = []

    def load_hub_split(dataset, config, split, revision):
        for i in range(1000):
            read.append(i)
            yield {"text": f"Sentence number {i // 2} is here."}  # each sentence twice

    monkeypatch.setattr("xltransfer.data.hub.load_hub_split", load_hub_split)
    hub = HubSource("wikimedia/wikipedia", "20231101.{lang}", None, {"train": "train"}, max_sentences=7)
    sentences = list(hub.iter_read(MaskedLanguageModelling(), "mt", "train", extra=3))
    assert sentences == [f"Sentence number {i // 2} is here." for i in range(10)]
    assert len(read) == 10, "reading stops once the capped text and its held-out part are read"
