"""Hyper-X (Üstün et al. 2022): one hypernetwork generates every layer's adapter from task,
language and layer embeddings, trained on task data and on MLM text of every language.

The hypernetwork concatenates a task, a language and a layer embedding (64 each), passes them
through a source projector (Linear -> ReLU -> Linear, hidden 192, to d_p) and maps the result
linearly to the weights and biases of that layer's bottleneck adapter (256). Training samples one
homogeneous batch per step from every (task, language) stream — the cell's task on its source
languages, MLM on the source and target languages, so targets get language embeddings — with
temperature T = 5; the encoder's LayerNorms and the task head train with it. A target is tested
with the adapter generated for (task, target): a pair never seen in training.
Variants: ``base`` (d_p 192, the default), ``small`` (d_p 32), ``multi-task`` and ``small-multi-task``
(one hypernetwork for all the grid's tasks, "English multi-task"), and ``typology`` — this project's
own variant, not the paper's: language embeddings computed from the URIEL vector (as MAD-G does)
instead of a lookup table, so a language without any training text still gets an embedding.
"""

from __future__ import annotations

import dataclasses

import torch
from adapters.composition import Stack

from xltransfer.cell import Cell, Piece
from xltransfer.data.parallel import temperature_weights
from xltransfer.method import Method, TrainedPiece
from xltransfer.modules import adapters as ad
from xltransfer.modules import generator as gen
from xltransfer.modules.mlm import mlm_stream
from xltransfer.params import Params
from xltransfer.train import (
    EVAL_BATCH_SIZE,
    Schedule,
    Stream,
    batches_forever,
    fit,
    fixed_batches,
    predict_all,
    sampled,
    trainable_state,
)

SLOT = "hyperx"  # the adapter every layer gets; its weights are always generated
MLM = "mlm"


