"""What MAD-X, BAD-X and the multilingual adapter share: a language-side adapter trained by MLM
with the encoder frozen, and a task adapter trained on ``Stack(language-side adapter, TA)``.

The three differ only in the language-side adapter: one per language (MAD-X, swapped for the
target's at test), one per source–target pair (BAD-X, kept at test), or one per language set
(the multilingual adapter, kept at test). A subclass says which adapter a cell trains its TA on,
which one it tests with, and how that adapter's MLM batches alternate between languages; the
task adapter, few-shot continuation, multi-source training and parameter counting live here.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod

from adapters.composition import Stack

from xltransfer.cell import Cell, Piece
from xltransfer.method import Method, TrainedPiece
from xltransfer.modules import adapters as ad
from xltransfer.modules.mlm import mlm_eval_batches, mlm_stream, perplexity
from xltransfer.params import Params
from xltransfer.train import (
    Schedule,
    epoch_steps,
    few_shot_steps,
    finetune_few_shot,
    fit,
    round_robin,
    train_on_task,
)

# The language-side adapter's architecture and MLM training (its steps are the subclass's).
ADAPTER_KEYS = (
    "la_reduction_factor",
    "la_bottleneck",
    "la_invertible",
    "la_leave_out_last_layer",
    "la_batch_size",
    "la_learning_rate",
    "la_eval_every",
)
TA_ARCHITECTURE_KEYS = ("ta_reduction_factor", "ta_bottleneck")
TA_STEP_KEYS = ("ta_steps", "ta_batch_size", "ta_learning_rate", "ta_eval_every")
NLI_TA_KEYS = ("nli_ta_epochs", "nli_ta_batch_size", "nli_ta_learning_rate", "nli_ta_eval_every")
FS_KEYS = ("fs_epochs",)

STACKED_DEFAULTS = {
    # language-side adapter: reduction factor 2 with invertible adapter (MAD-X §3; BAD-X §3.1: "2 for
    # LAs and BAs")
    "la_reduction_factor": 2.0,
    "la_bottleneck": 0,  # 0: use the reduction factor; Hyper-X used 256 to match its budget (§4)
    "la_invertible": True,
    "la_leave_out_last_layer": False,
    # its MLM training: BAD-X §3.1 (batch 64, lr 1e-4, evaluate every 500 steps, keep the lowest
    # held-out perplexity); BAs and MAs "adopt all the hyperparameters from MAD-X LA training"
    "la_batch_size": 64,
    "la_learning_rate": 1e-4,
    "la_eval_every": 500,
    # TA: reduction factor 16 (MAD-X §3; BAD-X §3.1); Hyper-X used bottleneck 48
    "ta_reduction_factor": 16.0,
    "ta_bottleneck": 0,
    # TA for POS/DP (and NER): BAD-X §3.1 (15k steps, batch 8, lr 5e-5, evaluate every 250 steps on
    # source dev, keep the best)
    "ta_steps": 15000,
    "ta_batch_size": 8,
    "ta_learning_rate": 5e-5,
    "ta_eval_every": 250,
    # TA for NLI: BAD-X §3.1 after Ebrahimi et al. 2022 (5 epochs, batch 32, lr 2e-5, evaluate every 625)
    "nli_ta_epochs": 5.0,
    "nli_ta_batch_size": 32,
    "nli_ta_learning_rate": 2e-5,
    "nli_ta_eval_every": 625,
    # multi-source TA training: each step one source; 0 = uniformly, T > 0 = by (n_l/N)^(1/T)
    "source_temperature": 0.0,
    # few-shot: continue the zero-shot TA on k target examples for 50 epochs with the same
    # hyper-parameters and no learning-rate decay (Hyper-X Appendix D)
    "fs_epochs": 50,
}

STACKED_SOURCES = {
    "la_reduction_factor": "MAD-X §3; BAD-X §3.1 (reduction factor 2 for LAs and BAs)",
    "la_bottleneck": "ours: 0 uses the reduction factor (Hyper-X §4 set 256 to match its budget)",
    "la_invertible": "MAD-X §3 (invertible adapters on the embeddings)",
    "la_leave_out_last_layer": "MAD-X 2.0 (Pfeiffer et al. 2021): no adapter in the last layer, variant 2.0",
    "la_batch_size": "BAD-X §3.1 (batch 64)",
    "la_learning_rate": "BAD-X §3.1 (lr 1e-4); BAs and MAs adopt MAD-X LA training",
    "la_eval_every": "BAD-X §3.1 (every 500 steps, the lowest held-out perplexity kept)",
    "ta_reduction_factor": "MAD-X §3; BAD-X §3.1 (reduction factor 16)",
    "ta_bottleneck": "ours: 0 uses the reduction factor (Hyper-X §4 set 48)",
    "ta_steps": "BAD-X §3.1 (POS/DP/NER task adapters: 15k steps)",
    "ta_batch_size": "BAD-X §3.1 (batch 8)",
    "ta_learning_rate": "BAD-X §3.1 (lr 5e-5)",
    "ta_eval_every": "BAD-X §3.1 (every 250 steps on the source dev set, the best kept)",
    "nli_ta_epochs": "BAD-X §3.1 after Ebrahimi et al. 2022 (NLI: 5 epochs)",
    "nli_ta_batch_size": "BAD-X §3.1 after Ebrahimi et al. 2022 (batch 32)",
    "nli_ta_learning_rate": "BAD-X §3.1 after Ebrahimi et al. 2022 (lr 2e-5)",
    "nli_ta_eval_every": "BAD-X §3.1 after Ebrahimi et al. 2022 (every 625 steps)",
    "source_temperature": "ours: multi-source TA training draws one source per step, uniformly (0) or "
    "by (n_l/N)^(1/T)",
    "fs_epochs": "Hyper-X Appendix D (few-shot: 50 epochs, same hyper-parameters, no decay)",
}


class StackedAdapterMethod(Method):
    supported_tasks = frozenset({"pos", "dp", "ner", "nli"})
    parameter_sources = STACKED_SOURCES
    # mixed: the multi-source model of the other partition (every language training the task there)
    supported_settings = frozenset({"zero-shot", "few-shot", "mixed"})
    adapter_kind = "language-adapter"  # the kind of this method's language-side pieces

    # -- what a subclass decides ------------------------------------------------------------------
    @abstractmethod
    def training_adapter(self, cell: Cell, source: str) -> Piece:
        """The language-side adapter the TA is stacked on for a batch of ``source``."""

    @abstractmethod
    def test_adapter(self, cell: Cell) -> Piece:
        """The language-side adapter the cell is evaluated with."""

    @abstractmethod
    def adapter_name(self, piece: Piece) -> str:
        """The adapter's name in the model (stable: stored tensors are loaded by it)."""

    @abstractmethod
    def mlm_plan(self, piece: Piece) -> tuple[int, list[int], tuple[str, ...]]:
        """(steps, the repeating pattern of language indices into ``piece.languages``, the
        languages whose held-out perplexity selects the checkpoint)."""

    # -- pieces -----------------------------------------------------------------------------------
    def _params(self, keys: tuple[str, ...], **extra) -> Params:
        return Params({**{k: self.params[k] for k in keys}, **extra})

    def adapter_piece(self, languages: tuple[str, ...], seed: int, **extra) -> Piece:
        return Piece(
            self.name, self.adapter_kind, languages, "mlm", self._params(ADAPTER_KEYS, **extra), seed
        )

    def _ta_keys(self, task: str) -> tuple[str, ...]:
        return (
            TA_ARCHITECTURE_KEYS + (NLI_TA_KEYS if task == "nli" else TA_STEP_KEYS) + ("source_temperature",)
        )

    def task_adapter(self, cell: Cell) -> Piece:
        under = tuple(self.training_adapter(cell, src) for src in cell.source_languages)
        return Piece(
            self.name,
            "task-adapter",
            cell.source_languages,
            cell.task,
            self._params(self._ta_keys(cell.task)),
            cell.seed,
            under,
        )

    def few_shot_task_adapter(self, cell: Cell) -> Piece:
        """The zero-shot TA continued on k target examples, stacked on the cell's test adapter."""
        zero_shot = self.task_adapter(self.zero_shot_cell(cell))
        params = self._params(self._ta_keys(cell.task) + FS_KEYS, shots=cell.shots)
        return Piece(
            self.name,
            "few-shot-task-adapter",
            (cell.target_language,),
            cell.task,
            params,
            cell.seed,
            (zero_shot, self.test_adapter(cell)),
        )

    @staticmethod
    def zero_shot_cell(cell: Cell) -> Cell:
        return dataclasses.replace(cell, setting="zero-shot", shots=0) if cell.setting == "few-shot" else cell

    def pieces(self, cell: Cell) -> list[Piece]:
        if cell.setting == "few-shot":
            return [self.test_adapter(cell), self.few_shot_task_adapter(cell)]
        return [self.test_adapter(cell), self.task_adapter(cell)]

    def planned_steps(self, piece: Piece) -> int | None:
        if piece.kind == self.adapter_kind:
            return self.mlm_plan(piece)[0]
        if piece.kind == "task-adapter" and piece.task != "nli":
            return self.params["ta_steps"]
        if piece.kind == "few-shot-task-adapter":
            batch = self._ta_batch_size(piece.task)
            return few_shot_steps(piece.params["shots"], batch, self.params["fs_epochs"])
        return None

    def planned_batch(self, piece: Piece) -> int:
        """Task adapters: the task's batch; language-side pieces (MLM): the LA batch."""
        if "task-adapter" in piece.kind:
            return self._ta_batch_size(piece.task)
        return self.params["la_batch_size"]

    def planned_epochs(self, piece: Piece) -> float | None:
        return self.params["nli_ta_epochs"] if piece.kind == "task-adapter" and piece.task == "nli" else None

    def training_batch_size(self, cell: Cell) -> int:
        return self.params["nli_ta_batch_size" if cell.task == "nli" else "ta_batch_size"]

    # -- model set-up -----------------------------------------------------------------------------
    def _add_adapter(self, model, piece: Piece) -> str:
        return self._add_language_side(model, self.adapter_name(piece))

    def _add_language_side(self, model, name: str) -> str:
        """A language-side adapter (the ``la_*`` architecture) under ``name``."""
        p = self.params
        return ad.add_bottleneck_adapter(
            model,
            name,
            reduction_factor=p["la_reduction_factor"],
            bottleneck=p["la_bottleneck"] or None,
            invertible=p["la_invertible"],
            leave_out_last_layer=p["la_leave_out_last_layer"],
        )

    def _add_task_adapter(self, model, task_name: str, tasks) -> str:
        p = self.params
        name = ad.add_bottleneck_adapter(
            model,
            ad.task_adapter_name(task_name),
            reduction_factor=p["ta_reduction_factor"],
            bottleneck=p["ta_bottleneck"] or None,
        )
        if name not in model.heads:
            tasks(task_name).add_head(model, name)
        return name

    def prepare_model(self, model, piece: Piece, tasks) -> None:
        if piece.kind == self.adapter_kind:
            self._prepare_for_mlm(model, self.adapter_name(piece), tasks)
            return
        under = [self._add_adapter(model, dep) for dep in piece.needs if dep.kind == self.adapter_kind]
        ta = self._add_task_adapter(model, piece.task, tasks)
        ad.train_only(model, ta, heads=[ta])
        model.active_adapters = Stack(under[0], ta)
        model.active_head = ta

    def _prepare_for_mlm(self, model, name: str, tasks) -> None:
        """A language-side adapter under ``name``, alone in the model, trained by MLM through the
        backbone's own (frozen) MLM head."""
        self._add_language_side(model, name)
        if "default" not in model.heads:
            tasks("mlm").add_head(model, "default")
        ad.train_only(model, name)  # the pretrained MLM head stays frozen (MAD-X §3)
        model.active_adapters = Stack(name)
        model.active_head = "default"

    def prepare_inference(self, model, cell: Cell, tasks) -> None:
        under = self._add_adapter(model, self.test_adapter(cell))
        ta = self._add_task_adapter(model, cell.task, tasks)
        model.active_adapters = Stack(under, ta)
        model.active_head = ta

    # -- training ---------------------------------------------------------------------------------
    def train(self, piece: Piece, ctx) -> TrainedPiece:
        model = ctx.new_model()
        self.prepare_model(model, piece, ctx.task)
        if piece.kind == self.adapter_kind:
            return self._train_adapter(model, piece, ctx)
        ad.load_states(model, (ctx.load_state(dep) for dep in piece.needs))
        ta = ad.task_adapter_name(piece.task)
        adapters = [dep for dep in piece.needs if dep.kind == self.adapter_kind]
        if piece.kind == "few-shot-task-adapter":
            under = self.adapter_name(adapters[0])
            result, sample = finetune_few_shot(
                model,
                ctx,
                piece,
                self._ta_batch_size(piece.task),
                self._ta_learning_rate(piece.task),
                self.params["fs_epochs"],
                lambda m, _lang: setattr(m, "active_adapters", Stack(under, ta)),
            )
            info = {**_fit_info(result, "final"), "few_shot_sample": sample}
            return TrainedPiece(ad.state_of(model, [ta], [ta]), info)
        by_source = {
            lang: self.adapter_name(dep) for lang, dep in zip(piece.languages, adapters, strict=True)
        }

        def activate(m, lang: str) -> None:  # each batch: its source's adapter under the TA
            m.active_adapters = Stack(by_source[lang], ta)

        temperature = self.params["source_temperature"] or None
        result = train_on_task(
            model,
            ctx,
            piece.task,
            piece.languages,
            self._ta_schedule(piece, ctx),
            piece.seed,
            activate,
            description=f"{self.name} TA {piece.task} [{'+'.join(piece.languages)}]",
            temperature=temperature,
        )
        info = _fit_info(result, "dev_" + ctx.task(piece.task).metadata.main_metric)
        return TrainedPiece(ad.state_of(model, [ta], [ta]), info)

    def _ta_batch_size(self, task: str) -> int:
        return self.params["nli_ta_batch_size" if task == "nli" else "ta_batch_size"]

    def _ta_learning_rate(self, task: str) -> float:
        return self.params["nli_ta_learning_rate" if task == "nli" else "ta_learning_rate"]

    def _ta_schedule(self, piece: Piece, ctx) -> Schedule:
        p = self.params
        if piece.task != "nli":
            return Schedule(p["ta_steps"], p["ta_batch_size"], p["ta_learning_rate"], p["ta_eval_every"])
        examples = sum(len(ctx.training_examples("nli", lang)) for lang in piece.languages)
        steps = epoch_steps(examples, p["nli_ta_batch_size"], p["nli_ta_epochs"])
        return Schedule(
            steps, p["nli_ta_batch_size"], p["nli_ta_learning_rate"], min(steps, p["nli_ta_eval_every"])
        )

    def _train_adapter(self, model, piece: Piece, ctx) -> TrainedPiece:
        """MLM over the piece's languages in the subclass's alternation; the checkpoint with the
        lowest mean held-out perplexity of the selection languages is kept."""
        p = self.params
        steps, pattern, select = self.mlm_plan(piece)
        mlm = ctx.task("mlm")
        streams = [
            mlm_stream(
                lang, mlm, ctx.features("mlm", lang, "train"), ctx.tokenizer, p["la_batch_size"], piece.seed
            )
            for lang in piece.languages
        ]
        dev = {
            lang: mlm_eval_batches(mlm, ctx.features("mlm", lang, "dev"), ctx.tokenizer) for lang in select
        }

        def held_out_perplexity() -> float:
            return sum(perplexity(model, mlm, batches) for batches in dev.values()) / len(dev)

        result = fit(
            model,
            streams,
            Schedule(steps, p["la_batch_size"], p["la_learning_rate"], p["la_eval_every"]),
            held_out_perplexity,
            higher_is_better=False,
            choose_stream=round_robin(pattern),
            seed=piece.seed,
            progress=ctx.progress,
            description=f"{self.name} {self.adapter_kind} [{'+'.join(piece.languages)}]",
        )
        info = {
            **_fit_info(result, "dev_perplexity"),
            "batches_per_language": result.stream_counts,
            "first_batches": result.first_streams,
        }
        return TrainedPiece(ad.state_of(model, [self.adapter_name(piece)]), info)


def _fit_info(result, score_name: str) -> dict:
    return {
        score_name: result.best_score,
        "best_step": result.best_step,
        "steps": result.steps,
        "train_seconds": result.seconds,
        "history": result.history,
    }
