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
import functools
from abc import abstractmethod

from adapters.composition import Stack

from xltransfer.cell import Cell, Piece
from xltransfer.method import Method, TrainedPiece
from xltransfer.modules import adapters as ad
from xltransfer.modules.mlm import mlm_eval_batches, mlm_features, mlm_stream, perplexity
from xltransfer.params import Params
from xltransfer.task import GRID_ENCODING, Encoding
from xltransfer.train import (
    Schedule,
    Stream,
    epoch_steps,
    few_shot_steps,
    finetune_few_shot,
    fit,
    round_robin,
    train_on_task,
)

# Which piece a parameter shapes follows from its name, so a subclass that adds ``la_lora_r``
# gets it into its language-side adapters' keys without listing it anywhere:
#   la_*      the language-side adapter and its MLM training (MAD-X's LA, BAD-X's BA, the MA,
#             MAD-G's generated LA), plus a class's ``language_side_params``;
#   ta_*      the task adapter of every task but NLI, plus a class's ``task_side_params``;
#   nli_ta_*  the NLI task adapter, whose schedule replaces TA_SCHEDULE_KEYS;
#   dp_ta_*   the DP task adapter (the task's own prefix keys that task's adapters only);
#   fs_*      the few-shot continuation of a task adapter;
# and a class's ``inference_params`` shape no piece, only how a cell is evaluated. A parameter in
# none of them is refused when the grid is read: it would be in no piece's key, so changing it
# would silently reuse pieces trained without it.
LANGUAGE_SIDE_PREFIX = "la_"
TASK_OWN_PREFIXES = {"nli": "nli_ta_", "dp": "dp_ta_"}  # a task's own task-adapter parameters
TASK_SIDE_PREFIXES = ("ta_", *TASK_OWN_PREFIXES.values())
# added after task adapters were stored: in a piece's key only when set to another value than the
# default, so the pieces trained before them keep their keys
KEYED_WHEN_SET = ("nli_ta_max_length", "dp_ta_drop_subwords")
FEW_SHOT_PREFIX = "fs_"
TA_SCHEDULE_KEYS = (
    "ta_steps",
    "ta_epochs",
    "ta_batch_size",
    "ta_learning_rate",
    "ta_eval_every",
    "ta_warmup_steps",
)

