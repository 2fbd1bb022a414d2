"""The grid's translation model: its vocabulary piece, building it, and training it on every direction.

Every method that trains the ``mt`` task trains the same encoder–decoder (the grid's ``mt:``
block) on the same directions with the same subword vocabulary, so their scores compare. The
vocabulary is a piece of the task, not of a method: it is trained once per grid data and shared
by every method and seed. What a method adds (adapters, hyper-networks) goes on top of this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xltransfer.cell import Cell, Piece
from xltransfer.params import Params

if TYPE_CHECKING:
    from xltransfer.context import RunContext

TASK = "mt"
# Training the encoder–decoder, with or without adapters (Baziotis et al. 2022, §4 "Optimization"):
# Transformer-Base lr 0.004 for 360k steps (Big: 0.001 for 220k), 8k warm-up steps then inverse
# square root decay, batches of 256k tokens (8k x 32 GPUs); §4 "Evaluation": every 20k steps, the
# checkpoint with the best validation loss
TRAINING_DEFAULTS = {
    "mt_learning_rate": 0.004,
    "mt_steps": 360_000,
    "mt_warmup_steps": 8_000,
    "mt_batch_tokens": 256_000,
    # ibid.: a step is 32 GPUs' 8k-token batches; fairseq's multilingual batches mix directions. Here
    # each of a step's 32 batches holds one direction (sampled with T=2), their gradients summed, so
    # a hyper-network generates a direction's adapters once per batch (§3.2). A batch is a token
    # budget, so a direction's share of tokens is ∝ p^(1/T); fairseq samples sentences (§4
    # "Sampling"), which gives directions of longer sentences a larger share of tokens than that
    "mt_batches_per_step": 32,
    "mt_eval_every": 20_000,
    # neither the paper (§4) nor fairseq (--clip-norm 0 by default) clips gradients: 0 = no clipping
    "mt_clip_norm": 0.0,
    # "": the grid's mt.norm (pre, fairseq's ML50 recipe); "pre"/"post" here compare both in one grid
    "mt_norm": "",
}
TRAINING_SOURCES = {
    "mt_learning_rate": 'Baziotis et al. 2022 §4 "Optimization" (Transformer-Base: lr 0.004)',
    "mt_steps": 'Baziotis et al. 2022 §4 "Optimization" (Transformer-Base: 360k steps)',
    "mt_warmup_steps": 'Baziotis et al. 2022 §4 "Optimization" (8k warm-up steps, inverse square root)',
    "mt_batch_tokens": 'Baziotis et al. 2022 §4 "Optimization" (256k tokens: 8k x 32 GPUs)',
    "mt_eval_every": 'Baziotis et al. 2022 §4 "Evaluation" (every 20k steps, best validation loss)',
    "mt_batches_per_step": 'Baziotis et al. 2022 §4 "Optimization" (a step is 32 GPUs\' batches; '
    "fairseq's multilingual batches mix directions)",
    "mt_clip_norm": "Baziotis et al. 2022 §4 and fairseq (--clip-norm 0): no gradient clipping",
    "mt_norm": "'': the grid's mt.norm (pre: fairseq's ML50 recipe, examples/multilingual "
    "--encoder-normalize-before; Baziotis et al. 2022 §3.1, Figure 4); pre or post for this method",
}


def check_params(params) -> None:
    """A method's MT parameters that their types do not check: ``mt_norm`` is '', pre or post."""
    from xltransfer.modules.seq2seq import NORMS

    if params.get("mt_norm", "") not in ("", *NORMS):
        raise ValueError(f"mt_norm: unknown LayerNorm placement '{params['mt_norm']}' (known: pre, post)")


VOCABULARY = "vocabulary"
VOCABULARY_SEED = 0  # the vocabulary is a function of the data, the same for every seed of a grid


def vocabulary_piece(directions: tuple[str, ...]) -> Piece:
    """The joint subword vocabulary of the grid's directions (keyed by their training data and the
    grid's ``mt:`` block, which the planner adds to every MT piece's key)."""
    return Piece(TASK, VOCABULARY, tuple(directions), TASK, Params({}), VOCABULARY_SEED)


def model_piece(method: str, kind: str, cell: Cell, params: Params) -> Piece:
    """A piece trained on every direction of the grid, on the grid's vocabulary."""
    return Piece(method, kind, cell.directions, TASK, params, cell.seed, (vocabulary_piece(cell.directions),))


def languages_of(directions) -> list[str]:
    from xltransfer.data.parallel import parse_direction

    return sorted({lang for unit in directions for lang in parse_direction(unit)})


