"""Prior evaluations per second of the Joker diffusion prior, with and without the
reference-feature cache.

    .venv/bin/python benchmarks/bench_prior.py [--views 16] [--steps 4] [--repeats 3] [--threads N]

CPU section (always): the tiny random-weight configuration at 64 px.
CUDA section (only where torch.cuda.is_available()): SD1.5-size random-weight networks at
512 px in fp16, built in this script (no weights needed).

An evaluation is one view at one denoising step, a CFG pair counted once (the published
cost unit). Each line reports one-step (stage 1: all views at one noise level) and k-step
(stage 2: truncated DDIM) throughput. "cached" reuses the reference UNet's features across
views and steps; "uncached" recomputes them for every chunk, and with --chunk 1 for every
view, as the published code does. The cache's saving per evaluation is printed at the end
of each section (goal at SD1.5 size: >= 30%).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from joker.prior.base import Condition, Views
from joker.prior.diffusion.model import JokerPriorModel
from joker.prior.diffusion.pipeline import DiffusionPrior
from joker.prior.diffusion.reference_cache import ReferenceCache
from joker_core.cameras import ViewRig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # test support: the tiny prior
from tiny_prior import SD15_SCHEDULER, tiny_prior_model, write_tiny_tokenizer  # noqa: E402

LEVEL = 60  # the published stage-2 start


def sd15_sized_model(tokenizer_folder: Path, device: torch.device, dtype: torch.dtype) -> JokerPriorModel:
    """SD1.5's architecture (UNet 860M x 2, ControlNet, VAE, CLIP ViT-L text) with random
    weights, built directly on `device`."""
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = write_tiny_tokenizer(tokenizer_folder)  # ids stay inside CLIP's vocabulary
    with device:
        ref_unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)
        model = JokerPriorModel(
            unet=UNet2DConditionModel(sample_size=64, cross_attention_dim=768), ref_unet=ref_unet,
            controlnet=ControlNetModel.from_unet(ref_unet, conditioning_channels=3),
            vae=AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                              down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4),
            text_encoder=CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072,
                                                      num_hidden_layers=12, num_attention_heads=12)),
            tokenizer=tokenizer, scheduler=DDIMScheduler(**SD15_SCHEDULER))
    return model.to(dtype).eval()


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def evaluations_per_second(prior: DiffusionPrior, views: Views, condition: Condition, steps: int,
                           repeats: int) -> tuple[float, float]:
    """(one-step, k-step) evaluations per second, best of `repeats` after one warm-up."""
    device = prior.model.device
    images = torch.rand(len(views), 3, prior.model.image_size, prior.model.image_size)
    noisy = prior.noise(images, LEVEL, torch.Generator().manual_seed(0))
    rates = []
    for run in (lambda: prior.predict_clean(noisy, views, condition),
                lambda: prior.denoise(noisy, views, condition, steps)):
        best = float("inf")
        for attempt in range(repeats + 1):
            prior.cache.clear()  # every timing starts cold: the first level's features are paid for
            before = prior.evaluations.total
            _synchronize(device)
            started = time.perf_counter()
            run()
            _synchronize(device)
            if attempt:
                best = min(best, time.perf_counter() - started)
            evaluations = prior.evaluations.total - before
        rates.append(evaluations / best)
    return rates[0], rates[1]


def section(title: str, model: JokerPriorModel, view_count: int, chunks: list[int], steps: int, repeats: int) -> None:
    size = model.image_size
    views = Views(ViewRig(size=size).grid(view_count, 1), torch.rand(view_count, 3, size, size))
    condition = Condition(torch.rand(1, 3, size, size), "a photo of a person screaming", guidance_scale=3.0)
    print(f"\n{title}: {view_count} views, CFG 3, one-step at level {LEVEL} and {steps}-step DDIM from it")
    print(f"{'chunk':>6} {'cache':>9} {'one-step eval/s':>16} {'k-step eval/s':>14}")
    for chunk in chunks:
        measured = {}
        for label, capacity in (("cached", 16), ("uncached", 0)):
            prior = DiffusionPrior(model, chunk_size=chunk, cache=ReferenceCache(capacity))
            measured[label] = evaluations_per_second(prior, views, condition, steps, repeats)
            print(f"{chunk:>6} {label:>9} {measured[label][0]:>16.2f} {measured[label][1]:>14.2f}")
        saving = [1 - uncached / cached for cached, uncached in zip(measured["cached"], measured["uncached"])]
        print(f"{'':>6} {'saving':>9} {saving[0]:>15.0%} {saving[1]:>14.0%}   (time per evaluation)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4, help="k of the k-step descent")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder, torch.inference_mode():
        tiny = tiny_prior_model(Path(folder) / "tiny", image_size=64)
        section(f"CPU, tiny config, 64 px, {torch.get_num_threads()} threads", tiny, args.views, [1, 8],
                args.steps, args.repeats)
        if torch.cuda.is_available():
            device = torch.device("cuda")
            model = sd15_sized_model(Path(folder) / "sd15", device, torch.float16)
            section(f"CUDA {torch.cuda.get_device_name(device)}, SD1.5 size, 512 px, fp16", model, args.views,
                    [1, 8], args.steps, args.repeats)
        else:
            print("\nCUDA section skipped: no CUDA device.")


if __name__ == "__main__":
    main()
