"""What a method sees while it trains or predicts: data, tasks, the backbone, its trained pieces.

The harness owns files; the context reads data through the grid's sources (cached, so a
treebank read for one cell serves all), loads the backbone once and hands out fresh copies.
"""

from __future__ import annotations

import copy
import logging
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xltransfer import cpu, registry
from xltransfer.artifacts import ArtifactStore
from xltransfer.cell import Piece
from xltransfer.data import encoded
from xltransfer.data.corpus import PrepLedger
from xltransfer.data.encoded import EncodedRows
from xltransfer.data.sources import DeclaredSplitMissing
from xltransfer.errors import GridError
from xltransfer.progress import Progress, SilentProgress
from xltransfer.task import GRID_ENCODING, Encoding, Task
from xltransfer.workspace import Workspace

if TYPE_CHECKING:
    from xltransfer.planning import Plan

log = logging.getLogger(__name__)


class RunContext:
    def __init__(self, plan: Plan, workspace: Workspace, progress: Progress | None = None):
        self.plan = plan
        self.grid = plan.grid
        self.workspace = workspace
        self.artifacts: ArtifactStore = workspace.artifacts
        self.progress = progress or SilentProgress()
        self._tasks: dict[str, Task] = {}
        self._examples: dict[tuple[str, str, str], list[Any]] = {}
        self._features: dict[tuple, Sequence[dict[str, Any]]] = {}
        self._training: dict[tuple, list[Any]] = {}
        self._spill_dir: Path | None = None  # this run's labelled train data on disk (``_written_on_disk``)
        self._tokenizers: dict[str, Any] = {}
        self._tokenizer_keys: dict[str, str] = {}
        self.failed_pieces: dict[str, str] = {}
        self._test_as_train = False  # reading for a mixed-setting piece or cell (``reading_for_mixed``)
        self.memo: dict[Any, Any] = {}  # results computed once per run (e.g. a model's source score)
        self.data_prep = PrepLedger()  # seconds spent preparing data, charged to pieces
        self.counters = {
            "pieces_trained": 0,
            "pieces_reused": 0,
            "cells_evaluated": 0,
            "cells_skipped": 0,
            "cells_failed": 0,
        }

    # -- data ---------------------------------------------------------------------------------
    def task(self, name: str) -> Task:
        if name not in self._tasks:
            task = registry.tasks.get(name)()
            config = self.grid.task_config(name)
            if config is not None:
                task.options = config
            self._tasks[name] = task
        return self._tasks[name]

    def _source_has(self, task: str, language: str, split: str) -> bool:
        return self.task(task).has_data(self.grid.source_for(task), language, split)

    def _holds_out(self, task: str, language: str) -> bool:
        return bool(self.task(task).held_out_fraction) and not self._source_has(task, language, "dev")

    def has_split(self, task: str, language: str, split: str) -> bool:
        if (task, language, split) in self._examples:
            return True
        if split == "dev" and self._holds_out(task, language):
            return self._source_has(task, language, "train")
        return self._source_has(task, language, split)

    def resolve_split(self, task: str, language: str, split: str) -> str:
        """The split actually read: with ``partitions: {test_as_train: true}`` a language without a
        train split trains on its test split (Hyper-X, Appendix A), in the other partition — only
        while reading for the mixed setting (``reading_for_mixed``): a few-shot sample never comes
        from the test set it is scored on."""
        if split == "train" and self._test_as_train and not self.has_split(task, language, "train"):
            return "test"
        return split

    @contextmanager
    def reading_for_mixed(self, mixed: bool) -> Iterator[None]:
        """Reads inside are for a mixed-setting piece or cell when ``mixed`` (and the grid allows
        test-as-train), for anything else otherwise."""
        saved, self._test_as_train = self._test_as_train, mixed and self.grid.test_as_train()
        try:
            yield
        finally:
            self._test_as_train = saved

    def examples(self, task: str, language: str, split: str) -> list[Any]:
        split = self.resolve_split(task, language, split)
        key = (task, language, split)
        if getattr(self.task(task), "reads_corpus", False):
            return self._corpus(task, language, split)
        if (
            split == "train"
            and getattr(self.task(task), "reads_pairs", False)
            and not self._holds_out(task, language)
        ):
            return self._pairs(task, language)
        if key not in self._examples:
            source, task_obj = self.grid.source_for(task), self.task(task)
            if split in ("train", "dev") and self._holds_out(task, language):
                every = round(1 / task_obj.held_out_fraction)
                full = task_obj.read_data(source, language, "train")
                self._examples[(task, language, "train")] = [
                    x for i, x in enumerate(full) if i % every != every - 1
                ]
                self._examples[(task, language, "dev")] = [
                    x for i, x in enumerate(full) if i % every == every - 1
                ]
            elif split == "train":  # labelled data: parsed a row at a time into this run's folder
                self._examples[key] = self._written_on_disk(
                    f"examples-{len(self._examples)}.arrow",
                    lambda path: encoded.examples_to_disk(task_obj.iter_data(source, language, split), path),
                )
            else:
                self._examples[key] = task_obj.read_data(source, language, split)
        found = self._examples[key]
        if isinstance(found, encoded.ExamplesOnDisk):
            self.data_prep.used(str(found.path))
        return found

    def _corpus(self, task: str, language: str, split: str):
        """A split of a corpus task (MLM text) as a corpus on disk, read once; without a dev split,
        train and dev are ranges of the train text (``corpus.held_out_ranges``)."""
        from xltransfer.data import corpus

        key = (task, language, split)
        if key not in self._examples:
            source, task_obj = self.grid.source_for(task), self.task(task)
            holds_out = split in ("train", "dev") and self._holds_out(task, language)
            read = "train" if holds_out else split
            cap = source.cap(language)
            held_out = source.held_out_cap(language)
            extra = held_out if holds_out and cap is not None else 0
            fingerprint = task_obj.data_fingerprint(source, language, read)
            where = source.where(task_obj.metadata.data_format, language, read)
            text = corpus.read_text(
                lambda: source.iter_read(task_obj, language, read, extra),
                f"{fingerprint}:+{extra}",
                corpus.data_cache_root(self.workspace.cache),
                self.data_prep,
                f"{task} {language} {read} ({where})",
            )
            if not holds_out:
                self._examples[key] = text
            else:
                if len(text) < corpus.MIN_HELD_OUT_LINES:
                    raise GridError(
                        self.grid.source_for(task).field,
                        f"{where}: {len(text)} line(s) of text for '{language}'; selecting on held-out "
                        f"text needs at least {corpus.MIN_HELD_OUT_LINES} (or give a dev split)",
                        self.grid.path,
                    )
                train, dev = corpus.held_out_ranges(len(text), cap, held_out)
                self._examples[(task, language, "train")] = text.view(train)
                self._examples[(task, language, "dev")] = text.view(dev)
        found = self._examples[key]
        self.data_prep.used(found.fingerprint)
        return found

    def _pairs(self, task: str, language: str):
        """A direction's train split (MT) as pairs on disk, read once (``parallel.read_pairs``)."""
        from xltransfer.data import corpus
        from xltransfer.data.parallel import parse_direction, read_pairs

        key = (task, language, "train")
        if key not in self._examples:
            source, task_obj = self.grid.source_for(task), self.task(task)
            fingerprint = task_obj.data_fingerprint(source, language, "train")
            self._examples[key] = read_pairs(
                lambda: task_obj.iter_data(source, language, "train"),
                f"{language}|{fingerprint}",
                *parse_direction(language),
                corpus.data_cache_root(self.workspace.cache),
                self.data_prep,
                f"{task} {language} train",
            )
        found = self._examples[key]
        self.data_prep.used(found.fingerprint)
        return found

    def training_examples(self, task: str, language: str, encoding: Encoding = GRID_ENCODING) -> list[Any]:
        """The train split as trained on: what the task keeps of it (MT filters pairs by length), less
        the examples of ``encoding.drop_subwords`` subwords or more."""
        tokenizer = self.tokenizer_for(task)
        split = self.resolve_split(task, language, "train")
        key = (task, language, split, self._tokenizer_keys.get(task), encoding.drop_subwords)
        if key not in self._training:
            kept = self.task(task).training_examples(self.examples(task, language, "train"), tokenizer)
            self._training[key] = self.task(task).without_long(kept, tokenizer, encoding.drop_subwords)
        return self._training[key]

    def test_examples(self, cell) -> list[Any]:
        return self.examples(cell.task, self.task(cell.task).test_unit(cell), "test")

    def features(
        self, task: str, language: str, split: str, encoding: Encoding = GRID_ENCODING
    ) -> Sequence[dict[str, Any]]:
        """A split's examples encoded as ``encoding`` says (the grid's length by default); the train
        split's as ``training_examples`` keeps them, on disk (read by index)."""
        tokenizer = self.tokenizer_for(task)
        length = encoding.length(self.grid, task)
        dropped = encoding.drop_subwords if split == "train" else 0
        resolved = self.resolve_split(task, language, split)
        key = (task, language, resolved, self._tokenizer_keys.get(task), length, dropped)
        if key not in self._features:
            task_obj = self.task(task)
            if split == "train" and hasattr(task_obj, "training_features"):
                from xltransfer.data.parallel import PairCorpus

                pairs = self.examples(task, language, "train")
                if isinstance(pairs, PairCorpus):  # on disk: filtered and encoded there, read by index
                    self._features[key] = task_obj.training_features(pairs, tokenizer, length)
                    return self._features[key]
            examples = (
                self.training_examples(task, language, encoding)
                if split == "train"
                else self.examples(task, language, split)
            )
            if split == "train" and isinstance(examples, list | encoded.ExamplesOnDisk):  # labelled data
                self._features[key] = self._encoded_on_disk(task_obj, examples, tokenizer, length)
            else:  # a dev or test split, or a corpus on disk (MLM text: its encode reads it there)
                self._features[key] = task_obj.encode(examples, tokenizer, length)
        found = self._features[key]
        if isinstance(found, EncodedRows):
            self.data_prep.used(str(found.path))
        return found

    def _encoded_on_disk(self, task: Task, examples: Sequence[Any], tokenizer, length: int) -> EncodedRows:
        """A train split's features written to this run's folder on disk (``data.encoded``)."""

        def encode(chunk: list[Any]) -> list[dict[str, Any]]:
            return task.encode(chunk, tokenizer, length)

        return self._written_on_disk(
            f"{len(self._features)}.arrow", lambda path: encoded.encode_to_disk(examples, encode, path)
        )

    def _written_on_disk(self, name: str, write: Callable[[Path], Any]) -> Any:
        """``write(path)`` for a file ``name`` in this run's folder for labelled data on disk (removed
        when the run ends, or by the next run on the machine after a kill), the seconds it took
        counted as the reading piece's data preparation."""
        import tempfile
        import time
        import weakref

        from xltransfer.data import corpus

        if self._spill_dir is None:
            root = corpus.data_cache_root(self.workspace.cache) / "run-features"
            root.mkdir(parents=True, exist_ok=True)
            encoded.remove_orphans(root)
            self._spill_dir = Path(tempfile.mkdtemp(dir=root, prefix=encoded.run_folder_prefix()))
            weakref.finalize(self, shutil.rmtree, self._spill_dir, True)
        path = self._spill_dir / name
        started = time.perf_counter()
        written = write(path)
        self.data_prep.built(str(path), time.perf_counter() - started)
        return written

    # -- tokenizers: the backbone's, unless a task's model has its own (MT's trained vocabulary) --
    def tokenizer_for(self, task: str):
        """The task's model's own tokenizer (MT's trained vocabulary, once trained) or the backbone's."""
        if task not in self._tokenizers and task == "mt" and self.grid.mt is not None:
            from xltransfer import translation

            self.use_tokenizer(task, *translation.tokenizer(self))
        return self._tokenizers[task] if task in self._tokenizers else self.tokenizer

    def use_tokenizer(self, task: str, tokenizer, key: str) -> None:
        """Encode the task's data with ``tokenizer`` from now on; ``key`` names it in the caches."""
        self._tokenizers[task] = tokenizer
        self._tokenizer_keys[task] = key

    def preflight(self) -> None:
        """Read every file the grid needs before anything trains: bad data fails the run up front."""
        self.check_few_shot_targets()
        for task, language, split, required, mixed in self.plan.data_needs():
            with self.reading_for_mixed(mixed):
                if required or self.has_split(task, language, split):
                    try:
                        self.examples(task, language, split)
                    except GridError as error:
                        if required or isinstance(error, DeclaredSplitMissing):
                            raise GridError(
                                error.field, str(error).split(": ", 1)[-1], self.grid.path
                            ) from None

    def check_few_shot_targets(self) -> None:
        """Few-shot samples come from a target's train split only: a grid asking for few-shot on a
        target without one is refused before anything trains (never the test split it is scored on)."""
        few_shot = [(c.task, c.target_language) for c in self.plan.cells if c.setting == "few-shot"]
        for task, target in dict.fromkeys(few_shot):
            if not self.has_split(task, target, "train"):
                raise GridError(
                    "languages.few_shot",
                    f"few-shot on '{target}' ({task}): its data has no train split to "
                    "sample the k shots from, and they never come from the test split the cell is scored on; "
                    "list the targets with a train split in `languages: {few_shot: [...]}`",
                    self.grid.path,
                )

    def prepare(self) -> Path | None:
        """Everything a run checks before anything trains: a hub backbone is reachable (fails in
        seconds offline), every data file parses; then the quickstart backbone is built if needed."""
        self._check_device()
        cpu.pin_threads(self.device)  # before the backbone or any piece trains (xltransfer.cpu)
        self.precision  # noqa: B018 - a precision this device cannot run fails before anything trains
        if not self.needs_backbone:  # e.g. MT with a Transformer trained from scratch
            self.preflight()
            return None
        if self.grid.backbone.kind != "quickstart":
            self.backbone_dir  # noqa: B018 - fetch (or fail) first: it is cheap to check
        self.preflight()
        return self.backbone_dir

    def _check_device(self) -> None:
        """The grid's ``device`` exists on this machine (the grid only checks that it is a device)."""
        if self.grid.device == "auto":
            return
        import torch

        device = torch.device(self.grid.device)
        available = {
            "cpu": True,
            "cuda": torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count(),
            "mps": torch.backends.mps.is_available(),
        }.get(device.type, True)
        if not available:
            raise GridError("device", f"'{self.grid.device}' is not on this machine", self.grid.path)

    @property
    def needs_backbone(self) -> bool:
        """Whether any piece of the grid runs on the pretrained encoder (a majority-only grid trains
        nothing and reads no tokenizer: it builds no backbone)."""
        return bool(self.plan.pieces) and any(
            task != "mt" or not self.grid.mt.trains_vocabulary for task in self.grid.tasks
        )

    def typology(self, language: str) -> list[float]:
        """A language's typology vector: URIEL's 289 dimensions (MAD-G), or for a synthetic
        language the suite's own typology features."""
        return self.typologies([language])[language]

    def typologies(self, codes) -> dict[str, list[float]]:
        """The typology vectors of many languages, URIEL's read with one lang2vec call."""
        from xltransfer import languages

        real = [code for code in codes if not languages.is_local_use(code)]
        try:
            vectors = languages.typology_vectors(real) if real else {}
        except ValueError as error:
            raise GridError("languages", str(error)) from None
        synthetic = [code for code in codes if code not in vectors]
        if synthetic:
            from xltransfer.data.sources import SyntheticSource
            from xltransfer.data.synthetic import load_languages

            suite = SyntheticSource(self.grid.synthetic, self.workspace.cache).materialise()
            found = {lang.code: lang.typology_vector for lang in load_languages(suite)}
            for code in synthetic:
                if code not in found:
                    raise GridError("languages", f"'{code}' is not a language of the synthetic suite")
                vectors[code] = found[code]
        return {code: vectors[code] for code in codes}

    # -- backbone -----------------------------------------------------------------------------
    @cached_property
    def backbone_dir(self) -> Path:
        from xltransfer.pretrain import materialise
        from xltransfer.seeding import rng_untouched

        with rng_untouched():  # building the quickstart backbone seeds and draws for itself
            return materialise(self.grid, self.plan.backbone_identity, self.workspace, self.progress)

    @cached_property
    def tokenizer(self):
        from transformers import AutoTokenizer

        from xltransfer.seeding import rng_untouched

        with rng_untouched():
            return AutoTokenizer.from_pretrained(self.backbone_dir)

    @cached_property
    def device(self):
        import torch

        if self.grid.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.grid.device)

    @cached_property
    def precision(self):
        """The run's numeric precision on this process's device (``precision:`` of the grid)."""
        from xltransfer import precision

        resolved = precision.resolve(self.grid.precision, self.device)
        if resolved.name == "bf16" and resolved.device_type == "cuda":
            import torch

            if not torch.cuda.is_bf16_supported():
                message = "bf16 needs a GPU with bfloat16 support: use fp16 or auto"
                raise GridError("precision", message, self.grid.path)
        return resolved

    @cached_property
    def _pristine_model(self):
        from xltransfer.backbone import load_adapter_model
        from xltransfer.seeding import rng_untouched

        with rng_untouched():  # loaded by whichever piece comes first: it must not shift that piece's draws
            return load_adapter_model(self.backbone_dir)

    def new_model(self, task: str | None = None, seed: int = 0, params=None):
        """A fresh copy of the pretrained backbone (with its MLM head as head "default"); for MT, a
        new model of the grid's ``mt:`` block as the method's ``params`` adjust it (initialised
        with ``seed``)."""
        if task == "mt":
            from xltransfer import translation

            return translation.new_model(self, seed, params).to(self.device)
        return copy.deepcopy(self._pristine_model).to(self.device)

    # -- pieces -------------------------------------------------------------------------------
    def key_of(self, piece: Piece) -> str:
        return self.plan.key_of(piece)

    def load_state(self, piece: Piece) -> dict:
        return self.artifacts.load_state(self.key_of(piece))

    def piece_info(self, piece: Piece) -> dict[str, Any]:
        return self.artifacts.info(self.key_of(piece))
