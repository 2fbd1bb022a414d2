"""The quickstart backbone: a small BERT pretrained by MLM on some synthetic languages.

It plays mBERT's part offline: languages it was pretrained on are "seen", the others are
"unseen" (as languages missing from mBERT are). It is built once per synthetic suite and kept
in the artifact store like any trained piece.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from xltransfer.backbone import QUICKSTART, BackboneRef, local_snapshot, quickstart_bert_config
from xltransfer.errors import XltError
from xltransfer.options import QUICKSTART_VERSION, QuickstartConfig  # noqa: F401 - declared below model code
from xltransfer.progress import Progress

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_wordpiece(corpus: Iterable[str], vocab_size: int, model_max_length: int = 512):
    """A cased BERT WordPiece tokenizer learned from text ([CLS] A [SEP] B [SEP] templates).

    The same text gives the same vocabulary in every process: the pieces are learned by
    SentencePiece's BPE trainer over BERT's pre-tokenised words. tokenizers' WordPiece trainer
    breaks ties in the order of Rust's per-process hash seeds (two builds of the quickstart backbone
    from one seed had 280 of 4,000 ids differ, and other weights and scores after them). A
    word-initial piece keeps its form, any other gets BERT's ``##``; every character of the text is
    in the vocabulary in both forms, so none of them becomes [UNK]."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.BertNormalizer(lowercase=False)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    lines = [
        " ".join(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line)))
        for line in corpus
    ]
    characters = sorted({c for line in lines for c in line if c != " "})
    vocab = [*SPECIAL_TOKENS, *characters, *(f"##{c}" for c in characters)]
    for piece in _bpe_pieces(lines, vocab_size):
        token = piece[1:] if piece.startswith(WORD_START) else f"##{piece}"
        if token and token != "##" and len(vocab) < vocab_size:
            vocab.append(token)
    wordpiece = Tokenizer(
        models.WordPiece({token: i for i, token in enumerate(dict.fromkeys(vocab))}, unk_token="[UNK]")
    )
    wordpiece.normalizer = normalizer
    wordpiece.pre_tokenizer = pre_tokenizer
    wordpiece.decoder = decoders.WordPiece()
    cls_id, sep_id = wordpiece.token_to_id("[CLS]"), wordpiece.token_to_id("[SEP]")
    wordpiece.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=wordpiece,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
    )


WORD_START = "\u2581"  # SentencePiece's mark of a word-initial piece


def _bpe_pieces(lines: list[str], size: int) -> list[str]:
    """SentencePiece BPE pieces learned from whitespace-separated words, in the order learned."""
    import io

    import sentencepiece as spm

    from xltransfer.modules.seq2seq import SENTENCEPIECE_THREADS

    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=model,
            model_type="bpe",
            vocab_size=size,
            hard_vocab_limit=False,  # small text: fewer pieces rather than an error
            character_coverage=1.0,
            normalization_rule_name="identity",  # BERT's normaliser has run
            bos_id=-1,
            eos_id=-1,
            num_threads=SENTENCEPIECE_THREADS,
            minloglevel=2,
        )
    except RuntimeError as error:  # e.g. fewer pieces allowed than the text has characters
        raise XltError(f"cannot learn a {size}-token vocabulary: {error}") from None
    processor = spm.SentencePieceProcessor(model_proto=model.getvalue())
    return [
        processor.id_to_piece(i)
        for i in range(processor.get_piece_size())
        if not (processor.is_unknown(i) or processor.is_control(i))
    ]


def build_quickstart(
    synthetic, suite_dir: Path, out_dir: Path, progress: Progress, config: QuickstartConfig | None = None
) -> dict:
    """Train the tokenizer and the model on the seen languages; save both into ``out_dir``."""
    import torch
    from adapters import BertAdapterModel

    from xltransfer import registry
    from xltransfer.modules.mlm import mlm_eval_batches, mlm_stream, perplexity
    from xltransfer.train import Schedule, fit

    config = config or QuickstartConfig()
    seen = config.seen_languages(synthetic)
    texts = {lang: (suite_dir / "text" / lang / "train.txt") for lang in seen}

    tokenizer = train_wordpiece(
        (line for path in texts.values() for line in path.read_text(encoding="utf-8").splitlines()),
        config.vocab_size,
        config.max_position_embeddings,
    )

    torch.manual_seed(config.seed)
    model = BertAdapterModel(quickstart_bert_config(config))
    model.add_masked_lm_head("default")
    mlm = registry.tasks.get("mlm")()
    max_length = config.max_position_embeddings
    streams, dev_batches = [], []
    for i, lang in enumerate(seen):
        features = mlm.encode(mlm.read_file(texts[lang]), tokenizer, max_length)
        streams.append(mlm_stream(lang, mlm, features, tokenizer, config.batch_size, config.seed + i))
        dev = mlm.encode(mlm.read_file(suite_dir / "text" / lang / "dev.txt"), tokenizer, max_length)
        dev_batches.extend(mlm_eval_batches(mlm, dev, tokenizer))

    def evaluate() -> float:
        return perplexity(model, mlm, dev_batches)

    schedule = Schedule(
        steps=config.steps,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        eval_every=config.eval_every,
        warmup_steps=config.warmup_steps,
    )
    result = fit(
        model,
        streams,
        schedule,
        evaluate,
        higher_is_better=False,
        seed=config.seed,
        progress=progress,
        description="quickstart backbone (MLM)",
    )
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return {
        "seen_languages": seen,
        "dev_perplexity": result.best_score,
        "train_seconds": result.seconds,
        "steps": result.steps,
        "history": result.history,
    }


def materialise(grid, identity: dict[str, Any], workspace, progress) -> Path:
    """A local folder with the backbone's weights and tokenizer, building or fetching it if needed.

    The quickstart backbone is a ``cached_folder`` in the artifact store's root: checked against its
    sha256 manifest before use, moved aside under ``.damaged/`` and built again when it changed."""
    ref: BackboneRef = grid.backbone
    if ref.kind == "local":
        return ref.path  # type: ignore[return-value]
    if ref.kind == "hub":
        return local_snapshot(ref)
    from xltransfer.cached_folder import cached_folder
    from xltransfer.params import stable_hash

    def build(folder: Path) -> None:
        import json

        from xltransfer.data.sources import SyntheticSource
        from xltransfer.store import now

        suite_dir = SyntheticSource(grid.synthetic, workspace.cache).materialise()
        info: dict[str, Any] = {
            "kind": "backbone",
            "name": QUICKSTART,
            "identity": identity,
            "created_at": now(),
        }
        progress.log("building the quickstart backbone (once per synthetic suite)")
        cpu_started = time.process_time()
        info.update(build_quickstart(grid.synthetic, suite_dir, folder, progress, ref.quickstart))
        (folder / BACKBONE_INFO).write_text(json.dumps(info, indent=2, sort_keys=True, default=str))
        progress.log(
            f"quickstart backbone built in {info['train_seconds']:.1f}s, CPU "
            f"{time.process_time() - cpu_started:.1f}s ({info['steps']:,} steps, "
            f"dev perplexity {info['dev_perplexity']:.4g})"
        )

    key = "backbone-" + stable_hash(identity, 40)
    return cached_folder(workspace.artifacts.root, key, build, what="quickstart backbone")


BACKBONE_INFO = "info.json"  # how the quickstart backbone was built (steps, perplexity, seconds)
