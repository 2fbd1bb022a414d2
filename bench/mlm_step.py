"""MLM training step: vocabulary projection at masked positions only vs at every position.

mBERT preset with random weights (no download), batch 8 x 128, a MAD-X language adapter being
trained (encoder frozen), on this machine's CPU threads. Prints both timings, their ratio, the
peak memory of each (tracemalloc of the process is blind to torch; we use RSS growth), and checks
that the two losses agree to 1e-5.

    python bench/mlm_step.py [--steps 5] [--preset mbert]
"""

from __future__ import annotations

import argparse
import gc
import resource
import time

import torch


def build(preset: str):
    from adapters import AutoAdapterModel
    from adapters.composition import Stack

    from xltransfer.backbone import PRESETS
    from xltransfer.modules.adapters import add_bottleneck_adapter

    config = PRESETS[preset].transformers_config()
    torch.manual_seed(0)
    model = AutoAdapterModel.from_config(config)
    model.add_masked_lm_head("default")
    add_bottleneck_adapter(model, "lang_xx", reduction_factor=2, invertible=True)
    model.train_adapter("lang_xx")
    for p in model.heads.parameters():
        p.requires_grad = False
    model.active_adapters = Stack("lang_xx")
    return model, config


def step_seconds(model, batch, all_positions: bool, steps: int) -> float:
    from xltransfer.modules.mlm import masked_lm_loss

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    times = []
    for i in range(steps + 1):  # the first step warms up allocators and is not timed
        started = time.process_time()  # CPU time: other processes do not inflate it
        loss = masked_lm_loss(
            model, batch["input_ids"], batch["attention_mask"], batch["labels"], all_positions=all_positions
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i:
            times.append(time.process_time() - started)
    return sorted(times)[len(times) // 2]


def masked_batch(config, batch: int, length: int) -> dict[str, torch.Tensor]:
    """Random token ids of the config's vocabulary, corrupted as MLM training corrupts them."""
    from xltransfer.modules.mlm import mask_tokens

    class Vocab:
        all_special_ids = [0, 101, 102]
        mask_token_id = 103

        def __len__(self) -> int:
            return config.vocab_size

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, config.vocab_size, (batch, length), generator=generator)
    attention = torch.ones_like(ids)
    corrupted, labels = mask_tokens(ids, attention, Vocab(), generator)
    return {"input_ids": corrupted, "attention_mask": attention, "labels": labels}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--preset", default="mbert")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=128)
    args = parser.parse_args()

    model, config = build(args.preset)
    model.eval()  # no dropout: both heads must see identical encoder outputs for the loss check
    import logging

    logging.getLogger("adapters.model_mixin").setLevel(logging.ERROR)
    batch = masked_batch(config, args.batch, args.length)
    labels = batch["labels"]

    from xltransfer.modules.mlm import masked_lm_loss

    with torch.no_grad():  # the same weights for both heads: the losses must agree
        inputs = (batch["input_ids"], batch["attention_mask"], batch["labels"])
        masked_loss = masked_lm_loss(model, *inputs).item()
        full_loss = masked_lm_loss(model, *inputs, all_positions=True).item()
    gc.collect()
    base = peak_rss_mb()
    masked_s = step_seconds(model, batch, all_positions=False, steps=args.steps)
    masked_peak = peak_rss_mb() - base
    full_s = step_seconds(model, batch, all_positions=True, steps=args.steps)
    full_peak = peak_rss_mb() - base  # ru_maxrss only grows: this is the extra the full head needed

    print(
        f"preset={args.preset} batch={args.batch}x{args.length} threads={torch.get_num_threads()} "
        f"masked tokens={int((labels != -100).sum())}"
    )
    print(f"{'head':<16}{'step s':>10}{'peak MB growth':>16}{'loss':>14}")
    print(f"{'masked only':<16}{masked_s:>10.3f}{masked_peak:>16.0f}{masked_loss:>14.6f}")
    print(f"{'all positions':<16}{full_s:>10.3f}{full_peak:>16.0f}{full_loss:>14.6f}")
    print(f"speed-up: {full_s / masked_s:.2f}x   |loss difference|: {abs(full_loss - masked_loss):.2e}")
    if abs(full_loss - masked_loss) > 1e-5:
        raise SystemExit("losses differ by more than 1e-5")


if __name__ == "__main__":
    main()
