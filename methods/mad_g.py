"""MAD-G (Ansell et al. 2021): language adapters generated from typology, then MAD-X's task adapter.

A generator maps a language's typology vector t_l (URIEL syntax_knn + phonology_knn +
inventory_knn, 289 dimensions; the synthetic suite's own typology features for its languages)
through a language embedding λ_l = V t_l to the weights of a bottleneck adapter in every layer.
It is trained once, by multilingual MLM over a typologically diverse set of training languages
with the encoder frozen. Any language with a typology vector then gets an adapter, seen in
training or not; the task adapter is trained on the source's generated adapter and tested on
the target's (MAD-X's swap). Variants: ``ls`` (MAD-G-LS: a layer embedding and one generator
shared by all layers), ``ft`` (MAD-G-ft: the target's generated adapter is finetuned by MLM on
that language's text before testing), ``ls-ft``.
"""

from __future__ import annotations

import torch
from xltransfer.methods.stacked import (
    STACKED_DEFAULTS,
    STACKED_SOURCES,
    StackedAdapterMethod,
    _fit_info,
)

from xltransfer.cell import Cell, Piece
from xltransfer.method import TrainedPiece
from xltransfer.modules import adapters as ad
from xltransfer.modules import generator as gen
from xltransfer.modules.mlm import perplexity
from xltransfer.params import Params
from xltransfer.train import Schedule, Stream, fit, sampled

# Language-side parameters besides the la_* ones (the adapter's architecture and MLM training,
# in the keys of the generator and of every generated adapter): the generator's own, and the
# generated adapter's (MAD-G-ft), so a -ft variant shares its generator with the plain one.
GENERATOR_PARAMS = (
    "language_dim",
    "layer_dim",
    "layer_shared",
    "generator_steps",
    "generator_warmup_steps",
    "sampling_alpha",
    "train_languages",
)
GENERATED_ADAPTER_PARAMS = ("finetune", "ft_steps")
GENERATOR_ADAPTER = "generated"  # the adapter slot the generator writes into while it trains


