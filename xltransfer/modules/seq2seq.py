"""Encoder–decoder translation models: the joint subword vocabulary, the two model families, and
beam-search decoding.

Two families share one interface (``model(input_ids, attention_mask, labels).loss`` and
``model.generate``), so the MT task and the training loop never ask which one they hold:

- a Transformer built from a config ("transformer-base", "transformer-big"; Baziotis et al.
  2022, §4) on a subword vocabulary trained on the training data: fairseq's ``transformer``
  architecture, which the paper used, with sinusoidal positions, scaled embeddings, one embedding
  matrix shared by the encoder input, decoder input and output projection, and fairseq's
  initialisation (``fairseq_init``). Pre-norm (``norm="pre"``, the default: fairseq's
  ``--encoder-normalize-before --decoder-normalize-before`` with a final LayerNorm on each side,
  as ``M2M100ForConditionalGeneration``, fairseq's pre-norm Transformer ported) or Vaswani et
  al.'s post-norm (``norm="post"``, as ``MarianMTModel``);
- an mBERT-initialised ``EncoderDecoderModel`` (a BERT encoder and a BERT decoder with new
  cross-attention), from a local folder or a config, on mBERT's own WordPiece vocabulary plus the
  language tags.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from xltransfer.data.parallel import VOCABULARY_TEMPERATURE
from xltransfer.data.subwords import IGNORE
from xltransfer.data.vocabulary_text import temperature_sample
from xltransfer.errors import UnknownNameError, XltError
from xltransfer.options import (  # noqa: F401 - the grid's mt: options
    BERT2BERT,
    DEFAULT_NORM,
    MAX_POSITIONS,
    NORMS,
    VOCAB_SIZE,
    MtModelOptions,
)

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)  # ids 0..3 in every trained vocabulary; language tags follow
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)
_TAG = re.compile(r"^<2(.+)>$")

# Baziotis et al. 2022, §4 "Evaluation": beam search of size 5. The length penalty is not stated:
# fairseq's default (lenpen 1, score divided by length), the toolkit the paper used; likewise its
# maximum output length (max_len_b 200) and stopping once a sentence has `beam` finished hypotheses.
BEAM_SIZE = 5
LENGTH_PENALTY = 1.0
MAX_NEW_TOKENS = 200
# Baziotis et al. 2022, §4 "Optimization": label smoothing of 0.1.
LABEL_SMOOTHING = 0.1
# Baziotis et al. 2022, §4 footnote 2: "the unigram model with coverage 0.99995" (SentencePiece's
# default, 0.9995, turns ten times as many rare characters into <unk>)
CHARACTER_COVERAGE = 0.99995
# SentencePiece's default thread count, fixed: its sums, hence the pieces, depend on the number of threads.
SENTENCEPIECE_THREADS = 16


def language_tag(language: str) -> str:
    """The target-language token (Johnson et al. 2017: ``<2es>``) that starts the source and the
    decoder input (Baziotis et al. 2022, §2)."""
    return f"<2{language}>"


# -- the joint subword vocabulary ---------------------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
    """A trained subword vocabulary as a ``transformers`` tokenizer, so the task encodes with it
    exactly as with mBERT's; stored as a folder (``save_pretrained`` files) in the artifact store."""

    tokenizer: object  # PreTrainedTokenizerFast

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(
            m.group(1) for t in self.tokenizer.additional_special_tokens if (m := _TAG.match(t)) is not None
        )

    def __len__(self) -> int:
        return len(self.tokenizer)

    def length(self, text: str) -> int:
        """Subwords in a sentence (no specials): the length the paper's filter measures."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def save(self, folder: Path) -> None:
        self.tokenizer.save_pretrained(str(folder))

    @classmethod
    def load(cls, folder: Path) -> Vocabulary:
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(str(folder)))


def train_vocabulary(
    texts: Mapping[str, Sequence[str]],
    size: int = VOCAB_SIZE,
    languages: Iterable[str] = (),
    temperature: float = VOCABULARY_TEMPERATURE,
    seed: int = 0,
) -> Vocabulary:
    """A SentencePiece unigram vocabulary over every language's distinct sentences, sampled with
    temperature so small languages get their pieces (``vocabulary_from_sample``)."""
    return vocabulary_from_sample(temperature_sample(texts, temperature, seed), size, languages)


def vocabulary_from_sample(
    sampled: Mapping[str, Sequence[str]], size: int = VOCAB_SIZE, languages: Iterable[str] = ()
) -> Vocabulary:
    """A SentencePiece unigram vocabulary learned from each language's sampled sentences
    (``data.vocabulary_text``); tags for the languages of ``sampled`` and ``languages`` are single,
    never-split tokens. Same sample and size, same vocabulary (byte for byte) on any machine, for a
    given SentencePiece version. Characters outside the paper's character coverage (99.995% of the
    text, ``CHARACTER_COVERAGE``) become ``<unk>``.

    SentencePiece learns the pieces and their scores (it is deterministic where the ``tokenizers``
    trainer is not: its sums follow hash-map order); a ``tokenizers`` Unigram model then segments
    with them, so the stored vocabulary is a plain ``tokenizer.json`` that needs no SentencePiece.
    The text is normalised once, by that same pipeline, before training, so learning and
    encoding see identical strings.
    """
    from transformers import PreTrainedTokenizerFast

    tags = [language_tag(lang) for lang in sorted(set(sampled) | set(languages))]
    normalizer = _normalizer()
    lines = [normalizer.normalize_str(line) for lang in sorted(sampled) for line in sampled[lang]]
    return Vocabulary(
        PreTrainedTokenizerFast(
            tokenizer_object=_segmenter(_sentencepiece_pieces(lines, size, tags)),
            pad_token=PAD,
            unk_token=UNK,
            bos_token=BOS,
            eos_token=EOS,
            additional_special_tokens=tags,
            clean_up_tokenization_spaces=False,
        )
    )


def _sentencepiece_pieces(lines: Sequence[str], size: int, tags: Sequence[str]) -> list[tuple[str, float]]:
    """(piece, log-probability) in id order: the four specials, the tags, then the learned pieces."""
    import sentencepiece as spm

    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=model,
            model_type="unigram",
            vocab_size=size,
            hard_vocab_limit=False,  # small data: fewer pieces rather than an error
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            pad_piece=PAD,
            unk_piece=UNK,
            bos_piece=BOS,
            eos_piece=EOS,
            user_defined_symbols=list(tags),
            normalization_rule_name="identity",  # the lines are already normalised by _normalizer
            remove_extra_whitespaces=False,
            character_coverage=CHARACTER_COVERAGE,
            num_threads=SENTENCEPIECE_THREADS,
            minloglevel=2,
        )
    except RuntimeError as error:  # e.g. fewer pieces allowed than the text has characters
        raise XltError(f"cannot train a {size}-piece vocabulary: {error}") from None
    processor = spm.SentencePieceProcessor(model_proto=model.getvalue())
    return [(processor.id_to_piece(i), processor.get_score(i)) for i in range(processor.get_piece_size())]


def _normalizer():
    """SentencePiece's default "nmt_nfkc" normalisation, and its removal of extra whitespace."""
    from tokenizers import Regex, normalizers

    return normalizers.Sequence(
        [normalizers.Nmt(), normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " "), normalizers.Strip()]
    )