class HyperX(Method):
    name = "hyper-x"
    summary = "one hypernetwork generates each layer's adapter from task, language and layer embeddings"
    citation = "Üstün, Bisazza, Bouma, van Noord, Ruder 2022, Hyper-X, EMNLP"
    supported_tasks = frozenset({"pos", "dp", "ner", "nli"})
    supported_settings = frozenset({"zero-shot", "few-shot", "mixed"})
    defaults = {
        # Hyper-X §4: task, language and layer embeddings of 64 (192 in all), adapters of 256
        "embedding_dim": 64,
        "projector_hidden": 192,
        "projection_dim": 192,  # d_p (Table 3: base 192, small 32)
        "bottleneck": 256,
        # §4: batch 32, 100k steps, lr 1e-4 decreasing linearly after 4000 warm-up steps,
        # checkpoints every 5000 steps, the best by average validation score; T = 5 (App. B.1)
        "steps": 100_000,
        "batch_size": 32,
        "learning_rate": 1e-4,
        "warmup_steps": 4000,
        "eval_every": 5000,
        "temperature": 5.0,
        "mlm": True,  # MLM streams for the source and target languages (§3, §4)
        # zero-/few-shot: one model per task ("English single-task"), or one for all the grid's tasks
        # ("English multi-task"); the mixed setting is multi-task by definition (§4)
        "multi_task": False,
        "language_embeddings": "lookup",  # or "typology" (this project's variant)
        "fs_epochs": 50,  # few-shot: 50 epochs, same hyper-parameters, no decay (Appendix D)
    }
    variants = {
        "default": {},
        "base": {},
        "small": {"projection_dim": 32},
        "multi-task": {"multi_task": True},
        "small-multi-task": {"projection_dim": 32, "multi_task": True},
        "typology": {"language_embeddings": "typology"},
    }

    # -- pieces -----------------------------------------------------------------------------------
    def training_pairs(self, cell: Cell) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(task, languages) with task data in the hypernetwork's training."""
        if (cell.setting == "mixed" or self.params["multi_task"]) and cell.training_pairs:
            return tuple((task, langs) for task, langs in cell.training_pairs if langs)
        return ((cell.task, cell.source_languages),)

    def _zero_shot_params(self, cell: Cell) -> Params:
        keep = {k: v for k, v in self.params.items() if k != "fs_epochs"}
        return Params({**keep, "mlm_languages": self.mlm_languages(cell), "pairs": self.training_pairs(cell)})

    def mlm_languages(self, cell: Cell) -> tuple[str, ...]:
        if not self.params["mlm"]:
            return ()
        trained = {lang for _, langs in self.training_pairs(cell) for lang in langs}
        return tuple(sorted(set(cell.language_set) | trained | {cell.target_language}))

    def hypernetwork(self, cell: Cell) -> Piece:
        """One per training set: the cells of every task of a multi-task setting share it."""
        task, languages = self.training_pairs(cell)[0]
        return Piece(self.name, "hypernetwork", languages, task, self._zero_shot_params(cell), cell.seed)

    def pieces(self, cell: Cell) -> list[Piece]:
        if cell.setting != "few-shot":
            return [self.hypernetwork(cell)]
        zero_shot = self.hypernetwork(dataclasses.replace(cell, setting="zero-shot", shots=0))
        params = zero_shot.params.updated(shots=cell.shots, fs_epochs=self.params["fs_epochs"])
        return [
            Piece(
                self.name,
                "few-shot-hypernetwork",
                (cell.target_language,),
                cell.task,
                params,
                cell.seed,
                (zero_shot,),
            )
        ]

    def other_data(self, piece: Piece) -> list[tuple[str, str]]:
        if piece.kind != "hypernetwork":
            return []
        others = [
            (task, lang) for task, langs in piece.params["pairs"] if task != piece.task for lang in langs
        ]
        return others + [(MLM, lang) for lang in piece.params["mlm_languages"]]

    def planned_steps(self, piece: Piece) -> int | None:
        return self.params["steps"] if piece.kind == "hypernetwork" else None

    def record_extra(self, cell: Cell) -> dict:
        """Whether the tested (task, language) pair had task data in training (never, zero-shot)."""
        trained = cell.target_language in cell.source_languages or cell.setting == "few-shot"
        return {"task_language_pair_trained": trained}

    def training_batch_size(self, cell: Cell) -> int:
        return self.params["batch_size"]

    # -- model set-up -----------------------------------------------------------------------------
    @staticmethod
    def _tables(params) -> tuple[list[str], list[str]]:
        """The hypernetwork's task and language tables (fixed by the training set)."""
        tasks = sorted({task for task, _ in params["pairs"]} | {MLM})
        languages = sorted(
            set(params["mlm_languages"]) | {lang for _, langs in params["pairs"] for lang in langs}
        )
        return tasks, languages

    def _build(self, model, params, active_task: str, tasks) -> None:
        """The generated adapter slot, a head per trained task, and the hypernetwork as a submodule."""
        from xltransfer.languages import typology_dimensions

        p = self.params
        ad.add_bottleneck_adapter(model, SLOT, reduction_factor=1.0, bottleneck=p["bottleneck"])
        task_table, languages = self._tables(params)
        for task in task_table:
            head = ad.task_adapter_name(task)
            if task != MLM and head not in model.heads:
                tasks(task).add_head(model, head)
        if not hasattr(model, "hyperx"):
            shapes = {n: t.shape for n, t in gen.adapter_parameters(model, SLOT).items()}
            typology_dim = typology_dimensions(languages) if p["language_embeddings"] == "typology" else 0
            model.hyperx = HyperNetwork(
                shapes,
                task_table,
                languages,
                p["embedding_dim"],
                (p["projector_hidden"], p["projection_dim"]),
                typology_dim,
            )
        model.active_adapters = Stack(SLOT)
        model.active_head = ad.task_adapter_name(active_task)

    def prepare_model(self, model, piece: Piece, tasks) -> None:
        self._build(model, piece.params, piece.task, tasks)
        for param in model.parameters():
            param.requires_grad = False
        heads = tuple(f"heads.{ad.task_adapter_name(t)}." for t in model.hyperx.tasks if t != MLM)
        for name, param in model.named_parameters():
            # the hypernetwork, the task heads, and the encoder's LayerNorms (§4, after Mahabadi et al.)
            if name.startswith(("hyperx.", *heads)) or (
                "LayerNorm" in name and name.startswith(model.base_model_prefix + ".")
            ):
                param.requires_grad = True

    def prepare_inference(self, model, cell: Cell, tasks) -> None:
        self._build(model, self._zero_shot_params(cell), cell.task, tasks)

    def external_parameters(self, piece: Piece, model) -> int:
        return 0  # the hypernetwork is a submodule of the model: counted with it

    # -- training and prediction --------------------------------------------------------------------
    def _typology(self, ctx, languages: list[str]) -> dict[str, torch.Tensor] | None:
        if self.params["language_embeddings"] != "typology":
            return None
        return {lang: torch.tensor(ctx.typology(lang)) for lang in languages}

    def _weights(self, model, task: str, language: str, typology) -> dict[str, torch.Tensor]:
        vector = typology[language].to(next(model.parameters()).device) if typology else None
        return model.hyperx(task, language, vector)

    def train(self, piece: Piece, ctx) -> TrainedPiece:
        model = ctx.new_model()
        self.prepare_model(model, piece, ctx.task)
        model.to(ctx.device)
        p = self.params
        typology = self._typology(ctx, model.hyperx.languages)
        if piece.kind == "few-shot-hypernetwork":
            return self._few_shot(model, piece, ctx, typology)

        streams, sizes = [], {}
        for task_name, langs in piece.params["pairs"]:
            pair_task = ctx.task(task_name)
            pair_tokenizer = ctx.tokenizer_for(task_name)
            for i, lang in enumerate(langs):
                features = ctx.features(task_name, lang, "train")
                batches = batches_forever(
                    features,
                    lambda f, t=pair_task, k=pair_tokenizer: t.collate(f, k),
                    p["batch_size"],
                    piece.seed + i,
                )
                name = f"{task_name}/{lang}"
                streams.append(self._stream(name, batches, task_name, lang, pair_task.loss, typology))
                sizes[name] = len(features)
        mlm = ctx.task(MLM)
        for lang in piece.params["mlm_languages"]:
            inner = mlm_stream(
                lang, mlm, ctx.features(MLM, lang, "train"), ctx.tokenizer, p["batch_size"], piece.seed
            )
            streams.append(self._stream(f"{MLM}/{lang}", inner.batches, MLM, lang, inner.loss, typology))
            sizes[f"{MLM}/{lang}"] = len(ctx.features(MLM, lang, "train"))
        shares = temperature_weights(sizes, p["temperature"])
        choose = sampled([shares.get(s.name, 0.0) for s in streams], piece.seed)

        dev_sets = []  # every trained (task, language) pair's dev set (its train set if it has none)
        for task_name, langs in piece.params["pairs"]:
            pair_task, pair_tokenizer = ctx.task(task_name), ctx.tokenizer_for(task_name)
            for lang in langs:
                split = "dev" if ctx.has_split(task_name, lang, "dev") else "train"
                batches = fixed_batches(
                    ctx.features(task_name, lang, split),
                    lambda f, t=pair_task, k=pair_tokenizer: t.collate(f, k),
                    EVAL_BATCH_SIZE,
                )
                dev_sets.append((pair_task, lang, ctx.examples(task_name, lang, split), batches))

        def evaluate() -> float:
            """The average main metric over the pairs (all higher-is-better: accuracy, F1, LAS)."""
            scores = []
            for pair_task, lang, examples, batches in dev_sets:
                self._install(model, pair_task.name, lang, typology)
                predictions = predict_all(model, pair_task.predict, batches)
                scores.append(pair_task.score(examples, predictions)[pair_task.metadata.main_metric])
            return sum(scores) / len(scores)

        schedule = Schedule(
            p["steps"],
            p["batch_size"],
            p["learning_rate"],
            min(p["eval_every"], p["steps"]),
            p["warmup_steps"],
        )
        result = fit(
            model,
            streams,
            schedule,
            evaluate,
            True,
            choose,
            piece.seed,
            ctx.progress,
            f"{self.name} [{' '.join(t + ':' + '+'.join(ls) for t, ls in piece.params['pairs'])}; +mlm]",
        )
        info = {
            "dev_score": result.best_score,
            "best_step": result.best_step,
            "steps": result.steps,
            "train_seconds": result.seconds,
            "history": result.history,
            "batches_per_stream": result.stream_counts,
        }
        return TrainedPiece(trainable_state(model), info)

    def _stream(self, name, batches, task_name: str, language: str, loss, typology) -> Stream:
        """One (task, language) stream: its batches run with the adapter generated for the pair."""

        def generated_loss(model, batch):
            model.active_head = "default" if task_name == MLM else ad.task_adapter_name(task_name)
            weights = self._weights(model, task_name, language, typology)
            return gen.call_with(model, weights, loss, batch)

        return Stream(name, batches, generated_loss)

    @torch.no_grad()
    def _install(self, model, task: str, language: str, typology) -> None:
        gen.install(model, self._weights(model, task, language, typology))
        model.active_head = ad.task_adapter_name(task)

    def _few_shot(self, model, piece: Piece, ctx, typology) -> TrainedPiece:
        """The zero-shot hypernetwork (with head and LayerNorms) continued on k target examples of
        the cell's task; the pair's adapter is generated anew at every step, as it is being learned."""
        from xltransfer.train import finetune_few_shot

        (zero_shot,) = piece.needs
        model.load_state_dict(ctx.load_state(zero_shot), strict=False)
        task = ctx.task(piece.task)
        language = piece.languages[0]
        model.active_head = ad.task_adapter_name(piece.task)

        def loss(m, batch):
            return gen.call_with(m, self._weights(m, piece.task, language, typology), task.loss, batch)

        p = self.params
        result, sample = finetune_few_shot(
            model, ctx, piece, p["batch_size"], p["learning_rate"], p["fs_epochs"], loss=loss
        )
        info = {"steps": result.steps, "train_seconds": result.seconds, "few_shot_sample": sample}
        return TrainedPiece(trainable_state(model), info)

    def ready_for(self, model, cell: Cell, ctx) -> None:
        """The adapter for (task, target), generated once and installed for the whole test set."""
        self._install(model, cell.task, cell.target_language, self._typology(ctx, model.hyperx.languages))


class HyperNetwork(gen.Generator):
    """Task, language and layer embeddings -> source projector -> one layer's adapter weights."""

    def __init__(
        self,
        shapes,
        tasks: list[str],
        languages: list[str],
        embedding_dim: int,
        projector: tuple[int, int],
        typology_dim: int = 0,
    ):
        super().__init__()
        self.tasks, self.languages = list(tasks), list(languages)
        self.task_embedding = torch.nn.Embedding(len(self.tasks), embedding_dim)
        if typology_dim:  # the `typology` variant: λ = V t_l, as MAD-G
            self.language_projection = torch.nn.Linear(typology_dim, embedding_dim, bias=False)
        else:
            self.language_embedding = torch.nn.Embedding(len(self.languages), embedding_dim)
        self.weights = gen.WeightGenerator(shapes, 2 * embedding_dim, True, embedding_dim, None, projector)

    def forward(
        self, task: str, language: str, typology: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        task_vector = self.task_embedding.weight[self.tasks.index(task)]
        if hasattr(self, "language_projection"):
            language_vector = self.language_projection(typology)
        else:
            language_vector = self.language_embedding.weight[self.languages.index(language)]
        return self.weights(torch.cat([task_vector, language_vector]))
