"""The quickstart backbone: a small BERT pretrained by MLM on some synthetic languages.

It plays mBERT's part offline: languages it was pretrained on are "seen", the others are
"unseen" (as languages missing from mBERT are). It is built once per synthetic suite and kept
in the artifact store like any trained piece.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from xltransfer.errors import XltError
from xltransfer.params import stable_hash
from xltransfer.progress import Progress

# 3: the vocabulary is learned by SentencePiece (the same in every process; see train_wordpiece)
QUICKSTART_VERSION = 3
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@dataclass(frozen=True)
class QuickstartConfig:
    vocab_size: int = 4000
    hidden_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int = 512
    max_position_embeddings: int = 128
    steps: int = 1200
    batch_size: int = 64
    learning_rate: float = 1e-3
    warmup_steps: int = 200
    eval_every: int = 500
    seen_fraction: float = 0.5  # of each family, the first ceil(fraction * size) members are seen
    seed: int = 0

    def fingerprint(self, synthetic) -> str:
        return stable_hash(
            {
                "version": QUICKSTART_VERSION,
                "config": dataclasses.asdict(self),
                "synthetic": synthetic.fingerprint(),
            }
        )

    def bert_config(self):
        from transformers import BertConfig

        return BertConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=self.intermediate_size,
            max_position_embeddings=self.max_position_embeddings,
            type_vocab_size=2,
        )

    def seen_languages(self, synthetic) -> list[str]:
        from xltransfer.data.synthetic import family_members

        seen = []
        for members in family_members(synthetic):
            seen.extend(members[: math.ceil(self.seen_fraction * len(members))])
        return seen


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
    model = BertAdapterModel(config.bert_config())
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
