"""Adapters whose weights are generated from a condition (a language's typology, a task–language
pair) instead of stored per condition: the building block MAD-G, Hyper-X and NMT hyper-adapters share.

The generated adapter is a real ``adapters`` bottleneck adapter in the model (same architecture and
position as any other, so FLOPs and parameter counts compare one to one). In training its weights
are substituted by the generator's output for the batch's condition (``call_with``, so gradients
reach the generator); at inference they are generated once per condition, cached,
and copied into the adapter, which then runs as a plain adapter — and can be saved as one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable

import torch
from torch import nn

_LAYER = re.compile(r"\.layer\.(\d+)\.")


def adapter_parameters(model, adapter: str) -> dict[str, torch.Tensor]:
    """The adapter's parameters by full name, in model order."""
    marker = f".adapters.{adapter}."
    return {name: param for name, param in model.named_parameters() if marker in name}


def layer_of(name: str) -> int:
    match = _LAYER.search(name)
    if match is None:
        raise ValueError(f"parameter {name} is not inside a numbered layer")
    return int(match.group(1))


def layer_template(name: str) -> str:
    """The parameter's name with its layer index removed: equal across layers for one role."""
    return _LAYER.sub(".layer.*.", name, count=1)


class Generator(nn.Module):
    """Marks a module that generates adapter weights: deployed models hold its output for their
    conditions (cached), not the module itself, so parameter counts at inference leave it out."""


class WeightGenerator(nn.Module):
    """Maps a condition vector to every parameter of an adapter, in one of two layouts.

    ``shared_layers=False`` (MAD-G): one linear map from the condition to all layers' parameters
    stacked. ``shared_layers=True`` (MAD-G-LS, Hyper-X): a learned layer embedding is concatenated
    to the condition and one smaller map produces one layer's parameters, for each layer in turn.
    ``projector`` (hidden, output) puts a two-layer MLP between that input and the map (Hyper-X).
    ``init_std`` is the standard deviation of the map's weights; its biases start at zero, so at
    initialisation an adapter is a small random perturbation around its residual.
    """

    def __init__(
        self,
        shapes: dict[str, torch.Size],
        condition_dim: int,
        shared_layers: bool = False,
        layer_dim: int = 0,
        init_std: float | None = None,
        projector: tuple[int, int] | None = None,
    ):
        super().__init__()
        self.names = list(shapes)
        self.shapes = dict(shapes)
        self.shared_layers = shared_layers
        self.layers = sorted({layer_of(n) for n in self.names})
        if shared_layers:
            templates = list(dict.fromkeys(layer_template(n) for n in self.names))
            self.templates = templates
            per_layer = [shapes[next(n for n in self.names if layer_template(n) == t)] for t in templates]
            self.template_shapes = dict(zip(templates, per_layer, strict=True))
            size = sum(s.numel() for s in per_layer)
            self.layer_embedding = nn.Embedding(len(self.layers), layer_dim)
            inputs = condition_dim + layer_dim
            if projector is not None:  # Hyper-X's source projector: Linear -> ReLU -> Linear
                hidden, inputs_after = projector
                self.projector = nn.Sequential(
                    nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, inputs_after)
                )
                inputs = inputs_after
            self.project = nn.Linear(inputs, size)
        else:
            size = sum(s.numel() for s in shapes.values())
            self.project = nn.Linear(condition_dim, size)
        std = init_std if init_std is not None else 1.0 / self.project.in_features
        nn.init.normal_(self.project.weight, std=std)
        nn.init.zeros_(self.project.bias)

    def forward(self, condition: torch.Tensor) -> dict[str, torch.Tensor]:
        """Generated parameters by full name, for one condition vector."""
        if not self.shared_layers:
            return _unflatten(self.project(condition), self.names, self.shapes)
        out: dict[str, torch.Tensor] = {}
        for index, layer in enumerate(self.layers):
            embedding = self.layer_embedding.weight[index]
            source = torch.cat([condition, embedding])
            flat = self.project(self.projector(source) if hasattr(self, "projector") else source)
            per_layer = _unflatten(flat, self.templates, self.template_shapes)
            for template, tensor in per_layer.items():
                out[template.replace(".layer.*.", f".layer.{layer}.", 1)] = tensor
        return {name: out[name] for name in self.names}


def _unflatten(
    flat: torch.Tensor, names: list[str], shapes: dict[str, torch.Size]
) -> dict[str, torch.Tensor]:
    out, start = {}, 0
    for name in names:
        size = shapes[name].numel()
        out[name] = flat[start : start + size].view(shapes[name])
        start += size
    return out


class GeneratedWeights:
    """Generated adapter weights per condition, computed once per condition at inference."""

    def __init__(self, generate: Callable[[Hashable], dict[str, torch.Tensor]]):
        self._generate = generate
        self._cache: dict[Hashable, dict[str, torch.Tensor]] = {}
        self.generations = 0  # how many times the generator ran (a condition once, at inference)

    @torch.no_grad()
    def get(self, condition: Hashable) -> dict[str, torch.Tensor]:
        if condition not in self._cache:
            self.generations += 1
            self._cache[condition] = {k: v.detach().clone() for k, v in self._generate(condition).items()}
        return self._cache[condition]

    def clear(self) -> None:
        self._cache.clear()


@torch.no_grad()
def install(model, weights: dict[str, torch.Tensor]) -> None:
    """Copy generated weights into the model's adapter (by full parameter name)."""
    params = dict(model.named_parameters())
    for name, tensor in weights.items():
        params[name].copy_(tensor)


class _Call(nn.Module):
    def __init__(self, model, fn: Callable):
        super().__init__()
        self.model = model
        self.fn = fn

    def forward(self, *args):
        return self.fn(self.model, *args)


def call_with(model, weights: dict[str, torch.Tensor], fn: Callable, *args):
    """``fn(model, *args)`` with some of the model's parameters replaced by ``weights`` (generated
    tensors that carry gradients back to the generator), however ``fn`` reaches into the model."""
    from torch.func import functional_call

    # in the parameters' own dtype: under autocast a generator's output is bf16/fp16, and a LayerNorm
    # given low-precision weights for fp32 activations fails (a no-op in fp32)
    params = dict(model.named_parameters())
    substitutes = {f"model.{name}": tensor.to(params[name].dtype) for name, tensor in weights.items()}
    return functional_call(_Call(model, fn), substitutes, args, strict=False)
