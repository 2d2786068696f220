"""sequence.glb: one mesh, a morph target per frame that moves the base onto that frame's
head, and a weights animation keyed one frame per target; trimesh reads its base mesh."""

from __future__ import annotations

import json
import struct

import numpy as np
import trimesh

from sequence_heads import FRAMES, write_sequence

_TYPES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3}


def read_glb(path):
    """(glTF JSON, accessor index -> array): a GLB reader independent of the writer."""
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<III", data)
    assert (magic, version, length) == (0x46546C67, 2, len(data))
    json_length, = struct.unpack_from("<I", data, 12)
    document = json.loads(data[20:20 + json_length])
    binary = data[20 + json_length + 8:]

    def accessor(index):
        entry = document["accessors"][index]
        view = document["bufferViews"][entry["bufferView"]]
        dtype = np.float32 if entry["componentType"] == 5126 else np.uint32
        width = _TYPES[entry["type"]]
        return np.frombuffer(binary, dtype, entry["count"] * width, view["byteOffset"]).reshape(entry["count"], width)
    return document, accessor


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
