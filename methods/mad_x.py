"""MAD-X (Pfeiffer et al. 2020): language adapters by MLM, a task adapter stacked on the source's.

Train a language adapter (LA) per language on unlabelled text with the encoder frozen; train a
task adapter (TA) on the source language with ``Stack(LA_source, TA)``; test on a target with
``Stack(LA_target, TA)``. One LA serves every task and every cell of its language.
"""

from __future__ import annotations

import dataclasses

from adapters.composition import Stack

from xltransfer.cell import Cell, Piece
from xltransfer.method import Method, TrainedPiece
from xltransfer.modules import adapters as ad
from xltransfer.modules.mlm import mlm_eval_batches, mlm_stream, perplexity
from xltransfer.params import Params
from xltransfer.train import Schedule, finetune_few_shot, fit, train_on_task

LA_KEYS = (
    "la_reduction_factor",
    "la_bottleneck",
    "la_invertible",
    "la_leave_out_last_layer",
    "la_steps",
    "la_batch_size",
    "la_learning_rate",
    "la_eval_every",
)
FS_KEYS = ("ta_batch_size", "ta_learning_rate", "fs_epochs")
TA_KEYS = (
    "ta_reduction_factor",
    "ta_bottleneck",
    "ta_steps",
    "ta_batch_size",
    "ta_learning_rate",
    "ta_eval_every",
)