STACKED_DEFAULTS = {
    # language-side adapter: reduction factor 2 with invertible adapter (MAD-X §3; BAD-X §3.1: "2 for
    # LAs and BAs")
    "la_reduction_factor": 2.0,
    "la_bottleneck": 0,  # 0: use the reduction factor; Hyper-X used 256 to match its budget (§4)
    "la_invertible": True,
    # its MLM examples: sentences concatenated into max_length blocks, as MAD-X's and BAD-X's LAs
    # (adapters' examples/pytorch/language-modeling/run_mlm.py, group_texts, which also keeps each
    # line's [CLS]/[SEP] inside the blocks; see tasks/mlm.py encode_packed) and MAD-G's generator
    # (CPGAdapters examples/language-modeling/run_language_modeling.py, block_size) are trained
    "la_mlm_packing": True,
    # each sentence keeps its [CLS] … [SEP] inside the blocks (run_mlm.py's group_texts: parovicm/badx
    # run_bi_mlm.py tokenize_function tokenizes each line with its markers, group_texts cuts the
    # sequence into max_seq_length blocks); false: each block between the markers (TextDataset)
    "la_mlm_line_markers": True,
    # their length: 0 is the grid's max_length; BAD-X's LAs and BAs train on 512-token blocks
    # (parovicm/badx examples/language-modeling/README.md, --max_seq_len 512), set in its grid
    "la_max_length": 0,
    # the MLM head's transform and output bias train with the adapter, only the encoder is frozen
    # (parovicm/badx run_bi_mlm.py: train_adapter freezes the base model; adapters' run_mlm.py trains
    # the transform too, its freeze_embeddings also freezing the output layer's bias)
    "la_train_mlm_head": True,
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
    # > 0: train for this many epochs of the sources' data instead of ta_steps (Hyper-X §4.2 trains
    # its MAD-X TAs for 20 epochs)
    "ta_epochs": 0.0,
    # linear warm-up before the linear decay: none in BAD-X §3.1; Hyper-X §4.2 uses 4,000 steps
    "ta_warmup_steps": 0,
    # TA for NLI: BAD-X §3.1 after Ebrahimi et al. 2022 (5 epochs, batch 32, lr 2e-5, evaluate every 625)
    "nli_ta_epochs": 5.0,
    "nli_ta_batch_size": 32,
    "nli_ta_learning_rate": 2e-5,
    "nli_ta_eval_every": 625,
    # the NLI head: a fresh two-layer head on [CLS] (the adapters library's default), or the frozen
    # pretrained pooler and one linear layer as the authors classify (parovicm/badx run_anli.py)
    "nli_ta_pooler": False,
    # NLI subwords per pair: 0 is the grid's max_length; run_anli.py (parovicm/badx) trains and
    # evaluates at max_seq_length 128 (set in the bad-x grid)
    "nli_ta_max_length": 0,
    # dependency trees: MST decoding, always a tree (ours, stated); "greedy" takes each word's argmax
    # head as the authors decode (parovicm/badx dependency-parsing utils_udp.py, after hgiyt)
    "dp_decoding": "mst",
    # DP training sentences of this many subwords or more (special tokens not counted) are left out;
    # 0 keeps them, cut at max_length. hgiyt ud_dataset.py / adapters' dependency-parsing
    # preprocessing.py (parovicm/badx run_udp.py) drop len >= max_seq_length - 2: 254 at 256 (bad-x grid)
    "dp_ta_drop_subwords": 0,
    # multi-source TA training: each step one source; 0 = uniformly, T > 0 = by (n_l/N)^(1/T)
    "source_temperature": 0.0,
    # few-shot: continue the zero-shot TA on k target examples for 50 epochs with the same
    # hyper-parameters and no learning-rate decay (Hyper-X Appendix D)
    "fs_epochs": 50,
    # MAD-X 2.0 (Pfeiffer et al. 2021, "UNKs Everywhere"): the TA is trained, selected and tested
    # with the last layer's LA and TA left out (parovicm/badx run_udp.py, leave_out_twelvth: leave_out
    # [11] for both); the LA itself is trained in every layer and loaded without its last layer
    "ta_leave_out_last_layer": False,
}

# BAs and MAs (not MAD-X's LAs, whose run_mlm.py Trainer shuffles a map-style dataset): each
# language's text read in order, never shuffled, cycled. parovicm/badx run_bi_mlm.py's
# MultilingualDataset is an IterableDataset whose per-language iterators read the files from the
# start of their training part and restart at the end (the Trainer cannot shuffle it).
IN_ORDER_DEFAULTS = {"mlm_in_order": True}
IN_ORDER_SOURCES = {
    "mlm_in_order": "parovicm/badx run_bi_mlm.py (MultilingualDataset, an IterableDataset: each "
    "language read in order and cycled, not shuffled)"
}