def _segmenter(pieces: list[tuple[str, float]]):
    """Unigram segmentation with SentencePiece's conventions: its normalisation, a word-initial
    meta symbol (U+2581) that decoding turns back into spaces, and ``</s>`` closing every sequence."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=UNK_ID, byte_fallback=False))
    tokenizer.normalizer = _normalizer()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}", special_tokens=[(EOS, EOS_ID)]
    )
    return tokenizer


def add_language_tags(model, tokenizer, languages: Iterable[str]) -> list[str]:
    """Give a pretrained tokenizer (mBERT's) the tags it lacks, and the model embeddings for them."""
    new = [language_tag(lang) for lang in languages if language_tag(lang) not in tokenizer.get_vocab()]
    if new:
        tokenizer.add_special_tokens(
            {"additional_special_tokens": new}, replace_additional_special_tokens=False
        )
    for part in _embedding_owners(model):
        if part.get_input_embeddings().num_embeddings < len(tokenizer):
            part.resize_token_embeddings(len(tokenizer))
    return new


def _embedding_owners(model) -> list:
    from transformers import EncoderDecoderModel

    return [model.encoder, model.decoder] if isinstance(model, EncoderDecoderModel) else [model]


# -- (a) the Transformer from a config ------------------------------------------------------------------


@dataclass(frozen=True)
class TransformerPreset:
    d_model: int
    layers: int  # encoder layers = decoder layers
    ffn_dim: int
    heads: int
    dropout: float


TRANSFORMER_PRESETS: dict[str, TransformerPreset] = {
    # Baziotis et al. 2022, §4 "Model Configuration" (Vaswani et al.): 6+6 layers, 512, 2048, 8 heads, 0.1
    "transformer-base": TransformerPreset(512, 6, 2048, 8, 0.1),
    # ibid.: Transformer-Big, 1024, 4096, 16 heads, 0.3 dropout (6+6 layers as in Vaswani et al.)
    "transformer-big": TransformerPreset(1024, 6, 4096, 16, 0.3),
}


def transformer_config(preset: str, vocab_size: int, norm: str = DEFAULT_NORM, **overrides):
    """The config of a preset for a vocabulary size: an ``M2M100Config`` (pre-norm) or a
    ``MarianConfig`` (post-norm); ``overrides`` change preset fields (``d_model``, ``layers``,
    ``ffn_dim``, ``heads``, ``dropout``), e.g. for a tiny test model. Special-token ids are those
    of ``train_vocabulary``."""
    from transformers import M2M100Config, MarianConfig

    if preset not in TRANSFORMER_PRESETS:
        raise UnknownNameError(
            f"unknown MT model preset '{preset}' (known: {', '.join(TRANSFORMER_PRESETS)})"
        )
    if norm not in NORMS:
        raise UnknownNameError(f"unknown LayerNorm placement '{norm}' (known: {', '.join(NORMS)})")
    p = replace(TRANSFORMER_PRESETS[preset], **overrides)
    config_class = M2M100Config if norm == "pre" else MarianConfig
    shared = {} if norm == "pre" else {"share_encoder_decoder_embeddings": True}
    return config_class(
        vocab_size=vocab_size,
        d_model=p.d_model,
        encoder_layers=p.layers,
        decoder_layers=p.layers,
        encoder_ffn_dim=p.ffn_dim,
        decoder_ffn_dim=p.ffn_dim,
        encoder_attention_heads=p.heads,
        decoder_attention_heads=p.heads,
        dropout=p.dropout,
        attention_dropout=0.0,
        activation_dropout=0.0,
        activation_function="relu",
        scale_embedding=True,  # embeddings times sqrt(d_model), as Vaswani et al. and fairseq
        encoder_layerdrop=0.0,
        decoder_layerdrop=0.0,
        **shared,  # M2M100 always shares one embedding matrix between encoder and decoder
        tie_word_embeddings=True,  # §4: encoder/decoder embeddings and output projection tied
        max_position_embeddings=MAX_POSITIONS,
        pad_token_id=PAD_ID,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        decoder_start_token_id=EOS_ID,  # fairseq starts decoding from </s>
        forced_eos_token_id=EOS_ID,
    )


def new_transformer(config, seed: int = 0):
    """A randomly initialised Transformer, as fairseq initialises it (``fairseq_init``); the seed
    fixes its weights without touching global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(config)(config)
        fairseq_init(model)
        return model


def fairseq_init(model) -> None:
    """Re-initialise a Transformer as fairseq's ``transformer`` does (``transformer_base.py``
    ``Embedding``, ``multihead_attention.py`` ``reset_parameters``), not with the N(0, 0.02) of
    ``transformers``' Marian/M2M100 ports: the shared embedding matrix N(0, d^-1/2) with the padding
    row zero (scaled by sqrt(d) at the input, so tokens enter at unit scale); attention query, key and
    value weights Xavier-uniform with gain 1/sqrt(2), the output projection Xavier-uniform with a
    zero bias; every other linear layer (the feed-forward fc1/fc2, the q/k/v biases) PyTorch's
    ``nn.Linear`` default, which fairseq keeps (its ``build_fc1`` is a plain ``nn.Linear``);
    LayerNorms one and zero. The output projection is the embedding matrix (tied)."""
    from torch import nn

    embedding = model.get_input_embeddings()
    for module in model.modules():
        if isinstance(module, nn.Linear) and module.weight is not embedding.weight:
            module.reset_parameters()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    for module in model.modules():
        if all(hasattr(module, name) for name in ("q_proj", "k_proj", "v_proj", "out_proj")):
            for name in ("q_proj", "k_proj", "v_proj"):
                nn.init.xavier_uniform_(getattr(module, name).weight, gain=2**-0.5)
            nn.init.xavier_uniform_(module.out_proj.weight)
            if module.out_proj.bias is not None:
                nn.init.zeros_(module.out_proj.bias)
    nn.init.normal_(embedding.weight, mean=0.0, std=embedding.embedding_dim**-0.5)
    with torch.no_grad():
        embedding.weight[embedding.padding_idx].zero_()


# -- (b) the mBERT-initialised encoder–decoder -------------------------------------------------------


def bert2bert_config(bert_config):
    """An encoder–decoder config from one BERT config: the decoder is the same BERT made causal
    with cross-attention (Rothe et al. 2020, BERT2BERT)."""
    from transformers import EncoderDecoderConfig

    decoder = bert_config.__class__(
        **{**bert_config.to_dict(), "is_decoder": True, "add_cross_attention": True}
    )
    return EncoderDecoderConfig.from_encoder_decoder_configs(bert_config, decoder)


def bert2bert(backbone, tokenizer=None, languages: Iterable[str] = (), seed: int = 0):
    """(model, tokenizer): BERT2BERT from a local folder (the mBERT snapshot or any BERT saved with
    ``save_pretrained``; a hub id or preset name goes through ``xltransfer.backbone``, which fails
    fast offline), or randomly initialised from a BERT config (then pass the tokenizer).
    The tokenizer gains the language tags; [SEP] ends decoding. The target's tag starts it (the
    MT task passes it, Baziotis et al. 2022, §2), [CLS] where none is given."""
    from transformers import AutoTokenizer, EncoderDecoderModel, PretrainedConfig

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the new cross-attention weights, or the whole model from a config
        if isinstance(backbone, PretrainedConfig):
            if tokenizer is None:
                raise ValueError("a model built from a config needs its tokenizer")
            model = EncoderDecoderModel(config=bert2bert_config(backbone))
        else:
            folder = backbone_folder(backbone)
            model = _quietly(EncoderDecoderModel.from_encoder_decoder_pretrained, str(folder), str(folder))
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(str(folder))
        add_language_tags(model, tokenizer, languages)
    # the longest input the encoder takes (``MtModelOptions.max_positions`` reads it from here)
    positions = model.config.encoder.max_position_embeddings
    tokenizer.model_max_length = min(tokenizer.model_max_length, positions)
    set_special_ids(
        model, start=tokenizer.cls_token_id, end=tokenizer.sep_token_id, pad=tokenizer.pad_token_id
    )
    return model, tokenizer


def backbone_folder(spec: str | Path) -> Path:
    from xltransfer.backbone import local_snapshot, resolve

    ref = resolve(str(spec))
    if ref.kind == "local":
        return ref.path  # type: ignore[return-value]
    if ref.kind == "hub":
        return local_snapshot(ref)
    raise ValueError(f"backbone '{spec}' must be built first; pass its folder")


def _quietly(load, *args):
    """Loading BERT as a decoder logs every new cross-attention weight; that is the point here."""
    import transformers

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        return load(*args)
    finally:
        transformers.logging.set_verbosity(verbosity)


def set_special_ids(model, start: int, end: int, pad: int) -> None:
    """Where decoding starts and ends, for training (labels shifted right) and for ``generate``."""
    for config in (model.config, model.generation_config):
        config.decoder_start_token_id = start
        config.eos_token_id = end
        config.pad_token_id = pad


# -- the grid's choice of model --------------------------------------------------------------------------


def mt_architecture(
    options: MtModelOptions, backbone_config, vocab_size: int | None = None, tag_count: int = 0
):
    """The model config of the grid's ``mt:`` options: a preset at ``vocab_size`` (the trained
    vocabulary's real size, or the requested one when planning), or BERT2BERT from the backbone
    with room for the tags."""
    if options.model == BERT2BERT:
        bert = backbone_config.__class__(
            **{**backbone_config.to_dict(), "vocab_size": backbone_config.vocab_size + tag_count}
        )
        return bert2bert_config(bert)
    return transformer_config(
        options.model, vocab_size or options.vocab_size, options.norm, **options.preset_overrides()
    )


# Where each default of the ``mt:`` block comes from (``xlt describe`` of every MT method prints them).
MT_OPTION_SOURCES = {
    "model": 'Baziotis et al. 2022 §4 "Model Configuration" (Transformer-Base, fairseq)',
    "vocab_size": 'Baziotis et al. 2022 §4 "Data" (a joint SentencePiece vocabulary of 90k)',
    "d_model": "0: the preset's (Transformer-Base 512, Vaswani et al.)",
    "layers": "0: the preset's (6 encoder and 6 decoder layers)",
    "ffn_dim": "0: the preset's (Transformer-Base 2048)",
    "heads": "0: the preset's (Transformer-Base 8)",
    "dropout": "-1: the preset's (Transformer-Base 0.1, Big 0.3; §4)",
    "norm": "pre: fairseq's ML50 recipe (examples/multilingual: --encoder-normalize-before "
    "--decoder-normalize-before); Baziotis et al. 2022 §3.1, Figure 4 (an unbounded residual stream)",
    "both_ways": 'Baziotis et al. 2022 §4 "Data" (ML50, English-centric: en->xx and xx->en)',
    "max_tokens": 'Baziotis et al. 2022 §4 "Data" (pairs over 250 subwords dropped); also MT\'s '
    "encoding length, so no training pair is cut and no cut target ends",
    "max_length_ratio": 'Baziotis et al. 2022 §4 "Data" (length ratio over 2.5 dropped)',
}
# How a Transformer preset is initialised (``fairseq_init``), for ``xlt describe``.
INIT_SOURCE = (
    "fairseq (transformer_base.py Embedding: N(0, d^-1/2), padding row 0, scaled by sqrt(d); "
    "multihead_attention.py reset_parameters: q/k/v Xavier-uniform gain 1/sqrt(2), out_proj "
    "Xavier-uniform, bias 0; fc1/fc2 nn.Linear's default)"
)


# -- both families -----------------------------------------------------------------------------------


def model_class(config):
    from transformers import (
        EncoderDecoderConfig,
        EncoderDecoderModel,
        M2M100Config,
        M2M100ForConditionalGeneration,
        MarianMTModel,
    )

    if isinstance(config, EncoderDecoderConfig):
        return EncoderDecoderModel
    return M2M100ForConditionalGeneration if isinstance(config, M2M100Config) else MarianMTModel


def is_translation_config(config) -> bool:
    from transformers import EncoderDecoderConfig, M2M100Config, MarianConfig

    return isinstance(config, EncoderDecoderConfig | MarianConfig | M2M100Config)


def meta_model(config):
    """A weightless model of ``config`` (for counting). Its sinusoidal position tables are cut to
    one row: they are computed in Python at full size, and they are not parameters anyway."""
    from transformers import EncoderDecoderConfig

    if not isinstance(config, EncoderDecoderConfig):
        config = config.__class__(**{**config.to_dict(), "max_position_embeddings": 1})
    with torch.device("meta"):
        return model_class(config)(config=config)


def fixed_parameters(model) -> set[int]:
    """Ids of tensors that are buffers in all but name: the Transformer's sinusoidal positions."""
    from transformers.models.marian.modeling_marian import MarianSinusoidalPositionalEmbedding

    return {
        id(param)
        for module in model.modules()
        if isinstance(module, MarianSinusoidalPositionalEmbedding)
        for param in module.parameters()
    }


