"""Full fine-tuning: the whole encoder plus a task head, trained on the source language(s).

The baseline of every adapter paper ("mBERT" in their tables): nothing is language-specific,
the same finetuned model is applied to every target.
"""

from __future__ import annotations

import math

from xltransfer import translation
from xltransfer.cell import Cell, Piece
from xltransfer.method import Method, TrainedPiece
from xltransfer.modules import adapters as ad
from xltransfer.modules.seq2seq import train_everything
from xltransfer.params import Params
from xltransfer.train import (
    Schedule,
    epoch_steps,
    few_shot_steps,
    finetune_few_shot,
    train_on_task,
    trainable_state,
)

MT_PARAMS = tuple(translation.TRAINING_DEFAULTS)


class FullFineTuning(Method):
    name = "full-ft"
    summary = "finetune the whole encoder and a task head on the source language(s)"
    citation = "Devlin et al. 2019, BERT; as the mBERT baseline of Üstün et al. 2022 (Hyper-X)"
    supported_tasks = frozenset({"pos", "dp", "ner", "nli", "mt"})
    # mixed: the multi-source model of the other partition (every language training the task there)
    supported_settings = frozenset({"zero-shot", "few-shot", "mixed"})
    defaults = {
        # Hyper-X §4 (Baselines): mBERT finetuned with learning rate 1e-5 for 20 epochs, batch 32
        "learning_rate": 1e-5,
        "epochs": 20.0,
        "batch_size": 32,
        "evals_per_epoch": 1,
        "warmup_ratio": 0.0,
        "fs_epochs": 50,  # few-shot: 50 epochs on the k examples, no decay (Hyper-X Appendix D)
        # mt: the whole encoder–decoder, trained from scratch as in Baziotis et al. 2022, §4
        **translation.TRAINING_DEFAULTS,
    }
    parameter_sources = {
        "learning_rate": "Hyper-X §4 Baselines, Appendix C (mBERT: lr 1e-5, the better of 1e-4 and 1e-5)",
        "epochs": "Hyper-X §4 Baselines (mBERT: 20 epochs)",
        "batch_size": "Hyper-X §4 (batch 32)",
        "evals_per_epoch": "ours: select on source dev once per epoch (Hyper-X §4 evaluates checkpoints)",
        "warmup_ratio": "ours: no warm-up unless a grid sets it",
        "fs_epochs": "Hyper-X Appendix D (few-shot: 50 epochs, same hyper-parameters, no decay)",
        **translation.TRAINING_SOURCES,
    }

    def pieces(self, cell: Cell) -> list[Piece]:
        if cell.task == "mt":
            params = Params({k: self.params[k] for k in MT_PARAMS})
            return [translation.model_piece(self.name, "translation-model", cell, params)]
        nlu = {k: v for k, v in self.params.items() if k not in MT_PARAMS}
        source_params = Params({k: v for k, v in nlu.items() if k != "fs_epochs"})
        zero_shot = Piece(
            self.name, "finetuned-model", cell.source_languages, cell.task, source_params, cell.seed
        )
        if cell.setting != "few-shot":
            return [zero_shot]
        params = Params(nlu).updated(shots=cell.shots)
        return [
            Piece(
                self.name,
                "few-shot-model",
                (cell.target_language,),
                cell.task,
                params,
                cell.seed,
                (zero_shot,),
            )
        ]

    def training_batch_size(self, cell: Cell) -> int:
        return self.params["mt_batch_tokens" if cell.task == "mt" else "batch_size"]

    def planned_steps(self, piece: Piece) -> int | None:
        if piece.task == "mt":
            return self.params["mt_steps"]
        if piece.kind == "few-shot-model":
            return few_shot_steps(piece.params["shots"], self.params["batch_size"], self.params["fs_epochs"])
        return None  # epochs over the source data

    def planned_batch(self, piece: Piece) -> int:
        return self.params["mt_batch_tokens" if piece.task == "mt" else "batch_size"]

    def planned_epochs(self, piece: Piece) -> float | None:
        return self.params["epochs"] if piece.kind == "finetuned-model" else None

    def prepare_model(self, model, piece: Piece, tasks) -> None:
        if piece.task == "mt":  # the decoder is the head
            train_everything(model)
            return
        self._add_head(model, piece.task, tasks)
        head = ad.task_adapter_name(piece.task)
        ad.train_only(model, heads=[head])
        for param in model.base_model.parameters():
            param.requires_grad = True
        model.active_head = head

    def prepare_inference(self, model, cell: Cell, tasks) -> None:
        if cell.task == "mt":
            return
        self._add_head(model, cell.task, tasks)
        model.active_head = ad.task_adapter_name(cell.task)

    @staticmethod
    def _add_head(model, task_name: str, tasks) -> None:
        head = ad.task_adapter_name(task_name)
        if head not in model.heads:
            tasks(task_name).add_head(model, head)

    def train(self, piece: Piece, ctx) -> TrainedPiece:
        p = self.params
        if piece.task == "mt":
            model = ctx.new_model("mt", seed=piece.seed)
            self.prepare_model(model, piece, ctx.task)
            return translation.trained(
                model, translation.train_model(model, ctx, piece, p, f"{self.name} mt")
            )
        model = ctx.new_model()
        self.prepare_model(model, piece, ctx.task)
        if piece.kind == "few-shot-model":
            ad.load_states(model, (ctx.load_state(dep) for dep in piece.needs))
            result, sample = finetune_few_shot(
                model, ctx, piece, p["batch_size"], p["learning_rate"], p["fs_epochs"]
            )
            return TrainedPiece(
                trainable_state(model),
                {"train_seconds": result.seconds, "steps": result.steps, "few_shot_sample": sample},
            )
        n_train = sum(len(ctx.examples(piece.task, lang, "train")) for lang in piece.languages)
        steps_per_epoch = max(1, math.ceil(n_train / p["batch_size"]))
        steps = epoch_steps(n_train, p["batch_size"], p["epochs"])
        schedule = Schedule(
            steps,
            p["batch_size"],
            p["learning_rate"],
            max(1, steps_per_epoch // p["evals_per_epoch"]),
            warmup_steps=round(p["warmup_ratio"] * steps),
        )
        result = train_on_task(
            model,
            ctx,
            piece.task,
            piece.languages,
            schedule,
            piece.seed,
            description=f"{self.name} {piece.task} [{'+'.join(piece.languages)}]",
        )
        return self._trained(model, result)

    @staticmethod
    def _trained(model, result) -> TrainedPiece:
        return TrainedPiece(
            trainable_state(model),
            {
                "dev_score": result.best_score,
                "best_step": result.best_step,
                "steps": result.steps,
                "train_seconds": result.seconds,
                "history": result.history,
            },
        )
