"""NMT hyper-adapters (Baziotis et al. 2022): one hyper-network generates the adapter after every
encoder and decoder layer from (source, target, layer) embeddings, trained jointly with the
translation model from scratch.

The adapters have the architecture and place of ``lang-adapters``' and ``pair-adapters``' (same
FLOPs at test time); their weights come from ``xltransfer.modules.hyper_adapters``. In training the
adapters of a batch's direction are generated once per batch, with gradients to the hyper-network;
at test they are generated once for the cell's direction and installed as plain weights.
Variants: ``tiny`` / ``small`` / ``base`` (d_h 102 / 204 / 612, §4 "Hyper-adapter Settings"; base is
the default), ``no-rescale`` (base without the 1/sqrt(d_h) fix, the §3.1 ablation), and the
input combinations of §6.4 (``enc-s-dec-t``, ``enc-st-dec-st``); ``hn_dropout`` sets dropout inside the
hyper-network (Table 5 tries 0.1 and 0.2).
"""

from __future__ import annotations

from xltransfer.methods.translation_adapters import TranslationAdapterMethod

from xltransfer import translation
from xltransfer.cell import Cell, Piece
from xltransfer.data.parallel import parse_direction
from xltransfer.modules import generator as gen
from xltransfer.modules import mt_adapters
from xltransfer.modules.hyper_adapters import HyperAdapterNetwork
from xltransfer.modules.seq2seq import train_everything

SLOT = "hyper"  # the one block per layer whose weights are generated


class HyperAdapters(TranslationAdapterMethod):
    name = "hyper-adapters"
    summary = "a hyper-network generates every layer's adapter from source, target and layer embeddings"
    citation = (
        "Baziotis, Artetxe, Cross, Bhosale 2022, Multilingual Machine Translation with Hyper-Adapters, EMNLP"
    )
    defaults = {
        **TranslationAdapterMethod.defaults,
        # §4 "Hyper-adapter Settings": language and layer embeddings of 50, 2 residual blocks; d_h 612 (base)
        "hn_hidden": 612,
        "hn_embedding_dim": 50,
        "hn_blocks": 2,
        "hn_dropout": 0.0,  # §6.4: dropout inside the hyper-network is an option (0.1, 0.2), not the default
        "hn_rescale": True,  # §3.1
        "hn_inputs": "st-t",  # §6.4, Table 5: encoder (s, t), decoder (t) — the paper's final choice
    }
    parameter_sources = {
        **TranslationAdapterMethod.parameter_sources,
        "hn_hidden": 'Baziotis et al. 2022 §4 "Hyper-adapter Settings" (d_h 612 base; small 204, tiny 102)',
        "hn_embedding_dim": 'Baziotis et al. 2022 §4 "Hyper-adapter Settings" (embeddings of 50)',
        "hn_blocks": 'Baziotis et al. 2022 §4 "Hyper-adapter Settings" (2 residual blocks)',
        "hn_dropout": "Baziotis et al. 2022 §6.4, Table 5 (dropout 0.1/0.2 is an option, not the default)",
        "hn_rescale": "Baziotis et al. 2022 §3.1 (generated weights rescaled by 1/sqrt(d_h))",
        "hn_inputs": "Baziotis et al. 2022 §6.4, Table 5 (encoder (s, t), decoder (t): the final choice)",
    }
    variants = {
        "default": {},
        "base": {},
        "small": {"hn_hidden": 204},
        "tiny": {"hn_hidden": 102},
        "no-rescale": {"hn_rescale": False},
        # ours: the rescaling ablation in a post-norm Transformer too, where every layer's output is
        # normalised (§3.1 shows activations growing with d_h without saying where the LayerNorms
        # sit; the pre-norm default is inferred, see seq2seq.DEFAULT_NORM)
        "post-norm": {"mt_norm": "post"},
        "no-rescale-post-norm": {"hn_rescale": False, "mt_norm": "post"},
        # the zero-shot comparison (§6.4): the paper trains all its models, these two, the default
        # and lang-adapters, for 160K steps; a grid reproducing it sets mt_steps: 160000 for each
        "enc-s-dec-t": {"hn_inputs": "s-t"},
        "enc-st-dec-st": {"hn_inputs": "st-st"},
    }

    def blocks(self, directions):
        return [SLOT], [SLOT]

    def active(self, source, target):
        return SLOT, SLOT

    def _add_hypernetwork(self, model, languages: list[str]) -> None:
        mt_adapters.add_blocks(model, [SLOT], [SLOT], self.bottleneck(model))
        mt_adapters.activate(model, SLOT, SLOT)
        p = self.params
        encoder_layers = len(mt_adapters.layers(model)["encoder"])
        model.xlt_hypernetwork = HyperAdapterNetwork(
            languages,
            mt_adapters.block_parameters(model, SLOT),
            encoder_layers,
            mt_adapters.width(model),
            self.bottleneck(model),
            p["hn_hidden"],
            p["hn_embedding_dim"],
            p["hn_blocks"],
            p["hn_dropout"],
            p["hn_rescale"],
            p["hn_inputs"],
        )

    def prepare_model(self, model, piece: Piece, tasks) -> None:
        """The model, the slot blocks (placeholders: never trained themselves) and the hyper-network."""
        self._add_hypernetwork(model, translation.languages_of(piece.languages))
        train_everything(model)
        mt_adapters.freeze_blocks(model, SLOT)

    def prepare_inference(self, model, cell: Cell, tasks) -> None:
        """The model with the slot blocks; the hyper-network is held to generate them (a Generator:
        not counted as deployed)."""
        self._add_hypernetwork(model, translation.languages_of(cell.directions))

    def activate_direction(self, model, unit: str) -> None:
        """For evaluation during training: the direction's adapters, generated from the current weights."""
        gen.install(model, model.xlt_hypernetwork(parse_direction(unit)))

    def language_embeddings(self, piece: Piece, state) -> dict[str, list[float]]:
        """The hyper-network's shared source/target language table (§6.3, Figure 6)."""
        table = state.get("xlt_hypernetwork.language.weight")
        if table is None:
            return {}
        return dict(zip(translation.languages_of(piece.languages), table.tolist(), strict=True))

    def direction_loss(self, model, batch, unit: str, task):
        """The batch's loss with its direction's adapters generated once, gradients to the hyper-network."""
        return gen.call_with(model, model.xlt_hypernetwork(parse_direction(unit)), task.loss, batch)

    def ready_for(self, model, cell: Cell, ctx) -> None:
        """The cell's adapters, installed for the whole test set; generated once per direction and
        trained hyper-network (the relatedness probe asks for other directions of the same one)."""
        (piece,) = self.pieces(cell)
        memo = ("generated adapters", ctx.key_of(piece))
        if memo not in ctx.memo:
            ctx.memo[memo] = gen.GeneratedWeights(model.xlt_hypernetwork)
        gen.install(model, ctx.memo[memo].get((cell.source_languages[0], cell.target_language)))
