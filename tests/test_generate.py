"""joker.api.generate end to end on a real photo, at test size (the quality presets are
measured in benchmarks/bench_generate.py)."""

import dataclasses
import json

import numpy as np
import pytest
import trimesh
from PIL import Image
from skimage import data

from joker.api import generate
from joker.generation.output import failed_folder
from tiny_engine import SMALL, TINY
from joker_core.errors import JobCancelled, JokerError
from joker_core.protocol import JobSpec

SPEC = JobSpec(preset="scream", quality="preview", device="cpu", seed=3, material="unlit")


@pytest.fixture(scope="module")
def photo():
    return data.astronaut()


@pytest.fixture(scope="module")
def finished(photo, tmp_path_factory):
    events = []
    out = tmp_path_factory.mktemp("gen") / "head"
    result = generate(photo, spec=SPEC, out_dir=out, progress=events.append,
                      tuning=dataclasses.replace(SMALL, benchmark_metrics=True))
    return result, events


def test_a_job_writes_a_self_describing_folder(finished):
    result, _ = finished
    names = {p.relative_to(result.folder).as_posix() for p in result.folder.rglob("*") if p.is_file()}
    assert {"head.glb", "head.obj", "head.mtl", "head.png", "turntable.png", "metrics.json", "log.txt",
            "versions.json", "inputs/reference.png", "inputs/spec.json"} <= names
    assert any(name.startswith("previews/") for name in names)
    assert JobSpec.from_dict(json.loads((result.folder / "inputs/spec.json").read_text())) == SPEC
    assert "torch" in json.loads((result.folder / "versions.json").read_text())
    assert np.asarray(Image.open(result.folder / "inputs/reference.png")).shape == (512, 512, 3)


def test_the_glb_is_one_textured_head_in_the_flame_frame(finished):
    result, _ = finished
    mesh = trimesh.load(result.glb, force="mesh")
    assert mesh.visual.material.baseColorTexture is not None
    assert b"KHR_materials_unlit" in result.glb.read_bytes()  # the spec's material (tests/mesh: lit)
    extent = mesh.bounds[1] - mesh.bounds[0]
    assert 0.15 < extent[1] < 0.45 and 0.1 < extent[0] < 0.3  # metres: head and neck, +y up


def test_metrics_report_cost_and_fidelity(finished):
    result, _ = finished
    figures = json.loads(result.metrics.read_text())
    preset = SMALL.preset
    from joker.prior.base import NoiseLevels
    assert figures["prior_evaluations"] == preset.schedule.prior_evaluations(NoiseLevels(), 6)
    assert figures["nerf_steps"] == preset.schedule.iterations
    assert figures["held_out_psnr_db"] > 18  # an untrained field scores ~10 dB
    assert figures["back_psnr_db"] > 15  # measured ~21: the rig's orbit colours reach the back
    assert 0 < figures["face_chamfer_percent_of_head_height"] < 8
    assert figures["mouth_opening_rig_m"] > 0.01  # the scream opens the rig's mouth
    assert figures["lpips"] == "off"  # the preset does not weight LPIPS
    # always recorded; null where dlib finds no face on a test-size mesh (64 px texture)
    assert "identity_distance" in figures


def test_progress_is_monotone_and_ends_done(finished):
    _, events = finished
    progress = [event.progress for event in events]
    assert progress == sorted(progress) and progress[-1] == 1.0 and events[-1].stage == "done"
    assert {"prepare", "mesh"} <= {event.stage for event in events}
    assert any(event.stage.startswith("stage 2") for event in events)


def test_same_seed_same_mesh_with_the_lpips_weights_the_spec_names(photo, tmp_path):
    from safetensors.torch import save_file

    from joker.distill.lpips import Lpips

    weights = tmp_path / "lpips.safetensors"  # random weights: only whether the file is used counts here
    save_file(Lpips().state_dict(), str(weights))
    spec = JobSpec.from_dict({**SPEC.to_dict(), "lpips_weights": str(weights)})
    weighted = dataclasses.replace(TINY, preset=dataclasses.replace(
        TINY.preset, losses=dataclasses.replace(TINY.preset.losses, lpips=1.0)))
    first, again = (generate(photo, spec=spec, out_dir=tmp_path / name, tuning=weighted) for name in "ab")
    assert again.glb.read_bytes() == first.glb.read_bytes()
    assert json.loads(first.metrics.read_text())["lpips"] == "used"  # "missing" without: tests/distill


def test_cancel_stops_the_job_and_keeps_inputs_and_log(photo, tmp_path):
    out = tmp_path / "cancelled"
    events = []
    with pytest.raises(JobCancelled):
        generate(photo, spec=SPEC, out_dir=out, progress=events.append, tuning=TINY,
                 should_cancel=lambda: any(e.stage.startswith("stage") for e in events))
    assert not out.exists()
    kept = failed_folder(out)
    assert (kept / "inputs" / "reference.png").is_file() and (kept / "log.txt").is_file()


@pytest.mark.parametrize("spec, photo_kind, message", [
    (JobSpec(preset="no_such_face"), "astronaut", "unknown"),
    (JobSpec(preset="scream", device="cuda"), "astronaut", "CUDA"),
    (JobSpec(preset="scream"), "flat", "face"),
])
def test_bad_input_is_one_clear_error_and_no_result(spec, photo_kind, message, photo, tmp_path):
    image = photo if photo_kind == "astronaut" else np.full((256, 256, 3), 128, np.uint8)
    if message == "CUDA":
        import torch
        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    with pytest.raises(JokerError, match=message) as error:
        generate(image, spec=spec, out_dir=tmp_path / "out", tuning=TINY)
    assert "Fix:" in str(error.value)
    assert not (tmp_path / "out").exists()


def test_an_occupied_output_folder_is_refused(photo, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(JokerError, match="not empty"):
        generate(photo, spec=SPEC, out_dir=tmp_path / "out", tuning=TINY)
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_explicit_eyes_align_a_photo_where_no_face_is_detected(tmp_path):
    flat = np.full((256, 256, 3), 128, np.uint8)  # "no face found" without the override (above)
    spec = JobSpec.from_dict({**SPEC.to_dict(), "alignment": {"eyes": [[100.0, 120.0], [156.0, 120.0]]}})
    result = generate(flat, spec=spec, out_dir=tmp_path / "eyes", tuning=TINY)
    assert result.glb.is_file()
    assert json.loads((result.folder / "inputs/spec.json").read_text())["alignment"]["eyes"][1] == [156.0, 120.0]
