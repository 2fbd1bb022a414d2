"""Parallel text on disk (issue 19, MT at ML50 scale): a direction's pairs read once into a
memory-mapped Arrow file, filtered and encoded once per (pairs, vocabulary, max_tokens, filter),
and read by index by the training stream; the same features, batches and trained weights as the
in-memory path."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from conftest import DirectionsContext, python_memory
from xltransfer.tasks.mt import MachineTranslation

from xltransfer.context import RunContext
from xltransfer.data import corpus
from xltransfer.data.parallel import PairCorpus, ParallelExample, read_aligned, read_pairs
from xltransfer.data.vocabulary_text import texts_by_language
from xltransfer.grid import load_grid
from xltransfer.modules import seq2seq as s2s
from xltransfer.options import MtModelOptions
from xltransfer.planning import build_plan
from xltransfer.train import batches_forever, trainable_state
from xltransfer.workspace import Workspace


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def en_de(shared_data) -> list[ParallelExample]:
    root = shared_data / "mt" / "pud"
    return read_aligned(root / "en.txt", root / "de.txt", "en", "de", root / "ids.txt")[:200]


@pytest.fixture(scope="module")
def vocab(en_de):
    return s2s.train_vocabulary(texts_by_language(en_de), size=500)


def _pairs(cache: Path, examples, ledger=None, fingerprint="pud-en-de", reads=None) -> PairCorpus:
    def read():
        if reads is not None:
            reads.append(1)
        return iter(examples)

    source, target = examples[0].source_lang, examples[0].target_lang
    return read_pairs(read, fingerprint, source, target, cache, ledger or corpus.PrepLedger(), "test pairs")


def _peak(work) -> int:
    return python_memory(work)[2]


def _task(max_tokens: int = 30) -> MachineTranslation:
    task = MachineTranslation()
    task.options = MtModelOptions(max_tokens=max_tokens)
    return task


def _in_memory(task, examples, tokenizer, max_tokens):
    """The features as the list path made them: filter the direction, then encode what is kept."""
    return task.encode(task.training_examples(examples, tokenizer), tokenizer, max_tokens)


def test_features_on_disk_are_the_list_paths_and_so_are_the_batches(tmp_path, en_de, vocab):
    task = _task(30)  # a short limit, so the paper's filter drops some pairs
    pairs = _pairs(tmp_path, en_de)
    assert list(pairs) == en_de and pairs[3] == en_de[3] and pairs[-1] == en_de[-1]
    on_disk = task.training_features(pairs, vocab.tokenizer, 30)
    expected = _in_memory(task, en_de, vocab.tokenizer, 30)
    assert 0 < len(expected) < len(en_de)  # the filter dropped pairs
    assert isinstance(on_disk, corpus.TokenBlocks) and list(on_disk) == expected
    assert list(on_disk.lengths) == [max(len(f["input_ids"]), len(f["labels"])) for f in expected]
    assert on_disk.take([5, 1]) == [expected[5], expected[1]]

    def collate(features):
        return task.collate(features, vocab.tokenizer)

    old = batches_forever(expected, collate, 200, seed=3, max_tokens=200)
    new = batches_forever(on_disk, collate, 200, seed=3, max_tokens=200)
    for _ in range(3 * len(expected) // 5):  # past an epoch: the reshuffle is the same too
        a, b = next(old), next(new)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_features_encoded_by_several_processes_keep_the_pairs_order(tmp_path, en_de, vocab, monkeypatch):
    """A large direction is encoded by worker processes (``corpus.processes``): same features."""
    monkeypatch.setattr(corpus, "PROC_ROWS", 40)
    monkeypatch.setattr(corpus, "processes", lambda rows: 2)
    task = _task(30)
    on_disk = task.training_features(_pairs(tmp_path, en_de), vocab.tokenizer, 30)
    assert list(on_disk) == _in_memory(task, en_de, vocab.tokenizer, 30)


class _Directions(DirectionsContext):
    """Features as lists (the old path) or on disk (``training_features``)."""

    def __init__(self, examples, tokenizer, cache: Path | None):
        super().__init__(examples, tokenizer, _task(48), train_size=150)
        self.cache = cache

    def features(self, task, unit, split, encoding=None):
        examples = self.examples(task, unit, split)
        if split != "train":
            return self.mt.encode(examples, self.tokenizer, 48)
        if self.cache is None:
            return _in_memory(self.mt, examples, self.tokenizer, 48)
        pairs = _pairs(self.cache, examples, fingerprint=unit)
        return self.mt.training_features(pairs, self.tokenizer, 48)


def test_a_translation_model_trained_on_features_on_disk_is_the_same_to_the_bit(tmp_path, en_de, vocab):
    """Temperature sampling of directions reads rows by index: same directions, batches and weights."""
    from xltransfer import translation
    from xltransfer.cell import Piece
    from xltransfer.params import Params

    params = Params(
        {
            **translation.TRAINING_DEFAULTS,
            "mt_steps": 3,
            "mt_warmup_steps": 1,
            "mt_batch_tokens": 600,
            "mt_batches_per_step": 3,
            "mt_eval_every": 3,
        }
    )
    config = s2s.transformer_config("transformer-base", len(vocab), d_model=16, layers=1, ffn_dim=32, heads=2)
    piece = Piece("full-ft", "translation-model", ("en>de", "de>en"), "mt", params, 1)
    states, results = [], []
    for cache in (None, tmp_path):
        ctx = _Directions(en_de, vocab.tokenizer, cache)
        if cache is not None:
            assert all(isinstance(ctx.features("mt", u, "train"), corpus.TokenBlocks) for u in ctx.data)
        model = s2s.new_transformer(config, seed=1)
        results.append(translation.train_model(model, ctx, piece, params, "test"))
        states.append(trainable_state(model))
    assert results[0].first_streams == results[1].first_streams
    assert results[0].stream_counts == results[1].stream_counts
    assert results[0].history == results[1].history
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][name], states[1][name]) for name in states[0])


def test_prepared_pairs_and_features_are_reused_and_invalidated_by_their_inputs(tmp_path, en_de, vocab):
    task, ledger, reads = _task(30), corpus.PrepLedger(), []
    with ledger.piece() as first:
        task.training_features(_pairs(tmp_path, en_de, ledger, reads=reads), vocab.tokenizer, 30)
    assert not first["data_cached"] and reads == [1]
    # another piece, and another run (new ledger, new task and tokenizer objects): nothing prepared
    copy = s2s.Vocabulary(s2s.Vocabulary.load(_saved(vocab, tmp_path / "v")).tokenizer)
    for new_ledger, tokenizer in ((ledger, vocab.tokenizer), (corpus.PrepLedger(), copy.tokenizer)):
        with new_ledger.piece() as again:
            pairs = _pairs(tmp_path, en_de, new_ledger, reads=reads)
            _task(30).training_features(pairs, tokenizer, 30)
        assert again == {"data_prep_seconds": 0.0, "data_cached": True, "earlier_seconds": 0}
    assert reads == [1]

    def folders(kind: str) -> int:
        return sum(not p.name.startswith(".") for p in (tmp_path / kind).iterdir())

    assert (folders("pairs"), folders("mt-features")) == (1, 1)
    pairs = _pairs(tmp_path, en_de)
    task.training_features(pairs, vocab.tokenizer, 40)  # max_tokens
    _task(40).training_features(pairs, vocab.tokenizer, 30)  # the filter's limit
    other_vocab = s2s.train_vocabulary(texts_by_language(en_de), size=450)
    task.training_features(pairs, other_vocab.tokenizer, 30)  # the vocabulary
    changed = _pairs(tmp_path, en_de[:-1], fingerprint="pud-en-de-changed")  # the pairs
    assert len(changed) == len(en_de) - 1
    task.training_features(changed, vocab.tokenizer, 30)
    assert (folders("pairs"), folders("mt-features")) == (2, 5)


def _saved(vocab, folder: Path) -> Path:
    folder.mkdir(parents=True)
    vocab.save(folder)
    return folder


def _mt_grid(tmp_path: Path, count: int) -> Path:
    """A grid whose en-de training data is ``count`` line-aligned sentence pairs of made-up words."""
    rng = random.Random(0)
    words = [f"w{i}" for i in range(40)]
    lines = [
        [" ".join(rng.choices(words, k=rng.randint(3, 9))) + f" n{i}" for i in range(count)] for _ in "ab"
    ]
    for lang, text in zip(("en", "de"), lines, strict=True):
        (tmp_path / f"{lang}.txt").write_text("".join(f"{line}\n" for line in text), encoding="utf-8")
        (tmp_path / f"{lang}.test.txt").write_text(
            "".join(f"{line}\n" for line in text[:20]), encoding="utf-8"
        )
    files = {
        lang: f"{{train: {tmp_path / f'{lang}.txt'}, test: {tmp_path / f'{lang}.test.txt'}}}"
        for lang in ("en", "de")
    }
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        "backbone: quickstart\n"
        f"data: {{mt: {{type: files, files: {{en: {files['en']}, de: {files['de']}}}}}}}\n"
        "methods: [full-ft]\ntasks: [mt]\nlanguages: {source: en, target: [de]}\n"
        "mt: {vocab_size: 120}\n",
        encoding="utf-8",
    )
    return grid


def _context(grid: Path, workdir: Path, tokenizer) -> RunContext:
    workspace = Workspace.at(workdir)
    ctx = RunContext(build_plan(load_grid(grid, workspace.root)), workspace)
    ctx.use_tokenizer("mt", tokenizer, "vocabulary-key")
    return ctx


def test_mt_features_are_read_by_index_within_a_memory_budget(tmp_path):
    """A run's MT training features are a table on disk; drawing a training stream's batches from a
    direction whose features as Python lists would take several times the budget stays under it."""
    grid = _mt_grid(tmp_path, 12_000)
    texts = [
        line for name in ("en", "de") for line in (tmp_path / f"{name}.txt").read_text().split("\n")[:2000]
    ]
    tokenizer = s2s.train_vocabulary({"en": texts[:2000], "de": texts[2000:]}, 120, ["en", "de"]).tokenizer
    ctx = _context(grid, tmp_path / "w", tokenizer)
    ctx.preflight()
    assert isinstance(ctx.examples("mt", "en>de", "train"), PairCorpus)
    features = ctx.features("mt", "en>de", "train")
    assert isinstance(features, corpus.TokenBlocks) and len(features) > 10_000
    ctx2 = _context(grid, tmp_path / "w", tokenizer)  # a second run: read and encoded already
    ctx2.preflight()
    with ctx2.data_prep.piece() as prep:
        again = ctx2.features("mt", "en>de", "train")
    assert prep["data_cached"] and again.folder == features.folder

    task = ctx2.task("mt")

    def batches(features):
        stream = batches_forever(features, lambda f: task.collate(f, tokenizer), 400, 0, max_tokens=400)
        return [next(stream) for _ in range(20)]

    budget = 4 * 1024 * 1024
    pairs = ctx2.examples("mt", "en>de", "train")
    # the old path: the direction's pairs and features as Python lists
    as_lists = _peak(lambda: batches(_in_memory(task, list(pairs), tokenizer, 250)))
    on_disk = _peak(lambda: batches(again))
    assert as_lists > 3 * budget, f"{as_lists / 2**20:.1f} MiB: make the corpus larger than the budget"
    assert on_disk < budget, f"{on_disk / 2**20:.1f} MiB while drawing batches from features on disk"


# -- the vocabulary's text sample at ML50 scale -------------------------------------------------------
def _direction(source: str, target: str, count: int) -> list[ParallelExample]:
    """Multi-way data: sentence i of a language is the same in every direction it is part of."""
    return [
        ParallelExample(source, target, f"{source} sentence {i}", f"{target} sentence {i}", str(i))
        for i in range(count)
    ]


def test_above_the_cap_the_vocabulary_sample_counts_sentences_once_and_keeps_the_shares():
    """Past the cap the sample is drawn in two passes over the pairs (no list of sentences): each
    language gets the share the list path gives it, of its distinct sentences (a sentence repeated
    in several directions counts once), a language smaller than its share whole passes over it; the
    same sample for the same seed whatever the order of directions and pairs, another for another."""
    from xltransfer.data.vocabulary_text import temperature_sample, vocabulary_sample

    corpora = [
        _direction("en", "de", 3000),
        _direction("de", "en", 3000),
        _direction("en", "fr", 3000),
        _direction("fr", "en", 3000),
        _direction("en", "sw", 40),
    ]
    listed = temperature_sample(texts_by_language(e for c in corpora for e in c), 5.0, seed=0, cap=1000)
    sample = vocabulary_sample(corpora, 5.0, seed=0, cap=1000)
    sizes = {lang: len(lines) for lang, lines in sample.items()}
    assert sizes == {lang: len(lines) for lang, lines in listed.items()}
    assert sizes["sw"] > 40 and set(sample["sw"]) == {f"sw sentence {i}" for i in range(40)}
    for lang in ("en", "de", "fr"):
        assert len(set(sample[lang])) == sizes[lang] < 3000  # distinct: sampled without replacement
        assert set(sample[lang]) <= {f"{lang} sentence {i}" for i in range(3000)}
    shuffled = [list(reversed(c)) for c in reversed(corpora)]
    assert vocabulary_sample(shuffled, 5.0, seed=0, cap=1000) == sample
    other = vocabulary_sample(corpora, 5.0, seed=1, cap=1000)
    assert {lang: len(lines) for lang, lines in other.items()} == sizes and other != sample
    # under the cap the list path's own sample, as the stored vocabularies were learned from
    assert vocabulary_sample(corpora[-1:], 5.0, seed=0) == temperature_sample(
        texts_by_language(corpora[-1]), 5.0, seed=0
    )


def test_distinct_counts_are_exact_below_the_sketch_and_within_two_percent_above():
    from xltransfer.data.vocabulary_text import DISTINCT_SKETCH, _hash, _SmallestHashes

    for count in (DISTINCT_SKETCH // 2, 200_000):
        sketch = _SmallestHashes(DISTINCT_SKETCH)
        for _ in range(2):  # every sentence seen twice
            for i in range(count):
                sketch.add(_hash(f"sentence {i}", b"vocabulary-0"), None)
        estimate = sketch.distinct()
        assert estimate == count if count < DISTINCT_SKETCH else abs(estimate / count - 1) < 0.02


def test_parallel_files_larger_than_the_budget_are_read_and_sampled_under_it(tmp_path):
    """A direction's line-aligned files are read a line at a time into pairs on disk, and the
    vocabulary's sample is drawn from them past its cap, each under a budget that the same pairs as
    Python lists (the old readers, the old sample's list of every sentence) exceed several times."""
    from xltransfer.data.parallel import iter_aligned
    from xltransfer.data.vocabulary_text import vocabulary_sample

    count = 60_000
    for lang in ("en", "de"):
        with open(tmp_path / f"{lang}.txt", "w", encoding="utf-8") as handle:
            handle.writelines(f"{lang} sentence number {i} of the corpus\n" for i in range(count))

    en, de = tmp_path / "en.txt", tmp_path / "de.txt"

    def on_disk() -> PairCorpus:  # read once into the cache, then opened from it
        pairs = lambda: iter_aligned(en, de, "en", "de")  # noqa: E731
        return read_pairs(pairs, "big", "en", "de", tmp_path / "cache", corpus.PrepLedger(), "big pairs")

    # what any first read loads (datasets, pyarrow) is not the corpus's: a small direction first
    small = _direction("en", "de", 100)
    read_pairs(lambda: iter(small), "small", "en", "de", tmp_path / "cache", corpus.PrepLedger(), "small")
    budget = 4 * 1024 * 1024
    as_lists = _peak(lambda: texts_by_language(read_aligned(en, de, "en", "de")))
    reading = _peak(on_disk)
    sampling = _peak(lambda: vocabulary_sample([on_disk()], 5.0, seed=0, cap=2000))
    pairs = on_disk()
    assert len(pairs) == count and pairs[-1].target == f"de sentence number {count - 1} of the corpus"
    assert as_lists > 3 * budget, f"{as_lists / 2**20:.1f} MiB: make the files larger than the budget"
    assert reading < budget, f"{reading / 2**20:.1f} MiB while reading the files into pairs on disk"
    assert sampling < budget, f"{sampling / 2**20:.1f} MiB while sampling the vocabulary's text"
