"""A tiny random-weight Joker prior, built once per test session (the real classes, 64 px)."""

from __future__ import annotations

import pytest
import torch

from joker.prior.base import Condition, Views
from joker.prior.diffusion.joker_format import save_joker_prior
from tiny_prior import tiny_prior_model
from joker_core.cameras import ViewRig

SIZE = 64


@pytest.fixture(autouse=True, scope="module")
def one_cpu_thread():
    """The tiny networks are too small to gain from intra-op threads, and on a shared CI
    machine spinning threads cost several times their work; restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return tiny_prior_model(tmp_path_factory.mktemp("tokenizer"), image_size=SIZE)


@pytest.fixture(scope="session")
def tiny_weights(tiny_model, tmp_path_factory):
    """The tiny prior saved in our format."""
    return save_joker_prior(tiny_model, tmp_path_factory.mktemp("weights") / "tiny-prior")


@pytest.fixture(scope="session")
def sd15_folder(tiny_model, tmp_path_factory):
    """The tiny networks in Stable Diffusion 1.5's diffusers folder layout."""
    folder = tmp_path_factory.mktemp("sd15")
    for part in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        getattr(tiny_model, part if part != "unet" else "ref_unet").save_pretrained(folder / part)
    return folder


@pytest.fixture
def make_views():
    def make(count: int, seed: int = 0) -> Views:
        generator = torch.Generator().manual_seed(seed)
        return Views(ViewRig(size=SIZE).grid(count, 1), torch.rand(count, 3, SIZE, SIZE, generator=generator))
    return make


@pytest.fixture
def make_condition():
    def make(references: int = 1, seed: int = 1, **kwargs) -> Condition:
        generator = torch.Generator().manual_seed(seed)
        return Condition(torch.rand(references, 3, SIZE, SIZE, generator=generator), **kwargs)
    return make
