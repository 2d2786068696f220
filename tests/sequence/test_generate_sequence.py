"""generate_sequence end to end on a real photo at test size: per-frame heads, the
manifest, warm starts that cost less, cancel keeping finished frames."""

import json

import pytest
import trimesh

from joker.sequence import generate_sequence
from joker_core.errors import JobCancelled, JokerError
from joker_core.protocol import SequenceSpec
from sequence_engine import TINY_SEQUENCE

# neutral -> neutral (nothing moved: the same head, held) -> a small smile (a warm frame that follows it)
SPEC = SequenceSpec.from_dict({"job": {"quality": "preview", "device": "cpu", "seed": 5},
                               "frames": [{"preset": "neutral"}, {"preset": "neutral"},
                                          {"preset": "crooked_smile", "prompt": "a crooked smile"}],
                               "frame_start": 10, "frame_step": 2})


@pytest.fixture(scope="module")
def finished(photo, tmp_path_factory):
    """The sequence, and every progress event it reported."""
    reported = []
    return generate_sequence(photo, spec=SPEC, out_dir=tmp_path_factory.mktemp("seq") / "out",
                             progress=reported.append, tuning=TINY_SEQUENCE), reported


def test_every_frame_gets_its_own_head_numbered_as_in_the_scene(finished):
    result, _ = finished
    assert [frame.number for frame in result.frames] == [10, 12, 14]
    for frame in result.frames:
        assert frame.folder.name == f"frame_{frame.number:04d}"
        mesh = trimesh.load(frame.glb, force="mesh")
        assert len(mesh.faces) > 100
        assert {"head.obj", "head.png", "metrics.json", "log.txt"} <= {p.name for p in frame.folder.iterdir()}
    assert not list(result.folder.rglob("*.part")) and not list(result.folder.rglob("*.failed"))


def test_the_manifest_lists_the_frames_and_what_they_cost(finished):
    result, _ = finished
    manifest = json.loads(result.manifest.read_text())
    assert manifest["state"] == "finished" and manifest["frame_count"] == 3
    assert [entry["frame"] for entry in manifest["frames"]] == [10, 12, 14]
    for entry in manifest["frames"]:
        assert (result.folder / entry["glb"]).is_file()
    assert manifest["totals"]["prior_evaluations"] == sum(f.figures["prior_evaluations"] for f in result.frames)
    assert SequenceSpec.from_dict(json.loads((result.folder / "inputs/spec.json").read_text())) == SPEC


def test_warm_frames_cost_less_and_follow_the_motion(finished):
    first, still, smile = (frame.figures for frame in finished[0].frames)
    assert not first["warm"] and still["warm"] and smile["warm"]
    assert smile["rig_motion_m"] > 0.005 and not smile["reused_targets"] and not smile["held"]
    assert 0 < smile["budget_share"] <= 0.35
    assert 0 < smile["prior_evaluations"] <= 0.35 * first["prior_evaluations"]
    assert 0 < smile["nerf_steps"] <= 0.35 * first["nerf_steps"]
    # Starting from the first frame's field, the short run is as good as the long one.
    assert smile["held_out_psnr_db"] > first["held_out_psnr_db"] - 0.5


def test_a_held_pose_is_the_previous_head_at_no_cost(finished):
    frames = finished[0].frames
    first, still = frames[0].figures, frames[1].figures
    assert still["held"] and still["rig_motion_m"] == 0.0 and still["budget_share"] == 0.0
    assert still["prior_evaluations"] == 0 and still["nerf_steps"] == 0
    assert still["held_out_psnr_db"] == first["held_out_psnr_db"]
    before, after = (trimesh.load(frame.glb, force="mesh") for frame in frames[:2])
    assert (before.vertices == after.vertices).all() and (before.faces == after.faces).all()


def test_progress_is_reported_per_frame_and_ends_at_one(finished):
    _, events = finished
    finished_frames = [event.stage for event in events if event.stage.endswith("finished")]
    assert finished_frames == ["frame 10 finished", "frame 12 finished", "frame 14 finished"]
    values = [event.progress for event in events]
    assert values == sorted(values) and values[-1] == 1.0


def test_a_cancel_keeps_the_finished_frames(photo, tmp_path):
    out = tmp_path / "out"

    def after_first_frame():
        return (out / "frames" / "frame_0010" / "head.glb").exists()

    with pytest.raises(JobCancelled):
        generate_sequence(photo, spec=SPEC, out_dir=out, should_cancel=after_first_frame, tuning=TINY_SEQUENCE)
    manifest = json.loads((out / "sequence.json").read_text())
    assert manifest["state"] == "cancelled" and [entry["frame"] for entry in manifest["frames"]] == [10]
    assert sorted(p.name for p in (out / "frames").iterdir()) == ["frame_0010"]  # nothing half-made


def test_a_used_output_folder_is_refused(photo, tmp_path):
    (tmp_path / "old.txt").write_text("keep me")
    with pytest.raises(JokerError, match="not empty") as error:
        generate_sequence(photo, spec=SPEC, out_dir=tmp_path, tuning=TINY_SEQUENCE)
    assert "--overwrite" in error.value.fix and (tmp_path / "old.txt").exists()