def train_vocabulary(piece: Piece, ctx: RunContext):
    """For a Transformer: SentencePiece unigram over both sides of every direction's training data
    (Baziotis et al. 2022, §4: a joint vocabulary, trained with temperature T=5). For BERT2BERT:
    the backbone's WordPiece vocabulary with the target-language tags added."""
    import copy
    import time

    from xltransfer.data.parallel import VOCABULARY_TEMPERATURE
    from xltransfer.data.vocabulary_text import vocabulary_sample
    from xltransfer.method import TrainedPiece
    from xltransfer.modules.seq2seq import Vocabulary, language_tag, vocabulary_from_sample

    started = time.perf_counter()
    options, languages = ctx.grid.mt, languages_of(piece.languages)
    if options.trains_vocabulary:
        corpora = [ctx.examples(TASK, unit, "train") for unit in piece.languages]  # pairs on disk
        sample = vocabulary_sample(corpora, VOCABULARY_TEMPERATURE, seed=piece.seed)
        vocabulary = vocabulary_from_sample(sample, options.vocab_size, languages)
    else:
        tok = copy.deepcopy(ctx.tokenizer)
        tags = [language_tag(lang) for lang in languages]
        tok.add_special_tokens({"additional_special_tokens": tags}, replace_additional_special_tokens=False)
        vocabulary = Vocabulary(tok)
    info = {"vocabulary_size": len(vocabulary), "train_seconds": time.perf_counter() - started}
    return TrainedPiece({}, info, write_files=vocabulary.save)


def grid_directions(ctx: RunContext) -> tuple[str, ...]:
    """The grid's directions as data units ("en>de"): every MT cell of a grid shares them."""
    from xltransfer.data.parallel import direction_unit

    return tuple(direction_unit(s, t) for s, t in ctx.grid.mt_directions())


def tokenizer(ctx: RunContext) -> tuple[Any, str]:
    """(tokenizer, its piece key): the grid's stored vocabulary."""
    from xltransfer.modules.seq2seq import Vocabulary

    key = ctx.key_of(vocabulary_piece(grid_directions(ctx)))
    if not ctx.artifacts.has(key):
        raise RuntimeError("the MT vocabulary is used before it was trained")
    return Vocabulary.load(ctx.artifacts.path(key)).tokenizer, key


def new_model(ctx: RunContext, seed: int, params=None):
    """A freshly initialised model of the grid's ``mt:`` block (as the method's ``params`` adjust
    it, ``MtModelOptions.for_method``), sized to its tokenizer."""
    from xltransfer.modules import seq2seq

    options = ctx.grid.task_config(TASK, params)
    tok = ctx.tokenizer_for(TASK)
    if options.trains_vocabulary:
        config = seq2seq.mt_architecture(options, None, vocab_size=len(tok))
        return seq2seq.new_transformer(config, seed)
    model, _ = seq2seq.bert2bert(ctx.backbone_dir, tok, languages_of(grid_directions(ctx)), seed)
    return model


def schedule(params: Params) -> Any:
    """The training schedule of an MT piece (Baziotis et al. 2022, §4): Adam (0.9, 0.98, 1e-6), linear
    warm-up then inverse square root decay, batches counted in tokens, no clipping unless asked."""
    from xltransfer.train import Schedule

    steps = params["mt_steps"]
    return Schedule(
        steps,
        params["mt_batch_tokens"],
        params["mt_learning_rate"],
        eval_every=max(1, min(steps, params["mt_eval_every"])),
        warmup_steps=min(params["mt_warmup_steps"], steps),
        decay="inverse_sqrt",
        max_grad_norm=params["mt_clip_norm"],
        betas=(0.9, 0.98),
        eps=1e-6,
        batch_unit="tokens",
    )


def train_model(
    model, ctx: RunContext, piece: Piece, params: Params, description: str, activate=None, loss=None
) -> Any:
    """Train on every direction of ``piece`` (Baziotis et al. 2022, §4) with ``schedule``: each step
    ``mt_batches_per_step`` batches of one direction each, directions sampled with temperature,
    label smoothing in the task's loss; the best checkpoint by average dev loss.
    ``activate(model, direction)`` and ``loss(model, batch, direction)`` are how a method's
    direction-specific modules (adapters, generated adapters) take part."""
    from xltransfer.data.parallel import TRAINING_TEMPERATURE
    from xltransfer.train import train_on_task

    return train_on_task(
        model,
        ctx,
        TASK,
        piece.languages,
        schedule(params),
        piece.seed,
        description=description,
        temperature=TRAINING_TEMPERATURE,
        activate=activate,
        loss=loss,
        batches_per_step=params["mt_batches_per_step"],
    )


def trained(model, result) -> Any:
    """The trained piece: every trainable tensor, and how training went (dev loss, not negated; beside
    it the dev loss with mismatched sources, the level of a model that ignores its source)."""
    from xltransfer.method import TrainedPiece
    from xltransfer.train import trainable_state

    history = [{**h, "score": -h["score"]} for h in result.history]
    return TrainedPiece(
        trainable_state(model),
        {
            "dev_loss": -result.best_score if result.best_score is not None else None,
            "best_step": result.best_step,
            "steps": result.steps,
            "train_seconds": result.seconds,
            "history": history,
            "batches_per_direction": result.stream_counts,
            "first_steps": result.first_streams,  # the directions of each of the first steps
        },
    )
