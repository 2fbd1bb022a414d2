"""Machine translation: parallel readers, filtering, the joint vocabulary, both model families,
beam search, and sacrebleu scoring (also through `xlt evaluate`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sacrebleu
import torch
from conftest import DirectionsContext
from typer.testing import CliRunner
from xltransfer.tasks.mt import MachineTranslation

from xltransfer import registry
from xltransfer.cli import app
from xltransfer.data.parallel import (
    ParallelExample,
    directions,
    filter_pairs,
    load_parallel_rows,
    read_aligned,
    read_multiway,
    read_parallel,
    read_tsv,
    temperature_weights,
)
from xltransfer.data.sources import FilesSource, HubSource
from xltransfer.data.vocabulary_text import temperature_sample, texts_by_language
from xltransfer.errors import BackboneUnavailable, DataFormatError, XltError
from xltransfer.modules import seq2seq as s2s
from xltransfer.train import Schedule, Stream, batches_forever, fit, fixed_batches, predict_all

PUD_LANGUAGES = ("de", "en", "fr", "tr", "zh")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine OpenMP threads waiting
    for each other make a 1-second training run take a minute."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pud(shared_data: Path) -> Path:
    return shared_data / "mt" / "pud"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- reading ---------------------------------------------------------------------------------------------


def test_pud_pairs_are_read_whole_with_their_sentence_ids(shared_data):
    root = pud(shared_data)
    pairs = read_aligned(root / "en.txt", root / "de.txt", "en", "de", root / "ids.txt")
    assert len(pairs) == 1000
    assert (pairs[0].source_lang, pairs[0].target_lang, pairs[0].id) == ("en", "de", "n01001011")
    assert pairs[-1].target == (root / "de.txt").read_text(encoding="utf-8").split("\n")[999]
    # a data source names one file per language; ids.txt beside them names the sentences
    source = FilesSource({lang: {"test": root / f"{lang}.txt"} for lang in PUD_LANGUAGES})
    assert read_parallel(source, "en", "de", "test") == pairs


def test_multiway_files_give_many_to_many_or_english_centric_directions(shared_data):
    files = {lang: pud(shared_data) / f"{lang}.txt" for lang in PUD_LANGUAGES}
    assert len(directions(PUD_LANGUAGES)) == 20
    centric = directions(PUD_LANGUAGES, pivot="en")
    assert sorted(centric) == sorted(
        [(x, "en") for x in "de fr tr zh".split()] + [("en", x) for x in "de fr tr zh".split()]
    )
    examples = read_multiway(files, centric)
    assert len(examples) == 8 * 1000
    zh_en = [e for e in examples if (e.source_lang, e.target_lang) == ("zh", "en")]
    assert (
        zh_en[5].target == [e for e in examples if e.source_lang == "en" and e.target_lang == "fr"][5].source
    )


def test_unequal_pair_names_the_shorter_file_and_its_line_count(shared_data, tmp_path):
    lines = (pud(shared_data) / "de.txt").read_text(encoding="utf-8").split("\n")
    short = write(tmp_path / "de.txt", "\n".join(lines[:999]) + "\n")
    with pytest.raises(DataFormatError) as caught:
        read_aligned(pud(shared_data) / "en.txt", short, "en", "de")
    assert caught.value.path == short
    assert "999 lines" in str(caught.value) and "1000" in str(caught.value)


def test_empty_line_on_one_side_is_an_error_at_that_line(tmp_path):
    source = write(tmp_path / "en.txt", "One.\nTwo.\nThree.\n")
    target = write(tmp_path / "de.txt", "Eins.\n  \nDrei.\n")
    with pytest.raises(DataFormatError) as caught:
        read_aligned(source, target, "en", "de")
    assert (caught.value.path, caught.value.line) == (target, 2)


def test_tsv_pairs_headerless_or_with_language_columns(tmp_path):
    headerless = write(tmp_path / "en-de.tsv", "Good morning.\tGuten Morgen.\nThanks.\tDanke.\n")
    pairs = read_tsv(headerless)
    assert pairs[1] == ParallelExample("en", "de", "Thanks.", "Danke.", "2")
    with_header = write(tmp_path / "pairs.tsv", "id\tde\ten\ns1\tGuten Morgen.\tGood morning.\n")
    assert read_tsv(with_header) == [ParallelExample("de", "en", "Guten Morgen.", "Good morning.", "s1")]
    assert read_tsv(with_header, "en", "de")[0].source == "Good morning."  # any direction of the columns
    assert MachineTranslation().read_file(with_header)[0].target_lang == "en"
    with pytest.raises(DataFormatError, match="cannot tell the languages"):
        read_tsv(write(tmp_path / "pairs2.tsv", "Good morning.\tGuten Morgen.\n"))
    with pytest.raises(DataFormatError) as caught:
        read_tsv(write(tmp_path / "en-fr.tsv", "Yes.\tOui.\nNo.\n"))
    assert caught.value.line == 2


def test_hub_rows_read_in_either_direction(monkeypatch):
    import datasets

    rows = datasets.Dataset.from_list(
        [
            {"translation": {"de": "Guten Morgen.", "en": "Good morning."}},
            {"translation": {"de": "Danke.", "en": "Thanks."}},
        ]
    )
    seen = []
    monkeypatch.setattr("xltransfer.data.hub.load_hub_split", lambda *args: seen.append(args) or rows)
    de_en = MachineTranslation().read_hub("wmt/wmt16", "de-en", "test", None)
    assert de_en[1] == ParallelExample("de", "en", "Danke.", "Thanks.", "2")
    hub = HubSource("wmt/wmt16", "de-en", None, {"dev": "validation"})
    assert read_parallel(hub, "en", "de", "dev")[0].source == "Good morning."
    assert seen[-1] == ("wmt/wmt16", "de-en", "validation", None)
    with pytest.raises(DataFormatError, match="no 'fr' sentence"):
        load_parallel_rows("wmt/wmt16", "de-en", "test", None, "en", "fr")


# -- training data ---------------------------------------------------------------------------------


def test_filter_counts_what_it_drops_by_reason():
    def pair(n_source: int, n_target: int) -> ParallelExample:
        return ParallelExample("en", "de", " ".join(["a"] * n_source), " ".join(["b"] * n_target) or " ", "x")

    pairs = [
        pair(10, 10),
        pair(10, 25),
        pair(10, 26),
        pair(26, 10),
        pair(251, 250),
        pair(250, 250),
        pair(3, 0),
    ]
    result = filter_pairs(pairs, lambda text: len(text.split()))
    assert result.kept == [pairs[0], pairs[1], pairs[5]]  # a ratio of exactly 2.5 and 250 tokens are kept
    assert result.dropped == {"empty": 1, "too_long": 1, "length_ratio": 2}
    assert result.total_dropped == 4


def test_temperature_flattens_the_language_distribution():
    weights = temperature_weights({"big": 1000, "small": 10}, 5.0)
    expected = (10 / 1010) ** 0.2 / ((10 / 1010) ** 0.2 + (1000 / 1010) ** 0.2)
    assert weights["small"] == pytest.approx(expected) and 10 / 1010 < weights["small"] < 0.5
    assert temperature_weights({"a": 30, "b": 10}, 1.0) == pytest.approx({"a": 0.75, "b": 0.25})
    texts = {"a": ["x", "y"], "b": ["z", "w"]}
    assert temperature_sample(texts, 5.0) == texts  # equal sizes: the data itself
    sampled = temperature_sample({"big": [str(i) for i in range(1000)], "small": ["s1", "s2"]}, 5.0)
    assert len(sampled["small"]) > 2 and set(sampled["small"]) == {"s1", "s2"}


# -- the joint vocabulary ------------------------------------------------------------------------


def test_vocabulary_is_deterministic_with_tags_as_single_tokens(shared_data, tmp_path):
    texts = {
        lang: (pud(shared_data) / f"{lang}.txt").read_text(encoding="utf-8").split("\n")[:150]
        for lang in ("en", "de", "zh")
    }
    first = s2s.train_vocabulary(texts, size=1200, languages=["fr"])
    second = s2s.train_vocabulary(texts, size=1200, languages=["fr"])
    first.save(tmp_path / "a")
    second.save(tmp_path / "b")
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert "tokenizer.json" in files
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    assert s2s.train_vocabulary(texts, size=1400).tokenizer.get_vocab() != first.tokenizer.get_vocab()

    vocab = s2s.Vocabulary.load(tmp_path / "a")
    assert len(vocab) == 1200 and vocab.languages == ("de", "en", "fr", "zh")
    tokenizer = vocab.tokenizer
    sentence = texts["en"][3]
    tag_id = tokenizer.convert_tokens_to_ids("<2fr>")
    assert tag_id not in (tokenizer.unk_token_id, None)
    assert tokenizer(f"<2fr> {sentence}")["input_ids"] == [tag_id] + tokenizer(sentence)["input_ids"]
    assert tokenizer(sentence)["input_ids"][-1] == tokenizer.eos_token_id == s2s.EOS_ID
    assert tokenizer.decode(tokenizer(f"<2fr> {sentence}")["input_ids"], skip_special_tokens=True) == sentence
    assert tokenizer.convert_tokens_to_ids([s2s.PAD, s2s.UNK, s2s.BOS, s2s.EOS]) == [0, 1, 2, 3]


# -- the models ------------------------------------------------------------------------------------------


def hand_count(vocab: int, d: int, ffn: int, layers: int) -> int:
    """Post-norm Transformer with one tied embedding matrix and sinusoidal positions."""
    attention = 4 * (d * d + d)
    feed_forward = d * ffn + ffn + ffn * d + d
    norm = 2 * d
    encoder_layer = attention + feed_forward + 2 * norm
    decoder_layer = 2 * attention + feed_forward + 3 * norm
    return vocab * d + layers * (encoder_layer + decoder_layer)


def test_preset_parameter_counts_on_the_meta_device():
    base = s2s.count_parameters(s2s.transformer_config("transformer-base", 90_000))
    big = s2s.count_parameters(s2s.transformer_config("transformer-big", 90_000))
    assert base == pytest.approx(hand_count(90_000, 512, 2048, 6), rel=0.01)
    assert big == pytest.approx(hand_count(90_000, 1024, 4096, 6), rel=0.01)
    # Baziotis et al. 2022 (90k vocabulary): Table 1 Transformer-Base 90M, Table 2 Transformer-Big 269M
    assert base == pytest.approx(90e6, rel=0.01) and big == pytest.approx(269e6, rel=0.01)
    config = s2s.transformer_config("transformer-big", 1000)
    assert (config.d_model, config.encoder_attention_heads, config.dropout) == (1024, 16, 0.3)
    with pytest.raises(XltError, match="transformer-base"):
        s2s.transformer_config("transformer-huge", 1000)


@pytest.fixture
def en_de_100(shared_data) -> list[ParallelExample]:
    root = pud(shared_data)
    return read_aligned(root / "en.txt", root / "de.txt", "en", "de", root / "ids.txt")[:100]


def test_tiny_transformer_learns_and_beam_search_returns_text(en_de_100):
    vocab = s2s.train_vocabulary(texts_by_language(en_de_100), size=600)
    kept = filter_pairs(en_de_100, vocab.length).kept
    task = MachineTranslation(beam_size=5, max_new_tokens=12)
    features = task.encode(kept, vocab.tokenizer, max_length=48)
    assert features[0]["input_ids"][0] == vocab.tokenizer.convert_tokens_to_ids("<2de>")
    ends = [f["labels"][-1] == s2s.EOS_ID for f in features]
    assert ends == [vocab.length(e.target) <= 48 for e in kept] and any(ends)  # a cut target never ends
    config = s2s.transformer_config("transformer-base", len(vocab), d_model=32, layers=2, ffn_dim=64, heads=2)
    model = s2s.new_transformer(config, seed=1)
    assert (
        model.lm_head.weight
        is model.model.encoder.embed_tokens.weight
        is model.model.decoder.embed_tokens.weight
    )

    def collate(batch):
        return task.collate(batch, vocab.tokenizer)

    probe = collate(features[:32])
    assert probe["labels"].shape[0] == 32 and (probe["labels"] == -100).any()
    assert (probe["input_ids"][probe["attention_mask"] == 0] == s2s.PAD_ID).all()

    def probe_loss() -> float:
        model.eval()
        with torch.no_grad():
            return model(**probe).loss.item()

    before = probe_loss()
    stream = Stream("en-de", batches_forever(features, collate, 16, seed=0), task.loss)
    fit(model, [stream], Schedule(steps=30, batch_size=16, learning_rate=3e-3, eval_every=30), seed=0)
    assert probe_loss() < before - 0.5

    model.eval()
    with torch.no_grad():
        plain = MachineTranslation(label_smoothing=0.0).loss(model, probe)
        smoothed = task.loss(model, probe)
    assert plain.item() == pytest.approx(model(**probe).loss.item())
    assert smoothed.item() > plain.item()

    predictions = predict_all(model, task.predict, fixed_batches(features[:4], collate, 4))
    assert len(predictions) == 4 and all(isinstance(p, str) and p for p in predictions)
    assert not any("<2de>" in p or "</s>" in p or "▁" in p for p in predictions)
    assert set(task.score(kept[:4], predictions)) == {"bleu", "chrf"}


def test_encode_requires_the_target_tag(en_de_100):
    vocab = s2s.train_vocabulary({"en": [e.source for e in en_de_100]}, size=300)
    with pytest.raises(XltError, match="no target-language tag for de"):
        MachineTranslation().encode(en_de_100[:2], vocab.tokenizer, 32)
    with pytest.raises(XltError, match="no prediction head"):
        MachineTranslation().add_head(None, "mt")


def tiny_bert_folder(folder: Path, sentences: list[str]) -> Path:
    """A small BERT and a character-level WordPiece tokenizer saved like a hub snapshot."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    characters = sorted({c for s in sentences for c in s if not c.isspace()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *characters, *(f"##{c}" for c in characters)]
    folder.mkdir()
    write(folder / "vocab.txt", "\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=False)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_bert2bert_from_a_local_folder_trains_and_decodes(en_de_100, tmp_path):
    folder = tiny_bert_folder(tmp_path / "bert", [t for e in en_de_100 for t in (e.source, e.target)])
    model, tokenizer = s2s.bert2bert(folder, languages=["de", "en"])
    assert model.encoder.get_input_embeddings().num_embeddings == len(tokenizer)
    assert model.decoder.config.add_cross_attention and model.decoder.config.is_decoder
    task = MachineTranslation(max_new_tokens=6, beam_size=2)
    features = task.encode(en_de_100[:4], tokenizer, max_length=64)
    assert tokenizer.convert_ids_to_tokens(features[0]["input_ids"][:2]) == ["[CLS]", "<2de>"]
    lengths = [len(tokenizer(e.target, add_special_tokens=False)["input_ids"]) for e in en_de_100[:4]]
    assert [f["labels"][-1] == tokenizer.sep_token_id for f in features] == [n <= 64 for n in lengths]
    # the tag takes [CLS]'s place as the decoder's first token (the decoder input is [t, y])
    assert tokenizer.convert_ids_to_tokens(features[0]["decoder_input_ids"][:1]) == ["<2de>"]
    batch = task.collate(features, tokenizer)
    loss = task.loss(model, batch)
    loss.backward()
    assert torch.isfinite(loss)
    model.eval()
    starts = []  # the decoder's first token at each beam-search step's first call
    hook = model.decoder.register_forward_pre_hook(
        lambda module, args, kwargs: starts.append(kwargs["input_ids"][:, 0].tolist()), with_kwargs=True
    )
    predictions = task.predict(model, batch)
    hook.remove()
    assert len(predictions) == 4 and all(isinstance(p, str) for p in predictions)
    assert set(starts[0]) == {tokenizer.convert_tokens_to_ids("<2de>")}  # generation starts from the tag
    # the same architecture from a config, without weights on disk
    config_model, _ = s2s.bert2bert(model.config.encoder, tokenizer=tokenizer, languages=["de"])
    assert s2s.count_parameters(config_model.config) == sum(p.numel() for p in config_model.parameters())


def test_bert2bert_from_the_hub_fails_fast_offline(monkeypatch):
    monkeypatch.setattr("xltransfer.hub.hub_reachable", lambda: False)
    with pytest.raises(BackboneUnavailable, match="not reachable"):
        s2s.bert2bert("mbert", languages=["de"])


# -- scoring ------------------------------------------------------------------------------------------


def perturbed(lines: list[str]) -> list[str]:
    """A plausible system output: some sentences lose a word, others are reordered."""
    out = []
    for i, line in enumerate(lines):
        words = line.split()
        if i % 3 == 0:
            words = words[:-2] + words[-1:]
        elif i % 3 == 1:
            words = words[1:] + words[:1]
        out.append(" ".join(words))
    return out


def test_scorer_equals_sacrebleu_with_signatures(shared_data):
    task = MachineTranslation()
    gold = task.read_file(pud(shared_data) / "en.txt")
    references = [e.target for e in gold]
    hypotheses = perturbed(references)
    scores = task.score(gold, hypotheses)
    assert scores["bleu"] == sacrebleu.corpus_bleu(hypotheses, [references]).score
    assert scores["chrf"] == sacrebleu.corpus_chrf(hypotheses, [references]).score
    assert 0 < scores["bleu"] < 100
    assert "tok:13a" in task.signatures["bleu"] and "nc:6" in task.signatures["chrf"]
    # a Chinese target is tokenised for BLEU as sacrebleu does for Chinese
    zh = [e.target for e in task.read_file(pud(shared_data) / "zh.txt")][:200]
    zh_gold = [ParallelExample("en", "zh", "-", t, str(i)) for i, t in enumerate(zh)]
    zh_hyp = [t[: len(t) * 2 // 3] for t in zh]
    assert task.score(zh_gold, zh_hyp)["bleu"] == sacrebleu.corpus_bleu(zh_hyp, [zh], tokenize="zh").score
    assert "tok:zh" in task.signatures["bleu"]


@pytest.fixture
def mt_registered():
    added = "mt" not in registry.tasks
    if added:
        registry.tasks.register("mt", MachineTranslation)
    yield
    if added:
        registry.tasks.unregister("mt")


def test_xlt_evaluate_mt_equals_sacrebleu_on_files(shared_data, tmp_path, mt_registered):
    gold = pud(shared_data) / "en.txt"
    references = gold.read_text(encoding="utf-8").split("\n")[:-1]
    hypotheses = perturbed(references)
    pred = tmp_path / "hyp.txt"
    MachineTranslation().write_predictions([], hypotheses, pred)
    result = CliRunner().invoke(
        app, ["evaluate", "--task", "mt", "--gold", str(gold), "--pred", str(pred), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "bleu": sacrebleu.corpus_bleu(hypotheses, [references]).score,
        "chrf": sacrebleu.corpus_chrf(hypotheses, [references]).score,
    }
    write(pred, "\n".join(hypotheses[:-1]) + "\n")
    result = CliRunner().invoke(app, ["evaluate", "--task", "mt", "--gold", str(gold), "--pred", str(pred)])
    assert result.exit_code == 2
    assert "hyp.txt" in result.output and "999 lines" in result.output


def test_prediction_files_keep_one_line_per_sentence(tmp_path):
    task = MachineTranslation()
    gold = [ParallelExample("en", "de", "a", "x", "1"), ParallelExample("en", "de", "b", "y", "2")]
    path = tmp_path / "hyp.txt"
    task.write_predictions(gold, ["eins\nzwei", ""], path)
    assert task.predictions_from_file(gold, path) == ["eins zwei", ""]


def test_one_tsv_of_pairs_serves_both_directions_of_a_grid(tmp_path):
    from xltransfer.grid import load_grid

    write(tmp_path / "pairs.tsv", "en\tde\nthe house\tdas Haus\na dog\tein Hund\n")
    grid = write(
        tmp_path / "grid.yaml",
        "backbone: quickstart\n"
        "data: {mt: {type: files, files: {en-de: {train: pairs.tsv, test: pairs.tsv}}}}\n"
        "methods: [full-ft]\ntasks: [mt]\nlanguages: {source: de, target: [en]}\n",
    )
    loaded = load_grid(grid, tmp_path / "w")
    assert [(c.source_languages, c.target_language) for c in loaded.cells()] == [
        (("de",), "en"),
        (("en",), "de"),
    ]
    task, source = MachineTranslation(), loaded.source_for("mt")
    forward, backward = (task.read_data(source, unit, "train") for unit in ("en>de", "de>en"))
    assert [(e.source, e.target) for e in forward] == [("the house", "das Haus"), ("a dog", "ein Hund")]
    assert [(e.source_lang, e.source, e.target) for e in backward] == [
        ("de", "das Haus", "the house"),
        ("de", "ein Hund", "a dog"),
    ]
    assert task.has_data(source, "de>en", "test") and not task.has_data(source, "de>fr", "test")


def test_the_japanese_and_korean_tokenisers_are_dependencies():
    """An installation of xltransfer can score every ML50 target: sacrebleu comes with its ja/ko extras."""
    import re
    from importlib.metadata import requires

    declared = [re.match(r"sacrebleu\s*(?:\[([^\]]*)\])?", r) for r in requires("xltransfer")]
    (extras,) = [match.group(1) or "" for match in declared if match is not None]
    assert {"ja", "ko"} <= {extra.strip() for extra in extras.split(",")}


# Sentences written for this test (no Japanese or Korean data ships in ../shared/data)
JAPANESE = ["私は毎朝コーヒーを飲みます。", "この本はとても面白かったです。", "駅までバスで行きましょう。"]
KOREAN = ["저는 매일 아침 커피를 마십니다.", "이 책은 정말 재미있었어요.", "역까지 버스로 갑시다."]


@pytest.mark.parametrize(
    ("language", "references", "tokenizer"), [("ja", JAPANESE, "ja-mecab"), ("ko", KOREAN, "ko-mecab")]
)
def test_bleu_into_japanese_and_korean_tokenises_with_mecab_offline(language, references, tokenizer):
    """sacrebleu's tokenisers for Japanese and Korean (its choice for the target language) are
    dependencies: the en->ja and en->ko cells of ML50 score, and the signature says how."""
    task = MachineTranslation()
    gold = [ParallelExample("en", language, "-", t, str(i)) for i, t in enumerate(references)]
    hypotheses = [t[: len(t) * 2 // 3] + t[-1] for t in references]
    scores = task.score(gold, hypotheses)
    assert scores["bleu"] == sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenizer).score
    assert f"tok:{tokenizer}-0.996" in task.signatures["bleu"]
    # 13a splits neither language into words: a different (much lower) score
    assert scores["bleu"] > sacrebleu.corpus_bleu(hypotheses, [references], tokenize="13a").score
    # per-sentence statistics for significance tests use the same tokeniser
    rows = task.example_statistics(gold, hypotheses)
    assert task.score_totals([sum(column) for column in zip(*rows, strict=True)])["bleu"] == pytest.approx(
        scores["bleu"]
    )


def test_vocabulary_keeps_characters_as_rare_as_the_papers_coverage_allows(shared_data):
    """Baziotis et al. §4 fn. 2: coverage 0.99995. A word whose letters make up about 1/10,000 of the
    text keeps them (SentencePiece's default of 0.9995 made it <unk>)."""
    lines = (pud(shared_data) / "en.txt").read_text(encoding="utf-8").split("\n")[:300] + ["Жж жук."]
    tokenizer = s2s.train_vocabulary({"en": lines}, size=800).tokenizer
    assert s2s.CHARACTER_COVERAGE == 0.99995
    assert tokenizer.unk_token_id not in tokenizer("Жук")["input_ids"]


# -- the target tag on both sides -------------------------------------------------------------------------


def test_the_decoder_input_starts_with_the_target_tag_in_training_and_generation(en_de_100):
    """Baziotis et al. §2: H = encoder([t, x]), S = decoder([t, y, H]). Training feeds [t, y] and
    predicts [y, </s>]; beam search starts from each sentence's own tag."""
    examples = en_de_100[:3] + [e.reversed() for e in en_de_100[3:6]]
    vocab = s2s.train_vocabulary(texts_by_language(en_de_100), size=500)
    tokenizer = vocab.tokenizer
    task = MachineTranslation(beam_size=2, max_new_tokens=4)
    features = task.encode(examples, tokenizer, max_length=s2s.MtModelOptions().max_tokens)
    tags = [tokenizer.convert_tokens_to_ids(f"<2{e.target_lang}>") for e in examples]
    for feature, tag in zip(features, tags, strict=True):
        assert feature["input_ids"][0] == feature["decoder_input_ids"][0] == tag
        assert feature["decoder_input_ids"][1:] == feature["labels"][:-1]  # teacher forcing, shifted
        assert feature["labels"][-1] == s2s.EOS_ID and tag not in feature["labels"]
    batch = task.collate(features, tokenizer)
    config = s2s.transformer_config("transformer-base", len(vocab), d_model=32, layers=1, ffn_dim=64, heads=2)
    model = s2s.new_transformer(config, seed=1).eval()
    seen = []
    hook = model.model.decoder.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs["input_ids"].clone()), with_kwargs=True
    )
    with torch.no_grad():
        model(**batch)
        task.predict(model, batch)
    hook.remove()
    assert seen[0][:, 0].tolist() == tags  # training: the tag, not </s>, starts the decoder input
    assert seen[1][:, 0].tolist() == [tag for tag in tags for _ in range(2)]  # the first beam step


# -- one optimiser step, several directions ---------------------------------------------------------------


def test_a_translation_step_holds_several_directions_and_is_not_clipped(en_de_100, monkeypatch):
    """fairseq's multilingual batches mix directions; here each step accumulates
    ``mt_batches_per_step`` batches of one direction each (sampled with T=2). Neither the paper nor
    fairseq clips gradients; the dev history keeps the mismatched-source loss beside the dev loss."""
    from xltransfer import translation
    from xltransfer.cell import Piece
    from xltransfer.params import Params

    vocab = s2s.train_vocabulary(texts_by_language(en_de_100), size=500)
    ctx = DirectionsContext(en_de_100, vocab.tokenizer, MachineTranslation(), train_size=60)
    params = Params(
        {
            **translation.TRAINING_DEFAULTS,
            "mt_steps": 4,
            "mt_warmup_steps": 2,
            "mt_batch_tokens": 800,
            "mt_batches_per_step": 4,
            "mt_eval_every": 2,
        }
    )
    assert translation.TRAINING_DEFAULTS["mt_clip_norm"] == 0.0
    assert translation.TRAINING_DEFAULTS["mt_batches_per_step"] == 32  # 32 GPUs' batches per step (§4)

    def no_clipping(*args, **kwargs):
        raise AssertionError("MT gradients are clipped")

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", no_clipping)
    config = s2s.transformer_config("transformer-base", len(vocab), d_model=32, layers=1, ffn_dim=64, heads=2)
    model = s2s.new_transformer(config, seed=1)
    piece = Piece("full-ft", "translation-model", ("en>de", "de>en"), "mt", params, 1)
    result = translation.train_model(model, ctx, piece, params, "test")
    steps = [names.split("+") for names in result.first_streams]
    assert len(steps) == 4 and all(len(parts) == 4 for parts in steps)
    assert any(set(parts) == {"en>de", "de>en"} for parts in steps)  # both directions in one step
    assert sum(result.stream_counts.values()) == 16
    info = translation.trained(model, result).info
    assert [h["step"] for h in info["history"]] == [0, 2, 4]  # step 0: the untrained model
    assert all(h["mismatched_loss"] > 0 for h in info["history"])
    assert (
        info["first_steps"] == result.first_streams and info["batches_per_direction"] == result.stream_counts
    )


def test_a_step_of_no_batches_is_refused_when_the_grid_is_read(tmp_path):
    """``mt_batches_per_step: 0`` would divide the step's token budget by zero once training began."""
    from xltransfer.errors import GridError
    from xltransfer.grid import load_grid

    grid = Path(__file__).parents[1] / "leaderboards" / "generated-synthetic" / "grid.yaml"
    text = grid.read_text(encoding="utf-8")
    assert "mt_batches_per_step: 4" in text
    (tmp_path / "grid.yaml").write_text(text.replace("mt_batches_per_step: 4", "mt_batches_per_step: 0"))
    with pytest.raises(GridError, match=r"methods\[4\]\.params\.mt_batches_per_step.*must be positive"):
        load_grid(tmp_path / "grid.yaml", tmp_path / "w")
