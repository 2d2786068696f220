"""sequence.glb: one mesh, a morph target per frame that moves the base onto that frame's
head, and a weights animation keyed one frame per target; trimesh reads its base mesh. Its
texture: the frames' mean (the default) or the first frame's, and each frame's own as
material variants. A
running sequence's file after each frame is the file of the frames so far, and a frame
appends to what the frames before encoded."""

from __future__ import annotations

import json
import struct

import io

import numpy as np
import pytest
import trimesh
from PIL import Image

from joker.mesh.animated import AnimationSettings, SequenceGlb, write_sequence_glb
from sequence_heads import FRAMES, textured_heads, write_sequence

_TYPES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3}


def read_glb(path):
    """(glTF JSON, accessor index -> array): a GLB reader independent of the writer."""
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<III", data)
    assert (magic, version, length) == (0x46546C67, 2, len(data))
    json_length, = struct.unpack_from("<I", data, 12)
    document = json.loads(data[20:20 + json_length])
    binary = data[20 + json_length + 8:]

    def array(view_index, dtype, count):
        return np.frombuffer(binary, dtype, count, document["bufferViews"][view_index]["byteOffset"])

    def accessor(index):
        entry = document["accessors"][index]
        dtype = np.float32 if entry["componentType"] == 5126 else np.uint32
        width = _TYPES[entry["type"]]
        if "bufferView" in entry:
            values = array(entry["bufferView"], dtype, entry["count"] * width).copy()
        else:
            values = np.zeros(entry["count"] * width, dtype)
        if "sparse" in entry:
            sparse = entry["sparse"]
            at = array(sparse["indices"]["bufferView"], np.uint32, sparse["count"])
            values.reshape(entry["count"], width)[at] = array(sparse["values"]["bufferView"], dtype,
                                                              sparse["count"] * width).reshape(-1, width)
        return values.reshape(entry["count"], width)

    def image(index):
        view = document["bufferViews"][document["images"][index]["bufferView"]]
        encoded = binary[view["byteOffset"]:view["byteOffset"] + view["byteLength"]]
        return np.asarray(Image.open(io.BytesIO(encoded)))

    accessor.image = image
    return document, accessor


def material_image(document, material):
    texture = document["materials"][material]["pbrMetallicRoughness"]["baseColorTexture"]["index"]
    return document["textures"][texture]["source"]


def test_each_morph_target_moves_the_base_onto_its_frame_and_the_animation_plays_them(tmp_path):
    path, heads = write_sequence(tmp_path)
    document, accessor = read_glb(path)
    (primitive,) = document["meshes"][0]["primitives"]
    assert document["meshes"][0]["extras"]["targetNames"] == [f"frame_{n:04d}" for n in FRAMES]
    base = accessor(primitive["attributes"]["POSITION"])
    np.testing.assert_allclose(base, heads[0].vertices, atol=1e-6)
    assert len(primitive["targets"]) == len(FRAMES)
    for target, head in zip(primitive["targets"], heads):
        np.testing.assert_allclose(base + accessor(target["POSITION"]), head.vertices, atol=1e-6)
    assert np.abs(heads[2].vertices - heads[0].vertices).max() > 0.005  # the frames really differ
    (animation,) = document["animations"]
    (sampler,) = animation["samplers"]
    times, weights = accessor(sampler["input"]).ravel(), accessor(sampler["output"]).reshape(len(FRAMES), -1)
    np.testing.assert_allclose(times, (np.array(FRAMES) - FRAMES[0]) / 24.0, atol=1e-6)
    np.testing.assert_array_equal(weights, np.eye(len(FRAMES)))
    assert sampler["interpolation"] == "LINEAR" and animation["channels"][0]["target"]["path"] == "weights"
    # trimesh (which ignores morph targets) reads the base mesh with its texture and UVs.
    (mesh,) = trimesh.load(path, force="scene", process=False).geometry.values()
    np.testing.assert_allclose(mesh.vertices, heads[0].vertices, atol=1e-6)
    np.testing.assert_allclose(mesh.visual.uv, heads[0].uvs, atol=1e-6)
    assert mesh.visual.material.baseColorTexture.size == (32, 32)
    mean = np.mean([head.texture.astype(np.float64) for head in heads], axis=0)  # the default shared texture
    assert np.abs(np.asarray(mesh.visual.material.baseColorTexture) - mean).max() <= 0.5
    assert np.abs(mean - heads[0].texture).mean() > 10  # the random textures really differ


def test_per_frame_textures_are_material_variants_named_by_frame_besides_the_first_frames(tmp_path):
    path, heads = write_sequence(tmp_path, AnimationSettings(texture="first", per_frame_textures=True))
    document, accessor = read_glb(path)
    (primitive,) = document["meshes"][0]["primitives"]
    names = [f"frame_{n:04d}" for n in FRAMES]
    assert document["extensionsUsed"] == ["KHR_materials_variants"]
    assert [variant["name"] for variant in document["extensions"]["KHR_materials_variants"]["variants"]] == names
    for mapping in primitive["extensions"]["KHR_materials_variants"]["mappings"]:
        (variant,) = mapping["variants"]
        assert document["materials"][mapping["material"]]["name"] == names[variant]
        own = accessor.image(material_image(document, mapping["material"]))
        np.testing.assert_array_equal(own, heads[variant].texture)
    np.testing.assert_array_equal(accessor.image(material_image(document, primitive["material"])), heads[0].texture)


def test_an_unlit_sequence_marks_every_material_unlit_as_a_single_head_does(tmp_path):
    path, _ = write_sequence(tmp_path, AnimationSettings(per_frame_textures=True, unlit=True))
    document, _ = read_glb(path)
    assert document["extensionsUsed"] == ["KHR_materials_unlit", "KHR_materials_variants"]
    assert len(document["materials"]) == len(FRAMES) + 1
    assert all("KHR_materials_unlit" in material["extensions"] for material in document["materials"])
    lit, _ = read_glb(write_sequence(tmp_path / "lit", AnimationSettings())[0])
    assert "extensionsUsed" not in lit and "extensions" not in lit["materials"][0]


def test_after_each_frame_the_file_holds_the_frames_so_far_and_a_frame_only_appends(tmp_path):
    heads = textured_heads()
    running = SequenceGlb(tmp_path / "sequence.glb", heads[0])
    kept_before = b""
    for count, (number, head) in enumerate(zip(FRAMES, heads), start=1):
        running.add(number, head)
        written = running.write().read_bytes()
        alone = write_sequence_glb(tmp_path / f"first_{count}" / "sequence.glb",
                                   list(zip(FRAMES, heads))[:count]).read_bytes()
        assert written == alone
        document, _ = read_glb(tmp_path / "sequence.glb")
        assert len(document["meshes"][0]["primitives"][0]["targets"]) == count
        kept = bytes(running.kept.data)
        assert kept.startswith(kept_before) and len(kept) > len(kept_before)  # the frames before: not re-encoded
        kept_before = kept
    with pytest.raises(ValueError, match="comes after"):
        running.add(FRAMES[0], heads[0])