class MadG(StackedAdapterMethod):
    name = "mad-g"
    summary = "language adapters generated from URIEL typology by one generator (MLM) + MAD-X task adapter"
    citation = "Ansell, Ponti, Pfeiffer, Ruder, Glavaš, Vulić, Korhonen 2021, MAD-G, Findings of EMNLP"
    defaults = {
        **STACKED_DEFAULTS,
        # generated LA: bottleneck 48 on mBERT (reduction factor 16), ReLU, no invertible adapter
        # (the authors' released configuration)
        "la_bottleneck": 48,
        "la_invertible": False,
        # the generator (V, W) is all MAD-G trains, mBERT and its MLM head frozen (MAD-G §3); MAD-G-ft
        # finetunes the generated adapter alone
        "la_train_mlm_head": False,
        # text packed as transformers' TextDataset packs it (each block between [CLS] … [SEP]), as
        # CPGAdapters run_language_modeling.py trains the generator (block_size)
        "la_mlm_line_markers": False,
        "language_dim": 32,  # d_l of λ_l = V t_l
        "layer_dim": 32,  # MAD-G-LS layer embedding
        "layer_shared": False,
        # Not in the summary in shared/papers: as many MLM steps as a BA or an MA (BAD-X §3.1), so
        # generated and trained language-side adapters compare at equal budgets.
        "generator_steps": 50000,
        # no warm-up: none is published (the summary in shared/papers gives no schedule, and
        # CPGAdapters run_language_modeling.py takes it on the command line, no command released)
        "generator_warmup_steps": 0,
        # each step samples a training language with probability ∝ n_l^α (the authors' dataset
        # default; their training script used 1.0)
        "sampling_alpha": 0.7,
        "train_languages": [],  # the generator's training languages: part of the grid
        "finetune": False,  # MAD-G-ft
        "ft_steps": 1000,  # MAD-G-ft MLM steps on the target's text (ours: not in the summary)
        # No checkpoint selection: the generator of the last step is kept, so it is evaluated after
        # its last step only (and at step 0, for the convergence check). CPGAdapters
        # run_language_modeling.py gives its Trainer no eval set while training and saves the final
        # weights (its trainer.py has no best-checkpoint reload). resolve_params makes this follow
        # generator_steps (and ft_steps) unless the grid sets it.
        "la_eval_every": 50000,
    }
    parameter_sources = {
        **STACKED_SOURCES,
        "la_bottleneck": "CPGAdapters UrielCpgConfig (reduction factor 16: bottleneck 48 on mBERT, ReLU)",
        "la_invertible": "CPGAdapters UrielCpgConfig (its invertible adapter is commented out)",
        "la_mlm_line_markers": "CPGAdapters run_language_modeling.py (TextDataset: the text tokenized "
        "whole, each block_size block between [CLS] and [SEP])",
        "la_train_mlm_head": "MAD-G §3 (only the generator is trained, mBERT frozen); ours for MAD-G-ft",
        "language_dim": "CPGAdapters UrielCpgConfig (language_embedding_dim 32 for λ_l = V t_l)",
        "layer_dim": "ours: the MAD-G-LS layer embedding as wide as the language embedding",
        "layer_shared": "MAD-G-LS §3 (one generator for all layers; variants ls, ls-ft)",
        "generator_steps": "ours: as many MLM steps as a BA or MA (BAD-X §3.1); not published (the "
        "MAD-G summary in shared/papers gives none; CPGAdapters releases no training command)",
        "generator_warmup_steps": "ours: no warm-up; not published (MAD-G summary, CPGAdapters "
        "run_language_modeling.py takes --warmup_steps on the command line, none released)",
        "sampling_alpha": "CPGAdapters MultilingualDataset default α = 0.7 (run_language_modeling.py "
        "language_smoothing defaults to 1.0); the value the paper trained with is not published",
        "la_batch_size": "ours: BAD-X §3.1's LA batch 64; MAD-G's generator batch is not published "
        "(CPGAdapters takes it on the command line, none released)",
        "la_learning_rate": "ours: BAD-X §3.1's LA lr 1e-4; MAD-G's generator lr is not published",
        "la_eval_every": "CPGAdapters run_language_modeling.py (no eval set while training, the last "
        "generator saved: nothing selected); by default as many as generator_steps",
        "train_languages": "the grid's (required): a typologically diverse set, as MAD-G selects",
        "finetune": "MAD-G-ft §3 (the generated adapter finetuned on target MLM; variants ft, ls-ft)",
        "ft_steps": "ours: MAD-G-ft's step count is not in the summary",
    }
    check_params = {"train_languages": ["qaa", "qab", "qac"]}  # `xlt check-method`: three languages
    variants = {
        "default": {},
        "ls": {"layer_shared": True},
        "ft": {"finetune": True},
        "ls-ft": {"layer_shared": True, "finetune": True},
    }
    language_side_params = GENERATOR_PARAMS + GENERATED_ADAPTER_PARAMS

    @classmethod
    def resolve_params(cls, variant: str, overrides: dict):
        params = super().resolve_params(variant, overrides)
        if not params["train_languages"]:
            raise ValueError("mad-g needs its generator's training languages: params.train_languages")
        if "la_eval_every" not in overrides:  # the last generator (and -ft adapter) kept, as the authors'
            last = max(params["generator_steps"], params["ft_steps"] if params["finetune"] else 0)
            params = Params({**params, "la_eval_every": last})
        return params

    # -- pieces -----------------------------------------------------------------------------------
    def generator_piece(self, seed: int) -> Piece:
        languages = tuple(self.params["train_languages"])
        language_side = self.side_params("language")
        params = {k: v for k, v in language_side.items() if k not in GENERATED_ADAPTER_PARAMS}
        return Piece(self.name, "generator", languages, "mlm", Params(params), seed)

    def generated_adapter(self, language: str, seed: int, finetune: bool) -> Piece:
        """A language's adapter from the generator; its key holds ft_steps only when finetuned."""
        mine = [k for k in self.side_params("language") if k not in GENERATOR_PARAMS]
        params = {k: self.params[k] for k in mine if finetune or k != "ft_steps"}
        return Piece(
            self.name,
            self.adapter_kind,
            (language,),
            "mlm",
            Params({**params, "finetune": finetune}),
            seed,
            (self.generator_piece(seed),),
        )

    def training_adapter(self, cell: Cell, source: str) -> Piece:
        return self.generated_adapter(source, cell.seed, finetune=False)

    def test_adapter(self, cell: Cell) -> Piece:
        return self.generated_adapter(cell.target_language, cell.seed, finetune=self.params["finetune"])

    def record_extra(self, cell: Cell) -> dict:
        """Whether the target's adapter comes from a language the generator was trained on."""
        return {"target_in_generator_training": cell.target_language in self.params["train_languages"]}

    def adapter_name(self, piece: Piece) -> str:
        return ad.language_adapter_name(piece.languages[0])

    def mlm_plan(self, piece: Piece) -> tuple[int, list[int], tuple[str, ...]]:
        return self.params["ft_steps"], [0], piece.languages

    def planned_steps(self, piece: Piece) -> int | None:
        if piece.kind == "generator":
            return self.params["generator_steps"]
        if piece.kind == self.adapter_kind:
            return self.params["ft_steps"] if piece.params["finetune"] else 0
        return super().planned_steps(piece)

    # -- the generator ----------------------------------------------------------------------------
    def new_generator(self, model, slot: str, typology_dim: int) -> LanguageAdapterGenerator:
        p = self.params
        shapes = {name: param.shape for name, param in gen.adapter_parameters(model, slot).items()}
        return LanguageAdapterGenerator(
            shapes, typology_dim, p["language_dim"], p["layer_shared"], p["layer_dim"]
        )

    def external_parameters(self, piece: Piece, model) -> int:
        if piece.kind != "generator":
            return 0
        from xltransfer.languages import typology_dimensions

        generator = self.new_generator(model, GENERATOR_ADAPTER, typology_dimensions(piece.languages))
        return sum(p.numel() for p in generator.parameters())

    def prepare_model(self, model, piece: Piece, tasks) -> None:
        if piece.kind == "generator":  # its parameters live outside the encoder: nothing to train here
            self._prepare_for_mlm(model, GENERATOR_ADAPTER, tasks)
            ad.train_only(model)
            return
        super().prepare_model(model, piece, tasks)
        if piece.kind == self.adapter_kind and not piece.params["finetune"]:
            ad.train_only(model)  # generated, not trained

    def train(self, piece: Piece, ctx) -> TrainedPiece:
        if piece.kind == "generator":
            return self._train_generator(piece, ctx)
        if piece.kind == self.adapter_kind:
            return self._generate_adapter(piece, ctx)
        return super().train(piece, ctx)

    def _train_generator(self, piece: Piece, ctx) -> TrainedPiece:
        """Multilingual MLM, encoder frozen: each step one training language (∝ n_l^α), its
        adapter generated for that batch; only V, W (and the layer embeddings) learn."""
        p = self.params
        model = ctx.new_model()
        self.prepare_model(model, piece, ctx.task)
        typology = ctx.typologies(piece.languages)
        generator = self.new_generator(model, GENERATOR_ADAPTER, len(next(iter(typology.values()))))
        generator.to(ctx.device)
        vectors = {lang: torch.tensor(v, device=ctx.device) for lang, v in typology.items()}
        mlm = ctx.task("mlm")
        holder = _Holder(model, generator)
        streams = []
        for lang, inner in zip(
            piece.languages, self.mlm_streams(ctx, piece.languages, piece.seed), strict=True
        ):

            def loss(_holder, batch, lang=lang, inner=inner):
                return gen.call_with(model, generator(vectors[lang]), inner.loss, batch)

            streams.append(Stream(lang, inner.batches, loss, prefetch=inner.prefetch))
        sizes = [len(self.la_mlm_features(ctx, lang, "train")) for lang in piece.languages]
        weights = [n ** p["sampling_alpha"] for n in sizes]
        dev = self.mlm_held_out(ctx, piece.languages)

        def held_out_perplexity() -> float:
            scores = []
            for lang, batches in dev.items():
                with torch.no_grad():
                    gen.install(model, generator(vectors[lang]))
                scores.append(perplexity(model, mlm, batches))
            return sum(scores) / len(scores)

        result = fit(
            holder,
            streams,
            Schedule(
                p["generator_steps"],
                p["la_batch_size"],
                p["la_learning_rate"],
                p["la_eval_every"],
                p["generator_warmup_steps"],
            ),
            held_out_perplexity,
            higher_is_better=False,
            choose_stream=sampled(weights, piece.seed),
            seed=piece.seed,
            progress=ctx.progress,
            description=f"{self.name} generator [{len(piece.languages)} languages]",
        )
        state = {f"generator.{k}": v.detach().cpu().clone() for k, v in generator.state_dict().items()}
        info = {**_fit_info(result, "dev_perplexity"), "batches_per_language": result.stream_counts}
        return TrainedPiece(state, {**info, "typology_dimensions": generator.typology_dim})

    def _generated_model(self, language: str, adapter: Piece, ctx):
        """A fresh backbone holding ``language``'s generated adapter, active, under its own name."""
        model = ctx.new_model()
        self.prepare_model(model, adapter, ctx.task)
        state = ctx.load_state(self.generator_piece(adapter.seed))
        generator = self.new_generator(
            model, self.adapter_name(adapter), state["generator.language.weight"].shape[1]
        )
        generator.load_state_dict({k.removeprefix("generator."): v for k, v in state.items()})
        generator.to(ctx.device)
        with torch.no_grad():
            gen.install(model, generator(torch.tensor(ctx.typology(language), device=ctx.device)))
        return model

    def _generate_adapter(self, piece: Piece, ctx) -> TrainedPiece:
        """The language's adapter from the generator (then, for MAD-G-ft, finetuned by MLM)."""
        import time

        started = time.perf_counter()
        language = piece.languages[0]
        model = self._generated_model(language, piece, ctx)
        info = {"train_seconds": time.perf_counter() - started, "generated": True}
        if piece.params["finetune"]:
            trained = self._train_adapter(model, piece, ctx)
            return TrainedPiece(trained.state, {**trained.info, "generated": True})
        if ctx.has_split("mlm", language, "dev"):
            dev = self.mlm_held_out(ctx, [language])[language]
            info["dev_perplexity"] = perplexity(model, ctx.task("mlm"), dev)
        return TrainedPiece(ad.state_of(model, [self.adapter_name(piece)]), info)

    def export_adapter(self, ctx, folder, language: str, seed: int, task: str | None = None) -> str:
        """Save ``language``'s generated adapter as a standard ``adapters`` folder (any language
        with a typology vector, trained on or not); the generator must have been trained. A language
        adapter serves every task: ``task`` is ignored."""
        from xltransfer.errors import XltError

        generator = self.generator_piece(seed)
        if generator not in ctx.plan.keys or not ctx.artifacts.has(ctx.key_of(generator)):
            raise XltError(f"{self.name}: its generator is not trained yet: run the grid first (xlt run)")
        adapter = self.generated_adapter(language, seed, finetune=False)
        model = self._generated_model(language, adapter, ctx)
        name = self.adapter_name(adapter)
        model.save_adapter(str(folder), name, use_safetensors=True)
        return name