STACKED_SOURCES = {
    "la_reduction_factor": "MAD-X §3; BAD-X §3.1 (reduction factor 2 for LAs and BAs)",
    "la_bottleneck": "ours: 0 uses the reduction factor (Hyper-X §4 set 256 to match its budget)",
    "la_invertible": "MAD-X §3 (invertible adapters on the embeddings); for BAs and MAs our reading of "
    'BAD-X §3.1 (they "adopt all the hyperparameters from MAD-X LA training"): its example command '
    "(parovicm/badx examples/language-modeling/README.md) sets neither --adapter_config nor the "
    "reduction factor 2 the paper states, so the released code does not settle it",
    "la_batch_size": "BAD-X §3.1 (batch 64)",
    "la_learning_rate": "BAD-X §3.1 (lr 1e-4); BAs and MAs adopt MAD-X LA training",
    "la_eval_every": "BAD-X §3.1 (every 500 steps, the lowest held-out perplexity kept)",
    "la_mlm_packing": "adapters' run_mlm.py (group_texts) and CPGAdapters run_language_modeling.py "
    "(block_size): text packed into max_length blocks",
    "la_mlm_line_markers": "parovicm/badx run_bi_mlm.py and adapters' run_mlm.py (each line tokenized "
    "with its [CLS]/[SEP], then group_texts cuts the sequence into blocks)",
    "la_max_length": "ours: 0 is the grid's max_length; parovicm/badx examples/language-modeling/"
    "README.md trains LAs/BAs with --max_seq_len 512 (set in the bad-x grid)",
    "la_train_mlm_head": "parovicm/badx run_bi_mlm.py (train_adapter freezes the encoder only: the MLM "
    "head's transform and output bias train, tied output weights frozen); adapters' run_mlm.py trains the "
    "transform",
    "ta_reduction_factor": "MAD-X §3; BAD-X §3.1 (reduction factor 16)",
    "ta_bottleneck": "ours: 0 uses the reduction factor (Hyper-X §4 set 48)",
    "ta_steps": "BAD-X §3.1 (POS/DP/NER task adapters: 15k steps)",
    "ta_batch_size": "BAD-X §3.1 (batch 8)",
    "ta_learning_rate": "BAD-X §3.1 (lr 5e-5)",
    "ta_eval_every": "BAD-X §3.1 (every 250 steps on the source dev set, the best kept)",
    "ta_epochs": "ours: 0 trains ta_steps (BAD-X §3.1); Hyper-X §4.2 trains its MAD-X TAs 20 epochs",
    "ta_warmup_steps": "BAD-X §3.1 names no warm-up (the HF Trainer its scripts run defaults to 0); "
    "Hyper-X §4.2 warms up 4,000 steps",
    "nli_ta_epochs": "BAD-X §3.1 after Ebrahimi et al. 2022 (NLI: 5 epochs)",
    "nli_ta_batch_size": "BAD-X §3.1 after Ebrahimi et al. 2022 (batch 32)",
    "nli_ta_learning_rate": "BAD-X §3.1 after Ebrahimi et al. 2022 (lr 2e-5)",
    "nli_ta_eval_every": "BAD-X §3.1 after Ebrahimi et al. 2022 (every 625 steps)",
    "nli_ta_pooler": "ours: a two-layer head on [CLS] (adapters' default); parovicm/badx run_anli.py "
    "classifies with the frozen pretrained pooler + one linear layer (true; set in the bad-x grid)",
    "nli_ta_max_length": "ours: 0 is the grid's max_length; parovicm/badx run_anli.py trains and "
    "evaluates NLI at max_seq_length 128 (set in the bad-x grid)",
    "dp_ta_drop_subwords": "ours: 0 keeps every DP training sentence (cut at max_length); hgiyt "
    "ud_dataset.py / adapters' dependency-parsing preprocessing.py (parovicm/badx run_udp.py) drop "
    "sentences of >= max_seq_length - 2 subwords, special tokens not counted (254; set in the bad-x grid)",
    "dp_decoding": "ours: MST decoding, always a tree (Dozat & Manning 2017); parovicm/badx utils_udp.py "
    "(after hgiyt) decodes greedily (greedy; set in the bad-x grid)",
    "source_temperature": "ours: multi-source TA training draws one source per step, uniformly (0) or "
    "by (n_l/N)^(1/T)",
    "fs_epochs": "Hyper-X Appendix D (few-shot: 50 epochs, same hyper-parameters, no decay)",
    "ta_leave_out_last_layer": "MAD-X 2.0 (Pfeiffer et al. 2021); parovicm/badx run_udp.py "
    "(leave_out_twelvth: leave_out [11] for LA and TA in training, selection and test), variant 2.0",
}


