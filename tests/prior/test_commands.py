"""`joker prior-info` and `joker prior-sample` on real files, in process."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from joker.cli import main


@pytest.fixture(scope="module")
def reference_photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "face.png"
    pixels = np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_prior_info_describes_our_format(tiny_weights, capsys):
    assert main(["prior-info", str(tiny_weights)]) == 0
    out = capsys.readouterr().out
    assert "Joker prior in our format" in out and "unet: 208 tensors" in out and "loadable: probably" in out
    assert main(["prior-info", str(tiny_weights), "--load"]) == 0
    assert "image size 64 px" in capsys.readouterr().out


def test_prior_info_on_a_checkpoint_and_on_junk(tiny_model, sd15_folder, tmp_path, capsys):
    state = tiny_model.state_dict()
    torch.save(state, tmp_path / "prior.bin")
    assert main(["prior-info", str(tmp_path / "prior.bin")]) == 0
    assert "authors' layout" in capsys.readouterr().out
    assert main(["prior-info", str(tmp_path / "prior.bin"), "--load", "--sd15", str(sd15_folder)]) == 0
    assert "loadable: yes (all weights loaded)" in capsys.readouterr().out
    del state["controlnet.conv_in.weight"]
    torch.save(state, tmp_path / "other.bin")
    assert main(["prior-info", str(tmp_path / "other.bin"), "--load", "--sd15", str(sd15_folder)]) == 2
    assert "missing - controlnet: 1 (conv_in.weight)" in capsys.readouterr().err
    (tmp_path / "junk.bin").write_bytes(b"not a checkpoint")
    assert main(["prior-info", str(tmp_path / "junk.bin")]) == 1
    assert "loadable: no" in capsys.readouterr().out


def test_prior_sample_renders_the_demo_head_and_writes_one_image_per_view(tiny_weights, reference_photo, tmp_path):
    out = tmp_path / "samples"
    argv = ["prior-sample", "--weights", str(tiny_weights), "--reference", str(reference_photo),
            "--preset", "scream", "--views", "grid:2x1", "--prompt", "a man screaming", "--steps", "2",
            "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    record = json.loads((out / "samples.json").read_text())
    assert [v["image"] for v in record["views"]] == ["sample_000.png", "sample_001.png"]
    first = np.asarray(Image.open(out / "sample_000.png"))
    assert first.shape == (64, 64, 3)
    assert main(argv[:-1] + [str(tmp_path / "again")]) == 0  # same seed, same pixels
    assert np.array_equal(first, np.asarray(Image.open(tmp_path / "again" / "sample_000.png")))


def test_prior_sample_reads_a_render_normals_folder(tiny_weights, reference_photo, tmp_path, capsys):
    normals = tmp_path / "normals"
    assert main(["render-normals", "--views", "grid:3x1", "--size", "64", "--out", str(normals)]) == 0
    assert main(["prior-sample", "--weights", str(tiny_weights), "--reference", str(reference_photo),
                 "--normals", str(normals), "--steps", "1", "--out", str(tmp_path / "out")]) == 0
    assert len(list((tmp_path / "out").glob("sample_*.png"))) == 3

    assert main(["render-normals", "--views", "grid:1x1", "--size", "128", "--out", str(tmp_path / "big")]) == 0
    capsys.readouterr()
    assert main(["prior-sample", "--weights", str(tiny_weights), "--reference", str(reference_photo),
                 "--normals", str(tmp_path / "big"), "--out", str(tmp_path / "bad")]) == 2
    assert "normal maps are 128x128 pixels but this prior works at 64x64" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_prior_sample_refuses_bad_input(tiny_weights, reference_photo, tmp_path, capsys):
    wide = tmp_path / "wide.png"
    Image.fromarray(np.zeros((64, 128, 3), dtype=np.uint8)).save(wide)
    base = ["prior-sample", "--weights", str(tiny_weights), "--out", str(tmp_path / "o")]
    assert main(base + ["--reference", str(wide)]) == 2
    assert "not a square portrait crop" in capsys.readouterr().err
    assert main(base + ["--reference", str(reference_photo), "--cfg", "0.5"]) == 2
    assert "guidance scale 0.5 is below 1" in capsys.readouterr().err
    assert main(base + ["--reference", str(reference_photo), "--precision", "fp16", "--device", "cpu"]) == 2
    assert "fp16 on the CPU" in capsys.readouterr().err
