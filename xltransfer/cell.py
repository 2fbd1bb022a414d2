"""A grid cell and the pieces trained for it: the units the harness plans, trains and scores."""

from __future__ import annotations

from dataclasses import dataclass, field

from xltransfer.params import Params, stable_hash

SETTINGS = ("zero-shot", "few-shot", "mixed")


@dataclass(frozen=True)
class Cell:
    """One evaluation: a method (variant, params) on a task, trained on sources, tested on a target."""

    method: str
    variant: str
    params: Params
    task: str
    setting: str
    source_languages: tuple[str, ...]
    target_language: str
    seed: int
    shots: int = 0
    partition: str | None = None
    # Grid-level facts some pieces depend on (not part of the cell's id: the grid fixes them):
    # every language of the grid (a multilingual adapter is trained on them all), and for MT the
    # grid's translation directions ("en>de"), all of which train one model.
    language_set: tuple[str, ...] = ()
    directions: tuple[str, ...] = ()
    # every (task, training languages) of the cell's setting (for mixed: of its model's partition):
    # what a multi-task method trains one model on
    training_pairs: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def method_label(self) -> str:
        return self.method if self.variant == "default" else f"{self.method}:{self.variant}"

    @property
    def cell_id(self) -> str:
        """Readable and unique: what a researcher greps for, plus a hash of the parameters."""
        shots = f"/k{self.shots}" if self.setting == "few-shot" else ""
        part = f"/{self.partition}" if self.partition else ""
        return (
            f"{self.method_label}/{self.task}/{self.setting}{part}/{'+'.join(self.source_languages)}"
            f"->{self.target_language}{shots}/seed{self.seed}/{stable_hash(self.params, 8)}"
        )

    def to_dict(self) -> dict:
        return {
            "cell_id": self.cell_id,
            "method": self.method,
            "variant": self.variant,
            "method_params": self.params.to_dict(),
            "task": self.task,
            "setting": self.setting,
            "source_languages": list(self.source_languages),
            "target_language": self.target_language,
            "shots": self.shots,
            "seed": self.seed,
            "partition": self.partition,
        }


@dataclass(frozen=True)
class Piece:
    """A trained part of a method (a language adapter, a task adapter, a finetuned encoder).

    Everything that determines its weights is a field here, or the data and backbone the
    planner adds to its key; two cells that need equal pieces share one training run.
    """

    method: str
    kind: str
    languages: tuple[str, ...]
    task: str  # the task whose data trains it ("mlm" for language adapters)
    params: Params
    seed: int
    needs: tuple[Piece, ...] = field(default=())
    # trained for the mixed setting: with the grid's ``partitions: {test_as_train: true}`` (Hyper-X
    # Appendix A) it trains a language that has no train split on its test split; no other piece does
    mixed: bool = False

    @property
    def label(self) -> str:
        return f"{self.method}:{self.kind}[{'+'.join(self.languages)}]"

    @property
    def task_owned(self) -> bool:
        """A piece of the task itself (MT's vocabulary), shared by every method; the task trains it."""
        return self.method == self.task
