"""The artifact graph of a grid: which pieces to train (each once), in which order, under which key.

A piece's key hashes everything that determines its weights: method, kind, languages, task,
hyper-parameters, seed, the fingerprint of the data it reads, the backbone, and the keys of
the pieces it builds on. Cells that need equal pieces share them; a stored key is never retrained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xltransfer import backbone as backbones
from xltransfer import registry
from xltransfer.cell import Cell, Piece
from xltransfer.grid import Grid
from xltransfer.method import Method
from xltransfer.params import stable_hash

if TYPE_CHECKING:
    from xltransfer.store import ResultStore

TRAIN_SPLITS = ("train", "dev")


@dataclass
class PlannedPiece:
    key: str
    piece: Piece
    needs: list[str]


@dataclass
class Plan:
    grid: Grid
    cells: list[Cell]
    pieces: dict[str, PlannedPiece]  # in dependency order
    cell_pieces: dict[str, list[str]]  # cell id -> keys it uses directly
    backbone_identity: dict[str, Any]
    methods: dict[str, Method] = field(default_factory=dict)  # method label -> instance
    keys: dict[Piece, str] = field(default_factory=dict)
    trainers: dict[str, Method] = field(
        default_factory=dict
    )  # piece key -> the method instance that trains it
    _architecture: Any = None
    _counts: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    _piece_counts: dict[tuple, tuple[int, int]] = field(default_factory=dict)
    _fingerprints: dict[str, str] = field(default_factory=dict)

    @property
    def architecture(self):
        """The backbone's config (no weights: presets carry it, local folders have it)."""
        if self._architecture is None:
            self._architecture = backbones.architecture_config(self.grid.backbone)
        return self._architecture

    def architecture_for(self, task: str, params=None):
        """The model a task's pieces are trained in: the backbone, or for MT the grid's encoder–decoder
        as a method's ``params`` adjust it (its planned vocabulary size; BERT2BERT with room for
        the language tags)."""
        config = self.grid.task_config(task, params)
        if task != "mt" or config is None:
            return self.architecture
        from xltransfer.modules.seq2seq import mt_architecture

        languages = {lang for s, t in self.grid.mt_directions() for lang in (s, t)}
        return mt_architecture(config, self.architecture, tag_count=len(languages))

    def parameter_counts(self, cell: Cell) -> dict[str, int]:
        """Base, extra and total parameters of the cell's deployed model (cached per method and task)."""
        from xltransfer.parameters import inference_parameters

        cache_key = (_method_key(cell), cell.task)
        if cache_key not in self._counts:
            self._counts[cache_key] = inference_parameters(
                self.method_for(cell), cell, self.architecture_for(cell.task, cell.params)
            )
        return self._counts[cache_key]

    def piece_parameters(self, key: str) -> int:
        """Trainable parameters of a piece."""
        return self._piece_counts_of(key)[0]

    def piece_added_parameters(self, key: str) -> int:
        """Of those, the parameters the method adds to the backbone (``parameters.piece_parameters``)."""
        return self._piece_counts_of(key)[1]

    def _piece_counts_of(self, key: str) -> tuple[int, int]:
        """Pieces that differ only in language count alike, so the weightless model is built once
        per (method, kind, task, parameters, number of languages)."""
        from xltransfer.parameters import piece_parameters

        piece = self.pieces[key].piece
        if piece.task_owned:  # a vocabulary: no parameters
            return 0, 0
        shape = (id(self.trainers[key]), piece.kind, piece.task, piece.params, len(piece.languages))
        if shape not in self._piece_counts:
            self._piece_counts[shape] = piece_parameters(
                self.trainers[key], piece, self.architecture_for(piece.task, piece.params)
            )
        return self._piece_counts[shape]

    def key_of(self, piece: Piece) -> str:
        return self.keys[piece]

    def method_for(self, cell: Cell) -> Method:
        return self.methods[_method_key(cell)]

    def closure(self, cell: Cell) -> list[str]:
        """Every piece key the cell depends on, dependencies first."""
        seen: dict[str, None] = {}

        def visit(key: str) -> None:
            for dep in self.pieces[key].needs:
                visit(dep)
            seen.setdefault(key)

        for key in self.cell_pieces[cell.cell_id]:
            visit(key)
        return list(seen)

    def data_needs(self) -> list[tuple[str, str, str, bool, bool]]:
        """(task, language, split, required, mixed) for everything the grid reads; ``mixed``: read
        for a piece of the mixed setting (its train split may be the test split, ``Piece.mixed``)."""
        needs: dict[tuple[str, str, str, bool], bool] = {}
        for key, planned in self.pieces.items():
            piece = planned.piece
            pairs = [(piece.task, lang) for lang in piece.languages]
            for task, lang in pairs + self.trainers[key].other_data(piece):
                needs[(task, lang, "train", piece.mixed)] = True
                needs.setdefault((task, lang, "dev", piece.mixed), False)
        for cell in self.cells:
            mixed = cell.setting == "mixed"
            needs[(cell.task, registry.tasks.get(cell.task)().test_unit(cell), "test", False)] = True
            if not cell.directions:  # the source's test split, scored beside the target (extra.source_test)
                needs.setdefault((cell.task, cell.source_languages[0], "test", False), False)
            for task, lang in self.method_for(cell).evaluation_data(cell):
                needs[(task, lang, "train", mixed)] = True
        return [(t, lang, s, r, m) for (t, lang, s, m), r in sorted(needs.items())]

    def trains_on_test(self, piece: Piece) -> bool:
        """Whether the piece may read a test split as its train split: a mixed-setting piece in a grid
        whose partitions allow it (Hyper-X Appendix A); never a zero- or few-shot piece."""
        return piece.mixed and self.grid.test_as_train()

    def cell_fingerprint(self, cell: Cell) -> str:
        """What a cell's records are computed from: the keys of every piece it uses (each keyed by
        its data, parameters and backbone), the fingerprint of its test data, the data its method
        reads at prediction time, and the backbone. A stored record with another fingerprint is
        stale: the cell is evaluated again (``ResultStore.finished_cells``)."""
        if cell.cell_id not in self._fingerprints:
            task = registry.tasks.get(cell.task)()
            source = self.grid.source_for(cell.task)
            data = {"test": task.data_fingerprint(source, task.test_unit(cell), "test")}
            for other, lang in self.method_for(cell).evaluation_data(cell):
                data[f"{other}:{lang}/train"] = registry.tasks.get(other)().data_fingerprint(
                    self.grid.source_for(other), lang, "train"
                )
            self._fingerprints[cell.cell_id] = stable_hash(
                {"pieces": self.closure(cell), "data": data, "backbone": self.backbone_identity}, 40
            )
        return self._fingerprints[cell.cell_id]