class MadX(Method):
    name = "mad-x"
    summary = "language adapter per language (MLM) + task adapter on Stack(LA, TA); swap the LA at test"
    citation = "Pfeiffer, Vulić, Gurevych, Ruder 2020, MAD-X, EMNLP"
    supported_tasks = frozenset({"pos", "dp", "ner", "nli"})
    # mixed: the multi-source model of the other partition (every language training the task there)
    supported_settings = frozenset({"zero-shot", "few-shot", "mixed"})
    defaults = {
        # LA: reduction factor 2 with invertible adapter (MAD-X §3; Pfeiffer et al. 2020)
        "la_reduction_factor": 2.0,
        "la_bottleneck": 0,  # 0: use the reduction factor; Hyper-X used 256 to match its budget (§4)
        "la_invertible": True,
        "la_leave_out_last_layer": False,
        # LA training: BAD-X §3.1 (25k steps, batch 64, lr 1e-4, evaluate every 500 steps)
        "la_steps": 25000,
        "la_batch_size": 64,
        "la_learning_rate": 1e-4,
        "la_eval_every": 500,
        # TA: reduction factor 16 (MAD-X §3); Hyper-X used bottleneck 48
        "ta_reduction_factor": 16.0,
        "ta_bottleneck": 0,
        # TA for POS/DP: BAD-X §3.1 (15k steps, batch 8, lr 5e-5, evaluate every 250 steps on source dev)
        "ta_steps": 15000,
        "ta_batch_size": 8,
        "ta_learning_rate": 5e-5,
        "ta_eval_every": 250,
        # few-shot: continue the zero-shot TA on k target examples for 50 epochs with the same
        # hyper-parameters and no learning-rate decay (Hyper-X Appendix D)
        "fs_epochs": 50,
    }
    variants = {
        "default": {},
        "no-inv": {"la_invertible": False},
        # MAD-X 2.0: no adapter in the last layer (Pfeiffer et al. 2021)
        "2.0": {"la_leave_out_last_layer": True},
    }

    # -- pieces -------------------------------------------------------------------------------
    def _params(self, keys: tuple[str, ...]) -> Params:
        return Params({k: self.params[k] for k in keys})

    def language_adapter(self, language: str, seed: int) -> Piece:
        return Piece(self.name, "language-adapter", (language,), "mlm", self._params(LA_KEYS), seed)

    def task_adapter(self, cell: Cell) -> Piece:
        las = tuple(self.language_adapter(src, cell.seed) for src in cell.source_languages)
        params = Params({**self._params(TA_KEYS), "la": self._params(LA_KEYS)})
        return Piece(self.name, "task-adapter", cell.source_languages, cell.task, params, cell.seed, las)

    def few_shot_task_adapter(self, cell: Cell) -> Piece:
        """The zero-shot TA continued on k target examples under the target's LA."""
        zero_shot = self.task_adapter(dataclasses.replace(cell, setting="zero-shot", shots=0))
        target_la = self.language_adapter(cell.target_language, cell.seed)
        params = Params({**self._params(FS_KEYS), "shots": cell.shots})
        return Piece(
            self.name,
            "few-shot-task-adapter",
            (cell.target_language,),
            cell.task,
            params,
            cell.seed,
            (zero_shot, target_la),
        )

    def pieces(self, cell: Cell) -> list[Piece]:
        target_la = self.language_adapter(cell.target_language, cell.seed)
        if cell.setting == "few-shot":
            return [target_la, self.few_shot_task_adapter(cell)]
        return [target_la, self.task_adapter(cell)]

    def planned_steps(self, piece: Piece) -> int | None:
        return {"language-adapter": self.params["la_steps"], "task-adapter": self.params["ta_steps"]}.get(
            piece.kind
        )

    def training_batch_size(self, cell: Cell) -> int:
        return self.params["ta_batch_size"]

    # -- model set-up -------------------------------------------------------------------------
    def _add_language_adapter(self, model, language: str) -> str:
        p = self.params
        return ad.add_bottleneck_adapter(
            model,
            ad.language_adapter_name(language),
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
        if piece.kind == "language-adapter":
            name = self._add_language_adapter(model, piece.languages[0])
            if "default" not in model.heads:
                tasks("mlm").add_head(model, "default")
            ad.train_only(model, name)  # the pretrained MLM head stays frozen (MAD-X §3)
            model.active_adapters = Stack(name)
            model.active_head = "default"
            return
        las = [self._add_language_adapter(model, lang) for lang in piece.languages]
        ta = self._add_task_adapter(model, piece.task, tasks)
        ad.train_only(model, ta, heads=[ta])
        model.active_adapters = Stack(las[0], ta)
        model.active_head = ta

    def prepare_inference(self, model, cell: Cell, tasks) -> None:
        la = self._add_language_adapter(model, cell.target_language)
        ta = self._add_task_adapter(model, cell.task, tasks)
        model.active_adapters = Stack(la, ta)
        model.active_head = ta

    # -- training -----------------------------------------------------------------------------
    def train(self, piece: Piece, ctx) -> TrainedPiece:
        model = ctx.new_model()
        self.prepare_model(model, piece, ctx.task)
        p = self.params
        if piece.kind == "language-adapter":
            return self._train_language_adapter(model, piece, ctx)
        ad.load_states(model, (ctx.load_state(dep) for dep in piece.needs))
        ta = ad.task_adapter_name(piece.task)

        def activate(m, lang: str) -> None:
            m.active_adapters = Stack(ad.language_adapter_name(lang), ta)

        if piece.kind == "few-shot-task-adapter":
            result, sample = finetune_few_shot(
                model, ctx, piece, p["ta_batch_size"], p["ta_learning_rate"], p["fs_epochs"], activate
            )
            return TrainedPiece(
                ad.state_of(model, [ta], [ta]), {**_fit_info(result, "final"), "few_shot_sample": sample}
            )
        schedule = Schedule(p["ta_steps"], p["ta_batch_size"], p["ta_learning_rate"], p["ta_eval_every"])
        result = train_on_task(
            model,
            ctx,
            piece.task,
            piece.languages,
            schedule,
            piece.seed,
            activate,
            description=f"{self.name} TA {piece.task} [{'+'.join(piece.languages)}]",
        )
        return TrainedPiece(
            ad.state_of(model, [ta], [ta]),
            _fit_info(result, "dev_" + ctx.task(piece.task).metadata.main_metric),
        )

    def _train_language_adapter(self, model, piece: Piece, ctx) -> TrainedPiece:
        p = self.params
        lang = piece.languages[0]
        mlm = ctx.task("mlm")
        stream = mlm_stream(
            lang, mlm, ctx.features("mlm", lang, "train"), ctx.tokenizer, p["la_batch_size"], piece.seed
        )
        dev = mlm_eval_batches(mlm, ctx.features("mlm", lang, "dev"), ctx.tokenizer)
        schedule = Schedule(p["la_steps"], p["la_batch_size"], p["la_learning_rate"], p["la_eval_every"])
        result = fit(
            model,
            [stream],
            schedule,
            lambda: perplexity(model, mlm, dev),
            higher_is_better=False,
            seed=piece.seed,
            progress=ctx.progress,
            description=f"{self.name} LA [{lang}]",
        )
        name = ad.language_adapter_name(lang)
        return TrainedPiece(ad.state_of(model, [name]), _fit_info(result, "dev_perplexity"))


def _fit_info(result, score_name: str) -> dict:
    return {
        score_name: result.best_score,
        "best_step": result.best_step,
        "steps": result.steps,
        "train_seconds": result.seconds,
        "history": result.history,
    }
