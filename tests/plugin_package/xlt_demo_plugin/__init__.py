"""Two methods as a plugin would write them: a linear probe on the frozen encoder (the smallest
complete method) and MAD-X with LoRA language adapters (a subclass with a new parameter)."""

from __future__ import annotations

from xltransfer.methods.mad_x import MadX

from xltransfer.cell import Cell, Piece
from xltransfer.method import Method, TrainedPiece
from xltransfer.modules import adapters as ad
from xltransfer.train import Schedule, train_on_task


class FrozenProbe(Method):
    name = "frozen-probe"
    summary = "train only a task head on the frozen encoder"
    supported_tasks = frozenset({"pos"})
    defaults = {"steps": 200, "batch_size": 16, "learning_rate": 1e-3, "eval_every": 100}
    parameter_sources = {  # what `xlt describe frozen-probe` prints beside each default
        "steps": "ours: a probe converges in a few hundred steps",
        "batch_size": "ours",
        "learning_rate": "ours: a head alone takes a larger rate than a whole encoder",
        "eval_every": "ours: twice per run",
    }

    def planned_steps(self, piece: Piece) -> int:  # progress and ETA count these
        return self.params["steps"]

    def pieces(self, cell: Cell) -> list[Piece]:
        return [Piece(self.name, "probe", cell.source_languages, cell.task, self.params, cell.seed)]

    def prepare_model(self, model, piece: Piece, tasks) -> None:
        self.prepare_inference(model, piece, tasks)
        ad.train_only(model, heads=[ad.task_adapter_name(piece.task)])

    def prepare_inference(self, model, cell, tasks) -> None:
        head = ad.task_adapter_name(cell.task)
        if head not in model.heads:
            tasks(cell.task).add_head(model, head)
        model.active_head = head

    def train(self, piece: Piece, ctx) -> TrainedPiece:
        model = ctx.new_model()
        self.prepare_model(model, piece, ctx.task)
        p = piece.params
        schedule = Schedule(p["steps"], p["batch_size"], p["learning_rate"], p["eval_every"])
        result = train_on_task(model, ctx, piece.task, piece.languages, schedule, piece.seed)
        head = ad.task_adapter_name(piece.task)
        return TrainedPiece(ad.state_of(model, heads=[head]), {"train_seconds": result.seconds})


class LoraMadX(MadX):
    """MAD-X whose language adapters are LoRA modules of rank ``la_lora_r``: named la_*, the new
    parameter is in every language adapter's key without being listed anywhere."""

    name = "mad-x-lora"
    summary = "MAD-X with LoRA language adapters (rank la_lora_r) under bottleneck task adapters"
    defaults = {**MadX.defaults, "la_lora_r": 8}
    variants = {"default": {}}

    def _add_language_side(self, model, name: str, leave_out: tuple[int, ...] = ()) -> str:
        from adapters import LoRAConfig

        if name not in model.adapters_config:
            config = LoRAConfig(r=self.params["la_lora_r"], leave_out=list(leave_out))
            model.add_adapter(name, config=config)
        return name
