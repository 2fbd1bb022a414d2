"""Full fine-tuning: the whole encoder plus a task head, trained on the source language(s).

The baseline of every adapter paper ("mBERT" in their tables): nothing is language-specific,
the same finetuned model is applied to every target. In the mixed setting it is Hyper-X's mBERT
baseline (§4.1, Table 2): one multi-task model per partition, an encoder with a head per task,
trained on all the partition's (task, language) pairs at once.
"""

from __future__ import annotations

import math

from xltransfer import translation
from xltransfer.cell import Cell, Piece
from xltransfer.method import Method, TrainedPiece
from xltransfer.modules import adapters as ad
from xltransfer.modules.seq2seq import train_everything
from xltransfer.multitask import average_dev_score, pair_dev_sets, pair_streams, temperature_sampler
from xltransfer.params import Params
from xltransfer.train import (
    Schedule,
    epoch_steps,
    few_shot_steps,
    finetune_few_shot,
    fit,
    train_on_task,
    trainable_state,
)

MT_PARAMS = tuple(translation.TRAINING_DEFAULTS)
MULTI_TASK_PARAMS = ("mixed_temperature",)  # only the mixed setting's multi-task model reads these


class FullFineTuning(Method):
    name = "full-ft"
    summary = "finetune the whole encoder and a task head on the source language(s)"
    citation = "Devlin et al. 2019, BERT; as the mBERT baseline of Üstün et al. 2022 (Hyper-X)"
    supported_tasks = frozenset({"pos", "dp", "ner", "nli", "mt"})
    # mixed: the other partition's multi-task model (one encoder, a head per task: Hyper-X's mBERT)
    supported_settings = frozenset({"zero-shot", "few-shot", "mixed"})
    defaults = {
        # Hyper-X §4 (Baselines): mBERT finetuned with learning rate 1e-5 for 20 epochs, batch 32
        "learning_rate": 1e-5,
        "epochs": 20.0,
        "batch_size": 32,
        "evals_per_epoch": 1,
        # linear warm-up steps before the linear decay: Hyper-X §4.2 warms its mBERT baseline up for
        # 4,000 (leaderboards/hyper-x sets it); 0 here, so that scaled-down grids, whose whole budget
        # is a few hundred steps, are not all warm-up
        "warmup_steps": 0,
        "fs_epochs": 50,  # few-shot: 50 epochs on the k examples, no decay (Hyper-X Appendix D)
        # mixed: each step one (task, language) batch, sampled with T = 5 as Hyper-X's own multi-task
        # training (App. B.1). The paper does not say how its mBERT baseline mixes batches; the released
        # trainer, which also runs without the hypernetwork (ahmetustun/hyperx arguments.py: --no_hypernet),
        # samples so by default (--sampling_strategy temperature, --temperature 5)
        "mixed_temperature": 5.0,
        # mt: the whole encoder–decoder, trained from scratch as in Baziotis et al. 2022, §4
        **translation.TRAINING_DEFAULTS,
    }
    parameter_sources = {
        "learning_rate": "Hyper-X §4 Baselines, Appendix C (mBERT: lr 1e-5, the better of 1e-4 and 1e-5)",
        "epochs": "Hyper-X §4 Baselines (mBERT: 20 epochs)",
        "batch_size": "Hyper-X §4 (batch 32)",
        "evals_per_epoch": "ours: select on source dev once per epoch (Hyper-X §4 evaluates checkpoints)",
        "warmup_steps": "ours: none unless a grid sets it (Hyper-X §4.2: 4,000, set in leaderboards/hyper-x)",
        "mixed_temperature": "ahmetustun/hyperx arguments.py (--sampling_strategy temperature, "
        "--temperature 5), the trainer its mBERT baseline runs with; Hyper-X App. B.1",
        "fs_epochs": "Hyper-X Appendix D (few-shot: 50 epochs, same hyper-parameters, no decay)",
        **translation.TRAINING_SOURCES,
    }

    @classmethod
    def resolve_params(cls, variant: str, overrides: dict):
        params = super().resolve_params(variant, overrides)
        translation.check_params(params)  # a bad mt_norm is a grid error, before anything trains
        return params

    def pieces(self, cell: Cell) -> list[Piece]:
        if cell.task == "mt":
            params = Params({k: self.params[k] for k in MT_PARAMS})
            return [translation.model_piece(self.name, "translation-model", cell, params)]
        nlu = {k: v for k, v in self.params.items() if k not in MT_PARAMS}
        if cell.setting == "mixed":
            return [self.multi_task_model(cell, Params({k: v for k, v in nlu.items() if k != "fs_epochs"}))]
        source_params = Params({k: v for k, v in nlu.items() if k not in ("fs_epochs", *MULTI_TASK_PARAMS)})
        zero_shot = Piece(
            self.name, "finetuned-model", cell.source_languages, cell.task, source_params, cell.seed
        )
        if cell.setting != "few-shot":
            return [zero_shot]
        few_shot = {k: v for k, v in nlu.items() if k not in MULTI_TASK_PARAMS}
        params = Params(few_shot).updated(shots=cell.shots)
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

    def multi_task_model(self, cell: Cell, params: Params) -> Piece:
        """The partition's one model: every (task, languages) the partition trains (``training_pairs``),
        keyed like Hyper-X's hypernetwork by its first pair, the others being ``other_data``."""
        pairs = tuple((task, langs) for task, langs in cell.training_pairs if langs)
        task, languages = pairs[0]
        return Piece(
            self.name, "multi-task-model", languages, task, params.updated(pairs=pairs), cell.seed, mixed=True
        )

    def other_data(self, piece: Piece) -> list[tuple[str, str]]:
        if piece.kind != "multi-task-model":
            return []
        return [(task, lang) for task, langs in piece.params["pairs"] if task != piece.task for lang in langs]

    def training_batch_size(self, cell: Cell) -> int:
        return self.params["mt_batch_tokens" if cell.task == "mt" else "batch_size"]

    def planned_evaluations(self, piece: Piece, steps: int) -> int | None:
        """``evals_per_epoch`` times an epoch (``_schedule``), for the fine-tuned model."""
        from xltransfer.cost import evaluation_passes

        p = self.params
        if piece.kind != "finetuned-model":
            return None
        per_epoch = max(1, math.ceil(steps / max(p["epochs"], 1e-9)))
        return evaluation_passes(steps, max(1, per_epoch // p["evals_per_epoch"]))

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
        trained = _piece_tasks(piece)
        for task_name in trained:
            self._add_head(model, task_name, tasks)
        ad.train_only(model, heads=[ad.task_adapter_name(t) for t in trained])
        for param in model.base_model.parameters():
            param.requires_grad = True
        model.active_head = ad.task_adapter_name(piece.task)

    def prepare_inference(self, model, cell: Cell, tasks) -> None:
        if cell.task == "mt":
            return
        self._add_head(model, cell.task, tasks)
        model.active_head = ad.task_adapter_name(cell.task)

    def deployed_state(self, cell: Cell, state):
        """A multi-task model's encoder and the cell's task head (the other tasks' heads stay out)."""
        other_heads = tuple(
            f"heads.{ad.task_adapter_name(task)}." for task, _ in cell.training_pairs if task != cell.task
        )
        if cell.setting != "mixed" or not other_heads:
            return state
        return {name: tensor for name, tensor in state.items() if not name.startswith(other_heads)}

    @staticmethod
    def _add_head(model, task_name: str, tasks) -> None:
        head = ad.task_adapter_name(task_name)
        if head not in model.heads:
            tasks(task_name).add_head(model, head)

    def train(self, piece: Piece, ctx) -> TrainedPiece:
        p = self.params
        if piece.task == "mt":
            model = ctx.new_model("mt", seed=piece.seed, params=piece.params)
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
        if piece.kind == "multi-task-model":
            result = self._train_multi_task(model, piece, ctx)
            trained = self._trained(model, result)
            trained.info["batches_per_stream"] = result.stream_counts
            return trained
        n_train = sum(len(ctx.examples(piece.task, lang, "train")) for lang in piece.languages)
        result = train_on_task(
            model,
            ctx,
            piece.task,
            piece.languages,
            self._schedule(n_train),
            piece.seed,
            description=f"{self.name} {piece.task} [{'+'.join(piece.languages)}]",
        )
        return self._trained(model, result)

    def _schedule(self, n_train: int) -> Schedule:
        """``epochs`` over ``n_train`` examples, evaluated ``evals_per_epoch`` times an epoch."""
        p = self.params
        steps_per_epoch = max(1, math.ceil(n_train / p["batch_size"]))
        steps = epoch_steps(n_train, p["batch_size"], p["epochs"])
        return Schedule(
            steps,
            p["batch_size"],
            p["learning_rate"],
            max(1, steps_per_epoch // p["evals_per_epoch"]),
            warmup_steps=p["warmup_steps"],
        )

    def _train_multi_task(self, model, piece: Piece, ctx):
        """One encoder and a head per task on every pair of the partition: each step one pair's batch
        through its task's head; ``epochs`` count over all the pairs' training examples."""
        p, pairs = self.params, piece.params["pairs"]

        def loss_for(task_name: str, language: str, loss):
            head = ad.task_adapter_name(task_name)

            def head_loss(m, batch):
                m.active_head = head
                return loss(m, batch)

            return head_loss

        streams, sizes = pair_streams(ctx, pairs, p["batch_size"], piece.seed, loss_for)
        dev_sets = pair_dev_sets(ctx, pairs)

        def ready(m, task_name: str, language: str) -> None:
            m.active_head = ad.task_adapter_name(task_name)

        return fit(
            model,
            streams,
            self._schedule(sum(sizes.values())),
            (lambda: average_dev_score(model, dev_sets, ready)) if dev_sets else None,  # else the last step
            True,
            temperature_sampler(streams, sizes, p["mixed_temperature"], piece.seed),
            piece.seed,
            ctx.progress,
            f"{self.name} [{' '.join(t + ':' + '+'.join(ls) for t, ls in pairs)}]",
        )

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


def _piece_tasks(piece: Piece) -> list[str]:
    """The tasks a piece trains a head for: its own, or every task of a multi-task model."""
    if piece.kind == "multi-task-model":
        return sorted({task for task, _ in piece.params["pairs"]})
    return [piece.task]
