"""A sequence split into 2 segments that run at once on the local Ray instance: inside a
segment nothing changes (its frames are the unsplit sequence's, up to run-to-run noise), and the
second segment's first frame starts cold, at its own scene number, and costs more."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree
from skimage import data

from joker.segments import SEGMENTS_NAME, even_starts, generate_segments, split_sequence, starts_at_frames
from joker_core.errors import JokerError
from joker_core.png import encode_png
from joker_core.protocol import SequenceSpec

SPEC = SequenceSpec.from_dict({"job": {"quality": "preview", "device": "cpu", "seed": 5},
                               "frames": [{"preset": "neutral"}, {"preset": "crooked_smile"}],
                               "frame_start": 10, "frame_step": 2})
BUDGET = ("warm", "prior_evaluations", "nerf_steps", "budget_share")


def test_split_points_are_checked_and_segments_keep_scene_numbers():
    first, second = split_sequence(SPEC, even_starts(2, 2))
    assert (first.frame_start, len(first.frames), second.frame_start, second.frames) == (10, 1, 12, SPEC.frames[1:])
    with pytest.raises(JokerError, match="do not split"):
        split_sequence(SPEC, [1])
    with pytest.raises(JokerError, match="cannot split 2 frames into 3"):
        even_starts(2, 3)


def test_keyframes_start_segments_at_the_first_generated_frame_from_them():
    spec = SequenceSpec.from_dict({"frames": [{"preset": "neutral"}] * 6, "frame_start": 10, "frame_step": 2})
    # frames 10 12 14 16 18 20; a key at 13 starts at 14, keys outside or at the start add nothing
    assert starts_at_frames(spec, [1, 10, 13, 16, 21, 99]) == [0, 2, 3]
    assert starts_at_frames(spec, []) == [0]
    assert [len(segment.frames) for segment in split_sequence(spec, starts_at_frames(spec, [13, 16]))] == [2, 1, 3]


def frames(folder):
    """Scene frame number -> (its figures, its mesh's vertices)."""
    manifest = json.loads((folder / "sequence.json").read_text())
    return {entry["frame"]: (entry, np.asarray(trimesh.load(folder / entry["obj"], force="mesh").vertices))
            for entry in manifest["frames"]}


def mean_distance(a, b) -> float:
    return (cKDTree(b).query(a)[0].mean() + cKDTree(a).query(b)[0].mean()) / 2


@pytest.mark.slow  # `make test-slow`: over the suite's 5-minute budget on CI's 2 cores
def test_two_segments_give_the_unsplit_frames_where_each_segment_starts(ray_cluster, tmp_path):
    from sequence_engine import TINY_SEQUENCE

    photo = tmp_path / "ada.png"
    photo.write_bytes(encode_png(data.astronaut()))
    [whole] = generate_segments(photo, spec=SPEC, out_dir=tmp_path / "whole", starts=[0], ray_address=ray_cluster,
                                tuning=TINY_SEQUENCE)
    split = generate_segments(photo, spec=SPEC, out_dir=tmp_path / "split", starts=[0, 1], ray_address=ray_cluster,
                              tuning=TINY_SEQUENCE)
    unsplit, first, second = frames(whole), frames(split[0]), frames(split[1])
    assert sorted(unsplit) == [10, 12] and sorted(first) == [10] and sorted(second) == [12]
    # Segment 1 starts where the sequence starts: the same budget, and the same surface up to
    # the engine's run-to-run noise (0.15 mm measured; a cold vs warm frame differs by ~4 mm).
    assert [first[10][0][key] for key in BUDGET] == [unsplit[10][0][key] for key in BUDGET]
    assert mean_distance(first[10][1], unsplit[10][1]) < 0.001
    cold, warm = second[12][0], unsplit[12][0]
    assert not cold["warm"] and warm["warm"]
    assert cold["prior_evaluations"] > warm["prior_evaluations"]  # what splitting costs
    assert [s["first_frame"] for s in json.loads((tmp_path / "split" / SEGMENTS_NAME).read_text())["segments"]] == [10, 12]
