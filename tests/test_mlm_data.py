"""MLM data as the reference implementations prepare it: sentences of scripts written without
spaces, text packed into max_length blocks for adapter MLM (sentences for Hyper-X), and the
100K-sentence cap as a per-source option rather than a rule for every hub text."""

from __future__ import annotations

import textwrap

import pytest
import torch
from conftest import fixed_vocab_tokenizer
from xltransfer.tasks import mlm as mlm_module
from xltransfer.tasks.mlm import MaskedLanguageModelling

from xltransfer import registry
from xltransfer.data.sources import FilesSource, HubSource
from xltransfer.errors import GridError
from xltransfer.grid import load_grid
from xltransfer.modules.mlm import mlm_eval_batches


def _hub_rows(monkeypatch, rows) -> list[int]:
    """Serve ``rows`` as the hub split; returns the list the number of rows read is appended to."""
    read: list[int] = []

    def load_hub_split(dataset, config, split, revision):
        for i, row in enumerate(rows):
            read.append(i)
            yield row

    monkeypatch.setattr("xltransfer.data.hub.load_hub_split", load_hub_split)
    return read


def test_chinese_wikipedia_paragraphs_yield_their_sentences(shared_data, monkeypatch):
    """PUD's Chinese sentences run together as Wikipedia writes a paragraph (no space after 。)."""
    lines = (shared_data / "mt" / "pud" / "zh.txt").read_text(encoding="utf-8").splitlines()[:100]
    paragraphs = ["".join(lines[i : i + 10]) for i in range(0, len(lines), 10)]
    _hub_rows(monkeypatch, [{"text": "\n".join(paragraphs[:5])}, {"text": "\n".join(paragraphs[5:])}])
    sentences = MaskedLanguageModelling().read_hub("wikimedia/wikipedia", "20231101.zh", "train", None)
    assert len(sentences) >= 95
    # each PUD line that ends a sentence comes back whole (but a few whose neighbours end in an
    # unpaired quotation mark, which the splitter attaches to the sentence before)
    ended = [line for line in lines if line.endswith(("。", "？"))]
    assert sum(line in sentences for line in ended) >= 0.9 * len(ended)


def test_cantonese_sentences_are_split_and_kept():
    paragraph = "香港係中國嘅一個特別行政區。佢位於珠江口東邊，北面同深圳接壤！你知唔知？「我知。」目錄"
    assert mlm_module.split_sentences(paragraph) == [
        "香港係中國嘅一個特別行政區。",
        "佢位於珠江口東邊，北面同深圳接壤！",
        "你知唔知？",
        "「我知。」",
        "目錄",
    ]
    # Han characters count as words; a two-character heading and a two-word fragment do not pass
    sentences = ("你知唔知？", "目錄", "Hello , world .", "This one passes.")
    assert [mlm_module.word_count(s) for s in sentences] == [4, 2, 2, 3]


def test_hub_text_is_not_capped_unless_the_source_says_so(monkeypatch):
    rows = [{"text": f"Sentence number {i} is here."} for i in range(100_050)]
    read = _hub_rows(monkeypatch, rows)
    hub = HubSource("wikimedia/wikipedia", "20231101.{lang}", None, {"train": "train"})
    assert len(hub.read(MaskedLanguageModelling(), "mt", "train")) == 100_050  # BAD-X, MAD-G: everything
    read.clear()
    capped = HubSource("wikimedia/wikipedia", "20231101.{lang}", None, {"train": "train"}, max_sentences=7)
    assert capped.read(MaskedLanguageModelling(), "mt", "train") == [
        f"Sentence number {i} is here." for i in range(7)
    ]
    assert len(read) == 7, "a capped source stops reading once it has its sentences"
    assert capped.fingerprint("text", "mt", "train") != hub.fingerprint("text", "mt", "train")


