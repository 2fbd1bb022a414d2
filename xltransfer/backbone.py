"""The encoder every method shares: architecture presets, identity, and loading.

A grid names its backbone as a preset ("mbert", "xlmr-base", "small-bert", "quickstart"), a hub
id, or a local folder. Presets carry the architecture so ``xlt plan`` can count parameters on
PyTorch's meta device without downloading weights.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xltransfer import hub
from xltransfer.errors import BackboneUnavailable, GridError
from xltransfer.languages import MBERT_LANGUAGES
from xltransfer.options import QuickstartConfig


@dataclass(frozen=True)
class ArchitecturePreset:
    name: str
    hub_id: str | None
    config: dict[str, Any]
    languages: frozenset[str] = field(default_factory=frozenset)  # languages seen in pretraining

    def transformers_config(self):
        from transformers import AutoConfig

        cfg = dict(self.config)
        return AutoConfig.for_model(cfg.pop("model_type"), **cfg)


_BERT_BASE = dict(
    model_type="bert",
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    max_position_embeddings=512,
    type_vocab_size=2,
)

PRESETS: dict[str, ArchitecturePreset] = {
    p.name: p
    for p in [
        # Devlin et al. 2019 / google-research/bert multilingual.md: cased, 104 languages, 119,547 wordpieces
        ArchitecturePreset(
            "mbert", "bert-base-multilingual-cased", {**_BERT_BASE, "vocab_size": 119547}, MBERT_LANGUAGES
        ),
        # Conneau et al. 2020, XLM-R base
        ArchitecturePreset(
            "xlmr-base",
            "FacebookAI/xlm-roberta-base",
            dict(
                model_type="xlm-roberta",
                vocab_size=250002,
                hidden_size=768,
                num_hidden_layers=12,
                num_attention_heads=12,
                intermediate_size=3072,
                max_position_embeddings=514,
                type_vocab_size=1,
                layer_norm_eps=1e-5,
            ),
        ),
        # Turc et al. 2019 "BERT-Small" (L=4, H=512), for quick experiments on real data
        ArchitecturePreset(
            "small-bert",
            "google/bert_uncased_L-4_H-512_A-8",
            dict(
                model_type="bert",
                vocab_size=30522,
                hidden_size=512,
                num_hidden_layers=4,
                num_attention_heads=8,
                intermediate_size=2048,
                max_position_embeddings=512,
                type_vocab_size=2,
            ),
        ),
    ]
}

QUICKSTART = "quickstart"


@dataclass(frozen=True)
class BackboneRef:
    """What the grid asked for, resolved: a preset, a hub id, a local folder, or the quickstart model."""

    name: str
    kind: str  # "hub" | "local" | "quickstart"
    hub_id: str | None = None
    revision: str | None = None
    path: Path | None = None
    preset: ArchitecturePreset | None = None
    quickstart: Any = None  # QuickstartConfig, for the locally pretrained backbone

    @property
    def revision_label(self) -> str:
        return self.revision or ("local" if self.kind != "hub" else "main")


def resolve(
    spec: str,
    revision: str | None = None,
    base_dir: Path | None = None,
    field_name: str = "backbone",
    quickstart: Any = None,
) -> BackboneRef:
    if not isinstance(spec, str) or not spec.strip():
        raise GridError(field_name, "must be a preset name, a hub model id or a local folder")
    if spec == QUICKSTART:
        return BackboneRef(spec, "quickstart", quickstart=quickstart or QuickstartConfig())
    if spec in PRESETS:
        preset = PRESETS[spec]
        return BackboneRef(spec, "hub", hub_id=preset.hub_id, revision=revision, preset=preset)
    candidate = Path(spec).expanduser()
    if not candidate.is_absolute() and base_dir is not None and (base_dir / candidate).exists():
        candidate = base_dir / candidate
    if candidate.exists():
        if not (candidate / "config.json").is_file():
            raise GridError(
                field_name, f"local folder {candidate} has no config.json (save it with save_pretrained)"
            )
        return BackboneRef(spec, "local", path=candidate.resolve())
    if spec.startswith((".", "/", "~")):
        raise GridError(field_name, f"local folder {spec} does not exist")
    preset = next((p for p in PRESETS.values() if p.hub_id == spec), None)
    return BackboneRef(spec, "hub", hub_id=spec, revision=revision, preset=preset)


def max_positions(ref: BackboneRef) -> int | None:
    """How many subword tokens one example may have in the backbone (None: not known offline).
    RoBERTa-style models (XLM-R) keep two positions back (padding_idx + 1 is the first one)."""
    if ref.kind == "quickstart":
        return ref.quickstart.max_position_embeddings
    config = ref.preset.config if ref.preset is not None else None
    if config is None and ref.kind == "local":
        import json

        try:
            config = json.loads((ref.path / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
    if not isinstance(config, dict) or not isinstance(config.get("max_position_embeddings"), int):
        return None
    offset = 2 if config.get("model_type") in ("roberta", "xlm-roberta", "camembert") else 0
    return config["max_position_embeddings"] - offset


def quickstart_bert_config(config: QuickstartConfig):
    """The quickstart backbone's ``BertConfig`` (``xltransfer.pretrain`` trains it)."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=config.max_position_embeddings,
        type_vocab_size=2,
    )


