"""The sequence engine with the rig's topology: every frame's registered head (head_rig.glb)
and sequence.glb, one mesh whose morph targets are exactly those heads, and (asked for in
the spec) whose material variants carry exactly those heads' textures."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from skimage import data

from joker.sequence import generate_sequence
from joker_core.protocol import SequenceSpec
from test_sequence_glb import material_image, read_glb

sys.path.insert(0, str(Path(__file__).parents[1] / "sequence"))
from sequence_engine import TINY_SEQUENCE  # noqa: E402

SPEC = SequenceSpec.from_dict({"job": {"quality": "preview", "device": "cpu", "seed": 5},
                               "frames": [{"preset": "neutral"}, {"preset": "crooked_smile"}],
                               "frame_start": 3, "frame_step": 2, "per_frame_textures": True})


@pytest.mark.slow  # two distilled frames: over the suite's per-test budget; make test-slow runs it
def test_a_sequence_writes_one_animated_object_of_its_registered_heads(tmp_path):
    result = generate_sequence(data.astronaut(), spec=SPEC, out_dir=tmp_path / "out",
                               tuning=dataclasses.replace(TINY_SEQUENCE, rig_topology=True))
    document, accessor = read_glb(result.folder / "sequence.glb")
    (primitive,) = document["meshes"][0]["primitives"]
    assert document["meshes"][0]["extras"]["targetNames"] == ["frame_0003", "frame_0005"]
    base = accessor(primitive["attributes"]["POSITION"])
    mappings = primitive["extensions"]["KHR_materials_variants"]["mappings"]
    for frame, target, mapping in zip(result.frames, primitive["targets"], mappings):
        (head,) = trimesh.load(frame.folder / "head_rig.glb", force="scene", process=False).geometry.values()
        np.testing.assert_allclose(base + accessor(target["POSITION"]), head.vertices, atol=1e-6)
        np.testing.assert_array_equal(accessor.image(material_image(document, mapping["material"])),
                                      np.asarray(head.visual.material.baseColorTexture)[..., :3])
