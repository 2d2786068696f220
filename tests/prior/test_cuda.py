"""The prior's CUDA paths (bf16, the authors' precision): skipped without a GPU; run them
all with benchmarks/gpu_check.sh."""

from __future__ import annotations

import copy

import pytest
import torch

from joker.prior.diffusion.devices import place
from joker.prior.diffusion.pipeline import DiffusionPrior

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_on_cuda_agrees_with_fp32_on_the_cpu(tiny_model, make_views, make_condition, dtype):
    views, condition = make_views(2), make_condition(prompt="a man", guidance_scale=3.0)
    latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    reference = DiffusionPrior(tiny_model).predict_noise(latents, 400, views, condition)
    model = place(copy.deepcopy(tiny_model), torch.device("cuda"), dtype)
    noise = DiffusionPrior(model).predict_noise(latents, 400, views, condition)
    assert noise.device.type == "cuda" and noise.dtype == dtype
    error = (noise.float().cpu() - reference).abs().mean() / reference.abs().mean()
    assert error < 0.05


def test_sampling_and_targets_on_cuda_are_deterministic(tiny_model, make_views, make_condition):
    model = place(copy.deepcopy(tiny_model), torch.device("cuda"), torch.bfloat16)
    prior, views, condition = DiffusionPrior(model), make_views(2), make_condition()
    first = prior.sample(views, condition, 3, torch.Generator().manual_seed(1))
    again = prior.sample(views, condition, 3, torch.Generator().manual_seed(1))
    assert torch.equal(first, again) and first.shape == (2, 3, 64, 64)
    noisy = prior.noise(first.float(), 60, torch.Generator().manual_seed(2))
    assert prior.denoise(noisy, views, condition, 4).isfinite().all()