def _method_key(cell: Cell) -> str:
    return f"{cell.method}:{cell.variant}:{stable_hash(cell.params, 12)}"


def backbone_identity(grid: Grid) -> dict[str, Any]:
    quickstart_fp = None
    if grid.backbone.kind == "quickstart":
        quickstart_fp = grid.backbone.quickstart.fingerprint(grid.synthetic)
    return backbones.identity(grid.backbone, quickstart_fp)


def build_plan(grid: Grid, cells: list[Cell] | None = None) -> Plan:
    cells = grid.cells() if cells is None else cells
    identity = backbone_identity(grid)
    plan = Plan(grid=grid, cells=cells, pieces={}, cell_pieces={}, backbone_identity=identity)
    keys = plan.keys
    tasks: dict[str, Any] = {}

    def add(piece: Piece, method: Method) -> str:
        if piece in keys:
            return keys[piece]
        needs = [add(dep, method) for dep in piece.needs]
        source = grid.source_for(piece.task)
        task = tasks.setdefault(piece.task, registry.tasks.get(piece.task)())
        # a piece that may train on test splits is keyed by them too (mixed-setting pieces only)
        splits = (*TRAIN_SPLITS, "test") if plan.trains_on_test(piece) else TRAIN_SPLITS
        data = {
            f"{lang}/{split}": task.data_fingerprint(source, lang, split)
            for lang in piece.languages
            for split in splits
        }
        for other_task, lang in method.other_data(piece):
            other = tasks.setdefault(other_task, registry.tasks.get(other_task)())
            for split in splits:
                data[f"{other_task}:{lang}/{split}"] = other.data_fingerprint(
                    grid.source_for(other_task), lang, split
                )
        model = grid.task_options(piece.task)
        key = stable_hash(
            {
                **({"model": model} if model is not None else {}),
                "method": piece.method,
                "kind": piece.kind,
                "languages": piece.languages,
                "task": piece.task,
                "params": piece.params,
                "seed": piece.seed,
                "data": data,
                "backbone": identity,
                "needs": needs,
                "max_length": grid.length_for(piece.task),
                # a named precision keys its pieces; "auto" follows the machine, as ``device`` does
                **({"precision": grid.precision} if grid.precision != "auto" else {}),
            },
            40,
        )
        keys[piece] = key
        plan.pieces.setdefault(key, PlannedPiece(key, piece, needs))
        plan.trainers.setdefault(key, method)
        return key

    for cell in cells:
        label = _method_key(cell)
        if label not in plan.methods:
            plan.methods[label] = registry.methods.get(cell.method)(cell.variant, cell.params)
        method = plan.method_for(cell)
        plan.cell_pieces[cell.cell_id] = [add(p, method) for p in method.pieces(cell)]
    return plan


def unfinished_cells(plan: Plan, results: ResultStore, cells: list[Cell] | None = None) -> list[Cell]:
    """The plan's cells (or these of them) without current records: never evaluated, failed, or
    stale (evaluated from other pieces, test data or backbone than the plan's). `xlt plan` and both
    executors ask this one function, so what a plan says is done is what a run skips."""
    cells = plan.cells if cells is None else cells
    fingerprints = {cell.cell_id: plan.cell_fingerprint(cell) for cell in cells}
    finished = results.finished_cells(plan.grid.name, fingerprints)
    return [cell for cell in cells if cell.cell_id not in finished]