def architecture_config(ref: BackboneRef):
    """A transformers config without weights, for planning (parameter counts)."""
    from transformers import AutoConfig

    if ref.kind == "quickstart":
        return quickstart_bert_config(ref.quickstart)
    if ref.preset is not None:
        return ref.preset.transformers_config()
    if ref.kind == "local":
        return AutoConfig.from_pretrained(ref.path)
    try:
        return AutoConfig.from_pretrained(ref.hub_id, revision=ref.revision, local_files_only=True)
    except OSError:
        pass
    if not hub.hub_reachable():
        raise BackboneUnavailable(_offline_message(ref.hub_id))
    return AutoConfig.from_pretrained(ref.hub_id, revision=ref.revision)


def local_snapshot(ref: BackboneRef) -> Path:
    """A local folder holding the hub model (downloaded if needed), failing fast when offline."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    assert ref.hub_id is not None
    patterns = ["*.json", "*.txt", "*.model", "*.safetensors"]
    try:
        return Path(
            snapshot_download(
                ref.hub_id, revision=ref.revision, local_files_only=True, allow_patterns=patterns
            )
        )
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    if not hub.hub_reachable():
        raise BackboneUnavailable(_offline_message(ref.hub_id))
    return Path(snapshot_download(ref.hub_id, revision=ref.revision, allow_patterns=patterns))


def _offline_message(hub_id: str | None) -> str:
    return (
        f"cannot load backbone '{hub_id}': the Hugging Face Hub is not reachable and the model is not in the "
        "local cache. Download it on a machine with network (`huggingface-cli download "
        f"{hub_id} --local-dir DIR`) and set `backbone: DIR` in the grid, or use `backbone: quickstart` "
        "offline."
    )


def fingerprint_folder(path: Path) -> str:
    """Content hash of a model folder: what makes two local backbones the same."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def identity(ref: BackboneRef, quickstart_fingerprint: str | None = None) -> dict[str, Any]:
    """What determines the backbone's weights, for artifact keys."""
    if ref.kind == "quickstart":
        return {"kind": "quickstart", "fingerprint": quickstart_fingerprint}
    if ref.kind == "local":
        return {"kind": "local", "sha256": fingerprint_folder(ref.path)}
    return {"kind": "hub", "id": ref.hub_id, "revision": ref.revision or "main"}


def seen_languages(grid, workspace) -> frozenset[str] | None:
    """Languages the backbone was pretrained on, when known (mBERT's 104, the quickstart's seen ones)."""
    ref: BackboneRef = grid.backbone
    if ref.kind == "quickstart":
        return frozenset(ref.quickstart.seen_languages(grid.synthetic))
    return ref.preset.languages if ref.preset is not None and ref.preset.languages else None


def load_adapter_model(folder: Path):
    """The backbone as an ``adapters`` flexible-head model, its pretrained MLM head as head "default"."""
    import transformers
    from adapters import AutoAdapterModel

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # conversion notes about unused pooler/head weights
    try:
        model = AutoAdapterModel.from_pretrained(str(folder))
    finally:
        transformers.logging.set_verbosity(verbosity)
    _restore_mlm_bias(model, folder)
    model.eval()
    return model


def _restore_mlm_bias(model, folder: Path) -> None:
    """Static BERT MLM checkpoints keep the decoder bias as ``cls.predictions.bias``, which the
    library's head conversion does not carry over; copy it so pretrained perplexities hold."""
    import torch

    if "default" not in getattr(model, "heads", {}):
        return
    state: dict[str, torch.Tensor] = {}
    safetensors_file = folder / "model.safetensors"
    if safetensors_file.is_file():
        from safetensors import safe_open

        with safe_open(str(safetensors_file), framework="pt") as handle:
            for name in ("cls.predictions.bias", "cls.predictions.decoder.bias"):
                if name in handle.keys():
                    state[name] = handle.get_tensor(name)
    elif (folder / "pytorch_model.bin").is_file():
        loaded = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
        state = {
            k: v for k, v in loaded.items() if k in ("cls.predictions.bias", "cls.predictions.decoder.bias")
        }
    bias = state.get("cls.predictions.bias", state.get("cls.predictions.decoder.bias"))
    decoder = list(model.heads["default"])[-1]
    if bias is not None and getattr(decoder, "bias", None) is not None and decoder.bias.shape == bias.shape:
        with torch.no_grad():
            decoder.bias.copy_(bias)
