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

from xltransfer.params import stable_hash
from xltransfer.progress import Progress

QUICKSTART_VERSION = 2
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
    """A cased BERT WordPiece tokenizer learned from text ([CLS] A [SEP] B [SEP] templates)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=False)
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wordpiece.decoder = decoders.WordPiece()
    wordpiece.train_from_iterator(
        # no trainer bars: they would interleave with the run's own progress lines and logs
        corpus,
        trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False),
    )
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