def test_max_sentences_in_the_grid(tmp_path):
    text = tmp_path / "mt.txt"
    text.write_text("".join(f"Line {i} of the text.\n" for i in range(50)))
    grid = tmp_path / "grid.yaml"
    body = """
        backbone: quickstart
        data:
          pos: synthetic
          mlm:
            type: per-language
            max_sentences: 100000
            languages:
              mt: {{type: files, files: {{mt: {{train: mt.txt}}}}, max_sentences: {mt_cap}}}
            default: {{type: hub, dataset: wikimedia/wikipedia, config: '20231101.{{lang}}'}}
        methods: [mad-x]
        tasks: [pos]
        languages: {{source: qaa, target: [qab]}}
    """
    grid.write_text(textwrap.dedent(body.format(mt_cap=20)))
    source = load_grid(grid, tmp_path / "w").source_for("mlm")
    mlm = registry.tasks.get("mlm")()
    assert len(source.read(mlm, "mt", "train")) == 20
    assert source.source("en").max_sentences == 100_000  # the per-language cap is its sources' default
    assert source.describe()["languages"]["mt"]["max_sentences"] == 20
    capped = source.fingerprint("text", "mt", "train")
    assert capped != FilesSource({"mt": {"train": text}}).fingerprint("text", "mt", "train")

    grid.write_text(textwrap.dedent(body.format(mt_cap=0)))
    with pytest.raises(GridError, match=r"data\.mlm\.languages\.mt\.max_sentences.*must be positive"):
        load_grid(grid, tmp_path / "w")


def test_packed_blocks_fill_max_length():
    words = [f"w{i}" for i in range(40)]
    tokenizer = fixed_vocab_tokenizer(words)
    tokenizer.mask_token = "[MASK]"  # id 4 of the fixed vocabulary
    sentences = [" ".join(words[i : i + 3]) for i in range(0, 39, 3)]  # 13 sentences, 39 tokens
    mlm = MaskedLanguageModelling()
    packed = mlm.encode_packed(sentences, tokenizer, max_length=10)
    assert len(packed) == 4  # 39 tokens in blocks of 8 between [CLS] and [SEP]: the last 7 dropped
    stream = tokenizer(sentences, add_special_tokens=False)["input_ids"]
    flat = [t for ids in stream for t in ids]
    for i, feature in enumerate(packed):
        ids = feature["input_ids"]
        assert len(ids) == 10 and ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        assert ids[1:-1] == flat[8 * i : 8 * i + 8]  # sentences run on across blocks, none cut
    batch = mlm.collate(packed, tokenizer)
    assert batch["input_ids"].shape == (4, 10) and bool(batch["attention_mask"].all())
    # held-out blocks are corrupted the same way every time: checkpoints compare on the same tokens
    first, again = (mlm_eval_batches(mlm, packed, tokenizer, batch_size=2) for _ in range(2))
    assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(first, again, strict=True))
    assert all(torch.equal(a["labels"], b["labels"]) for a, b in zip(first, again, strict=True))
    # a text shorter than one block is one shorter block, not nothing
    assert [len(f["input_ids"]) for f in mlm.encode_packed(sentences[:2], tokenizer, 10)] == [8]
    # one example per sentence for Hyper-X's streams
    assert [len(f["input_ids"]) for f in mlm.encode(sentences[:2], tokenizer, 10)] == [5, 5]


def test_each_method_packs_as_its_reference_code():
    packing = {
        name: registry.methods.get(name).defaults.get("la_mlm_packing")
        for name in ("mad-x", "bad-x", "multilingual-adapter", "mad-g")
    }
    assert packing == dict.fromkeys(packing, True)
    assert registry.methods.get("hyper-x").defaults["mlm_packing"] is False
    # each line's markers inside the blocks (run_mlm.py group_texts), but MAD-G's TextDataset blocks
    markers = {
        name: registry.methods.get(name).defaults["la_mlm_line_markers"]
        for name in ("mad-x", "bad-x", "multilingual-adapter", "mad-g")
    }
    assert markers == {"mad-x": True, "bad-x": True, "multilingual-adapter": True, "mad-g": False}


class _Captured(Exception):
    pass


