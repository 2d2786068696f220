"""Weights from local paths: our format round trip, the official layout, SD1.5 folders, bad files."""

from __future__ import annotations

import collections

import pytest
import torch

from joker.devices import choose_device
from joker.prior.diffusion.devices import choose_dtype, ensure_fits
from joker.prior.diffusion.joker_format import load_joker_prior, save_joker_prior
from joker.prior.diffusion.loading import describe_weights, load_prior
from joker_core.errors import JokerError


def _assert_same_weights(first, second):
    a, b = first.state_dict(), second.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a)


def _official_state(model, text_prefix="text_encoder."):
    return {key.replace("text_encoder.", text_prefix, 1): tensor.clone() for key, tensor in model.state_dict().items()}


def test_our_format_round_trips(tiny_model, tiny_weights):
    assert describe_weights(tiny_weights).kind == "joker" and describe_weights(tiny_weights).loadable
    loaded = load_prior(tiny_weights)
    _assert_same_weights(tiny_model, loaded)
    assert loaded.tokenizer("a man").input_ids == tiny_model.tokenizer("a man").input_ids
    assert loaded.scheduler.config.num_train_timesteps == 1000


def test_our_format_refuses_a_folder_missing_parts(tiny_weights, tmp_path):
    broken = save_joker_prior(load_joker_prior(tiny_weights), tmp_path / "broken")
    (broken / "controlnet.safetensors").unlink()
    with pytest.raises(JokerError, match="lacks controlnet.safetensors"):
        load_prior(broken)
    assert not describe_weights(broken).loadable


@pytest.mark.parametrize("text_prefix", ["text_encoder.", "text_encoder.text_model."])
def test_official_state_dict_loads_through_the_official_path(tiny_model, sd15_folder, tmp_path, text_prefix):
    path = tmp_path / "bfm_ft_NersembleCelebvtext_230000.bin"
    torch.save(_official_state(tiny_model, text_prefix), path)
    description = describe_weights(path)
    assert description.kind == "official" and description.needs_sd15
    assert set(description.contents) == {"unet", "ref_unet", "controlnet", "vae", "text_encoder"}
    _assert_same_weights(tiny_model, load_prior(path, sd15_folder=sd15_folder))


def test_official_checkpoint_without_vae_and_text_encoder_takes_them_from_sd15(tiny_model, sd15_folder, tmp_path):
    """Also in torch's legacy (pre-zip) serialisation, which cannot be memory-mapped."""
    state = {k: v for k, v in _official_state(tiny_model).items() if k.split(".")[0] in ("unet", "ref_unet", "controlnet")}
    torch.save(state, tmp_path / "prior.bin", _use_new_zipfile_serialization=False)
    _assert_same_weights(tiny_model, load_prior(tmp_path / "prior.bin", sd15_folder=sd15_folder))


def test_checkpoint_for_another_architecture_reports_keys_by_module(tiny_model, sd15_folder, tmp_path):
    state = _official_state(tiny_model)
    del state["unet.conv_in.weight"]
    state["controlnet.conv_in.weight"] = torch.zeros(3, 3)
    state["model.diffusion_model.input_blocks.0.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "other.bin")
    with pytest.raises(JokerError) as error:
        load_prior(tmp_path / "other.bin", sd15_folder=sd15_folder)
    message = str(error.value)
    assert "\n" not in message
    assert "missing - unet: 1 (conv_in.weight)" in message
    assert "unexpected - model: 1 (diffusion_model.input_blocks.0.weight)" in message
    assert "other shape - controlnet: 1 (conv_in.weight (3, 3) vs (32, 4, 3, 3))" in message


class NotAStateDict:
    def __init__(self):
        self.weights = torch.zeros(2)


def test_pickles_that_are_not_plain_state_dicts_are_refused(sd15_folder, tmp_path):
    torch.save(NotAStateDict(), tmp_path / "object.bin")
    with pytest.raises(JokerError, match="pickle that holds more than tensors"):
        load_prior(tmp_path / "object.bin", sd15_folder=sd15_folder)
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    with pytest.raises(JokerError, match="holds a list, not a state dict"):
        load_prior(tmp_path / "list.pt", sd15_folder=sd15_folder)
    torch.save(collections.OrderedDict(unet=torch.zeros(1)), tmp_path / "bare.bin")
    with pytest.raises(JokerError, match="SD1.5"):
        load_prior(tmp_path / "bare.bin")


def test_sd15_folder_initialises_all_three_networks(tiny_model, sd15_folder):
    assert describe_weights(sd15_folder).kind == "sd15"
    model = load_prior(sd15_folder)
    reference = tiny_model.ref_unet.state_dict()
    for unet in (model.unet, model.ref_unet):
        assert all(torch.equal(tensor, reference[key]) for key, tensor in unet.state_dict().items())
    assert model.controlnet.config.conditioning_channels == 3
    torch.testing.assert_close(model.controlnet.conv_in.weight, reference["conv_in.weight"])


def test_sd15_folder_missing_parts_are_named(sd15_folder, tmp_path):
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "config.json").write_text((sd15_folder / "unet" / "config.json").read_text())
    with pytest.raises(JokerError, match="lacks unet/diffusion_pytorch_model.safetensors, vae/config.json"):
        load_prior(tmp_path)


def test_unknown_paths_are_refused(tmp_path):
    with pytest.raises(JokerError, match="does not exist"):
        load_prior(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(JokerError, match="not a weights format"):
        load_prior(tmp_path / "notes.txt")


def test_devices_and_memory_check(tiny_model):
    assert choose_device("cpu").type == "cpu"
    assert choose_dtype(torch.device("cpu")) == torch.float32
    with pytest.raises(JokerError, match="fp16 on the CPU"):
        choose_dtype(torch.device("cpu"), "fp16")
    with pytest.raises(JokerError, match="unknown device"):
        choose_device("tpu")
    with pytest.raises(JokerError, match=r"needs about 0\.\d+ GiB on cuda but 0\.00 GiB is free"):
        ensure_fits(tiny_model, torch.device("cuda"), torch.float16, free=1000)
    ensure_fits(tiny_model, torch.device("cuda"), torch.float16, free=2 ** 30)


def test_old_diffusers_vae_attention_names_are_mapped(tiny_model, sd15_folder, tmp_path):
    old_names = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    state = {}
    for key, tensor in _official_state(tiny_model).items():
        for new, old in old_names.items():
            key = key.replace(f"mid_block.attentions.0.{new}.", f"mid_block.attentions.0.{old}.")
        state[key] = tensor
    assert "vae.decoder.mid_block.attentions.0.proj_attn.weight" in state
    torch.save(state, tmp_path / "old.bin")
    _assert_same_weights(tiny_model, load_prior(tmp_path / "old.bin", sd15_folder=sd15_folder))
