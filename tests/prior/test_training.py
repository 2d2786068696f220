"""Training on the tiny config: dataset format and validator, synthetic data from the demo
head, the accelerate loop overfitting a few samples, checkpoint and resume, the CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from joker.cli import main
from joker.prior.diffusion.joker_format import save_joker_prior
from tiny_prior import tiny_prior_model
from joker.prior.training.dataset import PriorDataset, check_dataset, validate_dataset
from joker.prior.training.loop import TrainingConfig, latest_checkpoint, resume_from, train, trainable_parameters
from joker.prior.training.synthetic import write_synthetic_dataset
from joker_core.errors import JokerError

SIZE = 32
PRESETS = ["scream", "big_laugh", "neutral", "pout"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("data") / "synthetic", 4, SIZE, PRESETS)


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    """60 steps on 4 synthetic samples, checkpoints every 30 steps."""
    root = tmp_path_factory.mktemp("run")
    model = tiny_prior_model(root / "tokenizer", image_size=SIZE)
    config = TrainingConfig(steps=60, batch_size=4, learning_rate=2e-3, log_every=10, checkpoint_every=30,
                            sample_steps=2)
    losses = train(model, dataset, root / "out", config)
    return root / "out", losses, config


def test_synthetic_dataset_is_valid_and_loads(dataset):
    assert validate_dataset(dataset) == {}
    data = PriorDataset(dataset, references=2)
    item = data[0]
    assert item["target"].shape == item["normal"].shape == (3, SIZE, SIZE)
    assert item["references"].shape == (2, 3, SIZE, SIZE)
    assert item["caption"].startswith("a photo of a person screaming")
    assert not torch.equal(item["target"], item["references"][0])  # the reference is another frame
    assert (item["normal"].sum(0) == 0).any() and (item["normal"].sum(0) > 0).any()  # head on background


def test_validator_names_every_broken_sample(dataset, tmp_path):
    broken = shutil.copytree(dataset, tmp_path / "broken")
    samples = sorted((broken / "samples").iterdir())
    (samples[0] / "normal.png").unlink()
    Image.fromarray(np.zeros((SIZE, 2 * SIZE, 3), np.uint8)).save(samples[1] / "target.png")
    meta = json.loads((samples[2] / "sample.json").read_text())
    (samples[2] / "sample.json").write_text(json.dumps({**meta, "caption": 3, "camera": {"fx": 1}}))
    for path in samples[3].glob("reference_*.png"):
        path.unlink()

    problems = validate_dataset(broken)
    assert problems == {
        samples[0].name: ["normal.png is missing"],
        samples[1].name: [f"target.png is 64x32, not 32x32"],
        samples[2].name: ["caption is not a string", "sample.json: camera description is malformed ('c2w')"],
        samples[3].name: ["no reference_N.png"],
    }
    with pytest.raises(JokerError, match=f"4 broken samples in .*{samples[0].name}: normal.png is missing"):
        check_dataset(broken)


def test_training_overfits_a_few_samples(trained):
    out, losses, config = trained
    assert len(losses) == 6
    first, last = np.mean(losses[:2]), np.mean(losses[-2:])
    assert last < 0.6 * first, losses
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in logged] == list(range(10, 61, 10))
    assert Image.open(out / "samples" / "step_000060.png").size == (4 * SIZE, 2 * SIZE)
    assert (out / "final" / "joker_prior.json").exists()


def test_published_recipe_trains_only_the_authors_parts(tmp_path):
    model = tiny_prior_model(tmp_path / "tokenizer", image_size=SIZE)
    chosen = {id(p) for p in trainable_parameters(model, "published")}
    named = dict(model.named_parameters())
    trains = {name for name, p in named.items() if id(p) in chosen}
    assert trains == {name for name, p in named.items() if p.requires_grad}
    assert any(n.startswith("unet.up_blocks.") for n in trains) and any(n.startswith("unet.mid_block.") for n in trains)
    assert not any(n.startswith(("unet.down_blocks.", "unet.conv_in", "unet.time_embedding", "vae.", "text_encoder."))
                   for n in trains)
    assert all(n in trains for n in named if n.startswith("controlnet."))
    # the reference UNet's tail after its last recorded attn1 input feeds nothing: frozen
    last_attn1 = [n for n in named if n.startswith("ref_unet.up_blocks.") and ".attn1.to_q." in n][-1]
    assert last_attn1 not in trains and "ref_unet.conv_out.weight" not in trains
    assert "ref_unet.conv_in.weight" in trains and "ref_unet.down_blocks.0.attentions.0.proj_in.weight" in trains
    every = trainable_parameters(model, "all")
    assert len(every) > len(chosen) and all(p.requires_grad for p in every)


def test_checkpoint_resumes_where_it_stopped(trained, dataset):
    out, _, config = trained
    checkpoint = latest_checkpoint(out)
    assert checkpoint.name == "step_000060"
    model, optimizer_state, step = resume_from(checkpoint)
    final = resume_from(checkpoint)[0].state_dict()
    assert step == 60 and optimizer_state["state"]
    assert all(torch.equal(tensor, final[key]) for key, tensor in model.state_dict().items())
    resumed = train(model, dataset, out, TrainingConfig(**{**config.__dict__, "steps": 70}), optimizer_state, step)
    assert len(resumed) == 1
    assert json.loads((out / "log.jsonl").read_text().splitlines()[-1])["step"] == 70


def test_train_prior_command(dataset, tmp_path, capsys):
    init = save_joker_prior(tiny_prior_model(tmp_path / "tokenizer", image_size=SIZE), tmp_path / "init")
    out = tmp_path / "run"
    argv = ["train-prior", "--dataset", str(dataset), "--init", str(init), "--out", str(out), "--steps", "4",
            "--batch-size", "2", "--checkpoint-every", "2", "--sample-steps", "1"]
    assert main(argv) == 0
    assert latest_checkpoint(out).name == "step_000004" and (out / "final").is_dir()
    assert main(argv[:-6] + ["--steps", "6", "--resume", "--sample-steps", "1", "--grad-accum", "2"]) == 0
    assert "resuming from step 4" in capsys.readouterr().out
    assert json.loads((out / "log.jsonl").read_text().splitlines()[-1])["step"] == 6
    assert main(["train-prior", "--dataset", str(dataset), "--check-only"]) == 0
    assert main(["train-prior", "--dataset", str(tmp_path / "none"), "--check-only"]) == 2