@pytest.mark.parametrize("method", ["mad-x", "hyper-x", "mad-x-64"])
def test_language_adapters_train_on_packed_blocks_and_hyper_x_on_sentences(
    tiny_workdir, tmp_path, monkeypatch, method
):
    """The batches an MLM stream feeds the training loop (captured as ``fit`` receives them); with
    ``la_max_length`` the LA's blocks have that length, not the grid's (BAD-X's 512)."""
    from conftest import write_tiny_grid

    from xltransfer.context import RunContext
    from xltransfer.planning import build_plan
    from xltransfer.workspace import Workspace

    methods = {
        "mad-x": "  - {name: mad-x, params: {la_steps: 2, la_batch_size: 4}}\n",
        "hyper-x": "  - {name: hyper-x, variants: [small], params: {steps: 2, batch_size: 4}}\n",
        "mad-x-64": "  - {name: mad-x, params: {la_steps: 2, la_batch_size: 4, la_max_length: 64}}\n",
    }
    grid_file = write_tiny_grid(tmp_path / "g", targets="[qab]")
    text = grid_file.read_text()
    grid_file.write_text(
        text[: text.index("methods:")] + "methods:\n" + methods[method] + text[text.index("tasks:") :]
    )
    workspace = Workspace.at(tiny_workdir)
    plan = build_plan(load_grid(grid_file, workspace.root))
    ctx = RunContext(plan, workspace)
    ctx.prepare()
    kind = "hypernetwork" if method == "hyper-x" else "language-adapter"
    key = next(k for k, p in plan.pieces.items() if p.piece.kind == kind)
    captured = {}

    def fit(model, streams, *args, **kwargs):
        captured.update({s.name: next(s.batches) for s in streams})
        raise _Captured

    trainer_module = {"mad-x": "stacked", "mad-x-64": "stacked", "hyper-x": "hyper_x"}[method]
    monkeypatch.setattr(f"xltransfer.methods.{trainer_module}.fit", fit)
    with pytest.raises(_Captured):
        plan.trainers[key].train(plan.pieces[key].piece, ctx)
    mlm_batches = [b for name, b in captured.items() if method != "hyper-x" or name.startswith("mlm/")]
    assert mlm_batches
    length = 64 if method == "mad-x-64" else plan.grid.max_length
    assert length != plan.grid.max_length or method != "mad-x-64"
    for batch in mlm_batches:
        full = batch["input_ids"].shape[1] == length and bool(batch["attention_mask"].all())
        assert full == (method != "hyper-x"), batch["attention_mask"].sum(dim=1)


def test_bilingual_and_multilingual_adapters_read_their_text_in_order():
    """parovicm/badx run_bi_mlm.py feeds BAs and MAs from an IterableDataset: each language's blocks
    in file order, cycled, never shuffled (a batch may span the end and the start); MAD-X's language
    adapters (run_mlm.py, a map-style dataset) and MAD-G's generator shuffle."""
    from xltransfer.modules.mlm import mlm_stream
    from xltransfer.train import batches_in_order

    features = [{"input_ids": [i]} for i in range(10)]
    batches = batches_in_order(features, lambda rows: [r["input_ids"][0] for r in rows], 4)
    assert [next(batches) for _ in range(4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1], [2, 3, 4, 5]]
    in_order = {
        name: registry.methods.get(name).defaults.get("mlm_in_order", False)
        for name in ("mad-x", "bad-x", "multilingual-adapter", "mad-g")
    }
    assert in_order == {"mad-x": False, "bad-x": True, "multilingual-adapter": True, "mad-g": False}
    bad_x = registry.methods.get("bad-x")()
    assert "mlm_in_order" in bad_x.adapter_piece(("en", "mt"), 1).params  # part of the BA's key

    words = [f"w{i}" for i in range(40)]
    tokenizer = fixed_vocab_tokenizer(words)
    tokenizer.mask_token = "[MASK]"
    blocks = [{"input_ids": [2, 10 + i, 3]} for i in range(6)]
    mlm = MaskedLanguageModelling()
    for ordered, expect_order in ((True, True), (False, False)):
        stream = mlm_stream("x", mlm, blocks, tokenizer, 2, seed=3, in_order=ordered)
        seen = [int(label) for _ in range(3) for label in _originals(next(stream.batches))]
        assert (seen == [10 + i for i in range(6)]) is expect_order


def _originals(batch) -> list[int]:
    """The middle token of each row, whether the corruption masked it or not."""
    ids, labels = batch["input_ids"][:, 1], batch["labels"][:, 1]
    return [int(label) if label >= 0 else int(i) for i, label in zip(ids, labels, strict=True)]