class StackedAdapterMethod(Method):
    supported_tasks = frozenset({"pos", "dp", "ner", "nli"})
    parameter_sources = STACKED_SOURCES
    # mixed: the multi-source model of the other partition (every language training the task there)
    supported_settings = frozenset({"zero-shot", "few-shot", "mixed"})
    adapter_kind = "language-adapter"  # the kind of this method's language-side pieces
    # parameters outside the naming rule (at the top of this module), by the piece they shape
    language_side_params: tuple[str, ...] = ()
    task_side_params: tuple[str, ...] = ("source_temperature",)
    inference_params: tuple[str, ...] = ("dp_decoding",)

    @classmethod
    def resolve_params(cls, variant: str, overrides: dict) -> Params:
        params = super().resolve_params(variant, overrides)
        unkeyed = [name for name in params if cls.parameter_side(name) is None]
        if unkeyed:
            raise ValueError(
                f"{cls.name}: parameter(s) {', '.join(unkeyed)} would be in no piece's key (changing them "
                f"would reuse pieces trained without them): name them la_* (language-side adapter), "
                f"ta_*, nli_ta_* (task adapter) or fs_* (few-shot), or list them in the class's "
                f"language_side_params, task_side_params or inference_params"
            )
        cls.validate_params(params)
        return params

    @classmethod
    def validate_params(cls, params: Params) -> None:
        from xltransfer.tasks.dp import DECODINGS

        if params["dp_decoding"] not in DECODINGS:
            raise ValueError(f"dp_decoding '{params['dp_decoding']}': choose one of {', '.join(DECODINGS)}")
        for name in KEYED_WHEN_SET:
            value = params[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} {value!r}: a whole number of subwords, 0 for the grid's way")

    @classmethod
    def parameter_side(cls, name: str) -> str | None:
        """Which piece a parameter shapes: "language", "task", "few-shot", "inference", or None."""
        if name.startswith(LANGUAGE_SIDE_PREFIX) or name in cls.language_side_params:
            return "language"
        if name.startswith(TASK_SIDE_PREFIXES) or name in cls.task_side_params:
            return "task"
        if name.startswith(FEW_SHOT_PREFIX):
            return "few-shot"
        if name in cls.inference_params:
            return "inference"
        return None

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
    def side_params(self, side: str) -> dict:
        """The method's parameters that shape one side's pieces (``parameter_side``)."""
        return {k: v for k, v in self.params.items() if self.parameter_side(k) == side}

    def adapter_piece(self, languages: tuple[str, ...], seed: int) -> Piece:
        return Piece(
            self.name, self.adapter_kind, languages, "mlm", Params(self.side_params("language")), seed
        )

    def _ta_params(self, task: str, *sides: str) -> Params:
        """The task adapter's parameters for ``task`` (NLI's schedule is nli_ta_*, the others' ta_*),
        with those of further ``sides`` (the few-shot continuation's)."""
        own = self.side_params("task")
        if task == "nli":
            own = {k: v for k, v in own.items() if k not in TA_SCHEDULE_KEYS}
        others = tuple(prefix for name, prefix in TASK_OWN_PREFIXES.items() if name != task)
        own = {
            k: v
            for k, v in own.items()
            if not k.startswith(others) and not (k in KEYED_WHEN_SET and v == self.defaults[k])
        }
        for side in sides:
            own.update(self.side_params(side))
        return Params(own)

    def task_adapter(self, cell: Cell) -> Piece:
        under = tuple(self.training_adapter(cell, src) for src in cell.source_languages)
        return Piece(
            self.name,
            "task-adapter",
            cell.source_languages,
            cell.task,
            self._ta_params(cell.task),
            cell.seed,
            under,
            mixed=cell.setting == "mixed",
        )

    def few_shot_task_adapter(self, cell: Cell) -> Piece:
        """The zero-shot TA continued on k target examples, stacked on the cell's test adapter."""
        zero_shot = self.task_adapter(self.zero_shot_cell(cell))
        params = self._ta_params(cell.task, "few-shot").updated(shots=cell.shots)
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
        if piece.kind == "task-adapter" and piece.task != "nli" and not self.params["ta_epochs"]:
            return self.params["ta_steps"]
        if piece.kind == "few-shot-task-adapter":
            batch = self._ta_batch_size(piece.task)
            return few_shot_steps(piece.params["shots"], batch, self.params["fs_epochs"])
        return None  # epochs (NLI's, or ta_epochs): planned_epochs

    def planned_evaluations(self, piece: Piece, steps: int) -> int | None:
        """Language-side pieces every ``la_eval_every`` steps on held-out text, task adapters every
        ``ta_eval_every`` (NLI's ``nli_ta_eval_every``) on the source dev set (``_ta_schedule``)."""
        from xltransfer.cost import evaluation_passes

        if piece.kind == "few-shot-task-adapter":
            return None  # a few-shot task adapter trains its fixed epochs, nothing selected
        if "task-adapter" in piece.kind:
            every = self.params["nli_ta_eval_every" if piece.task == "nli" else "ta_eval_every"]
            return evaluation_passes(steps, min(steps, every))
        return evaluation_passes(steps, self.params["la_eval_every"])

    def planned_batch(self, piece: Piece) -> int:
        """Task adapters: the task's batch; language-side pieces (MLM): the LA batch."""
        if "task-adapter" in piece.kind:
            return self._ta_batch_size(piece.task)
        return self.params["la_batch_size"]

    def planned_epochs(self, piece: Piece) -> float | None:
        if piece.kind != "task-adapter":
            return None
        return self.params["nli_ta_epochs"] if piece.task == "nli" else self.params["ta_epochs"] or None

    def training_batch_size(self, cell: Cell) -> int:
        return self.params["nli_ta_batch_size" if cell.task == "nli" else "ta_batch_size"]

    # -- model set-up -----------------------------------------------------------------------------
    def left_out_layers(self, model_config) -> tuple[int, ...]:
        """The encoder layers without adapters wherever a task adapter is trained or used: the last
        one for MAD-X 2.0 (``ta_leave_out_last_layer``), none otherwise."""
        if self.params["ta_leave_out_last_layer"]:
            return (model_config.num_hidden_layers - 1,)
        return ()

    def _add_adapter(self, model, piece: Piece) -> str:
        """The language-side adapter under a task adapter (without the left-out layers)."""
        return self._add_language_side(model, self.adapter_name(piece), self.left_out_layers(model.config))

    def _add_language_side(self, model, name: str, leave_out: tuple[int, ...] = ()) -> str:
        """A language-side adapter (the ``la_*`` architecture) under ``name``."""
        p = self.params
        return ad.add_bottleneck_adapter(
            model,
            name,
            reduction_factor=p["la_reduction_factor"],
            bottleneck=p["la_bottleneck"] or None,
            invertible=p["la_invertible"],
            leave_out=leave_out,
        )

    def _add_task_adapter(self, model, task_name: str, tasks) -> str:
        p = self.params
        name = ad.add_bottleneck_adapter(
            model,
            ad.task_adapter_name(task_name),
            reduction_factor=p["ta_reduction_factor"],
            bottleneck=p["ta_bottleneck"] or None,
            leave_out=self.left_out_layers(model.config),
        )
        if name not in model.heads:
            if task_name == "nli" and p["nli_ta_pooler"]:
                tasks(task_name).add_head(model, name, pooler=True)
            else:
                tasks(task_name).add_head(model, name)
        return name

    def encoding(self, task: str) -> Encoding:
        """NLI at ``nli_ta_max_length`` (training, selection and test), DP trained without the
        sentences of ``dp_ta_drop_subwords`` subwords or more; the grid's way at the defaults."""
        if task == "nli":
            return Encoding(max_length=self.params["nli_ta_max_length"])
        if task == "dp":
            return Encoding(drop_subwords=self.params["dp_ta_drop_subwords"])
        return GRID_ENCODING

    def predictor(self, cell: Cell, task):
        if cell.task == "dp" and self.params["dp_decoding"] != "mst":
            return functools.partial(task.predict, decoding=self.params["dp_decoding"])
        return task.predict

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
        backbone's own MLM head (its transform and bias trained too with ``la_train_mlm_head``)."""
        self._add_language_side(model, name)
        if "default" not in model.heads:
            tasks("mlm").add_head(model, "default")
        ad.train_only(model, name)
        if self.params["la_train_mlm_head"]:
            ad.train_mlm_head(model, "default")
        model.active_adapters = Stack(name)
        model.active_head = "default"

    def _mlm_state(self, model, name: str) -> dict:
        """A language-side adapter's tensors, with the MLM head it trained (``la_train_mlm_head``)."""
        return ad.state_of(model, [name], ["default"] if self.params["la_train_mlm_head"] else [])

    def prepare_inference(self, model, cell: Cell, tasks) -> None:
        under = self._add_adapter(model, self.test_adapter(cell))
        ta = self._add_task_adapter(model, cell.task, tasks)
        model.active_adapters = Stack(under, ta)
        model.active_head = ta

    def deployed_state(self, cell: Cell, state: dict) -> dict:
        """A language-side adapter, trained in every layer, less its last layer under a 2.0 TA (its
        own deepest layer is the encoder's last; the TA's state has no last layer to drop)."""
        ta_marker = f".{ad.task_adapter_name(cell.task)}."
        if any(ta_marker in name for name in state):
            return state
        state = ad.without_heads(state, ["default"])  # the language side's MLM head: not deployed
        if not self.params["ta_leave_out_last_layer"]:
            return state
        layers = [int(n.split(".layer.")[1].split(".")[0]) for n in state if ".layer." in n]
        return ad.without_layers(state, [max(layers)] if layers else [])

    # -- training ---------------------------------------------------------------------------------
    def train(self, piece: Piece, ctx) -> TrainedPiece:
        model = ctx.new_model()
        self.prepare_model(model, piece, ctx.task)
        if piece.kind == self.adapter_kind:
            return self._train_adapter(model, piece, ctx)
        left_out = self.left_out_layers(model.config)
        # the language sides' adapters, without the MLM heads they trained with (a TA never uses them)
        states = (ad.without_layers(ctx.load_state(dep), left_out) for dep in piece.needs)
        ad.load_states(model, (ad.without_heads(state, ["default"]) for state in states))
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
                encoding=self.encoding(piece.task),
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
            encoding=self.encoding(piece.task),
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
            steps = p["ta_steps"]
            if p["ta_epochs"]:
                steps = self._epoch_steps(ctx, piece, p["ta_epochs"], p["ta_batch_size"])
            return Schedule(
                steps,
                p["ta_batch_size"],
                p["ta_learning_rate"],
                min(steps, p["ta_eval_every"]),
                p["ta_warmup_steps"],
            )
        steps = self._epoch_steps(ctx, piece, p["nli_ta_epochs"], p["nli_ta_batch_size"])
        return Schedule(
            steps, p["nli_ta_batch_size"], p["nli_ta_learning_rate"], min(steps, p["nli_ta_eval_every"])
        )

    def _epoch_steps(self, ctx, piece: Piece, epochs: float, batch_size: int) -> int:
        """Optimiser steps for ``epochs`` passes over the piece's sources' training examples."""
        encoding = self.encoding(piece.task)
        examples = sum(len(ctx.training_examples(piece.task, lang, encoding)) for lang in piece.languages)
        return epoch_steps(examples, batch_size, epochs)

    def mlm_streams(self, ctx, languages: tuple[str, ...], seed: int) -> list[Stream]:
        """One MLM stream per language of the language-side adapter's examples (packed or not, by
        ``la_mlm_packing``) in its batch size."""
        p = self.params
        mlm = ctx.task("mlm")
        return [
            mlm_stream(
                lang,
                mlm,
                self.la_mlm_features(ctx, lang, "train"),
                ctx.tokenizer,
                p["la_batch_size"],
                seed,
                in_order=p.get("mlm_in_order", False),  # declared by BAs and MAs (IN_ORDER_DEFAULTS)
            )
            for lang in languages
        ]

    def mlm_held_out(self, ctx, languages) -> dict[str, list]:
        """Per language, the held-out MLM batches (the same kind of examples as training, corrupted
        once with a fixed seed) whose perplexity selects the checkpoint."""
        mlm = ctx.task("mlm")
        return {
            lang: mlm_eval_batches(mlm, self.la_mlm_features(ctx, lang, "dev"), ctx.tokenizer)
            for lang in languages
        }

    def la_mlm_features(self, ctx, language: str, split: str):
        """A language's MLM examples as the language-side adapter trains on them (``la_mlm_*``)."""
        p = self.params
        return mlm_features(
            ctx, language, split, p["la_mlm_packing"], p["la_max_length"] or None, p["la_mlm_line_markers"]
        )

    def _train_adapter(self, model, piece: Piece, ctx) -> TrainedPiece:
        """MLM over the piece's languages in the subclass's alternation; the checkpoint with the
        lowest mean held-out perplexity of the selection languages is kept."""
        p = self.params
        steps, pattern, select = self.mlm_plan(piece)
        mlm = ctx.task("mlm")
        streams = self.mlm_streams(ctx, piece.languages, piece.seed)
        dev = self.mlm_held_out(ctx, select)

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
        return TrainedPiece(self._mlm_state(model, self.adapter_name(piece)), info)


def _fit_info(result, score_name: str) -> dict:
    """How training went, as ``xltransfer.convergence`` and the progress log read it."""
    return {
        score_name: result.best_score,
        "higher_is_better": result.higher_is_better,
        "best_step": result.best_step,
        "steps": result.steps,
        "train_seconds": result.seconds,
        "batch_wait_seconds": round(result.batch_wait_seconds, 3),  # steps waiting for their batches
        "eval_seconds": round(result.eval_seconds, 3),  # selection passes, within train_seconds
        "history": result.history,
    }