class LanguageAdapterGenerator(gen.Generator):
    """λ_l = V t_l + b, then the generator W: typology vector -> every parameter of the adapter."""

    def __init__(self, shapes, typology_dim: int, language_dim: int, layer_shared: bool, layer_dim: int):
        super().__init__()
        self.typology_dim = typology_dim
        # V with its bias and torch's default initialisation, as the authors' typology projection
        # (CPGAdapters src/transformers/cpg.py, UrielMlpProperty.layer_1 = nn.Linear(289, 32))
        self.language = torch.nn.Linear(typology_dim, language_dim)
        # θ = W c, linear and without a bias term, c = λ_l (MAD-G) or [λ_l; layer embedding] (MAD-G-LS):
        # W ~ N(0, (1/dim c)²) (CpgModule.init_params) and layer embeddings ~ N(0, (1/d)²) (Property)
        context_dim = language_dim + (layer_dim if layer_shared else 0)
        self.weights = gen.WeightGenerator(
            shapes,
            language_dim,
            layer_shared,
            layer_dim,
            1.0 / context_dim,
            bias=False,
            layer_std=1.0 / layer_dim if layer_dim else None,
        )

    def forward(self, typology: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.weights(self.language(typology))


class _Holder(torch.nn.Module):
    """What ``fit`` optimises: the generator's parameters (the model itself is frozen)."""

    def __init__(self, model, generator):
        super().__init__()
        self.generator = generator
        self._model = [model]  # not a submodule: its parameters are frozen and not ours to save

    def train(self, mode: bool = True):
        self._model[0].train(mode)
        return super().train(mode)