def train_everything(model) -> None:
    """Full training of an encoder–decoder: every parameter but the fixed position tables."""
    fixed = fixed_parameters(model)
    for param in model.parameters():
        param.requires_grad = id(param) not in fixed


def count_parameters(config) -> int:
    """Trainable parameters of a model built from ``config``, on the meta device (no weights).
    Tied matrices count once; fixed sinusoidal position tables are not parameters (as in fairseq)."""
    model = meta_model(config)
    fixed = fixed_parameters(model)
    return sum(p.numel() for p in model.parameters() if p.requires_grad and id(p) not in fixed)


def label_smoothed_loss(logits: torch.Tensor, labels: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Token-level cross-entropy with label smoothing, averaged over the target tokens."""
    return F.cross_entropy(
        logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE, label_smoothing=epsilon
    )


@torch.no_grad()
def translate(
    model,
    tokenizer,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    start_ids: torch.Tensor,
    beam_size: int = BEAM_SIZE,
    length_penalty: float = LENGTH_PENALTY,
    max_new_tokens: int = MAX_NEW_TOKENS,
) -> list[str]:
    """Beam search from each sentence's own first decoder token (``start_ids``: its target tag,
    fairseq's ``bos_token`` with ``--decoder-langtok``), then detokenised text (subwords joined,
    special tokens and tags removed)."""
    output = model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        decoder_start_token_id=start_ids,  # one per sentence: generate takes a (batch,) tensor
        num_beams=beam_size,
        length_penalty=length_penalty,
        max_new_tokens=max_new_tokens,
        early_stopping=True,
        do_sample=False,
    )
    return [text.strip() for text in tokenizer.batch_decode(output, skip_special_tokens=True)]
